//! `rtcirq=N` and `irqexits=N`: PL031 RTC alarm interrupts through the GIC.
//!
//! The RTC is at `probe.rtc` (default 0x0901_0000) with SPI `probe.rtcintid`
//! (default 34, level). Each round reads RTCDR, clears a stale match
//! (RTCICR = 1), sets RTCMR = RTCDR + 1 and RTCIMSC = 1, then waits up to
//! 3 s for the interrupt; the IRQ handler writes RTCICR = 1 before the EOI.
//!
//! Latency: the IRQ vector's CNTVCT stamp minus the time the alarm was due.
//! QEMU's PL031 (all versions) does not fire at the second boundary where
//! RTCDR reaches RTCMR but (RTCMR - RTCDR) seconds of its clock after the
//! RTCMR store; with `-rtc base=2020-01-01T00:00:00,clock=vm` that clock is
//! the virtual clock CNTVCT counts, so the alarm is due at the CNTVCT read
//! just before the store plus CNTFRQ ticks. Computed only when RTCDR is less
//! than 10^6 s past 2020-01-01 (1577836800, i.e. the `-rtc` option above is
//! in use) and did not tick over around the store, else `n/a`. Each round
//! also prints the raw numbers, including `match_cntvct = (RTCMR -
//! 1577836800) * CNTFRQ`, the boundary a hardware PL031 would fire at.
//!
//! With `probe.expect_irq=0`, `rtcirq` instead arms the alarm once (its RTC
//! accesses may abort: the RTC is not the guest's) and PASSes if no
//! interrupt at all (but its own timeout timer's) arrives within 2 s.
//!
//! Descheduling (under ferrovisor): each round notes how often the vCPU had
//! been scheduled in before arming and at the handler's entry; more at the
//! entry means the interrupt found the vCPU descheduled and had to wait for
//! it (`desched_wait`). With `probe.irqhold=MS` the handler keeps the level
//! interrupt active, its line asserted, for MS ms before it clears the RTC
//! and EOIs; on a pCPU shared with a busy vCPU and MS above the 10 ms time
//! slice, the vCPU is descheduled in the middle (`desched_held`). The next
//! round's interrupt proves the physical interrupt was not left active
//! (stuck), and `irqs == n` that it was neither lost nor delivered twice.
//! `probe.expect_desched=1` turns both counts into PASS conditions.
//!
//! `irqexits` (under ferrovisor, RTC passed through) polls with IRQs open
//! instead of WFI, so every RTC interrupt arrives while the vCPU runs, and
//! checks the exit-counter deltas over the whole loop: `fwd` grew by the
//! interrupts handled, `maint` and `dabt` did not grow (the passed-through
//! RTC's registers are not emulated, and the loop prints nothing).

use super::{parse_u64, report, Env};
use crate::exception::{try_read32, try_write32, Abort};
use crate::irq::{self, WaitMode};
use crate::{cpu, gic, hyp};

const RTCDR: u64 = 0x000;
const RTCMR: u64 = 0x004;
const RTCIMSC: u64 = 0x010;
const RTCICR: u64 = 0x01c;
/// 2020-01-01T00:00:00Z in seconds since 1970.
const EPOCH_2020: u64 = 1_577_836_800;
/// RTCDR must be this close to [`EPOCH_2020`] for latencies to be computed.
const EPOCH_WINDOW: u64 = 1_000_000;
const TIMEOUT_MS: u64 = 3000;
const ISOLATION_MS: u64 = 2000;
const MAX_ROUNDS: u64 = 10_000;

/// Latency statistics of the interrupts handled.
#[derive(Clone, Copy, Default)]
struct Stats {
    irqs: u32,
    /// Rounds whose interrupt found the vCPU descheduled (ferrovisor).
    desched_wait: u64,
    /// Handler holds during which the vCPU was descheduled (ferrovisor).
    desched_held: u32,
    /// vCPUs sharing the pCPU (ferrovisor; 0 natively).
    pcpu_vcpus: u64,
    /// Minimum, sum and maximum of the latencies computed.
    lat: Option<(i64, i64, i64)>,
    /// How many latencies were computed.
    lat_count: i64,
}

impl Stats {
    fn add(&mut self, lat: i64) {
        self.lat = Some(match self.lat {
            Some((min, sum, max)) => (min.min(lat), sum.saturating_add(lat), max.max(lat)),
            None => (lat, lat, lat),
        });
        self.lat_count += 1;
    }
}

impl core::fmt::Display for Stats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "irqs={} ", self.irqs)?;
        match self.lat {
            Some((min, sum, max)) if self.lat_count > 0 => {
                let avg = sum / self.lat_count;
                write!(f, "lat_ticks_min={min} lat_ticks_avg={avg} lat_ticks_max={max}")?
            }
            _ => f.write_str("latency=n/a")?,
        }
        if self.pcpu_vcpus > 0 {
            write!(
                f,
                " desched_wait={} desched_held={} pcpu_vcpus={}",
                self.desched_wait, self.desched_held, self.pcpu_vcpus
            )?;
        }
        Ok(())
    }
}

/// A register access's outcome, for the report.
struct Seen(Result<Option<u32>, Abort>);

impl core::fmt::Display for Seen {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Ok(Some(v)) => write!(f, "{v}"),
            Ok(None) => f.write_str("written"),
            Err(a) => write!(f, "aborted(esr={:#x})", a.esr),
        }
    }
}

/// GIC, SPI and clear action for the RTC; Err is the FAIL detail.
fn setup(env: &Env) -> Result<(), &'static str> {
    irq::setup()?;
    gic::enable_spi(env.opts.rtc_intid, false)?;
    irq::set_clear(env.opts.rtc_intid, env.opts.rtc + RTCICR, 1);
    irq::set_hold(env.opts.irq_hold_ms);
    Ok(())
}

fn teardown(env: &Env) {
    let _ = try_write32(env.opts.rtc + RTCIMSC, 0);
    gic::disable_spi(env.opts.rtc_intid);
    irq::set_clear(0, 0, 0);
    irq::set_hold(0);
}

/// One armed alarm: RTCDR before and after the RTCMR store, and the
/// counter just before it.
struct Armed {
    dr: u32,
    dr_after: u32,
    cntvct: u64,
}

/// Clears a stale match, sets RTCMR = RTCDR + 1, unmasks the interrupt.
fn arm(rtc: u64) -> Result<Armed, Abort> {
    let dr = try_read32(rtc + RTCDR)?;
    try_write32(rtc + RTCICR, 1)?;
    let cntvct = cpu::counter();
    try_write32(rtc + RTCMR, dr.wrapping_add(1))?;
    let dr_after = try_read32(rtc + RTCDR)?;
    try_write32(rtc + RTCIMSC, 1)?;
    Ok(Armed { dr, dr_after, cntvct })
}

/// Runs `n` rounds; on failure prints the FAIL line (as `test`) and
/// returns None. Prints one line per round if `verbose`.
fn rounds(env: &Env, test: &str, n: u64, mode: WaitMode, verbose: bool) -> Option<Stats> {
    let (rtc, intid) = (env.opts.rtc, env.opts.rtc_intid);
    let freq = cpu::frequency();
    let start = irq::count(intid);
    let held_start = irq::held_descheduled();
    let mut stats = Stats::default();
    for i in 1..=n {
        let before = irq::count(intid);
        let sched_before = crate::hyp::sched();
        let armed = match arm(rtc) {
            Ok(a) => a,
            Err(a) => {
                report!(test, false, "round={i} RTC access aborted esr={:#x} far={:#x}", a.esr, a.far);
                return None;
            }
        };
        let (dr, mr) = (u64::from(armed.dr), u64::from(armed.dr) + 1);
        let got = irq::wait(cpu::deadline_ms(TIMEOUT_MS), mode, || irq::count(intid) != before);
        if !got {
            report!(
                test,
                false,
                "no interrupt round={i} rtcdr={dr} rtcmr={mr} within {TIMEOUT_MS} ms spurious={} clear_aborts={}",
                irq::spurious(),
                irq::clear_aborts()
            );
            return None;
        }
        if let Some((loads, pinned)) = sched_before {
            stats.pcpu_vcpus = pinned;
            if irq::entry_loads() > loads {
                stats.desched_wait += 1;
            }
        }
        let stamp = irq::stamp(intid);
        // QEMU's PL031 fires (RTCMR - RTCDR) s after the RTCMR store, not at
        // the second boundary: the due time is the store's counter plus
        // 1 s, valid if RTCDR did not tick over around the store.
        let due = armed.cntvct + freq;
        let in_epoch = dr.wrapping_sub(EPOCH_2020) < EPOCH_WINDOW;
        let lat = (in_epoch && armed.dr_after == armed.dr).then(|| stamp as i64 - due as i64);
        if let Some(lat) = lat {
            stats.add(lat);
        }
        if verbose {
            let lat = lat.map_or(LatText::NA, LatText::Ticks);
            let boundary = LatText::from(in_epoch.then(|| (mr - EPOCH_2020) * freq));
            crate::out!(
                "{test} round={i} rtcdr={dr} rtcmr={mr} armed_cntvct={} due_cntvct={due} match_cntvct={boundary} irq_cntvct={stamp} lat_ticks={lat}",
                armed.cntvct
            );
        }
    }
    stats.irqs = irq::count(intid).wrapping_sub(start);
    stats.desched_held = irq::held_descheduled().wrapping_sub(held_start);
    Some(stats)
}

enum LatText {
    NA,
    Ticks(i64),
}

impl From<Option<u64>> for LatText {
    fn from(v: Option<u64>) -> Self {
        v.map_or(LatText::NA, |v| LatText::Ticks(v as i64))
    }
}

impl core::fmt::Display for LatText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LatText::NA => f.write_str("n/a"),
            LatText::Ticks(t) => write!(f, "{t}"),
        }
    }
}

fn parse_rounds(arg: &str) -> Option<u64> {
    parse_u64(arg).filter(|n| (1..=MAX_ROUNDS).contains(n))
}

/// `rtcirq=N`.
pub fn rtcirq(env: &Env, arg: &str) -> bool {
    let test = "rtcirq";
    let Some(n) = parse_rounds(arg) else {
        return report!(test, false, "bad count '{arg}'");
    };
    if let Err(e) = setup(env) {
        return report!(test, false, "{e}");
    }
    if !env.opts.expect_irq {
        return isolation(env, test, n);
    }
    let stats = rounds(env, test, n, env.opts.irq_wait, true);
    teardown(env);
    let Some(stats) = stats else { return false };
    let desched_ok = !env.opts.expect_desched
        || (stats.pcpu_vcpus > 1
            && stats.desched_wait == n
            && (env.opts.irq_hold_ms == 0 || u64::from(stats.desched_held) == n));
    report!(test, stats.irqs as u64 == n && desched_ok, "n={n} {stats}")
}

/// `rtcirq` with `probe.expect_irq=0`: PASS if no interrupt within 2 s.
fn isolation(env: &Env, test: &str, n: u64) -> bool {
    let (rtc, intid) = (env.opts.rtc, env.opts.rtc_intid);
    let before = irq::count(intid);
    let before_all = irq::count_all_but_vtimer();
    let dr = try_read32(rtc + RTCDR);
    let mr = match dr {
        Ok(dr) => try_write32(rtc + RTCMR, dr.wrapping_add(1)),
        Err(a) => Err(a),
    };
    let imsc = try_write32(rtc + RTCIMSC, 1);
    let t0 = cpu::counter();
    let got = irq::wait(cpu::deadline_ms(ISOLATION_MS), WaitMode::Wfi, || {
        irq::count_all_but_vtimer() != before_all
    });
    let waited_ms = cpu::counter().wrapping_sub(t0) * 1000 / cpu::frequency();
    teardown(env);
    let irqs = irq::count(intid).wrapping_sub(before);
    let other = irq::count_all_but_vtimer().wrapping_sub(before_all).wrapping_sub(irqs);
    let (dr, mr, imsc) = (Seen(dr.map(Some)), Seen(mr.map(|()| None)), Seen(imsc.map(|()| None)));
    report!(
        test,
        !got && irqs == 0 && other == 0,
        "n={n} expect_irq=0 irqs={irqs} other_irqs={other} waited_ms={waited_ms} rtc={rtc:#x} intid={intid} rtcdr={dr} rtcmr={mr} rtcimsc={imsc}"
    )
}

/// `irqexits=N` (under ferrovisor only).
pub fn irqexits(env: &Env, arg: &str) -> bool {
    let test = "irqexits";
    let Some(n) = parse_rounds(arg) else {
        return report!(test, false, "bad count '{arg}'");
    };
    if !hyp::under_ferrovisor() {
        return report!(test, false, "needs ferrovisor");
    }
    if let Err(e) = setup(env) {
        return report!(test, false, "{e}");
    }
    let Some(before) = hyp::exits() else {
        teardown(env);
        return report!(test, false, "exit-counter hypercall {:#x} not supported", hyp::FID_EXITS);
    };
    let stats = rounds(env, test, n, WaitMode::Spin, false);
    let after = hyp::exits();
    teardown(env);
    let Some(stats) = stats else { return false };
    let Some(after) = after else {
        return report!(test, false, "exit counters vanished");
    };
    let d = after.since(&before);
    let ok = stats.irqs as u64 == n
        && d.forwarded == u64::from(stats.irqs)
        && d.maintenance == 0
        && d.data_aborts == 0;
    report!(
        test,
        ok,
        "n={n} {stats} d_total={} d_dabt={} d_fwd={} d_maint={}",
        d.total,
        d.data_aborts,
        d.forwarded,
        d.maintenance
    )
}
