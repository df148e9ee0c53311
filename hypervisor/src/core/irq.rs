//! Physical interrupt dispatch at EL2: acknowledge, run the handler that
//! registered the INTID, end. Handlers are registered at boot only.
//!
//! Hot path: no formatting, no allocation; counters only.

use crate::arch::aarch64::cpu;
use crate::platform::gicv3;
use core::sync::atomic::{AtomicU64, Ordering};
use ferrovisor_sync::RwLock;
use ferrovisor_types::HostIrq;

/// INTIDs below this can have a handler (SGIs, PPIs and the first SPIs).
pub const MAX_HANDLED: usize = 256;

/// What a handler did with its interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Handled by the hypervisor: deactivate it now.
    Done,
    /// Forwarded to a guest through a list register with the HW bit: it
    /// stays active until the guest deactivates it.
    Forwarded,
}

pub type Handler = fn(HostIrq) -> Outcome;

static HANDLERS: RwLock<[Option<Handler>; MAX_HANDLED]> = RwLock::new([None; MAX_HANDLED]);
static COUNTS: [AtomicU64; MAX_HANDLED] = [const { AtomicU64::new(0) }; MAX_HANDLED];
static SPURIOUS: AtomicU64 = AtomicU64::new(0);

/// SGI used to poke another CPU (wake-up, function call).
pub const SGI_KICK: HostIrq = HostIrq::of::<1>();

/// Registers `handler` for `irq`; an INTID beyond the table is refused.
pub fn register(irq: HostIrq, handler: Handler) -> bool {
    // IRQs masked: `handle` reads the table, and an interrupt taken on this
    // CPU while it holds the write lock would wait for it forever.
    cpu::without_irqs(|| match HANDLERS.write().get_mut(irq.raw() as usize) {
        Some(slot) => {
            *slot = Some(handler);
            true
        }
        None => false,
    })
}

/// Removes the handler of `irq` (its interrupts then count as unhandled).
pub fn unregister(irq: HostIrq) {
    cpu::without_irqs(|| {
        if let Some(slot) = HANDLERS.write().get_mut(irq.raw() as usize) {
            *slot = None;
        }
    })
}

/// Handles one pending interrupt (from the IRQ vector, or after a guest
/// exited for an IRQ); returns it and what was done with it.
pub fn dispatch() -> Option<(HostIrq, Outcome)> {
    let irq = acknowledge()?;
    Some((irq, handle(irq)))
}

/// Acknowledges the highest-priority pending interrupt (None, counted as
/// spurious, if there is none).
pub fn acknowledge() -> Option<HostIrq> {
    let irq = gicv3::acknowledge();
    if irq.is_none() {
        SPURIOUS.fetch_add(1, Ordering::Relaxed);
    }
    irq
}

/// Counts an acknowledged interrupt that the caller handles itself (the
/// exit fast path's forwarded interrupts).
pub fn note(irq: HostIrq) {
    if let Some(count) = COUNTS.get(irq.raw() as usize) {
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the handler of an acknowledged interrupt and ends it: priority
/// drop, and deactivation unless it was forwarded to a guest.
pub fn handle(irq: HostIrq) -> Outcome {
    let index = irq.raw() as usize;
    let handler = HANDLERS.read().get(index).copied().flatten();
    note(irq);
    let outcome = match handler {
        Some(h) => h(irq),
        None => {
            SPURIOUS.fetch_add(1, Ordering::Relaxed);
            Outcome::Done
        }
    };
    gicv3::priority_drop(irq);
    if outcome == Outcome::Done {
        gicv3::deactivate(irq);
    }
    outcome
}

/// How often `irq` was taken.
pub fn count(irq: HostIrq) -> u64 {
    if irq == SGI_KICK {
        // Kicks are counted per CPU (`cpus::note_kick`), where the exit
        // fast path takes them too.
        return (0..super::cpus::count()).map(super::cpus::kicks).sum();
    }
    COUNTS.get(irq.raw() as usize).map_or(0, |c| c.load(Ordering::Relaxed))
}

/// Interrupts taken with no handler, or with no pending INTID.
pub fn spurious() -> u64 {
    SPURIOUS.load(Ordering::Relaxed)
}
