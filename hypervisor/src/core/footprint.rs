//! The hypervisor's own memory footprint, from the linker's section symbols
//! (`platform::image`).

use crate::arch::aarch64::boot::{MAX_CPUS, STACK_SIZE};
use crate::platform::image;

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
    let image::Layout { start, file_end, bss_end, end } = image::layout();
    Footprint {
        image: file_end - start,
        bss: bss_end - file_end,
        stacks: MAX_CPUS * STACK_SIZE,
        heap: super::heap::HEAP_SIZE,
        total: end - start,
        base: start,
    }
}
