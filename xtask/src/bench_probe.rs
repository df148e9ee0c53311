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
            [bench] PROBE bench rtcirq: PASS n=3 irqs=3 lat_ticks_min=193 lat_ticks_avg=193 lat_ticks_max=194\n";
        let c = costs(text).unwrap();
        assert_eq!(c.hvc, 192.0);
        assert_eq!(c.mmio_pt, 3.008);
        assert_eq!(c.mmio_pt_exits, Some(0));
        assert_eq!(c.irq, 193.0 * 16.0);
        assert!(table(&c, &c).contains("| yes |"));
    }
}
