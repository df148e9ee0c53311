//! The hypervisor's own EL2 stage-1 translation: a static identity map.
//!
//! One level-1 table of 1 GiB blocks covers a 39-bit address space (512 GiB):
//! the first GiB (flash, GIC, UART and other devices on QEMU virt) and
//! everything from 256 GiB up (high PCIe, high redistributors) are
//! Device-nGnRE and never executable; 1 GiB to 256 GiB, where virt places RAM,
//! is normal write-back memory. The table is a constant in .rodata, so the MMU
//! can be switched on before any Rust code runs. Guests never see it: they run
//! under their own stage-2 tables.

/// MAIR_EL2: attribute 0 = Device-nGnRE, attribute 1 = Normal WB RW-allocate.
pub const MAIR_EL2: u64 = 0x04 | (0xff << 8);

/// TCR_EL2: T0SZ=25 (39-bit VA), WB-WA inner/outer, inner shareable, 4 KiB
/// granule, 40-bit PA, RES1 bits 31 and 23.
pub const TCR_EL2: u64 = (1 << 31) | (1 << 23) | (2 << 16) | (3 << 12) | (1 << 10) | (1 << 8) | 25;

/// SCTLR_EL2: RES1 bits, MMU, D-cache, SP alignment check, I-cache.
pub const SCTLR_EL2: u64 = 0x30C5_0830 | 1 | (1 << 2) | (1 << 3) | (1 << 12);

const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
const INNER_SHAREABLE: u64 = 3 << 8;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const XN: u64 = 1 << 54;
const GIB: u64 = 1 << 30;

/// First and one-past-last 1 GiB block mapped as normal memory.
const NORMAL_BLOCKS: core::ops::Range<usize> = 1..256;

const fn block(index: usize) -> u64 {
    let addr = index as u64 * GIB;
    if index >= NORMAL_BLOCKS.start && index < NORMAL_BLOCKS.end {
        addr | BLOCK | AF | INNER_SHAREABLE | ATTR_NORMAL
    } else {
        addr | BLOCK | AF | ATTR_DEVICE | XN
    }
}

/// A translation table: 512 descriptors, 4 KiB aligned.
#[repr(C, align(4096))]
pub struct Table(pub [u64; 512]);

const fn build() -> Table {
    let mut entries = [0u64; 512];
    let mut i = 0;
    while i < 512 {
        entries[i] = block(i);
        i += 1;
    }
    Table(entries)
}

/// The level-1 table loaded into TTBR0_EL2 by the boot code.
#[unsafe(no_mangle)]
pub static EL2_TABLES: Table = build();

/// Whether `[base, base + size)` is non-empty and lies in the part of the
/// map that is normal write-back memory (where RAM must be for the
/// hypervisor to read blobs and write guest RAM through it).
pub const fn is_normal_memory(base: u64, size: u64) -> bool {
    let Some(end) = base.checked_add(size) else { return false };
    size > 0 && base >= NORMAL_BLOCKS.start as u64 * GIB && end <= NORMAL_BLOCKS.end as u64 * GIB
}

/// Whether `[base, base + size)` is non-empty, mapped (inside the 39-bit
/// range) and Device-nGnRE: where device registers must be for the
/// hypervisor's MMIO accesses.
pub const fn is_device_memory(base: u64, size: u64) -> bool {
    let Some(end) = base.checked_add(size) else { return false };
    let mapped_end = 512 * GIB;
    let low = end <= NORMAL_BLOCKS.start as u64 * GIB;
    let high = base >= NORMAL_BLOCKS.end as u64 * GIB && end <= mapped_end;
    size > 0 && (low || high)
}
