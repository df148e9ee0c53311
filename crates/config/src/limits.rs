//! What the hypervisor can hold, in one place: the counts, sizes and
//! interrupt and address ranges every config is checked against, and
//! [`Hypervisor`], what the running hypervisor occupies (its RAM placement
//! and the heap it has for guests).
//!
//! The validator enforces each limit with the node path and a hint, so that
//! `cargo xtask validate` and the boot say the same thing; the hypervisor
//! takes its own sizes from here (vGIC SPIs, stage-2 input size). Every
//! limit is listed in docs/config.md ("Limits").

use alloc::string::String;
use alloc::vec::Vec;
use ferrovisor_types::HostRegion;

/// Most guests one config may define (each gets a VMID and heap).
pub const MAX_GUESTS: usize = 32;
/// Most memory regions (`memory@...` nodes) in one guest.
pub const MAX_MEMORY_REGIONS: usize = 16;
/// Most pass-through nodes in one guest.
pub const MAX_PASSTHROUGH: usize = 32;
/// Largest config DTB the hypervisor reads (its parsed form lives on the
/// heap).
pub const MAX_CONFIG_DTB: usize = 64 * 1024;
/// Most findings (errors plus warnings) a report keeps; the rest are
/// counted in one last line.
pub const MAX_FINDINGS: usize = 200;

/// Shared peripheral interrupts every guest's virtual GIC implements: as
/// many as QEMU virt's GIC, INTIDs 32 to [`MAX_GUEST_INTID`].
pub const GUEST_SPIS: u32 = 224;
/// The highest guest INTID (the last SPI of the virtual GIC).
pub const MAX_GUEST_INTID: u32 = 32 + GUEST_SPIS - 1;
/// One past the highest guest-physical address stage 2 translates (39-bit
/// input size, 512 GiB).
pub const GUEST_IPA_LIMIT: u64 = ferrovisor_stage2::IPA_LIMIT;

/// Guest RAM of at least this size is placed so that its host address has
/// the same offset in a 2 MiB block as its guest address: its interior then
/// maps with 2 MiB blocks. Smaller regions are placed at 4 KiB granularity
/// and cost no more host RAM than their size.
pub const RAM_BLOCK: u64 = 2 * 1024 * 1024;

/// Heap the hypervisor keeps free for its own run-time needs (guest device
/// trees built at each start, console buffers, shell): never planned for
/// guests.
pub const RUNTIME_HEAP_RESERVE: u64 = 512 * 1024;

/// Heap the hypervisor may use for itself before it builds the guests (host
/// DT and config as parsed, bundle index): the plan assumes this much, so
/// that `cargo xtask validate` and the boot give guests the same heap.
/// Measured: about 25 KiB with the shipped configs (`memory` shows it).
pub const BOOT_HEAP: u64 = 256 * 1024;

/// Heap a guest costs beyond its stage-2 tables: the VM, its virtual GIC,
/// MMIO bus and config (measured on QEMU virt, rounded up; the boot log
/// at debug level compares each guest's real cost with its estimate).
pub const HEAP_PER_GUEST: u64 = 24 * 1024;
/// Heap per vCPU: register file, FP/SIMD state, list-register cache, its
/// share of the virtual GIC (redistributor, SGIs and PPIs).
pub const HEAP_PER_VCPU: u64 = 8 * 1024;
/// Heap per memory region or pass-through node (config, RAM handle, route).
pub const HEAP_PER_NODE: u64 = 1024;
/// Heap per stage-2 table: the 4 KiB table and its bookkeeping.
pub const HEAP_PER_TABLE: u64 = 4096 + 128;
/// Heap the emulated UART costs (model, line buffer, input backlog).
pub const HEAP_PER_VUART: u64 = 8 * 1024;
/// Heap a trapped page of intercepted DMA address registers costs (gate,
/// copy of the guest's RAM ranges, node path).
pub const HEAP_PER_DMA_TRAP: u64 = 1024;

/// What the hypervisor occupies on this board, as the validator needs it.
///
/// The hypervisor fills it in at boot from its own footprint and the boot
/// blobs; `cargo xtask validate` fills it in from the hypervisor ELF and
/// QEMU's placement rules, so both check identity memory and heap use the
/// same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hypervisor {
    /// Host RAM no guest may have, with who holds it: the hypervisor (from
    /// the start of RAM to the end of its image, stacks and heap), the host
    /// DTB, the boot bundle.
    pub reserved: Vec<(HostRegion, String)>,
    /// Heap bytes the guests may use together (free heap before the guests
    /// are built, less [`RUNTIME_HEAP_RESERVE`]).
    pub guest_heap: u64,
}

impl Hypervisor {
    /// The heap the guests may use together, for a heap of `heap_size`
    /// bytes of which `used_at_boot` were in use before the guests: the
    /// heap less [`BOOT_HEAP`] (or the real use, if larger) less
    /// [`RUNTIME_HEAP_RESERVE`].
    pub fn guest_heap_for(heap_size: u64, used_at_boot: u64) -> u64 {
        heap_size.saturating_sub(used_at_boot.max(BOOT_HEAP)).saturating_sub(RUNTIME_HEAP_RESERVE)
    }

    /// A hypervisor that reserves nothing and has `guest_heap` bytes of heap
    /// for guests (host-side tests of rules unrelated to placement).
    pub fn with_heap(guest_heap: u64) -> Self {
        Self { reserved: Vec::new(), guest_heap }
    }
}
