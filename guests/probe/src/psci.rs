//! SMCCC and PSCI calls through `hvc #0`: QEMU's PSCI conduit when the probe
//! runs natively at EL1, and the hypervisor's for its guests.

use core::arch::asm;

/// SMCCC_VERSION.
pub const SMCCC_VERSION: u32 = 0x8000_0000;
/// PSCI_VERSION.
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// CPU_OFF.
pub const CPU_OFF: u32 = 0x8400_0002;
/// CPU_ON (SMC64).
pub const CPU_ON: u32 = 0xC400_0003;
/// AFFINITY_INFO (SMC64).
pub const AFFINITY_INFO: u32 = 0xC400_0004;
/// SYSTEM_OFF.
pub const SYSTEM_OFF: u32 = 0x8400_0008;
/// SYSTEM_RESET.
pub const SYSTEM_RESET: u32 = 0x8400_0009;
/// PSCI_FEATURES.
pub const PSCI_FEATURES: u32 = 0x8400_000A;

/// AFFINITY_INFO: the CPU is off.
pub const AFFINITY_OFF: i64 = 1;

/// Calls function `fid` with three arguments; returns w0 sign-extended (every
/// PSCI and SMCCC function used here returns an int32).
pub fn call(fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let r: u64;
    // SAFETY: an SMCCC call through the HVC conduit; SMCCC 1.0 lets the callee
    // clobber x0-x17, all declared here. The call may power this CPU off
    // (CPU_OFF, SYSTEM_OFF), which is what the caller asked for.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") u64::from(fid) => r,
            inout("x1") a1 => _,
            inout("x2") a2 => _,
            inout("x3") a3 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    i64::from(r as u32 as i32)
}

/// A PSCI error code's name.
pub fn error_name(code: i64) -> &'static str {
    match code {
        0 => "SUCCESS",
        -1 => "NOT_SUPPORTED",
        -2 => "INVALID_PARAMETERS",
        -3 => "DENIED",
        -4 => "ALREADY_ON",
        -5 => "ON_PENDING",
        -6 => "INTERNAL_FAILURE",
        -7 => "NOT_PRESENT",
        -8 => "DISABLED",
        -9 => "INVALID_ADDRESS",
        _ => "unknown",
    }
}

/// A version word (major << 16 | minor) as `major.minor`.
#[derive(Clone, Copy)]
pub struct Version(pub u32);

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.0 >> 16, self.0 & 0xffff)
    }
}
