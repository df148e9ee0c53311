//! Powering the machine off.

use crate::arch::aarch64::{cpu, psci};
use core::sync::atomic::{AtomicBool, Ordering};

static CONDUIT_HVC: AtomicBool = AtomicBool::new(false);

/// Records the host firmware's PSCI conduit (from the host DT).
pub fn set_conduit(conduit: psci::Conduit) {
    CONDUIT_HVC.store(conduit == psci::Conduit::Hvc, Ordering::Relaxed);
}

/// The PSCI conduit in use.
pub fn conduit() -> psci::Conduit {
    if CONDUIT_HVC.load(Ordering::Relaxed) {
        psci::Conduit::Hvc
    } else {
        psci::Conduit::Smc
    }
}

/// Powers the machine off with PSCI SYSTEM_OFF; if the firmware refuses,
/// parks this CPU. Console output still queued is lost: call
/// `console::flush` first where it matters (this may run before the MMU
/// is on, where the output path cannot).
pub fn halt() -> ! {
    let err = psci::system_off(conduit());
    crate::core::console::early_write(format_args!(
        "ferrovisor: PSCI SYSTEM_OFF failed ({err:?}); parking cpu{}\n",
        cpu::index()
    ));
    park()
}

/// Stops this CPU for good.
pub fn park() -> ! {
    cpu::irq_disable();
    loop {
        cpu::wait_for_event();
    }
}
