//! Building a VM from its validated config: VMID, RAM, stage-2 mappings,
//! devices, vCPU placement; and loading its images at every (re)start.

use super::devices::{
    self,
    vgic::VgicFrames,
    vuart::{Vuart, VuartRegs},
};
use super::error::{Failure, LoadError, VmBuildError};
use super::{RamSlab, VcpuShared, Vm, VmMemory, VmState};
use crate::arch::aarch64::guest;
use crate::core::{cpus, host};
use crate::platform::hostram::HostRam;
use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use ferrovisor_bundle::Bundle;
use ferrovisor_config::GuestConfig;
use ferrovisor_guestboot::{GicLayout, GuestDtb, PassthroughNode, PtNodeParts, ScmiDt};
use ferrovisor_stage2::{MemAttrs, Stage2};
use ferrovisor_sync::Mutex;
use ferrovisor_types::{GuestPhysAddr, HostRegion, PcpuId};
use ferrovisor_vgic::{Forward, ForwardTable, Vgic};

/// Round-robin placement of vCPUs without an affinity.
static NEXT_PCPU: AtomicUsize = AtomicUsize::new(0);

fn place(config: &GuestConfig, index: usize) -> PcpuId {
    let online = cpus::count().max(1);
    let pick = match &config.affinity {
        Some(list) if !list.is_empty() => list.get(index % list.len()).map_or(0, |p| p.index()),
        _ => NEXT_PCPU.fetch_add(1, Ordering::Relaxed),
    };
    // An affinity naming a CPU that did not come up runs on one that did.
    PcpuId::new(pick % online).unwrap_or(PcpuId::of::<0>())
}

/// A build failure: what failed at which config node ([`VmBuildError`]).
pub type BuildError = VmBuildError;

/// Builds the VM for `config` as VM number `id`. Everything the guest
/// asked for is taken, or nothing: on an error what was taken so far (host
/// RAM, stage-2 tables) is given back as the partial VM is dropped.
pub fn create(id: usize, config: GuestConfig) -> Result<Arc<Vm>, BuildError> {
    let vmid = u16::try_from(id + 1)
        .ok()
        .filter(|&v| v <= ferrovisor_stage2::MAX_VMID)
        .ok_or_else(|| VmBuildError::new(&config, &config.path, Failure::NoVmid { number: id + 1 }))?;
    let mut stage2 = Stage2::new(|virt| virt as u64)
        .map_err(|e| VmBuildError::new(&config, &config.path, Failure::Stage2(e)))?;
    let mut ram: Vec<RamSlab> = Vec::new();
    let mut ram_ranges = Vec::new();
    for region in &config.memory {
        // Exactly the range the validator planned (identity: the guest
        // address itself).
        let host = HostRegion::new(region.host.raw(), region.size);
        let host_ram = HostRam::reserve(host, &config.name).map_err(|e| {
            VmBuildError::new(
                &config,
                &region.path,
                Failure::PlannedRam { range: host, reason: e.to_string() },
            )
        })?;
        // From here the slab gives the range back when dropped.
        ram.push(RamSlab { gpa: region.gpa, host: host_ram, identity: region.identity });
        stage2
            .map(region.gpa, host.base, region.size, MemAttrs::Ram)
            .map_err(|e| VmBuildError::new(&config, &region.path, Failure::Stage2(e)))?;
        ram_ranges.push((region.gpa, host));
    }
    for pt in &config.passthrough {
        for r in &pt.regions {
            stage2
                .map(r.gpa, r.hpa, r.size, MemAttrs::Device)
                .map_err(|e| VmBuildError::new(&config, &pt.path, Failure::Stage2(e)))?;
            // A device in a power domain starts off: unmapped until its
            // guest powers the domain on; one on standby until it is
            // assigned to the guest and the guest starts (its tables stay,
            // so neither needs an allocation then).
            if !super::scmi::mapped_at_start(pt) || pt.standby {
                stage2
                    .unmap(r.gpa, r.size)
                    .map_err(|e| VmBuildError::new(&config, &pt.path, Failure::Stage2(e)))?;
            }
        }
    }
    // The page of intercepted DMA address registers traps (`dma_traps`).
    for pt in &config.passthrough {
        if let Some(i) = &pt.intercept {
            stage2
                .unmap(i.gpa, devices::dmaregs::PAGE)
                .map_err(|e| VmBuildError::new(&config, &pt.path, Failure::Stage2(e)))?;
        }
    }
    let vttbr = ferrovisor_stage2::vttbr(stage2.root_pa(), vmid);
    guest::publish_tables();
    guest::flush_guest_tlb(ferrovisor_stage2::VTCR_EL2, vttbr);

    let mut mmio = devices::Bus::new();
    let vuart = match &config.vuart {
        Some(v) => {
            let vuart = Arc::new(Vuart::new(v.gpa, v.irq, &config.name));
            mmio.insert(v.gpa, ferrovisor_vdev::pl011::PL011_WINDOW, Box::new(VuartRegs(vuart.clone())))
                .map_err(|e| {
                    VmBuildError::new(&config, &v.path, Failure::Window { what: "emulated UART", error: e })
                })?;
            Some(vuart)
        }
        None => None,
    };
    let vcpus: Vec<Arc<VcpuShared>> =
        (0..config.vcpus as usize).map(|i| Arc::new(VcpuShared::new(place(&config, i)))).collect();
    let vgic = Vgic::new(super::vgic_config(vcpus.len()))
        .map_err(|e| VmBuildError::new(&config, &config.path, Failure::Vgic(e)))?;
    for (base, size) in [vgic.dist_range(), vgic.redist_range()] {
        mmio.insert(base, size, Box::new(VgicFrames { base })).map_err(|e| {
            VmBuildError::new(&config, &config.path, Failure::Window { what: "virtual GIC", error: e })
        })?;
    }
    // (pass-through interrupts are linked into the vGIC when the guest starts)
    let forwards = forward_table(&config)?;
    let scmi = super::scmi::agent_for(&config);
    if let (Some(agent), Some(gpa)) = (&scmi, config.scmi_channel) {
        let window = super::devices::scmi::CHANNEL_SIZE as u64;
        mmio.insert(gpa, window, Box::new(agent.channel.clone())).map_err(|e| {
            VmBuildError::new(&config, &config.path, Failure::Window { what: "SCMI channel", error: e })
        })?;
    }
    let dma = if super::dma::needed(&config) {
        let Some(stage) = crate::core::iommu::dma_stage() else {
            return Err(VmBuildError::new(&config, &config.path, Failure::NoSmmu));
        };
        let ctx = super::dma::DmaContext::new(stage, vmid, &ram_ranges)
            .map_err(|e| VmBuildError::new(&config, &config.path, Failure::Stage2(e)))?;
        Some(ctx)
    } else {
        None
    };
    if let Some(vpci) = &config.pci {
        let ecam = crate::core::pci::vecam::VirtualEcam::new(&config);
        mmio.insert(vpci.ecam, ferrovisor_config::VIRTUAL_ECAM_SIZE, Box::new(ecam)).map_err(|e| {
            VmBuildError::new(&config, &vpci.path, Failure::Window { what: "virtual PCIe ECAM", error: e })
        })?;
    }
    let mut dma_traps = Vec::new();
    for (index, pt) in config.passthrough.iter().enumerate() {
        let Some(i) = &pt.intercept else { continue };
        let trap = devices::dmaregs::DmaRegisterTrap::new(i, &pt.path)
            .map(Arc::new)
            .ok_or_else(|| VmBuildError::new(&config, &pt.path, Failure::TrapPage { base: i.hpa.raw() }))?;
        mmio.insert(i.gpa, devices::dmaregs::PAGE, Box::new(trap.clone())).map_err(|e| {
            VmBuildError::new(&config, &pt.path, Failure::Window { what: "DMA register page", error: e })
        })?;
        dma_traps.push((index, trap));
    }
    let unbootable = match &config.kernel {
        None => Some("its config names no kernel image".to_string()),
        Some(_) => None,
    };
    let vm = Vm {
        id,
        name: config.name.clone(),
        vmid,
        vttbr,
        state: AtomicU8::new(VmState::Stopped as u8),
        epoch: AtomicU32::new(0),
        vcpus,
        vuart,
        mmio,
        vgic: ferrovisor_vgic::SharedVgic::new(vgic),
        memory: Mutex::new(VmMemory { stage2, ram }),
        ram_ranges,
        unbootable,
        reset_requested: AtomicBool::new(false),
        forwards,
        scmi,
        dma,
        dma_traps,
        assigned: config.passthrough.iter().map(|pt| AtomicBool::new(!pt.standby)).collect(),
        config,
    };
    for (index, pt) in vm.config.passthrough.iter().enumerate() {
        vm.set_device(index, !pt.standby);
    }
    Ok(Arc::new(vm))
}

/// The forwarding table of the config's pass-through interrupts.
fn forward_table(config: &GuestConfig) -> Result<ForwardTable, BuildError> {
    let forwards = config.passthrough.iter().enumerate().flat_map(|(device, pt)| {
        pt.irqs.iter().map(move |r| Forward {
            host: r.host,
            guest: r.guest,
            edge: r.trigger == ferrovisor_config::Trigger::Edge,
            device,
        })
    });
    ForwardTable::new(forwards).map_err(|e| VmBuildError::new(config, &config.path, Failure::Forwarding(e)))
}

fn bundle_file<'a>(bundle: &Bundle<'a>, name: &str) -> Result<&'a [u8], LoadError> {
    bundle.get(name).ok_or_else(|| LoadError::Missing(name.into()))
}

/// Writes the guest's kernel, initrd and DTB into its (zeroed) RAM; returns
/// the entry point and the x0 value (the DTB address) for vCPU 0.
pub fn load_images(vm: &Vm) -> Result<(u64, u64), LoadError> {
    let bytes = host::bundle().ok_or(LoadError::NoBundle)?;
    let bundle = Bundle::parse(bytes).map_err(|e| LoadError::Bundle(e.to_string()))?;
    let kernel_name = vm.config.kernel.as_deref().ok_or(LoadError::NoKernel)?;
    let kernel = bundle_file(&bundle, kernel_name)?;
    let initrd = match vm.config.initrd.as_deref() {
        Some(name) => Some(bundle_file(&bundle, name)?),
        None => None,
    };
    let mem = vm.memory.lock();
    let boot = mem.ram.first().ok_or(LoadError::NoRam)?;
    let ram_base = boot.gpa;
    let ram_size = boot.host.region().size;

    // The DTB's size does not depend on the addresses in it, so build it
    // once to plan, then again with the planned initrd address.
    let dtb_for = |initrd_at: Option<(GuestPhysAddr, u64)>| -> Result<Vec<u8>, LoadError> {
        match vm.config.dtb.as_deref() {
            Some(name) => bundle_file(&bundle, name).map(|d| d.to_vec()),
            None => guest_dtb(vm, initrd_at),
        }
    };
    let probe_dtb = dtb_for(initrd.map(|i| (GuestPhysAddr(0), i.len() as u64)))?;
    let plan = ferrovisor_guestboot::plan(
        ram_base,
        ram_size,
        kernel,
        initrd.map(|i| i.len() as u64),
        probe_dtb.len() as u64,
    )
    .map_err(LoadError::Plan)?;
    let dtb = dtb_for(match (plan.initrd, initrd) {
        (Some(at), Some(i)) => Some((at, i.len() as u64)),
        _ => None,
    })?;

    for slab in &mem.ram {
        slab.host.zero();
    }
    let offset = |gpa: GuestPhysAddr| gpa.raw() - ram_base.raw();
    let place = |at: GuestPhysAddr, data: &[u8], what: &'static str| -> Result<(), LoadError> {
        boot.host.write(offset(at), data).map_err(|_| LoadError::DoesNotFit(what))?;
        boot.host.clean(offset(at), data.len() as u64).map_err(|_| LoadError::DoesNotFit(what))
    };
    place(plan.kernel, kernel, "kernel")?;
    if let (Some(at), Some(data)) = (plan.initrd, initrd) {
        place(at, data, "initrd")?;
    }
    place(plan.dtb, &dtb, "device tree")?;
    Ok((plan.entry.raw(), plan.dtb.raw()))
}

/// The device tree the guest boots with.
fn guest_dtb(vm: &Vm, initrd: Option<(GuestPhysAddr, u64)>) -> Result<Vec<u8>, LoadError> {
    let memory: Vec<(GuestPhysAddr, u64)> = vm.config.memory.iter().map(|m| (m.gpa, m.size)).collect();
    // Devices given by `host-device` get a node (docs/config.md, "The guest
    // DT node of a host device"); raw regions do not.
    // Its clocks, power domains and resets by the ids its SCMI agent uses.
    let ids = ferrovisor_config::scmi::GuestScmi::of(&vm.config);
    let scmi_ids = |pt| if vm.scmi.is_some() { ids.device(pt) } else { (None, None, Vec::new()) };
    let devices: Vec<PtNodeParts> = vm
        .devices()
        .filter_map(|(_, pt)| Some(PtNodeParts::new(pt.dt.as_ref()?).with_scmi(scmi_ids(pt))))
        .collect();
    let nodes: Vec<PassthroughNode<'_>> = devices.iter().map(PtNodeParts::node).collect();
    let gic = host::gic_layout();
    let pci = vm.config.pci.as_ref().map(|v| ferrovisor_guestboot::PciDt {
        ecam: v.ecam,
        window: v.window,
        intx: vm
            .devices()
            .filter_map(|(_, pt)| {
                let (f, route) = (pt.pci?, pt.irqs.first()?);
                Some((f.bdf.device(), f.pin?.register(), route.guest))
            })
            .collect(),
    });
    let spec = GuestDtb {
        bootargs: vm.config.bootargs.as_deref(),
        initrd,
        vuart: vm.config.vuart.as_ref().map(|v| (v.gpa, v.irq)),
        passthrough: &nodes,
        scmi: vm.scmi.as_ref().zip(vm.config.scmi_channel).map(|(agent, channel)| ScmiDt {
            channel,
            smc_id: ferrovisor_config::scmi::SMC_ID,
            power: !agent.view.power.is_empty(),
            clocks: !agent.view.clocks.is_empty(),
            resets: !agent.view.resets.is_empty(),
        }),
        pci: pci.as_ref(),
        // QEMU virt's timer PPIs, the `hvc` PSCI conduit.
        ..GuestDtb::new(&vm.name, vm.vcpus.len(), &memory, GicLayout::new(gic.0, gic.1))
    };
    ferrovisor_guestboot::build(&spec).map_err(LoadError::GuestDt)
}
