//! Pass-through nodes -> typed [`PassthroughConfig`]: the host side looked up
//! in the host DT, hypervisor-owned devices refused, regions page-checked
//! (a sub-page device gets its whole page), interrupts mapped, DMA
//! containment decided, and the guest DT node of a host device derived.
//!
//! Invariant: a returned `PassthroughConfig` only names host windows that are
//! device MMIO of the host DT (never RAM, never the hypervisor's own devices,
//! not even in the rest of a sub-page device's page).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use ferrovisor_types::{GuestIrq, GuestPhysAddr, HostPhysAddr, HostRegion, IntidClass};

use crate::devices::{DeviceInfo, HostIrqSpec};
use crate::error::{range, Report, Who};
use crate::guestnode::warn_left_out;
use crate::host::HostPlatform;
use crate::model::{aligned, DmaProtection, IrqRoute, PassthroughConfig, PtRegion, PAGE_SIZE};
use crate::pages::{device_windows, dt_node, outside_device, warn_neighbours};
use crate::parse::{PtSource, RawPassthrough};

const OWNED_HINT: &str = "the hypervisor keeps the GIC, its console UART and the SMMUs; a guest gets a virtual GIC, and an emulated UART (compatible = \"ferrovisor,vuart-pl011\")";
const PCI_OWNED_HINT: &str = "the hypervisor enumerates the PCIe bus and keeps its host bridge: pass its functions one by one with pci-function = \"00:02.0\";";
const PAGE_OWNED_HINT: &str = "stage-2 maps whole 4 KiB pages, so a device that shares a page with the GIC, the hypervisor's console UART or an SMMU cannot be passed through";
pub(crate) const DMA_RISK: &str =
    "without an IOMMU the device can DMA anywhere in host memory, including the hypervisor and other guests";

/// The host side of one pass-through before the guest mapping.
struct HostSide<'h> {
    /// The host device of `host-device`; `None` for a raw region.
    device: Option<&'h DeviceInfo>,
    /// The devices whose interrupts and DMA count: the host device, or every
    /// device a raw region covers.
    devices: Vec<&'h DeviceInfo>,
    /// The device's `reg`, or the raw region.
    regions: Vec<HostRegion>,
    /// What stage 2 maps: `regions` rounded out to whole pages.
    windows: Vec<HostRegion>,
    what: String,
}

/// Checks `[base, base + size)` is covered by the `reg` of host devices.
fn covered(devices: &[&DeviceInfo], region: HostRegion) -> bool {
    let mut parts: Vec<(u64, u64)> = devices
        .iter()
        .flat_map(|d| d.regions.iter())
        .filter(|r| r.overlaps(&region))
        .map(|r| (r.base.0.max(region.base.0), r.end().min(region.end())))
        .collect();
    parts.sort_unstable();
    let mut next = region.base.0;
    for (start, end) in parts {
        if start > next {
            return false;
        }
        next = next.max(end);
    }
    next >= region.end()
}

fn host_side<'h>(
    host: &'h HostPlatform,
    pt: &RawPassthrough,
    who: Who<'_>,
    report: &mut Report,
) -> Option<HostSide<'h>> {
    let mut err = |msg: String, hint: &str| report.error(who, &pt.path, msg, hint);
    match &pt.source {
        PtSource::Device(path) => {
            let Some(dev) = host.device(path) else {
                let msg = format!("host device {path} is not a memory-mapped device of the host DT");
                err(msg, "host-device must be the full path of a host DT node with a reg property, e.g. \"/pl031@9010000\" (see `dtc -I dtb -O dts` of the host DTB)");
                return None;
            };
            let what = format!("host device {path}");
            let windows = match device_windows(host, dev) {
                Ok(w) => w,
                Err((msg, hint)) => {
                    err(msg, hint);
                    return None;
                }
            };
            Some(HostSide {
                device: Some(dev),
                devices: alloc::vec![dev],
                regions: dev.regions.clone(),
                windows,
                what,
            })
        }
        PtSource::Raw { hpa, size } => {
            let region = HostRegion::new(*hpa, *size);
            let what = format!("raw region {}", range(*hpa, *size));
            if *size == 0 {
                err(
                    format!("{what} has size 0"),
                    "a raw pass-through region needs a non-zero size, a multiple of 0x1000",
                );
                return None;
            }
            if hpa.checked_add(*size).is_none() {
                err(
                    format!("{what} wraps past the end of the address space"),
                    "check host-physical-addr and size",
                );
                return None;
            }
            if !aligned(*hpa) || !aligned(*size) {
                let msg = if aligned(*hpa) {
                    format!("{what}: size {size:#x} is not a multiple of 4 KiB")
                } else {
                    format!("{what}: host-physical-addr {hpa:#x} is not 4 KiB aligned")
                };
                err(msg, "stage-2 maps whole 4 KiB pages: a raw region starts on a page boundary and is a whole number of pages; to pass a smaller device, name it with host-device");
                return None;
            }
            if host.memory.iter().any(|m| m.overlaps(&region)) {
                let msg = format!("{what} lies in host RAM");
                err(msg, "guest RAM goes in memory nodes; a pass-through region must be device MMIO");
                return None;
            }
            let devices: Vec<&DeviceInfo> = host.devices_overlapping(&region).collect();
            if !covered(&devices, region) {
                let msg = format!("{what} is not a device of the host DT");
                err(msg, "a raw pass-through region must lie inside the reg of host DT devices; check the address against the host DT");
                return None;
            }
            Some(HostSide {
                device: None,
                devices,
                regions: alloc::vec![region],
                windows: alloc::vec![region],
                what,
            })
        }
        // Resolved by `pcifn` before any host side is looked up.
        PtSource::Pci { .. } => None,
    }
}

/// Refuses regions the hypervisor keeps. Returns false if any was hit.
fn check_owned(
    host: &HostPlatform,
    side: &HostSide<'_>,
    pt: &RawPassthrough,
    who: Who<'_>,
    report: &mut Report,
) -> bool {
    let mut seen: Vec<String> = Vec::new();
    for (owner, owned, why) in host.hypervisor_owned() {
        if seen.contains(&owner) || !side.windows.iter().any(|r| r.overlaps(&owned)) {
            continue;
        }
        let (msg, hint) = match (&pt.source, side.device) {
            (PtSource::Device(path), _) if *path == owner => {
                let hint = if why.starts_with("PCIe") { PCI_OWNED_HINT } else { OWNED_HINT };
                (format!("host device {path} is the {why}, owned by the hypervisor"), hint)
            }
            (_, Some(dev)) if outside_device(dev, &owned) => {
                let msg = format!(
                    "the 4 KiB page of {} also holds the {why} ({owner}), owned by the hypervisor",
                    side.what
                );
                (msg, PAGE_OWNED_HINT)
            }
            _ => (format!("{} covers the {why} ({owner}), owned by the hypervisor", side.what), OWNED_HINT),
        };
        report.error(who, &pt.path, msg, hint);
        seen.push(owner);
    }
    seen.is_empty()
}

/// Checks `guest-physical-addr`: the guest address of the first region,
/// which must sit at the same offset in its page as on the host.
fn check_gpa(
    side: &HostSide<'_>,
    pt: &RawPassthrough,
    first: u64,
    who: Who<'_>,
    report: &mut Report,
) -> bool {
    let off = if side.device.is_some() { first % PAGE_SIZE } else { 0 };
    let Some(g) = pt.gpa.filter(|g| g % PAGE_SIZE != off) else {
        return true;
    };
    let valid = (g & !(PAGE_SIZE - 1)) | off;
    let (msg, hint) = if off == 0 {
        let hint = format!("stage-2 maps whole 4 KiB pages: use a multiple of 0x1000, e.g. {valid:#x}");
        (format!("guest-physical-addr {g:#x} is not 4 KiB aligned"), hint)
    } else {
        let msg = format!(
            "guest-physical-addr {g:#x} does not keep the offset {off:#x} that {} ({first:#x}) has in its 4 KiB page",
            side.what
        );
        let hint = format!("guest-physical-addr is the guest address of the device itself, and stage 2 maps its whole page, so it must end in the same 12 bits as the host address: use {valid:#x}");
        (msg, hint)
    };
    report.error(who, &pt.path, msg, &hint);
    false
}

/// Host windows -> guest windows: the first region at `guest-physical-addr`
/// (default: its host address), everything else at the same offset from it
/// as on the host. Returns the windows and the first region's guest address.
fn map_regions(
    side: &HostSide<'_>,
    pt: &RawPassthrough,
    who: Who<'_>,
    report: &mut Report,
) -> Option<(Vec<PtRegion>, u64)> {
    let first = side.regions.first()?.base.0;
    let gpa0 = pt.gpa.unwrap_or(first);
    let mut ok = check_gpa(side, pt, first, who, report);
    let mut out = Vec::new();
    for r in &side.windows {
        if !aligned(r.base.0) || !aligned(r.size) || r.size == 0 {
            let msg = match pt.source {
                PtSource::Device(_) => format!(
                    "{} region {} is not a whole number of 4 KiB pages",
                    side.what,
                    range(r.base.0, r.size)
                ),
                PtSource::Raw { .. } | PtSource::Pci { .. } => {
                    format!("{} is not a whole number of 4 KiB pages", side.what)
                }
            };
            let hint = "stage-2 maps whole pages, so a smaller window would expose its neighbours; pass the whole page through as a raw region (host-physical-addr, size) covering every device in it";
            report.error(who, &pt.path, msg, hint);
            ok = false;
            continue;
        }
        let gpa = if r.base.0 >= first {
            gpa0.checked_add(r.base.0 - first)
        } else {
            gpa0.checked_sub(first - r.base.0)
        };
        match gpa.filter(|g| g.checked_add(r.size).is_some()) {
            Some(g) => {
                out.push(PtRegion { hpa: HostPhysAddr(r.base.0), gpa: GuestPhysAddr(g), size: r.size })
            }
            None => {
                let msg = format!(
                    "guest window for {} does not fit in the guest address space",
                    range(r.base.0, r.size)
                );
                report.error(who, &pt.path, msg, "choose a lower guest-physical-addr");
                ok = false;
            }
        }
    }
    ok.then_some((out, gpa0))
}

/// Device interrupts + `interrupt-map` -> routes.
fn map_irqs(side: &HostSide<'_>, pt: &RawPassthrough, who: Who<'_>, report: &mut Report) -> Vec<IrqRoute> {
    let specs: Vec<HostIrqSpec> = side.devices.iter().flat_map(|d| d.irqs.iter().copied()).collect();
    let names: Vec<&str> = side.devices.iter().map(|d| d.path.as_str()).collect();
    let list: Vec<String> = specs.iter().map(|s| s.irq.raw().to_string()).collect();
    let list = if list.is_empty() { "none".to_string() } else { list.join(", ") };
    let mut routes = Vec::new();
    for (host, guest) in &pt.irq_map {
        match specs.iter().find(|s| s.irq.raw() == *host) {
            Some(s) => match GuestIrq::new(*guest) {
                Some(g) => routes.push(IrqRoute { host: s.irq, guest: g, trigger: s.trigger }),
                None => report.error(
                    who,
                    &pt.path,
                    format!("interrupt-map: guest INTID {guest} is not a shared peripheral interrupt"),
                    crate::validate::SPI_HINT,
                ),
            },
            None => {
                let msg = format!(
                    "interrupt-map: host INTID {host} is not an interrupt of {} (its interrupts: {list})",
                    names.join(", ")
                );
                report.error(who, &pt.path, msg, "the first number of each pair must be one of the device's host interrupts (SPI n in the host DT is INTID 32+n)");
            }
        }
    }
    if let PtSource::Device(_) = pt.source {
        for s in &specs {
            if s.irq.class() != IntidClass::Spi {
                let msg = format!(
                    "{} uses per-CPU interrupt INTID {}, which cannot be passed through",
                    side.what,
                    s.irq.raw()
                );
                report.error(
                    who,
                    &pt.path,
                    msg,
                    "only devices with shared peripheral interrupts (SPIs) can be passed through",
                );
            } else if let Some(guest) =
                GuestIrq::new(s.irq.raw()).filter(|_| !pt.irq_map.iter().any(|(h, _)| *h == s.irq.raw()))
            {
                // Not remapped: the guest sees the host's INTID.
                routes.push(IrqRoute { host: s.irq, guest, trigger: s.trigger });
            }
        }
    }
    routes
}

/// Decides DMA containment (and reports what is missing).
fn dma(
    side: &HostSide<'_>,
    pt: &RawPassthrough,
    who: Who<'_>,
    non_identity: Option<&str>,
    report: &mut Report,
) -> DmaProtection {
    let masters: Vec<&&DeviceInfo> = side.devices.iter().filter(|d| d.dma).collect();
    if masters.is_empty() {
        if pt.dma_ack {
            let msg = format!("dma-unprotected-ack is ignored: {} cannot master DMA", side.what);
            report.warn(who, &pt.path, msg, "remove dma-unprotected-ack");
        }
        return DmaProtection::None;
    }
    if masters.iter().all(|d| d.iommu.is_some()) {
        return DmaProtection::Iommu;
    }
    if !pt.dma_ack {
        let msg = format!("{} can master DMA and no IOMMU protects it", side.what);
        let hint = format!("{DMA_RISK}; to accept the risk add dma-unprotected-ack; and make all of the guest's memory identity-mapped, or pick a device behind an SMMU");
        report.error(who, &pt.path, msg, &hint);
        return DmaProtection::None;
    }
    if let Some(mem) = non_identity {
        let msg = format!(
            "dma-unprotected-ack needs all memory of guest {} identity-mapped, but {mem} is not",
            who.name
        );
        let hint = "a DMA master sees host physical addresses, so guest buffers must sit at GPA == HPA: add identity; to every memory node";
        report.error(who, &pt.path, msg, hint);
        return DmaProtection::None;
    }
    let msg = format!(
        "guest {} gets DMA-capable {} without IOMMU protection (acknowledged by dma-unprotected-ack)",
        who.name, side.what
    );
    report.warn(who, &pt.path, msg, DMA_RISK);
    DmaProtection::UnprotectedAcknowledged
}

/// Resolves one pass-through node. `non_identity` is the path of the guest's
/// first memory region that is not identity mapped, if any.
pub(crate) fn resolve(
    host: &HostPlatform,
    pt: &RawPassthrough,
    who: Who<'_>,
    non_identity: Option<&str>,
    report: &mut Report,
) -> Option<PassthroughConfig> {
    if let PtSource::Pci { bdf, pin } = pt.source {
        return crate::pcifn::resolve(host, pt, bdf, pin, who, report);
    }
    let side = host_side(host, pt, who, report)?;
    if !check_owned(host, &side, pt, who, report) {
        return None;
    }
    if let Some(dev) = side.device {
        // Neighbours in the page of intercepted DMA registers are out of
        // the guest's reach (the trap drops their accesses).
        let trapped = crate::dmaregs::trapped_page(side.regions.first(), &pt.dma_registers);
        let windows: Vec<HostRegion> = side.windows.iter().copied().filter(|w| Some(*w) != trapped).collect();
        warn_neighbours(host, dev, &windows, &pt.path, who, report);
        warn_left_out(dev, &pt.path, who, report);
    }
    let mapped = map_regions(&side, pt, who, report);
    let irqs = map_irqs(&side, pt, who, report);
    let dma = if pt.dma_registers.is_empty() {
        Some((dma(&side, pt, who, non_identity, report), None))
    } else {
        let target = crate::dmaregs::Target {
            devices: &side.devices,
            first: side.regions.first().copied(),
            what: &side.what,
            mapped: mapped.as_ref().map(|(r, _)| r.as_slice()),
        };
        crate::dmaregs::resolve(&target, pt, who, non_identity, report)
    };
    let mut compatible: Vec<String> = Vec::new();
    for c in side.devices.iter().flat_map(|d| d.compatible.iter()) {
        if !compatible.contains(c) {
            compatible.push(c.clone());
        }
    }
    let host_device = match &pt.source {
        PtSource::Device(p) => Some(p.clone()),
        PtSource::Raw { .. } | PtSource::Pci { .. } => None,
    };
    let (regions, gpa0) = mapped?;
    let (dma, intercept) = dma?;
    let dt = match side.device.map(|dev| dt_node(dev, gpa0, &pt.irq_map)) {
        Some(None) => {
            let msg = format!("the registers of {} do not fit in the guest address space", side.what);
            report.error(who, &pt.path, msg, "choose a lower guest-physical-addr");
            return None;
        }
        Some(node) => node,
        None => None,
    };
    let scmi = crate::scmi::resources(
        side.device,
        pt.scmi_power.as_deref(),
        pt.scmi_reset.as_deref(),
        &pt.path,
        who,
        report,
    );
    Some(PassthroughConfig {
        name: pt.name.clone(),
        path: pt.path.clone(),
        host_device,
        regions,
        irqs,
        dma,
        compatible,
        dt,
        scmi,
        standby: pt.standby,
        pci: None,
        streams: if dma == DmaProtection::Iommu { streams(&side) } else { Vec::new() },
        intercept,
    })
}

/// The stream IDs of the devices of an SMMU-protected pass-through.
fn streams(side: &HostSide<'_>) -> Vec<u32> {
    let ranges = side.devices.iter().filter_map(|d| d.iommu.as_ref()).flat_map(|l| l.stream_ids.iter());
    ranges
        .flat_map(|&(first, count)| {
            (0..count.min(crate::pcifn::MAX_STREAMS)).filter_map(move |i| first.checked_add(i))
        })
        .collect()
}
