//! The host's PCIe host bridge (`pci-host-ecam-generic`) from the host DT:
//! its ECAM window, bus range, memory windows, INTx routing
//! (`interrupt-map`) and stream IDs (`iommu-map`). The hypervisor
//! enumerates bus 0 behind it and gives functions to guests one by one
//! (docs/config.md, "PCIe functions").

use alloc::string::String;
use alloc::vec::Vec;
use ferrovisor_pci::{Bdf, IntxMap, Pin};
use ferrovisor_types::HostRegion;

use crate::devices::{gic_spec, HostIrqSpec, SMMU_V3_COMPATIBLE};
use crate::dt::{as_cells, Tree};

/// `compatible` of the host bridges ferrovisor drives.
pub const PCI_ECAM_COMPATIBLE: &str = "pci-host-ecam-generic";

/// One memory window of the host bridge (`ranges`): CPU and PCI address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciWindow {
    /// Where the CPU (and a guest's stage 2) reaches it.
    pub cpu: u64,
    /// The address a BAR holds for it.
    pub pci: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The host bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPci {
    /// Its DT path, e.g. `/pcie@10000000`.
    pub path: String,
    /// The ECAM window (`reg`): 1 MiB per bus from the first bus.
    pub ecam: HostRegion,
    /// First and last bus (`bus-range`; default 0..=255).
    pub buses: (u8, u8),
    /// The 32-bit non-prefetchable memory window, if any.
    pub mem32: Option<PciWindow>,
    /// The 64-bit memory window, if any.
    pub mem64: Option<PciWindow>,
    intx_map: Vec<u32>,
    intx_mask: Vec<u32>,
    parent_address_cells: usize,
    parent_interrupt_cells: usize,
    /// `iommu-map` entries: first RID, SMMU path, first stream ID, count.
    iommu_map: Vec<(u32, String, u32, u32)>,
}

impl HostPci {
    /// The host interrupt of INTx `pin` of function `bdf` (on bus 0: no
    /// swizzle above the bridge), if `interrupt-map` routes it to a GIC SPI.
    pub fn intx(&self, bdf: Bdf, pin: Pin) -> Option<HostIrqSpec> {
        let map = IntxMap::new(
            &self.intx_map,
            &self.intx_mask,
            self.parent_address_cells,
            self.parent_interrupt_cells,
        )
        .ok()?;
        gic_spec(map.route(bdf, pin)?.interrupt)
    }

    /// The SMMU (its DT path) and stream ID of function `bdf`'s DMA, from
    /// `iommu-map`.
    pub fn stream(&self, bdf: Bdf) -> Option<(&str, u32)> {
        let rid = u32::from(bdf.rid());
        self.iommu_map.iter().find_map(|(first, smmu, sid, len)| {
            let off = rid.checked_sub(*first).filter(|o| o < len)?;
            Some((smmu.as_str(), sid.checked_add(off)?))
        })
    }
}

fn window(cells: &[u32]) -> Option<(u32, PciWindow)> {
    // Child address: 3 cells (phys.hi, mid, lo); parent address and size:
    // 2 cells each on every board ferrovisor supports.
    let [hi, mid, lo, cpu_hi, cpu_lo, size_hi, size_lo] = *cells else { return None };
    let join = |h: u32, l: u32| u64::from(h) << 32 | u64::from(l);
    let space = (hi >> 24) & 3;
    Some((space, PciWindow { cpu: join(cpu_hi, cpu_lo), pci: join(mid, lo), size: join(size_hi, size_lo) }))
}

/// Reads the first `pci-host-ecam-generic` node of the host DT; `None` if
/// there is none or its shape is not one ferrovisor understands (2-cell
/// parent addresses and sizes, a 1-cell INTx specifier).
pub(crate) fn parse(tree: &Tree<'_>) -> Option<HostPci> {
    let idx = tree.nodes.iter().position(|n| n.is_compatible(PCI_ECAM_COMPATIBLE))?;
    let node = tree.node(idx)?;
    let parent = node.parent?;
    if tree.address_cells(parent) != 2 || tree.size_cells(parent) != 2 || tree.address_cells(idx) != 3 {
        return None;
    }
    let reg = node.prop("reg").and_then(as_cells)?;
    let ecam = match *reg.as_slice() {
        [a_hi, a_lo, s_hi, s_lo, ..] => {
            HostRegion::new(u64::from(a_hi) << 32 | u64::from(a_lo), u64::from(s_hi) << 32 | u64::from(s_lo))
        }
        _ => return None,
    };
    let buses = match node.prop("bus-range").and_then(as_cells).as_deref() {
        Some([first, last]) => (u8::try_from(*first).ok()?, u8::try_from(*last).ok()?),
        Some(_) => return None,
        None => (0, 255),
    };
    let (mut mem32, mut mem64) = (None, None);
    for entry in node.prop("ranges").and_then(as_cells).unwrap_or_default().chunks_exact(7) {
        match window(entry) {
            Some((2, w)) => mem32 = mem32.or(Some(w)),
            Some((3, w)) => mem64 = mem64.or(Some(w)),
            _ => {}
        }
    }
    let (intx_map, intx_mask) = (
        node.prop("interrupt-map").and_then(as_cells).unwrap_or_default(),
        node.prop("interrupt-map-mask").and_then(as_cells).unwrap_or_default(),
    );
    // The interrupt parent of the first entry gives the cell counts (one
    // GIC on every board ferrovisor supports).
    let gic = intx_map.get(4).and_then(|&ph| tree.by_phandle(ph)).and_then(|i| tree.node(i));
    let parent_address_cells = gic.and_then(|g| g.u32_prop("#address-cells")).unwrap_or(0) as usize;
    let parent_interrupt_cells = gic.and_then(|g| g.u32_prop("#interrupt-cells")).unwrap_or(3) as usize;
    let mut iommu_map = Vec::new();
    for e in node.prop("iommu-map").and_then(as_cells).unwrap_or_default().chunks_exact(4) {
        let [rid, ph, sid, len] = *e else { continue };
        let smmu =
            tree.by_phandle(ph).and_then(|i| tree.node(i)).filter(|n| n.is_compatible(SMMU_V3_COMPATIBLE));
        if let Some(smmu) = smmu {
            iommu_map.push((rid, smmu.path.clone(), sid, len));
        }
    }
    Some(HostPci {
        path: node.path.clone(),
        ecam,
        buses,
        mem32,
        mem64,
        intx_map,
        intx_mask,
        parent_address_cells,
        parent_interrupt_cells,
        iommu_map,
    })
}
