//! A guest's virtual PCIe host bridge: its ECAM window (bus 0, 1 MiB) is
//! emulated, each access trapped and answered by the guest's
//! [`VirtualBridge`] (docs/passthrough.md, "PCIe functions"), which shows
//! only the guest's functions, at their host addresses, with their BARs
//! where the guest's stage 2 maps them, and passes the few registers a
//! guest may change through to the host function.

use super::BUS;
use crate::core::vm::devices::{Caller, Emulated};
use alloc::vec::Vec;
use ferrovisor_config::GuestConfig;
use ferrovisor_pci::{VirtualBar, VirtualBridge, VirtualFunction};
use ferrovisor_sync::Mutex;

/// The emulated ECAM window of one guest.
pub struct VirtualEcam {
    bridge: Mutex<VirtualBridge>,
}

impl VirtualEcam {
    /// The bridge for `config`'s PCIe functions, whose regions
    /// [`super::complete`] filled in (one per BAR, in BAR order).
    pub fn new(config: &GuestConfig) -> Self {
        let bus = BUS.lock();
        let mut functions = Vec::new();
        for pt in &config.passthrough {
            let (Some(f), Some(bus)) = (pt.pci, bus.as_ref()) else { continue };
            let Some(host) = super::find(bus, f.bdf) else { continue };
            let bars = host
                .placed
                .iter()
                .zip(&pt.regions)
                .map(|(p, r)| VirtualBar { bar: p.bar, guest_address: r.gpa.raw() })
                .collect();
            functions.push(VirtualFunction::new(f.bdf, f.bdf, host.function.id, bars, host.function.pin));
        }
        Self { bridge: Mutex::new(VirtualBridge::new(functions)) }
    }
}

impl Emulated for VirtualEcam {
    fn read(&self, _at: &Caller<'_>, offset: u64, size: u8) -> u64 {
        let Ok(offset) = u32::try_from(offset) else { return u64::MAX };
        let mut bus = BUS.lock();
        let Some(bus) = bus.as_mut() else { return u64::MAX };
        u64::from(self.bridge.lock().read(&mut bus.ecam, offset, size))
    }

    fn write(&self, _at: &Caller<'_>, offset: u64, size: u8, value: u64) {
        let Ok(offset) = u32::try_from(offset) else { return };
        let mut bus = BUS.lock();
        let Some(bus) = bus.as_mut() else { return };
        self.bridge.lock().write(&mut bus.ecam, offset, size, value as u32);
    }
}
