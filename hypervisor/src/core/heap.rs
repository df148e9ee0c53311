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
