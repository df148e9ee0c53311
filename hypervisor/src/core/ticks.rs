//! Time since boot and the hypervisor's periodic tick on each CPU.

use crate::arch::aarch64::{cpu, timer};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::aarch64::boot::MAX_CPUS;

/// Hypervisor ticks per second on every CPU (the scheduler's time base).
pub const TICK_HZ: u64 = 100;

static BOOT_COUNT: AtomicU64 = AtomicU64::new(0);
static TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Whether each CPU's tick is on (it is from `start` until the scheduler
/// finds it has nothing to time-slice).
static PERIODIC: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(true) }; MAX_CPUS];

/// Records the counter value at boot (the zero of `uptime`).
pub fn mark_boot() {
    BOOT_COUNT.store(timer::now(), Ordering::Relaxed);
}

/// (seconds, microseconds) of uptime at counter value `now`.
pub fn uptime(now: u64, freq: u64) -> (u64, u64) {
    let t = now.wrapping_sub(BOOT_COUNT.load(Ordering::Relaxed));
    let freq = freq.max(1);
    (t / freq, (t % freq) * 1_000_000 / freq)
}

/// Starts this CPU's periodic tick.
pub fn start() {
    program(true);
}

/// Turns this CPU's tick on or off. The scheduler needs it only to end
/// time slices, so a CPU with at most one vCPU pinned to it runs tickless:
/// a guest that has its pCPU to itself sees no hypervisor exits but its own.
pub fn set_periodic(on: bool) {
    let Some(flag) = PERIODIC.get(cpu::index()) else { return };
    if flag.swap(on, Ordering::Relaxed) != on {
        program(on);
    }
}

/// Arms this CPU's timer for the next tick, or stops it.
fn program(on: bool) {
    if on {
        timer::arm_in(timer::frequency() / TICK_HZ);
    } else {
        timer::disarm();
    }
}

/// Timer interrupt: counts the tick and re-arms (if the tick is on).
pub fn on_tick() {
    let me = cpu::index();
    if let Some(t) = TICKS.get(me) {
        t.fetch_add(1, Ordering::Relaxed);
    }
    program(PERIODIC.get(me).is_some_and(|p| p.load(Ordering::Relaxed)));
}

/// Ticks seen so far by CPU `index`.
pub fn count(index: usize) -> u64 {
    TICKS.get(index).map_or(0, |t| t.load(Ordering::Relaxed))
}
