//! Starting, stopping, pausing and resetting guests (shell and PSCI).
//!
//! State changes are published first; then the pCPUs hosting the guest's
//! vCPUs are kicked, so that a running vCPU exits and sees the change.
//! Operations that rewrite guest memory (start, reset) first wait until no
//! vCPU of the guest is inside the guest.

use super::{build, Vm, VmState};
use crate::arch::aarch64::timer;
use crate::core::cpus;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use ferrovisor_psci::VcpuPower;
use ferrovisor_types::PcpuId;

/// Why a control operation was refused.
pub type ControlError = String;

/// Marks every vCPU of a stopped guest powered off and quiesces its
/// passed-through devices: interrupts masked and deactivated, devices
/// reset, power domains off (docs/passthrough.md, lifecycle).
fn power_off_all(vm: &Vm) {
    super::dma::detach_all(vm);
    crate::core::pci::quiesce(&vm.config);
    crate::core::passthrough::quiesce(vm);
    super::scmi::quiesce(vm);
    for v in &vm.vcpus {
        *v.power.lock() = VcpuPower::Off;
        *v.start.lock() = None;
    }
}

fn kick_all(vm: &Vm) {
    for v in &vm.vcpus {
        cpus::kick(v.pcpu);
    }
}

/// Waits (at most one second) until no vCPU of `vm` is inside the guest.
fn quiesce(vm: &Vm) -> Result<(), ControlError> {
    let deadline = timer::now() + timer::frequency();
    loop {
        let busy = vm.vcpus.iter().any(|v| v.running.load(Ordering::Acquire) && v.pcpu != cpus::current());
        if !busy {
            return Ok(());
        }
        if timer::now() > deadline {
            return Err(alloc::format!("guest {}: vCPUs did not stop within 1 s", vm.name));
        }
        kick_all(vm);
        core::hint::spin_loop();
    }
}

/// (Re)starts `vm` from its images: stop, reload memory, boot vCPU 0.
pub fn start(vm: &Arc<Vm>) -> Result<(), ControlError> {
    if let Some(why) = &vm.unbootable {
        return Err(alloc::format!("guest {} cannot start: {why}", vm.name));
    }
    vm.set_state(VmState::Stopped);
    kick_all(vm);
    quiesce(vm)?;
    // No DMA of the last run lands in the fresh images.
    super::dma::detach_all(vm);
    crate::core::pci::quiesce(&vm.config);
    let entry = build::load_images(vm).map_err(|e| alloc::format!("guest {}: {e}", vm.name))?;
    crate::core::passthrough::quiesce(vm);
    super::scmi::quiesce(vm);
    match ferrovisor_vgic::Vgic::new(vm.vgic_config()) {
        Ok(mut fresh) => {
            // The validator keeps guest INTIDs inside the vGIC: a refusal
            // here is a bug, and the guest does not start without a route.
            vm.forwards.link(&mut fresh).map_err(|e| {
                alloc::format!("guest {}: cannot link its forwarded interrupts: {e:?}", vm.name)
            })?;
            vm.vgic.replace(fresh);
        }
        Err(e) => return Err(alloc::format!("guest {}: virtual GIC: {e:?}", vm.name)),
    }
    // With the fresh vGIC: the device interrupts stay off until the guest
    // enables them.
    super::scmi::map_at_start(vm);
    super::dma::attach_all(vm).map_err(|e| alloc::format!("guest {}: DMA through the SMMU: {e}", vm.name))?;
    for (i, v) in vm.vcpus.iter().enumerate() {
        *v.power.lock() = if i == 0 { VcpuPower::OnPending } else { VcpuPower::Off };
        *v.start.lock() = if i == 0 { Some(entry) } else { None };
        v.faults.clear();
    }
    vm.epoch.fetch_add(1, Ordering::AcqRel);
    vm.reset_requested.store(false, Ordering::Release);
    vm.set_state(VmState::Running);
    EVER_STARTED.store(true, Ordering::Release);
    kick_all(vm);
    log::info!("guest {}: started", vm.name);
    Ok(())
}

/// Stops `vm` (its memory stays until the next start).
pub fn stop(vm: &Vm) -> Result<(), ControlError> {
    if vm.state() == VmState::Stopped {
        // A guest that asked for a reset is stopped until cpu0 restarts it
        // (the shell runs on cpu0 too, so that has not happened yet):
        // stopping it cancels the restart.
        if vm.reset_requested.swap(false, Ordering::AcqRel) {
            log::info!("guest {}: stopped (its pending reset is cancelled)", vm.name);
            note_stopped();
            return Ok(());
        }
        return Err(alloc::format!("guest {} is already stopped", vm.name));
    }
    vm.set_state(VmState::Stopped);
    kick_all(vm);
    quiesce(vm)?;
    power_off_all(vm);
    super::console::detach_stopped(vm);
    log::info!("guest {}: stopped", vm.name);
    note_stopped();
    Ok(())
}

/// Holds `vm`'s vCPUs where they are.
pub fn pause(vm: &Vm) -> Result<(), ControlError> {
    if vm.state() != VmState::Running {
        return Err(alloc::format!("guest {} is {}, not running", vm.name, vm.state().name()));
    }
    vm.set_state(VmState::Paused);
    kick_all(vm);
    quiesce(vm)?;
    log::info!("guest {}: paused", vm.name);
    Ok(())
}

/// Lets a paused `vm` continue.
pub fn resume(vm: &Vm) -> Result<(), ControlError> {
    if vm.state() != VmState::Paused {
        return Err(alloc::format!("guest {} is {}, not paused", vm.name, vm.state().name()));
    }
    vm.set_state(VmState::Running);
    kick_all(vm);
    log::info!("guest {}: resumed", vm.name);
    Ok(())
}

/// PSCI SYSTEM_OFF from the guest: stop it (no waiting: the caller is one
/// of its vCPUs, the others stop at their next exit).
pub fn stop_from_guest(vm: &Vm) {
    vm.set_state(VmState::Stopped);
    power_off_all(vm);
    kick_all(vm);
    super::console::detach_stopped(vm);
    note_stopped();
}

/// Some guest asked for a reset that cpu0 has not served yet, or stopped
/// (for [`set_halt_when_idle`]).
static REQUESTS: AtomicBool = AtomicBool::new(false);
/// `ferrovisor.halt-when-idle`: power off once every guest has stopped.
static HALT_WHEN_IDLE: AtomicBool = AtomicBool::new(false);
/// Whether any guest was ever started.
static EVER_STARTED: AtomicBool = AtomicBool::new(false);

/// Powers the board off once every guest has stopped, after at least one
/// ran (`ferrovisor.halt-when-idle`): scripted runs end with their guests.
pub fn set_halt_when_idle(on: bool) {
    HALT_WHEN_IDLE.store(on, Ordering::Release);
}

/// Asks cpu0 to look at the guests again (one stopped).
fn note_stopped() {
    if HALT_WHEN_IDLE.load(Ordering::Acquire) {
        REQUESTS.store(true, Ordering::Release);
        cpus::kick(PcpuId::of::<0>());
    }
}

/// Halts the board if `ferrovisor.halt-when-idle` is on, a guest ran, and
/// none is running, paused or about to restart.
fn halt_if_idle() {
    if !HALT_WHEN_IDLE.load(Ordering::Acquire) || !EVER_STARTED.load(Ordering::Acquire) {
        return;
    }
    let all = super::all();
    let busy =
        all.iter().any(|vm| vm.state() != VmState::Stopped || vm.reset_requested.load(Ordering::Acquire));
    if !busy {
        crate::println!("ferrovisor: every guest has stopped (ferrovisor.halt-when-idle): halting");
        crate::core::console::flush();
        crate::core::power::halt();
    }
}

/// Whether this pCPU must leave its guest for the scheduler loop's
/// services: the boot CPU, with shell input or guest requests waiting.
pub fn service_wanted() -> bool {
    crate::arch::aarch64::cpu::index() == 0 && (crate::core::console::input_pending() || requests_pending())
}

/// Whether a guest request waits for [`service_requests`].
pub fn requests_pending() -> bool {
    REQUESTS.load(Ordering::Acquire)
}

/// PSCI SYSTEM_RESET from the guest: stop it and have cpu0 restart it.
/// The request is published before the state, so that cpu0 never sees the
/// guest stopped without its pending restart (and halts the board under
/// `ferrovisor.halt-when-idle`).
pub fn request_reset(vm: &Vm) {
    vm.reset_requested.store(true, Ordering::Release);
    vm.set_state(VmState::Stopped);
    REQUESTS.store(true, Ordering::Release);
    kick_all(vm);
    cpus::kick(PcpuId::of::<0>());
}

/// Serves guest-requested resets, and halts the board when every guest has
/// stopped and that was asked for (runs on cpu0, outside any guest).
pub fn service_requests() {
    if !REQUESTS.swap(false, Ordering::AcqRel) {
        return;
    }
    for vm in super::all() {
        if vm.reset_requested.swap(false, Ordering::AcqRel) {
            if let Err(e) = start(&vm) {
                log::error!("{e}");
            }
        }
    }
    halt_if_idle();
}
