//! A guest's DMA context behind the SMMU (docs/security.md, "DMA isolation
//! through the SMMU"): stage-1 tables that translate guest-physical
//! addresses to host-physical exactly as the guest's stage 2 does for its
//! RAM, one context descriptor, and the guest's VMID as ASID. The streams
//! of the devices the guest has point at it while the guest runs.
//!
//! Only RAM is mapped: a device's DMA into another device's registers
//! (peer-to-peer) faults. Guest RAM never moves while a guest exists, so
//! the tables are built once; the streams are detached (and the ASID's TLB
//! entries dropped) whenever the guest stops or loses a device.

use super::Vm;
use crate::core::iommu;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use ferrovisor_config::DmaProtection;
use ferrovisor_smmu::cd::{Cd, Stage1Context};
use ferrovisor_stage2::{Format, MemAttrs, Stage2, Stage2Error};
use ferrovisor_types::{GuestPhysAddr, HostRegion};

/// The context descriptor, aligned as the SMMU needs (64 bytes).
#[repr(C, align(64))]
struct CdSlot(Cd);

/// A guest's DMA translation.
pub struct DmaContext {
    tables: Stage2,
    cd: Box<CdSlot>,
    asid: u16,
}

impl DmaContext {
    /// Tables mapping `ram` (guest-physical base, host region) and the
    /// context descriptor pointing at them, tagged with `asid`.
    pub fn new(asid: u16, ram: &[(GuestPhysAddr, HostRegion)]) -> Result<Self, Stage2Error> {
        // The heap is identity-mapped: a table's address is its physical one.
        let mut tables = Stage2::with_format(|virt| virt as u64, Format::SmmuStage1)?;
        for (gpa, host) in ram {
            tables.map(*gpa, host.base, host.size, MemAttrs::Ram)?;
        }
        let cd = Stage1Context { root: tables.root_pa(), asid }.encode();
        crate::arch::aarch64::guest::publish_tables();
        Ok(Self { tables, cd: Box::new(CdSlot(cd)), asid })
    }

    /// Physical address of the context descriptor.
    fn cd_pa(&self) -> u64 {
        core::ptr::from_ref(&self.cd.0) as u64
    }

    /// Its ASID (the guest's VMID).
    pub fn asid(&self) -> u16 {
        self.asid
    }

    /// Tables in use (for the shell).
    pub fn table_count(&self) -> usize {
        self.tables.table_count()
    }
}

/// The streams of `vm`'s pass-through `index` that its DMA context covers.
fn streams(vm: &Vm, index: usize) -> &[u32] {
    match vm.config.passthrough.get(index) {
        Some(pt) if pt.dma == DmaProtection::Iommu => &pt.streams,
        _ => &[],
    }
}

/// Whether `vm` needs a DMA context (a device of it behind the SMMU).
pub fn needed(config: &ferrovisor_config::GuestConfig) -> bool {
    config.passthrough.iter().any(|pt| pt.dma == DmaProtection::Iommu && !pt.streams.is_empty())
}

/// Points the streams of every device `vm` has now at its context
/// (guest start). On an error nothing stays attached.
pub fn attach_all(vm: &Vm) -> Result<(), String> {
    let Some(ctx) = &vm.dma else { return Ok(()) };
    let all: Vec<u32> = vm.devices().flat_map(|(i, _)| streams(vm, i).iter().copied()).collect();
    iommu::attach(vm.id, &all, ctx.cd_pa()).inspect_err(|_| iommu::detach(&all, ctx.asid))
}

/// Detaches the streams of every device of `vm`'s config (guest stop).
pub fn detach_all(vm: &Vm) {
    let Some(ctx) = &vm.dma else { return };
    let all: Vec<u32> =
        (0..vm.config.passthrough.len()).flat_map(|i| streams(vm, i).iter().copied()).collect();
    iommu::detach(&all, ctx.asid);
}

/// Detaches the streams of `vm`'s pass-through `index` (it loses the device).
pub fn detach_device(vm: &Vm, index: usize) {
    if let Some(ctx) = &vm.dma {
        iommu::detach(streams(vm, index), ctx.asid);
    }
}
