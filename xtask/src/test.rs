//! `cargo xtask test`: host unit tests, then the QEMU integration tests.
//!
//! Ends with one line `integration: N passed, M failed`; exits non-zero if
//! anything failed. A missing QEMU or image is a failure, never a skip.

use crate::{build, itests, qemu, setup};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::process::Command;
use std::time::Instant;

/// Options of `cargo xtask test`.
#[derive(Args)]
pub struct TestArgs {
    /// Run only the host unit tests.
    #[arg(long, conflicts_with = "qemu_only")]
    pub host_only: bool,
    /// Run only the QEMU integration tests.
    #[arg(long)]
    pub qemu_only: bool,
    /// Run only integration tests whose name contains this.
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
    /// List the integration tests and exit.
    #[arg(long)]
    pub list: bool,
}

/// `cargo xtask test`.
pub fn run(args: TestArgs) -> Result<()> {
    if args.list {
        for t in itests::TESTS {
            println!("{:<22} {}", t.name, t.about);
        }
        return Ok(());
    }
    setup::ensure_all()?;
    if !args.qemu_only {
        host_tests()?;
    }
    if !args.host_only {
        integration(args.filter.as_deref())?;
    }
    Ok(())
}

/// Runs `cargo test` over every host crate.
pub fn host_tests() -> Result<()> {
    setup::step("host unit tests (cargo test)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(crate::paths::root())
        .args(["test", "--workspace", "--exclude", "ferrovisor", "--exclude", "ferrovisor-probe"])
        .status()
        .context("running cargo test")?;
    if !status.success() {
        bail!("host unit tests failed");
    }
    Ok(())
}

fn integration(filter: Option<&str>) -> Result<()> {
    qemu::require()?;
    let image = build::hypervisor()?;
    build::guests()?;
    let env = itests::Env { image };
    let selected: Vec<&itests::Test> =
        itests::TESTS.iter().filter(|t| filter.is_none_or(|f| t.name.contains(f))).collect();
    if selected.is_empty() {
        bail!("no integration test matches {filter:?} (see `cargo xtask test --list`)");
    }
    setup::step(format!("QEMU integration tests: {}", selected.len()));
    let (mut passed, mut failed) = (0, Vec::new());
    for t in selected {
        let start = Instant::now();
        println!("test {} ... ", t.name);
        match (t.run)(&env) {
            Ok(()) => {
                passed += 1;
                println!("test {} ... ok ({:.1}s)", t.name, start.elapsed().as_secs_f64());
            }
            Err(e) => {
                println!("test {} ... FAILED ({:.1}s)\n{e:#}", t.name, start.elapsed().as_secs_f64());
                failed.push(t.name);
            }
        }
    }
    println!("integration: {passed} passed, {} failed", failed.len());
    if !failed.is_empty() {
        bail!("integration tests failed: {}", failed.join(", "));
    }
    Ok(())
}
