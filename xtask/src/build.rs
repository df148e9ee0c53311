//! Building the hypervisor image, compiling configs, and making bundles.

use crate::{bundle, image, paths, setup};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Options of `cargo xtask build`.
#[derive(Args)]
pub struct BuildArgs {
    /// The config to compile into the boot bundle.
    #[arg(long, value_name = "FILE.dts")]
    pub config: Option<PathBuf>,
}

/// The outputs of a build.
pub struct Built {
    /// The flat hypervisor image for `-kernel`.
    pub image: PathBuf,
    /// The boot bundle for `-initrd`.
    pub bundle: PathBuf,
}

/// `cargo xtask build`.
pub fn run(args: BuildArgs) -> Result<()> {
    setup::ensure_all()?;
    let config = args.config.unwrap_or_else(crate::default_config);
    let built = build_all(&config)?;
    setup::step(format!("image:  {}", built.image.display()));
    setup::step(format!("bundle: {}", built.bundle.display()));
    Ok(())
}

/// Builds the hypervisor and the bundle for `config`.
pub fn build_all(config: &Path) -> Result<Built> {
    let image = hypervisor()?;
    guests()?;
    let bundle = bundle::make(config)?;
    Ok(Built { image, bundle })
}

/// Builds the hypervisor (release) and writes the flat image; returns its path.
pub fn hypervisor() -> Result<PathBuf> {
    flat_binary("ferrovisor", "ferrovisor", setup::TARGET, &paths::out().join("ferrovisor.bin"))
}

/// The profiling build of the hypervisor: the same code with the exit
/// markers (`core/vm/markers.rs`, `FERROVISOR_PROFILE_MARKERS=1`), in its
/// own target directory; returns its flat image and its ELF.
pub fn hypervisor_profiled() -> Result<(PathBuf, PathBuf)> {
    let image = flat_binary_with(
        "ferrovisor",
        "ferrovisor",
        setup::TARGET,
        &paths::out().join("ferrovisor-profiled.bin"),
        Some(("FERROVISOR_PROFILE_MARKERS", "1", "profile-markers")),
    )?;
    let elf =
        paths::root().join("target/profile-markers").join(setup::TARGET).join("release").join("ferrovisor");
    Ok((image, elf))
}

/// The hypervisor's ELF (what `hypervisor` flattens); its symbols give the
/// hypervisor's extent to `validate`.
pub fn hypervisor_elf() -> PathBuf {
    paths::root().join("target").join(setup::TARGET).join("release").join("ferrovisor")
}

/// Builds the bare-metal test guests into target/ferrovisor/images/guests/,
/// where bundles find them (`kernel = "guests/probe.bin"`): the probe
/// linked for RAM at 0x40000000, and `probe-hi.bin` for RAM at 0x50000000
/// (a guest whose RAM is all identity-mapped, below the hypervisor's own
/// 0x40000000 it could not be; built in its own target directory).
pub fn guests() -> Result<()> {
    let dir = paths::images().join("guests");
    flat_binary("ferrovisor-probe", "probe", setup::GUEST_TARGET, &dir.join("probe.bin"))?;
    flat_binary_with(
        "ferrovisor-probe",
        "probe",
        setup::GUEST_TARGET,
        &dir.join("probe-hi.bin"),
        Some(("FERROVISOR_PROBE_RAM", "0x50000000", "probe-hi")),
    )?;
    Ok(())
}

/// `cargo build --release -p PACKAGE --target TARGET`, then the ELF `bin`
/// flattened into `out`.
fn flat_binary(package: &str, bin: &str, target: &str, out: &Path) -> Result<PathBuf> {
    flat_binary_with(package, bin, target, out, None)
}

/// [`flat_binary`] with one build-time environment variable, built in
/// target/`dir` (`(variable, value, dir)`).
fn flat_binary_with(
    package: &str,
    bin: &str,
    target: &str,
    out: &Path,
    env: Option<(&str, &str, &str)>,
) -> Result<PathBuf> {
    let variant = env.map_or(String::new(), |(k, v, _)| format!(", {k}={v}"));
    setup::step(format!("building {package} ({target}, release{variant})"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(paths::root()).args(["build", "--release", "-p", package, "--target", target]);
    let mut target_dir = paths::root().join("target");
    if let Some((key, value, dir)) = env {
        target_dir = target_dir.join(dir);
        cmd.env(key, value).arg("--target-dir").arg(&target_dir);
    }
    let status = cmd.status().with_context(|| format!("running cargo build for {package}"))?;
    if !status.success() {
        bail!("building {package} failed");
    }
    let elf_path = target_dir.join(target).join("release").join(bin);
    let elf = std::fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    let flat = image::flatten(&elf).with_context(|| format!("flattening {}", elf_path.display()))?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, &flat).with_context(|| format!("writing {}", out.display()))?;
    Ok(out.to_path_buf())
}

/// Compiles a .dts to a DTB with dtc; returns the DTB bytes.
pub fn compile_dts(dts: &Path) -> Result<Vec<u8>> {
    if !dts.is_file() {
        bail!("config {} does not exist", dts.display());
    }
    let out = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-o", "-"])
        .arg(dts)
        .output()
        .context("running dtc (package device-tree-compiler)")?;
    if !out.status.success() {
        bail!(
            "dtc could not compile {}:\n{}",
            dts.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(out.stdout)
}
