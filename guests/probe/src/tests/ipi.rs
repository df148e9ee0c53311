//! `sgiping=N`: N SGI round trips between the boot CPU and the next CPU in
//! the DT, timed: the cost of a wake-up IPI each way, as a Linux guest's
//! cross-CPU wake-ups pay it.
//!
//! The boot CPU starts the other one (PSCI CPU_ON, role [`Role::Pong`]),
//! which sets up its own redistributor and CPU interface and waits in WFI.
//! Each round trip: the boot CPU sends SGI [`PING`] and waits in WFI; the
//! other CPU wakes, acknowledges it, sends SGI [`PONG`] back and waits
//! again; the boot CPU wakes and acknowledges. Both keep IRQs masked and
//! take the interrupts by reading `ICC_IAR1_EL1` after their WFI, so the
//! figure is the interrupt path alone (no exception entry in the guest).
//! Under ferrovisor with the two vCPUs on their own pCPUs each SGI is one
//! trapped `ICC_SGI1R_EL1` write on the sender and one kick IPI on the
//! receiver's pCPU.
//!
//! Both sides are bounded by the virtual timer (5 s): a lost SGI FAILs the
//! test instead of hanging it. After the last round trip the boot CPU tells
//! the other to stop with one more SGI and waits for it to be off. The boot
//! CPU's waits for the other CPU nap in WFI between checks ([`nap`]).

use super::{parse_u64, report, Env};
use crate::{boot, cpu, gic, irq, psci};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The SGI the boot CPU sends.
pub const PING: u32 = 1;
/// The SGI sent back.
pub const PONG: u32 = 2;
/// Round trips at most.
const MAX_ROUND_TRIPS: u64 = 1_000_000;
const TIMEOUT_MS: u64 = 5000;

/// What the other CPU reports: 0 not yet, 1 ready, 2 GIC setup failed.
static STATE: AtomicU32 = AtomicU32::new(0);
const READY: u32 = 1;
const BROKEN: u32 = 2;
/// Set by the boot CPU: the next PING is the last (stop after it).
static STOP: AtomicU32 = AtomicU32::new(0);
/// The boot CPU's affinity (where PONG goes).
static PINGER: AtomicU64 = AtomicU64::new(0);
/// PINGs the other CPU answered.
static ANSWERED: AtomicU64 = AtomicU64::new(0);

/// What an acknowledge after WFI gave.
enum Taken {
    /// The awaited SGI (ended).
    Sgi,
    /// The deadline (virtual timer) passed.
    Timeout,
    /// Nothing, or another interrupt (ended): wait again.
    Other,
}

/// Waits in WFI for SGI `want`, IRQs masked; the virtual timer, armed at
/// the caller's deadline, ends the wait.
fn wait_for(want: u32) -> Taken {
    cpu::wfi();
    let iar = gic::ack();
    let intid = (iar & 0xff_ffff) as u32;
    if intid > gic::MAX_INTID {
        return Taken::Other;
    }
    if intid == irq::VTIMER_INTID {
        irq::set_vtimer(None);
    }
    gic::eoi(iar);
    match intid {
        i if i == want => Taken::Sgi,
        irq::VTIMER_INTID => Taken::Timeout,
        _ => Taken::Other,
    }
}

/// Waits about a millisecond in WFI (the virtual timer wakes it), for the
/// boot CPU's polls: under `-icount` QEMU runs one CPU at a time, and a
/// CPU that polls without halting can keep the other from running at all.
fn nap() {
    irq::set_vtimer(Some(cpu::deadline_ms(1)));
    while !matches!(wait_for(u32::MAX), Taken::Timeout) {}
}

/// The other CPU's life in this test: answer each PING with a PONG until
/// told to stop or the deadline passes, then CPU_OFF.
pub fn pong() -> ! {
    let setup = gic::init_cpu()
        .and_then(|rd| gic::enable_private(rd, PING).and(gic::enable_private(rd, irq::VTIMER_INTID)));
    if setup.is_err() {
        STATE.store(BROKEN, Ordering::SeqCst);
        let _ = psci::call(psci::CPU_OFF, 0, 0, 0);
        cpu::park()
    }
    irq::set_vtimer(Some(cpu::deadline_ms(TIMEOUT_MS)));
    let to = PINGER.load(Ordering::SeqCst);
    STATE.store(READY, Ordering::SeqCst);
    loop {
        match wait_for(PING) {
            Taken::Sgi if STOP.load(Ordering::SeqCst) != 0 => break,
            Taken::Sgi => {
                ANSWERED.fetch_add(1, Ordering::Relaxed);
                gic::send_sgi(PONG, to);
            }
            Taken::Timeout => break,
            Taken::Other => {}
        }
    }
    irq::set_vtimer(None);
    let _ = psci::call(psci::CPU_OFF, 0, 0, 0);
    cpu::park()
}

/// Runs the test.
pub fn run(env: &Env, test: &str, arg: &str) -> bool {
    let Some(n) = parse_u64(arg).filter(|n| (1..=MAX_ROUND_TRIPS).contains(n)) else {
        return report!(test, false, "bad count '{arg}' (1..={MAX_ROUND_TRIPS})");
    };
    let me = cpu::mpidr();
    let Some(&other) = env.cpus.listed().iter().find(|&&m| m != me && m != u64::MAX) else {
        return report!(test, false, "needs a second CPU in the DT");
    };
    if let Err(e) = irq::setup().and_then(|()| gic::enable_local(PONG)) {
        return report!(test, false, "GIC setup: {e}");
    }
    STATE.store(0, Ordering::SeqCst);
    STOP.store(0, Ordering::SeqCst);
    ANSWERED.store(0, Ordering::SeqCst);
    PINGER.store(me, Ordering::SeqCst);
    super::set_secondary_role(super::Role::Pong);
    let r = psci::call(psci::CPU_ON, other, boot::secondary_entry_addr(), 1);
    if r != 0 {
        return report!(test, false, "CPU_ON mpidr={other:#x} returned {r} ({})", psci::error_name(r));
    }
    let deadline = cpu::deadline_ms(TIMEOUT_MS);
    while STATE.load(Ordering::SeqCst) == 0 && !cpu::expired(deadline) {
        nap();
    }
    match STATE.load(Ordering::SeqCst) {
        READY => {}
        BROKEN => return report!(test, false, "mpidr={other:#x} could not set up its GIC"),
        _ => return report!(test, false, "mpidr={other:#x} not ready within {TIMEOUT_MS} ms"),
    }

    irq::set_vtimer(Some(cpu::deadline_ms(TIMEOUT_MS)));
    let mut done = 0u64;
    let t0 = cpu::counter();
    'trips: while done < n {
        gic::send_sgi(PING, other);
        loop {
            match wait_for(PONG) {
                Taken::Sgi => break,
                Taken::Timeout => break 'trips,
                Taken::Other => {}
            }
        }
        done += 1;
    }
    let ticks = cpu::counter().wrapping_sub(t0);
    irq::set_vtimer(None);

    STOP.store(1, Ordering::SeqCst);
    gic::send_sgi(PING, other);
    let deadline = cpu::deadline_ms(TIMEOUT_MS);
    let state = loop {
        let s = psci::call(psci::AFFINITY_INFO, other, 0, 0);
        if s == psci::AFFINITY_OFF || s < 0 || cpu::expired(deadline) {
            break s;
        }
        // WFI between polls, woken by the virtual timer: under `-icount`
        // QEMU runs one CPU at a time, and a CPU that never halts would
        // keep the other from ever taking its SGI.
        irq::set_vtimer(Some(cpu::deadline_ms(1)));
        let _ = wait_for(PONG);
    };
    let off = state == psci::AFFINITY_OFF;
    let answered = ANSWERED.load(Ordering::SeqCst);
    report!(
        test,
        done == n && answered == n && off,
        "n={n} done={done} answered={answered} ticks={ticks} other={other:#x} off={} affinity_info={state}",
        if off { "yes" } else { "no" }
    )
}
