//! Pass-through at run time: the host side of forwarding passed-through
//! devices' interrupts to their guest, and the counts `passthrough list`
//! shows. What is forwarded where is each guest's
//! [`ferrovisor_vgic::ForwardTable`] (`Vm::forwards`), built once from the
//! validated config; this module only records which guest owns each host
//! interrupt.
//!
//! Forwarding path (see docs/passthrough.md):
//!
//!   device asserts SPI --> physical GIC, routed to the pCPU of the target vCPU
//!   --> guest exit: the exit fast path (vm::fast) looks the interrupt up in
//!       the running guest's table and injects it; or, when another guest or
//!       nobody runs there, irq::dispatch --> the handler below: owner, then
//!       the owner's table --> vGIC raise_edge(guest INTID), linked to the
//!       host INTID
//!   --> priority drop only: the SPI stays active
//!   --> list register with HW=1, pINTID = host INTID
//!   --> guest acknowledges and EOIs; its deactivation deactivates the
//!       physical SPI directly: no exit on EOI.
//!
//! The physical SPI's enable state and routing follow what the guest
//! programs into its virtual distributor (vGIC `Hw*` effects).

use crate::core::irq::{self, Outcome};
use crate::core::vm::error::{Failure, VmBuildError};
use crate::core::vm::{self, Vm};
use crate::platform::gicv3;
use core::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use ferrovisor_types::{HostIrq, VcpuId};
use ferrovisor_vgic::Forward;

/// Priority of forwarded interrupts on the physical GIC (below the
/// hypervisor's own at 0x80).
const FORWARD_PRIORITY: u8 = 0xa0;

/// INTIDs the tables below cover (every SGI, PPI and SPI).
const INTIDS: usize = 1020;

/// The guest that owns each host interrupt: its VM id + 1; 0: none.
static OWNER: [AtomicU16; INTIDS] = [const { AtomicU16::new(0) }; INTIDS];
/// Interrupts taken but not forwarded, by host INTID (their guest was not
/// running); forwarded = taken (`irq::count`) - dropped, so the forwarding
/// path itself counts nothing extra.
static DROPPED: [AtomicU64; INTIDS] = [const { AtomicU64::new(0) }; INTIDS];

/// Sets up forwarding of every interrupt in `vm`'s table that is on (of
/// the devices it has; `standby` ones wait for `passthrough assign`).
pub fn register(vm: &Vm) -> Result<(), VmBuildError> {
    for f in vm.forwards.on() {
        take(vm, f).map_err(|(irq, reason)| {
            let path =
                vm.config.passthrough.get(f.device).map_or(vm.config.path.as_str(), |pt| pt.path.as_str());
            VmBuildError::new(&vm.config, path, Failure::HostIrq { irq, reason })
        })?;
    }
    Ok(())
}

/// Forwards host interrupt `f.host` to `vm`: records `vm` as its owner,
/// configures the physical SPI (disabled until the guest enables it) and
/// registers the handler.
fn take(vm: &Vm, f: &Forward) -> Result<(), (HostIrq, &'static str)> {
    let target = vm.vcpus.first().map_or(0, |v| v.pcpu.index());
    let owner = u16::try_from(vm.id + 1).unwrap_or(u16::MAX);
    let slot = OWNER.get(f.host.raw() as usize);
    let taken = slot.map(|s| s.compare_exchange(0, owner, Ordering::AcqRel, Ordering::Acquire));
    if !matches!(taken, Some(Ok(_))) {
        return Err((f.host, "already forwarded to another guest"));
    }
    if gicv3::configure_spi(f.host, f.edge, FORWARD_PRIORITY, crate::core::cpus::mpidr_of(target)).is_err() {
        return Err((f.host, "the physical GIC refused to configure it"));
    }
    if !irq::register(f.host, on_forwarded) {
        return Err((f.host, "beyond the interrupts the hypervisor dispatches"));
    }
    Ok(())
}

/// Pass-through `device` of `vm` comes to it (`passthrough assign`): its
/// interrupts are forwarded to `vm` from now on (after [`give_up`] by
/// their last owner).
pub fn take_device(vm: &Vm, device: usize) -> Result<(), (HostIrq, &'static str)> {
    vm.forwards.iter().filter(|f| f.device == device).try_for_each(|f| take(vm, f))
}

/// Pass-through `device` of `vm` leaves it: its interrupts are disabled,
/// deactivated and no longer anybody's (the handler stays: an interrupt
/// nobody owns is dropped).
pub fn give_up(vm: &Vm, device: usize) {
    for f in vm.forwards.iter().filter(|f| f.device == device && owned_by(f.host, vm)) {
        let _ = gicv3::set_enabled(f.host, false);
        gicv3::deactivate(f.host);
        if let Some(slot) = OWNER.get(f.host.raw() as usize) {
            slot.store(0, Ordering::Release);
        }
    }
}

/// The guest that host interrupt `irq` is forwarded to now, by VM id.
pub fn owner_of(irq: HostIrq) -> Option<usize> {
    let owner = OWNER.get(irq.raw() as usize).map_or(0, |o| o.load(Ordering::Acquire));
    usize::from(owner).checked_sub(1)
}

/// Undoes [`register`] for `vm` (a guest whose build failed): the
/// interrupts it owns are disabled and deactivated, their handlers removed
/// and their ownership released, so that another guest's config could take
/// them.
pub fn unregister(vm: &Vm) {
    for f in vm.forwards.iter().filter(|f| owned_by(f.host, vm)) {
        let _ = gicv3::set_enabled(f.host, false);
        gicv3::deactivate(f.host);
        irq::unregister(f.host);
        if let Some(slot) = OWNER.get(f.host.raw() as usize) {
            slot.store(0, Ordering::Release);
        }
    }
}

/// Quiesces `vm`'s forwarded interrupts when it stops: disabled, and
/// deactivated in case the guest left one active.
pub fn quiesce(vm: &Vm) {
    for f in vm.forwards.iter().filter(|f| owned_by(f.host, vm)) {
        let _ = gicv3::set_enabled(f.host, false);
        gicv3::deactivate(f.host);
    }
}

fn owned_by(host: HostIrq, vm: &Vm) -> bool {
    OWNER.get(host.raw() as usize).is_some_and(|o| usize::from(o.load(Ordering::Acquire)) == vm.id + 1)
}

/// A forwarded interrupt taken outside its guest's exit fast path.
fn on_forwarded(irq: HostIrq) -> Outcome {
    let Some(vm) = owner_of(irq).and_then(vm::by_id) else { return dropped(irq) };
    let Some(guest) = vm.forwards.guest_of(irq) else { return dropped(irq) };
    if !vm.state().receives_interrupts() {
        let _ = gicv3::set_enabled(irq, false);
        return dropped(irq);
    }
    vm.vgic_update(|vgic, fx| vgic.raise_edge(guest, VcpuId::of::<0>(), fx));
    Outcome::Forwarded
}

/// Counts `irq` as taken but not forwarded.
fn dropped(irq: HostIrq) -> Outcome {
    if let Some(c) = DROPPED.get(irq.raw() as usize) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    Outcome::Done
}

/// How often host interrupt `irq` was forwarded.
pub fn count(irq: HostIrq) -> u64 {
    let dropped = DROPPED.get(irq.raw() as usize).map_or(0, |c| c.load(Ordering::Relaxed));
    irq::count(irq).saturating_sub(dropped)
}
