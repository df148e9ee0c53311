//! The exit fast path: what the hypervisor does for the most frequent guest
//! exits without leaving the guest's context.
//!
//! The lower-EL vectors call [`ferrovisor_fast_sync`] for every synchronous
//! exception and [`ferrovisor_fast_irq`] for every IRQ from a guest, with
//! only the registers a call clobbers saved (`guest_sync_fast` and
//! `guest_irq_fast` in `arch/aarch64/guest.rs`). It handles, and
//! resumes the guest at once:
//!
//! * `hvc #0` calls that only read state: ferrovisor's own hypercalls and
//!   the PSCI/SMCCC queries ([`super::exit::answer_query`]); an HVC with
//!   another immediate takes the full exit, which refuses it;
//! * a forwarded device interrupt or the virtual timer, when the interrupt
//!   can go straight into a free list register (nothing else changed in the
//!   vGIC since the last refill, the guest completed none of the loaded
//!   ones, nothing else waits: [`Vcpu::inject_now`]).
//!
//! Anything else takes the full exit into the scheduler loop
//! (`sched::run_slice`). IRQs are always acknowledged, handled and counted
//! here; the full exit for an IRQ only runs the loop's checks (slice end,
//! shell, lifecycle) and refills the list registers.
//!
//! Exits handled here are counted like full ones, so `vcpu list` and the
//! exit-count hypercall see every exit.

use super::vcpu::{Vcpu, VTIMER_INTID};
use super::{exit, ExitReason};
use crate::core::{cpus, irq};
use crate::platform::gicv3;

/// Vector numbers: synchronous and IRQ, lower EL, AArch64; returned to
/// the assembly to take the full exit.
const SYNC: u64 = 8;
const IRQ: u64 = 9;
/// Returned to the assembly: the exit is handled, resume the guest.
const RESUME: u64 = 0;
/// Called by `guest_sync_fast` for a synchronous exception, with the vCPU
/// `guest::run` was given; returns [`RESUME`] or [`SYNC`] (full exit).
///
/// # Safety
///
/// `owner` must be null or point to a valid vCPU that nothing else
/// accesses during the call: the vCPU that `sched::run_slice` handed to
/// `guest::run`, which the assembly passes on from a guest exit.
#[unsafe(no_mangle)]
unsafe extern "C" fn ferrovisor_fast_sync(owner: *mut Vcpu) -> u64 {
    // SAFETY: per the contract above: `sched::run_slice` enters the guest
    // through `guest::run` with `owner` pointing to the running vCPU, which
    // it does not touch until `guest::run` returns; the assembly calls this
    // only in between, on the same CPU, so this is the only reference.
    match unsafe { owner.as_mut() } {
        Some(v) => sync(v),
        None => SYNC,
    }
}

/// Called by `guest_irq_fast` for an IRQ, with the vCPU `guest::run` was
/// given; returns [`RESUME`] or [`IRQ`] (full exit).
///
/// # Safety
///
/// As for [`ferrovisor_fast_sync`].
#[unsafe(no_mangle)]
unsafe extern "C" fn ferrovisor_fast_irq(owner: *mut Vcpu) -> u64 {
    // SAFETY: as in `ferrovisor_fast_sync`.
    match unsafe { owner.as_mut() } {
        Some(v) => interrupt(v),
        None => IRQ,
    }
}

fn sync(v: &mut Vcpu) -> u64 {
    // Every `hvc #0` is counted here, answered or not (the full exit does
    // not count it again), and before answering: the exit-count hypercall
    // includes itself. An HVC with another immediate is not an SMCCC call:
    // the full exit refuses it (undefined instruction).
    if ferrovisor_trap::is_hvc0(crate::arch::aarch64::cpu::esr_el2()) {
        count(v, ExitReason::Hvc);
        if exit::answer_query(v) {
            return RESUME;
        }
    }
    SYNC
}

/// Acknowledges and handles the IRQ that made the guest exit.
fn interrupt(v: &mut Vcpu) -> u64 {
    let Some(host) = irq::acknowledge() else {
        count(v, ExitReason::Irq);
        return RESUME;
    };
    if let Some(guest) = v.vm.forwards.guest_of(host).filter(|_| v.vm.state().receives_interrupts()) {
        // A device interrupt of this guest: it stays active until the
        // guest's EOI deactivates it through the list register (HW=1).
        irq::note(host);
        gicv3::priority_drop(host);
        count(v, ExitReason::Forwarded);
        if v.inject_now(guest) {
            return RESUME;
        }
        return raise_forwarded(v, guest);
    }
    other_interrupt(v, host)
}

/// A forwarded interrupt that cannot go straight into a list register:
/// raised in the vGIC, for the refill on the full exit. Out of line, like
/// [`other_interrupt`], so the direct injection stays short.
#[cold]
#[inline(never)]
fn raise_forwarded(v: &mut Vcpu, guest: ferrovisor_types::GuestIrq) -> u64 {
    v.vm.vgic_update(|vgic, fx| vgic.raise_edge(guest, ferrovisor_types::VcpuId::of::<0>(), fx));
    IRQ
}

/// Any interrupt but a forwarded one: its handler runs; the virtual timer
/// goes to the guest.
#[inline(never)]
fn other_interrupt(v: &mut Vcpu, host: ferrovisor_types::HostIrq) -> u64 {
    let reason = match irq::handle(host) {
        irq::Outcome::Forwarded => ExitReason::Forwarded,
        irq::Outcome::Done if host == cpus::MAINTENANCE_PPI => ExitReason::Maintenance,
        irq::Outcome::Done => ExitReason::Irq,
    };
    count(v, reason);
    if cpus::take_vtimer_fired() {
        if v.inject_now(VTIMER_INTID) {
            return RESUME;
        }
        v.raise_vtimer();
    }
    IRQ
}

fn count(v: &Vcpu, reason: ExitReason) {
    if let Some(s) = v.shared() {
        s.count(reason);
    }
}
