//! EL1 exceptions: expected data aborts are recovered, anything else ends the
//! probe.
//!
//! [`try_read32`] and [`try_write32`] arm a catcher around one load or store.
//! A synchronous data abort taken at EL1 (EC 0x25) while it is armed has its
//! ESR_EL1 and FAR_EL1 recorded and the faulting instruction skipped
//! (ELR_EL1 += 4). An IRQ on the boot CPU goes to [`crate::irq::handle`].
//! Every other exception prints
//! `PROBE <name> EXCEPTION esr=.. elr=.. far=..` and runs the end action.

use crate::boot::TrapFrame;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const EC_DATA_ABORT_SAME_EL: u64 = 0x25;

/// An abort caught by the catcher.
#[derive(Clone, Copy, Debug)]
pub struct Abort {
    /// ESR_EL1 of the abort.
    pub esr: u64,
    /// FAR_EL1 of the abort.
    pub far: u64,
}

static ARMED: AtomicBool = AtomicBool::new(false);
static CAUGHT: AtomicBool = AtomicBool::new(false);
static ESR: AtomicU64 = AtomicU64::new(0);
static FAR: AtomicU64 = AtomicU64::new(0);

fn arm() {
    CAUGHT.store(false, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
}

fn disarm() -> Result<(), Abort> {
    ARMED.store(false, Ordering::SeqCst);
    if CAUGHT.load(Ordering::SeqCst) {
        Err(Abort { esr: ESR.load(Ordering::SeqCst), far: FAR.load(Ordering::SeqCst) })
    } else {
        Ok(())
    }
}

/// One 32-bit load from `addr` through the identity map; an abort is caught.
/// Only the boot CPU may use the catcher.
pub fn try_read32(addr: u64) -> Result<u32, Abort> {
    arm();
    let mut value: u32 = 0;
    // SAFETY: a single load; if `addr` is not readable the abort is caught by
    // the armed handler, which skips exactly this one instruction. Reading
    // device memory may have side effects, which is what the caller asked for.
    unsafe {
        asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = inout(reg) value, options(nostack));
    }
    disarm().map(|()| value)
}

/// One 32-bit store of `value` to `addr`; an abort is caught.
/// Only the boot CPU may use the catcher.
pub fn try_write32(addr: u64, value: u32) -> Result<(), Abort> {
    arm();
    // SAFETY: a single store the caller asked for, to memory the probe does
    // not use (the tests write outside the probe's image and stacks); an abort
    // is caught by the armed handler, which skips this one instruction.
    unsafe {
        asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack));
    }
    disarm()
}

/// Called by the vectors with the saved frame and the vector index (0..15).
pub extern "C" fn handle_exception(frame: &mut TrapFrame, kind: u64) {
    // Vector 5: IRQ, current EL with SP_EL1 (the boot CPU, during a wait).
    if kind == 5 && crate::cpu::index() == 0 {
        crate::irq::handle();
        return;
    }
    let ec = (frame.esr >> 26) & 0x3f;
    // Vector 4: synchronous, current EL with SP_EL1 (the probe always uses it).
    if kind == 4
        && ec == EC_DATA_ABORT_SAME_EL
        && crate::cpu::index() == 0
        && ARMED.swap(false, Ordering::SeqCst)
    {
        ESR.store(frame.esr, Ordering::SeqCst);
        FAR.store(frame.far, Ordering::SeqCst);
        CAUGHT.store(true, Ordering::SeqCst);
        frame.elr += 4;
        return;
    }
    crate::out!(
        "EXCEPTION esr={:#x} elr={:#x} far={:#x} cpu={} vector={}",
        frame.esr,
        frame.elr,
        frame.far,
        crate::cpu::index(),
        kind
    );
    crate::end();
}
