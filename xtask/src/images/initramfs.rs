//! The busybox initramfs: /init, busybox, /bin/fvbench, and the virtio
//! kernel modules with their dependencies, as a gzip'd cpio newc archive.

use super::newc::Newc;
use crate::setup;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The modules the initramfs carries (with their dependencies) for virtio
/// pass-through; loaded on demand (`modprobe virtio_blk`), never by /init.
pub const WANTED_MODULES: &[&str] = &["virtio_mmio", "virtio_blk"];

/// /init. Contract (docs/images.md): prints the `FERROVISOR-INIT: ready`
/// line once, runs /etc/fvbench-auto (the bench's workloads) if the kernel
/// command line says `fvbench=auto`, then runs `sh` with the prompt
/// `guest# ` on the console forever; `poweroff -f` powers off through
/// PSCI SYSTEM_OFF.
pub const INIT_SCRIPT: &str = r#"#!/bin/sh
# ferrovisor guest init, written by `cargo xtask images` (docs/images.md).
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
if ! $bb mount -t devtmpfs devtmpfs /dev 2>/dev/null; then
    [ -e /dev/console ] || $bb mknod -m 600 /dev/console c 5 1
    [ -e /dev/null ] || $bb mknod -m 666 /dev/null c 1 3
    [ -e /dev/tty ] || $bb mknod -m 666 /dev/tty c 5 0
    [ -e /dev/ttyAMA0 ] || $bb mknod -m 600 /dev/ttyAMA0 c 204 64
fi
$bb --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root PS1='guest# '
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
hostname guest
cd /root
echo "FERROVISOR-INIT: ready (kernel $(uname -r), $(nproc) cpus)"
# `fvbench=auto` on the kernel command line (passed to init as a variable):
# the bench's workloads, started at the same point of every boot.
if [ "$fvbench" = auto ] && [ -f /etc/fvbench-auto ]; then
    sh /etc/fvbench-auto
fi
while true; do
    setsid cttyhack sh
    echo "FERROVISOR-INIT: shell exited; starting another"
done
"#;

/// A fingerprint of what this file puts in the initramfs besides the
/// packages: a change rebuilds the images.
pub fn recipe() -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a, stable across Rust versions
    let auto = crate::bench_linux::script();
    for b in
        INIT_SCRIPT.bytes().chain(WANTED_MODULES.join(",").bytes()).chain(auto.bytes()).chain(*b"layout-2")
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Writes the gzip'd initramfs to `out`; `kernel_root` and `busybox_root`
/// are the extracted packages, `fvbench` the static /bin/fvbench. Returns
/// the module file names, load order.
pub fn build(
    kernel_root: &Path,
    release: &str,
    busybox_root: &Path,
    fvbench: &[u8],
    out: &Path,
) -> Result<Vec<String>> {
    let busybox_path = busybox_root.join("bin/busybox");
    let busybox =
        std::fs::read(&busybox_path).with_context(|| format!("reading {}", busybox_path.display()))?;
    let mut cpio = Newc::new();
    for dir in ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "mnt", "etc", "lib"] {
        cpio.dir(dir, 0o755);
    }
    cpio.dir("tmp", 0o1777).dir("root", 0o700).dir("lib/modules", 0o755);
    cpio.char_dev("dev/console", 0o600, 5, 1);
    cpio.file("bin/busybox", 0o755, &busybox).symlink("bin/sh", "busybox");
    cpio.file("bin/fvbench", 0o755, fvbench);
    cpio.file("init", 0o755, INIT_SCRIPT.as_bytes());
    cpio.file("etc/fvbench-auto", 0o755, crate::bench_linux::script().as_bytes());

    let modules_dir = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| kernel_root.join(d).join(release))
        .find(|d| d.is_dir())
        .with_context(|| format!("no lib/modules/{release} in {}", kernel_root.display()))?;
    let (order, deps) = modules(&modules_dir)?;
    let mut dep_lines = String::new();
    let mut loaded = Vec::new();
    for name in &order {
        let (path, module_deps) = &deps[name];
        let file = format!("{name}.ko");
        cpio.file(&format!("lib/modules/{file}"), 0o644, &read_module(path)?);
        let listed: Vec<String> = module_deps.iter().map(|d| format!("{d}.ko")).collect();
        dep_lines.push_str(&format!("{file}: {}\n", listed.join(" ")).replace(": \n", ":\n"));
        loaded.push(file);
    }
    // busybox modprobe reads /lib/modules/$(uname -r)/modules.dep: the
    // release folder is a link back to the flat one.
    cpio.file("lib/modules/modules.dep", 0o644, dep_lines.as_bytes());
    cpio.symlink(&format!("lib/modules/{release}"), ".");

    let raw = out.with_extension("cpio.tmp");
    std::fs::write(&raw, cpio.finish()).with_context(|| format!("writing {}", raw.display()))?;
    let gz = super::tool_output(Command::new("gzip").args(["-9", "-n", "-c"]).arg(&raw))?;
    std::fs::remove_file(&raw).with_context(|| format!("removing {}", raw.display()))?;
    super::write_atomic(out, &gz)?;
    Ok(loaded)
}

/// The wanted modules and their dependencies, dependencies first, each with
/// its file and its full dependency list (modules.dep order: load last first).
type Modules = (Vec<String>, BTreeMap<String, (PathBuf, Vec<String>)>);

fn modules(dir: &Path) -> Result<Modules> {
    let dep_file = dir.join("modules.dep");
    // Debian runs depmod at install time, so the package has no modules.dep;
    // read each module's own `depends=` (its .modinfo section) instead.
    let from_dep = if dep_file.is_file() {
        let text =
            std::fs::read_to_string(&dep_file).with_context(|| format!("reading {}", dep_file.display()))?;
        Some(parse_modules_dep(&text))
    } else {
        None
    };
    let mut files = BTreeMap::new();
    match &from_dep {
        Some(dep) => files.extend(dep.iter().map(|(name, (path, _))| (name.clone(), dir.join(path)))),
        None => index(&dir.join("kernel"), &mut files)?,
    }
    // Built-in modules need no file (modules.builtin lists them as paths).
    let builtin_file = dir.join("modules.builtin");
    let builtin: Vec<String> = std::fs::read_to_string(&builtin_file)
        .map(|t| t.lines().filter_map(|l| module_name(l.trim())).collect())
        .unwrap_or_default();
    let mut direct = |name: &str| -> Result<Vec<String>> {
        if builtin.iter().any(|b| b == name) {
            return Ok(Vec::new());
        }
        let path = files.get(name).with_context(|| {
            format!(
                "module {name} is neither built in nor in {} (is CONFIG_{} =m?)",
                dir.display(),
                name.to_uppercase()
            )
        })?;
        match from_dep.as_ref().and_then(|dep| dep.get(name)) {
            Some((_, deps)) => Ok(deps.clone()),
            None => modinfo_depends(&read_module(path)?)
                .with_context(|| format!("reading .modinfo of {}", path.display())),
        }
    };
    let (order, built_in): (Vec<String>, Vec<String>) =
        closure(WANTED_MODULES, &mut direct)?.into_iter().partition(|n| !builtin.contains(n));
    if !built_in.is_empty() {
        setup::step(format!("built into the kernel: {}", built_in.join(" ")));
    }
    let mut all = BTreeMap::new();
    for name in &order {
        let deps = closure(&[name.as_str()], &mut direct)?;
        let mut deps: Vec<String> = deps.into_iter().filter(|d| d != name && !builtin.contains(d)).collect();
        deps.reverse();
        all.insert(name.clone(), (files[name].clone(), deps));
    }
    setup::step(format!("kernel modules (load order): {}", order.join(" ")));
    Ok((order, all))
}

/// Every `*.ko*` below `dir`, by module name.
fn index(dir: &Path, out: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
        if path.is_dir() {
            index(&path, out)?;
        } else if let Some(name) = module_name(&path.to_string_lossy()) {
            out.insert(name, path);
        }
    }
    Ok(())
}

/// `kernel/drivers/virtio/virtio-foo.ko.xz` -> `virtio_foo`.
pub fn module_name(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = file.split_once(".ko").filter(|(_, ext)| ext.is_empty() || ext.starts_with('.'))?.0;
    Some(stem.replace('-', "_"))
}

/// modules.dep: `path: dep-path dep-path ...` -> name -> (path, dep names).
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, (String, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let (path, deps) = l.split_once(':')?;
            let deps = deps.split_whitespace().filter_map(module_name).collect();
            Some((module_name(path.trim())?, (path.trim().to_string(), deps)))
        })
        .collect()
}

/// `depends=a,b` from a module's .modinfo section.
fn modinfo_depends(elf: &[u8]) -> Result<Vec<String>> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(elf).context("not an ELF file")?;
    let section = file.section_by_name(".modinfo").context("no .modinfo section")?;
    Ok(parse_modinfo_depends(section.data().context("reading .modinfo")?))
}

/// The `depends=` entry of NUL-separated `key=value` strings.
pub fn parse_modinfo_depends(modinfo: &[u8]) -> Vec<String> {
    modinfo
        .split(|&b| b == 0)
        .filter_map(|kv| kv.strip_prefix(b"depends="))
        .flat_map(|v| String::from_utf8_lossy(v).split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|d| !d.is_empty())
        .map(|d| d.replace('-', "_"))
        .collect()
}

/// `wanted` and everything they depend on, each after its dependencies.
pub fn closure(wanted: &[&str], direct: &mut dyn FnMut(&str) -> Result<Vec<String>>) -> Result<Vec<String>> {
    fn visit(
        name: &str,
        direct: &mut dyn FnMut(&str) -> Result<Vec<String>>,
        path: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        if order.iter().any(|n| n == name) {
            return Ok(());
        }
        if path.iter().any(|n| n == name) {
            bail!("module dependency cycle: {} -> {name}", path.join(" -> "));
        }
        path.push(name.to_string());
        for dep in direct(name)? {
            visit(&dep, direct, path, order)?;
        }
        path.pop();
        order.push(name.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    for name in wanted {
        visit(name, direct, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// A module's bytes, decompressed: busybox insmod wants plain ELF.
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let (bin, package) = if name.ends_with(".ko") {
        return std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    } else if name.ends_with(".xz") {
        ("xz", "xz-utils")
    } else if name.ends_with(".zst") {
        ("zstd", "zstd")
    } else if name.ends_with(".gz") {
        ("gzip", "gzip")
    } else {
        bail!("{}: unknown module compression", path.display());
    };
    setup::ensure_tools(&[setup::Tool { bin, package }])?;
    super::tool_output(Command::new(bin).args(["-d", "-c"]).arg(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        assert_eq!(module_name("kernel/drivers/virtio/virtio_mmio.ko").as_deref(), Some("virtio_mmio"));
        assert_eq!(module_name("/x/hw_random/virtio-rng.ko.xz").as_deref(), Some("virtio_rng"));
        assert_eq!(module_name("kernel/foo.kobj"), None);
        assert_eq!(module_name("modules.dep"), None);
    }

    #[test]
    fn parses_modules_dep_and_modinfo() {
        let dep = "kernel/drivers/virtio/virtio_ring.ko:\n\
                   kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
                   kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n";
        let m = parse_modules_dep(dep);
        assert_eq!(m["virtio_ring"], ("kernel/drivers/virtio/virtio_ring.ko".into(), vec![]));
        assert_eq!(m["virtio_blk"].1, ["virtio", "virtio_ring"]);
        assert_eq!(m["virtio_blk"].0, "kernel/drivers/block/virtio_blk.ko.xz");
        let info = b"license=GPL\0depends=virtio,virtio_ring\0intree=Y\0name=virtio_mmio\0";
        assert_eq!(parse_modinfo_depends(info), ["virtio", "virtio_ring"]);
        assert!(parse_modinfo_depends(b"depends=\0name=virtio_ring\0").is_empty());
    }

    #[test]
    fn closure_puts_dependencies_first() {
        let deps: BTreeMap<&str, Vec<String>> = [
            ("virtio_mmio", vec!["virtio".to_string(), "virtio_ring".to_string()]),
            ("virtio_blk", vec!["virtio".to_string(), "virtio_ring".to_string()]),
            ("virtio", vec!["virtio_ring".to_string()]),
            ("virtio_ring", vec![]),
        ]
        .into();
        let mut direct = |n: &str| deps.get(n).cloned().with_context(|| format!("no {n}"));
        let order = closure(&["virtio_mmio", "virtio_blk"], &mut direct).unwrap();
        assert_eq!(order, ["virtio_ring", "virtio", "virtio_mmio", "virtio_blk"]);
        assert!(closure(&["missing"], &mut direct).is_err());
        let mut cyclic = |n: &str| Ok(vec![if n == "a" { "b" } else { "a" }.to_string()]);
        assert!(format!("{:#}", closure(&["a"], &mut cyclic).unwrap_err()).contains("cycle"));
    }

    #[test]
    fn init_script_keeps_its_contract() {
        assert!(INIT_SCRIPT.starts_with("#!/bin/sh\n"));
        assert!(INIT_SCRIPT.contains("echo \"FERROVISOR-INIT: ready (kernel $(uname -r), $(nproc) cpus)\""));
        assert!(INIT_SCRIPT.contains("PS1='guest# '") && INIT_SCRIPT.contains("setsid cttyhack sh"));
        assert_eq!(recipe(), recipe());
        assert_eq!(recipe().len(), 16);
    }
}
