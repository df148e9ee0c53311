//! Stage-2 descriptor encoding and decoding (VMSAv8-64, 4 KiB granule, levels 1-3).

use crate::{Format, MemAttrs};

/// Entries per table.
pub(crate) const ENTRIES: usize = 512;
/// Level of the root table.
pub(crate) const ROOT_LEVEL: u8 = 1;
/// Level of page descriptors.
pub(crate) const LAST_LEVEL: u8 = 3;
/// Output address bits \[39:12\] of a descriptor.
pub(crate) const OA_MASK: u64 = 0x0000_00ff_ffff_f000;

/// Bit 0: the descriptor is valid.
const VALID: u64 = 1 << 0;
/// Bit 1: table (levels 1-2) or page (level 3); clear for a block.
const TABLE_OR_PAGE: u64 = 1 << 1;
/// MemAttr\[5:2\] for Normal, outer and inner write-back.
const MEMATTR_NORMAL_WB: u64 = 0b1111 << 2;
/// MemAttr\[5:2\] for Device-nGnRE.
const MEMATTR_DEVICE_NGNRE: u64 = 0b0001 << 2;
/// S2AP\[7:6\]: read/write.
const S2AP_RW: u64 = 0b11 << 6;
/// SH\[9:8\]: inner shareable.
const SH_INNER: u64 = 0b11 << 8;
/// Access flag, bit 10 (set, so no access-flag faults).
const AF: u64 = 1 << 10;
/// XN\[54:53\] = 0b10: never executable at EL1 or EL0.
const XN_NEVER: u64 = 0b10 << 53;
/// Every attribute bit of a block or page: lower \[11:2\] and upper \[63:50\].
const ATTR_MASK: u64 = 0xfffc_0000_0000_0ffc;

/// Stage-1 AttrIndx\[4:2\] of MAIR entry 1 (Device-nGnRE in the SMMU
/// contexts' MAIR; entry 0, Normal write-back, is AttrIndx 0).
const S1_ATTRINDX_DEVICE: u64 = 1 << 2;
/// Stage-1 AP\[7:6\] = 0b01: read/write, at any privilege.
const S1AP_RW_ANY: u64 = 0b01 << 6;
/// Stage-1 nG, bit 11: the entry belongs to its context's ASID.
const S1_NG: u64 = 1 << 11;
/// Stage-1 PXN (bit 53) and UXN (bit 54): never executable.
const S1_XN: u64 = 0b11 << 53;

/// Attribute bits of a block or page descriptor for `attrs`.
pub(crate) const fn attr_bits(format: Format, attrs: MemAttrs) -> u64 {
    match (format, attrs) {
        (Format::Stage2, MemAttrs::Ram) => MEMATTR_NORMAL_WB | S2AP_RW | SH_INNER | AF,
        (Format::Stage2, MemAttrs::Device) => MEMATTR_DEVICE_NGNRE | S2AP_RW | AF | XN_NEVER,
        (Format::SmmuStage1, MemAttrs::Ram) => S1AP_RW_ANY | SH_INNER | AF | S1_NG | S1_XN,
        (Format::SmmuStage1, MemAttrs::Device) => S1_ATTRINDX_DEVICE | S1AP_RW_ANY | AF | S1_NG | S1_XN,
    }
}

/// Bit position of the lowest address bit translated at `level`.
pub(crate) const fn shift(level: u8) -> u32 {
    match level {
        1 => 30,
        2 => 21,
        _ => 12,
    }
}

/// Bytes covered by one entry at `level` (1 GiB, 2 MiB, 4 KiB).
pub(crate) const fn entry_size(level: u8) -> u64 {
    1 << shift(level)
}

/// Index of the entry translating `addr` in its table at `level`.
pub(crate) const fn index(addr: u64, level: u8) -> usize {
    ((addr >> shift(level)) & (ENTRIES as u64 - 1)) as usize
}

/// A descriptor as the hardware interprets it at a given level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Translation fault.
    Invalid,
    /// Next-level table at this physical address.
    Table(u64),
    /// Block (levels 1-2) or page (level 3).
    Leaf {
        /// Output address of the first byte of the block or page.
        oa: u64,
        /// The attributes, if they are one of the two sets this crate writes.
        attrs: Option<MemAttrs>,
    },
}

/// Decodes `desc` found at `level` of tables in `format`.
pub(crate) const fn decode(format: Format, desc: u64, level: u8) -> Entry {
    if desc & VALID == 0 {
        return Entry::Invalid;
    }
    let table_or_page = desc & TABLE_OR_PAGE != 0;
    if level < LAST_LEVEL && table_or_page {
        return Entry::Table(desc & OA_MASK);
    }
    if level >= LAST_LEVEL && !table_or_page {
        // 0b01 at level 3 is reserved: the hardware faults on it.
        return Entry::Invalid;
    }
    let bits = desc & ATTR_MASK;
    let attrs = if bits == attr_bits(format, MemAttrs::Ram) {
        Some(MemAttrs::Ram)
    } else if bits == attr_bits(format, MemAttrs::Device) {
        Some(MemAttrs::Device)
    } else {
        None
    };
    Entry::Leaf { oa: desc & OA_MASK & !(entry_size(level) - 1), attrs }
}

/// A block (levels 1-2) or page (level 3) descriptor.
pub(crate) const fn leaf(format: Format, level: u8, oa: u64, attrs: MemAttrs) -> u64 {
    let kind = if level >= LAST_LEVEL { VALID | TABLE_OR_PAGE } else { VALID };
    (oa & OA_MASK) | attr_bits(format, attrs) | kind
}

/// A table descriptor pointing at the table at `pa`.
pub(crate) const fn table(pa: u64) -> u64 {
    (pa & OA_MASK) | VALID | TABLE_OR_PAGE
}
