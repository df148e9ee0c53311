//! Cross-guest rules: identity RAM, host regions and host interrupts belong
//! to one guest only, and the guests' RAM fits in the host.
//!
//! Invariant: a conflict is reported on the later guest (DT order) and names
//! the earlier one.

use alloc::format;
use ferrovisor_types::HostRegion;

use crate::error::{range, Report, Who};
use crate::host::HostPlatform;
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
            let mut clash = false;
            for other in e.passthrough.iter().filter(|o| host_overlap(pt, o)) {
                clash = true;
                let msg = match (&pt.host_device, &other.host_device) {
                    (Some(a), Some(b)) if a == b => {
                        format!("host device {a} is already passed through to guest {}", e.name)
                    }
                    _ => format!(
                        "its host region overlaps one already passed through to guest {} by {}",
                        e.name, other.path
                    ),
                };
                r.error(
                    who,
                    &pt.path,
                    msg,
                    "give each device to one guest only; remove it from one of the two guests",
                );
            }
            if clash {
                continue;
            }
            for route in &pt.irqs {
                if let Some(other) =
                    e.passthrough.iter().find(|o| o.irqs.iter().any(|x| x.host == route.host))
                {
                    let msg = format!(
                        "host INTID {} is already forwarded to guest {} by {}",
                        route.host.0, e.name, other.path
                    );
                    r.error(who, &pt.path, msg, "a host interrupt can go to one guest only");
                }
            }
        }
    }
}

pub(crate) fn host_overlap(a: &PassthroughConfig, b: &PassthroughConfig) -> bool {
    a.regions.iter().any(|x| {
        b.regions.iter().any(|y| HostRegion::new(x.hpa.0, x.size).overlaps(&HostRegion::new(y.hpa.0, y.size)))
    })
}

/// Warns when guests need more RAM than the host has.
pub(crate) fn check_ram_budget(
    host: &HostPlatform,
    g: &GuestConfig,
    who: Who<'_>,
    used: &mut u64,
    r: &mut Report,
) {
    let need = g.memory.iter().fold(0u64, |acc, m| acc.saturating_add(m.size));
    *used = used.saturating_add(need);
    if *used > host.ram_size() {
        let msg = format!(
            "guests up to {} need {:#x} bytes of RAM, but the host has {:#x}",
            g.name,
            *used,
            host.ram_size()
        );
        r.warn(
            who,
            &g.path,
            msg,
            "shrink the guests' memory or boot fewer guests; the hypervisor will fail to allocate the rest",
        );
    }
}
