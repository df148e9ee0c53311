//! `dma-registers`: DMA containment by intercepting a platform device's DMA
//! address registers, for a device no IOMMU protects (docs/config.md,
//! "Intercepted DMA address registers"; the run-time half is
//! [`ferrovisor_vdev::DmaGate`]).
//!
//! Checked here: the triples are well formed, each register lies inside the
//! device's first `reg` region, all of them in one 4 KiB page (the page the
//! hypervisor traps), and the device masters DMA without an SMMU. A
//! virtio-mmio device also reads buffer addresses from descriptors in guest
//! memory, which no register trap sees: it needs `dma-unprotected-ack` and
//! identity memory as well.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ferrovisor_types::{GuestPhysAddr, HostPhysAddr, HostRegion};
use ferrovisor_vdev::DmaRegister;

use crate::devices::DeviceInfo;
use crate::error::{range, Report, Who};
use crate::model::{DmaIntercept, DmaProtection, PtRegion, MAX_DMA_REGISTERS, PAGE_SIZE};
use crate::parse::RawPassthrough;

/// Compatible strings of devices known to read DMA addresses from memory.
const DESCRIPTOR_DEVICES: &[&str] = &["virtio,mmio"];

/// The pass-through being resolved, as `resolve` sees it.
pub(crate) struct Target<'a, 'h> {
    /// Its host devices (the one of `host-device`, or those a raw region covers).
    pub devices: &'a [&'h DeviceInfo],
    /// Its first register region, which the offsets are relative to.
    pub first: Option<HostRegion>,
    /// How messages name it (`host device /virtio_mmio@a003e00`).
    pub what: &'a str,
    /// Its stage-2 windows, if they were valid.
    pub mapped: Option<&'a [PtRegion]>,
}

/// The page the hypervisor would trap for `dma-registers` over `first`
/// (that of the first register), if there is one.
pub(crate) fn trapped_page(first: Option<&HostRegion>, registers: &[[u32; 3]]) -> Option<HostRegion> {
    let low = u64::from(registers.first()?[0]);
    let first = first.filter(|f| low < f.size)?;
    Some(HostRegion::new((first.base.0 + low) & !(PAGE_SIZE - 1), PAGE_SIZE))
}

/// DMA containment of a pass-through with `dma-registers`, and its trapped
/// page; `None` after reporting an error.
pub(crate) fn resolve(
    t: &Target<'_, '_>,
    pt: &RawPassthrough,
    who: Who<'_>,
    non_identity: Option<&str>,
    report: &mut Report,
) -> Option<(DmaProtection, Option<DmaIntercept>)> {
    let masters: Vec<&&DeviceInfo> = t.devices.iter().filter(|d| d.dma).collect();
    if masters.is_empty() {
        let msg = format!("dma-registers is ignored: {} cannot master DMA", t.what);
        report.warn(who, &pt.path, msg, "remove dma-registers");
        return Some((DmaProtection::None, None));
    }
    if masters.iter().all(|d| d.iommu.is_some()) {
        let msg = format!("dma-registers is ignored: an SMMU contains the DMA of {}", t.what);
        report.warn(who, &pt.path, msg, "remove dma-registers");
        return Some((DmaProtection::Iommu, None));
    }
    let mut err = |msg: String, hint: &str| report.error(who, &pt.path, msg, hint);
    let mut ok = true;
    for (present, name) in [(pt.standby, "standby"), (pt.scmi_power.is_some(), "scmi-power-domain")] {
        if present {
            err(
                format!("dma-registers cannot be combined with {name} yet"),
                "the trapped register page stays with the guest that boots with the device: remove one of the two",
            );
            ok = false;
        }
    }
    if pt.dma_registers.len() > MAX_DMA_REGISTERS {
        err(
            format!(
                "dma-registers names {} register pairs; at most {MAX_DMA_REGISTERS}",
                pt.dma_registers.len()
            ),
            "list only the registers that hold DMA addresses",
        );
        ok = false;
    }
    let first = t.first?;
    let mut registers = Vec::new();
    let mut page: Option<u64> = None;
    for (n, &[low, high, length]) in pt.dma_registers.iter().enumerate() {
        let entry = format!("dma-registers entry {} <{low:#x} {high:#x} {length:#x}>", n + 1);
        let (low, high) = (u64::from(low), u64::from(high));
        let inside = |o: u64| o.checked_add(4).is_some_and(|end| end <= first.size);
        let problem = if low % 4 != 0 || high % 4 != 0 {
            Some((
                String::from("offsets must be multiples of 4 (32-bit registers)"),
                "give the byte offsets of the low and high 32-bit halves, e.g. <0x80 0x84 0x1000>",
            ))
        } else if low == high {
            Some((
                String::from("the low and high halves are the same register"),
                "give the offsets of two 32-bit registers, low half first",
            ))
        } else if !inside(low) || !inside(high) {
            Some((
                format!("a register lies outside the device's registers {}", range(first.base.0, first.size)),
                "offsets count from the start of the device's first reg region",
            ))
        } else if length == 0 {
            Some((
                String::from("length 0"),
                "give the bytes the device reads or writes from the address (e.g. a ring's size)",
            ))
        } else {
            None
        };
        if let Some((msg, hint)) = problem {
            err(format!("{entry}: {msg}"), hint);
            ok = false;
            continue;
        }
        let (lo_at, hi_at) = (first.base.0 + low, first.base.0 + high);
        let this_page = lo_at & !(PAGE_SIZE - 1);
        if hi_at & !(PAGE_SIZE - 1) != this_page || page.is_some_and(|p| p != this_page) {
            err(
                format!("{entry}: the DMA registers must all lie in one 4 KiB page"),
                "the hypervisor traps one page per device; registers spread over more pages are not supported",
            );
            ok = false;
            continue;
        }
        page = Some(this_page);
        registers.push(DmaRegister {
            low: lo_at - this_page,
            high: hi_at - this_page,
            length: u64::from(length),
        });
    }
    let descriptors =
        masters.iter().any(|d| d.compatible.iter().any(|c| DESCRIPTOR_DEVICES.contains(&c.as_str())));
    if descriptors && !pt.dma_ack {
        err(
            format!("{} reads buffer addresses from descriptors in guest memory, which dma-registers cannot check", t.what),
            "add dma-unprotected-ack and make all of the guest's memory identity-mapped as well (docs/security.md, \"Intercepted DMA address registers\")",
        );
        ok = false;
    }
    if let (true, Some(mem)) = (pt.dma_ack, non_identity) {
        err(
            format!("dma-unprotected-ack needs all memory of guest {} identity-mapped, but {mem} is not", who.name),
            "a DMA master sees host physical addresses, so guest buffers must sit at GPA == HPA: add identity; to every memory node",
        );
        ok = false;
    }
    let page = page?;
    let gpa = t.mapped?.iter().find_map(|r| {
        let offset = page.checked_sub(r.hpa.raw()).filter(|&o| o < r.size)?;
        r.gpa.raw().checked_add(offset)
    })?;
    if !ok {
        return None;
    }
    if pt.dma_ack {
        let msg = format!(
            "guest {} gets DMA-capable {} with only its DMA address registers checked: addresses it reads from memory are not (acknowledged by dma-unprotected-ack)",
            who.name, t.what
        );
        report.warn(who, &pt.path, msg, crate::resolve::DMA_RISK);
    }
    let window = (first.base.0.max(page) - page, first.end().min(page + PAGE_SIZE).saturating_sub(page));
    let intercept = DmaIntercept { hpa: HostPhysAddr(page), gpa: GuestPhysAddr(gpa), registers, window };
    Some((DmaProtection::Intercepted { acknowledged: pt.dma_ack }, Some(intercept)))
}
