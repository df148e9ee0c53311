//! Host RAM and hypervisor heap for the accepted guests, planned exactly as
//! the hypervisor takes them at boot.
//!
//! The plan runs the hypervisor's own RAM allocator (`ferrovisor-ram`) over
//! host RAM less what the hypervisor occupies ([`Hypervisor::reserved`]):
//! first every identity region of every accepted guest, then each guest's
//! other regions in config order, from the top of RAM down, each with the
//! same offset in its 2 MiB block as its guest address ([`RAM_BLOCK`]). The
//! host address it finds is written into [`MemoryRegion::host`], and the
//! hypervisor reserves exactly that: what the validator accepts, the boot
//! can build. A guest that does not fit (RAM or heap) is rejected with its
//! node path; what it had planned is given back for the guests after it.
//!
//! Invariant: the regions of accepted guests are disjoint and inside host
//! RAM, and none overlaps a hypervisor reservation.

use alloc::format;
use alloc::vec::Vec;
use ferrovisor_ram::{RamAllocator, RamError};
use ferrovisor_types::{GuestPhysAddr, HostPhysAddr, HostRegion};

use crate::error::{range, Report, Who};
use crate::host::HostPlatform;
use crate::limits::{
    Hypervisor, HEAP_PER_DMA_TRAP, HEAP_PER_GUEST, HEAP_PER_NODE, HEAP_PER_TABLE, HEAP_PER_VCPU,
    HEAP_PER_VUART, RAM_BLOCK,
};
use crate::model::{GuestConfig, PAGE_SIZE};

const KIB: u64 = 1024;

/// The hypervisor heap guest `g` costs, in bytes: its stage-2 tables
/// (counted exactly, from its planned host addresses), plus fixed costs per
/// guest, vCPU, node and emulated UART (see `limits`). Only meaningful for a
/// planned guest ([`MemoryRegion::host`] set).
///
/// [`MemoryRegion::host`]: crate::MemoryRegion::host
pub fn heap_estimate(g: &GuestConfig) -> u64 {
    (stage2_tables(g) + dma_tables(g)).saturating_mul(HEAP_PER_TABLE)
        + HEAP_PER_GUEST
        + u64::from(g.vcpus).saturating_mul(HEAP_PER_VCPU)
        + ((g.memory.len() + g.passthrough.len()) as u64).saturating_mul(HEAP_PER_NODE)
        + if g.vuart.is_some() { HEAP_PER_VUART } else { 0 }
        + (g.passthrough.iter().filter(|p| p.intercept.is_some()).count() as u64)
            .saturating_mul(HEAP_PER_DMA_TRAP)
}

/// The stage-2 tables the guest's mappings need (root included).
pub fn stage2_tables(g: &GuestConfig) -> u64 {
    let mut maps: Vec<(GuestPhysAddr, HostPhysAddr, u64)> =
        g.memory.iter().map(|m| (m.gpa, m.host, m.size)).collect();
    maps.extend(g.passthrough.iter().flat_map(|p| p.regions.iter().map(|r| (r.gpa, r.hpa, r.size))));
    ferrovisor_stage2::tables_for(&maps) as u64
}

/// The tables a guest's devices behind the SMMU cost: its DMA context maps
/// its RAM again (plus a table's worth for the context descriptor), and the
/// BARs of its PCIe functions, placed at boot, add at most two stage-2
/// tables each (a level-2 and a level-3 table).
pub fn dma_tables(g: &GuestConfig) -> u64 {
    let smmu = g.passthrough.iter().any(|p| p.dma == crate::DmaProtection::Iommu && !p.streams.is_empty());
    let context = if smmu {
        let ram: Vec<(GuestPhysAddr, HostPhysAddr, u64)> =
            g.memory.iter().map(|m| (m.gpa, m.host, m.size)).collect();
        ferrovisor_stage2::tables_for(&ram) as u64 + 1
    } else {
        0
    };
    let bars = g.passthrough.iter().filter(|p| p.pci.is_some() && p.regions.is_empty()).count() as u64 * 2;
    context + bars
}

/// Host RAM and heap for the guests, in the order they are planned.
pub(crate) struct Planner {
    ram: RamAllocator,
    /// Host RAM guests can have at all (free after the hypervisor's share).
    for_guests: u64,
    heap_left: u64,
    heap_total: u64,
}

fn who_holds(owner: &str) -> alloc::string::String {
    match owner {
        "hypervisor" | "host DTB" | "boot bundle" => format!("the {owner}"),
        guest => format!("guest {guest}"),
    }
}

impl Planner {
    pub(crate) fn new(host: &HostPlatform, hyp: &Hypervisor) -> Self {
        let mut ram = RamAllocator::new(&host.memory);
        for (region, owner) in &hyp.reserved {
            // A reservation outside RAM (or one overlapping another) holds
            // nothing more; the hypervisor does the same at boot.
            let _ = ram.reserve(*region, owner);
        }
        let for_guests = ram.free_bytes();
        Self { ram, for_guests, heap_left: hyp.guest_heap, heap_total: hyp.guest_heap }
    }

    /// Gives back everything planned for `g` (after it was rejected).
    fn release(&mut self, g: &GuestConfig) {
        let held: Vec<HostRegion> =
            self.ram.reservations().iter().filter(|(_, o)| *o == g.name).map(|(r, _)| *r).collect();
        for r in held {
            let _ = self.ram.release(r);
        }
    }

    /// Pass 1: reserves `g`'s identity regions. Returns false (after
    /// reporting, and releasing what it took) if one is taken.
    pub(crate) fn reserve_identity(&mut self, g: &mut GuestConfig, who: Who<'_>, r: &mut Report) -> bool {
        let mut ok = true;
        for m in g.memory.iter_mut().filter(|m| m.identity) {
            m.host = HostPhysAddr(m.gpa.0);
            let region = HostRegion::new(m.gpa.0, m.size);
            match self.ram.reserve(region, &g.name) {
                Ok(()) => {}
                Err(RamError::InUse { region: held, owner, .. }) => {
                    let msg = format!(
                        "identity memory {} overlaps {} at {}",
                        range(m.gpa.0, m.size),
                        who_holds(&owner),
                        range(held.base.0, held.size)
                    );
                    r.error(who, &m.path, msg, "the hypervisor's image, stacks and heap, the host DTB and the boot bundle sit in host RAM and no guest can have them: move the region out of that range, or drop identity so that the hypervisor places it");
                    ok = false;
                }
                // Outside host RAM: already reported by the per-guest rules.
                Err(_) => ok = false,
            }
        }
        if !ok {
            self.release(g);
        }
        ok
    }

    /// Pass 2: places `g`'s other regions and charges its heap. Returns false
    /// (after reporting, and releasing all of `g`'s RAM) if it does not fit.
    pub(crate) fn place(&mut self, g: &mut GuestConfig, who: Who<'_>, r: &mut Report) -> bool {
        let total = g.memory.iter().fold(0u64, |acc, m| acc.saturating_add(m.size));
        if total > self.for_guests {
            let msg = format!(
                "guest {} needs {total:#x} bytes of RAM, more than the {:#x} bytes of host RAM there are for guests",
                g.name, self.for_guests
            );
            r.error(who, &g.path, msg, "shrink the guest's memory regions: host RAM less the hypervisor, the host DTB and the boot bundle is all guests can have");
            self.release(g);
            return false;
        }
        let name = g.name.clone();
        for m in g.memory.iter_mut().filter(|m| !m.identity) {
            let align = if m.size >= RAM_BLOCK { RAM_BLOCK } else { PAGE_SIZE };
            match self.ram.allocate_congruent(m.size, align, m.gpa.0 & !(PAGE_SIZE - 1), &name) {
                Ok(region) => m.host = region.base,
                Err(e) => {
                    let largest = self.ram.free_regions().iter().map(|f| f.size).max().unwrap_or(0);
                    let msg = format!(
                        "no free host RAM for memory {} ({:#x} bytes): {:#x} bytes are free for guests, the largest free range is {largest:#x} bytes",
                        range(m.gpa.0, m.size),
                        m.size,
                        self.ram.free_bytes()
                    );
                    let hint = match e {
                        RamError::NoSpace { .. } => "the guests before it in the config (and its own earlier regions) hold the rest: shrink or split this region, or give earlier guests less RAM",
                        _ => "check the region's size and address",
                    };
                    r.error(who, &m.path, msg, hint);
                    self.release(g);
                    return false;
                }
            }
        }
        let need = heap_estimate(g);
        if need > self.heap_left {
            let msg = format!(
                "guest {} needs about {} KiB of hypervisor heap ({} stage-2 tables, {} vCPU(s), {} memory and pass-through nodes), but only {} of the {} KiB for guests are left",
                g.name,
                need.div_ceil(KIB),
                stage2_tables(g),
                g.vcpus,
                g.memory.len() + g.passthrough.len(),
                self.heap_left / KIB,
                self.heap_total / KIB
            );
            r.error(who, &g.path, msg, "each scattered 2 MiB or 1 GiB stretch of guest-physical space costs a 4 KiB stage-2 table: use fewer, larger, 2 MiB-aligned regions, fewer vCPUs, or fewer guests (docs/config.md, Limits)");
            self.release(g);
            return false;
        }
        self.heap_left -= need;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemoryRegion;

    fn guest(memory: &[(u64, u64, bool)]) -> GuestConfig {
        GuestConfig {
            name: "g".into(),
            path: "/guests/g".into(),
            vcpus: 1,
            affinity: None,
            memory: memory
                .iter()
                .map(|&(gpa, size, identity)| MemoryRegion {
                    gpa: GuestPhysAddr(gpa),
                    size,
                    identity,
                    host: HostPhysAddr(0),
                    path: format!("/guests/g/memory@{gpa:x}"),
                })
                .collect(),
            kernel: None,
            initrd: None,
            dtb: None,
            bootargs: None,
            vuart: None,
            passthrough: Vec::new(),
            scmi_channel: None,
            manual_start: false,
            pci: None,
        }
    }

    #[test]
    fn estimate_counts_tables_from_planned_addresses() {
        // 256 MiB at a 2 MiB-aligned address, congruent host: root, one
        // level-2 table, no level-3 table.
        let mut g = guest(&[(0x4000_0000, 0x1000_0000, false)]);
        g.memory[0].host = HostPhysAddr(0x8000_0000);
        assert_eq!(stage2_tables(&g), 2);
        // The same, 4 KiB past a block boundary on both sides: two edge
        // level-3 tables more.
        g.memory[0].gpa = GuestPhysAddr(0x4000_1000);
        g.memory[0].host = HostPhysAddr(0x8000_1000);
        assert_eq!(stage2_tables(&g), 4);
        assert_eq!(heap_estimate(&g), 4 * HEAP_PER_TABLE + HEAP_PER_GUEST + HEAP_PER_VCPU + HEAP_PER_NODE);
    }
}
