//! Boot, banner, footprint, configs refused before boot, the shell, and
//! the hypervisor's own failures (crash reports, not started at EL2).

use super::*;

pub(crate) fn boot_banner(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let cfg = config("default.dts");
    let host = validate::host_dtb(None, &machine)?;
    let report = validate::check(&cfg, &host)?;
    ensure!(report.errors.is_empty(), "default.dts does not validate: {:?}", report.errors);
    let boot = boot_with(env, Some(&cfg), Some("guest list; cpus; halt"))?;
    let mut steps = expect(&[
        "ferrovisor 0.1.0 - ARMv8-A EL2 hypervisor",
        "cpus:      4 online of 4 (ipi answered by 3)",
        "gic:       GICv3 dist 0x8000000",
        "console:   /pl011@9000000",
    ]);
    steps.push(Step::Expect(format!("guests:    {} configured, 0 rejected", report.valid.len())));
    steps.push(Step::Expect("ferrovisor> guest list".into()));
    for name in &report.valid {
        steps.push(Step::Expect(name.clone()));
    }
    steps.extend(expect(&["ferrovisor> cpus", "online", "ferrovisor> halt", "ferrovisor: halting"]));
    let text = session(&machine, &boot, steps, true)?;
    let online = cpu_rows_online(&text);
    with_transcript(
        if online == 4 { Ok(()) } else { Err(anyhow::anyhow!("`cpus` listed {online} online CPUs, want 4")) },
        &text,
    )
}

/// Counts the rows of the `cpus` table whose state is online.
pub fn cpu_rows_online(text: &str) -> usize {
    text.lines()
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() >= 3 && w[0].parse::<usize>().is_ok() && w[1].starts_with("0x") && w[2] == "online"
        })
        .count()
}

/// Reads "<label> N KiB" out of the banner's footprint line.
pub fn kib_after(text: &str, label: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.contains("footprint:"))?;
    let rest = &line[line.find(label)? + label.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

pub(crate) fn footprint(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let boot = boot_with(env, Some(&config("default.dts")), Some("halt"))?;
    let text = session(&machine, &boot, expect(&["footprint:", "ferrovisor: halting"]), true)?;
    let image = kib_after(&text, "image ").context("no image size in the banner")?;
    let total = kib_after(&text, "hypervisor memory ").context("no memory size in the banner")?;
    let file = std::fs::metadata(&env.image)?.len().div_ceil(1024);
    with_transcript(
        (|| {
            ensure!(image == file, "banner says image {image} KiB, file is {file} KiB");
            ensure!(image <= 1024, "image is {image} KiB, target is at most 1024 KiB");
            ensure!(total <= 16 * 1024, "hypervisor memory is {total} KiB, target is at most 16384 KiB");
            Ok(())
        })(),
        &text,
    )?;
    println!("    image {image} KiB, hypervisor memory {total} KiB");
    Ok(())
}

pub(crate) fn bad_config(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let cfg = config("bad-guest.dts");
    let host = validate::host_dtb(None, &machine)?;
    let report = validate::check(&cfg, &host)?;
    if report.errors.is_empty() {
        bail!("bad-guest.dts should have config errors, validate found none");
    }
    let boot = boot_with(env, Some(&cfg), Some("guest list; halt"))?;
    let mut steps: Vec<Step> = report.errors.iter().map(|e| Step::Expect(e.clone())).collect();
    steps.push(Step::Expect(format!("guests:    {} configured, 1 rejected", report.valid.len() + 1)));
    steps.push(Step::Expect("ferrovisor> guest list".into()));
    for name in &report.valid {
        steps.push(Step::Expect(name.clone()));
    }
    steps.push(Step::Expect("rejected".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    session(&machine, &boot, steps, true)?;
    println!(
        "    {} error(s) matched validate; valid guests: {}",
        report.errors.len(),
        report.valid.join(", ")
    );
    Ok(())
}

pub(crate) fn validate_command(_: &Env) -> Result<()> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let run = |cfg: &Path| -> Result<(bool, String)> {
        let out = std::process::Command::new(&exe).arg("validate").arg(cfg).output()?;
        Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned()))
    };
    let (ok, text) = run(&config("default.dts"))?;
    ensure!(ok, "validate failed on default.dts:\n{text}");
    ensure!(text.contains("2 valid guest(s) (linux0, probe0), 0 error(s)"), "unexpected summary:\n{text}");
    let (ok, text) = run(&config("bad-guest.dts"))?;
    ensure!(!ok, "validate accepted bad-guest.dts:\n{text}");
    let host = validate::host_dtb(None, &Machine::default())?;
    let report = validate::check(&config("bad-guest.dts"), &host)?;
    for e in &report.errors {
        ensure!(text.contains(e.as_str()), "validate output lacks '{e}':\n{text}");
    }
    ensure!(text.lines().filter(|l| l.starts_with("config error: ")).count() == report.errors.len());
    // The board options reach the validator: on 2 CPUs, probe0's
    // cpu-affinity <2> names a CPU that does not exist.
    let out = std::process::Command::new(&exe)
        .args(["validate", "--smp", "2", "--memory", "1G"])
        .arg(config("default.dts"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(!out.status.success(), "validate --smp 2 accepted default.dts:\n{text}");
    ensure!(
        text.contains(
            "/guests/probe0: cpu-affinity: physical CPU 2 does not exist (the host has 2 CPUs, 0 to 1)"
        ),
        "validate --smp 2 did not name the missing CPU:\n{text}"
    );
    Ok(())
}

pub(crate) fn shell_input(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let boot = boot_with(env, Some(&config("default.dts")), None)?;
    let steps = vec![
        Step::Expect("ferrovisor> ".into()),
        Step::Send("hepl\x7f\x7flp\r".into()),
        Step::Expect("guest list".into()),
        Step::Expect("ferrovisor> ".into()),
        Step::Send("bogus\r".into()),
        Step::Expect("unknown command 'bogus'".into()),
        Step::Send("guest\r".into()),
        Step::Expect("usage: guest list".into()),
        Step::Send("version\r".into()),
        Step::Expect("ferrovisor 0.1.0 (aarch64 EL2)".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    session(&machine, &boot, steps, true)?;
    Ok(())
}

/// Every pCPU idle and tickless, the only armed timer a stopped guest's
/// expired and masked virtual timer: QEMU's icount mode used to warp to its
/// far-future deadline and spin, and the shell went deaf.
pub(crate) fn idle_masked_timer(env: &Env) -> Result<()> {
    let machine = Machine { icount: true, ..Machine::default() };
    let boot = boot_with(env, Some(&config("masked-timer.dts")), None)?;
    let steps = vec![
        Step::Expect("[masked] PROBE masked timermasked: PASS ctl=0x7".into()),
        Step::Expect(probe_done("masked", 2)),
        Step::Expect("guest masked: powered off".into()),
        Step::Send("cpus\r".into()),
        Step::Expect("IPIs taken in all".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    session(&machine, &boot, steps, true)?;
    Ok(())
}

pub(crate) fn no_bundle(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let boot = boot_with(env, None, Some("guest list; halt"))?;
    session(
        &machine,
        &boot,
        expect(&[
            "no boot bundle",
            "guests:    0 configured, 0 rejected",
            "no guests configured",
            "ferrovisor: halting",
        ]),
        true,
    )?;
    Ok(())
}

pub(crate) fn crash_reports(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let cases: [(&str, &[&str]); 2] = [
        ("panic", &["!!! ferrovisor PANIC on cpu0: crash test requested by ferrovisor.crashtest=panic at hypervisor/src/core/boot.rs:"]),
        ("fault", &["!!! ferrovisor PANIC on cpu0: unexpected sync exception from EL2", "(EC 0x25: data abort, same EL)", "FAR 0x0000010000000000", "x0 "]),
    ];
    for (kind, wants) in cases {
        let mut boot = boot_with(env, None, None)?;
        boot.bootargs = format!("ferrovisor.crashtest={kind}");
        let steps = wants.iter().map(|w| Step::Expect(w.to_string())).collect();
        run_session(
            &machine,
            &boot,
            Script { steps, forbid: vec![], expect_exit: true, timeout: TIMEOUT, expect_panic: true },
        )
        .with_context(|| format!("crash test '{kind}'"))?;
    }
    Ok(())
}

pub(crate) fn not_at_el2(env: &Env) -> Result<()> {
    let machine = Machine { virtualization: false, ..Machine::default() };
    let boot = boot_with(env, None, None)?;
    session(
        &machine,
        &boot,
        expect(&["entered at EL1, but a hypervisor must start at EL2", "virtualization=on"]),
        true,
    )?;
    Ok(())
}
