//! Installs what the other commands need, idempotently, saying what it does:
//! the Rust target (rustup) and Debian packages (apt-get).

use anyhow::{bail, Context, Result};
use std::process::Command;
use std::sync::Once;

/// The Rust target the hypervisor is built for. Soft-float: the hypervisor
/// never touches FP/SIMD registers, so a guest's FP state stays live in the
/// registers across exits and is only switched with the vCPU.
pub const TARGET: &str = "aarch64-unknown-none-softfloat";

/// The Rust target the bare-metal test guests are built for.
pub const GUEST_TARGET: &str = "aarch64-unknown-none";

/// A command-line tool and the Debian package that provides it.
pub struct Tool {
    /// Executable name looked up on PATH.
    pub bin: &'static str,
    /// Debian package that installs it.
    pub package: &'static str,
}

/// Tools every QEMU-based command needs.
pub const QEMU_TOOLS: &[Tool] = &[
    Tool { bin: "qemu-system-aarch64", package: "qemu-system-arm" },
    Tool { bin: "dtc", package: "device-tree-compiler" },
];

/// Prints a progress line.
pub fn step(msg: impl AsRef<str>) {
    eprintln!("[xtask] {}", msg.as_ref());
}

/// Whether `bin` is on PATH.
pub fn have(bin: &str) -> bool {
    which(bin).is_some()
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|p| p.join(bin)).find(|p| p.is_file())
}

/// Makes sure the hypervisor's and the guests' Rust targets are installed.
pub fn ensure_rust_target() -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running `rustup target list --installed` (is rustup installed?)")?;
    let installed = String::from_utf8_lossy(&out.stdout).into_owned();
    for target in [TARGET, GUEST_TARGET] {
        if installed.lines().any(|l| l.trim() == target) {
            continue;
        }
        step(format!("installing Rust target {target} (rustup target add)"));
        let status = Command::new("rustup").args(["target", "add", target]).status()?;
        if !status.success() {
            bail!("`rustup target add {target}` failed");
        }
    }
    Ok(())
}

/// Makes sure rustfmt and clippy are there (`cargo xtask check` runs both).
pub fn ensure_rust_components() -> Result<()> {
    let out = Command::new("rustup")
        .args(["component", "list", "--installed"])
        .output()
        .context("running `rustup component list --installed` (is rustup installed?)")?;
    let installed = String::from_utf8_lossy(&out.stdout).into_owned();
    for component in ["rustfmt", "clippy"] {
        if installed.lines().any(|l| l.trim().starts_with(&format!("{component}-"))) {
            continue;
        }
        step(format!("installing Rust component {component} (rustup component add)"));
        let status = Command::new("rustup").args(["component", "add", component]).status()?;
        if !status.success() {
            bail!("`rustup component add {component}` failed");
        }
    }
    Ok(())
}

static APT_UPDATED: Once = Once::new();

/// Installs the Debian packages for any missing tool.
pub fn ensure_tools(tools: &[Tool]) -> Result<()> {
    let missing: Vec<&Tool> = tools.iter().filter(|t| !have(t.bin)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    step(format!(
        "missing {}: installing Debian package(s) {}",
        missing.iter().map(|t| t.bin).collect::<Vec<_>>().join(", "),
        packages.join(" ")
    ));
    apt_install(&packages)?;
    for t in missing {
        if !have(t.bin) {
            bail!("{} is still missing after installing {}", t.bin, t.package);
        }
    }
    Ok(())
}

/// `apt-get install -y PACKAGES`, after one `apt-get update`.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let sudo = !is_root();
    if sudo && !have("sudo") {
        bail!(
            "need root (or sudo) to install {}: run `apt-get install {}` as root",
            packages.join(" "),
            packages.join(" ")
        );
    }
    let apt = |args: &[&str]| -> Result<()> {
        let mut cmd = if sudo { Command::new("sudo") } else { Command::new("apt-get") };
        if sudo {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let status = cmd.status().with_context(|| format!("running apt-get {}", args.join(" ")))?;
        if !status.success() {
            bail!("apt-get {} failed", args.join(" "));
        }
        Ok(())
    };
    let mut update = Ok(());
    APT_UPDATED.call_once(|| {
        step("apt-get update");
        update = apt(&["update", "-q"]);
    });
    update?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend_from_slice(packages);
    apt(&args)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Everything a QEMU command needs.
pub fn ensure_all() -> Result<()> {
    ensure_rust_target()?;
    ensure_tools(QEMU_TOOLS)
}
