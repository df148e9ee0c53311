//! The system registers that no crate in the tree gives an accessor for,
//! written by hand in one place.
//!
//! Everything else goes through `aarch64-cpu` (11.2): ICH_LR<n>, ICH_HCR,
//! ICH_VMCR, ICH_VTR, ICH_AP0R0/AP1R0, ICC_SRE_EL2, ICC_CTLR_EL1, CNTV_*,
//! the EL1 context, VTCR/VTTBR/VMPIDR, HCR, MDCR, ESR... What it lacks:
//!
//! - ICH_ELRSR_EL2 and ICH_EISR_EL2 (which list registers the guest
//!   completed): read on every exit that refills list registers;
//! - ICC_EOIR1_EL1 and ICC_DIR_EL1 (priority drop and deactivation with
//!   split EOI): `arm-gic` ends an interrupt only through its `IntId`, and
//!   deactivation not at all; the priority drop is on every forwarded
//!   interrupt's path, so it takes the INTID as the GIC gave it;
//! - VPIDR_EL2 (the MIDR a guest reads) and CNTHP_TVAL_EL2 (the EL2 timer's
//!   countdown);
//! - writing ICC_CTLR_EL1 (the crate reads it only): EOImode.
//!
//! Each accessor is one `mrs`/`msr` with `nomem, nostack`, as the crate's are.

use core::arch::asm;

/// ICH_ELRSR_EL2: bit n set when list register n holds no interrupt.
#[inline(always)]
pub fn ich_elrsr_el2() -> u64 {
    let v: u64;
    // SAFETY: reading ICH_ELRSR_EL2 has no side effects.
    unsafe { asm!("mrs {}, ich_elrsr_el2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// ICH_EISR_EL2: bit n set when list register n waits for an EOI
/// maintenance interrupt.
#[inline(always)]
pub fn ich_eisr_el2() -> u64 {
    let v: u64;
    // SAFETY: reading ICH_EISR_EL2 has no side effects.
    unsafe { asm!("mrs {}, ich_eisr_el2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Writes ICC_EOIR1_EL1: drops the running priority of `intid`, which this
/// CPU acknowledged (with EOImode 1 it stays active until deactivated).
#[inline(always)]
pub fn write_icc_eoir1_el1(intid: u64) {
    // SAFETY: ICC_EOIR1_EL1 only changes the state of the physical GIC CPU
    // interface, which the hypervisor owns; no memory is touched.
    unsafe { asm!("msr icc_eoir1_el1, {}", in(reg) intid, options(nomem, nostack, preserves_flags)) };
}

/// Writes ICC_SGI1R_EL1 (sends an SGI) after a DSB that makes this CPU's
/// earlier stores visible to the target before it takes the SGI.
#[inline(always)]
pub fn write_icc_sgi1r_el1(value: u64) {
    // SAFETY: generating an SGI only changes the physical GIC's state, which
    // the hypervisor owns; the barriers order memory without touching it.
    unsafe {
        asm!("dsb ishst", "msr icc_sgi1r_el1, {}", "isb", in(reg) value, options(nostack, preserves_flags))
    };
}

/// Writes ICC_DIR_EL1: deactivates `intid` (EOImode 1), then synchronises.
pub fn write_icc_dir_el1(intid: u64) {
    // SAFETY: as for ICC_EOIR1_EL1; ISB is a context synchronisation event.
    unsafe { asm!("msr icc_dir_el1, {}", "isb", in(reg) intid, options(nomem, nostack, preserves_flags)) };
}

/// Writes VPIDR_EL2: the MIDR_EL1 value EL1 reads.
pub fn write_vpidr_el2(v: u64) {
    // SAFETY: VPIDR_EL2 only changes what EL1 (the guest) reads as MIDR_EL1.
    unsafe { asm!("msr vpidr_el2, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

/// Writes CNTHP_TVAL_EL2: the EL2 physical timer fires `ticks` from now.
pub fn write_cnthp_tval_el2(ticks: u64) {
    // SAFETY: CNTHP_TVAL_EL2 only reprograms this CPU's EL2 timer, which
    // the hypervisor owns.
    unsafe { asm!("msr cnthp_tval_el2, {}", in(reg) ticks, options(nomem, nostack, preserves_flags)) };
}

/// Writes ICC_CTLR_EL1 (the crate's accessor is read-only), then
/// synchronises.
pub fn write_icc_ctlr_el1(v: u64) {
    // SAFETY: ICC_CTLR_EL1 at EL2 configures this CPU's physical GIC CPU
    // interface, which the hypervisor owns; no memory is touched.
    unsafe { asm!("msr icc_ctlr_el1, {}", "isb", in(reg) v, options(nomem, nostack, preserves_flags)) };
}
