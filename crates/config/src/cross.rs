//! Cross-guest rules: identity RAM, host pages and host interrupts belong
//! to one guest only (whether the guests' RAM and heap fit is `plan`'s).
//!
//! Invariant: a conflict is reported on the later guest (DT order) and names
//! the earlier one. A host device several guests list, all but one with
//! `standby`, is no conflict: it belongs to one of them at a time. What a guest owns is the host pages stage 2 maps for it
//! (a sub-page device's whole page), so two guests never share a page.

use alloc::format;
use alloc::string::String;
use ferrovisor_types::HostRegion;

use crate::error::{range, Report, Who};
use crate::model::{GuestConfig, MemoryRegion, PassthroughConfig};

fn identity(g: &GuestConfig) -> impl Iterator<Item = &MemoryRegion> {
    g.memory.iter().filter(|m| m.identity && m.size > 0)
}

/// Cross-guest rules for `g` against every earlier guest.
pub(crate) fn check_against(g: &GuestConfig, who: Who<'_>, earlier: &[GuestConfig], r: &mut Report) {
    for e in earlier {
        for m in identity(g) {
            let mr = HostRegion::new(m.gpa.0, m.size);
            if let Some(o) = identity(e).find(|o| HostRegion::new(o.gpa.0, o.size).overlaps(&mr)) {
                let msg = format!(
                    "identity memory {} overlaps identity memory {} of guest {} ({})",
                    range(m.gpa.0, m.size),
                    range(o.gpa.0, o.size),
                    e.name,
                    o.path
                );
                r.error(who, &m.path, msg, "host RAM can belong to one guest only: move one of the regions");
            }
        }
        for pt in &g.passthrough {
            let bdf = pt.pci.map(|f| f.bdf);
            let same = |o: &&PassthroughConfig| bdf.is_some() && o.pci.map(|f| f.bdf) == bdf;
            if let (Some(bdf), Some(other)) = (bdf, e.passthrough.iter().find(same)) {
                let msg = format!(
                    "pci-function {bdf} is already passed through to guest {} by {}",
                    e.name, other.path
                );
                r.error(who, &pt.path, msg, "give each PCIe function to one guest only");
                continue;
            }
            let mut clash = false;
            for other in e.passthrough.iter().filter(|o| !movable_pair(pt, o)) {
                let Some(shared) = host_clash(pt, other) else { continue };
                clash = true;
                let (msg, hint) = match (&pt.host_device, &other.host_device) {
                    (Some(a), Some(b)) if a == b => (
                        format!("host device {a} is already passed through to guest {}", e.name),
                        "give each device to one guest only; to move it between guests, add standby; to every listing but one (the shell's passthrough assign moves it)",
                    ),
                    _ => (
                        format!(
                            "{} already passed through to guest {} by {}",
                            pages(shared),
                            e.name,
                            by(other)
                        ),
                        PAGE_HINT,
                    ),
                };
                r.error(who, &pt.path, msg, hint);
            }
            if clash {
                continue;
            }
            for route in &pt.irqs {
                if let Some(other) = e
                    .passthrough
                    .iter()
                    .find(|o| !movable_pair(pt, o) && o.irqs.iter().any(|x| x.host == route.host))
                {
                    let msg = format!(
                        "host INTID {} is already forwarded to guest {} by {}",
                        route.host.raw(),
                        e.name,
                        other.path
                    );
                    let hint = if pt.pci.is_some() {
                        "a host interrupt can go to one guest only: PCIe functions sharing an INTx line belong to one guest (or give one intx = \"none\";)"
                    } else {
                        "a host interrupt can go to one guest only"
                    };
                    r.error(who, &pt.path, msg, hint);
                }
            }
        }
    }
}

/// Whether `a` and `b` (in two guests) list the same host device and at
/// least one of them is `standby`: one device that `passthrough assign`
/// moves between the guests, which own it one at a time.
pub(crate) fn movable_pair(a: &PassthroughConfig, b: &PassthroughConfig) -> bool {
    (a.standby || b.standby) && a.host_device.is_some() && a.host_device == b.host_device
}

/// Hint for two pass-throughs that share host pages.
pub(crate) const PAGE_HINT: &str = "a host page goes to one guest, once, with every device in it (stage 2 maps whole 4 KiB pages): pass the devices of a page through in one node of one guest, or remove one of the two";

/// The first host range that `a` and `b` both map, if any.
pub(crate) fn host_clash(a: &PassthroughConfig, b: &PassthroughConfig) -> Option<HostRegion> {
    a.regions.iter().find_map(|x| {
        let x = HostRegion::new(x.hpa.0, x.size);
        b.regions.iter().map(|y| HostRegion::new(y.hpa.0, y.size)).find(|y| y.overlaps(&x)).map(|y| {
            let base = x.base.0.max(y.base.0);
            HostRegion::new(base, x.end().min(y.end()).saturating_sub(base))
        })
    })
}

/// `its host page 0x..-0x.. is` (or `pages ... are`).
pub(crate) fn pages(shared: HostRegion) -> String {
    let text = range(shared.base.0, shared.size);
    if shared.size > crate::model::PAGE_SIZE {
        format!("its host pages {text} are")
    } else {
        format!("its host page {text} is")
    }
}

/// `/guests/a/blk (host device /virtio_mmio@a003e00)`, or the path alone.
pub(crate) fn by(pt: &PassthroughConfig) -> String {
    match &pt.host_device {
        Some(d) => format!("{} (host device {d})", pt.path),
        None => pt.path.clone(),
    }
}
