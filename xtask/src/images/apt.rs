//! Fetching the arm64 packages from Debian's archive with apt: the arm64
//! foreign architecture, one `apt-get update`, the newest cloud kernel, and
//! `apt-get download` into target/ferrovisor/downloads/.

use super::{downloads, BUSYBOX, KERNEL_META};
use crate::setup;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// The two downloaded packages.
pub struct Debs {
    /// linux-image-<release>_<version>_arm64.deb
    pub kernel: PathBuf,
    /// busybox-static_<version>_arm64.deb
    pub busybox: PathBuf,
}

/// Makes sure the newest kernel and busybox packages are in downloads/;
/// `refresh` forces `apt-get update` first.
pub fn fetch(refresh: bool) -> Result<Debs> {
    let dir = downloads();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let added = ensure_arm64()?;
    // apt's package lists outlive this process; the marker says that this
    // checkout already ran `apt-get update` with arm64 enabled.
    let marker = dir.join(".apt-updated-arm64");
    let mut updated = false;
    if refresh || added || !marker.is_file() {
        update()?;
        std::fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))?;
        updated = true;
    }
    let kernel = match newest_kernel() {
        Ok(k) => k,
        Err(_) if !updated => {
            setup::step("the arm64 package lists look stale; updating them");
            update()?;
            newest_kernel()?
        }
        Err(e) => return Err(e),
    };
    let files = print_uris(&[format!("{kernel}:arm64"), format!("{BUSYBOX}:arm64")])?;
    Ok(Debs { kernel: download(&files, &kernel)?, busybox: download(&files, BUSYBOX)? })
}

/// Downloads `package` (arm64) into downloads/ unless it is already there.
fn download(files: &[(String, u64)], package: &str) -> Result<PathBuf> {
    let dir = downloads();
    let prefix = format!("{package}_");
    let Some((file, size)) = files.iter().find(|(f, _)| f.starts_with(&prefix)) else {
        bail!("`apt-get download --print-uris` names no file for {package}:arm64");
    };
    let path = dir.join(file);
    if std::fs::metadata(&path).map(|m| m.len() == *size).unwrap_or(false) {
        setup::step(format!("{file}: already downloaded"));
    } else {
        setup::step(format!("downloading {package}:arm64 ({} KiB) into {}", size >> 10, dir.display()));
        // Sandbox::User=root: as root, apt would otherwise download as
        // `_apt`, which may not be able to write into this checkout.
        run(Command::new("apt-get").current_dir(&dir).args([
            "-q",
            "-o",
            "APT::Sandbox::User=root",
            "download",
            &format!("{package}:arm64"),
        ]))?;
    }
    if !path.is_file() {
        bail!("apt-get download {package}:arm64 did not leave {}", path.display());
    }
    Ok(path)
}

/// Adds arm64 as a dpkg foreign architecture if missing; returns whether it did.
fn ensure_arm64() -> Result<bool> {
    let out = Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .context("running dpkg --print-foreign-architectures")?;
    if String::from_utf8_lossy(&out.stdout).split_whitespace().any(|a| a == "arm64") {
        return Ok(false);
    }
    setup::step("adding arm64 as a dpkg foreign architecture (dpkg --add-architecture arm64)");
    run(privileged("dpkg").args(["--add-architecture", "arm64"]))?;
    Ok(true)
}

fn update() -> Result<()> {
    setup::step("apt-get update (arm64 package lists)");
    run(privileged("apt-get").args(["update", "-q"]))
}

/// The newest cloud kernel package, from the metapackage's dependency.
fn newest_kernel() -> Result<String> {
    let meta = format!("{KERNEL_META}:arm64");
    let out = Command::new("apt-cache")
        .args(["depends", &meta])
        .output()
        .with_context(|| format!("running apt-cache depends {meta}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(kernel) = pick_kernel(&text) else {
        bail!(
            "`apt-cache depends {meta}` names no linux-image-*-cloud-arm64 package \
             (try `cargo xtask images --refresh`):\n{}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    setup::step(format!("newest cloud kernel: {kernel} (via {KERNEL_META})"));
    Ok(kernel)
}

/// Picks the kernel package from `apt-cache depends` output: among the
/// `Depends: linux-image-<abi>-cloud-arm64` lines, the highest ABI.
pub fn pick_kernel(apt_cache_depends: &str) -> Option<String> {
    apt_cache_depends
        .lines()
        .filter_map(|l| l.trim().trim_start_matches('|').strip_prefix("Depends:"))
        .map(|p| p.trim().trim_end_matches(":arm64"))
        .filter(|p| p.starts_with("linux-image-") && p.ends_with("-cloud-arm64") && p != &KERNEL_META)
        .max_by_key(|p| numbers(p))
        .map(str::to_string)
}

/// The runs of digits in `s`, for comparing ABI names (6.1.0-9 < 6.1.0-10).
fn numbers(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect()
}

/// The file names and sizes `apt-get download` would write, in order.
fn print_uris(packages: &[String]) -> Result<Vec<(String, u64)>> {
    // apt prints nothing for files already in the current folder: ask from
    // an empty one.
    let scratch = downloads().join(".uris");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let out = Command::new("apt-get")
        .current_dir(&scratch)
        .args(["download", "--print-uris"])
        .args(packages)
        .output()
        .context("running apt-get download --print-uris")?;
    if !out.status.success() {
        bail!(
            "apt-get download --print-uris {} failed:\n{}",
            packages.join(" "),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(parse_print_uris(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `'URI' FILE SIZE HASH` lines.
pub fn parse_print_uris(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace().skip(1);
            Some((words.next()?.to_string(), words.next()?.parse().ok()?))
        })
        .collect()
}

/// `prog`, through sudo unless we are root.
fn privileged(prog: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        Command::new(prog)
    } else {
        let mut c = Command::new("sudo");
        c.arg(prog);
        c
    }
}

fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status =
        cmd.env("DEBIAN_FRONTEND", "noninteractive").status().with_context(|| format!("running {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_kernel_from_apt_cache_depends() {
        let out = "linux-image-cloud-arm64:arm64\n  Depends: linux-image-6.1.0-56-cloud-arm64:arm64\n";
        assert_eq!(pick_kernel(out).as_deref(), Some("linux-image-6.1.0-56-cloud-arm64"));
        let two = "linux-image-cloud-arm64\n  Depends: linux-image-6.1.0-9-cloud-arm64\n \
                   |Depends: linux-image-6.1.0-10-cloud-arm64\n  Depends: <linux-image-virtual>\n  \
                   Recommends: apparmor\n";
        assert_eq!(pick_kernel(two).as_deref(), Some("linux-image-6.1.0-10-cloud-arm64"));
        assert_eq!(pick_kernel("linux-image-cloud-arm64:arm64\n"), None);
        assert_eq!(pick_kernel("  Depends: linux-image-6.1.0-56-arm64\n"), None);
    }

    #[test]
    fn parses_print_uris() {
        let out = "'http://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1.35.0-4%2bdeb12u1%2bb1_arm64.deb' \
                   busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb 822236 SHA256:732c\n";
        assert_eq!(
            parse_print_uris(out),
            [("busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb".to_string(), 822236)]
        );
        assert!(parse_print_uris("W: something\n").is_empty());
    }
}
