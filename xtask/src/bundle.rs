//! Making the boot bundle: the compiled config plus every image it names.
//!
//! An image name in the config (`kernel = "linux/Image"`) is looked up first
//! next to the config file, then in target/ferrovisor/images/. Names that are
//! found nowhere are left out; the validator (at boot and in `validate`)
//! reports them with the guest that needs them.

use crate::{build, paths, setup};
use anyhow::{Context, Result};
use ferrovisor_bundle::{Writer, CONFIG_FILE};
use std::path::{Path, PathBuf};

/// Image properties a guest node may carry.
const IMAGE_PROPS: &[&str] = &["kernel", "initrd", "dtb"];

/// Every image name the config mentions, in order, without duplicates.
pub fn image_names(config_dtb: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let Ok(fdt) = fdt::Fdt::new(config_dtb) else {
        return names;
    };
    let Some(guests) = fdt.find_node("/guests") else {
        return names;
    };
    for guest in guests.children() {
        for prop in IMAGE_PROPS {
            if let Some(name) = guest.property(prop).and_then(|p| p.as_str()) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
}

/// Fetches or builds the images this repository knows how to make, when a
/// config names them: the Linux kernel and initramfs (`linux/...`).
pub fn ensure_images(names: &[String]) -> Result<()> {
    if names.iter().any(|n| n.starts_with("linux/")) {
        crate::images::ensure_linux()?;
    }
    Ok(())
}

/// Where the bundle file `name` comes from, if it exists.
pub fn resolve(config: &Path, name: &str) -> Option<PathBuf> {
    let beside = config.parent().map(|d| d.join(name));
    [beside, Some(paths::images().join(name))].into_iter().flatten().find(|p| p.is_file())
}

/// Compiles `config` and writes its bundle; returns the bundle path.
pub fn make(config: &Path) -> Result<PathBuf> {
    let bytes = contents(config)?;
    std::fs::create_dir_all(paths::out())?;
    let out = paths::out().join(file_name(config, &paths::root()));
    std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// The bundle file's name for `config`: its path (relative to the
/// repository `root` when inside it) with separators turned into `-`, so
/// that two configs with the same file name in different folders get two
/// bundles (`configs/qemu-virt/default.dts` ->
/// `configs-qemu-virt-default.bundle.cpio`).
pub fn file_name(config: &Path, root: &Path) -> String {
    let absolute = if config.is_absolute() {
        config.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(config)).unwrap_or_else(|_| config.to_path_buf())
    };
    let shown = absolute.strip_prefix(root).unwrap_or(&absolute).with_extension("");
    let parts: Vec<String> = shown
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let flat: String = parts
        .join("-")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' { c } else { '_' })
        .collect();
    format!("{flat}.bundle.cpio")
}

/// The bundle `config` makes, in memory (its size decides where the host
/// DTB lands, which `validate` needs).
pub fn contents(config: &Path) -> Result<Vec<u8>> {
    let dtb = build::compile_dts(config)?;
    ensure_images(&image_names(&dtb))?;
    let mut writer = Writer::new();
    writer.add(CONFIG_FILE, &dtb);
    for name in image_names(&dtb) {
        match resolve(config, &name) {
            Some(path) => {
                let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                writer.add(&name, &data);
            }
            None => setup::step(format!(
                "note: image {name} named by the config was not found; the bundle leaves it out"
            )),
        }
    }
    Ok(writer.finish())
}

/// The names a bundle for `config` would hold (for `validate`).
pub fn names_for(config: &Path, dtb: &[u8]) -> Vec<String> {
    let mut names = vec![CONFIG_FILE.to_string()];
    names.extend(image_names(dtb).into_iter().filter(|n| resolve(config, n).is_some()));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_file_names_in_two_folders_get_two_bundles() {
        let root = Path::new("/repo");
        let a = file_name(Path::new("/repo/configs/a/default.dts"), root);
        let b = file_name(Path::new("/repo/configs/b/default.dts"), root);
        assert_eq!(a, "configs-a-default.bundle.cpio");
        assert_eq!(b, "configs-b-default.bundle.cpio");
        let outside = file_name(Path::new("/home/me/my cfg/default.dts"), root);
        assert_eq!(outside, "home-me-my_cfg-default.bundle.cpio");
    }
}
