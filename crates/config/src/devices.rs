//! Host devices from the host DT: `reg` translated to CPU physical addresses,
//! GIC interrupt specifiers decoded to INTIDs, and DMA capability.
//!
//! Invariant: a [`DeviceInfo`] only describes nodes whose every `reg` entry
//! could be translated to a host physical address through the parents'
//! `ranges`; nodes in private address spaces (I2C, PCI config) are not
//! devices here. Decoding never panics: bad cells give a [`HostDtError`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use ferrovisor_types::{HostIrq, HostRegion};

use crate::dt::{as_cells, as_u32, cells_to_u64, Tree};
use crate::error::HostDtError;
use crate::guestnode::{guest_props, GuestProps};

/// Compatible string of the GICv3 interrupt controller.
pub const GIC_V3_COMPATIBLE: &str = "arm,gic-v3";
/// Compatible string of an SMMUv3.
pub const SMMU_V3_COMPATIBLE: &str = "arm,smmu-v3";

/// Compatibles that are bus masters even without `dma-coherent`/`iommus`.
const DMA_COMPATIBLES: &[&str] = &["virtio,mmio", "qemu,fw-cfg-mmio"];
/// Compatibles known to have no bus-master interface, whatever the DT says.
const NON_DMA_COMPATIBLES: &[&str] = &["arm,pl031", "arm,pl061"];

/// How an interrupt is signalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Edge triggered (GIC flags 1 = rising, 2 = falling).
    Edge,
    /// Level sensitive (GIC flags 4 = high, 8 = low; also flags 0).
    Level,
}

/// One host interrupt of a device, decoded from a GIC 3-cell specifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostIrqSpec {
    /// The INTID: `<0 n f>` is SPI n = INTID 32+n, `<1 n f>` is PPI n = 16+n.
    pub irq: HostIrq,
    /// Edge or level.
    pub trigger: Trigger,
}

/// The SMMU in front of a device (from `iommus` or `iommu-map`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IommuLink {
    /// Path of the SMMUv3 node.
    pub smmu: String,
    /// Stream IDs as `(first, count)` ranges.
    pub stream_ids: Vec<(u32, u32)>,
}

/// A memory-mapped device of the host DT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Full DT path, e.g. `/pl031@9010000`.
    pub path: String,
    /// The `compatible` list, most specific first.
    pub compatible: Vec<String>,
    /// `reg` entries as host physical ranges.
    pub regions: Vec<HostRegion>,
    /// Interrupts routed to the GIC (specifiers of other controllers are left out).
    pub irqs: Vec<HostIrqSpec>,
    /// Whether the device can master DMA (`virtio,mmio`, `qemu,fw-cfg-mmio`,
    /// `dma-coherent`, `iommus` or `iommu-map`, minus known non-DMA devices).
    pub dma: bool,
    /// The SMMUv3 that translates its DMA, if any.
    pub iommu: Option<IommuLink>,
    /// The node has `dma-coherent`.
    pub dma_coherent: bool,
    /// What the device's node in a guest DT keeps of this node.
    pub guest_node: GuestProps,
    /// Its clocks (`clocks`), in order: what an SCMI agent gets for it.
    pub clocks: Vec<HostClock>,
    /// Its GIC interrupts by `interrupt-names` (an SMMU's `eventq`,
    /// `gerror`, ...), where the node names them.
    pub named_irqs: Vec<(String, HostIrq)>,
}

impl DeviceInfo {
    /// The interrupt the node calls `name` (`interrupt-names`).
    pub fn irq_named(&self, name: &str) -> Option<HostIrq> {
        self.named_irqs.iter().find(|(n, _)| n == name).map(|(_, irq)| *irq)
    }
}

/// One clock of a host device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostClock {
    /// The platform's name for it: the provider node's name without its
    /// unit address (`apb-pclk`), with `:N` for a provider of several
    /// clocks.
    pub name: String,
    /// The device's name for it (`clock-names`), if given.
    pub consumer: Option<String>,
    /// Its fixed rate in Hz (a `fixed-clock` provider's `clock-frequency`).
    pub rate: Option<u32>,
}

/// The clocks of node `idx` (`clocks` = phandle + `#clock-cells` cells each,
/// `clock-names`). A specifier whose provider is missing ends the list.
fn host_clocks(tree: &Tree<'_>, idx: usize) -> Vec<HostClock> {
    let Some(node) = tree.node(idx) else { return Vec::new() };
    let cells = node.prop("clocks").and_then(as_cells).unwrap_or_default();
    let names = node.str_list("clock-names");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(&handle) = cells.get(at) {
        let Some(provider) = tree.by_phandle(handle).and_then(|p| tree.node(p)) else { break };
        let n = provider.u32_prop("#clock-cells").unwrap_or(0) as usize;
        let args = cells.get(at + 1..at + 1 + n).unwrap_or(&[]);
        let base = provider.name.split('@').next().unwrap_or(provider.name);
        let name = match args {
            [] => base.to_string(),
            [i, ..] => alloc::format!("{base}:{i}"),
        };
        let rate =
            if provider.is_compatible("fixed-clock") { provider.u32_prop("clock-frequency") } else { None };
        out.push(HostClock { name, consumer: names.get(out.len()).map(|s| s.to_string()), rate });
        at += 1 + n;
    }
    out
}

/// Index of the first node compatible with "arm,gic-v3".
pub(crate) fn find_gic(tree: &Tree<'_>) -> Option<usize> {
    tree.nodes.iter().position(|n| n.is_compatible(GIC_V3_COMPATIBLE))
}

fn bad(tree: &Tree<'_>, idx: usize, property: &'static str, reason: &'static str) -> HostDtError {
    let node = tree.node(idx).map(|n| n.path.clone()).unwrap_or_default();
    HostDtError::BadProperty { node, property, reason }
}

/// Splits a `reg`-like value into `(address, size)` pairs of the given cell
/// counts. `Ok(None)` when the cell counts are not supported (> 2).
pub(crate) fn split_reg(value: &[u8], ac: usize, sc: usize) -> Option<Option<Vec<(u64, u64)>>> {
    if ac == 0 || ac > 2 || sc > 2 {
        return Some(None);
    }
    let cells = as_cells(value)?;
    let stride = ac + sc;
    if cells.len() % stride != 0 {
        return None;
    }
    let mut out = Vec::new();
    for chunk in cells.chunks_exact(stride) {
        let (a, s) = chunk.split_at(ac);
        out.push((cells_to_u64(a)?, cells_to_u64(s)?));
    }
    Some(Some(out))
}

/// Translates an address in the address space of bus node `bus` up to the
/// root. `None` when some bus on the way has no `ranges` or no window covers
/// `[addr, addr + size)`.
fn translate(tree: &Tree<'_>, mut bus: usize, mut addr: u64, size: u64) -> Option<u64> {
    for _ in 0..tree.nodes.len() {
        let node = tree.node(bus)?;
        let Some(parent) = node.parent else {
            return Some(addr);
        };
        let ranges = node.prop("ranges")?;
        if !ranges.is_empty() {
            let (cac, pac, sc) = (tree.address_cells(bus), tree.address_cells(parent), tree.size_cells(bus));
            if cac == 0 || cac > 2 || pac == 0 || pac > 2 || sc == 0 || sc > 2 {
                return None;
            }
            let cells = as_cells(ranges)?;
            let mut mapped = None;
            for e in cells.chunks_exact(cac + pac + sc) {
                let child = cells_to_u64(e.get(..cac)?)?;
                let par = cells_to_u64(e.get(cac..cac + pac)?)?;
                let len = cells_to_u64(e.get(cac + pac..)?)?;
                let off = addr.checked_sub(child)?;
                if off.checked_add(size)? <= len {
                    mapped = Some(par.checked_add(off)?);
                    break;
                }
            }
            addr = mapped?;
        }
        bus = parent;
    }
    None
}

/// The interrupt controller of node `idx`: its own or an ancestor's
/// `interrupt-parent`.
fn interrupt_parent(tree: &Tree<'_>, mut idx: usize) -> Option<usize> {
    for _ in 0..tree.nodes.len() {
        let node = tree.node(idx)?;
        if let Some(ph) = node.prop("interrupt-parent").and_then(as_u32) {
            return tree.by_phandle(ph);
        }
        idx = node.parent?;
    }
    None
}

/// Decodes one GIC specifier; `None` for classes we do not route.
pub(crate) fn gic_spec(spec: &[u32]) -> Option<HostIrqSpec> {
    let (kind, num, flags) = (*spec.first()?, *spec.get(1)?, *spec.get(2)?);
    let intid = match (kind, num) {
        (0, 0..=987) => 32 + num,
        (1, 0..=15) => 16 + num,
        _ => return None,
    };
    let trigger = if flags & 0x3 != 0 { Trigger::Edge } else { Trigger::Level };
    Some(HostIrqSpec { irq: HostIrq::new(intid)?, trigger })
}

/// The interrupt specifiers of node `idx` (`interrupts-extended` or
/// `interrupts`), one entry each in DT order: the GIC interrupt, or `None`
/// for a specifier of another controller or of a class we do not route.
/// `interrupts` without a usable interrupt parent gives one `None`.
pub(crate) fn irq_slots(tree: &Tree<'_>, idx: usize) -> Result<Vec<Option<HostIrqSpec>>, HostDtError> {
    let node = tree.node(idx).ok_or(HostDtError::NotFound { path: String::new() })?;
    let mut out = Vec::new();
    let irq_cells = |ctrl: usize| tree.node(ctrl).and_then(|c| c.u32_prop("#interrupt-cells"));
    let is_gic = |ctrl: usize| tree.node(ctrl).is_some_and(|c| c.is_compatible(GIC_V3_COMPATIBLE));
    if let Some(value) = node.prop("interrupts-extended") {
        let cells =
            as_cells(value).ok_or(bad(tree, idx, "interrupts-extended", "length is not a multiple of 4"))?;
        let mut rest = cells.as_slice();
        while let Some((ph, tail)) = rest.split_first() {
            let ctrl =
                tree.by_phandle(*ph).ok_or(bad(tree, idx, "interrupts-extended", "unknown phandle"))?;
            let n = irq_cells(ctrl).ok_or(bad(
                tree,
                idx,
                "interrupts-extended",
                "controller has no #interrupt-cells",
            ))? as usize;
            let spec = tail.get(..n).ok_or(bad(tree, idx, "interrupts-extended", "truncated specifier"))?;
            out.push(if is_gic(ctrl) { gic_spec(spec) } else { None });
            rest = tail.get(n..).unwrap_or(&[]);
        }
        return Ok(out);
    }
    let Some(value) = node.prop("interrupts") else {
        return Ok(out);
    };
    let ctrl = interrupt_parent(tree, idx);
    let n = ctrl.and_then(irq_cells).unwrap_or(0) as usize;
    if n == 0 {
        out.push(None);
        return Ok(out);
    }
    let count = value.len().div_ceil(4).div_ceil(n).max(1);
    if !ctrl.is_some_and(is_gic) {
        out.resize(count, None);
        return Ok(out);
    }
    let cells = as_cells(value).ok_or(bad(tree, idx, "interrupts", "length is not a multiple of 4"))?;
    if cells.len() % n != 0 {
        return Err(bad(tree, idx, "interrupts", "length is not a multiple of #interrupt-cells"));
    }
    out.extend(cells.chunks_exact(n).map(gic_spec));
    Ok(out)
}

/// The GIC interrupts of node `idx` (`interrupts-extended` or `interrupts`).
pub(crate) fn decode_irqs(tree: &Tree<'_>, idx: usize) -> Result<Vec<HostIrqSpec>, HostDtError> {
    Ok(irq_slots(tree, idx)?.into_iter().flatten().collect())
}

/// The SMMUv3 behind `iommus` / `iommu-map` of node `idx`.
fn iommu_link(tree: &Tree<'_>, idx: usize) -> Option<IommuLink> {
    let node = tree.node(idx)?;
    let smmu_node = |ph: u32| {
        tree.by_phandle(ph).and_then(|i| tree.node(i)).filter(|n| n.is_compatible(SMMU_V3_COMPATIBLE))
    };
    if let Some(cells) = node.prop("iommus").and_then(as_cells) {
        let (ph, sid) = (*cells.first()?, cells.get(1).copied().unwrap_or(0));
        let smmu = smmu_node(ph)?;
        return Some(IommuLink { smmu: smmu.path.clone(), stream_ids: alloc::vec![(sid, 1)] });
    }
    let cells = node.prop("iommu-map").and_then(as_cells)?;
    let mut link: Option<IommuLink> = None;
    for e in cells.chunks_exact(4) {
        let (ph, sid, len) = (*e.get(1)?, *e.get(2)?, *e.get(3)?);
        let smmu = smmu_node(ph)?;
        let l = link.get_or_insert_with(|| IommuLink { smmu: smmu.path.clone(), stream_ids: Vec::new() });
        l.stream_ids.push((sid, len));
    }
    link
}

/// Whether node `idx` is excluded from device enumeration (root, memory,
/// CPUs and everything under /cpus).
fn is_excluded(tree: &Tree<'_>, idx: usize) -> bool {
    let Some(node) = tree.node(idx) else {
        return true;
    };
    let memory = node.str_prop("device_type") == Some("memory") || node.base_name() == "memory";
    memory || node.parent.is_none() || node.path == "/cpus" || node.path.starts_with("/cpus/")
}

/// The device at node `idx`: `Ok(None)` when it is not a memory-mapped
/// device (no `reg`, excluded, or not reachable from the CPU address space).
pub(crate) fn device_at(tree: &Tree<'_>, idx: usize) -> Result<Option<DeviceInfo>, HostDtError> {
    let Some(node) = tree.node(idx) else {
        return Ok(None);
    };
    let (Some(reg), Some(parent)) = (node.prop("reg"), node.parent) else {
        return Ok(None);
    };
    if is_excluded(tree, idx) {
        return Ok(None);
    }
    let (ac, sc) = (tree.address_cells(parent), tree.size_cells(parent));
    let pairs = split_reg(reg, ac, sc).ok_or(bad(
        tree,
        idx,
        "reg",
        "length does not match #address-cells/#size-cells",
    ))?;
    let Some(pairs) = pairs else { return Ok(None) };
    let mut regions = Vec::new();
    for (addr, size) in pairs {
        match translate(tree, parent, addr, size) {
            Some(base) if base.checked_add(size).is_some() => regions.push(HostRegion::new(base, size)),
            Some(_) => return Err(bad(tree, idx, "reg", "region wraps past the end of the address space")),
            None => return Ok(None),
        }
    }
    let compatible: Vec<String> = node.str_list("compatible").iter().map(|s| s.to_string()).collect();
    let has = |c: &str| compatible.iter().any(|x| x == c);
    let iommu = iommu_link(tree, idx);
    let dma_coherent = node.has("dma-coherent");
    let master =
        DMA_COMPATIBLES.iter().any(|c| has(c)) || dma_coherent || node.has("iommus") || node.has("iommu-map");
    let dma = master && !NON_DMA_COMPATIBLES.iter().any(|c| has(c));
    let slots = irq_slots(tree, idx)?;
    let guest_node = guest_props(tree, idx, &slots);
    let named_irqs = node
        .str_list("interrupt-names")
        .iter()
        .zip(&slots)
        .filter_map(|(name, slot)| Some((name.to_string(), slot.as_ref()?.irq)))
        .collect();
    let irqs = slots.into_iter().flatten().collect();
    Ok(Some(DeviceInfo {
        path: node.path.clone(),
        compatible,
        regions,
        irqs,
        dma,
        iommu,
        dma_coherent,
        guest_node,
        clocks: host_clocks(tree, idx),
        named_irqs,
    }))
}

/// Every memory-mapped device of the tree, in DT order. Nodes whose `reg` or
/// `interrupts` cannot be decoded are left out (they cannot be passed through).
pub(crate) fn all_devices(tree: &Tree<'_>) -> Vec<DeviceInfo> {
    (0..tree.nodes.len()).filter_map(|i| device_at(tree, i).ok().flatten()).collect()
}

/// Looks up one host device by full DT path.
pub fn host_device(dtb: &[u8], path: &str) -> Result<DeviceInfo, HostDtError> {
    let tree = Tree::parse(dtb).map_err(HostDtError::Malformed)?;
    let idx = tree.find(path).ok_or_else(|| HostDtError::NotFound { path: path.to_string() })?;
    device_at(&tree, idx)?.ok_or_else(|| HostDtError::NotADevice { path: path.to_string() })
}

/// Every memory-mapped device of the host DT (nodes with a translatable
/// `reg`, except memory and CPUs), in DT order.
pub fn host_devices(dtb: &[u8]) -> Result<Vec<DeviceInfo>, HostDtError> {
    let tree = Tree::parse(dtb).map_err(HostDtError::Malformed)?;
    Ok(all_devices(&tree))
}
