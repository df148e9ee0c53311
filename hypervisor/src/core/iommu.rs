//! DMA isolation through the SMMU (docs/security.md, "DMA isolation"): the
//! board's SMMUv3 set up at boot with every stream aborting, and its
//! events reported. A device behind the SMMU that no guest has can DMA
//! nowhere: its transactions abort and each is logged with its stream
//! (the PCIe requester ID, shown as bus:device.function), the address and
//! the direction.
//!
//! A guest's device gets its stream pointed at the guest's DMA context
//! ([`attach`], from `vm::dma`) while the guest runs with the device. A
//! DMA outside the guest's memory faults: it is logged with the guest's
//! name, and the stream is switched to abort ("contained"): the device
//! can DMA nowhere until its guest restarts. The hypervisor and the other
//! guests never see a write of it.

use crate::core::irq::{self, Outcome};
use crate::platform::gicv3;
use crate::platform::smmuv3::{self, Smmu};
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use ferrovisor_config::HostPlatform;
use ferrovisor_smmu::cmd::Command;
use ferrovisor_smmu::event::Event;
use ferrovisor_smmu::regs::DmaStage;
use ferrovisor_smmu::ste::{self, Ste};
use ferrovisor_sync::Mutex;
use ferrovisor_types::HostIrq;

static SMMU: Mutex<Option<Smmu>> = Mutex::new(None);
/// The guest each stream is attached to (VM id + 1; 0: none).
static STREAM_OWNER: [AtomicU16; STREAMS] = [const { AtomicU16::new(0) }; STREAMS];
/// Streams stopped after a fault (until their guest attaches them again).
static CONTAINED: [AtomicBool; STREAMS] = [const { AtomicBool::new(false) }; STREAMS];
const STREAMS: usize = 1 << smmuv3::STREAM_LOG2;
/// Events reported so far, and events the SMMU lost to a full queue.
static EVENTS: AtomicU64 = AtomicU64::new(0);
static LOST: AtomicU64 = AtomicU64::new(0);

/// Priority of the SMMU's interrupts (the hypervisor's own, like the tick).
const PRIORITY: u8 = 0x80;

/// Sets up the host DT's SMMUv3, if it has one: enabled, every stream
/// aborting, events and global errors on their interrupts (to the boot
/// CPU). Returns the banner line; a failure leaves DMA behind the SMMU
/// unprotected only in the sense that no guest can get such a device
/// (the validator's view: `passthrough` needs the SMMU running).
pub fn init(platform: &HostPlatform) -> Option<String> {
    let dev = platform.smmus.first()?;
    let Some(&region) = dev.regions.first() else {
        log::error!("{}: SMMUv3 without registers in the host DT", dev.path);
        return None;
    };
    let smmu = match Smmu::init(region) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{}: SMMUv3 not used: {e}", dev.path);
            return None;
        }
    };
    let f = smmu.features;
    let line = alloc::format!(
        "{} ({}), stage 1{}, {} of 2^{} streams, every one aborting until a guest has its device",
        dev.path,
        region.base,
        match (f.stage1, f.stage2) {
            (true, true) => " and 2 (guest DMA contexts at stage 2)",
            (false, _) => " absent, stage 2 (guest DMA contexts)",
            (true, false) => " only",
        },
        smmu.streams(),
        f.sid_bits
    );
    *SMMU.lock() = Some(smmu);
    for (name, handler) in [("eventq", on_events as irq::Handler), ("gerror", on_global_error)] {
        let Some(intid) = dev.irq_named(name) else {
            log::warn!("{}: no \"{name}\" interrupt in the host DT: its reports are not taken", dev.path);
            continue;
        };
        let mpidr = crate::core::cpus::mpidr_of(0);
        let ok = irq::register(intid, handler)
            && gicv3::configure_spi(intid, true, PRIORITY, mpidr).is_ok()
            && gicv3::set_enabled(intid, true).is_ok();
        if !ok {
            log::error!("{}: its {name} interrupt {intid} could not be set up", dev.path);
        }
    }
    Some(line)
}

/// `bus:device.function` of stream (requester) ID `sid`.
fn bdf(sid: u32) -> (u32, u32, u32) {
    ((sid >> 8) & 0xff, (sid >> 3) & 0x1f, sid & 7)
}

/// The stage the guests' DMA contexts use (`None`: no SMMU running).
pub fn dma_stage() -> Option<DmaStage> {
    SMMU.lock().as_ref().and_then(|s| s.features.dma_stage())
}

/// Points `streams` at a guest's DMA context, the stream table entry
/// `entry` (stage 1 through its context descriptor, or stage 2 through its
/// tables), for guest `vm_id`. On an error the streams are left detached.
pub fn attach(vm_id: usize, streams: &[u32], entry: Ste) -> Result<(), String> {
    let mut guard = SMMU.lock();
    let smmu = guard.as_mut().ok_or_else(|| String::from("the SMMU is not running"))?;
    let owner = u16::try_from(vm_id + 1).unwrap_or(u16::MAX);
    for &sid in streams {
        let Some(slot) = STREAM_OWNER.get(sid as usize) else {
            return Err(alloc::format!("stream {sid:#x} is beyond the stream table"));
        };
        slot.store(owner, Ordering::Release);
        if let Some(c) = CONTAINED.get(sid as usize) {
            c.store(false, Ordering::Release);
        }
        if let Err(e) = smmu.set_stream(sid, entry) {
            slot.store(0, Ordering::Release);
            return Err(alloc::format!("stream {sid:#x}: {e}"));
        }
    }
    Ok(())
}

/// Takes `streams` away from their guest: they abort again (and their
/// faults are reported as "no guest has this device"), and the context's
/// TLB entries are dropped with `tlbi` (by ASID or by VMID).
pub fn detach(streams: &[u32], tlbi: Command) {
    let mut guard = SMMU.lock();
    let Some(smmu) = guard.as_mut() else { return };
    for &sid in streams {
        if let Some(slot) = STREAM_OWNER.get(sid as usize) {
            slot.store(0, Ordering::Release);
        }
        if let Err(e) = smmu.set_stream(sid, ste::unassigned()) {
            log::error!("smmu: stream {sid:#x} could not be detached: {e}");
        }
    }
    if let Err(e) = smmu.invalidate_tlb(tlbi) {
        log::error!("smmu: TLB entries could not be dropped ({tlbi:?}): {e}");
    }
}

/// What stream `sid` does for guest `vm_id` now (for the shell).
pub fn state(sid: u32, vm_id: usize) -> &'static str {
    if owner(sid) != Some(vm_id) {
        "detached: its DMA aborts"
    } else if CONTAINED.get(sid as usize).is_some_and(|c| c.load(Ordering::Acquire)) {
        "stopped after a fault"
    } else {
        "attached"
    }
}

/// The guest stream `sid` is attached to, by VM id.
pub fn owner(sid: u32) -> Option<usize> {
    let o = STREAM_OWNER.get(sid as usize).map_or(0, |o| o.load(Ordering::Acquire));
    usize::from(o).checked_sub(1)
}

/// Reports event `e` (logged if `log`: the first of its stream in a
/// batch); returns the stream to contain if a guest's device caused it
/// (its DMA is then stopped: the stream aborts quietly until the guest
/// restarts, which attaches it again).
fn report(e: Event, log: bool) -> Option<u32> {
    EVENTS.fetch_add(1, Ordering::Relaxed);
    let (b, d, f) = bdf(e.stream);
    let guest = owner(e.stream).and_then(crate::core::vm::by_id);
    if !log {
        return guest.map(|_| e.stream);
    }
    if let Some(vm) = guest {
        let (dir, addr) = match e.addr {
            Some(addr) => (if e.read { "read from" } else { "write to" }, addr),
            None => ("access", 0),
        };
        log::warn!(
            "smmu: DMA {dir} {addr:#x} by stream {:#x} ({b:02x}:{d:02x}.{f}) of guest {} blocked: outside its guest's memory ({}); its DMA is stopped until the guest restarts",
            e.stream,
            vm.name,
            smmuv3::event_name(&e),
        );
        return Some(e.stream);
    }
    let why = match e.code {
        0x04 => "no guest has this device",
        0x02 => "stream ID beyond the stream table",
        0x10..=0x13 => "outside its guest's memory",
        _ => "bad configuration",
    };
    match e.addr {
        Some(addr) => log::warn!(
            "smmu: DMA {} {addr:#x} by stream {:#x} ({b:02x}:{d:02x}.{f}) blocked: {why} ({})",
            if e.read { "read from" } else { "write to" },
            e.stream,
            smmuv3::event_name(&e)
        ),
        None => log::warn!(
            "smmu: DMA by stream {:#x} ({b:02x}:{d:02x}.{f}) blocked: {why} ({})",
            e.stream,
            smmuv3::event_name(&e)
        ),
    }
    None
}

fn on_events(_: HostIrq) -> Outcome {
    let mut guard = SMMU.lock();
    let Some(smmu) = guard.as_mut() else { return Outcome::Done };
    // Streams seen in this batch (no allocation in an interrupt handler):
    // each is logged once and, if a guest's, stopped; a stream past the
    // first 8 of a batch is logged (and stopped) when it faults again.
    let mut seen = [None; 8];
    let (mut n, mut quiet) = (0, 0u64);
    let lost = smmu.take_events(|e| {
        let first = !seen.contains(&Some((e.stream, true))) && !seen.contains(&Some((e.stream, false)));
        if !first {
            quiet += 1;
        }
        let contain = report(e, first);
        if first {
            if let Some(slot) = seen.get_mut(n) {
                *slot = Some((e.stream, contain.is_some()));
                n += 1;
            }
        }
    });
    let contain = seen.into_iter().flatten().filter(|&(_, c)| c).map(|(sid, _)| Some(sid));
    if quiet > 0 {
        log::warn!("smmu: {quiet} more blocked DMA event(s) of the same stream(s)");
    }
    for sid in contain.flatten() {
        if smmu.set_stream(sid, ste::abort()).is_err() {
            log::error!("smmu: stream {sid:#x} could not be stopped");
        } else if let Some(c) = CONTAINED.get(sid as usize) {
            c.store(true, Ordering::Release);
        }
    }
    drop(guard);
    if lost {
        LOST.fetch_add(1, Ordering::Relaxed);
        log::warn!("smmu: its event queue overflowed: some events were lost");
    }
    Outcome::Done
}

fn on_global_error(_: HostIrq) -> Outcome {
    let active = SMMU.lock().as_mut().map_or(0, |s| s.take_global_errors());
    for name in ferrovisor_smmu::regs::gerror_names(active) {
        log::error!("smmu: global error: {name}");
    }
    if ferrovisor_smmu::regs::gerror_names(active).next().is_none() && active != 0 {
        log::error!("smmu: global error {active:#x} (GERROR)");
    }
    Outcome::Done
}

/// Events reported so far, and overflows seen (for the shell).
pub fn counts() -> (u64, u64) {
    (EVENTS.load(Ordering::Relaxed), LOST.load(Ordering::Relaxed))
}
