//! PCIe functions in the config: the `pci-function` form of a pass-through
//! (host BDF, INTx pin, stream ID behind the SMMU) and the guest's virtual
//! host bridge (`pci-ecam`, `pci-window`). BARs are not known here: the
//! hypervisor enumerates the bus and places them at boot, and rejects a
//! guest whose functions are missing or do not fit (docs/config.md,
//! "PCIe functions").

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use ferrovisor_pci::{Bdf, Pin};
use ferrovisor_types::{GuestIrq, GuestPhysAddr};

use crate::error::{range, Report, Who};
use crate::host::HostPlatform;
use crate::model::{aligned, DmaProtection, IrqRoute, PassthroughConfig, PciFunction, VirtualPci};
use crate::nodes::Ctx;
use crate::parse::{PtSource, RawGuest, RawPassthrough};

/// Size of the virtual ECAM window: bus 0 only.
pub const VIRTUAL_ECAM_SIZE: u64 = 1 << 20;
/// Default guest-physical base of the virtual ECAM (QEMU virt's low ECAM).
pub const DEFAULT_ECAM: u64 = 0x3f00_0000;
/// Default guest-physical BAR window (QEMU virt's 32-bit window).
pub const DEFAULT_WINDOW: (u64, u64) = (0x1000_0000, 0x2eff_0000);
/// Streams the hypervisor's SMMU stream table covers (IDs 0..=255: PCIe bus 0).
pub const MAX_STREAMS: u32 = 256;

const NO_SMMU_HINT: &str = "PCIe functions are passed through behind an SMMUv3 only: run QEMU with iommu=smmuv3 (`cargo xtask run --smmu`)";

/// Reads `pci-function` and `intx` of a pass-through node.
pub(crate) fn parse_source(c: &mut Ctx<'_, '_, '_>) -> Option<PtSource> {
    let text = c.string("pci-function")?;
    let bdf = match Bdf::parse(&text) {
        Ok(b) => b,
        Err(e) => {
            c.error(
                format!("pci-function \"{text}\" is not a PCI address: {e}"),
                "write pci-function = \"00:02.0\"; (bus:device.function of the host, as `lspci` shows it)",
            );
            return None;
        }
    };
    let pin = match c.node.has("intx").then(|| c.string("intx")).flatten().as_deref() {
        None if c.node.has("intx") => return None,
        None | Some("A") => Some(Pin::A),
        Some("B") => Some(Pin::B),
        Some("C") => Some(Pin::C),
        Some("D") => Some(Pin::D),
        Some("none") => None,
        Some(other) => {
            c.error(
                format!("intx \"{other}\" is not a pin"),
                "write intx = \"A\"; (or \"B\", \"C\", \"D\"; \"none\" for a function without INTx)",
            );
            return None;
        }
    };
    Some(PtSource::Pci { bdf, pin })
}

/// Resolves a `pci-function` pass-through against the host bridge.
pub(crate) fn resolve(
    host: &HostPlatform,
    pt: &RawPassthrough,
    bdf: Bdf,
    pin: Option<Pin>,
    who: Who<'_>,
    report: &mut Report,
) -> Option<PassthroughConfig> {
    let mut err = |msg: String, hint: &str| report.error(who, &pt.path, msg, hint);
    let not_here = [
        (
            pt.gpa.is_some(),
            "guest-physical-addr",
            "its BARs appear in the guest's pci-window, placed by the hypervisor",
        ),
        (pt.dma_ack, "dma-unprotected-ack", "the SMMU contains a PCIe function's DMA"),
        (pt.scmi_power.is_some(), "scmi-power-domain", "PCIe functions have no SCMI resources"),
        (pt.scmi_reset.is_some(), "scmi-reset", "PCIe functions have no SCMI resources"),
        (pt.standby, "standby", "moving PCIe functions between guests is not supported yet"),
        (!pt.dma_registers.is_empty(), "dma-registers", "the SMMU contains a PCIe function's DMA"),
    ];
    let mut ok = true;
    for (present, name, why) in not_here {
        if present {
            err(format!("property \"{name}\" is not for a PCIe function: {why}"), &format!("remove {name}"));
            ok = false;
        }
    }
    let Some(bridge) = &host.pci else {
        err(
            format!("pci-function {bdf}: the host DT has no PCIe host bridge (compatible \"pci-host-ecam-generic\")"),
            "pass PCIe functions only on a board with an ECAM host bridge",
        );
        return None;
    };
    if bdf.bus() != 0 {
        err(
            format!("pci-function {bdf} is not on bus 0"),
            "functions behind PCIe bridges or switches are not supported: attach the device to the root bus",
        );
        return None;
    }
    let stream = match bridge.stream(bdf) {
        Some((smmu, sid)) if host.smmus.first().is_some_and(|s| s.path == smmu) => sid,
        Some((smmu, _)) => {
            err(format!("pci-function {bdf}: its DMA goes through {smmu}, which is not the SMMU the hypervisor drives"), NO_SMMU_HINT);
            return None;
        }
        None => {
            err(
                format!(
                    "pci-function {bdf}: no SMMU translates its DMA (the host bridge {} has no iommu-map)",
                    bridge.path
                ),
                NO_SMMU_HINT,
            );
            return None;
        }
    };
    if stream >= MAX_STREAMS {
        err(format!("pci-function {bdf} has stream ID {stream:#x}, beyond the {MAX_STREAMS} streams of the hypervisor's SMMU stream table"), "use a function on bus 0 whose requester ID maps to a stream below 0x100");
        return None;
    }
    let mut irqs = Vec::new();
    if let Some(pin) = pin {
        let Some(spec) = bridge.intx(bdf, pin) else {
            err(
                format!(
                    "pci-function {bdf}: the host bridge's interrupt-map does not route INT{} to a GIC SPI",
                    pin_name(pin)
                ),
                "set intx to the function's pin, or intx = \"none\";",
            );
            return None;
        };
        let host_id = spec.irq.raw();
        let mut guest = host_id;
        for &(h, g) in &pt.irq_map {
            if h == host_id {
                guest = g;
            } else {
                err(format!("interrupt-map: host INTID {h} is not the INTx line of pci-function {bdf} (INT{} is INTID {host_id})", pin_name(pin)), "the first number of the pair must be the function's INTx INTID");
                ok = false;
            }
        }
        match GuestIrq::new(guest) {
            Some(g) => irqs.push(IrqRoute { host: spec.irq, guest: g, trigger: spec.trigger }),
            None => {
                err(
                    format!("interrupt-map: guest INTID {guest} is not a shared peripheral interrupt"),
                    crate::validate::SPI_HINT,
                );
                ok = false;
            }
        }
    } else if !pt.irq_map.is_empty() {
        err(
            format!("interrupt-map on pci-function {bdf}, which has intx = \"none\""),
            "remove interrupt-map, or set intx to the function's pin",
        );
        ok = false;
    }
    ok.then(|| PassthroughConfig {
        name: pt.name.clone(),
        path: pt.path.clone(),
        host_device: None,
        regions: Vec::new(),
        irqs,
        dma: DmaProtection::Iommu,
        compatible: vec!["pci".to_string()],
        dt: None,
        scmi: Default::default(),
        standby: false,
        pci: Some(PciFunction { bdf, pin }),
        streams: vec![stream],
        intercept: None,
    })
}

fn pin_name(pin: Pin) -> char {
    char::from(b'A' + pin.register().saturating_sub(1))
}

/// The guest's virtual host bridge, if it has PCIe functions; checks the
/// functions against each other (one listing per function, function 0 of
/// every device shown, one function per INTx line).
pub(crate) fn virtual_bridge(
    g: &RawGuest,
    pts: &[PassthroughConfig],
    who: Who<'_>,
    r: &mut Report,
) -> Option<VirtualPci> {
    let fns: Vec<(&PassthroughConfig, &PciFunction)> =
        pts.iter().filter_map(|pt| Some((pt, pt.pci.as_ref()?))).collect();
    if fns.is_empty() {
        if g.pci_ecam.is_some() || g.pci_window.is_some() {
            let msg = "pci-ecam and pci-window are ignored: the guest has no pci-function".to_string();
            r.warn(
                who,
                &g.path,
                msg,
                "remove them, or pass a PCIe function with pci-function = \"00:02.0\";",
            );
        }
        return None;
    }
    for (j, (pt, f)) in fns.iter().enumerate() {
        if let Some((o, _)) = fns.iter().take(j).find(|(_, o)| o.bdf == f.bdf) {
            r.error(
                who,
                &pt.path,
                format!("pci-function {} is already passed through to this guest by {}", f.bdf, o.path),
                "list each function once",
            );
        }
        let zero = Bdf::new(f.bdf.bus(), f.bdf.device(), 0);
        if f.bdf.function() != 0 && !fns.iter().any(|(_, o)| Some(o.bdf) == zero) {
            let msg = format!("pci-function {} is shown without function 0 of its device", f.bdf);
            r.error(who, &pt.path, msg, "a guest scans a device only if its function 0 exists: pass function 0 of the device too (the guest sees functions at their host addresses)");
        }
        for route in &pt.irqs {
            if let Some((o, _)) =
                fns.iter().take(j).find(|(o, _)| o.irqs.iter().any(|x| x.host == route.host))
            {
                let msg = format!(
                    "pci-function {} shares INTx line INTID {} with {} in this guest",
                    f.bdf,
                    route.host.raw(),
                    o.path
                );
                r.error(who, &pt.path, msg, "functions of one guest sharing an INTx line are not supported: give one of them intx = \"none\", or use a slot whose INTx line differs");
            }
        }
    }
    let ecam = g.pci_ecam.unwrap_or(DEFAULT_ECAM);
    let (base, size) = g.pci_window.unwrap_or(DEFAULT_WINDOW);
    let mut ok = true;
    if !ecam.is_multiple_of(VIRTUAL_ECAM_SIZE) {
        r.error(
            who,
            &g.path,
            format!("pci-ecam {ecam:#x} is not 1 MiB aligned"),
            "the virtual ECAM is 1 MiB (bus 0): align it to 1 MiB, e.g. pci-ecam = <0x0 0x3f000000>;",
        );
        ok = false;
    }
    if !aligned(base) || !aligned(size) || size == 0 {
        r.error(
            who,
            &g.path,
            format!("pci-window {} is not whole 4 KiB pages", range(base, size)),
            "align base and size to 4 KiB, e.g. pci-window = <0x0 0x10000000 0x0 0x10000000>;",
        );
        ok = false;
    }
    if base.checked_add(size).is_none_or(|end| end > 1 << 32) {
        r.error(
            who,
            &g.path,
            format!("pci-window {} ends above 4 GiB", range(base, size)),
            "BARs are shown as 32-bit memory: keep the window below 4 GiB",
        );
        ok = false;
    }
    if ok && ecam < base + size && base < ecam + VIRTUAL_ECAM_SIZE {
        r.error(who, &g.path, format!("pci-ecam {} overlaps pci-window {}", range(ecam, VIRTUAL_ECAM_SIZE), range(base, size)), "move pci-ecam out of the BAR window (defaults: pci-ecam 0x3f000000, pci-window 0x10000000 + 0x2eff0000)");
        ok = false;
    }
    ok.then(|| VirtualPci {
        ecam: GuestPhysAddr(ecam),
        window: (GuestPhysAddr(base), size),
        path: g.path.clone(),
    })
}
