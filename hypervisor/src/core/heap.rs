//! The hypervisor heap as the boot and the shell account for it; the
//! allocator itself is `platform::heap`.

pub use crate::platform::heap::{init, used, HEAP_SIZE};
use core::sync::atomic::{AtomicUsize, Ordering};

static AT_BOOT: AtomicUsize = AtomicUsize::new(0);

/// Records the heap in use just before the guests are planned and built:
/// what the hypervisor itself needed to boot (`memory` shows it; the
/// validator on the host assumes at most `BOOT_HEAP` of xtask's placement).
pub fn note_boot_use() {
    AT_BOOT.store(used(), Ordering::Relaxed);
}

/// The heap that was in use before the guests were built.
pub fn boot_use() -> usize {
    AT_BOOT.load(Ordering::Relaxed)
}
