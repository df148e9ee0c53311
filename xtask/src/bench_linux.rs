//! The Linux part of `cargo xtask bench`: the same kernel, initramfs and
//! workloads (`fvbench cpu`, `fvbench mem`) natively and as a ferrovisor
//! guest with the same vCPU count and RAM, under `-icount shift=0,sleep=off`.

use crate::qemu::{self, Boot, Machine, Script, Step};
use crate::{bundle, images, paths, setup};
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::time::Duration;

/// Each workload runs this many times per boot; the table keeps the minimum.
const RUNS: usize = 5;

/// Minimum counter ticks of each workload.
#[derive(Debug, Clone, Copy)]
pub struct Workloads {
    /// `fvbench cpu`.
    pub cpu: u64,
    /// `fvbench mem`.
    pub mem: u64,
}

/// The smallest `ticks=` of the `FVBENCH <cmd>` lines in `text`.
pub fn min_ticks(text: &str, cmd: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.contains(&format!("FVBENCH {cmd} ")))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("ticks=")))
        .filter_map(|v| v.parse().ok())
        .min()
}

fn commands() -> String {
    let runs = ["fvbench cpu; fvbench mem"; RUNS];
    format!("{}; echo BENCH-DONE-$((1+1))\r", runs.join("; "))
}

fn workloads(text: &str, who: &str) -> Result<Workloads> {
    Ok(Workloads {
        cpu: min_ticks(text, "cpu").with_context(|| format!("{who}: no FVBENCH cpu line"))?,
        mem: min_ticks(text, "mem").with_context(|| format!("{who}: no FVBENCH mem line"))?,
    })
}

fn script(steps: Vec<Step>) -> Script {
    Script {
        steps,
        forbid: vec![],
        expect_exit: true,
        timeout: Duration::from_secs(900),
        expect_panic: false,
    }
}

/// Runs the workloads natively and under ferrovisor; returns (native, ferrovisor).
pub fn measure(hypervisor: &Path) -> Result<(Workloads, Workloads)> {
    let linux = images::ensure_linux()?;
    let native_machine =
        Machine { virtualization: false, icount: true, smp: 2, memory: "256M", ..Machine::default() };
    let native = Boot {
        image: linux.image.clone(),
        bundle: Some(linux.initrd.clone()),
        bootargs: "console=ttyAMA0".into(),
        extra: vec![],
    };
    setup::step("Linux workloads natively (2 CPUs, 256 MiB), -icount");
    let steps = vec![
        Step::Expect("FERROVISOR-INIT: ready".into()),
        Step::Send(commands()),
        Step::Expect("BENCH-DONE-2".into()),
        Step::Send("poweroff -f\r".into()),
    ];
    let text = qemu::run_script(qemu::command(&native_machine, &native), &script(steps))
        .map_err(|e| anyhow!("native Linux: {}\n{}", e.reason, e.transcript))?
        .text;
    let native = workloads(&text, "native")?;

    let config = paths::root().join("configs/qemu-virt/linux.dts");
    let hyp = Boot {
        image: hypervisor.to_path_buf(),
        bundle: Some(bundle::make(&config)?),
        bootargs: String::new(),
        extra: vec![],
    };
    setup::step("Linux workloads under ferrovisor (guest with 2 vCPUs, 256 MiB), -icount");
    let steps = vec![
        Step::Expect("[linux0] FERROVISOR-INIT: ready".into()),
        Step::Send("console attach linux0\r".into()),
        Step::Expect("[console attached to linux0".into()),
        Step::Send(commands()),
        Step::Expect("BENCH-DONE-2".into()),
        Step::Send("poweroff -f\r".into()),
        Step::Expect("guest linux0: powered off".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let machine = Machine { icount: true, ..Machine::default() };
    let text = qemu::run_script(qemu::command(&machine, &hyp), &script(steps))
        .map_err(|e| anyhow!("Linux under ferrovisor: {}\n{}", e.reason, e.transcript))?
        .text;
    Ok((native, workloads(&text, "ferrovisor")?))
}

/// The side-by-side table in Markdown (target: within 0.05 %).
pub fn table(native: &Workloads, hyp: &Workloads) -> String {
    let mut t = String::from(
        "| Linux workload (counter ticks, 16 instructions each) | native | ferrovisor | overhead | target | met |\n| --- | ---: | ---: | ---: | --- | --- |\n",
    );
    for (what, n, h) in [
        ("fvbench cpu (CPU-bound)", native.cpu, hyp.cpu),
        ("fvbench mem (memory-bound)", native.mem, hyp.mem),
    ] {
        let pct = (h as f64 - n as f64) * 100.0 / (n as f64).max(1.0);
        t.push_str(&format!(
            "| {what} | {n} | {h} | {pct:.3} % | <= 0.05 % | {} |\n",
            if pct <= 0.05 { "yes" } else { "NO" }
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_fastest_run() {
        let text = "FVBENCH cpu ticks=120 freq=62500000 result=1\nFVBENCH mem ticks=9 freq=1 result=2\n\
                    FVBENCH cpu ticks=100 freq=62500000 result=1\nfvbench cpu; echo\n";
        assert_eq!(min_ticks(text, "cpu"), Some(100));
        assert_eq!(min_ticks(text, "mem"), Some(9));
        assert_eq!(min_ticks(text, "none"), None);
        let w = Workloads { cpu: 1000, mem: 1000 };
        assert!(table(&w, &Workloads { cpu: 1000, mem: 1001 }).contains("0.100 %"));
    }
}
