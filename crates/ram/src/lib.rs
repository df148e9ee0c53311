//! Host RAM bookkeeping: reservations and aligned allocations for guest memory.
//!
//! [`RamAllocator`] starts from the host RAM regions of the host device tree
//! and tracks which byte ranges are taken and by whom:
//!
//! - [`RamAllocator::reserve`] carves out an exact range (the hypervisor
//!   image, the host DTB, the boot bundle, identity-mapped guest RAM); it
//!   fails, naming the holder, if any byte of it is already taken;
//! - [`RamAllocator::allocate`] finds an aligned range itself, first fit from
//!   the *highest* addresses downward, so that low RAM — where
//!   identity-mapped guests usually sit — stays free as long as possible;
//! - [`RamAllocator::release`] gives back exactly one earlier reservation or
//!   allocation.
//!
//! Invariants: the free list is sorted, merged (no two free ranges touch) and
//! disjoint from every reservation; free ranges plus reservations cover the
//! RAM exactly; no input makes this crate panic.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

mod allocator;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use alloc::string::String;
use core::fmt;

pub use allocator::RamAllocator;
pub use ferrovisor_types::HostRegion;

/// Smallest allocation alignment (and granule of allocation sizes): 4 KiB.
pub const PAGE_SIZE: u64 = 0x1000;

/// Why a RAM bookkeeping operation was refused. Nothing is changed on error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RamError {
    /// The range is not entirely inside host RAM (or wraps past the end of
    /// the address space).
    OutsideRam {
        /// The requested range.
        region: HostRegion,
    },
    /// Part of the range is already reserved or allocated.
    InUse {
        /// The requested range.
        requested: HostRegion,
        /// The existing reservation it overlaps (the lowest one).
        region: HostRegion,
        /// Who holds `region`.
        owner: String,
    },
    /// No free range can hold the allocation.
    NoSpace {
        /// Requested size in bytes.
        size: u64,
        /// Requested alignment.
        align: u64,
        /// Size of the largest free range.
        largest_free: u64,
    },
    /// An alignment is not a power of two of at least 4 KiB, or a size is
    /// not a multiple of 4 KiB.
    BadAlign {
        /// Which argument (`"alignment"`, `"size"` or `"phase"`).
        what: &'static str,
        /// The offending value.
        value: u64,
    },
    /// The range is not exactly one current reservation or allocation.
    NotReserved {
        /// The range given back.
        region: HostRegion,
    },
    /// The size is zero.
    ZeroSize,
}

/// Formats a region as `[base..end)` in hex.
struct Range<'a>(&'a HostRegion);

impl fmt::Display for Range<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}..{:#x})", self.0.base.0, self.0.end())
    }
}

impl fmt::Display for RamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RamError::OutsideRam { region } => {
                write!(f, "{} is not entirely inside host RAM", Range(region))
            }
            RamError::InUse { requested, region, owner } => {
                write!(f, "{} overlaps {} already held by \"{owner}\"", Range(requested), Range(region))
            }
            RamError::NoSpace { size, align, largest_free } => write!(
                f,
                "no free RAM for {size:#x} bytes aligned to {align:#x} \
                 (largest free range: {largest_free:#x} bytes)"
            ),
            RamError::BadAlign { what, value } => write!(
                f,
                "{what} {value:#x} is invalid: alignments must be powers of two \
                 of at least 0x1000, sizes multiples of 0x1000"
            ),
            RamError::NotReserved { region } => {
                write!(f, "{} is not exactly a current reservation or allocation", Range(region))
            }
            RamError::ZeroSize => f.write_str("size is zero"),
        }
    }
}
