//! CPU load: `spin=N` (CPU bound) and `yield=N` (WFI, trapped by the
//! hypervisor). Both label their line with the bare test name.

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
