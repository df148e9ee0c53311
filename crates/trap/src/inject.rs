//! Synchronous exceptions injected into a guest's EL1: vector, PSTATE and syndrome.
//!
//! An injection emulates what the hardware does when it takes an exception to
//! EL1: the interrupted PC and PSTATE go to ELR_EL1 and SPSR_EL1, the syndrome
//! to ESR_EL1 (and the address to FAR_EL1), and execution resumes at the
//! guest's vector with a fresh PSTATE. The hypervisor applies the returned
//! [`Injection`] and then returns to the guest with ERET.
//!
//! The new PSTATE is EL1h with D, A, I and F masked, and every other bit
//! clear: none of the old condition flags or other state is kept. Bits the
//! architecture sets on exception entry depending on SCTLR_EL1 (PAN when
//! SCTLR_EL1.SPAN is 0, SSBS from SCTLR_EL1.DSSBS, BTYPE, ...) are out of
//! scope; a guest that relies on them must have them fixed up by the caller.

use crate::{ec, ESR_IL};

/// PSTATE of the guest on entry to an injected exception: EL1h (M = 0b0101)
/// with D, A, I and F set.
pub const INJECTED_PSTATE: u64 = 0x3c5;

/// Fault status code of a synchronous external abort, not on a table walk.
pub const FSC_SYNC_EXTERNAL: u64 = 0b01_0000;

/// ISS.WnR of a data abort: the access was a write.
const ISS_WNR: u64 = 1 << 6;

/// The guest state an injection is computed from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct El1Context {
    /// The interrupted PC (ELR_EL2).
    pub pc: u64,
    /// The interrupted PSTATE (SPSR_EL2).
    pub pstate: u64,
    /// The guest's vector base (VBAR_EL1).
    pub vbar_el1: u64,
}

/// The register writes that inject an exception into the guest's EL1.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Injection {
    /// New ELR_EL2: the guest's exception vector.
    pub pc: u64,
    /// New SPSR_EL2: [`INJECTED_PSTATE`].
    pub pstate: u64,
    /// New ELR_EL1: the interrupted PC.
    pub elr_el1: u64,
    /// New SPSR_EL1: the interrupted PSTATE.
    pub spsr_el1: u64,
    /// New ESR_EL1: the syndrome of the injected exception.
    pub esr_el1: u64,
    /// New FAR_EL1, or `None` to leave FAR_EL1 alone (it is UNKNOWN for
    /// exceptions that do not report an address).
    pub far_el1: Option<u64>,
}

/// Whether SPSR.M describes AArch32 state (`M[4]`).
const fn is_aarch32(spsr: u64) -> bool {
    spsr & 0x10 != 0
}

/// Whether SPSR.M describes AArch64 EL0 (`M[3:2]` = 0).
const fn is_el0(spsr: u64) -> bool {
    spsr & 0xc == 0
}

/// Whether the exception is taken from EL1 to EL1 (no change of level).
///
/// AArch32 state counts as a lower level: guests are AArch64 at EL1, so
/// AArch32 can only be their EL0. SPSR.M values naming EL2 or EL3 cannot
/// come from a guest; they are treated as EL1.
const fn from_current_el(spsr: u64) -> bool {
    !is_aarch32(spsr) && !is_el0(spsr)
}

/// Offset from VBAR_EL1 of the synchronous exception vector used when an
/// exception is taken to EL1 from the state described by `spsr`:
///
/// * EL1 using SP_EL0 (EL1t, M = 0b0100): `0x000`;
/// * EL1 using SP_EL1 (EL1h, M = 0b0101): `0x200`;
/// * AArch64 EL0: `0x400`;
/// * AArch32 (`M[4]` set): `0x600`.
///
/// SPSR.M values naming EL2 or EL3 are treated like EL1 with their SP
/// selection bit.
pub const fn vector_offset(spsr: u64) -> u64 {
    if is_aarch32(spsr) {
        0x600
    } else if is_el0(spsr) {
        0x400
    } else if spsr & 1 != 0 {
        0x200
    } else {
        0x000
    }
}

/// The abort class `lower` (taken from EL0 or AArch32) or its
/// same-level counterpart `lower + 1` (taken from EL1).
const fn abort_class(ctx: &El1Context, lower: u8) -> u8 {
    if from_current_el(ctx.pstate) {
        lower + 1
    } else {
        lower
    }
}

/// Builds an injection with exception class `ec`, IL set, and the given ISS.
fn inject(ctx: &El1Context, ec: u8, iss: u64, far: Option<u64>) -> Injection {
    Injection {
        // VBAR_EL1[10:0] are RES0.
        pc: (ctx.vbar_el1 & !0x7ff).wrapping_add(vector_offset(ctx.pstate)),
        pstate: INJECTED_PSTATE,
        elr_el1: ctx.pc,
        spsr_el1: ctx.pstate,
        esr_el1: ((ec as u64) << 26) | ESR_IL | iss,
        far_el1: far,
    }
}

/// Injects a synchronous external data abort at address `far`.
///
/// ESR_EL1: EC 0x25 if the guest was at EL1, 0x24 if at EL0; IL set;
/// ISV clear; WnR from `write`; DFSC 0b010000. FAR_EL1 is `far`.
pub fn inject_data_abort(ctx: &El1Context, far: u64, write: bool) -> Injection {
    let wnr = if write { ISS_WNR } else { 0 };
    inject(ctx, abort_class(ctx, ec::DABT_LOW), wnr | FSC_SYNC_EXTERNAL, Some(far))
}

/// Injects a synchronous external instruction abort at address `far`.
///
/// ESR_EL1: EC 0x21 if the guest was at EL1, 0x20 if at EL0; IL set;
/// IFSC 0b010000. FAR_EL1 is `far`.
pub fn inject_instruction_abort(ctx: &El1Context, far: u64) -> Injection {
    inject(ctx, abort_class(ctx, ec::IABT_LOW), FSC_SYNC_EXTERNAL, Some(far))
}

/// Injects an UNDEFINED exception (for example for a trapped system
/// register the hypervisor does not emulate).
///
/// ESR_EL1: EC 0x00, IL set, ISS 0. FAR_EL1 is left alone.
pub fn inject_undefined(ctx: &El1Context) -> Injection {
    inject(ctx, ec::UNKNOWN, 0, None)
}
