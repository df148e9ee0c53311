//! How the hypervisor dies: an epitaph on the console, then power off.
//!
//! The epitaph line starts with `ferrovisor PANIC`, which the test harness
//! treats as a failure. Only hypervisor bugs end here; guest actions never do.

use crate::arch::aarch64::cpu;
use crate::arch::aarch64::vectors::{TrapFrame, VectorKind};
use crate::core::console::emergency_write;
use core::sync::atomic::{AtomicBool, Ordering};

static DYING: AtomicBool = AtomicBool::new(false);

fn epitaph(args: core::fmt::Arguments<'_>) -> ! {
    cpu::irq_disable();
    if DYING.swap(true, Ordering::SeqCst) {
        // Another CPU is already dying; let it finish its report.
        crate::core::power::park();
    }
    emergency_write(format_args!("\n!!! ferrovisor PANIC on cpu{}: {}\n", cpu::index(), args));
    crate::core::power::halt()
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(loc) => epitaph(format_args!("{} at {}:{}", info.message(), loc.file(), loc.line())),
        None => epitaph(format_args!("{}", info.message())),
    }
}

/// An exception the hypervisor did not expect: dump it and stop.
pub fn fatal_exception(kind: VectorKind, frame: &TrapFrame) -> ! {
    epitaph(format_args!("unexpected {} exception from {}\n{}", kind.class(), kind.origin(), frame))
}

/// A condition at boot that leaves nothing to run (bad host DT, no GIC).
pub fn fatal_boot(args: core::fmt::Arguments<'_>) -> ! {
    epitaph(format_args!("boot failed: {args}"))
}
