//! Bare-metal probe guests side by side: two probes, isolation between
//! guests, the guest lifecycle from the shell, and the console.

use super::*;

/// The line a probe guest prints when all its tests passed.
pub(crate) fn probe_done(name: &str, passed: usize) -> String {
    format!("[{name}] PROBE {name} DONE pass={passed} fail=0")
}

/// Fails with the transcript unless `text` contains every one of `wants`.
pub(crate) fn require_all(text: &str, wants: &[String]) -> Result<()> {
    for w in wants {
        with_transcript(
            if text.contains(w.as_str()) { Ok(()) } else { Err(anyhow::anyhow!("missing '{w}'")) },
            text,
        )?;
    }
    Ok(())
}

pub(crate) fn two_probes(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let boot = boot_with(env, Some(&config("two-probes.dts")), None)?;
    let mut steps = expect(&["guest probe-a: started", "guest probe-b: started"]);
    steps.extend(expect(&["powered off (PSCI SYSTEM_OFF", "powered off (PSCI SYSTEM_OFF"]));
    steps.push(Step::Send("guest list\r".into()));
    steps.extend(expect(&["probe-a          stopped", "probe-b          stopped"]));
    steps.push(Step::Send("vcpu list\r".into()));
    steps.extend(expect(&["probe-b          1    3"]));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = session(&machine, &boot, steps, true)?;
    let mut wants = Vec::new();
    wants.push(probe_done("probe-a", 5));
    wants.push(probe_done("probe-b", 4));
    wants.push("[probe-a] PROBE probe-a idregs: PASS".into());
    for name in ["probe-a", "probe-b"] {
        wants.push(format!("[{name}] PROBE {name} cpu1 online"));
        wants.push(format!("[{name}] PROBE {name} smp: PASS"));
    }
    require_all(&text, &wants)
}

pub(crate) fn isolation(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let boot = boot_with(env, Some(&config("isolation.dts")), None)?;
    // The attacker's denied accesses, each logged before the probe reports
    // it; the victim runs at the same time and may finish before or after.
    let attacker = [
        "guest attacker vcpu0: read from 0x60000000 at pc",
        "[attacker] PROBE attacker read=0x60000000: PASS aborted",
        "guest attacker vcpu0: write to 0x60000000 at pc",
        "[attacker] PROBE attacker write=0x60000000: PASS aborted",
        "guest attacker vcpu0: read from 0x48000000 at pc",
        "[attacker] PROBE attacker read=0x48000000: PASS aborted",
        "[attacker] PROBE attacker DONE pass=4 fail=0",
        "guest attacker: powered off",
    ];
    let mut all: Vec<String> = attacker.iter().map(|s| s.to_string()).collect();
    all.push(probe_done("victim", 4));
    all.push("guest victim: powered off".into());
    let mut steps = vec![Step::ExpectAll(all)];
    steps.push(Step::Send("guest list\r".into()));
    steps.extend(expect(&["victim           stopped", "attacker         stopped"]));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = session(&machine, &boot, steps, true)?;
    in_order(&text, &attacker)
}

/// Checks that `lines` appear in `text` in this order.
pub(crate) fn in_order(text: &str, lines: &[&str]) -> Result<()> {
    let mut at = 0;
    for line in lines {
        match text.get(at..).and_then(|rest| rest.find(line)) {
            Some(i) => at += i + line.len(),
            None => bail!("'{line}' is missing or out of order (expected after the previous line)"),
        }
    }
    Ok(())
}

pub(crate) fn guest_lifecycle(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let boot = boot_with(env, Some(&config("lifecycle.dts")), None)?;
    let started = "[life] PROBE life START";
    let done = "[life] PROBE life DONE pass=2 fail=0";
    let steps = vec![
        Step::Expect(started.into()),
        Step::Expect(done.into()),
        Step::Send("guest pause life\r".into()),
        Step::Expect("guest life: paused".into()),
        Step::Send("guest list\r".into()),
        Step::Expect("life             paused".into()),
        Step::Send("guest resume life\r".into()),
        Step::Expect("guest life: resumed".into()),
        Step::Send("guest reset life\r".into()),
        Step::Expect("guest life: started".into()),
        Step::Expect(started.into()),
        Step::Expect(done.into()),
        Step::Send("guest stop life\r".into()),
        Step::Expect("guest life: stopped".into()),
        Step::Send("guest stop life\r".into()),
        Step::Expect("guest life is already stopped".into()),
        Step::Send("guest start life\r".into()),
        Step::Expect(started.into()),
        Step::Expect(done.into()),
        Step::Send("guest start nobody\r".into()),
        Step::Expect("no guest called 'nobody'".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    session(&machine, &boot, steps, true)?;
    Ok(())
}

pub(crate) fn console_attach(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let boot = boot_with(env, Some(&config("default.dts")), None)?;
    let steps = vec![
        Step::Expect("[probe0] PROBE probe0 echo: type a line".into()),
        Step::Send("console attach nobody\r".into()),
        Step::Expect("no guest called 'nobody'".into()),
        Step::Send("console attach probe0\r".into()),
        Step::Expect("[console attached to probe0; press Ctrl-] to come back]".into()),
        Step::Send("hello there\r".into()),
        Step::Expect("PROBE probe0 echo: PASS got 'hello there'".into()),
        Step::Expect("PROBE probe0 DONE pass=4 fail=0".into()),
        Step::Send("\x1d".into()),
        Step::Expect("[console detached]".into()),
        Step::Send("guest list\r".into()),
        Step::Expect("probe0           running".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    session(&machine, &boot, steps, true)?;
    Ok(())
}
