//! Config DTB -> raw guest descriptions: the root, `/guests` and the guest
//! nodes (the nodes inside a guest are read by `nodes`). Semantic checks
//! against the host live in `validate`.
//!
//! Invariant: every property and child node of the config is either read
//! into a [`RawGuest`] or reported as unknown; nothing is silently ignored.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::dt::{Node, Tree};
use crate::error::{Report, Who};
use crate::limits::{MAX_GUESTS, MAX_MEMORY_REGIONS, MAX_PASSTHROUGH};
use crate::model::{MemoryRegion, VuartConfig};
use crate::nodes::{parse_memory, parse_passthrough, parse_vuart, Ctx, ALWAYS_ALLOWED};

/// Root `compatible` of a config DTB.
pub const CONFIG_COMPATIBLE: &str = "ferrovisor,config-v1";
/// `compatible` of a guest node.
pub const GUEST_COMPATIBLE: &str = "ferrovisor,guest";
/// `compatible` of an emulated PL011 node.
pub const VUART_COMPATIBLE: &str = "ferrovisor,vuart-pl011";
/// `compatible` of a pass-through node.
pub const PASSTHROUGH_COMPATIBLE: &str = "ferrovisor,passthrough";

const ROOT_PROPS: &[&str] = &["compatible", "model", "#address-cells", "#size-cells"];
const GUESTS_PROPS: &[&str] = &["#address-cells", "#size-cells"];
const GUEST_PROPS: &[&str] = &[
    "compatible",
    "vcpus",
    "cpu-affinity",
    "kernel",
    "initrd",
    "dtb",
    "bootargs",
    "scmi-channel-addr",
    "manual-start",
    "pci-ecam",
    "pci-window",
    "#address-cells",
    "#size-cells",
];
const GUEST_CHILDREN_HINT: &str = "a guest node may contain only memory@<addr> nodes, one node with compatible = \"ferrovisor,vuart-pl011\" and nodes with compatible = \"ferrovisor,passthrough\"";

/// Where a pass-through takes its host side from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PtSource {
    /// `host-device = "/path"`.
    Device(String),
    /// `host-physical-addr` + `size`.
    Raw { hpa: u64, size: u64 },
    /// `pci-function = "bb:dd.f"` and its `intx` pin (`None`: no INTx).
    Pci { bdf: ferrovisor_pci::Bdf, pin: Option<ferrovisor_pci::Pin> },
}

/// A pass-through node as written.
#[derive(Clone, Debug)]
pub(crate) struct RawPassthrough {
    pub name: String,
    pub path: String,
    pub source: PtSource,
    pub gpa: Option<u64>,
    pub irq_map: Vec<(u32, u32)>,
    pub dma_ack: bool,
    pub scmi_power: Option<String>,
    pub scmi_reset: Option<String>,
    pub standby: bool,
    /// `dma-registers`: (low offset, high offset, length) triples.
    pub dma_registers: Vec<[u32; 3]>,
}

/// A guest node as written.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawGuest {
    pub name: String,
    pub path: String,
    pub vcpus: Option<u32>,
    pub affinity: Option<Vec<u32>>,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub dtb: Option<String>,
    pub bootargs: Option<String>,
    pub memory: Vec<MemoryRegion>,
    pub vuart: Option<VuartConfig>,
    pub passthrough: Vec<RawPassthrough>,
    pub scmi_channel: Option<u64>,
    pub manual_start: bool,
    /// `pci-ecam`: guest-physical base of the virtual host bridge's ECAM.
    pub pci_ecam: Option<u64>,
    /// `pci-window`: guest-physical base and size of its BAR window.
    pub pci_window: Option<(u64, u64)>,
}

fn valid_name(name: &str) -> bool {
    (1..=crate::model::MAX_GUEST_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Reads the config DTB. Returns `None` (after reporting) when it has no
/// usable `/guests`.
pub(crate) fn parse_config(dtb: &[u8], report: &mut Report) -> Option<Vec<RawGuest>> {
    let tree = match Tree::parse(dtb) {
        Ok(t) => t,
        Err(e) => {
            let hint = "compile the config with `dtc -I dts -O dtb` and put the .dtb into the boot bundle";
            report.global("/", format!("config DTB is unreadable: {e}"), hint);
            return None;
        }
    };
    let root = tree.root()?;
    if !root.is_compatible(CONFIG_COMPATIBLE) {
        let found = root.str_list("compatible").join("\", \"");
        let msg = format!(
            "root compatible is \"{found}\", not \"{CONFIG_COMPATIBLE}\": this is not a ferrovisor config"
        );
        report.global(
            "/",
            msg,
            "start the config with compatible = \"ferrovisor,config-v1\"; in the root node",
        );
        return None;
    }
    for p in &root.props {
        if !ROOT_PROPS.contains(&p.name) && !ALWAYS_ALLOWED.contains(&p.name) {
            let hint = format!("allowed properties here: {}", ROOT_PROPS.join(", "));
            report.global("/", format!("unknown property \"{}\"", p.name), &hint);
        }
    }
    let mut guests_idx = None;
    for (i, child) in tree.children(0) {
        match child.name {
            "guests" => guests_idx = Some(i),
            "__symbols__" => {}
            other => report.global(
                &child.path,
                format!("unknown node \"{other}\""),
                "the root node may contain only a guests node",
            ),
        }
    }
    let Some(guests_idx) = guests_idx else {
        report.global(
            "/",
            "no /guests node".into(),
            "describe the guests in a guests { ... }; node under the root",
        );
        return None;
    };
    if let Some(g) = tree.node(guests_idx) {
        for p in &g.props {
            if !GUESTS_PROPS.contains(&p.name) && !ALWAYS_ALLOWED.contains(&p.name) {
                let hint = "the guests node holds only guest nodes";
                report.global(&g.path, format!("unknown property \"{}\"", p.name), hint);
            }
        }
    }
    let mut guests: Vec<RawGuest> = Vec::new();
    for (index, (idx, node)) in tree.children(guests_idx).enumerate() {
        report.rejected.push(false);
        if index >= MAX_GUESTS {
            // Not read any further: a config with hundreds of guests must
            // not fill the hypervisor heap before it is refused.
            let msg = format!(
                "guest {} is guest number {}, but a config has at most {MAX_GUESTS} guests",
                node.name,
                index + 1
            );
            report.error(
                Who { index, name: node.name },
                &node.path,
                msg,
                "remove guests, or split the config: the hypervisor has heap and VMIDs for 32 guests",
            );
            continue;
        }
        let guest = parse_guest(&tree, idx, node, index, &guests, report);
        guests.push(guest);
    }
    if guests.is_empty() {
        report.global("/guests", "no guest is defined".into(), "add at least one guest node under /guests");
    }
    Some(guests)
}

fn parse_guest(
    tree: &Tree<'_>,
    idx: usize,
    node: &Node<'_>,
    index: usize,
    earlier: &[RawGuest],
    report: &mut Report,
) -> RawGuest {
    let who = Who { index, name: node.name };
    let mut c = Ctx { report, who, node };
    if !valid_name(node.name) {
        let msg = format!("guest name \"{}\" is not valid", node.name);
        c.error(msg, "a guest name is 1 to 32 characters from a-z, 0-9, '_' and '-' (no unit address)");
    }
    if let Some(first) = earlier.iter().find(|g| g.name == node.name) {
        let msg = format!("guest name \"{}\" is already used by {}", node.name, first.path);
        c.error(msg, "give every guest a unique node name");
    }
    c.check_props(GUEST_PROPS);
    let compat = node.str_list("compatible");
    if c.required("compatible", node.prop("compatible"), "compatible = \"ferrovisor,guest\";").is_some()
        && !compat.contains(&GUEST_COMPATIBLE)
    {
        c.error(
            format!("compatible must be \"{GUEST_COMPATIBLE}\""),
            "write compatible = \"ferrovisor,guest\";",
        );
    }
    let vcpus = c.u32_prop("vcpus", "vcpus = <1>;");
    let vcpus = c.required("vcpus", vcpus, "vcpus = <1>; (1 to 8 virtual CPUs)");
    let mut g = RawGuest {
        name: node.name.to_string(),
        path: node.path.clone(),
        vcpus,
        affinity: c.cell_list("cpu-affinity", "cpu-affinity = <0 1>;"),
        kernel: c.string("kernel"),
        initrd: c.string("initrd"),
        dtb: c.string("dtb"),
        bootargs: c.string("bootargs"),
        scmi_channel: c.u64_prop("scmi-channel-addr"),
        manual_start: c.flag("manual-start"),
        pci_ecam: c.u64_prop("pci-ecam"),
        pci_window: crate::nodes::window_prop(&mut c, "pci-window"),
        ..RawGuest::default()
    };
    let (mut memories, mut passthroughs) = (0usize, 0usize);
    for (child_idx, child) in tree.children(idx) {
        let mut c = Ctx { report, who, node: child };
        let compat = child.str_list("compatible");
        if compat.contains(&VUART_COMPATIBLE) {
            parse_vuart(&mut c, &mut g);
        } else if compat.contains(&PASSTHROUGH_COMPATIBLE) {
            let hint = "a guest has at most 32 pass-through nodes: pass neighbouring devices as one raw region, or split the guest";
            if c.over_limit(&mut passthroughs, MAX_PASSTHROUGH, "pass-through nodes", &g.name, hint) {
                continue;
            }
            g.passthrough.extend(parse_passthrough(&mut c));
        } else if child.base_name() == "memory" && !child.has("compatible") {
            let hint = "a guest has at most 16 memory regions: merge adjacent regions into one";
            if c.over_limit(&mut memories, MAX_MEMORY_REGIONS, "memory regions", &g.name, hint) {
                continue;
            }
            g.memory.extend(parse_memory(&mut c));
        } else {
            c.error(format!("unknown node \"{}\"", child.name), GUEST_CHILDREN_HINT);
            continue;
        }
        c.no_children(tree, child_idx);
    }
    g
}
