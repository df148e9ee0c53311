//! `cargo xtask profile`: boots a config under `-icount shift=0,sleep=off`
//! with the TCG plugin of tools/profile-plugin, then prints per pCPU the
//! instructions in the hypervisor, guest kernel and guest low VAs, the
//! hottest hypervisor functions, the share spent waiting for locks, and
//! the hypervisor instructions per exit by exit reason (docs/benchmarks.md,
//! "How to profile").
//!
//! The profiled hypervisor is the profiling build: the benchmarked code
//! plus one marker call per exit (`core/vm/markers.rs`), whose addresses
//! the plugin is given to tell the exit reasons apart.

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
    /// Attach the console to this guest once it shows --ready, type --type
    /// into it, and detach (Ctrl-]) after --until: how to profile a
    /// workload inside a Linux guest.
    #[arg(long, value_name = "GUEST", requires = "type_")]
    pub attach: Option<String>,
    /// With --attach: the guest's line that says it takes commands.
    #[arg(long, value_name = "TEXT", default_value = "FERROVISOR-INIT: ready")]
    pub ready: String,
    /// With --attach: the command line typed into the guest (e.g.
    /// "taskset 2 fvbench cpu").
    #[arg(long = "type", id = "type_", value_name = "CMDS", requires = "attach")]
    pub type_: Option<String>,
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

impl ProfileArgs {
    /// A run on the bench's board (QEMU virt, `-cpu max`, 4 CPUs, 2 GiB, the
    /// RTC on the virtual clock): `config` (default: the bench probe) until
    /// the console shows `until`, nothing typed, at most `timeout` seconds.
    pub fn bench(config: Option<PathBuf>, until: &str, timeout: u64) -> Self {
        Self {
            config,
            bootcmd: None,
            bootargs: None,
            until: until.into(),
            timeout,
            top: 15,
            board: crate::board::BoardArgs {
                cpu: "max".into(),
                smp: 4,
                memory: "2G".into(),
                rtc_base: None,
                smmu: false,
                edu: false,
            },
            disk: None,
            qemu_args: vec![],
            attach: None,
            ready: String::new(),
            type_: None,
        }
    }
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

/// The prefix of the profiling build's exit markers' names
/// (`core/vm/markers.rs`), demangled.
const MARKER_PREFIX: &str = "ferrovisor::core::vm::markers::exit_";

/// The exit markers of the profiling build: entry address and reason.
fn markers(elf: &[u8]) -> Result<Vec<(u64, String)>> {
    use object::{Object, ObjectSymbol};
    let file = object::File::parse(elf).context("parsing the hypervisor ELF")?;
    let marks: Vec<(u64, String)> = file
        .symbols()
        .filter_map(|s| {
            let name = report::demangle(s.name().ok()?);
            Some((s.address(), name.strip_prefix(MARKER_PREFIX)?.to_string()))
        })
        .collect();
    if marks.is_empty() {
        bail!("the profiling build has no {MARKER_PREFIX}* symbols (hypervisor/src/core/vm/markers.rs)");
    }
    Ok(marks)
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
    // The bundle is checked against the benchmarked build; the profiled
    // run boots the profiling build (the same code plus exit markers).
    let built = build::build_all(&config)?;
    let (image, elf_path) = build::hypervisor_profiled()?;
    let elf = std::fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    let (start, end) = image_range(&elf)?;
    let marks = markers(&elf)?;
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
    let mut plugin_args =
        format!("{},arg=hyp={start:#x}-{end:#x},arg=out={}", plugin.display(), out.display());
    for (addr, reason) in &marks {
        plugin_args.push_str(&format!(",arg=mark={addr:#x}:{reason}"));
    }
    extra.extend(["-plugin".into(), plugin_args]);
    let boot = Boot { image, bundle: Some(built.bundle), bootargs, extra };
    let mut steps = Vec::new();
    if let (Some(guest), Some(cmds)) = (&args.attach, &args.type_) {
        steps.extend([
            Step::Expect(format!("[{guest}] {}", args.ready)),
            Step::Send(format!("console attach {guest}\r")),
            Step::Expect(format!("[console attached to {guest}")),
            Step::Send(format!("{cmds}\r")),
            Step::Expect(args.until.clone()),
            Step::Send("\x1d".into()),
            Step::Expect("[console detached]".into()),
        ]);
    } else {
        steps.push(Step::Expect(args.until.clone()));
    }
    steps.extend([
        Step::Send("vcpu list\r".into()),
        Step::Expect("loads faults".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ]);
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
/// the hypervisor, the fast hypercall path shows among the functions, and
/// the exits the plugin attributes to hvc are the hypervisor's hvc exits.
pub fn itest(_: &crate::itests::Env) -> Result<()> {
    let args = ProfileArgs::bench(None, "PROBE bench DONE", 120);
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
    // Exits by reason: the plugin's hvc exits (marker) agree with the
    // hypervisor's own count over all pCPUs (the run's last exit may still
    // be open), and each costs what the fast path costs, roughly.
    let listed_hvc: u64 = reasons
        .iter()
        .position(|r| r == "hvc")
        .map_or(0, |i| exits.per_cpu.values().filter_map(|c| c.get(i)).sum());
    let hvc =
        o.profile.exits.iter().find(|e| e.reason == "hvc").ok_or_else(|| fail("no hvc exit line".into()))?;
    if hvc.exits > listed_hvc || hvc.exits + 2 < listed_hvc {
        return Err(fail(format!(
            "the plugin saw {} hvc exits, the hypervisor counted {listed_hvc}",
            hvc.exits
        )));
    }
    let each = hvc.insns / hvc.exits.max(1);
    if !(30..=1000).contains(&each) {
        return Err(fail(format!(
            "{each} hypervisor instructions per hvc exit: not a plausible attribution"
        )));
    }
    Ok(())
}
