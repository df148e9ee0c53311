//! The hypervisor heap: a buddy allocator over the image's NOLOAD `.heap`
//! section. Its size is part of the footprint the banner reports.

use buddy_system_allocator::LockedHeap;
use core::sync::atomic::{AtomicBool, Ordering};

/// Bytes of heap the hypervisor keeps for itself.
pub const HEAP_SIZE: usize = 4 * 1024 * 1024;

#[repr(C, align(4096))]
struct HeapArea([u8; HEAP_SIZE]);

#[unsafe(link_section = ".heap")]
static mut HEAP_AREA: HeapArea = HeapArea([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Set once the area has been handed to the allocator.
static GIVEN: AtomicBool = AtomicBool::new(false);

/// Hands the heap area to the allocator (the boot CPU, first thing); later
/// calls do nothing.
pub fn init() {
    if GIVEN.swap(true, Ordering::AcqRel) {
        return;
    }
    let start = &raw mut HEAP_AREA as usize;
    // SAFETY: HEAP_AREA is private to this module and nothing else names
    // it; `GIVEN` lets this run once, so the allocator receives the area
    // once and owns it for the rest of the run (a static lives forever).
    unsafe { HEAP.lock().init(start, HEAP_SIZE) };
}

/// Bytes currently allocated.
pub fn used() -> usize {
    HEAP.lock().stats_alloc_actual()
}
