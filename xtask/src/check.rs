//! `cargo xtask check`: formatting, lints (host crates and the EL2 target,
//! warnings denied), host unit tests and the target build.

use crate::{paths, setup, test};
use anyhow::{bail, Context, Result};
use std::process::Command;

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    setup::step(format!("cargo {}", args.join(" ")));
    let status = Command::new(cargo)
        .current_dir(paths::root())
        .args(args)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` failed", args.join(" "));
    }
    Ok(())
}

/// `cargo xtask check`.
pub fn run() -> Result<()> {
    setup::ensure_rust_target()?;
    setup::ensure_rust_components()?;
    cargo(&["fmt", "--all", "--check"])?;
    setup::step("hypervisor layering (docs/architecture.md, \"Layers\")");
    crate::layers::check(&paths::root().join("hypervisor/src"))?;
    cargo(&[
        "clippy",
        "--workspace",
        "--exclude",
        "ferrovisor",
        "--exclude",
        "ferrovisor-probe",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["clippy", "-p", "ferrovisor", "--release", "--target", setup::TARGET, "--", "-D", "warnings"])?;
    cargo(&[
        "clippy",
        "-p",
        "ferrovisor-probe",
        "--release",
        "--target",
        setup::GUEST_TARGET,
        "--",
        "-D",
        "warnings",
    ])?;
    crate::profile::clippy_plugin(&paths::root())?;
    test::host_tests()
}
