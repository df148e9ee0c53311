//! The Linux part of `cargo xtask bench`: the same kernel, initramfs and
//! workloads (`fvbench cpu`, `fvbench mem`) natively and as a ferrovisor
//! guest with the same vCPU count and RAM, under `-icount shift=0,sleep=off`.

use crate::qemu::{self, Boot, Machine, Step};
use crate::{bundle, images, paths, setup};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

/// Each workload runs this many times per boot and CPU; the table keeps
/// the minimum.
const RUNS: usize = 5;

/// The guest CPUs the workloads are pinned to (`taskset`), in turn: where
/// Linux places a task changes what its idle CPU does, so both placements
/// are measured, the same natively and under ferrovisor.
pub const CPUS: [u32; 2] = [0, 1];

/// Minimum counter ticks of each workload, by guest CPU (index into
/// [`CPUS`]).
#[derive(Debug, Clone, Copy)]
pub struct Workloads {
    /// `fvbench cpu`.
    pub cpu: [u64; CPUS.len()],
    /// `fvbench mem`.
    pub mem: [u64; CPUS.len()],
}

/// The smallest `ticks=` of the `FVBENCH <cmd>` lines in `text` that ran
/// on guest CPU `cpu` (`cpu=` field).
pub fn min_ticks(text: &str, cmd: &str, cpu: u32) -> Option<u64> {
    let on = format!("cpu={cpu}");
    text.lines()
        .filter(|l| l.contains(&format!("FVBENCH {cmd} ")) && l.split_whitespace().any(|w| w == on))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("ticks=")))
        .filter_map(|v| v.parse().ok())
        .min()
}

fn commands() -> String {
    let mut runs = Vec::new();
    for cpu in CPUS {
        let mask = 1u32 << cpu;
        let run = format!("taskset {mask} fvbench cpu; taskset {mask} fvbench mem");
        runs.extend(std::iter::repeat_n(run, RUNS));
    }
    format!("{}; echo BENCH-DONE-$((1+1))\r", runs.join("; "))
}

fn workloads(text: &str, who: &str) -> Result<Workloads> {
    let mut w = Workloads { cpu: [0; CPUS.len()], mem: [0; CPUS.len()] };
    for (i, cpu) in CPUS.into_iter().enumerate() {
        let get = |cmd: &str| {
            min_ticks(text, cmd, cpu).with_context(|| format!("{who}: no FVBENCH {cmd} line with cpu={cpu}"))
        };
        w.cpu[i] = get("cpu")?;
        w.mem[i] = get("mem")?;
    }
    Ok(w)
}

/// Limit for each Linux session.
const TIMEOUT: Duration = Duration::from_secs(900);

/// Runs the workloads natively and under ferrovisor; returns (native, ferrovisor).
pub fn measure(hypervisor: &Path) -> Result<(Workloads, Workloads)> {
    let linux = images::ensure_linux()?;
    let native_machine =
        Machine { virtualization: false, icount: true, smp: 2, memory: "256M".into(), ..Machine::default() };
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
    let text = qemu::run_steps(&native_machine, &native, steps, TIMEOUT, "native Linux")?;
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
    let text = qemu::run_steps(&machine, &hyp, steps, TIMEOUT, "Linux under ferrovisor")?;
    Ok((native, workloads(&text, "ferrovisor")?))
}

/// The side-by-side table in Markdown (target: within 0.05 %).
pub fn table(native: &Workloads, hyp: &Workloads) -> String {
    let mut t = String::from(
        "| Linux workload (counter ticks, 16 instructions each) | native | ferrovisor | overhead | target | met |\n| --- | ---: | ---: | ---: | --- | --- |\n",
    );
    for (i, cpu) in CPUS.into_iter().enumerate() {
        for (what, n, h) in [
            ("fvbench cpu (CPU-bound)", native.cpu[i], hyp.cpu[i]),
            ("fvbench mem (memory-bound)", native.mem[i], hyp.mem[i]),
        ] {
            let pct = (h as f64 - n as f64) * 100.0 / (n as f64).max(1.0);
            t.push_str(&format!(
                "| {what} on CPU {cpu} | {n} | {h} | {pct:.3} % | <= 0.05 % | {} |\n",
                if pct <= 0.05 { "yes" } else { "NO" }
            ));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_fastest_run_per_cpu() {
        let text = "FVBENCH cpu ticks=120 freq=62500000 result=1 cpu=0\nFVBENCH mem ticks=9 freq=1 result=2 cpu=0\n\
                    FVBENCH cpu ticks=100 freq=62500000 result=1 cpu=0\nFVBENCH cpu ticks=90 freq=1 result=1 cpu=1\n\
                    FVBENCH cpu ticks=80 freq=1 result=1 cpu=?\nfvbench cpu; echo\n";
        assert_eq!(min_ticks(text, "cpu", 0), Some(100));
        assert_eq!(min_ticks(text, "cpu", 1), Some(90));
        assert_eq!(min_ticks(text, "mem", 0), Some(9));
        assert_eq!(min_ticks(text, "mem", 1), None);
        assert_eq!(min_ticks(text, "none", 0), None);
        let w = Workloads { cpu: [1000, 1000], mem: [1000, 1000] };
        let t = table(&w, &Workloads { cpu: [1000, 1001], mem: [1000, 1000] });
        assert!(
            t.contains("| fvbench cpu (CPU-bound) on CPU 1 | 1000 | 1001 | 0.100 % | <= 0.05 % | NO |"),
            "{t}"
        );
        assert!(commands().contains("taskset 2 fvbench mem"));
    }
}
