//! Emulated devices: every device a guest reaches through trapped loads and
//! stores sits on the guest's one MMIO bus ([`super::Vm::mmio`]) behind the
//! [`Emulated`] trait. The exit handler finds the window, calls the device,
//! and does nothing device-specific itself.
//!
//! A device locks its own state (the bus is fixed once the guest is built
//! and needs no lock), and gets the accessing guest and vCPU, so that it
//! can drive interrupts (`Vm::vgic_update`) or console output itself.
//!
//! Adding a device: one file here with a type implementing [`Emulated`],
//! and one `bus.insert` in `vm::build` (docs/architecture.md, "How to add
//! an emulated device").

pub mod dmaregs;
pub mod scmi;
pub mod vgic;
pub mod vuart;

use super::Vm;
use alloc::boxed::Box;
use ferrovisor_types::VcpuId;
use ferrovisor_vdev::bus::MmioBus;

/// Who accesses an emulated device.
pub struct Caller<'a> {
    /// The guest.
    pub vm: &'a Vm,
    /// The accessing vCPU.
    pub vcpu: VcpuId,
}

/// A device reached through trapped guest loads and stores.
///
/// `offset` is relative to the device's window; `size` is the access width
/// in bytes as the guest issued it (normally 1, 2, 4 or 8; any other value
/// must be survived). Nothing a guest does here may panic.
pub trait Emulated: Send + Sync {
    /// A guest load of `size` bytes at `offset`; the result is
    /// zero-extended.
    fn read(&self, at: &Caller<'_>, offset: u64, size: u8) -> u64;
    /// A guest store of the low `size` bytes of `value` at `offset`.
    fn write(&self, at: &Caller<'_>, offset: u64, size: u8, value: u64);
}

/// A guest's MMIO bus: its emulated devices by guest-physical window.
pub type Bus = MmioBus<Box<dyn Emulated>>;
