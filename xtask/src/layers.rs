//! The hypervisor's layering, checked: which module may name which
//! (docs/architecture.md, "Layers"). `cargo xtask check` reads every source
//! file of the hypervisor and refuses a reference from a module to one in a
//! higher layer, so the layering the docs draw is the one the code has.
//!
//! Layers, bottom up:
//! 0. `arch`, `platform`: the hardware.
//! 1. core services: `cpus` (per-CPU state, IPIs, kicks), `irq`, `ticks`,
//!    `console`, `logger`, `heap`, `memory`, `host`, `footprint`, `power`,
//!    `panic`.
//! 2. guests: `vm` (and its submodules), `passthrough`, `iommu` (the
//!    SMMU's streams belong to guests), `pci` (the bus and the guests'
//!    virtual host bridges).
//! 3. `sched`: runs the vCPUs on the pCPUs.
//! 4. `guests` (building them), `boot`, `shell`.
//!
//! A module may name modules of its own layer or below. The only upward
//! references allowed are the hardware's entry points into the layers
//! above ([`UPCALLS`]): the boot code calling `core::boot`, and the
//! exception vectors calling the interrupt dispatch and the
//! fatal-exception report.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Upward references the hardware layer makes (entry points).
const UPCALLS: &[(&str, &str)] = &[
    // CPU entry after reset and PSCI CPU_ON.
    ("arch", "core::boot"),
    // Exception vectors: an IRQ at EL2, an unexpected exception. (A guest
    // exit reaches the fast path through the `GuestCpu` trait the scheduler
    // hands to `guest::run`: no upward name.)
    ("arch", "core::irq::dispatch"),
    ("arch", "core::panic::fatal_exception"),
];

/// The layer of a module path relative to the crate root (`arch::...`,
/// `core::vm::exit`, `shell`, ...); None for the crate root's own items.
pub fn layer(module: &str) -> Option<u8> {
    let mut parts = module.split("::");
    let top = parts.next()?;
    match top {
        "arch" | "platform" => Some(0),
        "shell" => Some(4),
        // Macros exported at the root (`println!`) print on the console.
        "println" | "print" => Some(1),
        "core" => match parts.next()? {
            "cpus" | "irq" | "ticks" | "console" | "logger" | "heap" | "memory" | "host" | "footprint"
            | "power" | "panic" => Some(1),
            "vm" | "passthrough" | "iommu" | "pci" => Some(2),
            "sched" => Some(3),
            "guests" | "boot" => Some(4),
            _ => None,
        },
        _ => None,
    }
}

/// The module path of a source file (`core/vm/exit.rs` -> `core::vm::exit`).
fn module_of(rel: &Path) -> String {
    let s = rel.with_extension("").to_string_lossy().replace('\\', "/");
    let s = s.strip_suffix("/mod").unwrap_or(&s).to_string();
    s.replace('/', "::")
}

/// Every module path `source` names through `crate::` (expanding
/// `crate::core::{a, b::c}` groups) or, in a module directly under `core`,
/// through `super::`.
pub fn references(source: &str, module: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (prefix, base) in [("crate::", String::new()), ("super::", parent(module))] {
            if base.is_empty() && prefix == "super::" {
                continue;
            }
            let mut rest = code;
            while let Some(i) = rest.find(prefix) {
                // `crate::` inside a longer word (`ferrovisor_crate::`) is not ours.
                let before = rest[..i].chars().last();
                rest = &rest[i + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let path: String =
                    rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                let path = path.trim_end_matches(':');
                let full = if base.is_empty() { path.to_string() } else { format!("{base}::{path}") };
                if let Some(group) = rest[path.len()..].strip_prefix("::{") {
                    let group = group.split('}').next().unwrap_or("");
                    for item in group.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let item = item.split_whitespace().next().unwrap_or("");
                        if item == "self" {
                            out.push(full.clone());
                        } else {
                            out.push(format!("{full}::{item}"));
                        }
                    }
                } else {
                    out.push(full);
                }
            }
        }
    }
    out
}

/// `core::vm::exit` -> `core::vm`; only modules directly under `core` or
/// deeper have a `super` worth resolving.
fn parent(module: &str) -> String {
    match module.rsplit_once("::") {
        Some((p, _)) => p.to_string(),
        None => String::new(),
    }
}

/// The violations in one file: `(referenced module, why)`.
pub fn violations(module: &str, source: &str) -> Vec<String> {
    let Some(mine) = layer(module) else { return Vec::new() };
    let mut found = Vec::new();
    for r in references(source, module) {
        let Some(theirs) = layer(&r) else { continue };
        if theirs <= mine {
            continue;
        }
        let top = module.split("::").next().unwrap_or("");
        if UPCALLS.iter().any(|(from, to)| *from == top && (r == *to || r.starts_with(&format!("{to}::")))) {
            continue;
        }
        found.push(format!("{module} (layer {mine}) names {r} (layer {theirs})"));
    }
    found.sort();
    found.dedup();
    found
}

/// Checks every source file under `src` (the hypervisor's `src/`).
pub fn check(src: &Path) -> Result<()> {
    let mut all = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap_or(&path);
                let source =
                    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                all.extend(violations(&module_of(rel), &source));
            }
        }
    }
    if !all.is_empty() {
        bail!(
            "the hypervisor's layering is broken (docs/architecture.md, \"Layers\"):\n  {}",
            all.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_of_modules() {
        assert_eq!(layer("arch::aarch64::gicv"), Some(0));
        assert_eq!(layer("core::cpus"), Some(1));
        assert_eq!(layer("core::vm::exit"), Some(2));
        assert_eq!(layer("core::sched"), Some(3));
        assert_eq!(layer("shell::commands"), Some(4));
        assert_eq!(layer("main"), None);
    }

    #[test]
    fn references_expand_groups_and_super() {
        let src = "use crate::core::{cpus, vm::Vm, irq::{self}};\nlet x = crate::core::sched::kick(1); // crate::shell\nuse super::ticks;";
        let r = references(src, "core::cpus");
        assert!(r.contains(&"core::cpus".to_string()), "{r:?}");
        assert!(r.contains(&"core::vm::Vm".to_string()), "{r:?}");
        assert!(r.contains(&"core::sched::kick".to_string()), "{r:?}");
        assert!(r.contains(&"core::ticks".to_string()), "{r:?}");
        assert!(!r.iter().any(|x| x.starts_with("shell")), "comments are not code: {r:?}");
    }

    #[test]
    fn upward_references_are_refused_with_both_layers_named() {
        let v = violations("core::vm::mod", "crate::core::sched::kick(0);");
        assert_eq!(v, vec!["core::vm::mod (layer 2) names core::sched::kick (layer 3)".to_string()]);
        assert!(violations("core::sched", "use crate::core::vm::vcpu::Vcpu;").is_empty());
        assert!(violations("arch::aarch64::boot", "sym crate::core::boot::secondary_main").is_empty());
        assert!(!violations("platform::gicv3", "crate::core::boot::x()").is_empty());
    }

    #[test]
    fn the_hypervisor_follows_its_layers() {
        let src = crate::paths::root().join("hypervisor/src");
        check(&src).unwrap();
    }
}
