//! Raw guests -> validated [`GuestConfig`]s: the per-guest rules (vCPUs,
//! affinity, memory, guest-physical layout, interrupts, images). The
//! cross-guest rules live in `cross`.
//!
//! Invariant: every finding names the config node; a cross-guest conflict is
//! reported on the later guest in DT order and names the earlier one.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ferrovisor_types::PcpuId;
use ferrovisor_types::{HostRegion, IntidClass};

use crate::cross::{by, host_clash, pages, PAGE_HINT};
use crate::error::{range, Report, Who};
use crate::host::HostPlatform;
use crate::limits::{GUEST_IPA_LIMIT, GUEST_SPIS, MAX_GUEST_INTID};
use crate::model::{aligned, GuestConfig, PassthroughConfig, MAX_VCPUS, VUART_SIZE};
use crate::parse::RawGuest;
use crate::resolve::resolve;

const ALIGN_HINT: &str = "stage-2 maps whole 4 KiB pages: use a multiple of 0x1000";
pub(crate) const SPI_HINT: &str = "guest device interrupts must be SPIs of the virtual GIC, INTID 32 to 255 (16 to 31 are per-CPU: the timers use 26, 27 and 30)";

/// A guest-physical window of one guest, for the overlap check.
struct Window {
    base: u64,
    size: u64,
    what: String,
    path: Option<String>,
}

fn check_vcpus(host: &HostPlatform, g: &RawGuest, who: Who<'_>, r: &mut Report) -> Option<Vec<PcpuId>> {
    if let Some(v) = g.vcpus.filter(|v| !(1..=MAX_VCPUS).contains(v)) {
        r.error(who, &g.path, format!("vcpus = <{v}> is out of range"), "a guest has 1 to 8 virtual CPUs");
    }
    let list = g.affinity.as_ref()?;
    let n = host.cpus.len();
    let mut out: Vec<PcpuId> = Vec::new();
    for &cpu in list {
        let idx = cpu as usize;
        let id = PcpuId::new(idx);
        if idx >= n {
            let msg = format!(
                "cpu-affinity: physical CPU {cpu} does not exist (the host has {n} CPUs, 0 to {})",
                n.saturating_sub(1)
            );
            r.error(who, &g.path, msg, "cpu-affinity lists 0-based indices into the host DT's /cpus nodes");
        } else if let Some(id) = id {
            if out.contains(&id) {
                r.error(
                    who,
                    &g.path,
                    format!("cpu-affinity lists physical CPU {cpu} twice"),
                    "list each physical CPU once",
                );
            } else {
                out.push(id);
            }
        } else {
            let msg = format!(
                "cpu-affinity: physical CPU {cpu} is not used by ferrovisor, which runs guests on the first {} CPUs",
                PcpuId::LIMIT
            );
            r.error(who, &g.path, msg, "list CPUs 0 to 7");
        }
    }
    Some(out)
}

fn check_memory(host: &HostPlatform, g: &RawGuest, who: Who<'_>, r: &mut Report) {
    if g.memory.is_empty() {
        r.error(
            who,
            &g.path,
            "guest has no memory".into(),
            "add a memory@<addr> node with guest-physical-addr and size",
        );
    }
    for m in &g.memory {
        let (base, size) = (m.gpa.0, m.size);
        if size == 0 {
            r.error(
                who,
                &m.path,
                "memory size is 0".into(),
                "give the region a non-zero size, a multiple of 0x1000",
            );
        }
        if !aligned(base) {
            r.error(who, &m.path, format!("guest-physical-addr {base:#x} is not 4 KiB aligned"), ALIGN_HINT);
        }
        if !aligned(size) {
            r.error(who, &m.path, format!("memory size {size:#x} is not a multiple of 4 KiB"), ALIGN_HINT);
        }
        if m.identity && size > 0 && !host.in_ram(&HostRegion::new(base, size)) {
            let ram: Vec<String> = host.memory.iter().map(|h| range(h.base.0, h.size)).collect();
            let msg =
                format!("identity memory {} is not inside host RAM ({})", range(base, size), ram.join(", "));
            r.error(who, &m.path, msg, "an identity region must lie inside a host /memory region, or drop identity; to let the hypervisor place it");
        }
    }
}

fn windows(host: &HostPlatform, g: &RawGuest, pts: &[PassthroughConfig]) -> Vec<Window> {
    let mut w = Vec::new();
    let gic = &host.gic;
    w.push(Window {
        base: gic.dist.base.0,
        size: gic.dist.size,
        what: "the virtual GIC distributor".into(),
        path: None,
    });
    for rd in &gic.redist {
        w.push(Window {
            base: rd.base.0,
            size: rd.size,
            what: "the virtual GIC redistributors".into(),
            path: None,
        });
    }
    for m in &g.memory {
        w.push(Window {
            base: m.gpa.0,
            size: m.size,
            what: format!("RAM {}", range(m.gpa.0, m.size)),
            path: Some(m.path.clone()),
        });
    }
    if let Some(u) = &g.vuart {
        w.push(Window {
            base: u.gpa.0,
            size: VUART_SIZE,
            what: format!("the emulated UART at {:#x}", u.gpa.0),
            path: Some(u.path.clone()),
        });
    }
    for pt in pts {
        for reg in &pt.regions {
            let what = format!("the pass-through window {}", range(reg.gpa.0, reg.size));
            w.push(Window { base: reg.gpa.0, size: reg.size, what, path: Some(pt.path.clone()) });
        }
    }
    w
}

fn check_layout(wins: &[Window], who: Who<'_>, r: &mut Report) {
    for (j, b) in wins.iter().enumerate() {
        let Some(path) = &b.path else { continue };
        if b.base.checked_add(b.size).is_none_or(|end| end > GUEST_IPA_LIMIT) {
            let msg = format!(
                "{} ends past the guest-physical address space, which stops at {GUEST_IPA_LIMIT:#x} (512 GiB)",
                b.what
            );
            r.error(who, path, msg, "stage 2 translates 39-bit guest-physical addresses: choose a guest-physical-addr below 0x8000000000 for the whole window");
            continue;
        }
        let hb = HostRegion::new(b.base, b.size);
        for a in wins.iter().take(j) {
            if a.size == 0 || b.size == 0 || !HostRegion::new(a.base, a.size).overlaps(&hb) {
                continue;
            }
            let other = match &a.path {
                Some(p) if p == path => continue,
                Some(p) => format!("{} of {p}", a.what),
                None => a.what.clone(),
            };
            let msg = format!("{} overlaps {other} (guest-physical)", b.what);
            r.error(who, path, msg, "guest-physical windows of one guest must not overlap: move one of them (the virtual GIC sits at the host GIC's addresses)");
        }
    }
}

fn use_guest_irq(irq: u32, path: &str, used: &mut Vec<(u32, String)>, who: Who<'_>, r: &mut Report) {
    if IntidClass::of(irq) != IntidClass::Spi {
        r.error(who, path, format!("guest INTID {irq} is not a shared peripheral interrupt"), SPI_HINT);
    } else if irq > MAX_GUEST_INTID {
        let msg = format!(
            "guest INTID {irq} is beyond the virtual GIC, which implements {GUEST_SPIS} SPIs (INTID 32 to {MAX_GUEST_INTID})"
        );
        r.error(who, path, msg, SPI_HINT);
    } else if let Some((_, first)) = used.iter().find(|(i, _)| *i == irq) {
        let msg = format!("guest INTID {irq} is already used by {first}");
        r.error(who, path, msg, "each guest interrupt has one source: pick a free SPI (32 to 255)");
    } else {
        used.push((irq, path.into()));
    }
}

fn check_irqs(g: &RawGuest, pts: &[&PassthroughConfig], who: Who<'_>, r: &mut Report) {
    let mut guest_used: Vec<(u32, String)> = Vec::new();
    let mut host_used: Vec<(u32, &str)> = Vec::new();
    if let Some(u) = &g.vuart {
        use_guest_irq(u.irq.raw(), &u.path, &mut guest_used, who, r);
    }
    for pt in pts {
        for route in &pt.irqs {
            use_guest_irq(route.guest.raw(), &pt.path, &mut guest_used, who, r);
            if let Some((_, first)) = host_used.iter().find(|(i, _)| *i == route.host.raw()) {
                let msg =
                    format!("host INTID {} is already forwarded to this guest by {first}", route.host.raw());
                r.error(who, &pt.path, msg, "forward each host interrupt once");
            } else {
                host_used.push((route.host.raw(), &pt.path));
            }
        }
    }
}

fn check_images(g: &RawGuest, who: Who<'_>, bundle: &[&str], r: &mut Report) {
    let images = [("kernel", &g.kernel), ("initrd", &g.initrd), ("dtb", &g.dtb)];
    for (prop, name) in images {
        let Some(name) = name else { continue };
        if !bundle.contains(&name.as_str()) {
            let mut files: Vec<&str> = bundle.iter().copied().take(8).collect();
            if bundle.len() > 8 {
                files.push("...");
            }
            let hint = format!(
                "add the file to the boot bundle or fix the name (bundle files: {})",
                if files.is_empty() { "none".into() } else { files.join(", ") }
            );
            r.error(who, &g.path, format!("{prop} \"{name}\" is not in the boot bundle"), &hint);
        }
    }
}

/// Checks one guest on its own. Always returns the typed guest (the caller
/// drops it if the report rejected it).
pub(crate) fn check_guest(
    host: &HostPlatform,
    g: &RawGuest,
    who: Who<'_>,
    bundle: &[&str],
    r: &mut Report,
) -> GuestConfig {
    let affinity = check_vcpus(host, g, who, r);
    check_memory(host, g, who, r);
    if let Some(u) = &g.vuart {
        if !aligned(u.gpa.0) {
            r.error(
                who,
                &u.path,
                format!("guest-physical-addr {:#x} is not 4 KiB aligned", u.gpa.0),
                ALIGN_HINT,
            );
        }
    }
    let non_identity = g.memory.iter().find(|m| !m.identity).map(|m| m.path.as_str());
    let pts: Vec<_> = g.passthrough.iter().filter_map(|pt| resolve(host, pt, who, non_identity, r)).collect();
    let scmi_channel = crate::scmi::channel(g.scmi_channel, &pts, &g.path, who, r);
    let pci = crate::pcifn::virtual_bridge(g, &pts, who, r);
    let mut wins = windows(host, g, &pts);
    if let Some(v) = &pci {
        let (ecam, (base, size)) = (v.ecam.0, (v.window.0 .0, v.window.1));
        let what =
            format!("the virtual PCIe ECAM {} (pci-ecam)", range(ecam, crate::pcifn::VIRTUAL_ECAM_SIZE));
        wins.push(Window {
            base: ecam,
            size: crate::pcifn::VIRTUAL_ECAM_SIZE,
            what,
            path: Some(g.path.clone()),
        });
        let what = format!("the PCIe BAR window {} (pci-window)", range(base, size));
        wins.push(Window { base, size, what, path: Some(g.path.clone()) });
    }
    if let Some(base) = scmi_channel {
        // Named for the guest node, whose scmi-channel-addr moves it.
        let what = format!("the SCMI channel at {base:#x} (scmi-channel-addr)");
        wins.push(Window { base, size: crate::scmi::CHANNEL_SIZE, what, path: Some(g.path.clone()) });
    }
    check_layout(&wins, who, r);
    let unique = check_host_duplicates(&pts, who, r);
    check_irqs(g, &unique, who, r);
    check_images(g, who, bundle, r);
    GuestConfig {
        name: g.name.clone(),
        path: g.path.clone(),
        vcpus: g.vcpus.unwrap_or(0),
        affinity,
        memory: g.memory.clone(),
        kernel: g.kernel.clone(),
        initrd: g.initrd.clone(),
        dtb: g.dtb.clone(),
        bootargs: g.bootargs.clone(),
        vuart: g.vuart.clone(),
        passthrough: pts,
        scmi_channel: scmi_channel.map(ferrovisor_types::GuestPhysAddr),
        manual_start: g.manual_start,
        pci,
    }
}

/// Same-guest duplicates of host regions (the same device twice). Returns
/// the pass-throughs that are not duplicates.
fn check_host_duplicates<'p>(
    pts: &'p [PassthroughConfig],
    who: Who<'_>,
    r: &mut Report,
) -> Vec<&'p PassthroughConfig> {
    let mut unique = Vec::new();
    for (j, pt) in pts.iter().enumerate() {
        match pts.iter().take(j).find_map(|o| host_clash(pt, o).map(|shared| (o, shared))) {
            Some((o, shared)) => {
                let msg = format!("{} already passed through to this guest by {}", pages(shared), by(o));
                r.error(who, &pt.path, msg, PAGE_HINT);
            }
            None => unique.push(pt),
        }
    }
    unique
}
