//! `cargo xtask`: build, run, test and validate ferrovisor.
//!
//! Every command first installs what it needs and is missing (Debian
//! packages, the Rust target), saying what it does, so that a fresh machine
//! needs nothing but this repository.

mod bench;
mod bench_linux;
mod bench_probe;
mod board;
mod build;
mod bundle;
mod check;
mod image;
mod images;
mod itests;
mod layers;
mod paths;
mod placement;
mod profile;
mod profile_report;
mod qemu;
mod run;
mod setup;
mod test;
mod validate;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// ferrovisor's developer tool: build, run, test and validate the hypervisor.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build everything and boot a config in QEMU, console on this terminal.
    ///
    /// The hypervisor console is this terminal; press Ctrl-A then X to quit
    /// QEMU at any time, or type `halt` at the ferrovisor prompt.
    Run(run::RunArgs),
    /// Run the host unit tests and the QEMU integration tests.
    Test(test::TestArgs),
    /// Check a config (.dts) against the QEMU virt host DT, as the hypervisor
    /// does at boot; exits non-zero on any error.
    Validate(validate::ValidateArgs),
    /// Build the hypervisor image and a boot bundle without running them.
    Build(build::BuildArgs),
    /// Formatting, clippy (host and EL2 target, warnings denied) and host
    /// unit tests: run before committing.
    Check,
    /// Fetch and build the guest images: Debian's arm64 cloud kernel and a
    /// busybox initramfs.
    Images(images::ImagesArgs),
    /// Measure deterministically under QEMU -icount: boot instructions and
    /// footprint (docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Count where every instruction goes, under QEMU -icount with a TCG
    /// plugin (tools/profile-plugin, GPL): per pCPU, instructions in the
    /// hypervisor, guest kernel and guest low VAs; the hottest hypervisor
    /// functions; exits and hypervisor instructions per exit.
    ///
    /// Boots --config (default: the bench probe), waits for --until on the
    /// console, types `vcpu list` and `halt`, and prints the summary
    /// (docs/benchmarks.md, "How to profile"). Counts cover the whole run,
    /// boot included; unless --rtc-base is given the RTC starts at
    /// 2020-01-01 on the virtual clock, so runs repeat exactly. Guest
    /// instructions are split by address only (the plugin API QEMU 7.2
    /// takes gives no exception level): upper-half VAs are "guest kernel",
    /// lower-half ones "guest low" (Linux user space, and all of a
    /// bare-metal guest).
    Profile(profile::ProfileArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Build(args) => build::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Profile(args) => profile::run(args),
        Command::Check => check::run(),
        Command::Images(args) => images::run(args),
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

/// The default config that `run` boots.
fn default_config() -> PathBuf {
    paths::root().join("configs/qemu-virt/default.dts")
}
