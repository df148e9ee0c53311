//! A guest's DMA context behind the SMMU (docs/security.md, "DMA isolation
//! through the SMMU"): tables that translate guest-physical addresses to
//! host-physical exactly as the guest's stage 2 does for its RAM. Where the
//! SMMU has stage 2 (`IDR0.S2P`) they are stage-2 tables in the CPU's
//! format, tagged with the guest's VMID; otherwise (QEMU 7.2) stage-1
//! tables behind one context descriptor, with the guest's VMID as ASID.
//! The streams of the devices the guest has point at it while the guest
//! runs.
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
use ferrovisor_smmu::cmd::Command;
use ferrovisor_smmu::regs::DmaStage;
use ferrovisor_smmu::ste::{self, Ste};
use ferrovisor_stage2::{Format, MemAttrs, Stage2, Stage2Error};
use ferrovisor_types::{GuestPhysAddr, HostRegion};

/// The context descriptor, aligned as the SMMU needs (64 bytes).
#[repr(C, align(64))]
struct CdSlot(Cd);

/// A guest's DMA translation.
pub struct DmaContext {
    tables: Stage2,
    /// The context descriptor (stage 1 only).
    cd: Option<Box<CdSlot>>,
    /// The guest's VMID: the context's ASID at stage 1, its VMID at stage 2.
    tag: u16,
}

impl DmaContext {
    /// Tables mapping `ram` (guest-physical base, host region) at `stage`,
    /// tagged with `tag` (the guest's VMID), and at stage 1 the context
    /// descriptor pointing at them.
    pub fn new(stage: DmaStage, tag: u16, ram: &[(GuestPhysAddr, HostRegion)]) -> Result<Self, Stage2Error> {
        let format = match stage {
            DmaStage::Stage1 => Format::SmmuStage1,
            DmaStage::Stage2 => Format::Stage2,
        };
        // The heap is identity-mapped: a table's address is its physical one.
        let mut tables = Stage2::with_format(|virt| virt as u64, format)?;
        for (gpa, host) in ram {
            tables.map(*gpa, host.base, host.size, MemAttrs::Ram)?;
        }
        let cd = match stage {
            DmaStage::Stage1 => {
                Some(Box::new(CdSlot(Stage1Context { root: tables.root_pa(), asid: tag }.encode())))
            }
            DmaStage::Stage2 => None,
        };
        crate::arch::aarch64::guest::publish_tables();
        Ok(Self { tables, cd, tag })
    }

    /// The stream table entry of a stream attached to this context.
    fn ste(&self) -> Ste {
        match &self.cd {
            Some(cd) => ste::stage1(core::ptr::from_ref(&cd.0) as u64),
            None => ste::stage2(self.tables.root_pa(), self.tag, ferrovisor_stage2::VTCR_EL2),
        }
    }

    /// The command dropping this context's TLB entries.
    fn tlbi(&self) -> Command {
        match self.cd {
            Some(_) => Command::TlbiAsid { asid: self.tag },
            None => Command::TlbiVmid { vmid: self.tag },
        }
    }

    /// How the shell names it: `ASID 2` (stage 1) or `VMID 2, stage 2`.
    pub fn describe(&self) -> alloc::string::String {
        match self.cd {
            Some(_) => alloc::format!("ASID {}", self.tag),
            None => alloc::format!("VMID {}, stage 2", self.tag),
        }
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
    iommu::attach(vm.id, &all, ctx.ste()).inspect_err(|_| iommu::detach(&all, ctx.tlbi()))
}

/// Detaches the streams of every device of `vm`'s config (guest stop).
pub fn detach_all(vm: &Vm) {
    let Some(ctx) = &vm.dma else { return };
    let all: Vec<u32> =
        (0..vm.config.passthrough.len()).flat_map(|i| streams(vm, i).iter().copied()).collect();
    iommu::detach(&all, ctx.tlbi());
}

/// Detaches the streams of `vm`'s pass-through `index` (it loses the device).
pub fn detach_device(vm: &Vm, index: usize) {
    if let Some(ctx) = &vm.dma {
        iommu::detach(streams(vm, index), ctx.tlbi());
    }
}
