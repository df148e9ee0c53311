//! PCIe (docs/passthrough.md, "PCIe functions"): the hypervisor is the
//! firmware here. At boot it enumerates bus 0 behind the host bridge and
//! places every function's memory BARs in the bridge's 32-bit window
//! ([`init`]); each guest's `pci-function` pass-throughs then get their
//! BARs placed in the guest's `pci-window` and mapped by stage 2
//! ([`complete`]), and the guest reaches their config space through its
//! virtual host bridge ([`vecam`]).

pub mod vecam;

use crate::platform::ecam::Ecam;
use alloc::string::String;
use alloc::vec::Vec;
use ferrovisor_config::{GuestConfig, HostPlatform, PciWindow, PtRegion, PAGE_SIZE};
use ferrovisor_pci::{assign_all, enumerate_bus0, Bar, BarAllocator, Bdf, Function, Placed, Window};
use ferrovisor_sync::Mutex;
use ferrovisor_types::{GuestPhysAddr, HostPhysAddr};

/// The host bus: its config space and what was found on it.
pub(crate) struct HostBus {
    pub ecam: Ecam,
    functions: Vec<HostFunction>,
    window: PciWindow,
}

/// A function found at boot, with its BARs as placed.
pub struct HostFunction {
    /// What enumeration found.
    pub function: Function,
    /// Its memory BARs and their PCI addresses (empty if placing failed).
    pub placed: Vec<Placed>,
}

pub(crate) static BUS: Mutex<Option<HostBus>> = Mutex::new(None);

/// Enumerates the host DT's PCIe bus 0 and places its BARs; returns the
/// banner line.
pub fn init(platform: &HostPlatform) -> Option<String> {
    let pci = platform.pci.as_ref()?;
    let Some(window) = pci.mem32 else {
        log::error!("{}: no 32-bit memory window in its ranges: PCIe not used", pci.path);
        return None;
    };
    let Some(mut ecam) = Ecam::new(pci.ecam) else {
        log::error!(
            "{}: ECAM {}+{:#x} is outside the hypervisor's device map: PCIe not used",
            pci.path,
            pci.ecam.base,
            pci.ecam.size
        );
        return None;
    };
    let found = enumerate_bus0(&mut ecam);
    for b in &found.bridges {
        log::warn!("pci: {b} is a bridge: the functions behind it are not used");
    }
    let mut alloc = BarAllocator::new(Window { base: window.pci, size: window.size }, None);
    let mut functions = Vec::new();
    for f in found.functions {
        let placed = match assign_all(&mut ecam, &mut alloc, &f) {
            Ok(p) => p,
            Err(e) => {
                log::error!("pci: {}: its BARs could not be placed: {e}; it cannot be passed through", f.bdf);
                Vec::new()
            }
        };
        for p in &placed {
            log::info!(
                "pci: {} {:04x}:{:04x}: BAR{} {:#x} bytes at {:#x}",
                f.bdf,
                f.id.vendor,
                f.id.device,
                p.bar.index,
                p.bar.size,
                p.address
            );
        }
        functions.push(HostFunction { function: f, placed });
    }
    let list: Vec<String> = functions
        .iter()
        .map(|h| {
            alloc::format!("{} {:04x}:{:04x}", h.function.bdf, h.function.id.vendor, h.function.id.device)
        })
        .collect();
    let line = alloc::format!(
        "{} ({}), bus 0: {}",
        pci.path,
        pci.ecam.base,
        if list.is_empty() { String::from("no functions") } else { list.join(", ") }
    );
    *BUS.lock() = Some(HostBus { ecam, functions, window });
    Some(line)
}

/// Why a guest's PCIe functions cannot be given to it: the config node,
/// the message and a hint.
pub struct Refusal {
    /// Config node path.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: &'static str,
}

/// Fills in the stage-2 windows of `config`'s `pci-function`
/// pass-throughs: each memory BAR placed in the guest's `pci-window` (in
/// BAR order, each at least a page), mapped to where the hypervisor put it.
/// Refuses a function that is not on the bus, has no placed BARs, or whose
/// INTx pin is not the one the config says.
pub fn complete(config: &mut GuestConfig) -> Result<(), Refusal> {
    let Some(vpci) = config.pci.clone() else { return Ok(()) };
    let bus = BUS.lock();
    let mut guest = BarAllocator::new(Window { base: vpci.window.0 .0, size: vpci.window.1 }, None);
    for pt in config.passthrough.iter_mut() {
        let Some(want) = pt.pci else { continue };
        let refuse = |message: String, hint: &'static str| Refusal { path: pt.path.clone(), message, hint };
        let Some(bus) = bus.as_ref() else {
            return Err(refuse(
                alloc::format!(
                    "pci-function {}: the hypervisor has no PCIe bus (see the boot log)",
                    want.bdf
                ),
                "check the pci line of the boot banner",
            ));
        };
        let Some(host) = bus.functions.iter().find(|h| h.function.bdf == want.bdf) else {
            return Err(refuse(alloc::format!("pci-function {}: no such function on the host's bus 0", want.bdf), "check the device's address (QEMU: -device ...,addr=N places it at 00:0N.0); the boot log lists the functions found"));
        };
        if host.function.pin != want.pin {
            let name = |p: Option<ferrovisor_pci::Pin>| {
                p.map_or(String::from("none"), |p| alloc::format!("{}", char::from(b'@' + p.register())))
            };
            return Err(refuse(
                alloc::format!(
                    "pci-function {} uses INTx pin {}, but its config says intx = \"{}\"",
                    want.bdf,
                    name(host.function.pin),
                    name(want.pin)
                ),
                "set intx to the function's pin (intx = \"A\" is the default)",
            ));
        }
        if host.placed.len() != host.function.bars.len() {
            return Err(refuse(alloc::format!("pci-function {}: its BARs were not placed at boot (see the boot log)", want.bdf), "a function with I/O BARs, or more BAR space than the host window holds, cannot be passed through"));
        }
        pt.regions.clear();
        for p in &host.placed {
            let bar = Bar { size: p.bar.size.max(PAGE_SIZE), ..p.bar };
            let gpa = guest.place(&bar).map_err(|e| {
                refuse(
                    alloc::format!(
                        "pci-function {}: BAR{} does not fit in pci-window: {e}",
                        want.bdf,
                        p.bar.index
                    ),
                    "make pci-window larger",
                )
            })?;
            // The allocator places BARs inside the window; checked anyway.
            let hpa = p
                .address
                .checked_sub(bus.window.pci)
                .and_then(|o| bus.window.cpu.checked_add(o))
                .ok_or_else(|| {
                    refuse(
                        alloc::format!(
                            "pci-function {}: BAR{} lies outside the host bridge's window",
                            want.bdf,
                            p.bar.index
                        ),
                        "a hypervisor bug: report it with the boot log",
                    )
                })?;
            pt.regions.push(PtRegion { hpa: HostPhysAddr(hpa), gpa: GuestPhysAddr(gpa), size: bar.size });
        }
    }
    Ok(())
}

/// The host function at `bdf` (for the guests' virtual host bridges).
pub(crate) fn find(bus: &HostBus, bdf: Bdf) -> Option<&HostFunction> {
    bus.functions.iter().find(|h| h.function.bdf == bdf)
}

/// Stops every function of `config` from mastering DMA (guest start and
/// stop: the guest enables it when its driver is ready). Memory decoding
/// stays on: the BARs are the hypervisor's placement.
pub fn quiesce(config: &GuestConfig) {
    let mut bus = BUS.lock();
    let Some(bus) = bus.as_mut() else { return };
    for f in config.passthrough.iter().filter_map(|pt| pt.pci) {
        use ferrovisor_pci::ConfigSpace;
        let cmd = bus.ecam.read32(f.bdf, 0x04);
        // The status half is write-1-to-clear: write zeros there.
        bus.ecam.write32(f.bdf, 0x04, cmd & 0xffff & !0x4);
    }
}
