//! The fault watch: rate limit, suppression counts and stuck detection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferrovisor_trap::watch::{TokenBucket, BURST, PER_SECOND, STUCK_AFTER};
use ferrovisor_trap::{Access, FaultSite, FaultWatch, Outcome};
use proptest::prelude::*;

const FREQ: u64 = 62_500_000;
const TICK: u64 = FREQ / PER_SECOND;

fn site(pc: u64) -> FaultSite {
    FaultSite { pc, addr: 0x6000_0000, access: Access::Read }
}

#[test]
fn bucket_gives_a_burst_then_refills_over_time() {
    let mut b = TokenBucket::new();
    let t0 = 5 * FREQ;
    for _ in 0..BURST {
        assert!(b.take(t0, FREQ));
    }
    assert!(!b.take(t0, FREQ));
    assert!(!b.take(t0 + TICK - 1, FREQ));
    assert!(b.take(t0 + TICK, FREQ));
    assert!(!b.take(t0 + TICK, FREQ));
    // A long pause refills to the burst, not beyond.
    let t1 = t0 + 100 * FREQ;
    for _ in 0..BURST {
        assert!(b.take(t1, FREQ));
    }
    assert!(!b.take(t1, FREQ));
}

#[test]
fn bucket_survives_odd_clocks() {
    let mut b = TokenBucket::new();
    assert!(b.take(0, 0));
    assert!(b.take(u64::MAX, 1));
    // Time going backwards earns nothing and breaks nothing.
    for _ in 0..BURST {
        b.take(10, FREQ);
    }
    assert!(!b.take(10, FREQ));
}

#[test]
fn a_flood_is_limited_and_the_rest_summarised() {
    let mut w = FaultWatch::new();
    let mut shown = 0;
    // Different sites: no stuck detection, only the limit.
    for i in 0..100u64 {
        let o = w.fault(site(i), i, FREQ, FREQ, true);
        assert_eq!(o.summary, None);
        assert_eq!(o.stuck, None);
        shown += u64::from(o.report);
    }
    assert_eq!(shown, u64::from(BURST));
    assert_eq!(w.suppressed(), 100 - u64::from(BURST));
    // The window reopens: the next report comes with the summary.
    let o = w.fault(site(1000), 1000, FREQ + TICK, FREQ, true);
    assert_eq!(o, Outcome { summary: Some(90), report: true, stuck: None });
    assert_eq!(w.suppressed(), 0);
}

#[test]
fn invisible_reports_take_no_token_and_are_not_counted() {
    let mut w = FaultWatch::new();
    for i in 0..1000 {
        assert_eq!(w.note(FREQ, FREQ, false), Outcome::default());
        assert_eq!(w.fault(site(i), i, FREQ, FREQ, false), Outcome::default());
    }
    assert_eq!(w.suppressed(), 0);
    for i in 0..u64::from(BURST) {
        assert!(w.fault(site(i), i, FREQ, FREQ, true).report);
    }
    assert!(!w.note(FREQ, FREQ, true).report);
    assert_eq!(w.suppressed(), 1);
}

#[test]
fn stuck_after_the_threshold_reported_once() {
    let mut w = FaultWatch::new();
    let (mut reports, mut stuck_lines) = (0, 0);
    for n in 1..=3 * STUCK_AFTER {
        let o = w.fault(site(0x4008_0000), 7, FREQ, FREQ, true);
        reports += u64::from(o.report);
        if let Some(run) = o.stuck {
            assert_eq!(run, STUCK_AFTER);
            assert_eq!(n, STUCK_AFTER);
            stuck_lines += 1;
        }
    }
    assert_eq!((reports, stuck_lines), (u64::from(BURST), 1));
    assert_eq!(w.stuck(), Some((site(0x4008_0000), 3 * STUCK_AFTER)));
    // Every fault is accounted for: printed, the stuck line, or counted.
    assert_eq!(reports + stuck_lines + w.suppressed(), 3 * STUCK_AFTER);
    // No summary while stuck, even with tokens back.
    assert_eq!(w.poll(7, 100 * FREQ, FREQ), None);
    assert!(!w.is_quiet());
}

#[test]
fn progress_ends_the_episode_and_releases_the_summary() {
    let mut w = FaultWatch::new();
    for _ in 0..STUCK_AFTER + 10 {
        w.fault(site(4), 7, FREQ, FREQ, true);
    }
    assert!(w.stuck().is_some());
    let held = w.suppressed();
    assert_eq!(held, STUCK_AFTER + 10 - u64::from(BURST) - 1);
    // Progress, but no token yet: not stuck any more, summary waits.
    assert_eq!(w.poll(8, FREQ, FREQ), None);
    assert_eq!(w.stuck(), None);
    assert_eq!(w.poll(8, FREQ + TICK, FREQ), Some(held));
    assert!(w.is_quiet());
    // The same fault again starts a new run (one report, no stuck line).
    let o = w.fault(site(4), 8, FREQ + 2 * TICK, FREQ, true);
    assert_eq!(o, Outcome { summary: None, report: true, stuck: None });
}

#[test]
fn interleaved_progress_or_another_site_is_not_stuck() {
    let mut w = FaultWatch::new();
    for i in 0..3 * STUCK_AFTER {
        // Progress between every fault (a handler that prints).
        assert_eq!(w.fault(site(4), i, FREQ, FREQ, true).stuck, None);
    }
    for i in 0..3 * STUCK_AFTER {
        // Two sites taking turns.
        assert_eq!(w.fault(site(4 + (i & 1) * 4), 0, FREQ, FREQ, true).stuck, None);
    }
    assert_eq!(w.stuck(), None);
}

#[test]
fn a_different_fault_ends_the_episode() {
    let mut w = FaultWatch::new();
    for _ in 0..STUCK_AFTER {
        w.fault(site(4), 0, FREQ, FREQ, true);
    }
    assert!(w.stuck().is_some());
    w.fault(site(8), 0, FREQ, FREQ, true);
    assert_eq!(w.stuck(), None);
    // Stuck again at the old site needs a new full run.
    for n in 1..=STUCK_AFTER {
        let o = w.fault(site(4), 0, FREQ, FREQ, true);
        assert_eq!(o.stuck.is_some(), n == STUCK_AFTER);
    }
}

#[test]
fn flush_hands_out_whatever_is_held() {
    let mut w = FaultWatch::new();
    for i in 0..20 {
        w.fault(site(i), i, 0, FREQ, true);
    }
    assert_eq!(w.flush(), Some(20 - u64::from(BURST)));
    assert_eq!(w.flush(), None);
}

#[test]
fn undefined_sites_compare_by_pc() {
    let a = FaultSite { pc: 4, addr: 0, access: Access::Undefined };
    let b = FaultSite { pc: 4, addr: 0, access: Access::Read };
    assert_ne!(a, b);
    assert_eq!(Access::Write.phrase(), "write to");
}

/// One thing a vCPU does, for the property test.
#[derive(Clone, Debug)]
enum Event {
    /// A fault at one of four sites, visible or not, `times` in a row.
    Fault { site: u8, visible: bool, times: u64 },
    /// A note (RAZ/WI), visible or not.
    Note { visible: bool },
    /// Another exit: progress or not.
    Exit { progress: bool },
    /// Time passes (ticks).
    Wait(u64),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        8 => (0u8..4, any::<bool>()).prop_map(|(site, visible)| Event::Fault { site, visible, times: 1 }),
        1 => (0u8..4, 0u64..2 * STUCK_AFTER).prop_map(|(site, times)| Event::Fault { site, visible: true, times }),
        1 => any::<bool>().prop_map(|visible| Event::Note { visible }),
        1 => any::<bool>().prop_map(|progress| Event::Exit { progress }),
        1 => (0u64..FREQ).prop_map(Event::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever happens, every visible fault and note is printed (report or
    /// stuck line) or counted (handed-out summaries plus what is still
    /// held), and no more reports are printed than the bucket allows.
    #[test]
    fn nothing_is_lost_and_the_limit_holds(events in proptest::collection::vec(event(), 0..400)) {
        let mut w = FaultWatch::new();
        let (mut now, mut progress) = (FREQ, 0u64);
        let (mut visible, mut printed, mut summarised, mut reports) = (0u64, 0u64, 0u64, 0u64);
        for e in &events {
            // The outcome, and whether its lines are printed (the stuck line
            // is logged at the report's level).
            let (out, shown) = match *e {
                Event::Fault { site, visible: v, times } => {
                    let s = FaultSite { pc: 0x4000 + u64::from(site) * 4, addr: 0x6000, access: Access::Read };
                    for _ in 1..times {
                        visible += u64::from(v);
                        let out = w.fault(s, progress, now, FREQ, v);
                        printed += u64::from(out.report) + u64::from(v && out.stuck.is_some());
                        reports += u64::from(out.report || out.summary.is_some());
                        summarised += out.summary.unwrap_or(0);
                    }
                    visible += u64::from(v && times > 0);
                    if times == 0 {
                        continue;
                    }
                    (w.fault(s, progress, now, FREQ, v), v)
                }
                Event::Note { visible: v } => {
                    visible += u64::from(v);
                    (w.note(now, FREQ, v), v)
                }
                Event::Exit { progress: p } => {
                    progress += u64::from(p);
                    (Outcome { summary: w.poll(progress, now, FREQ), ..Outcome::default() }, true)
                }
                Event::Wait(t) => {
                    now += t;
                    (Outcome::default(), true)
                }
            };
            printed += u64::from(out.report) + u64::from(shown && out.stuck.is_some());
            reports += u64::from(out.report || out.summary.is_some());
            summarised += out.summary.unwrap_or(0);
        }
        prop_assert_eq!(printed + summarised + w.suppressed(), visible);
        // Token-taking lines (a report, or a summary handed out alone).
        let allowed = u64::from(BURST) + (now - FREQ) * PER_SECOND / FREQ + 1;
        prop_assert!(reports <= allowed, "{} report lines, {} allowed", reports, allowed);
    }
}
