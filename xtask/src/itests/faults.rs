//! Integration tests of fault reports: every denied access logged with guest,
//! vCPU, PC, address and direction; the rate limit and its suppression
//! counts; the log level; the stuck detector and what the shell says.
//!
//! The numbers they check come from `ferrovisor_trap::watch`: a burst of 10
//! reports, then 5 per second, and a vCPU stuck after 1000 identical faults.

use super::{boot_with, config, probe_done, session, with_transcript, Env};
use crate::qemu::{Machine, Step};
use anyhow::{anyhow, Context, Result};

/// Identical faults in a row that make a vCPU stuck.
const STUCK_AFTER: u64 = 1000;

/// What faults.dts's probe does: sysreg=50, then read, write, fetch, hvcimm,
/// faultloop 3000 and read: 3005 denied accesses, 8 tests.
const SYSREG_READS: u64 = 50;
const FAULTS: u64 = 3005;
const FAULTY_TESTS: usize = 8;

/// Fault-report lines of one vCPU in a transcript.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lines {
    /// Report lines of denied accesses (abort or undefined injected).
    pub reports: u64,
    /// Notes of registers emulated as read-as-zero (debug level).
    pub notes: u64,
    /// Stuck lines.
    pub stuck: u64,
    /// Sum of the counts in "N more fault reports suppressed" lines.
    pub suppressed: u64,
}

/// Counts the report lines of `who` ("guest NAME vcpuI: ") in `text`.
pub fn lines(text: &str, who: &str) -> Lines {
    let mut l = Lines::default();
    for line in text.lines() {
        let Some(at) = line.find(who) else { continue };
        let rest = &line[at + who.len()..];
        if rest.starts_with("stuck: ") {
            l.stuck += 1;
        } else if rest.contains(" more fault reports suppressed") {
            l.suppressed += rest.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        } else if rest.ends_with("abort injected") || rest.ends_with("undefined instruction injected") {
            l.reports += 1;
        } else if rest.ends_with("emulated as RAZ/WI") {
            l.notes += 1;
        }
    }
    l
}

/// The `faults` column (the last) of `guest`'s last row in `vcpu list`.
pub fn faults_column(text: &str, guest: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 16 && w[0] == guest && w[1].parse::<u64>().is_ok())
                .then(|| w[w.len() - 1].parse().ok())?
        })
        .next_back()
}

/// The hex number after `key` in the first line holding `marker`.
fn hex_after(text: &str, marker: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.contains(marker))?;
    let rest = &line[line.find(key)? + key.len()..];
    let digits = rest.trim_start_matches("0x");
    let end = digits.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(digits.len());
    u64::from_str_radix(&digits[..end], 16).ok()
}

/// The text from the first `from` on (after the cursor `start`) up to the
/// next `to`, and where it ends.
fn section<'a>(text: &'a str, start: usize, from: &str, to: &str) -> Option<(&'a str, usize)> {
    let begin = start + text.get(start..)?.find(from)?;
    let len = text[begin..].find(to).unwrap_or(text.len() - begin);
    Some((&text[begin..begin + len], begin + len))
}

fn check(text: &str, ok: bool, what: impl FnOnce() -> String) -> Result<()> {
    with_transcript(if ok { Ok(()) } else { Err(anyhow!(what())) }, text)
}

/// faults.dts at the default log level (info).
pub fn fault_reports(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("faults.dts")), None)?;
    let g = "guest faulty vcpu0: ";
    let steps = vec![
        Step::Expect(format!("{g}read from 0x60000000 at pc 0x")),
        Step::Expect("[faulty] PROBE faulty read=0x60000000: PASS aborted".into()),
        Step::Expect(format!("{g}write to 0x60000004 at pc 0x")),
        Step::Expect(format!(
            "{g}instruction fetch from 0x60000008 at pc 0x60000008: not mapped for this guest, abort injected"
        )),
        Step::Expect(format!("{g}hvc #0x1 (SMCCC calls use hvc #0) at pc 0x")),
        Step::Expect("[faulty] PROBE faulty hvcimm: PASS undefined esr=0x2000000".into()),
        Step::Expect(format!("{g}stuck: read from 0x6000000c at pc 0x")),
        Step::ExpectAll(vec![
            "[faulty] PROBE faulty faultloop: PASS addr=0x6000000c n=3000 taken=3000".into(),
            " more fault reports suppressed (at most 10 at once, then 5 per second)".into(),
        ]),
        Step::Expect(format!("{g}read from 0x60000010 at pc 0x")),
        Step::Expect(probe_done("faulty", FAULTY_TESTS)),
        Step::Send("vcpu list\r".into()),
        Step::Expect("loads faults".into()),
        Step::Expect("faulty           0".into()),
        Step::Send("guest list\r".into()),
        Step::Expect("faulty           running".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let text = session(&Machine::default(), &boot, steps, true)?;
    let l = lines(&text, g);
    let faults =
        with_transcript(faults_column(&text, "faulty").context("no faulty row in vcpu list"), &text)?;
    check(&text, faults == FAULTS, || format!("vcpu list says {faults} faults, the probe made {FAULTS}"))?;
    // Every denied access is on a line of its own or in a suppression count.
    check(&text, l.reports + l.stuck + l.suppressed == faults, || {
        format!("{l:?}: reports + stuck + suppressed should be the {faults} faults")
    })?;
    check(&text, l.stuck == 1 && l.notes == 0, || format!("want one stuck line and no RAZ/WI note: {l:?}"))?;
    check(&text, text.contains(&format!("failed {STUCK_AFTER} times in a row")), || {
        format!("the stuck line should say {STUCK_AFTER} times")
    })?;
    // The report lines name the PC the guest saw.
    let hvc_pc = hex_after(&text, "hvc #0x1 (SMCCC", "at pc ");
    let hvc_at = hex_after(&text, "hvcimm: PASS", "hvc_at=");
    check(&text, hvc_pc.is_some() && hvc_pc == hvc_at, || {
        format!("hvc report pc {hvc_pc:x?}, probe {hvc_at:x?}")
    })?;
    let stuck_pc = hex_after(&text, ": stuck: read from 0x6000000c", "at pc ");
    let loop_pc = hex_after(&text, "faultloop: PASS", "pc=");
    check(&text, stuck_pc.is_some() && stuck_pc == loop_pc, || {
        format!("stuck line pc {stuck_pc:x?}, probe's load at {loop_pc:x?}")
    })?;
    // The vCPU got past its fault: the shell no longer calls it stuck.
    let (vcpus, end) =
        section(&text, 0, "loads faults", "faulty           running").context("no vcpu list")?;
    let (guests, _) =
        section(&text, end, "faulty           running", "ferrovisor: halting").context("no guest list")?;
    check(&text, !vcpus.contains("stuck") && !guests.contains("stuck"), || {
        "the shell still says stuck after the vCPU moved on".into()
    })?;
    println!("    {faults} faults: {} reported, 1 stuck line, {} suppressed", l.reports, l.suppressed);
    Ok(())
}

/// faults.dts at log level debug: the RAZ/WI notes are printed, take from
/// the same rate limit, and are accounted for too.
pub fn fault_levels(env: &Env) -> Result<()> {
    let mut boot = boot_with(env, Some(&config("faults.dts")), None)?;
    boot.bootargs = "ferrovisor.loglevel=debug".into();
    let g = "guest faulty vcpu0: ";
    let steps = vec![
        Step::Expect(format!("{g}read of PMCR_EL0 emulated as RAZ/WI")),
        Step::Expect(probe_done("faulty", FAULTY_TESTS)),
        Step::Send("vcpu list\r".into()),
        Step::Expect("loads faults".into()),
        Step::Expect("faulty           0".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let text = session(&Machine::default(), &boot, steps, true)?;
    let l = lines(&text, g);
    let faults =
        with_transcript(faults_column(&text, "faulty").context("no faulty row in vcpu list"), &text)?;
    check(&text, faults == FAULTS, || format!("vcpu list says {faults} faults, the probe made {FAULTS}"))?;
    check(&text, l.notes >= 1 && l.notes < SYSREG_READS, || {
        format!("{} RAZ/WI notes for {SYSREG_READS} reads: want some, rate-limited", l.notes)
    })?;
    check(&text, l.notes + l.reports + l.stuck + l.suppressed == SYSREG_READS + faults, || {
        format!("{l:?}: notes + reports + stuck + suppressed should be {SYSREG_READS} + {faults}")
    })?;
    println!("    {} of {SYSREG_READS} RAZ/WI notes printed; all {faults} faults accounted for", l.notes);
    Ok(())
}

/// fault-stuck.dts: a vCPU re-taking one fault forever.
pub fn fault_stuck(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("fault-stuck.dts")), None)?;
    let g = "guest wedged vcpu0: ";
    let stuck_line = format!("{g}stuck: read from 0x60000000 at pc 0x");
    let note = "stuck: faulting, read from 0x60000000 at pc 0x";
    let steps = vec![
        Step::Expect("[wedged] PROBE wedged faultloop: re-taking the abort at 0x60000000 forever".into()),
        Step::Expect(stuck_line.clone()),
        Step::Send("guest list\r".into()),
        Step::Expect("wedged           running".into()),
        Step::Expect(format!("vcpu0 {note}")),
        Step::Send("vcpu list\r".into()),
        Step::Expect("loads faults".into()),
        Step::Expect(note.into()),
        Step::Send("guest stop wedged\r".into()),
        Step::ExpectAll(vec!["guest wedged: stopped".into(), format!("{g}")]),
        Step::Send("guest list\r".into()),
        Step::Expect("wedged           stopped".into()),
        Step::Send("vcpu list\r".into()),
        Step::Expect("loads faults".into()),
        Step::Expect("wedged           0".into()),
        Step::Send("guest start wedged\r".into()),
        Step::Expect("guest wedged: started".into()),
        Step::Expect(stuck_line.clone()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let text = session(&Machine::default(), &boot, steps, true)?;
    let stopped = text.find("guest wedged: stopped").context("no stop")?;
    let (before, after) = text.split_at(stopped);
    // Reported once while stuck, however long; again after the restart.
    let count = |t: &str| t.matches(stuck_line.as_str()).count();
    check(&text, count(before) == 1 && count(after) == 1, || {
        format!(
            "stuck lines: {} before the stop (want 1), {} after the restart (want 1)",
            count(before),
            count(after)
        )
    })?;
    // The vcpu list while stuck counts the faults so far.
    let row = faults_column(before, "wedged").unwrap_or(0);
    check(&text, row >= STUCK_AFTER, || {
        format!("vcpu list said {row} faults while stuck (want >= {STUCK_AFTER})")
    })?;
    // Stopped: the shell no longer says stuck; every fault is accounted for.
    let (shown, upto) = section(&text, stopped, "wedged           stopped", "guest start wedged")
        .context("no lists after stop")?;
    check(&text, !shown.contains("stuck"), || "the shell says stuck for a stopped guest".into())?;
    let faults = faults_column(shown, "wedged").context("no wedged row after the stop")?;
    let l = lines(&text[..upto], g);
    check(&text, l.reports + l.stuck + l.suppressed == faults, || {
        format!("{l:?}: reports + stuck + suppressed should be the {faults} faults")
    })?;
    // It went on faulting after the stuck line, which was not repeated
    // (the exact count is fault-reports' business: 3000 faults, one line).
    check(&text, faults > STUCK_AFTER && faults >= row, || {
        format!("{faults} faults at the stop, {row} while stuck: want more than {STUCK_AFTER}")
    })?;
    println!(
        "    stuck once; {faults} faults until the stop: {} reported, {} suppressed",
        l.reports, l.suppressed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_report_lines() {
        let text = "\
[   0.1] cpu1 WARN  guest a vcpu0: read from 0x6 at pc 0x4: not mapped for this guest, abort injected\r
[   0.1] cpu1 WARN  guest a vcpu0: hvc #0x1 (x) at pc 0x4: undefined instruction injected\r
[   0.1] cpu1 WARN  guest a vcpu0: stuck: read from 0x6 at pc 0x4 failed 1000 times in a row\r
[   0.1] cpu1 WARN  guest a vcpu0: 12 more fault reports suppressed (at most 10 at once)\r
[   0.1] cpu1 DEBUG guest a vcpu0: read of PMCR_EL0 emulated as RAZ/WI\r
[   0.1] cpu1 WARN  guest a vcpu0: 3 more fault reports suppressed (at most 10 at once)\r
[   0.1] cpu1 WARN  guest b vcpu0: read from 0x6 at pc 0x4: not mapped for this guest, abort injected\r
";
        assert_eq!(lines(text, "guest a vcpu0: "), Lines { reports: 2, notes: 1, stuck: 1, suppressed: 15 });
    }

    #[test]
    fn reads_the_faults_column() {
        let text = "  guest            vcpu pcpu state      exits: irq fwd maint mmio fault hvc smc wfx sysreg other  loads faults\r
  faulty           0    1    on         0 0 0 120 3004 2 0 0 50 1  1 3005\r
  faulty           running    vcpus 1 memory 16 MiB, 0 pass-through device(s)\r";
        assert_eq!(faults_column(text, "faulty"), Some(3005));
        assert_eq!(faults_column(text, "other"), None);
    }

    #[test]
    fn finds_hex_and_sections() {
        let text = "x\nok hvc_at=0x4008abc0 y\nA 1 B\nA 2 B\n";
        assert_eq!(hex_after(text, "ok", "hvc_at="), Some(0x4008_abc0));
        let (s, end) = section(text, 0, "A", "B").unwrap();
        assert_eq!(s, "A 1 ");
        assert_eq!(section(text, end, "A", "B").unwrap().0, "A 2 ");
    }
}
