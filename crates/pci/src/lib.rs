//! PCIe support logic for the hypervisor: addresses, config-space access and INTx routing.
//!
//! This crate is pure logic and never touches MMIO. The hypervisor reaches a
//! host function's configuration space through [`ConfigSpace`], which it
//! implements over the ECAM window (offset of a register given by
//! [`Bdf::ecam_offset`]); absent functions read all-ones, as on hardware.
//!
//! - [`Bdf`]: bus/device/function, its requester (stream) ID, `00:02.0` text
//!   form and parser, ECAM offset;
//! - [`ConfigSpace`]: the 32-bit config access trait;
//! - [`header`]: the type-0 header, a function's identity, BAR sizing;
//! - [`enumerate`]: the scan of bus 0;
//! - [`assign`]: placing BARs in the host bridge's windows;
//! - [`virt`]: a guest's virtual host bridge (what its ECAM window shows);
//! - [`intx`]: the standard INTx swizzle and a decoder for a host bridge's
//!   `interrupt-map` / `interrupt-map-mask` cells.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

pub mod assign;
pub mod bdf;
pub mod enumerate;
#[cfg(test)]
mod fake;
pub mod header;
pub mod intx;
pub mod virt;

pub use assign::{assign_all, AssignError, BarAllocator, Placed, Window};
pub use bdf::{Bdf, BdfParseError};
pub use enumerate::{enumerate_bus0, Enumeration, Function};
pub use header::{size_bars, Bar, BarKind, FunctionId};
pub use intx::{swizzle, IntxMap, IntxMapError, Pin};
pub use virt::{VirtualBar, VirtualBridge, VirtualFunction};

/// 32-bit access to PCI configuration space, implemented by the hypervisor
/// over the host's ECAM window (and by fakes in tests).
///
/// `offset` is a byte offset inside the function's 4 KiB space, 4-aligned.
/// A function that does not exist reads `0xffff_ffff` and ignores writes.
pub trait ConfigSpace {
    /// Reads the aligned 32-bit register at `offset` of `bdf`.
    fn read32(&self, bdf: Bdf, offset: u16) -> u32;
    /// Writes the aligned 32-bit register at `offset` of `bdf`.
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32);
}
