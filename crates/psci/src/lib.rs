//! PSCI and SMCCC for guests: call decoding and the per-guest CPU power state machine.
//!
//! A guest issues PSCI 1.1 and SMCCC 1.1 calls with HVC or SMC (the
//! hypervisor traps SMC with HCR_EL2.TSC). [`decode`] turns the caller's
//! x0..x3 into a [`Call`]; [`handle`] decides what to do about it for the
//! calling guest alone and returns an [`Action`] that the hypervisor carries
//! out. This crate has no side effects: CPU_ON starts another vCPU of the
//! *same* guest, and SYSTEM_OFF / SYSTEM_RESET act on the calling guest only,
//! never on the machine.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use ferrovisor_types::VcpuId;
mod handle;

pub use handle::{handle, vcpu_by_mpidr, Action, GuestCpus, VcpuPower};

/// PSCI and SMCCC function identifiers (the value of w0).
pub mod fid {
    /// PSCI_VERSION.
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    /// CPU_SUSPEND, SMC32 convention.
    pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
    /// CPU_SUSPEND, SMC64 convention.
    pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
    /// CPU_OFF.
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// CPU_ON, SMC32 convention.
    pub const CPU_ON_32: u32 = 0x8400_0003;
    /// CPU_ON, SMC64 convention.
    pub const CPU_ON_64: u32 = 0xc400_0003;
    /// AFFINITY_INFO, SMC32 convention.
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    /// AFFINITY_INFO, SMC64 convention.
    pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
    /// MIGRATE_INFO_TYPE.
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    /// SYSTEM_OFF.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// SYSTEM_RESET.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// PSCI_FEATURES.
    pub const PSCI_FEATURES: u32 = 0x8400_000a;
    /// SYSTEM_RESET2, SMC32 convention.
    pub const SYSTEM_RESET2_32: u32 = 0x8400_0012;
    /// SYSTEM_RESET2, SMC64 convention.
    pub const SYSTEM_RESET2_64: u32 = 0xc400_0012;
    /// SMCCC_VERSION.
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    /// SMCCC_ARCH_FEATURES.
    pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
    /// SMCCC_ARCH_WORKAROUND_1 (Spectre v2 branch predictor invalidation).
    pub const SMCCC_ARCH_WORKAROUND_1: u32 = 0x8000_8000;
    /// SMCCC_ARCH_WORKAROUND_2 (Spectre v4 / SSBD).
    pub const SMCCC_ARCH_WORKAROUND_2: u32 = 0x8000_7fff;
    /// SMCCC_ARCH_WORKAROUND_3 (Spectre-BHB).
    pub const SMCCC_ARCH_WORKAROUND_3: u32 = 0x8000_3fff;

    /// Bit 30 of a function ID: set for the SMC64 calling convention.
    pub const SMC64_BIT: u32 = 1 << 30;

    /// Every function [`crate::handle`] implements (answered 0 by
    /// PSCI_FEATURES). SMCCC_ARCH_FEATURES is discovered through
    /// SMCCC_VERSION, not PSCI_FEATURES, and is not listed.
    pub const IMPLEMENTED: &[u32] = &[
        PSCI_VERSION,
        CPU_SUSPEND_32,
        CPU_SUSPEND_64,
        CPU_OFF,
        CPU_ON_32,
        CPU_ON_64,
        AFFINITY_INFO_32,
        AFFINITY_INFO_64,
        MIGRATE_INFO_TYPE,
        SYSTEM_OFF,
        SYSTEM_RESET,
        PSCI_FEATURES,
        SYSTEM_RESET2_32,
        SYSTEM_RESET2_64,
        SMCCC_VERSION,
    ];
}

/// PSCI return codes. They are returned in x0 sign-extended: `code as u64`.
pub mod ret {
    /// The call succeeded.
    pub const SUCCESS: i64 = 0;
    /// The function is not implemented.
    pub const NOT_SUPPORTED: i64 = -1;
    /// An argument is invalid (for example an unknown target MPIDR).
    pub const INVALID_PARAMETERS: i64 = -2;
    /// The call is not allowed.
    pub const DENIED: i64 = -3;
    /// CPU_ON: the target is already on.
    pub const ALREADY_ON: i64 = -4;
    /// CPU_ON: the target is already being turned on.
    pub const ON_PENDING: i64 = -5;
    /// The implementation failed internally.
    pub const INTERNAL_FAILURE: i64 = -6;
    /// The target is not present.
    pub const NOT_PRESENT: i64 = -7;
    /// The target is disabled.
    pub const DISABLED: i64 = -8;
    /// CPU_ON / CPU_SUSPEND: the entry point address is invalid.
    pub const INVALID_ADDRESS: i64 = -9;
}

/// PSCI version implemented: 1.1 (major in bits `[30:16]`, minor in `[15:0]`).
pub const PSCI_VERSION_1_1: u64 = 0x0001_0001;

/// SMCCC version implemented: 1.1.
pub const SMCCC_VERSION_1_1: u64 = 0x0001_0001;

/// MIGRATE_INFO_TYPE answer: no Trusted OS, or one that needs no migration.
pub const MIGRATE_INFO_NO_TRUSTED_OS: u64 = 2;

/// A decoded PSCI or SMCCC call. Arguments of SMC32 calls are already
/// truncated to 32 bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Call {
    /// PSCI_VERSION.
    Version,
    /// CPU_SUSPEND.
    CpuSuspend {
        /// Requested power state (a 32-bit parameter in both conventions).
        power_state: u64,
        /// Resume address after a powerdown state.
        entry: u64,
        /// Value for x0 at `entry`.
        context: u64,
    },
    /// CPU_OFF: power down the calling vCPU.
    CpuOff,
    /// CPU_ON: start another vCPU.
    CpuOn {
        /// MPIDR of the vCPU to start.
        target: u64,
        /// Its first instruction's address.
        entry: u64,
        /// Value for its x0.
        context: u64,
    },
    /// AFFINITY_INFO: power state of a vCPU.
    AffinityInfo {
        /// MPIDR of the vCPU.
        target: u64,
        /// Lowest affinity level of interest; only 0 is supported.
        lowest_level: u64,
    },
    /// MIGRATE_INFO_TYPE.
    MigrateInfoType,
    /// SYSTEM_OFF: stop the calling guest.
    SystemOff,
    /// SYSTEM_RESET: reset the calling guest.
    SystemReset,
    /// SYSTEM_RESET2.
    SystemReset2 {
        /// Reset type: bit 31 set for vendor-specific types; architectural
        /// type 0 is a warm reset.
        reset_type: u32,
        /// Vendor-specific cookie.
        cookie: u64,
    },
    /// PSCI_FEATURES: whether a function is implemented.
    Features {
        /// The function asked about.
        fid: u32,
    },
    /// SMCCC_VERSION.
    SmcccVersion,
    /// SMCCC_ARCH_FEATURES.
    SmcccArchFeatures {
        /// The architectural function asked about.
        fid: u32,
    },
    /// Any other function ID, including unimplemented PSCI functions and
    /// SMC64 forms of functions that only have an SMC32 form.
    Unknown {
        /// The function ID (w0).
        fid: u32,
    },
}

impl Call {
    /// Whether the call only reads state: [`handle`] answers it with
    /// [`Action::Return`] and changes nothing, so a hypervisor may answer it
    /// on its fastest exit path.
    pub fn is_query(&self) -> bool {
        matches!(
            self,
            Call::Version
                | Call::SmcccVersion
                | Call::Features { .. }
                | Call::SmcccArchFeatures { .. }
                | Call::AffinityInfo { .. }
                | Call::MigrateInfoType
                | Call::Unknown { .. }
        )
    }
}

/// Decodes a call from the caller's x0..x3. The function ID is w0 (the top
/// half of x0 is ignored); for SMC32 function IDs (bit 30 clear) the
/// arguments are truncated to 32 bits.
pub fn decode(regs: &[u64; 4]) -> Call {
    let fid = regs[0] as u32;
    let arg_mask = if fid & fid::SMC64_BIT != 0 { u64::MAX } else { 0xffff_ffff };
    let [_, a1, a2, a3] = regs.map(|r| r & arg_mask);
    match fid {
        fid::PSCI_VERSION => Call::Version,
        fid::CPU_SUSPEND_32 | fid::CPU_SUSPEND_64 => {
            Call::CpuSuspend { power_state: a1 & 0xffff_ffff, entry: a2, context: a3 }
        }
        fid::CPU_OFF => Call::CpuOff,
        fid::CPU_ON_32 | fid::CPU_ON_64 => Call::CpuOn { target: a1, entry: a2, context: a3 },
        fid::AFFINITY_INFO_32 | fid::AFFINITY_INFO_64 => Call::AffinityInfo { target: a1, lowest_level: a2 },
        fid::MIGRATE_INFO_TYPE => Call::MigrateInfoType,
        fid::SYSTEM_OFF => Call::SystemOff,
        fid::SYSTEM_RESET => Call::SystemReset,
        fid::SYSTEM_RESET2_32 | fid::SYSTEM_RESET2_64 => {
            Call::SystemReset2 { reset_type: a1 as u32, cookie: a2 }
        }
        fid::PSCI_FEATURES => Call::Features { fid: a1 as u32 },
        fid::SMCCC_VERSION => Call::SmcccVersion,
        fid::SMCCC_ARCH_FEATURES => Call::SmcccArchFeatures { fid: a1 as u32 },
        _ => Call::Unknown { fid },
    }
}

/// The affinity fields of an MPIDR: Aff3 (bits `[39:32]`) and Aff2..Aff0
/// (bits `[23:0]`).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// The MPIDR_EL1 value (VMPIDR_EL2) guest vCPU `vcpu` sees.
///
/// Bit 31 is RES1, U (bit 30) and MT (bit 24) are 0. Aff0 is the vCPU index
/// (a [`VcpuId`] is below 16, which GICv3 SGI target lists reach without
/// range selectors); Aff1..Aff3 are 0.
pub const fn vmpidr(vcpu: VcpuId) -> u64 {
    (1 << 31) | vcpu.index() as u64
}
