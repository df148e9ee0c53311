//! The environment: native QEMU or a ferrovisor guest, and ferrovisor's own
//! hypercalls (SMCCC vendor-specific hypervisor service range, `hvc #0`).
//!
//! The probe is under ferrovisor if the DT root's `compatible` list holds
//! `"ferrovisor,virt"` (the hypervisor generates that DT; QEMU's native one
//! says `"linux,dummy-virt"`). Decided once by the boot CPU before any test.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

/// The root `compatible` entry of a ferrovisor-generated DT.
pub const FERROVISOR_COMPATIBLE: &str = ferrovisor_hvcall::ROOT_COMPATIBLE;
pub use ferrovisor_hvcall::{Exits, EXITS as FID_EXITS, NOP as FID_NOP, SCHED as FID_SCHED};

static UNDER_FERROVISOR: AtomicBool = AtomicBool::new(false);

/// Whether a `compatible` property value (NUL-separated strings) holds `want`.
pub fn compatible_has(value: &[u8], want: &str) -> bool {
    value.split(|&b| b == 0).any(|s| s == want.as_bytes())
}

/// Records the environment; the boot CPU calls it once, before the tests.
pub fn set_under_ferrovisor(yes: bool) {
    UNDER_FERROVISOR.store(yes, Ordering::SeqCst);
}

/// Whether the probe runs as a ferrovisor guest.
pub fn under_ferrovisor() -> bool {
    UNDER_FERROVISOR.load(Ordering::SeqCst)
}

/// The environment's name for the START line.
pub fn name() -> &'static str {
    if under_ferrovisor() {
        "ferrovisor"
    } else {
        "none"
    }
}

/// One SMCCC 64-bit call through `hvc #0`; returns x0..x3.
pub fn call4(fid: u32) -> [u64; 4] {
    let (x0, x1, x2, x3): (u64, u64, u64, u64);
    // SAFETY: an SMCCC fast call through the HVC conduit; the callee may
    // clobber x0-x17, all declared. `fid` is a query or a no-op (PSCI_VERSION,
    // ferrovisor NOP or EXITS): none changes the probe's state.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") u64::from(fid) => x0,
            inout("x1") 0u64 => x1,
            inout("x2") 0u64 => x2,
            inout("x3") 0u64 => x3,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    [x0, x1, x2, x3]
}

/// An SCMI call on the guest's channel (the command is in the channel
/// page); returns x0 (0: the response is in the channel).
pub fn call_scmi() -> u64 {
    let x0: u64;
    // SAFETY: an SMCCC fast call through the HVC conduit, clobbering
    // x0-x17 (all declared); the hypervisor changes only the channel page,
    // which the caller reads with volatile loads.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") u64::from(ferrovisor_hvcall::SCMI) => x0,
            out("x1") _, out("x2") _, out("x3") _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    x0
}

/// `n` back-to-back calls of `fid` (only x0 set; the result ignored); the
/// first call's x0 is returned.
pub fn call_loop(fid: u32, n: u64) -> u64 {
    let first = call4(fid)[0];
    for _ in 1..n {
        call4(fid);
    }
    first
}

/// Reads the exit counters; None natively, or if the hypervisor answers
/// NOT_SUPPORTED (x0 = -1).
pub fn exits() -> Option<Exits> {
    if !under_ferrovisor() {
        return None;
    }
    let regs = call4(FID_EXITS);
    (regs[0] != u64::MAX && regs[0] as u32 != u32::MAX).then_some(Exits::from_regs(regs))
}

/// How often ferrovisor has scheduled this vCPU in so far, and how many
/// vCPUs share its pCPU; None natively or if the call is not supported.
pub fn sched() -> Option<(u64, u64)> {
    if !under_ferrovisor() {
        return None;
    }
    let s = ferrovisor_hvcall::Sched::from_regs(call4(FID_SCHED));
    (s.loads as u32 != u32::MAX).then_some((s.loads, s.pinned))
}
