//! `cargo xtask profile`: boots a config under `-icount shift=0,sleep=off`
//! with the TCG plugin of tools/profile-plugin, then prints per pCPU the
//! instructions in the hypervisor, guest kernel and guest low VAs, the
//! hottest hypervisor functions, and the exits with hypervisor instructions
//! per exit (docs/benchmarks.md, "How to profile").

use crate::profile_report::{self as report, Profile};
use crate::qemu::{self, Boot, Machine, Step};
use crate::{build, paths, setup};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Options of `cargo xtask profile`.
#[derive(Args)]
pub struct ProfileArgs {
    /// The config to boot (default: configs/qemu-virt/bench-probe.dts).
    #[arg(long, value_name = "FILE.dts")]
    pub config: Option<PathBuf>,
    /// Shell commands to run at boot, separated by ';' (no `halt`: the
    /// profiler halts the board itself).
    #[arg(long, value_name = "CMDS")]
    pub bootcmd: Option<String>,
    /// Extra hypervisor boot arguments (e.g. ferrovisor.loglevel=debug).
    #[arg(long, value_name = "ARGS")]
    pub bootargs: Option<String>,
    /// End the measurement when the console shows this text: the profiler
    /// then types `vcpu list` (for the exit counts) and `halt`. Default:
    /// the bench probe's last line.
    #[arg(long, value_name = "TEXT", default_value = "PROBE bench DONE")]
    pub until: String,
    /// Give up after this many seconds of host time.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    /// How many hypervisor functions to list.
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub top: usize,
    /// The board: CPU model, CPU count, RAM, RTC start, SMMU. Without
    /// --rtc-base the RTC starts at 2020-01-01 on the virtual clock, so
    /// runs repeat exactly.
    #[command(flatten)]
    pub board: crate::board::BoardArgs,
    /// Attach this raw disk image as a virtio-blk device (as `run --disk`).
    #[arg(long, value_name = "FILE")]
    pub disk: Option<PathBuf>,
    /// Pass one more argument to QEMU (repeatable).
    #[arg(long = "qemu", value_name = "ARG", allow_hyphen_values = true)]
    pub qemu_args: Vec<String>,
}

/// What a profiled run gives: the plugin's counts, the console text, and
/// the summary.
pub struct Outcome {
    /// The plugin's counts.
    pub profile: Profile,
    /// Hypervisor instructions per function, hottest first.
    pub hot: Vec<report::HotFn>,
    /// Exit reasons and exits per pCPU, from `vcpu list`.
    pub exits: Option<report::Exits>,
    /// The printed summary.
    pub summary: String,
}

/// Builds the plugin (its own workspace, GPL) and returns the library's path.
pub fn build_plugin() -> Result<PathBuf> {
    let dir = paths::root().join("tools/profile-plugin");
    let target = paths::root().join("target/profile-plugin");
    setup::step("building tools/profile-plugin (QEMU TCG plugin, release)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&dir)
        .args(["build", "--release", "--target-dir"])
        .arg(&target)
        .status()
        .context("running cargo build for tools/profile-plugin")?;
    if !status.success() {
        bail!("building tools/profile-plugin failed");
    }
    Ok(target.join("release/libferrovisor_profile_plugin.so"))
}

/// The hypervisor's loaded range (`__image_start` to `__image_file_end`)
/// from its ELF.
fn image_range(elf: &[u8]) -> Result<(u64, u64)> {
    use object::{Object, ObjectSymbol};
    let file = object::File::parse(elf).context("parsing the hypervisor ELF")?;
    let find = |name: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
            .with_context(|| format!("no symbol {name} in the hypervisor ELF (hypervisor/linker.ld)"))
    };
    Ok((find("__image_start")?, find("__image_file_end")?))
}

/// Boots `config` under the plugin, ends at `until` with `vcpu list` and
/// `halt`, and summarises.
pub fn profile(args: &ProfileArgs) -> Result<Outcome> {
    let mut machine = Machine { icount: true, ..args.board.machine()? };
    let config =
        args.config.clone().unwrap_or_else(|| paths::root().join("configs/qemu-virt/bench-probe.dts"));
    let plugin = build_plugin()?;
    let built = build::build_all(&config)?;
    let elf_path = build::hypervisor_elf();
    let elf = std::fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    let (start, end) = image_range(&elf)?;
    let syms = report::Symbols::from_elf(&elf)?;
    let out = paths::out().join(format!("profile-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&out);

    if args.bootcmd.as_deref().is_some_and(|c| c.split(';').any(|w| w.trim() == "halt")) {
        bail!("--bootcmd: leave out `halt`; the profiler halts the board after --until");
    }
    let bootargs = qemu::hypervisor_bootargs(args.bootcmd.as_deref(), args.bootargs.as_deref())?;
    let mut extra = args.qemu_args.clone();
    if machine.rtc_base.is_none() {
        machine.rtc_base = Some("2020-01-01T00:00:00,clock=vm".into());
    }
    if let Some(disk) = &args.disk {
        extra.extend(qemu::disk_option("--disk", disk, qemu::virtio_disk)?);
    }
    extra.extend([
        "-plugin".into(),
        format!("{},arg=hyp={start:#x}-{end:#x},arg=out={}", plugin.display(), out.display()),
    ]);
    let boot = Boot { image: built.image, bundle: Some(built.bundle), bootargs, extra };
    let steps = vec![
        Step::Expect(args.until.clone()),
        Step::Send("vcpu list\r".into()),
        Step::Expect("loads faults".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    setup::step(format!("profiling {} under -icount (until '{}')", qemu::display(&config), args.until));
    let text = qemu::run_steps(&machine, &boot, steps, Duration::from_secs(args.timeout), "profiled run")?;
    let raw = std::fs::read_to_string(&out)
        .with_context(|| format!("the plugin wrote no report to {}", qemu::display(&out)))?;
    let _ = std::fs::remove_file(&out);
    let profile = report::parse(&raw)?;
    let hot = report::hot_functions(&profile, &syms);
    let exits = report::exits(&text).ok();
    let summary = report::render(&profile, &hot, exits.as_ref(), args.top);
    Ok(Outcome { profile, hot, exits, summary })
}

/// `cargo xtask profile`.
pub fn run(args: ProfileArgs) -> Result<()> {
    setup::ensure_all()?;
    let outcome = profile(&args)?;
    print!("{}", outcome.summary);
    Ok(())
}

/// Clippy over the plugin crate (its own workspace), for `cargo xtask check`.
pub fn clippy_plugin(root: &Path) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    setup::step("cargo clippy (tools/profile-plugin) and its tests");
    for args in
        [&["fmt", "--check"][..], &["clippy", "--all-targets", "--", "-D", "warnings"], &["test", "-q"]]
    {
        let status = Command::new(&cargo)
            .current_dir(root.join("tools/profile-plugin"))
            .args(args)
            .env("CARGO_TARGET_DIR", root.join("target/profile-plugin"))
            .status()
            .with_context(|| format!("running cargo {} in tools/profile-plugin", args.join(" ")))?;
        if !status.success() {
            bail!("`cargo {}` failed in tools/profile-plugin", args.join(" "));
        }
    }
    Ok(())
}

/// The `profile` integration test: the bench probe under the plugin. The
/// probe's pCPU runs both hypervisor and guest code (the probe is linked at
/// the hypervisor's address: this fails if guest code counted as the
/// hypervisor's), the exit entry runs at least once per exit counted by
/// the hypervisor, and the fast hypercall path shows among the functions.
pub fn itest(_: &crate::itests::Env) -> Result<()> {
    let board = crate::board::BoardArgs {
        cpu: "max".into(),
        smp: 4,
        memory: "2G".into(),
        rtc_base: None,
        smmu: false,
        edu: false,
    };
    let args = ProfileArgs {
        config: None,
        bootcmd: None,
        bootargs: None,
        until: "PROBE bench DONE".into(),
        timeout: 120,
        top: 15,
        board,
        disk: None,
        qemu_args: vec![],
    };
    let o = profile(&args)?;
    let fail = |what: String| anyhow::anyhow!("{what}\n{}", o.summary);
    let exits = o.exits.as_ref().ok_or_else(|| fail("no exit counts parsed".into()))?;
    let reasons = &exits.reasons;
    let (&cpu, counts) = exits.per_cpu.iter().next().ok_or_else(|| fail("no pCPU ran a vCPU".into()))?;
    let n_exits: u64 = counts.iter().sum();
    let hvc = reasons.iter().position(|r| r == "hvc").and_then(|i| counts.get(i)).copied().unwrap_or(0);
    if hvc < 1000 {
        return Err(fail(format!("pCPU {cpu}: {hvc} hvc exits, the probe makes 1000")));
    }
    let split = o.profile.cpus.get(&cpu).copied().unwrap_or_default();
    if split.hyp == 0 || split.low < 10_000 {
        return Err(fail(format!(
            "pCPU {cpu}: {split:?}: want hypervisor > 0 and guest >= 10,000 instructions"
        )));
    }
    let insns = |name: &str| {
        o.hot.iter().find(|h| h.name == name).map_or(0, |h| h.per_cpu.get(&cpu).copied().unwrap_or(0))
    };
    if insns("guest_exit") < n_exits {
        return Err(fail(format!(
            "guest_exit ran {} instructions on pCPU {cpu}, fewer than its {n_exits} exits",
            insns("guest_exit")
        )));
    }
    if insns("ferrovisor::arch::aarch64::guest::fast_sync") == 0 {
        return Err(fail("the fast exit path (fast_sync) does not appear".into()));
    }
    Ok(())
}
