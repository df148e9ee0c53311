//! The GICv3 virtual CPU interface (ICH_*_EL2): list registers and the
//! per-vCPU virtual interface state, switched with the vCPU.
//!
//! A guest's ICC_* accesses at EL1 go to the virtual interface (HCR_EL2.IMO
//! set), backed by the list registers the hypervisor fills from the vGIC
//! model before each entry and reads back after each exit. Registers go
//! through `aarch64-cpu`, but ICH_ELRSR_EL2 and ICH_EISR_EL2, which it
//! lacks (`sysreg`).

use super::sysreg;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    Readable, Writeable, CNTV_CTL_EL0, ICC_SRE_EL2, ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_HCR_EL2, ICH_LR0_EL2,
    ICH_LR10_EL2, ICH_LR11_EL2, ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2, ICH_LR15_EL2, ICH_LR1_EL2,
    ICH_LR2_EL2, ICH_LR3_EL2, ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2, ICH_LR9_EL2,
    ICH_VMCR_EL2, ICH_VTR_EL2,
};

/// The most list registers the architecture defines.
pub const MAX_LRS: usize = 16;

/// ICH_HCR_EL2.En: the virtual CPU interface is on.
pub const ICH_HCR_EN: u64 = 1;
/// ICH_HCR_EL2.UIE: maintenance interrupt when at most one LR is valid.
pub const ICH_HCR_UIE: u64 = 1 << 1;

/// Per-vCPU state of the virtual CPU interface besides the LRs.
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuGicState {
    /// ICH_VMCR_EL2: the guest's PMR, BPR and group enables.
    pub vmcr: u64,
    /// ICH_AP0R0_EL2 and ICH_AP1R0_EL2: active priorities (5 priority bits).
    pub ap0r0: u64,
    /// See `ap0r0`.
    pub ap1r0: u64,
}

/// Number of list registers this CPU implements (ICH_VTR_EL2.ListRegs + 1).
pub fn lr_count() -> usize {
    (ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1).min(MAX_LRS)
}

/// The list registers by index: the crate has one type per register, so
/// an index becomes a match.
macro_rules! lr_access {
    ($($n:literal => $reg:ident),* $(,)?) => {
        /// Reads list register `n` (0 beyond the implemented ones is the caller's bug; returns 0).
        pub fn read_lr(n: usize) -> u64 {
            match n {
                $($n => $reg.get(),)*
                _ => 0,
            }
        }

        /// Writes list register `n` (ignored beyond 15). LR 0, the one the
        /// exit fast path finds free most often, skips the jump table.
        #[inline(always)]
        pub fn write_lr(n: usize, v: u64) {
            if n == 0 {
                ICH_LR0_EL2.set(v);
                return;
            }
            write_lr_indexed(n, v);
        }

        #[inline(never)]
        fn write_lr_indexed(n: usize, v: u64) {
            match n {
                $($n => $reg.set(v),)*
                _ => {}
            }
        }
    };
}

lr_access! {
    0 => ICH_LR0_EL2, 1 => ICH_LR1_EL2, 2 => ICH_LR2_EL2, 3 => ICH_LR3_EL2,
    4 => ICH_LR4_EL2, 5 => ICH_LR5_EL2, 6 => ICH_LR6_EL2, 7 => ICH_LR7_EL2,
    8 => ICH_LR8_EL2, 9 => ICH_LR9_EL2, 10 => ICH_LR10_EL2, 11 => ICH_LR11_EL2,
    12 => ICH_LR12_EL2, 13 => ICH_LR13_EL2, 14 => ICH_LR14_EL2, 15 => ICH_LR15_EL2,
}

/// Loads the virtual interface state and turns it on with `hcr`.
pub fn load(state: &VcpuGicState, hcr: u64) {
    ICH_VMCR_EL2.set(state.vmcr);
    ICH_AP0R0_EL2.set(state.ap0r0);
    ICH_AP1R0_EL2.set(state.ap1r0);
    ICH_HCR_EL2.set(hcr);
}

/// List registers whose interrupt the guest completed: empty ones
/// (ICH_ELRSR_EL2) and invalid ones waiting for an EOI maintenance
/// (ICH_EISR_EL2; an LR with the EOI bit does not count as empty).
pub fn completed_lrs() -> u16 {
    (sysreg::ich_elrsr_el2() | sysreg::ich_eisr_el2()) as u16
}

/// Sets ICH_HCR_EL2 (e.g. to ask for an underflow maintenance interrupt).
pub fn set_hcr(hcr: u64) {
    ICH_HCR_EL2.set(hcr);
}

/// Saves the virtual interface state and turns it off (the guest is not
/// running).
pub fn save(state: &mut VcpuGicState) {
    state.vmcr = ICH_VMCR_EL2.get();
    state.ap0r0 = ICH_AP0R0_EL2.get();
    state.ap1r0 = ICH_AP1R0_EL2.get();
    ICH_HCR_EL2.set(0);
}

/// Lets EL1 use the system-register interface (ICC_SRE_EL2: SRE, Enable,
/// DFB, DIB), so guests' ICC_* accesses go to their virtual interface.
pub fn enable_for_guests() {
    ICC_SRE_EL2.write(
        ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::DFB::SET + ICC_SRE_EL2::DIB::SET + ICC_SRE_EL2::ENABLE::SET,
    );
    barrier::isb(barrier::SY);
}

/// CNTV_CTL_EL0.ENABLE: the virtual timer counts towards its compare value.
pub const CNTV_ENABLE: u64 = 1;
/// CNTV_CTL_EL0.IMASK: the virtual timer's interrupt line is held low.
pub const CNTV_IMASK: u64 = 1 << 1;

/// The guest's virtual timer control, as the hardware holds it now.
pub fn read_cntv_ctl() -> u64 {
    CNTV_CTL_EL0.get()
}

/// Sets the loaded guest's virtual timer control.
pub fn write_cntv_ctl(v: u64) {
    CNTV_CTL_EL0.set(v);
    barrier::isb(barrier::SY);
}
