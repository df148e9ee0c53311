//! The list registers of the CPU this code runs on, as the vGIC's
//! list-register cache sees them ([`ferrovisor_vgic::LrBank`]).

use super::gicv;
use ferrovisor_vgic::LrBank;

/// This CPU's `ICH_LR<n>_EL2` and the virtual interface's control.
/// Zero-sized: every call goes straight to the registers.
pub struct HwLrs;

impl LrBank for HwLrs {
    #[inline(always)]
    fn count(&self) -> usize {
        gicv::lr_count()
    }

    #[inline(always)]
    fn read(&self, n: usize) -> u64 {
        gicv::read_lr(n)
    }

    #[inline(always)]
    fn write(&mut self, n: usize, value: u64) {
        gicv::write_lr(n, value)
    }

    #[inline(always)]
    fn completed(&self) -> u16 {
        gicv::completed_lrs()
    }

    #[inline(always)]
    fn enable(&mut self, underflow: bool) {
        gicv::set_hcr(gicv::ICH_HCR_EN | if underflow { gicv::ICH_HCR_UIE } else { 0 });
    }
}
