//! Time since boot and the hypervisor's periodic tick on each CPU.

use crate::arch::aarch64::{cpu, timer};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::aarch64::boot::MAX_CPUS;

/// Hypervisor ticks per second on every CPU (the scheduler's time base).
pub const TICK_HZ: u64 = 100;

static BOOT_COUNT: AtomicU64 = AtomicU64::new(0);
static TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

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
    timer::arm_in(timer::frequency() / TICK_HZ);
}

/// Timer interrupt: counts the tick and re-arms.
pub fn on_tick() {
    if let Some(t) = TICKS.get(cpu::index()) {
        t.fetch_add(1, Ordering::Relaxed);
    }
    timer::arm_in(timer::frequency() / TICK_HZ);
}

/// Ticks seen so far by CPU `index`.
pub fn count(index: usize) -> u64 {
    TICKS.get(index).map_or(0, |t| t.load(Ordering::Relaxed))
}
