//! Accesses a hypervisor refuses or only pretends to serve: `faultloop=ADDR,N`
//! (one load re-taking its abort), `fetch=ADDR` (an instruction fetch that
//! aborts), `hvcimm` (an HVC that is not an SMCCC call), `sysreg=N`
//! (reads of a PMU register, which ferrovisor emulates as zero), and
//! `sleep=MS` (time passing without exits, for rate limits to refill).

use super::{parse_u64, report};
use crate::exception::{fault_loop_read32, try_fetch, try_hvc1, FOREVER};
use core::arch::asm;

/// The largest count accepted.
const MAX_COUNT: u64 = 1_000_000_000;

/// `faultloop=ADDR,N`: a 32-bit load from ADDR whose abort the handler
/// returns to unchanged, so that the load takes it N times in a row, and
/// is then skipped; PASS if it aborted exactly N times. `N = 0`: forever,
/// the probe never gets past it (a guest stuck on a fault).
pub fn faultloop(arg: &str) -> bool {
    let test = "faultloop";
    let parsed = arg.split_once(',').and_then(|(a, n)| Some((parse_u64(a)?, parse_u64(n)?)));
    let Some((addr, n)) = parsed.filter(|&(a, n)| a.is_multiple_of(4) && n <= MAX_COUNT) else {
        return report!(test, false, "bad argument '{arg}': want ADDR,N (ADDR 4-byte aligned)");
    };
    if n == 0 {
        crate::out!("faultloop: re-taking the abort at {addr:#x} forever");
    }
    let retries = if n == 0 { FOREVER } else { n - 1 };
    match fault_loop_read32(addr, retries) {
        Ok(v) => report!(test, false, "addr={addr:#x} read value {v:#x}"),
        Err(a) => report!(
            test,
            a.taken == n,
            "addr={addr:#x} n={n} taken={} esr={:#x} far={:#x} pc={:#x}",
            a.taken,
            a.esr,
            a.far,
            a.elr
        ),
    }
}

/// `fetch=ADDR`: branches to ADDR, which must not be executable for the
/// guest; PASS if the fetch aborted at ADDR.
pub fn fetch(test: &str, addr: &str) -> bool {
    let Some(addr) = parse_u64(addr).filter(|a| a.is_multiple_of(4)) else {
        return report!(test, false, "bad address");
    };
    match try_fetch(addr) {
        Ok(()) => report!(test, false, "the code at {addr:#x} ran and returned"),
        Err(a) => {
            let ec = (a.esr >> 26) & 0x3f;
            report!(test, ec == 0x21 && a.elr == addr, "aborted esr={:#x} far={:#x}", a.esr, a.far)
        }
    }
}

/// `hvcimm`: `hvc #1` must raise an undefined-instruction exception at the
/// HVC itself (SMCCC calls use immediate 0; natively, without EL2, every
/// HVC is undefined).
pub fn hvcimm(test: &str) -> bool {
    match try_hvc1() {
        (Ok(()), at) => report!(test, false, "hvc #1 at {at:#x} returned"),
        (Err(e), at) => {
            let ec = (e.esr >> 26) & 0x3f;
            report!(
                test,
                ec == 0 && e.elr == at && e.taken == 1,
                "undefined esr={:#x} elr={:#x} hvc_at={at:#x}",
                e.esr,
                e.elr
            )
        }
    }
}

/// `sysreg=N`: N reads of PMCR_EL0. ferrovisor traps PMU registers and
/// emulates them as read-as-zero (each read is one exit and, at log level
/// debug, one rate-limited note); natively the register reads as it is.
pub fn sysreg(n: &str) -> bool {
    let Some(n) = parse_u64(n).filter(|&n| n <= MAX_COUNT) else {
        return report!("sysreg", false, "bad count {n}");
    };
    let mut last = 0u64;
    for _ in 0..n {
        // SAFETY: reading PMCR_EL0 has no side effects (it traps to EL2
        // under ferrovisor, which answers zero).
        unsafe { asm!("mrs {}, pmcr_el0", out(reg) last, options(nomem, nostack, preserves_flags)) };
    }
    report!("sysreg", true, "n={n} pmcr={last:#x}")
}

/// `sleep=MS`: waits MS milliseconds (at most 60 s) polling the virtual
/// counter, which costs no exits.
pub fn sleep(ms: &str) -> bool {
    let Some(ms) = parse_u64(ms).filter(|&ms| ms <= 60_000) else {
        return report!("sleep", false, "bad duration {ms}");
    };
    let deadline = crate::cpu::deadline_ms(ms);
    while !crate::cpu::expired(deadline) {
        core::hint::spin_loop();
    }
    report!("sleep", true, "ms={ms}")
}
