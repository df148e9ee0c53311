//! `cargo xtask bench`: deterministic measurements under QEMU `-icount
//! shift=0`, where one instruction is one nanosecond of virtual time and the
//! 62.5 MHz system counter advances once per 16 instructions.
//!
//! It measures the boot (instructions from reset to the shell) and the
//! footprint, then the probe guest's MMIO, hypercall and interrupt paths
//! (bench_probe) and the Linux workloads (bench_linux), each natively and
//! under the hypervisor in one run, side by side.

use crate::itests::kib_after;
use crate::qemu::{self, Boot, Machine, Step};
use crate::{build, bundle, paths, setup};
use anyhow::{Context, Result};
use clap::Args;
use std::time::Duration;

/// Options of `cargo xtask bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Also write the results into docs/benchmarks.md.
    #[arg(long)]
    pub write: bool,
    /// Leave out the Linux workloads (the longest part: two Linux boots);
    /// the doc is then not written.
    #[arg(long, conflicts_with = "write")]
    pub skip_linux: bool,
}

/// Instructions per counter tick under `-icount shift=0` (1 GHz / 62.5 MHz).
pub const INSNS_PER_TICK: u64 = 16;

/// One measured figure with its target.
struct Row {
    what: &'static str,
    value: u64,
    unit: &'static str,
    target: u64,
}

/// Reads the counter value from the banner's `boot:` line.
pub fn boot_ticks(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.trim_start().starts_with("boot:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `cargo xtask bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    setup::ensure_all()?;
    let image = build::hypervisor()?;
    let config = paths::root().join("configs/qemu-virt/default.dts");
    let bundle = bundle::make(&config)?;
    let machine = Machine { icount: true, ..Machine::default() };
    let boot = Boot {
        image: image.clone(),
        bundle: Some(bundle),
        bootargs: qemu::bootargs_for(Some("halt"))?,
        extra: vec![],
    };
    let steps = vec![Step::Expect("footprint:".into()), Step::Expect("ferrovisor: halting".into())];
    setup::step("booting under -icount shift=0");
    let text = qemu::run_steps(&machine, &boot, steps, Duration::from_secs(120), "boot under -icount")?;
    let ticks = boot_ticks(&text).context("no `boot:` line in the banner")?;
    let image_kib = kib_after(&text, "image ").context("no image size in the banner")?;
    let total_kib = kib_after(&text, "hypervisor memory ").context("no memory size in the banner")?;
    let rows = [
        Row {
            what: "boot: reset to shell (4 CPUs, default config)",
            value: ticks * INSNS_PER_TICK,
            unit: "instructions",
            target: 100_000_000,
        },
        Row { what: "hypervisor image", value: image_kib, unit: "KiB", target: 1024 },
        Row {
            what: "hypervisor memory (image, bss, stacks, heap)",
            value: total_kib,
            unit: "KiB",
            target: 16 * 1024,
        },
    ];
    setup::step("probe guest: native against ferrovisor");
    crate::build::guests()?;
    let (native, hyp) = crate::bench_probe::measure(&image)?;
    setup::step("SGI round trips under the profiler (spinning share, exits by reason)");
    let ipi = crate::bench_probe::profile_ipi()?;
    let probe_table =
        format!("{}\n{}", crate::bench_probe::table(&native, &hyp), crate::bench_probe::ipi_table(&ipi));
    println!("{probe_table}");
    let linux_table = if args.skip_linux {
        String::new()
    } else {
        let (lnative, lhyp) = crate::bench_linux::measure(&image)?;
        format!(
            "{}\n{}",
            crate::bench_linux::table(&lnative, &lhyp),
            crate::bench_linux::ping_table(&lnative, &lhyp)
        )
    };
    println!("{linux_table}");
    let mut table = String::from("| measure | value | target | met |\n| --- | ---: | ---: | --- |\n");
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} {} | {} {} | {} |\n",
            r.what,
            r.value,
            r.unit,
            r.target,
            r.unit,
            if r.value <= r.target { "yes" } else { "NO" }
        ));
    }
    println!("{table}");
    if args.write {
        write_doc(&format!("{table}\n{probe_table}\n{linux_table}"))?;
    }
    Ok(())
}

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

fn write_doc(table: &str) -> Result<()> {
    let path = paths::root().join("docs/benchmarks.md");
    let doc = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (Some(a), Some(b)) = (doc.find(BEGIN), doc.find(END)) else {
        anyhow::bail!("{} has no {BEGIN} ... {END} markers", path.display());
    };
    let new = format!("{}{BEGIN}\n{table}{}", &doc[..a], &doc[b..]);
    std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))?;
    setup::step(format!("wrote {}", path.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_boot_ticks() {
        assert_eq!(boot_ticks("x\n  boot:      12345 counter ticks since reset (197 us)\n"), Some(12345));
        assert_eq!(boot_ticks("no banner"), None);
    }
}
