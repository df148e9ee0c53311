//! `cargo xtask validate`: the hypervisor's own config validator, on the host.
//!
//! It checks the config against the host DT that QEMU gives the board, with
//! the bundle that `cargo xtask run` would build, and prints each problem
//! exactly as the hypervisor prints it at boot.

use crate::qemu::Machine;
use crate::{build, bundle, placement, setup};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Options of `cargo xtask validate`.
#[derive(Args)]
pub struct ValidateArgs {
    /// The config to check (device-tree source).
    #[arg(value_name = "FILE.dts")]
    pub config: PathBuf,
    /// Check against this host DTB instead of QEMU virt's.
    #[arg(long, value_name = "HOST.dtb")]
    pub host_dtb: Option<PathBuf>,
    /// The board, as `cargo xtask run` would boot it (the host DT depends
    /// on the CPU count, RAM size, CPU model and SMMU).
    #[command(flatten)]
    pub board: crate::board::BoardArgs,
}

/// What the validator said about a config.
pub struct Report {
    /// `config error: ...` lines, as the hypervisor prints them.
    pub errors: Vec<String>,
    /// `config warning: ...` lines.
    pub warnings: Vec<String>,
    /// Names of the guests that passed.
    pub valid: Vec<String>,
}

/// Validates `config` against `host_dtb` with the bundle `run` would build,
/// and the hypervisor placed as QEMU places it (needs the hypervisor built:
/// `build::hypervisor`).
pub fn check(config: &std::path::Path, host_dtb: &[u8]) -> Result<Report> {
    let dtb = build::compile_dts(config)?;
    bundle::ensure_images(&bundle::image_names(&dtb))?;
    let names = bundle::names_for(config, &dtb);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let bundle_len = bundle::contents(config)?.len() as u64;
    let hyp = placement::hypervisor(&build::hypervisor_elf(), host_dtb, bundle_len)?;
    let mut outcome = ferrovisor_config::load(host_dtb, &dtb, &names, &hyp);
    // The images the bundle would carry, to check that they fit (as the
    // hypervisor does with the bundle it booted with).
    let mut files = std::collections::HashMap::new();
    for name in bundle::image_names(&dtb) {
        if let Some(path) = bundle::resolve(config, &name) {
            let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            files.insert(name, data);
        }
    }
    ferrovisor_guestboot::reject_unfit(&mut outcome, &|name| files.get(name).map(Vec::as_slice));
    Ok(Report {
        errors: outcome.errors.iter().map(|e| format!("config error: {e}")).collect(),
        warnings: outcome.warnings.iter().map(|w| format!("config warning: {w}")).collect(),
        valid: outcome.config.guests.iter().map(|g| g.name.clone()).collect(),
    })
}

/// Reads the host DTB: the given file, or QEMU virt's.
pub fn host_dtb(path: Option<&PathBuf>, machine: &Machine) -> Result<Vec<u8>> {
    let path = match path {
        Some(p) => p.clone(),
        None => machine.host_dtb()?,
    };
    std::fs::read(&path).with_context(|| format!("reading host DTB {}", path.display()))
}

/// `cargo xtask validate`.
pub fn run(args: ValidateArgs) -> Result<()> {
    let machine = args.board.machine()?;
    setup::ensure_all()?;
    // The configs in this repository name the test guests; build them so
    // that the bundle check sees what `run` would put in the bundle.
    build::guests()?;
    build::hypervisor()?;
    let host = host_dtb(args.host_dtb.as_ref(), &machine)?;
    let report = check(&args.config, &host)?;
    for w in &report.warnings {
        println!("{w}");
    }
    for e in &report.errors {
        println!("{e}");
    }
    println!(
        "{}: {} valid guest(s) ({}), {} error(s), {} warning(s)",
        args.config.display(),
        report.valid.len(),
        report.valid.join(", "),
        report.errors.len(),
        report.warnings.len()
    );
    if !report.errors.is_empty() {
        bail!("{} has {} config error(s)", args.config.display(), report.errors.len());
    }
    Ok(())
}
