//! DMA isolation through the SMMU (docs/security.md, "DMA isolation"): the
//! board's SMMUv3 set up at boot with every stream aborting, and its
//! events reported. A device behind the SMMU that no guest has can DMA
//! nowhere: its transactions abort and each is logged with its stream
//! (the PCIe requester ID, shown as bus:device.function), the address and
//! the direction.

use crate::core::irq::{self, Outcome};
use crate::platform::gicv3;
use crate::platform::smmuv3::{self, Smmu};
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};
use ferrovisor_config::HostPlatform;
use ferrovisor_smmu::event::Event;
use ferrovisor_types::HostIrq;
use spin::Mutex;

static SMMU: Mutex<Option<Smmu>> = Mutex::new(None);
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
        if f.stage2 { " and 2" } else { " only" },
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

fn report(e: Event) {
    EVENTS.fetch_add(1, Ordering::Relaxed);
    let (b, d, f) = bdf(e.stream);
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
}

fn on_events(_: HostIrq) -> Outcome {
    let lost = SMMU.lock().as_mut().is_some_and(|s| s.take_events(report));
    if lost {
        LOST.fetch_add(1, Ordering::Relaxed);
        log::warn!("smmu: its event queue overflowed: some events were lost");
    }
    Outcome::Done
}

fn on_global_error(_: HostIrq) -> Outcome {
    let active = SMMU.lock().as_mut().map_or(0, |s| s.take_global_errors());
    if active != 0 {
        log::error!("smmu: global error {active:#x} (GERROR)");
    }
    Outcome::Done
}

/// Events reported so far, and overflows seen (for the shell).
pub fn counts() -> (u64, u64) {
    (EVENTS.load(Ordering::Relaxed), LOST.load(Ordering::Relaxed))
}
