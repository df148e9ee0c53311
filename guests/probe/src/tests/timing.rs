//! Timed loops and exit counters: `mmioread=ADDR,N`, `hvcloop=N`, `exits`.
//!
//! Times are generic-counter ticks (CNTVCT_EL0, after an ISB) around the
//! loop only. Under ferrovisor `mmioread` also reads the vCPU's exit
//! counters (hypercall 0xC600_0001) before and after the loop and reports
//! the differences; natively they are `n/a`.

use super::{parse_u64, report, Env};
use crate::exception::try_read32;
use crate::{cpu, hyp, psci};
use core::arch::asm;

/// The largest loop count accepted.
const MAX_COUNT: u64 = 1_000_000_000;

fn parse_count(s: &str) -> Option<u64> {
    parse_u64(s).filter(|n| (1..=MAX_COUNT).contains(n))
}

/// An optional count, `n/a` when absent.
struct Maybe(Option<u64>);

impl core::fmt::Display for Maybe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("n/a"),
        }
    }
}

/// `mmioread=ADDR,N`: N 32-bit reads of ADDR in a tight loop. Under
/// ferrovisor with `probe.expect_exits=E`, FAILs unless the loop caused
/// exactly E data-abort exits.
pub fn mmioread(env: &Env, arg: &str) -> bool {
    let test = "mmioread";
    let (addr, n) = match arg.split_once(',') {
        Some((a, n)) => (parse_u64(a), parse_count(n)),
        None => (parse_u64(arg), None),
    };
    let (Some(addr), Some(n)) = (addr, n) else {
        return report!(test, false, "bad arguments '{arg}' (want ADDR,N with 1 <= N <= {MAX_COUNT})");
    };
    if !addr.is_multiple_of(4) {
        return report!(test, false, "address {addr:#x} not 4-byte aligned");
    }
    // One read with the catcher first, so an unreadable address FAILs
    // instead of ending the probe.
    if let Err(a) = try_read32(addr) {
        return report!(test, false, "addr={addr:#x} aborted esr={:#x} far={:#x}", a.esr, a.far);
    }
    let before = hyp::exits();
    let t0 = cpu::counter();
    // SAFETY: `addr` was just read without an abort; it is identity mapped
    // (normal or device memory). Reading device registers may have side
    // effects, which is what the caller asked for. A plain `ldr` (valid
    // syndrome) so that the hypervisor can emulate it; `n` >= 1 counts down.
    unsafe {
        asm!(
            "2:",
            "ldr {v:w}, [{a}]",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            a = in(reg) addr,
            n = inout(reg) n => _,
            v = out(reg) _,
            options(nostack),
        );
    }
    let t1 = cpu::counter();
    let after = hyp::exits();
    let delta = match (before, after) {
        (Some(b), Some(a)) => Some(a.since(&b)),
        _ => None,
    };
    let ticks = t1.wrapping_sub(t0);
    let (dabt, total) = (Maybe(delta.map(|d| d.data_aborts)), Maybe(delta.map(|d| d.total)));
    let detail = format_args!("addr={addr:#x} n={n} ticks={ticks} exits_dabt={dabt} exits_total={total}");
    match (hyp::under_ferrovisor(), env.opts.expect_exits, delta) {
        (true, Some(_), None) => report!(test, false, "{detail} (no exit counters)"),
        (true, Some(want), Some(d)) if d.data_aborts != want => {
            report!(test, false, "{detail} (expected exits_dabt={want})")
        }
        _ => report!(test, true, "{detail}"),
    }
}

/// `hvcloop=N`: N `hvc #0` calls of ferrovisor's NOP (natively of
/// PSCI_VERSION, which QEMU answers). FAILs if the first returns
/// NOT_SUPPORTED.
pub fn hvcloop(arg: &str) -> bool {
    let test = "hvcloop";
    let Some(n) = parse_count(arg) else {
        return report!(test, false, "bad count '{arg}'");
    };
    let fid = if hyp::under_ferrovisor() { hyp::FID_NOP } else { psci::PSCI_VERSION };
    let t0 = cpu::counter();
    let first = hyp::call_loop(fid, n);
    let t1 = cpu::counter();
    let ticks = t1.wrapping_sub(t0);
    if first as u32 as i32 == -1 {
        return report!(test, false, "n={n} ticks={ticks} fid={fid:#x} returned NOT_SUPPORTED");
    }
    report!(test, true, "n={n} ticks={ticks} fid={fid:#x}")
}

/// `exits`: prints the calling vCPU's exit counters (under ferrovisor only).
pub fn exits(test: &str) -> bool {
    if !hyp::under_ferrovisor() {
        return report!(test, false, "needs ferrovisor");
    }
    match hyp::exits() {
        Some(e) => report!(
            test,
            true,
            "total={} dabt={} fwd={} maint={}",
            e.total,
            e.data_aborts,
            e.forwarded,
            e.maintenance
        ),
        None => report!(test, false, "exit-counter hypercall {:#x} not supported", hyp::FID_EXITS),
    }
}
