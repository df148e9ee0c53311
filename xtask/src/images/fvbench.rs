//! /bin/fvbench in the initramfs: guests/fvbench built for
//! aarch64-unknown-linux-musl, a static binary linked with rust-lld
//! (docs/images.md).

use crate::{paths, setup};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// The Rust target fvbench is built for (static: musl's default is
/// `+crt-static`).
pub const TARGET: &str = "aarch64-unknown-linux-musl";
/// The package and its binary.
const PACKAGE: &str = "ferrovisor-fvbench";
const BIN: &str = "fvbench";
/// Overrides the cargo target dir fvbench is built in (default: the
/// workspace's target/).
pub const TARGET_DIR_ENV: &str = "FERROVISOR_FVBENCH_TARGET_DIR";

/// The built fvbench and the hash that goes into the manifest.
pub struct Fvbench {
    /// The static ELF.
    pub bytes: Vec<u8>,
    /// FNV-1a of `bytes`, 16 hex digits.
    pub hash: String,
}

/// Builds fvbench (cargo decides whether anything changed) and returns it.
pub fn build() -> Result<Fvbench> {
    ensure_target()?;
    let target_dir = std::env::var_os(TARGET_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| paths::root().join("target"));
    setup::step(format!("building {PACKAGE} ({TARGET}, release, static)"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(paths::root())
        .args(["build", "--quiet", "--release", "-p", PACKAGE, "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        // rust-lld (shipped with rustc, found by rustc itself) links against
        // the target's self-contained musl: no cross gcc needed.
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "rust-lld")
        // Only the release profile's debug info would differ: keep the
        // initramfs small.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .status()
        .with_context(|| format!("running cargo build for {PACKAGE}"))?;
    if !status.success() {
        bail!("building {PACKAGE} for {TARGET} failed");
    }
    let path = target_dir.join(TARGET).join("release").join(BIN);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    check_static_aarch64(&bytes)
        .with_context(|| format!("{} is not usable as /bin/fvbench", path.display()))?;
    let hash = fnv1a(&bytes);
    setup::step(format!("fvbench: {} bytes, hash {hash}", bytes.len()));
    Ok(Fvbench { bytes, hash })
}

/// `rustup target add` the musl target if `rustup target list --installed`
/// lacks it.
fn ensure_target() -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running `rustup target list --installed` (is rustup installed?)")?;
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) {
        return Ok(());
    }
    setup::step(format!("installing Rust target {TARGET} (rustup target add)"));
    let status = Command::new("rustup").args(["target", "add", TARGET]).status()?;
    if !status.success() {
        bail!("`rustup target add {TARGET}` failed");
    }
    Ok(())
}

/// Checks that `elf` is an AArch64 executable with no program interpreter
/// (PT_INTERP), i.e. statically linked.
pub fn check_static_aarch64(elf: &[u8]) -> Result<()> {
    use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
    let file = ElfFile64::<object::Endianness>::parse(elf).context("not a 64-bit ELF file")?;
    let endian = file.endian();
    let header = file.elf_header();
    if header.e_machine(endian) != object::elf::EM_AARCH64 {
        bail!("not an AArch64 ELF (e_machine {})", header.e_machine(endian));
    }
    if file.elf_program_headers().iter().any(|ph| ph.p_type(endian) == object::elf::PT_INTERP) {
        bail!("dynamically linked (has PT_INTERP): the initramfs has no libc");
    }
    Ok(())
}

/// FNV-1a, 64-bit, as 16 hex digits: stable across Rust versions.
pub fn fnv1a(bytes: &[u8]) -> String {
    let h = bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_stable() {
        assert_eq!(fnv1a(b""), "cbf29ce484222325");
        assert_eq!(fnv1a(b"a"), "af63dc4c8601ec8c");
        assert_ne!(fnv1a(b"fvbench"), fnv1a(b"fvbencH"));
    }

    #[test]
    fn rejects_non_elf() {
        assert!(check_static_aarch64(b"#!/bin/sh\n").is_err());
        // The host's own test binary is x86_64 (or dynamically linked).
        let exe = std::env::current_exe().map(std::fs::read);
        if let Ok(Ok(bytes)) = exe {
            assert!(check_static_aarch64(&bytes).is_err() || cfg!(target_arch = "aarch64"));
        }
    }
}
