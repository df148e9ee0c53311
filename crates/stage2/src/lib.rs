//! Stage-2 translation tables for guests: map, unmap, translate, with block mappings.
//!
//! One [`Stage2`] holds the IPA → PA translation tables of one guest, in the
//! ARMv8-A VMSAv8-64 stage-2 format with a 4 KiB granule. The design is fixed:
//!
//! - **Input (IPA) size 39 bits**: `VTCR_EL2.T0SZ = 25`, the walk starts at
//!   level 1 (`SL0 = 0b01`) with a single 4 KiB root table of 512 entries (no
//!   concatenated root tables). Guest physical addresses run from 0 to
//!   [`IPA_LIMIT`] (512 GiB).
//! - **Output (PA) size 40 bits** (`PS = 0b010`): host physical addresses below
//!   [`PA_LIMIT`] (1 TiB).
//! - Table walks are inner and outer write-back read/write-allocate cacheable
//!   (`IRGN0 = ORGN0 = 0b01`) and inner shareable (`SH0 = 0b11`), so the
//!   tables live in ordinary cacheable memory and need no cache maintenance.
//!   `TG0 = 0b00` (4 KiB), `VS = 0` (8-bit VMIDs), bit 31 is RES1. See
//!   [`VTCR_EL2`] and [`vttbr`].
//! - **Tables are owned heap objects**: each is a 4 KiB-aligned `[u64; 512]`
//!   in a `Box`. The hardware needs their *physical* address, which the
//!   caller supplies as a function at construction ([`Stage2::new`]). The
//!   hypervisor's heap is identity-mapped, so it passes `|v| v as u64`. Each
//!   table's physical address is computed once, when it is allocated, and a
//!   map from physical address to table lets software walks follow table
//!   descriptors exactly as the hardware does. No raw pointer is ever
//!   dereferenced; the crate forbids `unsafe`.
//! - **Mappings use the largest block possible**: a 1 GiB block at level 1 or
//!   a 2 MiB block at level 2 wherever both the IPA and the PA are aligned to
//!   it and the rest of the range covers it, 4 KiB pages at level 3
//!   otherwise. Tables left empty by [`Stage2::unmap`] are freed.
//! - Two kinds of memory ([`MemAttrs`]): guest RAM (Normal, inner/outer
//!   write-back, inner shareable, read/write/execute) and device memory
//!   (Device-nGnRE, read/write, never executable).
//!
//! # TLB maintenance (the caller's job)
//!
//! This crate only writes the tables; it issues no barrier or TLB
//! invalidation (it has no `unsafe` and no assembly).
//!
//! - After [`Stage2::map`] only *invalid* entries have become valid, so no
//!   TLB can hold a stale entry: a `DSB ISHST` before the guest uses the new
//!   mapping is enough.
//! - [`Stage2::unmap`] removes entries and may split a block into a table
//!   (which, while the guest runs, would need break-before-make). It returns
//!   an [`Invalidate`]: for [`Invalidate::Range`] the caller must, with the
//!   guest's VMID in `VTTBR_EL2`, issue `DSB ISHST`, `TLBI IPAS2E1IS` for each
//!   4 KiB page of the range (or one `TLBI VMALLS12E1IS` for large ranges),
//!   `DSB ISH`, `TLBI VMALLE1IS` (combined stage-1+2 entries), `DSB ISH`,
//!   `ISB` — and should do so with the guest's vCPUs stopped, since splitting
//!   a block in place is not break-before-make safe for a running guest.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

mod desc;
mod edit;
mod tables;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use core::fmt;

pub use edit::tables_for;
pub use ferrovisor_types::{GuestPhysAddr, HostPhysAddr};
pub use tables::Stage2;

/// Size of a stage-2 page (the translation granule), 4 KiB.
pub const PAGE_SIZE: u64 = 0x1000;

/// One past the highest guest physical address (39-bit IPA space, 512 GiB).
pub const IPA_LIMIT: u64 = 1 << 39;

/// One past the highest host physical address a mapping may target (40-bit
/// output address space, 1 TiB).
pub const PA_LIMIT: u64 = 1 << 40;

/// The largest VMID usable with [`VTCR_EL2`] (`VS = 0`: 8-bit VMIDs).
pub const MAX_VMID: u16 = 0xff;

/// The `VTCR_EL2` value matching the tables built by this crate.
///
/// `T0SZ = 25` (39-bit IPA), `SL0 = 0b01` (start at level 1), `IRGN0 = ORGN0 =
/// 0b01` (write-back read/write-allocate walks), `SH0 = 0b11` (inner
/// shareable), `TG0 = 0b00` (4 KiB granule), `PS = 0b010` (40-bit PA),
/// `VS = 0` (8-bit VMID), bit 31 RES1. Equals `0x8002_3559`.
pub const VTCR_EL2: u64 = 25 // T0SZ
    | (0b01 << 6) // SL0: start at level 1
    | (0b01 << 8) // IRGN0
    | (0b01 << 10) // ORGN0
    | (0b11 << 12) // SH0
    // TG0 = 0b00 (bits [15:14]): 4 KiB granule
    | (0b010 << 16) // PS: 40 bits
    | (1 << 31); // RES1

/// The `VTTBR_EL2` value for a root table at `root_pa` and a guest's `vmid`.
///
/// The VMID goes in bits \[55:48\]. [`VTCR_EL2`] selects 8-bit VMIDs, so only
/// VMIDs up to [`MAX_VMID`] are distinct: the parameter is a `u16` for the
/// future 16-bit mode, but bits above 7 are dropped (bits \[63:56\] are RES0
/// with 8-bit VMIDs), so callers must allocate VMIDs in `0..=255`. The root
/// address is masked to bits \[39:12\] (root tables are 4 KiB aligned, output
/// addresses 40 bits); `CnP` (bit 0) is left clear.
pub const fn vttbr(root_pa: u64, vmid: u16) -> u64 {
    (((vmid & MAX_VMID) as u64) << 48) | (root_pa & desc::OA_MASK)
}

/// The descriptor format of a set of tables. Both translate the same
/// 39-bit input space with a 4 KiB granule, starting at level 1, into
/// 40-bit output addresses; only the leaf attributes differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The CPU's stage 2 (VTCR_EL2 above): S2AP, MemAttr, XN.
    Stage2,
    /// A stage-1 context of the SMMU (`ferrovisor_smmu::cd`): AttrIndx 0
    /// (Normal write-back) for RAM and 1 (Device-nGnRE) for devices, read
    /// and write at any privilege, non-global (tagged with the context's
    /// ASID), never executable. ferrovisor gives a guest's DMA-capable
    /// devices such tables, mapping exactly the guest's RAM as its stage 2
    /// does (QEMU 7.2's SMMU has no stage 2).
    SmmuStage1,
}

/// Memory type and permissions of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemAttrs {
    /// Guest RAM: Normal memory, inner/outer write-back, inner shareable,
    /// readable, writable and executable.
    Ram,
    /// A device's registers: Device-nGnRE, readable and writable, never
    /// executable.
    Device,
}

impl fmt::Display for MemAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemAttrs::Ram => "ram",
            MemAttrs::Device => "device",
        })
    }
}

/// A contiguous run of guest physical addresses mapped to contiguous host
/// physical addresses with one set of attributes (see [`Stage2::mappings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// First guest physical address of the run.
    pub gpa: GuestPhysAddr,
    /// Host physical address `gpa` translates to.
    pub hpa: HostPhysAddr,
    /// Length of the run in bytes (a multiple of [`PAGE_SIZE`]).
    pub size: u64,
    /// Attributes shared by the whole run.
    pub attrs: MemAttrs,
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GPA {:#x}..{:#x} -> HPA {:#x} ({:#x} bytes, {})",
            self.gpa.0,
            self.gpa.0.saturating_add(self.size),
            self.hpa.0,
            self.size,
            self.attrs
        )
    }
}

/// What TLB maintenance [`Stage2::unmap`] calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidate {
    /// Nothing was mapped in the range and no block was split: no TLB
    /// maintenance is needed.
    None,
    /// Entries were removed or blocks split: the caller must invalidate the
    /// stage-2 TLB entries of this IPA range for the guest's VMID (see the
    /// crate documentation for the sequence).
    Range {
        /// First guest physical address of the range.
        gpa: GuestPhysAddr,
        /// Length of the range in bytes.
        size: u64,
    },
}

/// Why a stage-2 operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage2Error {
    /// An address or size is not a multiple of [`PAGE_SIZE`].
    Unaligned {
        /// Which argument (`"guest address"`, `"host address"`, `"size"`).
        what: &'static str,
        /// The offending value.
        value: u64,
    },
    /// A range goes past the end of its address space.
    OutOfRange {
        /// Which range (`"guest range"` or `"host range"`).
        what: &'static str,
        /// First address of the range.
        start: u64,
        /// Length of the range.
        size: u64,
        /// One past the highest usable address.
        limit: u64,
    },
    /// A page of the range to map is already mapped; nothing was changed.
    AlreadyMapped {
        /// The first mapped guest physical address in the range.
        gpa: GuestPhysAddr,
    },
    /// The size is zero.
    ZeroSize,
    /// The physical-address function given to [`Stage2::new`] returned an
    /// address that is not 4 KiB aligned, not below [`PA_LIMIT`], or already
    /// used by another table. Nothing was changed.
    BadTableAddress {
        /// Virtual address of the new table.
        virt: usize,
        /// The physical address returned for it.
        phys: u64,
    },
    /// A table descriptor points at no table of this structure (an internal
    /// bug; reported rather than panicking).
    Corrupt,
    /// The heap has no room for one more table. Nothing was changed.
    OutOfMemory,
}

impl fmt::Display for Stage2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage2Error::Unaligned { what, value } => {
                write!(f, "{what} {value:#x} is not 4 KiB aligned")
            }
            Stage2Error::OutOfRange { what, start, size, limit } => {
                write!(f, "{what} {start:#x} + {size:#x} goes past the limit {limit:#x}")
            }
            Stage2Error::AlreadyMapped { gpa } => {
                write!(f, "guest address {:#x} is already mapped", gpa.0)
            }
            Stage2Error::ZeroSize => f.write_str("size is zero"),
            Stage2Error::BadTableAddress { virt, phys } => {
                write!(f, "translation table at virtual {virt:#x} has unusable physical address {phys:#x}")
            }
            Stage2Error::Corrupt => f.write_str("stage-2 tables are inconsistent (internal error)"),
            Stage2Error::OutOfMemory => {
                f.write_str("the hypervisor heap has no room for another stage-2 table")
            }
        }
    }
}
