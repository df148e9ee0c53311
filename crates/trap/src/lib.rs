//! Decoding guest traps (ESR_EL2) and computing exceptions injected into guests.
//!
//! [`decode`] turns the syndrome of an exception taken from EL1 or EL0 to EL2
//! into an [`Exit`]; the [`abort`] helpers compute the register values of an
//! emulated MMIO access; the [`inject`] helpers compute the EL1 state a
//! hypervisor writes to make the guest take a synchronous exception; [`watch`]
//! rate-limits the reports of denied accesses and spots a guest stuck
//! re-taking the same fault.
//!
//! Everything here is pure arithmetic on register values: no function touches
//! a system register, and none panics, whatever its input.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod abort;
pub mod inject;
pub mod sysreg;
pub mod watch;

pub use abort::{fault_ipa, read_result, write_value, DataAbort};
pub use inject::{
    inject_data_abort, inject_instruction_abort, inject_undefined, vector_offset, El1Context, Injection,
};
pub use sysreg::{sysreg_key, SysRegAccess};
pub use watch::{Access, FaultSite, FaultWatch, Outcome};

/// Exception class (ESR_ELx.EC) values used by this crate.
pub mod ec {
    /// Unknown reason; also the class of an injected UNDEFINED exception.
    pub const UNKNOWN: u8 = 0x00;
    /// A trapped WFI, WFE, WFIT or WFET instruction.
    pub const WFX: u8 = 0x01;
    /// Access to SVE, Advanced SIMD or floating point trapped by CPTR_EL2.
    pub const FP_ASIMD: u8 = 0x07;
    /// HVC executed in AArch64 state.
    pub const HVC64: u8 = 0x16;
    /// SMC executed in AArch64 state, trapped by HCR_EL2.TSC.
    pub const SMC64: u8 = 0x17;
    /// MSR, MRS or system instruction executed in AArch64 state.
    pub const SYS64: u8 = 0x18;
    /// Instruction abort from a lower exception level.
    pub const IABT_LOW: u8 = 0x20;
    /// Instruction abort without a change of exception level.
    pub const IABT_CUR: u8 = 0x21;
    /// Data abort from a lower exception level.
    pub const DABT_LOW: u8 = 0x24;
    /// Data abort without a change of exception level.
    pub const DABT_CUR: u8 = 0x25;
}

/// ESR_ELx.IL: the trapped instruction was 32 bits long.
pub const ESR_IL: u64 = 1 << 25;

/// Why a guest exited to EL2, decoded from ESR_EL2.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Exit {
    /// Data abort from EL1 or EL0 (EC 0x24), typically a stage-2 fault on
    /// an emulated device. ELR_EL2 points at the faulting instruction.
    DataAbort(DataAbort),
    /// Instruction abort from EL1 or EL0 (EC 0x20). ELR_EL2 points at the
    /// instruction that could not be fetched.
    InstructionAbort {
        /// Instruction fault status code (IFSC, `ISS[5:0]`).
        fsc: u8,
        /// The fault happened on a stage-2 access made by a stage-1 table walk.
        s1ptw: bool,
    },
    /// HVC from AArch64 (EC 0x16). ELR_EL2 already points *after* the HVC.
    Hvc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// SMC from AArch64 trapped by HCR_EL2.TSC (EC 0x17). Unlike HVC,
    /// ELR_EL2 points *at* the SMC: the hypervisor must advance it.
    Smc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// Trapped WFI/WFE (EC 0x01; WFIT/WFET are reported as WFI/WFE).
    /// ELR_EL2 points at the instruction.
    Wfx {
        /// `true` for WFE or WFET, `false` for WFI or WFIT.
        wfe: bool,
    },
    /// Trapped MSR/MRS or system instruction (EC 0x18). ELR_EL2 points at the
    /// instruction.
    SysReg(SysRegAccess),
    /// Trapped floating point or Advanced SIMD access (EC 0x07). ELR_EL2
    /// points at the instruction, which is retried once access is enabled.
    FpAccess,
    /// Any other exception class, undecoded.
    Other {
        /// Exception class, `ESR[31:26]`.
        ec: u8,
        /// Instruction specific syndrome, `ESR[24:0]`.
        iss: u32,
        /// Instruction length bit, `ESR[25]`.
        il: bool,
    },
}

impl Exit {
    /// Whether the hypervisor must advance ELR_EL2 past the trapping
    /// instruction (by [`instruction_length`]) once it has emulated the exit.
    ///
    /// `true` for data aborts, SMC, WFx and system register traps, whose
    /// preferred return address is the trapping instruction itself. `false`
    /// for HVC (the hardware already points past it), instruction aborts and
    /// FP traps (nothing was emulated: the instruction is retried, or an
    /// exception injected) and for [`Exit::Other`], whose handling is unknown.
    pub fn advances_pc(&self) -> bool {
        matches!(self, Exit::DataAbort(_) | Exit::Smc { .. } | Exit::Wfx { .. } | Exit::SysReg(_))
    }
}

/// The exception class, `ESR[31:26]`.
pub const fn esr_ec(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// The instruction specific syndrome, `ESR[24:0]`.
pub const fn esr_iss(esr: u64) -> u32 {
    (esr & 0x01ff_ffff) as u32
}

/// Length in bytes of the trapping instruction: 4 when ESR.IL is set,
/// 2 otherwise (a 16-bit T32 instruction; never for AArch64 guests).
pub const fn instruction_length(esr: u64) -> u64 {
    if esr & ESR_IL != 0 {
        4
    } else {
        2
    }
}

/// `hvc #0` from AArch64 under [`HVC0_MASK`]: EC 0x16 and immediate 0.
const HVC0: u64 = (ec::HVC64 as u64) << 26;
/// Everything but IL and ISS[24:16]: the EC, the immediate (ISS[15:0]) and
/// bits [63:32] (ISS2 and RES0, zero for an HVC). One logical immediate, so
/// the test costs what an EC test alone would (and, compare).
const HVC0_MASK: u64 = !0x03ff_0000;

/// Whether the syndrome is an SMCCC call by HVC (`hvc #0`): the exit fast
/// path's first decision, which answers queries among these and leaves
/// everything else (another immediate included) to the full exit.
#[inline(always)]
pub const fn is_hvc0(esr: u64) -> bool {
    esr & HVC0_MASK == HVC0
}

/// `MSR ICC_SGI1R_EL1, Xt` as ESR_EL2 has it with `Rt` (ISS\[9:5\]) and
/// IL clear: EC 0x18, Op0 3, Op2 5, Op1 0, CRn 12, CRm 11, Direction 0.
const SGI1R_WRITE: u64 = (0x18 << 26) | (3 << 20) | (5 << 17) | (12 << 10) | (11 << 1);
/// The bits of ESR_EL2 that must match [`SGI1R_WRITE`]: EC and ISS\[21:0\]
/// but Rt.
const SGI1R_MASK: u64 = (0x3f << 26) | (0x003f_ffff & !(0x1f << 5));

/// The register `Rt` of a guest write to `ICC_SGI1R_EL1` (an SGI sent to
/// other vCPUs), if the syndrome is one: what the exit fast path handles
/// without decoding the rest.
#[inline(always)]
pub const fn sgi1r_write(esr: u64) -> Option<u8> {
    if esr & SGI1R_MASK == SGI1R_WRITE {
        Some(((esr >> 5) & 0x1f) as u8)
    } else {
        None
    }
}

/// Decodes the ESR_EL2 of a synchronous exception taken from EL1 or EL0.
///
/// Bits above `ESR[31]` (ISS2 and RES0) are ignored. Exception classes this
/// crate does not model come back as [`Exit::Other`].
pub fn decode(esr: u64) -> Exit {
    let ec = esr_ec(esr);
    let iss = esr_iss(esr);
    match ec {
        ec::DABT_LOW => Exit::DataAbort(DataAbort::from_iss(iss)),
        ec::IABT_LOW => Exit::InstructionAbort { fsc: (iss & 0x3f) as u8, s1ptw: iss & (1 << 7) != 0 },
        ec::HVC64 => Exit::Hvc { imm: iss as u16 },
        ec::SMC64 => Exit::Smc { imm: iss as u16 },
        // TI, ISS[1:0]: 0b00 WFI, 0b01 WFE, 0b10 WFIT, 0b11 WFET.
        ec::WFX => Exit::Wfx { wfe: iss & 1 != 0 },
        ec::SYS64 => Exit::SysReg(SysRegAccess::from_iss(iss)),
        ec::FP_ASIMD => Exit::FpAccess,
        _ => Exit::Other { ec, iss, il: esr & ESR_IL != 0 },
    }
}
