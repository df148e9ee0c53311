//! Pass-through at run time: forwarding host interrupts of passed-through
//! devices to their guest, and the table `passthrough list` shows.
//!
//! Forwarding path (see docs/passthrough.md):
//!
//!   device asserts SPI --> physical GIC, routed to the pCPU of the target vCPU
//!   --> exit (or idle wake-up) --> irq::dispatch: acknowledge, handler below:
//!       vGIC raise_edge(guest INTID) -- the vGIC links it to the host INTID
//!   --> priority drop only: the SPI stays active
//!   --> next entry: list register with HW=1, pINTID = host INTID
//!   --> guest acknowledges and EOIs; its deactivation deactivates the
//!       physical SPI directly: no exit on EOI.
//!
//! The physical SPI's enable state and routing follow what the guest
//! programs into its virtual distributor (vGIC `Hw*` effects).

use crate::core::irq::{self, Outcome};
use crate::core::vm::{self, Vm};
use crate::platform::gicv3;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use ferrovisor_types::HostIrq;
use ferrovisor_vgic::Vgic;
use spin::RwLock;

/// Priority of forwarded interrupts on the physical GIC (below the
/// hypervisor's own at 0x80).
const FORWARD_PRIORITY: u8 = 0xa0;

/// One forwarded interrupt.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The host interrupt.
    pub host: HostIrq,
    /// The owning VM's id.
    pub vm: usize,
    /// The INTID the guest sees.
    pub guest: u32,
}

static ROUTES: RwLock<Vec<Route>> = RwLock::new(Vec::new());
/// Interrupts taken but not forwarded, by host INTID (their guest was not
/// running); forwarded = taken (`irq::count`) - dropped, so the forwarding
/// path itself counts nothing extra.
static DROPPED: [AtomicU64; 1020] = [const { AtomicU64::new(0) }; 1020];

/// Sets up forwarding of every interrupt `vm`'s config passes through:
/// records the route, configures the physical SPI (disabled until the
/// guest enables it) and registers the handler.
pub fn register(vm: &Vm) -> Result<(), alloc::string::String> {
    let target = vm.vcpus.first().map_or(0, |v| v.pcpu);
    for pt in &vm.config.passthrough {
        for r in &pt.irqs {
            let edge = r.trigger == ferrovisor_config::Trigger::Edge;
            gicv3::configure_spi(r.host, edge, FORWARD_PRIORITY, crate::core::cpus::mpidr_of(target))
                .map_err(|e| alloc::format!("{}: host interrupt {}: {e:?}", pt.path, r.host))?;
            if !irq::register(r.host, on_forwarded) {
                return Err(alloc::format!("{}: host interrupt {} cannot be forwarded", pt.path, r.host));
            }
            ROUTES.write().push(Route { host: r.host, vm: vm.id, guest: r.guest.raw() });
        }
    }
    Ok(())
}

/// Undoes [`register`] for `vm` (a guest whose build failed): its routes
/// are dropped, their physical interrupts disabled and their handlers
/// removed, so that another guest's config could take them.
pub fn unregister(vm: &Vm) {
    let mut routes = ROUTES.write();
    for r in routes.iter().filter(|r| r.vm == vm.id) {
        let _ = gicv3::set_enabled(r.host, false);
        gicv3::deactivate(r.host);
        irq::unregister(r.host);
    }
    routes.retain(|r| r.vm != vm.id);
}

/// Links the guest INTIDs to their host INTIDs in a (fresh) vGIC.
pub fn link(vm: &Vm, vgic: &mut Vgic) {
    for pt in &vm.config.passthrough {
        for r in &pt.irqs {
            if let Err(e) = vgic.link_hw(r.guest.raw(), 0, r.host.raw()) {
                log::error!("guest {}: cannot link {} to {}: {e:?}", vm.name, r.guest, r.host);
            }
        }
    }
}

/// Quiesces `vm`'s forwarded interrupts when it stops: disabled, and
/// deactivated in case the guest left one active.
pub fn quiesce(vm: &Vm) {
    for r in ROUTES.read().iter().filter(|r| r.vm == vm.id) {
        let _ = gicv3::set_enabled(r.host, false);
        gicv3::deactivate(r.host);
    }
}

fn on_forwarded(irq: HostIrq) -> Outcome {
    let route = ROUTES.read().iter().find(|r| r.host == irq).copied();
    let vm = route.and_then(|r| vm::by_id(r.vm));
    let (Some(route), Some(vm)) = (route, vm) else { return dropped(irq) };
    if vm.state() != vm::VmState::Running && vm.state() != vm::VmState::Paused {
        let _ = gicv3::set_enabled(irq, false);
        return dropped(irq);
    }
    vm.vgic_update(|vgic, fx| vgic.raise_edge(route.guest, 0, fx));
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
