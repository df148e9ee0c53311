//! The generic timer: the system counter and the EL2 physical timer (CNTHP).

use aarch64_cpu::registers::{Readable, Writeable, CNTFRQ_EL0, CNTHP_CTL_EL2, CNTPCT_EL0};

/// Counter ticks per second.
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// The current count of the system counter.
pub fn now() -> u64 {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTPCT_EL0.get()
}

/// Stops the EL2 physical timer (no interrupt until armed again).
pub fn disarm() {
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR + CNTHP_CTL_EL2::IMASK::SET);
}

/// Arms the EL2 physical timer to fire `ticks` from now, unmasked.
pub fn arm_in(ticks: u64) {
    let tval = ticks.min(i32::MAX as u64);
    super::sysreg::write_cnthp_tval_el2(tval);
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}
