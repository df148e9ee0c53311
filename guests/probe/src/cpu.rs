//! Small CPU helpers: this CPU's index and MPIDR, the generic counter, WFI.

use core::arch::asm;

/// This CPU's probe index (0 = boot CPU), kept in TPIDR_EL1 by the boot code.
pub fn index() -> usize {
    let v: u64;
    // SAFETY: reading TPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, tpidr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v as usize
}

/// This CPU's affinity fields (MPIDR_EL1 Aff3..Aff0), as in the DT `reg`.
pub fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v & 0xff_00ff_ffff
}

/// The virtual counter (CNTVCT_EL0), read after an ISB.
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter has no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// The counter frequency in Hz (CNTFRQ_EL0), never 0.
pub fn frequency() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    if v == 0 {
        62_500_000
    } else {
        v
    }
}

/// A deadline `ms` milliseconds from now, in counter ticks.
pub fn deadline_ms(ms: u64) -> u64 {
    counter().saturating_add(frequency().saturating_mul(ms) / 1000)
}

/// Whether the counter has passed `deadline`.
pub fn expired(deadline: u64) -> bool {
    counter() >= deadline
}

/// A full data synchronisation barrier: memory writes are visible to
/// devices before the next device register write.
pub fn dsb() {
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// One WFI (interrupts stay masked: a pending one only wakes the CPU).
pub fn wfi() {
    // SAFETY: WFI only waits; it changes no state the program relies on.
    unsafe { asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
}

/// Stops this CPU for good: WFE forever.
pub fn park() -> ! {
    loop {
        // SAFETY: WFE only waits.
        unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
    }
}

/// Sleeps forever: WFI in a loop.
pub fn sleep_forever() -> ! {
    loop {
        wfi();
    }
}

/// The current exception level (1 for the probe once booted).
pub fn current_el() -> u64 {
    let v: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { asm!("mrs {}, CurrentEL", out(reg) v, options(nomem, nostack, preserves_flags)) };
    (v >> 2) & 3
}
