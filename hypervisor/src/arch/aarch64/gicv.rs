//! The GICv3 virtual CPU interface (ICH_*_EL2): list registers and the
//! per-vCPU virtual interface state, switched with the vCPU.
//!
//! A guest's ICC_* accesses at EL1 go to the virtual interface (HCR_EL2.IMO
//! set), backed by the list registers the hypervisor fills from the vGIC
//! model before each entry and reads back after each exit.

use core::arch::asm;

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
    let vtr: u64;
    // SAFETY: reading ICH_VTR_EL2 has no side effects.
    unsafe { asm!("mrs {}, ich_vtr_el2", out(reg) vtr, options(nomem, nostack)) };
    ((vtr & 0x1f) as usize + 1).min(MAX_LRS)
}

macro_rules! lr_access {
    ($($n:literal),*) => {
        /// Reads list register `n` (0 beyond the implemented ones is the caller's bug; returns 0).
        pub fn read_lr(n: usize) -> u64 {
            match n {
                $($n => {
                    let v: u64;
                    // SAFETY: reading an ICH_LR register has no side effects.
                    unsafe { asm!(concat!("mrs {}, ich_lr", $n, "_el2"), out(reg) v, options(nomem, nostack)) };
                    v
                })*
                _ => 0,
            }
        }

        /// Writes list register `n` (ignored beyond 15). LR 0, the one the
        /// exit fast path finds free most often, skips the jump table.
        #[inline(always)]
        pub fn write_lr(n: usize, v: u64) {
            if n == 0 {
                // SAFETY: as below.
                unsafe { asm!("msr ich_lr0_el2, {}", in(reg) v, options(nomem, nostack)) };
                return;
            }
            write_lr_indexed(n, v);
        }

        #[inline(never)]
        fn write_lr_indexed(n: usize, v: u64) {
            match n {
                $($n => {
                    // SAFETY: list registers only affect the virtual CPU
                    // interface of the guest running on this CPU.
                    unsafe { asm!(concat!("msr ich_lr", $n, "_el2, {}"), in(reg) v, options(nomem, nostack)) };
                })*
                _ => {}
            }
        }
    };
}

lr_access!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

/// Loads the virtual interface state and turns it on with `hcr`.
pub fn load(state: &VcpuGicState, hcr: u64) {
    // SAFETY: these registers only affect the virtual CPU interface that the
    // guest about to run on this CPU uses.
    unsafe {
        asm!(
            "msr ich_vmcr_el2, {vmcr}",
            "msr ich_ap0r0_el2, {ap0}",
            "msr ich_ap1r0_el2, {ap1}",
            "msr ich_hcr_el2, {hcr}",
            vmcr = in(reg) state.vmcr, ap0 = in(reg) state.ap0r0, ap1 = in(reg) state.ap1r0, hcr = in(reg) hcr,
            options(nomem, nostack),
        )
    };
}

/// List registers whose interrupt the guest completed: empty ones
/// (ICH_ELRSR_EL2) and invalid ones waiting for an EOI maintenance
/// (ICH_EISR_EL2; an LR with the EOI bit does not count as empty).
pub fn completed_lrs() -> u16 {
    let (elrsr, eisr): (u64, u64);
    // SAFETY: reading ICH_ELRSR_EL2 and ICH_EISR_EL2 has no side effects.
    unsafe {
        asm!("mrs {}, ich_elrsr_el2", "mrs {}, ich_eisr_el2", out(reg) elrsr, out(reg) eisr, options(nomem, nostack))
    };
    (elrsr | eisr) as u16
}

/// Sets ICH_HCR_EL2 (e.g. to ask for an underflow maintenance interrupt).
pub fn set_hcr(hcr: u64) {
    // SAFETY: as in `load`.
    unsafe { asm!("msr ich_hcr_el2, {}", in(reg) hcr, options(nomem, nostack)) };
}

/// Saves the virtual interface state and turns it off.
pub fn save(state: &mut VcpuGicState) {
    // SAFETY: reading the virtual interface registers has no side effects;
    // turning it off (ICH_HCR_EL2 = 0) only affects the guest, which is not
    // running.
    unsafe {
        asm!(
            "mrs {vmcr}, ich_vmcr_el2",
            "mrs {ap0}, ich_ap0r0_el2",
            "mrs {ap1}, ich_ap1r0_el2",
            "msr ich_hcr_el2, xzr",
            vmcr = out(reg) state.vmcr, ap0 = out(reg) state.ap0r0, ap1 = out(reg) state.ap1r0,
            options(nomem, nostack),
        )
    };
}

/// Lets EL1 use the system-register interface (ICC_SRE_EL2: SRE, Enable,
/// DFB, DIB), so guests' ICC_* accesses go to their virtual interface.
pub fn enable_for_guests() {
    // SAFETY: ICC_SRE_EL2 only controls how EL2 and EL1 reach the GIC CPU
    // interface; the hypervisor already uses system registers.
    unsafe { asm!("msr icc_sre_el2, {}", "isb", in(reg) 0xfu64, options(nomem, nostack)) };
}

/// CNTV_CTL_EL0.ENABLE: the virtual timer counts towards its compare value.
pub const CNTV_ENABLE: u64 = 1;
/// CNTV_CTL_EL0.IMASK: the virtual timer's interrupt line is held low.
pub const CNTV_IMASK: u64 = 1 << 1;

/// The guest's virtual timer control, as the hardware holds it now.
pub fn read_cntv_ctl() -> u64 {
    let v: u64;
    // SAFETY: reading CNTV_CTL_EL0 has no side effects.
    unsafe { asm!("mrs {}, cntv_ctl_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Sets the loaded guest's virtual timer control.
pub fn write_cntv_ctl(v: u64) {
    // SAFETY: the virtual timer belongs to the loaded guest vCPU.
    unsafe { asm!("msr cntv_ctl_el0, {}", "isb", in(reg) v, options(nomem, nostack)) };
}
