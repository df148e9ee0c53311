//! Load: `spin=N` (CPU bound), `yield=N` (WFI, trapped by the hypervisor)
//! and `print=N` (console output). Each labels its line with the bare test
//! name.

use super::{parse_u64, report};

/// The largest N accepted (millions).
const MAX_MILLIONS: u64 = 1_000_000;

/// `spin=N`: N million steps of a 64-bit LCG.
pub fn spin(n: &str) -> bool {
    let Some(n) = parse_u64(n).filter(|&n| n <= MAX_MILLIONS) else {
        return report!("spin", false, "bad count {n}");
    };
    let mut x: u64 = core::hint::black_box(1);
    for _ in 0..n * 1_000_000 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    }
    report!("spin", true, "n={n} result={x:#x}")
}

/// `yield=N`: N WFIs with interrupts masked. On a pCPU it shares with other
/// vCPUs the hypervisor traps WFI and returns; natively, or on a dedicated
/// pCPU (where WFI does not trap), a WFI with nothing pending may sleep
/// forever, so this test is for shared pCPUs only.
pub fn yield_cpu(n: &str) -> bool {
    let Some(n) = parse_u64(n).filter(|&n| n <= MAX_MILLIONS * 1_000_000) else {
        return report!("yield", false, "bad count {n}");
    };
    for _ in 0..n {
        crate::cpu::wfi();
    }
    report!("yield", true, "n={n}")
}

/// The text of every `print` line after its number: fixed, so that a reader
/// can tell a whole line from a broken one.
pub const PRINT_TEXT: &str = "abcdefghijklmnopqrstuvwxyz0123456789 end";

/// `print=N`: N numbered lines `print <i> <PRINT_TEXT>`, back to back, or
/// with `gap_us` each followed by a sleep of that many microseconds (WFI,
/// woken by the virtual timer); `print=0` prints for ever (a guest that
/// keeps the console busy while the shell is used).
pub fn print(n: &str, gap_us: u64) -> bool {
    let Some(n) = parse_u64(n) else {
        return report!("print", false, "bad count {n}");
    };
    if gap_us > 0 {
        if let Err(e) = crate::irq::setup() {
            return report!("print", false, "cannot sleep between lines: {e}");
        }
    }
    let gap = crate::cpu::frequency().saturating_mul(gap_us) / 1_000_000;
    let mut i: u64 = 0;
    while n == 0 || i < n {
        i = i.wrapping_add(1);
        crate::out!("print {i} {PRINT_TEXT}");
        if gap > 0 {
            let until = crate::cpu::counter().saturating_add(gap);
            crate::irq::wait(until, crate::irq::WaitMode::Wfi, || false);
        }
    }
    report!("print", true, "n={n}")
}
