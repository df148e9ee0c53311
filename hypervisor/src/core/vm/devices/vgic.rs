//! The vGIC's distributor and redistributor frames on the MMIO bus: each
//! access goes to the guest's vGIC model ([`ferrovisor_vgic::Vgic`]) with
//! the accessing vCPU; writes go through `Vm::vgic_update`, so the vCPUs
//! hear of the change and its effects (kicks, physical GIC mirroring) are
//! carried out.

use super::{Caller, Emulated};
use ferrovisor_types::GuestPhysAddr;

/// One window of the vGIC (the distributor, or all redistributors),
/// starting at `base`.
pub struct VgicFrames {
    /// Guest-physical base of the window.
    pub base: GuestPhysAddr,
}

impl VgicFrames {
    fn addr(&self, offset: u64) -> GuestPhysAddr {
        GuestPhysAddr(self.base.raw().wrapping_add(offset))
    }
}

impl Emulated for VgicFrames {
    fn read(&self, at: &Caller<'_>, offset: u64, size: u8) -> u64 {
        let addr = self.addr(offset);
        at.vm.vgic.inspect(|g| g.mmio_read(at.vcpu, addr, size))
    }

    fn write(&self, at: &Caller<'_>, offset: u64, size: u8, value: u64) {
        let addr = self.addr(offset);
        at.vm.vgic_update(|g, fx| g.mmio_write(at.vcpu, addr, size, value, fx));
    }
}
