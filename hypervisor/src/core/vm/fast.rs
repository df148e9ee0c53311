//! The exit fast path: what the hypervisor does for the most frequent guest
//! exits without leaving the guest's context.
//!
//! The lower-EL vectors call [`GuestCpu::fast_sync`] for every synchronous
//! exception and [`GuestCpu::fast_irq`] for every IRQ from a guest, with
//! only the registers a call clobbers saved (`guest_sync_fast` and
//! `guest_irq_fast` in `arch/aarch64/guest.rs`). It handles, and
//! resumes the guest at once:
//!
//! * `hvc #0` calls that only read state: ferrovisor's own hypercalls and
//!   the PSCI/SMCCC queries ([`super::exit::answer_query`]); an HVC with
//!   another immediate takes the full exit, which refuses it;
//! * an SGI sent with `MSR ICC_SGI1R_EL1` (from x0-x18 or x30): it goes into
//!   the targets' mailboxes without the vGIC lock and their pCPUs are
//!   kicked (`Vm::send_sgi`); a vCPU that sent one to itself takes the IRQ
//!   full exit, whose refill takes its mail;
//! * the kick IPI that brought SGIs from another vCPU, on a pCPU the vCPU
//!   has to itself: the SGIs go from its mailbox straight into free list
//!   registers (`kicked`), so a cross-CPU wake-up costs one trapped write
//!   on the sender and one fast IRQ exit on the receiver;
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
use crate::arch::aarch64::guest::{FastExit, GuestCpu, VcpuRegs};
use crate::core::{cpus, irq};
use crate::platform::gicv3;

/// What the fast path returns to the world switch: take the full exit
/// (synchronous or IRQ), or the exit is handled, resume the guest.
const SYNC: FastExit = FastExit::FullSync;
const IRQ: FastExit = FastExit::FullIrq;
const RESUME: FastExit = FastExit::Resume;

/// The world switch (`arch::aarch64::guest::run`) calls these from the
/// exit vectors, with the vCPU it runs.
impl GuestCpu for Vcpu {
    #[inline(always)]
    fn regs(&mut self) -> &mut VcpuRegs {
        &mut self.regs
    }
    #[inline(always)]
    fn fast_sync(&mut self) -> FastExit {
        sync(self)
    }
    #[inline(always)]
    fn fast_irq(&mut self) -> FastExit {
        interrupt(self)
    }
}

fn sync(v: &mut Vcpu) -> FastExit {
    // Every `hvc #0` is counted here, answered or not (the full exit does
    // not count it again), and before answering: the exit-count hypercall
    // includes itself. An HVC with another immediate is not an SMCCC call:
    // the full exit refuses it (undefined instruction).
    let esr = crate::arch::aarch64::cpu::esr_el2();
    if ferrovisor_trap::is_hvc0(esr) {
        count(v, ExitReason::Hvc);
        if exit::answer_query(v) {
            return RESUME;
        }
        return SYNC;
    }
    match ferrovisor_trap::sgi1r_write(esr) {
        Some(rt) if VcpuRegs::saved_on_fast_path(rt) => send_sgi(v, rt),
        _ => SYNC,
    }
}

/// `MSR ICC_SGI1R_EL1, X<rt>`: the SGI goes to its targets' mailboxes.
fn send_sgi(v: &mut Vcpu, rt: u8) -> FastExit {
    count(v, ExitReason::SysReg);
    let value = v.regs.get(rt);
    crate::arch::aarch64::cpu::skip_trapped_instruction();
    if v.vm.send_sgi(v.id, value) {
        IRQ
    } else {
        RESUME
    }
}

/// Acknowledges and handles the IRQ that made the guest exit. Only the
/// kick test is inline: the wake-up's path takes no frame here.
#[inline(always)]
fn interrupt(v: &mut Vcpu) -> FastExit {
    let Some(host) = irq::acknowledge() else {
        return spurious(v);
    };
    // The kick first (an SGI is never a forwarded device interrupt).
    if host == irq::SGI_KICK {
        return kicked(v, host);
    }
    device_interrupt(v, host)
}

#[cold]
#[inline(never)]
fn spurious(v: &mut Vcpu) -> FastExit {
    count(v, ExitReason::Irq);
    RESUME
}

/// Any interrupt but the kick: a device interrupt of this guest goes
/// straight into a list register if it can; the others are handled.
#[inline(never)]
fn device_interrupt(v: &mut Vcpu, host: ferrovisor_types::HostIrq) -> FastExit {
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

/// The kick IPI: another pCPU posted SGIs to this vCPU, or changed
/// something this pCPU must look at. The SGIs go straight into list
/// registers ([`Vcpu::deliver_mail`]) and the guest resumes, when that is
/// all the kick brought: the vCPU has its pCPU to itself (no scheduling
/// decision waits), its guest still runs, and the boot CPU has no shell
/// work. Anything else takes the full exit.
#[inline(never)]
fn kicked(v: &mut Vcpu, host: ferrovisor_types::HostIrq) -> FastExit {
    // Counted per CPU only (`irq::count` adds those up).
    cpus::note_kick();
    gicv3::priority_drop(host);
    gicv3::deactivate(host);
    count(v, ExitReason::Irq);
    if v.deliver_mail()
        && v.dedicated
        && v.vm.state() == super::VmState::Running
        && !super::control::service_wanted()
    {
        return RESUME;
    }
    IRQ
}

/// A forwarded interrupt that cannot go straight into a list register:
/// raised in the vGIC, for the refill on the full exit. Out of line, like
/// [`other_interrupt`], so the direct injection stays short.
#[cold]
#[inline(never)]
fn raise_forwarded(v: &mut Vcpu, guest: ferrovisor_types::GuestIrq) -> FastExit {
    v.vm.vgic_update(|vgic, fx| vgic.raise_edge(guest, ferrovisor_types::VcpuId::of::<0>(), fx));
    IRQ
}

/// Any interrupt but a forwarded one: its handler runs; the virtual timer
/// goes to the guest.
#[inline(never)]
fn other_interrupt(v: &mut Vcpu, host: ferrovisor_types::HostIrq) -> FastExit {
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
    v.shared().count(reason);
}
