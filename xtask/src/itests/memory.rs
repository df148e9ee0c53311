//! Integration tests of what a guest takes from the hypervisor: host RAM,
//! heap, interrupt routes; that a failed build gives it all back, and that
//! `validate` sees the hypervisor where the boot puts it.

use super::{boot_with, config, session, with_transcript, Env};
use crate::qemu::{Machine, Step};
use crate::{build, bundle, placement, validate};
use anyhow::{ensure, Context, Result};

/// One `memory` row: (first byte, last byte, holder).
fn memory_rows(text: &str) -> Vec<(u64, u64, String)> {
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (range, _, _, owner) = (words.next()?, words.next()?, words.next()?, words.next()?);
            let (a, b) = range.split_once('-')?;
            let rest: Vec<&str> = words.collect();
            let owner =
                if rest.is_empty() { owner.to_string() } else { format!("{owner} {}", rest.join(" ")) };
            Some((hex(a)?, hex(b)?, owner))
        })
        .collect()
}

/// The `held N KiB` figure of the `memory` summary line.
fn held_kib(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.trim_start().starts_with("held "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn failed_build(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let mut boot = boot_with(env, Some(&config("failed-build.dts")), None)?;
    boot.bootargs = format!("ferrovisor.fail-build=middle {}", boot.bootargs).trim().to_string();
    let steps = vec![
        Step::Expect("guest middle cannot be built: /guests/middle: build failure injected".into()),
        Step::Expect("guest middle: its failed build left nothing behind".into()),
        Step::Expect("guests:    3 configured, 1 rejected".into()),
        // "last" gets its forwarded RTC interrupts (its VM id is not a
        // table index: "middle" never got an entry) ...
        Step::Expect("[last] PROBE last rtcirq: PASS n=3 irqs=3".into()),
        Step::Expect("[last] PROBE last echo: type a line".into()),
        // ... and its console input.
        Step::Send("console attach last\r".into()),
        Step::Expect("[console attached to last".into()),
        Step::Send("after the failure\r".into()),
        Step::Expect("PROBE last echo: PASS got 'after the failure'".into()),
        Step::Send("\x1d".into()),
        Step::Expect("[console detached]".into()),
        Step::Send("memory\r".into()),
        Step::Expect("held ".into()),
        Step::Expect("before the guests were built)".into()),
        Step::Send("passthrough list\r".into()),
        Step::Expect("/pl031@9010000 -> guest last".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let text = session(&machine, &boot, steps, true)?;
    let rows = memory_rows(&text);
    let owners: Vec<&str> = rows.iter().map(|(_, _, o)| o.as_str()).collect();
    with_transcript(
        if owners.contains(&"middle") || owners.len() != 5 {
            Err(anyhow::anyhow!(
                "`memory` should list hypervisor, boot bundle, host DTB, first, last; it listed {owners:?}"
            ))
        } else {
            Ok(())
        },
        &text,
    )?;
    let sum: u64 = rows.iter().map(|(a, b, _)| (b + 1 - a) >> 10).sum();
    let held = held_kib(&text).context("no `held` figure in the memory output")?;
    ensure!(held == sum, "`memory` says {held} KiB held, its rows add up to {sum} KiB");
    let gpio = text.lines().any(|l| l.contains("/pl061@9030000 ->"));
    ensure!(!gpio, "the failed guest's GPIO is still listed by `passthrough list`");
    println!("    {} KiB held by hypervisor, blobs, first and last only; middle's routes gone", held);
    Ok(())
}

pub fn placement(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let cfg = config("default.dts");
    let host = validate::host_dtb(None, &machine)?;
    let bundle_len = bundle::contents(&cfg)?.len() as u64;
    let predicted = placement::hypervisor(&build::hypervisor_elf(), &host, bundle_len)?;
    let boot = boot_with(env, Some(&cfg), Some("memory; halt"))?;
    let text = session(&machine, &boot, vec![Step::Expect("ferrovisor: halting".into())], true)?;
    let rows = memory_rows(&text);
    for (region, owner) in &predicted.reserved {
        let found = rows.iter().find(|(_, _, o)| o == owner);
        let want = (region.base.0, region.end() - 1);
        with_transcript(
            match found {
                Some((a, b, _)) if (*a, *b) == want => Ok(()),
                Some((a, b, _)) => Err(anyhow::anyhow!(
                    "{owner}: validate places it at {:#x}-{:#x}, the boot at {a:#x}-{b:#x}",
                    want.0,
                    want.1
                )),
                None => Err(anyhow::anyhow!("`memory` shows no {owner}")),
            },
            &text,
        )?;
    }
    let boot_kib: u64 = text
        .lines()
        .find_map(|l| {
            l.split(" KiB before the guests were built").next().filter(|_| l.contains("before the guests"))
        })
        .and_then(|l| l.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .context("no boot heap figure in `memory`")?;
    ensure!(
        boot_kib * 1024 <= ferrovisor_config::BOOT_HEAP,
        "the hypervisor used {boot_kib} KiB of heap to boot; the validator assumes at most {} KiB",
        ferrovisor_config::BOOT_HEAP / 1024
    );
    println!(
        "    hypervisor, boot bundle and host DTB where validate expects them; boot heap {boot_kib} KiB"
    );
    Ok(())
}

pub fn config_limits(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let cfg = config("limits.dts");
    let host = validate::host_dtb(None, &machine)?;
    let report = validate::check(&cfg, &host)?;
    ensure!(report.valid.contains(&"ok0".to_string()) && report.valid.contains(&"ok1".to_string()));
    for want in [
        "/guests/intid/uart@9000000: guest INTID 500 is beyond",
        "/guests/intid/gpio: guest INTID 300",
        "/guests/overbundle/memory@48000000: identity memory",
        "hypervisor heap",
    ] {
        ensure!(
            report.errors.iter().any(|e| e.contains(want)),
            "validate does not say '{want}':\n{}",
            report.errors.join("\n")
        );
    }
    // ok0, intid, overbundle, smallram, 18 scatter guests, ok1.
    let rejected = 23 - report.valid.len();
    let boot = boot_with(env, Some(&cfg), None)?;
    let mut steps: Vec<Step> = report.errors.iter().map(|e| Step::Expect(e.clone())).collect();
    steps.push(Step::Expect(format!("guests:    23 configured, {rejected} rejected")));
    steps.push(Step::ExpectAll(vec![
        "[ok0] PROBE ok0 DONE pass=1 fail=0".into(),
        "[ok1] PROBE ok1 DONE pass=1 fail=0".into(),
    ]));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = session(&machine, &boot, steps, true)?;
    ensure!(!text.contains("heap estimate exceeded"), "a guest took more heap than planned:\n{text}");
    println!(
        "    {} error(s) said alike by validate and the boot; {} guests accepted",
        report.errors.len(),
        report.valid.len()
    );
    Ok(())
}

/// Writes a generated config under target/ferrovisor/generated/.
fn generated(name: &str, text: &str) -> Result<std::path::PathBuf> {
    let dir = crate::paths::out().join("generated");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn config_text(guests: &str) -> String {
    format!("/dts-v1/;\n/ {{\n\tcompatible = \"ferrovisor,config-v1\";\n\tguests {{\n{guests}\t}};\n}};\n")
}

pub fn huge_configs(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let host = validate::host_dtb(None, &machine)?;
    // 300 guests: the first 32 are read (g0 runs the probe), the rest are
    // rejected by count, and the hypervisor stays up.
    let mut guests = String::from(
        "\t\tg0 { compatible = \"ferrovisor,guest\"; vcpus = <1>; kernel = \"guests/probe.bin\"; bootargs = \"probe.name=g0 probe.tests=hello probe.end=wfi\";\n\t\t\tmemory@40000000 { guest-physical-addr = <0x0 0x40000000>; size = <0x0 0x01000000>; };\n\t\t\tuart@9000000 { compatible = \"ferrovisor,vuart-pl011\"; guest-physical-addr = <0x0 0x09000000>; interrupts = <33>; }; };\n",
    );
    for i in 1..300 {
        guests.push_str(&format!("\t\tg{i} {{ compatible = \"ferrovisor,guest\"; vcpus = <1>; memory@40000000 {{ guest-physical-addr = <0x0 0x40000000>; size = <0x0 0x100000>; }}; }};\n"));
    }
    let many = generated("many-guests.dts", &config_text(&guests))?;
    let report = validate::check(&many, &host)?;
    ensure!(report.valid.len() == 32, "validate accepted {} guests, want 32", report.valid.len());
    let boot = boot_with(env, Some(&many), None)?;
    let mut steps: Vec<Step> = report.errors.iter().map(|e| Step::Expect(e.clone())).collect();
    steps.push(Step::Expect("guests:    300 configured, 268 rejected".into()));
    steps.push(Step::Expect("[g0] PROBE g0 DONE pass=1 fail=0".into()));
    steps.push(Step::Send("guest list\r".into()));
    steps.push(Step::Expect("g299             rejected".into()));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    session(&machine, &boot, steps, true)?;
    // One guest with 3,000 memory nodes: the config DTB is past the size
    // the hypervisor reads, so the whole config is refused before parsing.
    let mut nodes = String::from("\t\tbig { compatible = \"ferrovisor,guest\"; vcpus = <1>;\n");
    for i in 0..3000u64 {
        let gpa = 0x4000_0000 + i * 0x1000;
        nodes.push_str(&format!(
            "\t\t\tmemory@{gpa:x} {{ guest-physical-addr = <0x0 {gpa:#x}>; size = <0x0 0x1000>; }};\n"
        ));
    }
    nodes.push_str("\t\t};\n");
    let big = generated("many-regions.dts", &config_text(&nodes))?;
    let report = validate::check(&big, &host)?;
    ensure!(
        report.errors.len() == 1 && report.errors[0].contains("more than the 65536 the hypervisor reads"),
        "validate said: {:?}",
        report.errors
    );
    let boot = boot_with(env, Some(&big), Some("guest list; halt"))?;
    let steps = vec![
        Step::Expect(report.errors[0].clone()),
        Step::Expect("guests:    0 configured, 0 rejected (config errors, see above)".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    session(&machine, &boot, steps, true)?;
    println!(
        "    300 guests: 32 read, 268 rejected; 3,000 memory nodes: config refused; the hypervisor stayed up"
    );
    Ok(())
}

/// `ferrovisor.halt-when-idle` (`cargo xtask run --halt-when-idle`): the
/// board powers off by itself once both probe guests have powered off, and
/// QEMU exits without a `halt` typed.
pub fn halt_when_idle(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let mut boot = boot_with(env, Some(&config("two-probes.dts")), None)?;
    boot.bootargs = format!("ferrovisor.halt-when-idle {}", boot.bootargs).trim().to_string();
    let steps = vec![
        Step::ExpectAll(vec![
            "guest probe-a: powered off (PSCI SYSTEM_OFF".into(),
            "guest probe-b: powered off (PSCI SYSTEM_OFF".into(),
        ]),
        Step::Expect("ferrovisor: every guest has stopped (ferrovisor.halt-when-idle): halting".into()),
    ];
    let text = session(&machine, &boot, steps, true)?;
    ensure!(
        !text.contains("ferrovisor> halt"),
        "the test typed no halt, yet the transcript shows one:\n{text}"
    );
    println!("    QEMU ended when the last guest powered off");
    Ok(())
}
