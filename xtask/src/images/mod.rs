//! `cargo xtask images`: the Linux guest images, from Debian's archive.
//!
//! Debian's arm64 cloud kernel (package linux-image-<abi>-cloud-arm64, the
//! newest that linux-image-cloud-arm64 depends on) becomes
//! target/ferrovisor/images/linux/Image, and busybox-static plus the virtio
//! modules and /bin/fvbench (guests/fvbench, built for
//! aarch64-unknown-linux-musl) become linux/initrd.gz (docs/images.md). The
//! .debs are cached in target/ferrovisor/downloads/; linux/manifest.txt
//! records what was built from what, so a second run only asks cargo whether
//! fvbench changed (and needs no network).

mod apt;
mod fvbench;
mod initramfs;
mod newc;

use crate::{paths, setup};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The metapackage that depends on the newest cloud kernel.
const KERNEL_META: &str = "linux-image-cloud-arm64";
/// The static busybox package.
const BUSYBOX: &str = "busybox-static";

/// Options of `cargo xtask images`.
#[derive(Args)]
pub struct ImagesArgs {
    /// Run `apt-get update`, fetch the newest kernel and busybox, and
    /// rebuild the images even if they are up to date.
    #[arg(long)]
    pub refresh: bool,
}

/// The Linux guest images and what they were built from.
#[derive(Debug, Clone)]
pub struct LinuxImages {
    /// The uncompressed arm64 kernel Image (target/ferrovisor/images/linux/Image).
    pub image: PathBuf,
    /// The gzip'd cpio initramfs (target/ferrovisor/images/linux/initrd.gz).
    pub initrd: PathBuf,
    /// The kernel release, as `uname -r` prints it (6.1.0-56-cloud-arm64).
    pub kernel_release: String,
    /// The kernel package's Debian version (6.1.192-2).
    pub kernel_version: String,
    /// busybox-static's Debian version.
    pub busybox_version: String,
    /// The module files in the initramfs's /lib/modules, in load order.
    pub modules: Vec<String>,
    /// FNV-1a hash of the initramfs's /bin/fvbench (16 hex digits).
    pub fvbench: String,
}

/// `cargo xtask images`.
pub fn run(args: ImagesArgs) -> Result<()> {
    let images = if args.refresh { ensure(true)? } else { ensure_linux()? };
    setup::step(format!(
        "kernel {} (package version {}), busybox {}",
        images.kernel_release, images.kernel_version, images.busybox_version
    ));
    setup::step(format!("modules: {}", images.modules.join(" ")));
    setup::step(format!("/bin/fvbench: hash {}", images.fvbench));
    setup::step(format!("image:  {}", images.image.display()));
    setup::step(format!("initrd: {}", images.initrd.display()));
    Ok(())
}

/// Makes sure the Linux guest images exist and are current, fetching and
/// building only what is missing or stale; returns their paths.
pub fn ensure_linux() -> Result<LinuxImages> {
    ensure(false)
}

fn linux_dir() -> PathBuf {
    paths::images().join("linux")
}

/// Where the .debs and their extracted trees are cached.
fn downloads() -> PathBuf {
    paths::out().join("downloads")
}

fn ensure(refresh: bool) -> Result<LinuxImages> {
    // Cargo decides whether fvbench is stale; its hash is part of the key.
    let fvbench = fvbench::build()?;
    let manifest = linux_dir().join("manifest.txt");
    let old = if refresh { None } else { std::fs::read_to_string(&manifest).ok() };
    let cached = old.as_deref().map(Manifest::parse).and_then(|m| {
        let debs = [downloads().join(&m.kernel_deb), downloads().join(&m.busybox_deb)];
        debs.iter().all(|d| d.is_file()).then_some((m, debs))
    });
    let (kernel_deb, busybox_deb) = match cached {
        Some((m, debs)) => {
            let images = m.images();
            if m.recipe == initramfs::recipe()
                && m.fvbench == fvbench.hash
                && newer(&[&images.image, &images.initrd, &manifest], &debs)
            {
                setup::step(format!("linux guest images: up to date ({})", images.kernel_release));
                return Ok(images);
            }
            setup::step("linux guest images are stale: rebuilding from the cached packages");
            let [k, b] = debs;
            (k, b)
        }
        None => {
            let debs = apt::fetch(refresh)?;
            (debs.kernel, debs.busybox)
        }
    };
    build(&kernel_deb, &busybox_deb, &fvbench)
}

/// Extracts both packages and writes Image, initrd.gz (with fvbench) and the
/// manifest.
fn build(kernel_deb: &Path, busybox_deb: &Path, fvbench: &fvbench::Fvbench) -> Result<LinuxImages> {
    let (kernel_package, kernel_version) = deb_fields(kernel_deb)?;
    let (_, busybox_version) = deb_fields(busybox_deb)?;
    setup::step(format!("{kernel_package} {kernel_version}, {BUSYBOX} {busybox_version}"));
    let kernel_root = extract(kernel_deb, &kernel_package)?;
    let busybox_root = extract(busybox_deb, BUSYBOX)?;

    let boot = kernel_root.join("boot");
    let kernel_release = std::fs::read_dir(&boot)
        .with_context(|| format!("reading {}", boot.display()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("vmlinuz-").map(str::to_string))
        .next()
        .with_context(|| format!("{kernel_package} has no /boot/vmlinuz-*"))?;
    let vmlinuz = boot.join(format!("vmlinuz-{kernel_release}"));
    let raw = std::fs::read(&vmlinuz).with_context(|| format!("reading {}", vmlinuz.display()))?;
    // Debian's arm64 vmlinuz is a plain Image (bookworm) or a gzip'd one.
    let image = if is_gzip(&raw) {
        setup::step(format!("decompressing {}", vmlinuz.display()));
        tool_output(Command::new("gzip").args(["-d", "-c"]).arg(&vmlinuz))?
    } else {
        raw
    };
    check_arm64_image(&image).with_context(|| format!("{} is not a usable kernel", vmlinuz.display()))?;
    let dir = linux_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let image_path = dir.join("Image");
    write_atomic(&image_path, &image)?;

    setup::step("building the busybox initramfs");
    let initrd = dir.join("initrd.gz");
    let modules = initramfs::build(&kernel_root, &kernel_release, &busybox_root, &fvbench.bytes, &initrd)?;
    let file_name = |p: &Path| p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let manifest = Manifest {
        kernel_deb: file_name(kernel_deb),
        busybox_deb: file_name(busybox_deb),
        kernel_release,
        kernel_version,
        busybox_version,
        modules,
        recipe: initramfs::recipe(),
        fvbench: fvbench.hash.clone(),
    };
    write_atomic(&dir.join("manifest.txt"), manifest.to_string().as_bytes())?;
    Ok(manifest.images())
}

/// `dpkg-deb -x DEB downloads/NAME/` into a fresh folder.
fn extract(deb: &Path, name: &str) -> Result<PathBuf> {
    let dir = downloads().join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    setup::step(format!("extracting {} into {}", deb.display(), dir.display()));
    tool_output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&dir))?;
    Ok(dir)
}

/// (Package, Version) of a .deb.
fn deb_fields(deb: &Path) -> Result<(String, String)> {
    let out = tool_output(Command::new("dpkg-deb").arg("-f").arg(deb).args(["Package", "Version"]))?;
    let text = String::from_utf8_lossy(&out);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(|v| v.trim().to_string()))
            .with_context(|| format!("{} has no {key} field", deb.display()))
    };
    Ok((field("Package")?, field("Version")?))
}

/// Whether every output exists and none is older than any input.
fn newer(outputs: &[&Path], inputs: &[PathBuf]) -> bool {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let oldest_out =
        outputs.iter().map(|p| mtime(p)).collect::<Option<Vec<_>>>().and_then(|v| v.into_iter().min());
    let newest_in =
        inputs.iter().map(|p| mtime(p)).collect::<Option<Vec<_>>>().and_then(|v| v.into_iter().max());
    matches!((oldest_out, newest_in), (Some(o), Some(i)) if o >= i)
}

/// Whether `bytes` start with the gzip magic 1f 8b.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Checks the arm64 Image header: magic "ARM\x64" at offset 56.
pub fn check_arm64_image(bytes: &[u8]) -> Result<()> {
    match bytes.get(56..60) {
        Some(b"ARM\x64") => Ok(()),
        Some(m) => bail!("no arm64 Image magic \"ARM\\x64\" at offset 56 (found {m:02x?})"),
        None => bail!("too short for an arm64 Image ({} bytes)", bytes.len()),
    }
}

/// Runs a tool; its stdout, or an error with its stderr.
fn tool_output(cmd: &mut Command) -> Result<Vec<u8>> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("running {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr).trim_end());
    }
    Ok(out.stdout)
}

/// Writes `path` through a temporary file, so an interrupted run never
/// leaves a half-written output that looks current.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// linux/manifest.txt: `key=value` lines, written last.
#[derive(Debug, Default, PartialEq)]
struct Manifest {
    kernel_deb: String,
    busybox_deb: String,
    kernel_release: String,
    kernel_version: String,
    busybox_version: String,
    modules: Vec<String>,
    recipe: String,
    fvbench: String,
}

impl Manifest {
    fn parse(text: &str) -> Self {
        let mut m = Manifest::default();
        for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
            let value = value.to_string();
            match key {
                "kernel_deb" => m.kernel_deb = value,
                "busybox_deb" => m.busybox_deb = value,
                "kernel_release" => m.kernel_release = value,
                "kernel_version" => m.kernel_version = value,
                "busybox_version" => m.busybox_version = value,
                "modules" => m.modules = value.split_whitespace().map(str::to_string).collect(),
                "recipe" => m.recipe = value,
                "fvbench" => m.fvbench = value,
                _ => {}
            }
        }
        m
    }

    fn images(&self) -> LinuxImages {
        LinuxImages {
            image: linux_dir().join("Image"),
            initrd: linux_dir().join("initrd.gz"),
            kernel_release: self.kernel_release.clone(),
            kernel_version: self.kernel_version.clone(),
            busybox_version: self.busybox_version.clone(),
            modules: self.modules.clone(),
            fvbench: self.fvbench.clone(),
        }
    }
}

impl std::fmt::Display for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "# written by `cargo xtask images`; delete to force a rebuild")?;
        writeln!(f, "kernel_deb={}\nbusybox_deb={}", self.kernel_deb, self.busybox_deb)?;
        writeln!(f, "kernel_release={}\nkernel_version={}", self.kernel_release, self.kernel_version)?;
        writeln!(f, "busybox_version={}\nmodules={}", self.busybox_version, self.modules.join(" "))?;
        writeln!(f, "recipe={}\nfvbench={}", self.recipe, self.fvbench)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_and_image_magic() {
        assert!(is_gzip(&[0x1f, 0x8b, 8, 0]));
        assert!(!is_gzip(b"MZ@\xfa") && !is_gzip(&[0x1f]));
        let mut image = vec![0u8; 64];
        assert!(check_arm64_image(&image).is_err());
        image[56..60].copy_from_slice(b"ARM\x64");
        assert!(check_arm64_image(&image).is_ok());
        assert!(format!("{:#}", check_arm64_image(&image[..40]).unwrap_err()).contains("too short"));
    }

    #[test]
    fn manifest_round_trips() {
        let m = Manifest {
            kernel_deb: "linux-image-6.1.0-56-cloud-arm64_6.1.192-2_arm64.deb".into(),
            busybox_deb: "busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb".into(),
            kernel_release: "6.1.0-56-cloud-arm64".into(),
            kernel_version: "6.1.192-2".into(),
            busybox_version: "1:1.35.0-4+deb12u1+b1".into(),
            modules: vec!["virtio_ring.ko".into(), "virtio.ko".into()],
            recipe: initramfs::recipe(),
            fvbench: fvbench::fnv1a(b"fvbench"),
        };
        assert_eq!(Manifest::parse(&m.to_string()), m);
    }
}
