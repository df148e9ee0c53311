//! The host PCIe host bridge's configuration space (ECAM), bus 0: the
//! hypervisor's access to its functions' config registers, for
//! enumeration, BAR assignment and the guests' virtual host bridges
//! (`core::pci`). Only the first bus's 1 MiB is used (functions behind
//! bridges are not supported).

use super::mmio::MmioWindow;
use crate::arch::aarch64::mmu;
use ferrovisor_pci::{Bdf, ConfigSpace};
use ferrovisor_types::HostRegion;

/// Bytes of ECAM per bus.
const BUS_SIZE: usize = 1 << 20;

/// Bus 0's config space.
pub struct Ecam {
    regs: MmioWindow,
}

impl Ecam {
    /// Bus 0 of the ECAM window `region`, if it lies in the EL2 device map.
    pub fn new(region: HostRegion) -> Option<Self> {
        let size = BUS_SIZE as u64;
        if region.size < size || !mmu::is_device_memory(region.base.raw(), size) {
            return None;
        }
        // SAFETY: the first MiB of the window is in the EL2 device map
        // (checked above); the host DT gives it to the host bridge, which
        // the validator keeps from every guest (hypervisor_owned).
        Some(Self { regs: unsafe { MmioWindow::new(region.base.raw() as usize, BUS_SIZE) } })
    }

    fn offset(bdf: Bdf, offset: u16) -> Option<usize> {
        (bdf.bus() == 0 && offset < 0x1000).then(|| bdf.ecam_offset(offset & !3) as usize)
    }
}

impl ConfigSpace for Ecam {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        Self::offset(bdf, offset).map_or(u32::MAX, |o| self.regs.read_pure(o))
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(o) = Self::offset(bdf, offset) {
            self.regs.write(o, value);
        }
    }
}
