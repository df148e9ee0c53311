//! The probe part of `cargo xtask bench`: the same probe tests run natively
//! (QEMU at EL1, no hypervisor) and as a ferrovisor guest, under `-icount
//! shift=0,sleep=off`, side by side.

use crate::qemu::{self, Boot, Machine, Step};
use crate::{bundle, paths, setup};
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::time::Duration;

/// The probe's boot arguments, identical in both runs (and in
/// configs/qemu-virt/bench-probe.dts).
pub const BOOTARGS: &str =
    "probe.name=bench probe.tests=hvcloop=1000,mmioread=0x09010000,1000,mmioread=0x09000018,1000,rtcirq=3,sgiping=1000";

/// The RTC starts at a whole second of virtual time, so alarms are exact.
const RTC: [&str; 2] = ["-rtc", "base=2020-01-01T00:00:00,clock=vm"];

/// Instructions per counter tick under `-icount shift=0` (1 GHz / 62.5 MHz).
const INSNS_PER_TICK: f64 = 16.0;

/// Per-operation costs in instructions, from one run.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    /// One HVC round trip.
    pub hvc: f64,
    /// One read of the passed-through PL031 register.
    pub mmio_pt: f64,
    /// Exits taken by the passed-through reads (under ferrovisor).
    pub mmio_pt_exits: Option<u64>,
    /// One read of the PL011 flag register (trapped and emulated under
    /// ferrovisor, the real UART natively).
    pub mmio_trap: f64,
    /// From the RTC alarm's assertion to the guest handler.
    pub irq: f64,
    /// One SGI round trip between two vCPUs (two IPIs, each vCPU waiting
    /// in WFI on its own pCPU).
    pub sgi: f64,
}

/// `key=value` of a probe result line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn line<'a>(text: &'a str, test: &str, extra: &str) -> Result<&'a str> {
    text.lines()
        .find(|l| l.contains(&format!("PROBE bench {test}: PASS")) && l.contains(extra))
        .ok_or_else(|| anyhow!("no passing '{test}' line ({extra}) in the probe output"))
}

fn per_op(l: &str) -> Result<f64> {
    let n: f64 = field(l, "n").context("n=")?.parse()?;
    let ticks: f64 = field(l, "ticks").context("ticks=")?.parse()?;
    Ok(ticks * INSNS_PER_TICK / n)
}

/// Parses the probe's lines.
pub fn costs(text: &str) -> Result<Costs> {
    let pt = line(text, "mmioread", "addr=0x9010000")?;
    Ok(Costs {
        hvc: per_op(line(text, "hvcloop", "")?)?,
        mmio_pt: per_op(pt)?,
        mmio_pt_exits: field(pt, "exits_dabt").and_then(|v| v.parse().ok()),
        mmio_trap: per_op(line(text, "mmioread", "addr=0x9000018")?)?,
        irq: field(line(text, "rtcirq", "")?, "lat_ticks_avg").context("lat_ticks_avg=")?.parse::<f64>()?
            * INSNS_PER_TICK,
        sgi: per_op(
            text.lines()
                .find(|l| l.contains("PROBE bench sgiping=") && l.contains(": PASS"))
                .ok_or_else(|| anyhow!("no passing 'sgiping' line in the probe output"))?,
        )?,
    })
}

/// Limit for each probe session.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the probe natively and under ferrovisor; returns (native, ferrovisor).
pub fn measure(hypervisor: &Path) -> Result<(Costs, Costs)> {
    let probe = paths::images().join("guests/probe.bin");
    let native_machine = Machine { virtualization: false, icount: true, ..Machine::default() };
    let native = Boot {
        image: probe,
        bundle: None,
        bootargs: BOOTARGS.into(),
        extra: RTC.iter().map(|s| s.to_string()).collect(),
    };
    setup::step("probe natively (EL1, no hypervisor), -icount");
    let steps = vec![Step::Expect("PROBE bench DONE".into())];
    let text = qemu::run_steps(&native_machine, &native, steps, TIMEOUT, "native probe")?;
    let native = costs(&text).context("native probe run")?;

    let config = paths::root().join("configs/qemu-virt/bench-probe.dts");
    let hyp = Boot {
        image: hypervisor.to_path_buf(),
        bundle: Some(bundle::make(&config)?),
        bootargs: String::new(),
        extra: RTC.iter().map(|s| s.to_string()).collect(),
    };
    setup::step("probe under ferrovisor, -icount");
    let steps = vec![
        Step::Expect("[bench] PROBE bench DONE".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let machine = Machine { icount: true, ..Machine::default() };
    let text = qemu::run_steps(&machine, &hyp, steps, TIMEOUT, "probe under ferrovisor")?;
    Ok((native, costs(&text).context("probe under ferrovisor")?))
}

/// The side-by-side table in Markdown.
pub fn table(native: &Costs, hyp: &Costs) -> String {
    let mut t = String::from(
        "| operation (instructions each) | native | ferrovisor | added | target | met |\n| --- | ---: | ---: | ---: | --- | --- |\n",
    );
    let mut row = |what: &str, n: f64, h: f64, target: &str, met: bool| {
        t.push_str(&format!(
            "| {what} | {n:.0} | {h:.0} | {:.0} | {target} | {} |\n",
            // Rounded, and never "-0" for a cost below one instruction.
            (h - n).round() + 0.0,
            if met { "yes" } else { "NO" }
        ));
    };
    let exits = hyp.mmio_pt_exits.unwrap_or(u64::MAX);
    row(
        &format!("passed-through MMIO read (PL031), exits: {exits}"),
        native.mmio_pt,
        hyp.mmio_pt,
        "as native, 0 exits",
        exits == 0 && (hyp.mmio_pt - native.mmio_pt).abs() < 1.0,
    );
    row(
        "trapped MMIO read (PL011 FR, emulated)",
        native.mmio_trap,
        hyp.mmio_trap,
        "adds <= 500",
        hyp.mmio_trap - native.mmio_trap <= 500.0,
    );
    row(
        "hypercall round trip",
        native.hvc,
        hyp.hvc,
        "<= 100 in the hypervisor",
        hyp.hvc - native.hvc <= 100.0,
    );
    row(
        "device interrupt to guest handler (PL031 alarm, guest in WFI)",
        native.irq,
        hyp.irq,
        "adds <= 200",
        hyp.irq - native.irq <= 200.0,
    );
    row(
        "vCPU-to-vCPU SGI round trip (2 IPIs, each vCPU in WFI on its own pCPU)",
        native.sgi,
        hyp.sgi,
        &format!("adds <= {SGI_TARGET}"),
        hyp.sgi - native.sgi <= SGI_TARGET as f64,
    );
    t
}

/// Target for what ferrovisor adds to an SGI round trip (issue 14).
pub const SGI_TARGET: u64 = 600;
/// Target for the share of hypervisor instructions spent waiting for
/// locks in the profiled SGI round trips, in percent.
pub const SPIN_TARGET: f64 = 5.0;

/// What the profiler shows of the SGI round trips
/// (configs/qemu-virt/bench-ipi.dts): the two pCPUs that run them.
pub struct IpiProfile {
    /// Hypervisor instructions on those pCPUs.
    pub hyp: u64,
    /// Of which waiting for a lock another pCPU holds.
    pub spinning: u64,
    /// Exits by reason (all pCPUs): reason, exits, instructions per exit.
    pub exits: Vec<(String, u64, f64)>,
}

/// Runs the SGI round trips under the profiler (its profiling build).
pub fn profile_ipi() -> Result<IpiProfile> {
    let args = crate::profile::ProfileArgs::bench(
        Some(paths::root().join("configs/qemu-virt/bench-ipi.dts")),
        "PROBE bench DONE",
        TIMEOUT.as_secs(),
    );
    let o = crate::profile::profile(&args)?;
    if !o.profile.cpus.contains_key(&2) {
        anyhow::bail!("the profiled SGI run did not use pCPU 2:\n{}", o.summary);
    }
    let on = |cpu: &usize| *cpu == 1 || *cpu == 2;
    let hyp = o.profile.cpus.iter().filter(|(c, _)| on(c)).map(|(_, s)| s.hyp).sum();
    let waiting: Vec<_> =
        o.hot.iter().filter(|h| ferrovisor_sync::CONTENDED_FNS.iter().any(|f| h.name.ends_with(f))).collect();
    let spinning = waiting.iter().flat_map(|h| h.per_cpu.iter()).filter(|(c, _)| on(c)).map(|(_, n)| n).sum();
    let exits = o
        .profile
        .exits
        .iter()
        .filter(|e| e.exits > 0)
        .map(|e| (e.reason.clone(), e.exits, e.insns as f64 / e.exits as f64))
        .collect();
    Ok(IpiProfile { hyp, spinning, exits })
}

/// The profiled SGI round trips' table.
pub fn ipi_table(p: &IpiProfile) -> String {
    let share = if p.hyp == 0 { 0.0 } else { 100.0 * p.spinning as f64 / p.hyp as f64 };
    let mut t = String::from(
        "| SGI round trips under the profiler (pCPUs 1 and 2) | value | target | met |\n| --- | ---: | ---: | --- |\n",
    );
    t.push_str(&format!(
        "| spinning: hypervisor instructions waiting for a lock another pCPU holds | {share:.2} % ({} of {}) | <= {SPIN_TARGET} % | {} |\n",
        p.spinning,
        p.hyp,
        if share <= SPIN_TARGET { "yes" } else { "NO" }
    ));
    for (reason, n, each) in &p.exits {
        t.push_str(&format!(
            "| hypervisor instructions per `{reason}` exit ({n} exits) | {each:.0} | - | - |\n"
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probe_lines() {
        let text = "[bench] PROBE bench hvcloop: PASS n=1000 ticks=12000 fid=0xc6000000\n\
            [bench] PROBE bench mmioread: PASS addr=0x9010000 n=1000 ticks=188 exits_dabt=0 exits_total=1\n\
            [bench] PROBE bench mmioread: PASS addr=0x9000018 n=1000 ticks=26188 exits_dabt=1000 exits_total=1001\n\
            [bench] PROBE bench rtcirq: PASS n=3 irqs=3 lat_ticks_min=193 lat_ticks_avg=193 lat_ticks_max=194\n\
            [bench] PROBE bench sgiping=1000: PASS n=1000 done=1000 answered=1000 ticks=50000 other=0x1 off=yes affinity_info=1\n";
        let c = costs(text).unwrap();
        assert_eq!(c.hvc, 192.0);
        assert_eq!(c.mmio_pt, 3.008);
        assert_eq!(c.mmio_pt_exits, Some(0));
        assert_eq!(c.irq, 193.0 * 16.0);
        assert_eq!(c.sgi, 800.0);
        let native = Costs { sgi: 40.0, ..c };
        assert!(
            table(&native, &c).contains("| 40 | 800 | 760 | adds <= 600 | NO |"),
            "{}",
            table(&native, &c)
        );
        let p = IpiProfile { hyp: 1000, spinning: 10, exits: vec![("irq".into(), 4, 250.0)] };
        let t = ipi_table(&p);
        assert!(t.contains("| 1.00 % (10 of 1000) | <= 5 % | yes |"), "{t}");
        assert!(t.contains("per `irq` exit (4 exits) | 250 |"), "{t}");
        assert!(table(&c, &c).contains("| yes |"));
    }
}
