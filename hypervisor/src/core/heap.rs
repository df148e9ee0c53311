//! The hypervisor heap: a buddy allocator over a fixed NOLOAD section.
//!
//! Its size is part of the footprint the banner reports.

use buddy_system_allocator::LockedHeap;

/// Bytes of heap the hypervisor keeps for itself.
pub const HEAP_SIZE: usize = 4 * 1024 * 1024;

#[repr(C, align(4096))]
struct HeapArea([u8; HEAP_SIZE]);

#[unsafe(link_section = ".heap")]
static mut HEAP_AREA: HeapArea = HeapArea([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Hands the heap area to the allocator. Called once by the boot CPU.
pub fn init() {
    let start = &raw mut HEAP_AREA as usize;
    // SAFETY: HEAP_AREA is used by nothing else, lives forever, and `init`
    // runs once on the boot CPU before any allocation.
    unsafe { HEAP.lock().init(start, HEAP_SIZE) };
}

/// Bytes currently allocated.
pub fn used() -> usize {
    HEAP.lock().stats_alloc_actual()
}

static AT_BOOT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Records the heap in use just before the guests are planned and built:
/// what the hypervisor itself needed to boot (`memory` shows it; the
/// validator on the host assumes at most `BOOT_HEAP` of xtask's placement).
pub fn note_boot_use() {
    AT_BOOT.store(used(), core::sync::atomic::Ordering::Relaxed);
}

/// The heap that was in use before the guests were built.
pub fn boot_use() -> usize {
    AT_BOOT.load(core::sync::atomic::Ordering::Relaxed)
}
