//! Stock Debian Linux guests: SMP, two Linux guests, Linux beside a probe,
//! and the helpers every Linux test uses (ready line, session, commands).

use super::*;

/// How long a Linux guest may take to boot under full software emulation.
pub(crate) const LINUX_TIMEOUT: Duration = Duration::from_secs(420);

/// The line the initramfs prints when a Linux guest is up.
pub(crate) fn linux_ready(name: &str) -> String {
    format!("[{name}] FERROVISOR-INIT: ready")
}

pub(crate) fn linux_session(boot: &Boot, steps: Vec<Step>) -> Result<String> {
    linux_session_on(&Machine::default(), boot, steps)
}

/// [`linux_session`] on another board (an SMMU, a PCI device).
pub(crate) fn linux_session_on(machine: &Machine, boot: &Boot, steps: Vec<Step>) -> Result<String> {
    run_session(
        machine,
        boot,
        Script { steps, forbid: vec![], expect_exit: true, timeout: LINUX_TIMEOUT, expect_panic: false },
    )
}

/// Attaches to `name`, runs `checks` (command, expected output) in its
/// shell, powers it off with `poweroff -f`, and expects the hypervisor to
/// report it stopped and give the console back.
pub(crate) fn linux_commands(name: &str, checks: &[(&str, &str)]) -> Vec<Step> {
    let mut steps = vec![
        Step::Send(format!("console attach {name}\r")),
        Step::Expect(format!("[console attached to {name}")),
    ];
    for (command, want) in checks {
        steps.push(Step::Send(format!("{command}\r")));
        steps.push(Step::Expect((*want).to_string()));
    }
    steps.push(Step::Send("poweroff -f\r".into()));
    steps.push(Step::Expect(format!("guest {name}: powered off (PSCI SYSTEM_OFF")));
    steps.push(Step::Expect(format!("[console detached: guest {name} stopped]")));
    steps
}

pub(crate) const NPROC: (&str, &str) = ("echo NPROC=$(nproc)", "NPROC=2");

/// The number at the start of `word`: the next command may be echoed right
/// behind a guest's output on the same line (`34poweroff -f`).
pub(crate) fn leading_number<T: std::str::FromStr>(word: &str) -> Option<T> {
    let end = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len());
    word[..end].parse().ok()
}

/// Reads `TIMERS a b` (arch_timer interrupt counts of CPU 0 and 1).
pub fn timer_counts(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().rev().find(|l| l.trim_start().starts_with("TIMERS "))?;
    let mut w = line.split_whitespace().skip(1);
    Some((leading_number(w.next()?)?, leading_number(w.next()?)?))
}

pub(crate) fn linux_smp(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("linux.dts")), None)?;
    let mut steps = vec![Step::Expect(linux_ready("linux0"))];
    steps.extend(linux_commands(
        "linux0",
        &[
            NPROC,
            ("awk '/arch_timer/ {print \"TIMERS\", $2, $3}' /proc/interrupts", "TIMERS "),
            ("echo ERRS=$(dmesg | grep -iE 'gic|arch_timer' | grep -ciE 'error|fail|bug|warn')", "ERRS=0"),
        ],
    ));
    steps.push(Step::Send("guest list\r".into()));
    steps.push(Step::Expect("linux0           stopped".into()));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session(&boot, steps)?;
    let (t0, t1) = with_transcript(timer_counts(&text).context("no TIMERS line"), &text)?;
    with_transcript(
        if t0 > 0 && t1 > 0 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("arch_timer counts {t0} {t1}: want both > 0"))
        },
        &text,
    )?;
    println!("    arch_timer interrupts: cpu0 {t0}, cpu1 {t1}");
    Ok(())
}

pub(crate) fn two_linux(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("two-linux.dts")), None)?;
    let mut steps = vec![Step::ExpectAll(vec![linux_ready("linux-a"), linux_ready("linux-b")])];
    steps.extend(linux_commands("linux-a", &[NPROC]));
    steps.push(Step::Send("guest list\r".into()));
    steps.extend(expect(&["linux-a          stopped", "linux-b          running"]));
    steps.extend(linux_commands("linux-b", &[NPROC, ("echo HELLO-$((40+2))", "HELLO-42")]));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    linux_session(&boot, steps)?;
    Ok(())
}

pub(crate) fn linux_and_probe(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("linux-and-probe.dts")), None)?;
    let mut steps = vec![Step::ExpectAll(vec![linux_ready("linux0"), probe_done("probe0", 5)])];
    steps.extend(linux_commands("linux0", &[NPROC]));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    linux_session(&boot, steps)?;
    Ok(())
}
