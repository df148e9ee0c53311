//! The IRQ handler, per-INTID counters and bounded waits for interrupts.
//!
//! The EL1 IRQ vector (current EL with SP_EL1, `boot.rs`) reads CNTVCT_EL0
//! (`isb; mrs`) into [`PROBE_IRQ_CNTVCT`] right after saving two registers,
//! before anything else; then [`handle`] acknowledges one interrupt
//! (ICC_IAR1_EL1), records that timestamp and a count for its INTID, runs
//! its action and ends it (ICC_EOIR1_EL1, EOImode 0).
//!
//! Actions: the virtual timer (PPI 27, used only to bound WFI waits) is
//! disabled; an INTID registered with [`set_clear`] has a 32-bit value
//! written to a device register first (the device's interrupt clear), so a
//! level interrupt is quiet before its EOI. With [`set_hold`], the handler
//! of that INTID first busy-waits with the interrupt active and its line
//! still asserted, and notes whether ferrovisor descheduled the vCPU
//! meanwhile ([`held_descheduled`]). Under ferrovisor the handler also
//! records how often the vCPU had been scheduled in at its entry
//! ([`entry_loads`]).
//!
//! IRQs are masked (PSTATE.I) except inside [`wait`], which opens them
//! briefly after each wake-up, so only the tests that need them see them.

use crate::{cpu, gic};
use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The EL1 virtual timer's PPI.
pub const VTIMER_INTID: u32 = 27;
const SLOTS: usize = gic::MAX_INTID as usize + 1;

/// CNTVCT_EL0 at the latest IRQ exception entry, written by the vector.
#[unsafe(no_mangle)]
pub static PROBE_IRQ_CNTVCT: AtomicU64 = AtomicU64::new(0);

#[allow(clippy::declare_interior_mutable_const)]
const ZERO32: AtomicU32 = AtomicU32::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO64: AtomicU64 = AtomicU64::new(0);
/// Interrupts handled per INTID.
static COUNT: [AtomicU32; SLOTS] = [ZERO32; SLOTS];
/// Entry timestamp (CNTVCT) of the latest interrupt per INTID.
static STAMP: [AtomicU64; SLOTS] = [ZERO64; SLOTS];
/// Acknowledges that returned a special INTID (1020..=1023).
static SPURIOUS: AtomicU32 = AtomicU32::new(0);

/// The clear action: INTID (0 = none), register address and value.
static CLEAR_INTID: AtomicU32 = AtomicU32::new(0);
static CLEAR_ADDR: AtomicU64 = AtomicU64::new(0);
static CLEAR_VALUE: AtomicU32 = AtomicU32::new(0);
/// Clear writes that were aborted.
static CLEAR_ABORTS: AtomicU32 = AtomicU32::new(0);
/// Milliseconds the clear action waits before the clear (0: none).
static HOLD_MS: AtomicU64 = AtomicU64::new(0);
/// Holds during which the vCPU was descheduled (under ferrovisor).
static HELD_DESCHEDULED: AtomicU32 = AtomicU32::new(0);
/// The vCPU's scheduled-in count at the entry of the latest clear action.
static ENTRY_LOADS: AtomicU64 = AtomicU64::new(0);

/// Interrupts of `intid` handled so far.
pub fn count(intid: u32) -> u32 {
    COUNT.get(intid as usize).map_or(0, |c| c.load(Ordering::SeqCst))
}

/// Interrupts handled so far of every INTID but the virtual timer's.
pub fn count_all_but_vtimer() -> u32 {
    let all = COUNT.iter().fold(0u32, |sum, c| sum.wrapping_add(c.load(Ordering::SeqCst)));
    all.wrapping_sub(count(VTIMER_INTID))
}

/// CNTVCT at the entry of the latest interrupt of `intid` (0 if none).
pub fn stamp(intid: u32) -> u64 {
    STAMP.get(intid as usize).map_or(0, |s| s.load(Ordering::SeqCst))
}

/// Spurious acknowledges so far.
pub fn spurious() -> u32 {
    SPURIOUS.load(Ordering::SeqCst)
}

/// Aborted clear writes so far.
pub fn clear_aborts() -> u32 {
    CLEAR_ABORTS.load(Ordering::SeqCst)
}

/// On each interrupt of `intid`, write `value` to the 32-bit register at
/// `addr` before the EOI. `intid` 0 removes the action.
pub fn set_clear(intid: u32, addr: u64, value: u32) {
    CLEAR_INTID.store(0, Ordering::SeqCst);
    CLEAR_ADDR.store(addr, Ordering::SeqCst);
    CLEAR_VALUE.store(value, Ordering::SeqCst);
    CLEAR_INTID.store(intid, Ordering::SeqCst);
}

/// Makes the clear action busy-wait `ms` milliseconds first (0: no wait).
pub fn set_hold(ms: u64) {
    HOLD_MS.store(ms, Ordering::SeqCst);
}

/// Holds so far during which ferrovisor descheduled the vCPU.
pub fn held_descheduled() -> u32 {
    HELD_DESCHEDULED.load(Ordering::SeqCst)
}

/// ferrovisor's scheduled-in count of this vCPU when the latest clear
/// action started (0 natively).
pub fn entry_loads() -> u64 {
    ENTRY_LOADS.load(Ordering::SeqCst)
}

/// Called from the exception handler for an IRQ at EL1.
pub fn handle() {
    let stamp = PROBE_IRQ_CNTVCT.load(Ordering::SeqCst);
    let iar = gic::ack();
    let intid = (iar & 0xff_ffff) as u32;
    if intid > gic::MAX_INTID {
        SPURIOUS.fetch_add(1, Ordering::SeqCst);
        return;
    }
    if let (Some(c), Some(s)) = (COUNT.get(intid as usize), STAMP.get(intid as usize)) {
        s.store(stamp, Ordering::SeqCst);
        c.fetch_add(1, Ordering::SeqCst);
    }
    if intid == VTIMER_INTID {
        set_vtimer(None);
    } else if intid == CLEAR_INTID.load(Ordering::SeqCst) {
        let entry = crate::hyp::sched().map_or(0, |(loads, _)| loads);
        ENTRY_LOADS.store(entry, Ordering::SeqCst);
        let hold = HOLD_MS.load(Ordering::SeqCst);
        if hold > 0 {
            let deadline = cpu::deadline_ms(hold);
            while !cpu::expired(deadline) {
                core::hint::spin_loop();
            }
            let after = crate::hyp::sched().map_or(0, |(loads, _)| loads);
            if after > entry {
                HELD_DESCHEDULED.fetch_add(1, Ordering::SeqCst);
            }
        }
        let addr = CLEAR_ADDR.load(Ordering::SeqCst);
        // The catcher is free: IRQs are only open in `wait`, never while a
        // `try_*` access is in flight.
        if crate::exception::try_write32(addr, CLEAR_VALUE.load(Ordering::SeqCst)).is_err() {
            CLEAR_ABORTS.fetch_add(1, Ordering::SeqCst);
        }
    }
    gic::eoi(iar);
}

/// Arms the virtual timer to fire at counter value `at`, or disables it.
pub fn set_vtimer(at: Option<u64>) {
    // SAFETY: the EL1 virtual timer belongs to the probe; CTL = 1 enables
    // it unmasked, 0 disables it (its interrupt line drops).
    unsafe {
        match at {
            Some(at) => asm!(
                "msr cntv_cval_el0, {at}",
                "msr cntv_ctl_el0, {one}",
                "isb",
                at = in(reg) at,
                one = in(reg) 1u64,
                options(nomem, nostack)
            ),
            None => asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack)),
        }
    }
}

/// Leaves the virtual timer enabled, expired and masked (as Linux's timer
/// interrupt handler leaves it when no next event follows); returns
/// CNTV_CTL_EL0 as read back (ISTATUS, bit 2, set).
pub fn leave_vtimer_expired_masked() -> u64 {
    let ctl: u64;
    // SAFETY: the EL1 virtual timer belongs to the probe; CVAL 0 has
    // expired, CTL = ENABLE | IMASK keeps its interrupt line low.
    unsafe {
        asm!(
            "msr cntv_cval_el0, xzr",
            "msr cntv_ctl_el0, {ctl}",
            "isb",
            "mrs {out}, cntv_ctl_el0",
            ctl = in(reg) 3u64,
            out = out(reg) ctl,
            options(nomem, nostack)
        )
    };
    ctl
}

/// Takes the interrupts that are pending now: unmask IRQs, ISB, mask.
fn open_window() {
    // SAFETY: unmasking IRQs lets the vectors run `handle` for each pending
    // interrupt; the ISB makes sure they are taken before IRQs are masked
    // again. Interrupts were masked before and are masked after.
    unsafe { asm!("msr daifclr, #2", "isb", "msr daifset, #2", options(nomem, nostack)) };
}

/// How [`wait`] passes the time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WaitMode {
    /// WFI (interrupts masked), then take them; the virtual timer bounds it.
    Wfi,
    /// Poll with interrupts open: the CPU runs when the interrupt arrives
    /// (under ferrovisor: the vCPU is running, so it exits for it).
    Spin,
}

/// Waits until `done()` or the counter passes `deadline`; returns `done()`.
/// Needs [`gic::init`] and the virtual timer PPI enabled (for `Wfi`).
///
/// The timer is armed again before every WFI: a timer interrupt left
/// pending by an earlier wait (it fired just as that wait ended) is taken
/// here and its handler disables the timer, which would leave the WFI
/// without a wake-up.
pub fn wait(deadline: u64, mode: WaitMode, done: impl Fn() -> bool) -> bool {
    let ok = loop {
        if done() {
            break true;
        }
        if cpu::expired(deadline) {
            break done();
        }
        match mode {
            WaitMode::Wfi => {
                set_vtimer(Some(deadline));
                cpu::wfi();
                open_window();
            }
            WaitMode::Spin => open_window(),
        }
    };
    set_vtimer(None);
    ok
}

/// Sets up the GIC (once) and the virtual timer PPI that bounds WFI waits.
pub fn setup() -> Result<(), &'static str> {
    gic::init()?;
    set_vtimer(None);
    gic::enable_local(VTIMER_INTID)
}
