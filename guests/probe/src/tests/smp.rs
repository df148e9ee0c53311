//! `smp`: start every other CPU in the DT with PSCI CPU_ON, let each say it
//! is online and power itself off, and check that all did.
//!
//! The boot CPU is probe CPU 0; the others get indices 1.. in DT order (the
//! CPU_ON context id, which picks their stack). At most `MAX_CPUS - 1` are
//! started. The boot CPU waits up to 5 s (generic counter) for the online
//! count, then up to 5 s for AFFINITY_INFO to report every started CPU off.

use super::{report, Env};
use crate::{boot, cpu, psci};
use core::sync::atomic::{AtomicU32, Ordering};

/// Secondaries that reached Rust, this run.
static ONLINE: AtomicU32 = AtomicU32::new(0);

const TIMEOUT_MS: u64 = 5000;

/// A secondary CPU's life: say hello, count, CPU_OFF.
pub fn secondary(index: u64) -> ! {
    crate::out!("cpu{index} online mpidr={:#x}", cpu::mpidr());
    ONLINE.fetch_add(1, Ordering::SeqCst);
    let r = psci::call(psci::CPU_OFF, 0, 0, 0);
    crate::out!("cpu{index} CPU_OFF returned {r} ({})", psci::error_name(r));
    cpu::park()
}

/// Runs the test.
pub fn run(env: &Env, test: &str) -> bool {
    let me = cpu::mpidr();
    let entry = boot::secondary_entry_addr();
    super::set_secondary_role(super::Role::Hello);
    ONLINE.store(0, Ordering::SeqCst);

    let mut started = [0u64; boot::MAX_CPUS];
    let mut count = 0usize;
    let mut error: Option<(u64, i64)> = None;
    for &mpidr in env.cpus.listed() {
        if mpidr == me || mpidr == u64::MAX {
            continue;
        }
        let index = count + 1;
        let Some(slot) = started.get_mut(index) else {
            crate::out!(
                "smp mpidr={mpidr:#x} not started (the probe runs on at most {} CPUs)",
                boot::MAX_CPUS
            );
            continue;
        };
        let r = psci::call(psci::CPU_ON, mpidr, entry, index as u64);
        if r != 0 {
            crate::out!("smp CPU_ON mpidr={mpidr:#x} returned {r} ({})", psci::error_name(r));
            error.get_or_insert((mpidr, r));
            continue;
        }
        *slot = mpidr;
        count += 1;
    }

    let deadline = cpu::deadline_ms(TIMEOUT_MS);
    while (ONLINE.load(Ordering::SeqCst) as usize) < count && !cpu::expired(deadline) {
        core::hint::spin_loop();
    }
    let online = ONLINE.load(Ordering::SeqCst) as usize;

    let deadline = cpu::deadline_ms(TIMEOUT_MS);
    let mut not_off: Option<(u64, i64)> = None;
    for &mpidr in started.get(1..=count).unwrap_or(&[]) {
        let state = loop {
            let s = psci::call(psci::AFFINITY_INFO, mpidr, 0, 0);
            if s == psci::AFFINITY_OFF || s < 0 || cpu::expired(deadline) {
                break s;
            }
            core::hint::spin_loop();
        };
        if state != psci::AFFINITY_OFF {
            not_off.get_or_insert((mpidr, state));
        }
    }

    if let Some((mpidr, r)) = error {
        return report!(
            test,
            false,
            "CPU_ON mpidr={mpidr:#x} error {r} ({}) online={online}",
            psci::error_name(r)
        );
    }
    if online != count {
        return report!(test, false, "online={online} of {count} within {TIMEOUT_MS} ms");
    }
    if let Some((mpidr, s)) = not_off {
        return report!(test, false, "mpidr={mpidr:#x} not off: AFFINITY_INFO={s} online={online}");
    }
    report!(test, true, "online={online}")
}
