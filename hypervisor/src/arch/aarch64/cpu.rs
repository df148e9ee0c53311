//! Per-CPU identity and interrupt masking on the running CPU.

use aarch64_cpu::asm;
use aarch64_cpu::registers::{Readable, Writeable, DAIF, ELR_EL2, ESR_EL2, MPIDR_EL1, TPIDR_EL2};

/// The hypervisor's index of the running CPU (0 = boot CPU), kept in
/// TPIDR_EL2 by the boot code.
pub fn index() -> usize {
    TPIDR_EL2.get() as usize
}

/// The running CPU's affinity (MPIDR_EL1 with the non-affinity bits cleared).
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// Unmasks IRQs at EL2 (`msr daifclr`: one instruction, where the crate's
/// DAIF accessor would read, modify and write the register).
pub fn irq_enable() {
    // SAFETY: clearing PSTATE.I only lets IRQs be taken; the vectors are
    // installed before any caller can reach this.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack)) };
}

/// Masks IRQs at EL2 (`msr daifset`, see `irq_enable`).
pub fn irq_disable() {
    // SAFETY: setting PSTATE.I only stops IRQs from being taken.
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack)) };
}

/// Sleeps until an interrupt (or other wake-up event) arrives.
pub fn wait_for_interrupt() {
    asm::wfi();
}

/// Sleeps until an event; `send_event` wakes all CPUs.
pub fn wait_for_event() {
    asm::wfe();
}

/// Wakes every CPU waiting in `wait_for_event`.
pub fn send_event() {
    asm::sev();
}

/// A hint for one turn of a spin-wait (YIELD): QEMU, when it runs one vCPU
/// at a time (`-icount`), runs another one instead of letting this spin
/// for the rest of its time slice. By hand: the crate has no YIELD.
pub fn spin_hint() {
    // SAFETY: YIELD is a hint with no architectural effect.
    unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// Whether IRQs are masked on this CPU (PSTATE.I).
pub fn irqs_masked() -> bool {
    DAIF.is_set(DAIF::I)
}

/// Runs `f` with IRQs masked on this CPU, then restores the mask: for a
/// lock that interrupt handlers take too (holding it when an interrupt
/// arrives on the same CPU would make the handler wait for itself).
pub fn without_irqs<R>(f: impl FnOnce() -> R) -> R {
    let masked = irqs_masked();
    irq_disable();
    let r = f();
    if !masked {
        irq_enable();
    }
    r
}

/// Reads an address outside the EL2 map (beyond its 39-bit input range), which
/// raises a translation fault at EL2: used by `ferrovisor.crashtest=fault`.
pub fn touch_unmapped() {
    let addr: u64 = 1 << 40;
    // SAFETY: the load faults before reading anything; the fault is taken by
    // the EL2 vectors, which report it and stop the machine.
    unsafe { core::arch::asm!("ldr {0}, [{0}]", inout(reg) addr => _, options(nostack, readonly)) };
}

/// Steps the guest past the trapped 4-byte instruction (ELR_EL2 += 4), from
/// the exit fast path, which resumes the guest from ELR_EL2 itself (the
/// full exit saves ELR_EL2 after the fast path has run).
#[inline(always)]
pub fn skip_trapped_instruction() {
    ELR_EL2.set(ELR_EL2.get().wrapping_add(4));
}

/// ESR_EL2: the syndrome of the exception being handled at EL2.
pub fn esr_el2() -> u64 {
    ESR_EL2.get()
}
