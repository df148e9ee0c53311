//! Moving a passed-through device from one guest to another (the shell's
//! `passthrough assign DEVICE GUEST`; docs/passthrough.md, "Moving a device
//! to another guest").
//!
//! A host device that several guests' configs list (all but at most one
//! with `standby`) belongs to one of them at a time. Every listing is built
//! with its guest (stage-2 tables, forwarding entries switched off, SCMI
//! view), so a move allocates nothing. The device goes to a stopped guest,
//! which has it from its next start: node in its DT, mapping, interrupts.
//! The guest that had it loses it at once, running or not:
//!
//! 1. a running owner is paused (its vCPUs leave the guest and hand their
//!    list registers back to its vGIC);
//! 2. the device is taken out of its forwarding table, its host interrupts
//!    disabled, deactivated and left without owner;
//! 3. the device is reset where the hypervisor knows how and its interrupt
//!    state dropped in the owner's vGIC, then its hardware links removed
//!    (the guest's enables and deactivations no longer reach the host);
//! 4. it is unmapped from the owner's stage 2 (the owner's accesses abort
//!    from now on);
//! 5. its power domain and reset line change hands (switched off first);
//! 6. the owner resumes; the new guest gets the device's interrupts.

use super::control::{self, ControlError};
use super::{scmi, Vm, VmState};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;

/// Moves host device `device` (its host DT path) to guest `to`, which must
/// be stopped and list it. Returns what was done, for the shell.
pub fn assign(device: &str, to: &Arc<Vm>) -> Result<String, ControlError> {
    let Some(index) = to.listing(device) else {
        return Err(format!(
            "guest {} does not list host device {device}: a guest can take only a device its config lists (a pass-through node with host-device = \"{device}\" and standby;)",
            to.name
        ));
    };
    if to.has_device(index) {
        return Err(format!("guest {} has {device} already", to.name));
    }
    if to.state() != VmState::Stopped || to.reset_requested.load(Ordering::Acquire) {
        return Err(format!(
            "guest {} is {}: stop it first (a guest gets a device when it starts: its device tree, mappings and interrupts are set up then)",
            to.name,
            if to.state() == VmState::Stopped { "restarting" } else { to.state().name() }
        ));
    }
    let from = match holder(device) {
        Some((vm, i)) => {
            take_away(&vm, i)?;
            format!("from guest {}", vm.name)
        }
        None => String::from("(nobody had it)"),
    };
    let Some(pt) = to.config.passthrough.get(index) else {
        return Err(format!("guest {}: no pass-through {index}", to.name));
    };
    scmi::hand_over(pt, Some(to.id));
    to.set_device(index, true);
    if let Err((irq, why)) = crate::core::passthrough::take_device(to, index) {
        // Only a bug could get here (the validator keeps host interrupts
        // of different devices apart): the guest does not get the device
        // with an interrupt missing.
        to.set_device(index, false);
        crate::core::passthrough::give_up(to, index);
        scmi::hand_over(pt, None);
        return Err(format!("{device} cannot go to guest {}: {irq}: {why}; nobody has it now", to.name));
    }
    log::info!("passthrough: {device} moved {from} to guest {} ({})", to.name, pt.path);
    Ok(format!("{device}: moved {from} to guest {} (it has the device from its next start)", to.name))
}

/// The guest that has host device `device` now, with the index of its
/// listing, if any guest has it.
pub fn holder(device: &str) -> Option<(Arc<Vm>, usize)> {
    super::all().into_iter().find_map(|vm| {
        let i = vm.listing(device)?;
        vm.has_device(i).then_some((vm, i))
    })
}

/// Takes pass-through `index` away from `vm`, which has it (steps 1 to 6
/// of the module's notes; its domain and line go to nobody here, and to
/// the new owner when it takes the device).
fn take_away(vm: &Arc<Vm>, index: usize) -> Result<(), ControlError> {
    let Some(pt) = vm.config.passthrough.get(index) else { return Ok(()) };
    let running = vm.state() == VmState::Running;
    if running {
        control::pause(vm)?;
    }
    vm.set_device(index, false);
    crate::core::passthrough::give_up(vm, index);
    super::dma::detach_device(vm, index);
    scmi::reset_device(vm, index, pt);
    vm.vgic_update(|vgic, _| vm.forwards.unlink_device(index, vgic));
    scmi::set_mapped(vm, index, pt, false);
    scmi::hand_over(pt, None);
    log::info!("guest {}: {} taken away (unmapped, interrupts off)", vm.name, pt.path);
    if running {
        control::resume(vm)?;
    }
    Ok(())
}
