//! EL1 exceptions: expected ones are recovered, anything else ends the probe.
//!
//! The catcher is armed around one instruction for one exception class:
//! [`try_read32`] and [`try_write32`] for a data abort taken at EL1 (EC
//! 0x25), [`try_fetch`] for an instruction abort (EC 0x21), [`try_hvc1`] for
//! an undefined instruction (EC 0x00). A matching synchronous exception on the
//! boot CPU has its ESR_EL1, ELR_EL1 and FAR_EL1 recorded, and execution goes
//! on after the instruction (ELR_EL1 += 4; for a fetch, back to the caller's
//! link register). [`fault_loop_read32`] first lets the load re-take its
//! abort a given number of times (or forever) by returning to it unchanged.
//! An IRQ on the boot CPU goes to [`crate::irq::handle`]. Every other
//! exception prints `PROBE <name> EXCEPTION esr=.. elr=.. far=..` and runs
//! the end action.

use crate::boot::TrapFrame;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// Exception classes the catcher can expect.
const EC_UNKNOWN: u8 = 0x00;
const EC_INSTRUCTION_ABORT_SAME_EL: u8 = 0x21;
const EC_DATA_ABORT_SAME_EL: u8 = 0x25;

/// No exception expected.
const DISARMED: u8 = 0xff;

/// [`fault_loop_read32`] without an end.
pub const FOREVER: u64 = u64::MAX;

/// An exception caught by the catcher.
#[derive(Clone, Copy, Debug)]
pub struct Abort {
    /// ESR_EL1 of the exception.
    pub esr: u64,
    /// FAR_EL1 of the exception (UNKNOWN for an undefined instruction).
    pub far: u64,
    /// ELR_EL1 of the exception: the instruction that took it.
    pub elr: u64,
    /// How many times it was taken (more than 1 only for a fault loop).
    pub taken: u64,
}

static ARMED: AtomicU8 = AtomicU8::new(DISARMED);
static CAUGHT: AtomicBool = AtomicBool::new(false);
/// Exceptions still to let re-take before skipping the instruction.
static RETRIES: AtomicU64 = AtomicU64::new(0);
static TAKEN: AtomicU64 = AtomicU64::new(0);
static ESR: AtomicU64 = AtomicU64::new(0);
static FAR: AtomicU64 = AtomicU64::new(0);
static ELR: AtomicU64 = AtomicU64::new(0);

fn arm(ec: u8, retries: u64) {
    CAUGHT.store(false, Ordering::SeqCst);
    TAKEN.store(0, Ordering::SeqCst);
    RETRIES.store(retries, Ordering::SeqCst);
    ARMED.store(ec, Ordering::SeqCst);
}

fn disarm() -> Result<(), Abort> {
    ARMED.store(DISARMED, Ordering::SeqCst);
    if CAUGHT.load(Ordering::SeqCst) {
        Err(Abort {
            esr: ESR.load(Ordering::SeqCst),
            far: FAR.load(Ordering::SeqCst),
            elr: ELR.load(Ordering::SeqCst),
            taken: TAKEN.load(Ordering::SeqCst),
        })
    } else {
        Ok(())
    }
}

/// One 32-bit load from `addr` through the identity map; an abort is caught.
/// Only the boot CPU may use the catcher.
pub fn try_read32(addr: u64) -> Result<u32, Abort> {
    fault_loop_read32(addr, 0)
}

/// A 32-bit load from `addr` that, if it aborts, is retried `retries` times
/// by returning to it ([`FOREVER`]: never given up) before the abort is
/// caught. Only the boot CPU may use the catcher.
pub fn fault_loop_read32(addr: u64, retries: u64) -> Result<u32, Abort> {
    arm(EC_DATA_ABORT_SAME_EL, retries);
    let mut value: u32 = 0;
    // SAFETY: a single load; if `addr` is not readable the abort is caught by
    // the armed handler, which re-runs or skips exactly this one instruction.
    // Reading device memory may have side effects, which is what the caller
    // asked for.
    unsafe {
        asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = inout(reg) value, options(nostack));
    }
    disarm().map(|()| value)
}

/// One 32-bit store of `value` to `addr`; an abort is caught.
/// Only the boot CPU may use the catcher.
pub fn try_write32(addr: u64, value: u32) -> Result<(), Abort> {
    arm(EC_DATA_ABORT_SAME_EL, 0);
    // SAFETY: a single store the caller asked for, to memory the probe does
    // not use (the tests write outside the probe's image and stacks); an abort
    // is caught by the armed handler, which skips this one instruction.
    unsafe {
        asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack));
    }
    disarm()
}

/// Branches to `addr` and expects the fetch to abort; the handler returns
/// to the caller through the link register. `Ok` means the code at `addr`
/// returned (a FAIL for the callers). Only the boot CPU may use the catcher.
pub fn try_fetch(addr: u64) -> Result<(), Abort> {
    arm(EC_INSTRUCTION_ABORT_SAME_EL, 0);
    // SAFETY: the branch target is expected not to be executable; its abort
    // is caught and execution resumes after the `blr` (x30). Should it hold
    // code that returns, all caller-saved registers are declared clobbered.
    unsafe {
        asm!(
            "blr {a}",
            a = in(reg) addr,
            clobber_abi("C"),
            options(nostack),
        );
    }
    disarm()
}

/// Executes `hvc #1` (not an SMCCC call: SMCCC calls use immediate 0) and
/// expects an undefined-instruction exception; returns the exception and
/// the HVC instruction's address. `Ok` (with the address) means the HVC
/// returned. Only the boot CPU may use the catcher.
pub fn try_hvc1() -> (Result<(), Abort>, u64) {
    arm(EC_UNKNOWN, 0);
    let at: u64;
    // SAFETY: x0 = 0 names no SMCCC function; a hypervisor that took the
    // call anyway may clobber x0-x17 (declared). An undefined-instruction
    // exception is caught and the HVC skipped.
    unsafe {
        asm!(
            "adr {at}, 1f",
            "1: hvc #1",
            at = out(reg) at,
            inout("x0") 0u64 => _,
            out("x1") _, out("x2") _, out("x3") _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    (disarm(), at)
}

/// Handles an exception the catcher was armed for; false if it was not.
fn catch(frame: &mut TrapFrame, ec: u8) -> bool {
    if ARMED.load(Ordering::SeqCst) != ec {
        return false;
    }
    TAKEN.fetch_add(1, Ordering::SeqCst);
    ESR.store(frame.esr, Ordering::SeqCst);
    FAR.store(frame.far, Ordering::SeqCst);
    ELR.store(frame.elr, Ordering::SeqCst);
    let left = RETRIES.load(Ordering::SeqCst);
    if left != 0 {
        // Back to the same instruction: it takes the exception again.
        if left != FOREVER {
            RETRIES.store(left - 1, Ordering::SeqCst);
        }
        return true;
    }
    ARMED.store(DISARMED, Ordering::SeqCst);
    CAUGHT.store(true, Ordering::SeqCst);
    if ec == EC_INSTRUCTION_ABORT_SAME_EL {
        frame.elr = frame.x[30];
    } else {
        frame.elr += 4;
    }
    true
}

/// Called by the vectors with the saved frame and the vector index (0..15).
pub extern "C" fn handle_exception(frame: &mut TrapFrame, kind: u64) {
    // Vector 5: IRQ, current EL with SP_EL1 (the boot CPU, during a wait).
    if kind == 5 && crate::cpu::index() == 0 {
        crate::irq::handle();
        return;
    }
    let ec = ((frame.esr >> 26) & 0x3f) as u8;
    // Vector 4: synchronous, current EL with SP_EL1 (the probe always uses it).
    if kind == 4 && crate::cpu::index() == 0 && catch(frame, ec) {
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
