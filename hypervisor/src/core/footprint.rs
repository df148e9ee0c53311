//! The hypervisor's own memory footprint, from the linker's section symbols.

use crate::arch::aarch64::boot::{MAX_CPUS, STACK_SIZE};

unsafe extern "C" {
    static __image_start: u8;
    static __image_file_end: u8;
    static __bss_end: u8;
    static __image_end: u8;
}

/// Sizes in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// The image file (code, read-only data, data).
    pub image: usize,
    /// Zero-initialised data.
    pub bss: usize,
    /// All per-CPU stacks.
    pub stacks: usize,
    /// The heap.
    pub heap: usize,
    /// Everything the hypervisor keeps for itself: image start to image end.
    pub total: usize,
    /// Physical base of the hypervisor.
    pub base: usize,
}

/// Measures the running image.
pub fn measure() -> Footprint {
    let start = (&raw const __image_start) as usize;
    let file_end = (&raw const __image_file_end) as usize;
    let bss_end = (&raw const __bss_end) as usize;
    let end = (&raw const __image_end) as usize;
    Footprint {
        image: file_end - start,
        bss: bss_end - file_end,
        stacks: MAX_CPUS * STACK_SIZE,
        heap: super::heap::HEAP_SIZE,
        total: end - start,
        base: start,
    }
}
