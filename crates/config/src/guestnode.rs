//! What the guest DT node of a host device keeps of the host node: each
//! property is copied byte for byte, rebuilt in guest terms, or left out
//! (docs/config.md, "The guest DT node of a host device").
//!
//! Invariants: a property that may hold a host phandle never reaches the
//! guest (its phandles are the guest DT's own: a copied host phandle would
//! dangle or, worse, name an unrelated guest node); every kept property has
//! a name the guest DTB writer accepts; what a guest driver may miss is
//! listed in [`GuestProps::left_out`], and the validator reports it.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::devices::{DeviceInfo, HostIrqSpec};
use crate::dt::{as_cells, as_str, as_str_list, Tree};
use crate::error::{Report, Who};
use crate::model::DtProp;

/// Compatible string that makes a device an AMBA (PrimeCell) peripheral.
pub(crate) const PRIMECELL_COMPATIBLE: &str = "arm,primecell";

/// Rebuilt by the hypervisor in guest terms (`reg`, `interrupts` and
/// `interrupt-names` from the translated regions and interrupts, under the
/// guest's GIC as root interrupt parent). `name` is the node name, which
/// DTBs before version 16 repeat as a property.
const GENERATED: &[&str] = &[
    "compatible",
    "reg",
    "interrupts",
    "interrupts-extended",
    "interrupt-parent",
    "interrupt-names",
    "name",
];

/// Left out without a word: the node's own phandle (nothing in the guest
/// refers to it), the cell counts of its children's addresses (the guest
/// node has no children), and its IOMMU link (the SMMU is the
/// hypervisor's: it translates the device's DMA through the guest's stage 2,
/// invisible to the guest).
const SILENT: &[&str] =
    &["phandle", "linux,phandle", "#address-cells", "#size-cells", "iommus", "iommu-map", "iommu-map-mask"];

/// Standard properties that refer to other host nodes by phandle (bindings
/// of clocks, resets, power domains, pins, DMA, IOMMUs, MSIs, PHYs, ...).
const REFERENCES: &[&str] = &[
    "access-controllers",
    "assigned-clock-parents",
    "assigned-clocks",
    "backlight",
    "clocks",
    "cooling-device",
    "cpu",
    "cpus",
    "dmas",
    "extcon",
    "gpio",
    "gpio-ranges",
    "gpios",
    "hwlocks",
    "interconnects",
    "interrupt-affinity",
    "interrupt-map",
    "io-backends",
    "io-channels",
    "leds",
    "mboxes",
    "memory-region",
    "msi-map",
    "msi-parent",
    "mux-controls",
    "mux-states",
    "nvmem",
    "nvmem-cells",
    "operating-points-v2",
    "panel",
    "phys",
    "post-init-providers",
    "power-domains",
    "pwms",
    "remote-endpoint",
    "resets",
    "sound-dai",
    "sram",
    "thermal-sensors",
    "wakeup-parent",
];

/// Name endings of properties that refer to other host nodes: GPIO lines
/// (`reset-gpios`), regulators (`vdd-supply`), `phy-handle`, vendor
/// `*-phandle`s, `msi-parent`-like links.
const REFERENCE_SUFFIXES: &[&str] =
    &["-gpios", "-gpio", "-supply", "-handle", "-phandle", "-phandles", "-parent"];

/// The names, masks and rates that go with a reference property: left out
/// with it, without a word of their own.
const COMPANIONS: &[&str] = &[
    "access-controller-names",
    "assigned-clock-rates",
    "assigned-clock-rates-u64",
    "assigned-clock-sscs",
    "clock-names",
    "dma-names",
    "hwlock-names",
    "interconnect-names",
    "interrupt-map-mask",
    "io-backend-names",
    "io-channel-names",
    "mbox-names",
    "memory-region-names",
    "msi-map-mask",
    "mux-control-names",
    "mux-state-names",
    "nvmem-cell-names",
    "nvmem-names",
    "phy-names",
    "pinctrl-names",
    "power-domain-names",
    "pwm-names",
    "reset-names",
];

/// Vendor properties (`vendor,name`) known to hold data, copied even when a
/// value happens to look like a phandle.
const KNOWN_DATA: &[&str] = &["arm,primecell-periphid", "linux,pci-domain"];

/// Properties a binding defines that host DTs may leave out, added to the
/// guest node when missing, for a device with at least one interrupt on the
/// GIC: `(compatible, property, value)`. QEMU's `virt` PL061 has neither;
/// Linux's pl061 driver always makes its lines an interrupt controller with
/// two-cell specifiers (arm,pl061 binding: `#interrupt-cells = <2>`).
const COMPLETIONS: &[(&str, &str, &[u8])] =
    &[("arm,pl061", "interrupt-controller", &[]), ("arm,pl061", "#interrupt-cells", &[0, 0, 0, 2])];

/// The guest DT writer's rule for property names: 1 to 31 characters of
/// `[0-9a-zA-Z,._+?#-]`.
fn valid_name(name: &str) -> bool {
    (1..=31).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b",._+?#-".contains(&b))
}

/// The guest node's name (without unit address) for host node `path`: the
/// host name without its unit address, made acceptable to the guest DT
/// writer (1 to 31 characters of `[0-9a-zA-Z,._+-]`, starting with a
/// letter): other characters become `-`, a name not starting with a letter
/// gets a `dev-` prefix, and it is cut at 31 characters.
pub(crate) fn node_name(path: &str) -> String {
    let last = path.rsplit('/').next().unwrap_or(path);
    let stem = last.split('@').next().unwrap_or(last);
    let mut name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || ",._+-".contains(c) { c } else { '-' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "dev-");
    }
    name.truncate(31);
    name
}

/// `pinctrl-0`, `pinctrl-1`, ...: pin configurations of the host's pin controller.
fn is_pinctrl_state(name: &str) -> bool {
    name.strip_prefix("pinctrl-").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `name` (with `value`) refers to other host nodes: a standard
/// reference property, a reference-shaped name, a syscon link, or a vendor
/// property not known to be data whose first cell is a host phandle.
fn is_reference(tree: &Tree<'_>, name: &str, value: &[u8]) -> bool {
    if REFERENCES.contains(&name)
        || is_pinctrl_state(name)
        || REFERENCE_SUFFIXES.iter().any(|s| name.ends_with(s))
        || name.contains("syscon")
    {
        return true;
    }
    let vendor = name.contains(',') && !KNOWN_DATA.contains(&name);
    let first = as_cells(value).and_then(|c| c.first().copied());
    vendor && first.is_some_and(|ph| ph != 0 && ph != u32::MAX && tree.by_phandle(ph).is_some())
}

/// What the guest DT node of a host device keeps of the host node, decided
/// when the host DT is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestProps {
    /// Properties of the guest node besides `compatible`, `reg`,
    /// `interrupts` and the PrimeCell clock: copied byte for byte in host DT
    /// order, then `interrupt-names` of the interrupts kept, then binding
    /// completions.
    pub props: Vec<DtProp>,
    /// `compatible` contains `"arm,primecell"`: the guest node gets
    /// `clocks = <&apb_pclk>` and `clock-names = "apb_pclk"` in place of
    /// the host's clocks.
    pub primecell: bool,
    /// What the guest node leaves out that a guest driver may miss, one
    /// item each in host DT order: reference properties (`resets`,
    /// `pinctrl-0`), `status`, interrupts not on the GIC, child nodes.
    pub left_out: Vec<String>,
}

/// Decides the guest node's properties for host node `idx`, whose
/// interrupt specifiers decoded to `irqs` (one entry each, `None` when not
/// on the GIC).
pub(crate) fn guest_props(tree: &Tree<'_>, idx: usize, irqs: &[Option<HostIrqSpec>]) -> GuestProps {
    let mut out = GuestProps::default();
    let Some(node) = tree.node(idx) else {
        return out;
    };
    out.primecell = node.is_compatible(PRIMECELL_COMPATIBLE);
    for p in &node.props {
        let name = p.name;
        if GENERATED.contains(&name) || SILENT.contains(&name) || COMPANIONS.contains(&name) {
            continue;
        }
        if name == "status" {
            let status = as_str(p.value).unwrap_or("?");
            if !matches!(status, "okay" | "ok") {
                out.left_out.push(format!("status \"{status}\""));
            }
        } else if name == "clocks" && out.primecell {
            let names = node.str_list("clock-names");
            if names.iter().any(|n| *n != "apb_pclk") {
                out.left_out.push("clocks other than apb_pclk".to_string());
            }
        } else if !valid_name(name) {
            out.left_out.push(format!("{name} (not a valid property name)"));
        } else if matches!(name, "ranges" | "dma-ranges") {
            // Address translation in host terms: an empty one (identity) is no loss.
            if !p.value.is_empty() {
                out.left_out.push(name.to_string());
            }
        } else if is_reference(tree, name, p.value) {
            out.left_out.push(name.to_string());
        } else if out.props.iter().any(|q| q.name == name) {
            out.left_out.push(format!("{name} (given twice)"));
        } else {
            out.props.push(DtProp { name: name.to_string(), value: p.value.to_vec() });
        }
    }
    let lost = irqs.iter().filter(|s| s.is_none()).count();
    if lost > 0 {
        out.left_out.push(format!("{lost} interrupt(s) not on the GIC"));
    }
    if let Some(names) = node.prop("interrupt-names") {
        match as_str_list(names).filter(|n| n.len() == irqs.len()) {
            Some(list) => {
                let kept = list.iter().zip(irqs).filter(|(_, s)| s.is_some()).map(|(n, _)| *n);
                let mut value = Vec::new();
                for n in kept {
                    value.extend_from_slice(n.as_bytes());
                    value.push(0);
                }
                if !value.is_empty() {
                    out.props.push(DtProp { name: "interrupt-names".to_string(), value });
                }
            }
            None => out.left_out.push("interrupt-names (does not match interrupts)".to_string()),
        }
    }
    if irqs.iter().any(Option::is_some) {
        for (compatible, name, value) in COMPLETIONS {
            if node.is_compatible(compatible) && !out.props.iter().any(|p| p.name == *name) {
                out.props.push(DtProp { name: name.to_string(), value: value.to_vec() });
            }
        }
    }
    let children: Vec<&str> = tree.children(idx).map(|(_, c)| c.name).collect();
    if !children.is_empty() {
        out.left_out.push(format!("child nodes {}", children.join(", ")));
    }
    out
}

const LEFT_OUT_HINT: &str = "these refer to host DT nodes or wiring the guest does not have (clocks, resets, pins, power domains, GPIOs, child devices), so the guest's driver gets the device without them (docs/config.md, \"The guest DT node of a host device\"); a guest that needs them can boot with its own device tree (dtb = \"file\")";

/// Warns (on config node `path`) about what the guest DT node of host device
/// `dev` leaves out, in one warning.
pub(crate) fn warn_left_out(dev: &DeviceInfo, path: &str, who: Who<'_>, report: &mut Report) {
    let left = &dev.guest_node.left_out;
    if left.is_empty() {
        return;
    }
    let msg = format!("the guest DT node of host device {} leaves out {}", dev.path, left.join(", "));
    report.warn(who, path, msg, LEFT_OUT_HINT);
}

#[cfg(test)]
mod tests;
