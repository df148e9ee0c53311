//! The QEMU integration tests: each boots the hypervisor on QEMU virt, drives
//! its console, and checks what it prints.

mod console;

use crate::qemu::{self, Boot, Machine, Script, Step};
use crate::{bundle, paths, validate};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod faults;
mod gpio;
mod memory;
mod scmi;

/// What every test gets: the built hypervisor image.
pub struct Env {
    /// The flat hypervisor image.
    pub image: PathBuf,
}

/// One integration test.
pub struct Test {
    /// Its name, for filtering and reports.
    pub name: &'static str,
    /// What it checks, in one line.
    pub about: &'static str,
    /// The test itself.
    pub run: fn(&Env) -> Result<()>,
}

/// All integration tests, in the order they run.
pub const TESTS: &[Test] = &[
    Test {
        name: "boot-banner",
        about: "4 CPUs online, IPIs answered, default guests listed, halt exits QEMU",
        run: boot_banner,
    },
    Test { name: "footprint", about: "image <= 1 MiB, hypervisor memory <= 16 MiB", run: footprint },
    Test {
        name: "bad-config-rejected",
        about: "a guest with config errors is rejected with validate's messages; the others stay",
        run: bad_config,
    },
    Test {
        name: "validate-command",
        about: "`cargo xtask validate` passes default.dts and fails bad-guest.dts with its messages, and checks against the board its options describe",
        run: validate_command,
    },
    Test {
        name: "shell-input",
        about: "commands typed on the console run (UART receive interrupt)",
        run: shell_input,
    },
    Test {
        name: "idle-masked-timer",
        about: "under -icount sleep=off, the shell answers after a guest powers off with its timer expired and masked",
        run: idle_masked_timer,
    },
    Test {
        name: "console-stress",
        about: "under -icount, a guest prints without pause while the shell answers 100 commands; its lines stay whole",
        run: console::console_stress,
    },
    Test {
        name: "console-lines",
        about: "guest escape sequences removed, control bytes shown as \\xNN, unfinished lines shown alone; typed escapes and extra arguments refused",
        run: console::console_lines,
    },
    Test { name: "no-bundle", about: "booting without a bundle warns and reaches the shell", run: no_bundle },
    Test {
        name: "two-probes",
        about: "two 2-vCPU probe guests run at once on 4 pCPUs, print, start their 2nd vCPU, power off alone",
        run: two_probes,
    },
    Test {
        name: "isolation",
        about:
            "reads of another guest's RAM and of hypervisor memory abort in the guest; everyone carries on",
        run: isolation,
    },
    Test {
        name: "guest-lifecycle",
        about: "shell stop, start, reset, pause and resume of a probe guest",
        run: guest_lifecycle,
    },
    Test {
        name: "console-attach",
        about: "typing goes to an attached guest's vUART; Ctrl-] returns to the shell",
        run: console_attach,
    },
    Test {
        name: "linux-smp",
        about: "Debian Linux with 2 vCPUs boots to a shell: nproc, timer interrupts on both CPUs, clean dmesg, poweroff",
        run: linux_smp,
    },
    Test { name: "two-linux", about: "two Linux guests boot at once on 4 pCPUs and power off alone", run: two_linux },
    Test { name: "linux-and-probe", about: "a Linux guest and a probe guest run side by side", run: linux_and_probe },
    Test {
        name: "linux-rtc",
        about: "the host PL031 passed through: hwclock reads the date QEMU gave the RTC (fixed -rtc base), an alarm's interrupt reaches Linux",
        run: linux_rtc,
    },
    Test {
        name: "linux-rtc-remap",
        about: "the same RTC at guest address 0x0c000000 and guest INTID 64",
        run: linux_rtc_remap,
    },
    Test {
        name: "linux-gpio",
        about: "the host PL061 and PL031 passed through: the guest DT's gpio node is a GPIO and interrupt controller, Linux's pl061 driver binds it, hwclock reads the RTC",
        run: gpio::linux_gpio,
    },
    Test {
        name: "linux-scmi",
        about: "the PL031's clock, power domain and reset through the hypervisor's SCMI platform: Linux's SCMI driver probes, powers the domain on before use; unbinding the RTC driver powers it off (device unmapped), binding again works",
        run: scmi::linux_scmi,
    },
    Test {
        name: "virtio-blk",
        about: "a virtio-blk disk passed to an identity-mapped Linux: its data reads back (sha256), writes persist",
        run: virtio_blk,
    },
    Test {
        name: "passthrough-isolation",
        about: "a guest that does not own the RTC aborts on its registers; the RTC's interrupts reach only the owner",
        run: passthrough_isolation,
    },
    Test {
        name: "exits",
        about: "10,000 reads of a passed-through register cost no exits; a forwarded interrupt costs one exit, none on EOI",
        run: exits,
    },
    Test {
        name: "level-desched",
        about: "a level passed-through interrupt is neither lost nor stuck while its vCPU is descheduled",
        run: level_desched,
    },
    Test { name: "oversubscribed", about: "6 vCPUs on 4 pCPUs all complete", run: oversubscribed },
    Test {
        name: "fault-reports",
        about: "denied reads, writes, fetches and hvc #1 logged with guest, vCPU, PC, address; rate limit with suppression counts; RAZ/WI debug notes take no budget at info; stuck once, then free; vcpu list counts",
        run: faults::fault_reports,
    },
    Test {
        name: "fault-levels",
        about: "at log level debug the RAZ/WI notes show, share the rate limit, and every note and fault is accounted for",
        run: faults::fault_levels,
    },
    Test {
        name: "fault-stuck",
        about: "a vCPU re-taking one fault forever is reported stuck once; guest list and vcpu list say so until it stops",
        run: faults::fault_stuck,
    },
    Test {
        name: "crash-reports",
        about:
            "a panic and an EL2 fault each print an epitaph (message, location or registers) and power off",
        run: crash_reports,
    },
    Test {
        name: "not-at-el2",
        about: "entered at EL1, the hypervisor says why and powers off",
        run: not_at_el2,
    },
    Test {
        name: "failed-build",
        about: "a guest whose build fails late leaves no RAM, heap or route behind; the guests after it get their interrupts and console input",
        run: memory::failed_build,
    },
    Test {
        name: "placement",
        about: "validate's placement of the hypervisor, bundle and host DTB is where the booted hypervisor says they are",
        run: memory::placement,
    },
    Test {
        name: "config-limits",
        about: "a guest INTID beyond the vGIC, identity memory over the bundle, a heap-hungry config: validate and the boot reject the same guests",
        run: memory::config_limits,
    },
    Test {
        name: "huge-configs",
        about: "300 guests, or one guest with 3,000 memory nodes: refused within the documented limits, the hypervisor stays up",
        run: memory::huge_configs,
    },
    Test {
        name: "halt-when-idle",
        about: "with ferrovisor.halt-when-idle the board powers off by itself once every guest has stopped",
        run: memory::halt_when_idle,
    },
];

const TIMEOUT: Duration = Duration::from_secs(90);

pub(crate) fn config(name: &str) -> PathBuf {
    paths::root().join("configs/qemu-virt").join(name)
}

pub(crate) fn boot_with(env: &Env, config: Option<&Path>, bootcmd: Option<&str>) -> Result<Boot> {
    let bundle = match config {
        Some(c) => Some(bundle::make(c)?),
        None => None,
    };
    Ok(Boot { image: env.image.clone(), bundle, bootargs: qemu::bootargs_for(bootcmd)?, extra: vec![] })
}

fn expect(items: &[&str]) -> Vec<Step> {
    items.iter().map(|s| Step::Expect(s.to_string())).collect()
}

pub(crate) fn session(machine: &Machine, boot: &Boot, steps: Vec<Step>, expect_exit: bool) -> Result<String> {
    run_session(
        machine,
        boot,
        Script { steps, forbid: vec![], expect_exit, timeout: TIMEOUT, expect_panic: false },
    )
}

fn run_session(machine: &Machine, boot: &Boot, script: Script) -> Result<String> {
    match qemu::run_script(qemu::command(machine, boot), &script) {
        Ok(t) => Ok(t.text),
        Err(e) => Err(anyhow::anyhow!(
            "{}\n----- console transcript -----\n{}\n----- end of transcript -----",
            e.reason,
            e.transcript
        )),
    }
}

pub(crate) fn with_transcript<T>(result: Result<T>, transcript: &str) -> Result<T> {
    result.with_context(|| {
        format!("\n----- console transcript -----\n{transcript}\n----- end of transcript -----")
    })
}

fn boot_banner(env: &Env) -> Result<()> {
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

fn footprint(env: &Env) -> Result<()> {
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

fn bad_config(env: &Env) -> Result<()> {
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

fn validate_command(_: &Env) -> Result<()> {
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

fn shell_input(env: &Env) -> Result<()> {
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
fn idle_masked_timer(env: &Env) -> Result<()> {
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

fn no_bundle(env: &Env) -> Result<()> {
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

/// The line a probe guest prints when all its tests passed.
fn probe_done(name: &str, passed: usize) -> String {
    format!("[{name}] PROBE {name} DONE pass={passed} fail=0")
}

/// Fails with the transcript unless `text` contains every one of `wants`.
fn require_all(text: &str, wants: &[String]) -> Result<()> {
    for w in wants {
        with_transcript(
            if text.contains(w.as_str()) { Ok(()) } else { Err(anyhow::anyhow!("missing '{w}'")) },
            text,
        )?;
    }
    Ok(())
}

fn two_probes(env: &Env) -> Result<()> {
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

fn isolation(env: &Env) -> Result<()> {
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
fn in_order(text: &str, lines: &[&str]) -> Result<()> {
    let mut at = 0;
    for line in lines {
        match text.get(at..).and_then(|rest| rest.find(line)) {
            Some(i) => at += i + line.len(),
            None => bail!("'{line}' is missing or out of order (expected after the previous line)"),
        }
    }
    Ok(())
}

fn guest_lifecycle(env: &Env) -> Result<()> {
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

fn console_attach(env: &Env) -> Result<()> {
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

/// How long a Linux guest may take to boot under full software emulation.
const LINUX_TIMEOUT: Duration = Duration::from_secs(420);

/// The line the initramfs prints when a Linux guest is up.
fn linux_ready(name: &str) -> String {
    format!("[{name}] FERROVISOR-INIT: ready")
}

fn linux_session(boot: &Boot, steps: Vec<Step>) -> Result<String> {
    run_session(
        &Machine::default(),
        boot,
        Script { steps, forbid: vec![], expect_exit: true, timeout: LINUX_TIMEOUT, expect_panic: false },
    )
}

/// Attaches to `name`, runs `checks` (command, expected output) in its
/// shell, powers it off with `poweroff -f`, and expects the hypervisor to
/// report it stopped and give the console back.
fn linux_commands(name: &str, checks: &[(&str, &str)]) -> Vec<Step> {
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

const NPROC: (&str, &str) = ("echo NPROC=$(nproc)", "NPROC=2");

/// The number at the start of `word`: the next command may be echoed right
/// behind a guest's output on the same line (`34poweroff -f`).
fn leading_number<T: std::str::FromStr>(word: &str) -> Option<T> {
    let end = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len());
    word[..end].parse().ok()
}

/// Reads `TIMERS a b` (arch_timer interrupt counts of CPU 0 and 1).
pub fn timer_counts(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().rev().find(|l| l.trim_start().starts_with("TIMERS "))?;
    let mut w = line.split_whitespace().skip(1);
    Some((leading_number(w.next()?)?, leading_number(w.next()?)?))
}

fn linux_smp(env: &Env) -> Result<()> {
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

fn two_linux(env: &Env) -> Result<()> {
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

fn linux_and_probe(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("linux-and-probe.dts")), None)?;
    let mut steps = vec![Step::ExpectAll(vec![linux_ready("linux0"), probe_done("probe0", 5)])];
    steps.extend(linux_commands("linux0", &[NPROC]));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    linux_session(&boot, steps)?;
    Ok(())
}

/// Guest commands that fire an RTC alarm and print the RTC interrupt count.
const RTC_ALARM: (&str, &str) = (
    "echo +2 > /sys/class/rtc/rtc0/wakealarm; sleep 3; awk '/rtc-pl031/ {print \"RTCIRQ\", $2+$3, $(NF-2)}' /proc/interrupts",
    "RTCIRQ ",
);

/// Reads `RTCIRQ <count> <guest intid>` from the transcript.
pub fn rtc_irqs(text: &str) -> Option<(u64, u32)> {
    let line = text.lines().rev().find(|l| l.trim_start().starts_with("RTCIRQ "))?;
    let mut w = line.split_whitespace().skip(1);
    Some((leading_number(w.next()?)?, leading_number(w.next()?)?))
}

/// The RTC's start date for the RTC tests: fixed, so that no test depends on
/// the calendar or the time zone of the machine it runs on. A single-digit
/// day on purpose (`hwclock` pads it: "Jan  5").
const RTC_BASE: &str = "2026-01-05T12:00:00";

/// What `hwclock` shows for [`RTC_BASE`], whitespace collapsed.
const RTC_BASE_SHOWN: (&str, &str) = ("Jan 5 12:", "2026");

/// `text` with every run of white space turned into one space.
fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn rtc_test(env: &Env, cfg: &str, guest_intid: u32, guest_addr: &str) -> Result<()> {
    let mut boot = boot_with(env, Some(&config(cfg)), None)?;
    boot.extra = vec!["-rtc".into(), format!("base={RTC_BASE}")];
    let (day, year) = RTC_BASE_SHOWN;
    let mut steps = vec![Step::Expect(linux_ready("linux0"))];
    steps.extend(linux_commands(
        "linux0",
        &[
            ("echo RTCDEV=$(ls /sys/bus/amba/devices | grep pl031)", &format!("RTCDEV={guest_addr}.pl031")),
            ("echo HW=$(hwclock -r -u)", "HW="),
            RTC_ALARM,
        ],
    ));
    steps.push(Step::Send("passthrough list\r".into()));
    steps.push(Step::Expect(format!("irq   host 34 -> guest {guest_intid} (Level), forwarded")));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session(&boot, steps)?;
    let hw = text.lines().rev().find(|l| l.trim_start().starts_with("HW=")).unwrap_or("");
    let shown = collapse_spaces(hw);
    with_transcript(
        if shown.contains(day) && shown.contains(year) {
            Ok(())
        } else {
            Err(anyhow::anyhow!("hwclock said '{hw}', the RTC started at {RTC_BASE} (-rtc base=)"))
        },
        &text,
    )?;
    let (count, intid) = with_transcript(rtc_irqs(&text).context("no RTCIRQ line"), &text)?;
    with_transcript(
        if count >= 1 && intid == guest_intid {
            Ok(())
        } else {
            Err(anyhow::anyhow!("RTC interrupts: {count} on INTID {intid}; want >= 1 on {guest_intid}"))
        },
        &text,
    )?;
    println!("    hwclock: {}; RTC alarm interrupts in the guest: {count} (INTID {intid})", hw.trim());
    Ok(())
}

fn linux_rtc(env: &Env) -> Result<()> {
    rtc_test(env, "default.dts", 34, "9010000")
}

fn linux_rtc_remap(env: &Env) -> Result<()> {
    rtc_test(env, "rtc-remap.dts", 64, "c000000")
}

fn virtio_blk(env: &Env) -> Result<()> {
    use std::io::Write;
    let disk = paths::out().join("test-disk.img");
    let data: Vec<u8> =
        (0..4u32 * 1024 * 1024).map(|i| (i.wrapping_mul(7).wrapping_add(13) % 251) as u8).collect();
    std::fs::File::create(&disk).and_then(|mut f| f.write_all(&data)).context("writing the test disk")?;
    let out = std::process::Command::new("sha256sum").arg(&disk).output().context("running sha256sum")?;
    let sum = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string();
    anyhow::ensure!(sum.len() == 64, "sha256sum printed no digest");
    let mut boot = boot_with(env, Some(&config("virtio-blk.dts")), None)?;
    boot.extra = qemu::virtio_disk(&disk);
    let marker = "FERROVISOR-WROTE-THIS";
    let mut steps = vec![
        Step::Expect("DMA-capable host device /virtio_mmio@a003e00 without IOMMU protection".into()),
        Step::Expect(linux_ready("linux1")),
    ];
    steps.extend(linux_commands(
        "linux1",
        &[
            ("modprobe virtio_mmio && modprobe virtio_blk && sleep 1 && echo VDA=$(cat /sys/block/vda/size)", "VDA=8192"),
            ("sha256sum /dev/vda", &format!("{sum}  /dev/vda")),
            (&format!("echo {marker} | dd of=/dev/vda bs=512 seek=100 conv=notrunc && sync && echo W=$((1+1))"), "W=2"),
        ],
    ));
    steps.push(Step::Send("passthrough list\r".into()));
    steps.push(Step::Expect("DMA UNPROTECTED (acknowledged".into()));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session(&boot, steps)?;
    let after = std::fs::read(&disk).context("reading the test disk back")?;
    let at = 100 * 512;
    with_transcript(
        if after.get(at..at + marker.len()) == Some(marker.as_bytes()) {
            Ok(())
        } else {
            Err(anyhow::anyhow!("the guest's write is not in the disk image at offset {at}"))
        },
        &text,
    )?;
    println!("    sha256 {sum} read back by the guest; its write landed in the image");
    Ok(())
}

fn passthrough_isolation(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("passthrough-isolation.dts")), None)?;
    let mut steps = vec![
        Step::Expect("guest probe1 vcpu0: read from 0x9010000 at pc".into()),
        Step::Expect("[probe1] PROBE probe1 read=0x09010000: PASS aborted".into()),
        Step::Expect("[probe1] PROBE probe1 write=0x09010004: PASS aborted".into()),
        Step::Expect(linux_ready("linux0")),
    ];
    steps.extend(linux_commands("linux0", &[RTC_ALARM]));
    steps.push(Step::Send("vcpu list\r".into()));
    steps.push(Step::Expect("probe1           0".into()));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session(&boot, steps)?;
    let (count, _) = with_transcript(rtc_irqs(&text).context("no RTCIRQ line"), &text)?;
    // The probe's forwarded-interrupt exit counter (column "fwd") stays 0.
    let fwd = text
        .lines()
        .rev()
        .filter(|l| l.trim_start().starts_with("probe1 "))
        .find_map(|l| l.split_whitespace().nth(5))
        .unwrap_or("?")
        .to_string();
    with_transcript(
        if count >= 1 && fwd == "0" {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "owner saw {count} RTC interrupts (want >= 1); probe1 forwarded exits {fwd} (want 0)"
            ))
        },
        &text,
    )
}

fn exits(env: &Env) -> Result<()> {
    let mut boot = boot_with(env, Some(&config("exits.dts")), None)?;
    boot.extra = vec!["-rtc".into(), "base=2020-01-01T00:00:00,clock=vm".into()];
    let steps = vec![
        Step::Expect("[exits] PROBE exits mmioread: PASS addr=0x9010000 n=10000".into()),
        Step::Expect("exits_dabt=0".into()),
        Step::Expect("[exits] PROBE exits irqexits: PASS n=3 irqs=3".into()),
        Step::Expect("d_fwd=3 d_maint=0".into()),
        Step::Expect(probe_done("exits", 2)),
        Step::Send("vcpu list\r".into()),
        Step::Expect("exits            0".into()),
        // The host view: the RTC's SPI taken exactly three times.
        Step::Send("interrupts\r".into()),
        Step::Expect("intid  taken".into()),
        Step::Expect("  34     3\r".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let text = session(&Machine::default(), &boot, steps, true)?;
    let line = text.lines().find(|l| l.contains("irqexits: PASS")).unwrap_or("");
    println!("    {}", line.trim());
    Ok(())
}

fn level_desched(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("level-desched.dts")), None)?;
    // The probe checks it all (PASS needs 3 interrupts, each one finding
    // the owner descheduled and each hold descheduled midway, on a pCPU
    // shared by 2 vCPUs); the line must say so too.
    let steps = vec![
        Step::Expect("[owner] PROBE owner rtcirq: PASS n=3 irqs=3".into()),
        Step::Expect("desched_wait=3 desched_held=3 pcpu_vcpus=2".into()),
        Step::Expect(probe_done("owner", 1)),
        Step::Send("passthrough list\r".into()),
        Step::Expect("owner".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let text = session(&Machine::default(), &boot, steps, true)?;
    let line = text.lines().find(|l| l.contains("owner rtcirq: PASS")).unwrap_or("");
    println!("    {}", line.trim());
    Ok(())
}

fn oversubscribed(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let boot = boot_with(env, Some(&config("oversubscribed.dts")), None)?;
    let mut steps = expect(&["DONE pass=2 fail=0", "DONE pass=2 fail=0", "DONE pass=2 fail=0"]);
    steps.push(Step::Send("vcpu list\r".into()));
    steps.push(Step::Expect("busy-c           1".into()));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = session(&machine, &boot, steps, true)?;
    let wants: Vec<String> = ["busy-a", "busy-b", "busy-c"].iter().map(|n| probe_done(n, 2)).collect();
    require_all(&text, &wants)?;
    let pcpus: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("busy-"))
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|w| w.parse::<usize>().is_ok()))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    with_transcript(
        if pcpus.len() == 4 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("vCPUs should spread over 4 pCPUs, saw {pcpus:?}"))
        },
        &text,
    )
}

fn crash_reports(env: &Env) -> Result<()> {
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

fn not_at_el2(env: &Env) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_footprint_numbers() {
        let text = "  footprint: image 120 KiB, hypervisor memory 4812 KiB (bss 3 KiB)\n";
        assert_eq!(kib_after(text, "image "), Some(120));
        assert_eq!(kib_after(text, "hypervisor memory "), Some(4812));
        assert_eq!(kib_after("nothing", "image "), None);
    }

    #[test]
    fn counts_online_cpu_rows() {
        let text = "  cpus:      4 online of 4\n  cpu  mpidr  state\n  0    0x00000000  online   3  0\n  1    0x00000001  offline  0  0\n";
        assert_eq!(cpu_rows_online(text), 1);
    }

    #[test]
    fn reads_counts_with_the_next_command_echoed_behind() {
        assert_eq!(rtc_irqs("RTCIRQ 1 34poweroff -f\n"), Some((1, 34)));
        assert_eq!(rtc_irqs("RTCIRQ x 34\n"), None);
        assert_eq!(timer_counts("TIMERS 12 7echo\n"), Some((12, 7)));
    }

    #[test]
    fn reads_timer_counts() {
        assert_eq!(timer_counts("x\nTIMERS 120 77\r\nguest# "), Some((120, 77)));
        assert_eq!(timer_counts("awk '/arch_timer/ {print \"TIMERS\", $2}'"), None);
    }

    #[test]
    fn test_names_are_unique() {
        let mut names: Vec<_> = TESTS.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TESTS.len());
    }
}
