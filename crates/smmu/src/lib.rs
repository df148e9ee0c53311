//! SMMUv3 data structures, as plain values: what ferrovisor's driver
//! (`hypervisor/src/platform/smmuv3.rs`) writes into the SMMU's registers
//! and memory, and what it reads back. Written against the Arm SMMUv3
//! architecture specification (IHI 0070); no MMIO happens here, so all of
//! it is host-tested.
//!
//! - [`regs`]: register offsets, control bits, and the ID registers decoded
//!   into [`regs::Features`];
//! - [`ste`]: stream table entries (one per stream, i.e. per PCIe
//!   requester ID): abort, bypass, or stage-1 translation through one
//!   context descriptor;
//! - [`cd`]: context descriptors (the stage-1 translation regime: table
//!   base, input size, granule, memory attributes, ASID);
//! - [`cmd`]: command queue entries (configuration and TLB invalidation,
//!   `CMD_SYNC`);
//! - [`event`]: event queue records decoded (translation faults, bad
//!   configuration);
//! - [`queue`]: queue base register values and producer/consumer pointer
//!   arithmetic with the wrap bit.
//!
//! Why stage 1 (docs/security.md, "DMA isolation"): QEMU 7.2's model has no
//! stage 2. ferrovisor gives each guest with DMA-capable devices a stage-1
//! context whose tables translate guest-physical to host-physical exactly
//! as the guest's CPU stage 2 does for its RAM; the guest cannot reach the
//! SMMU, so to the guest this is the stage 2 of its devices.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(test)]
extern crate std;

pub mod cd;
pub mod cmd;
pub mod event;
pub mod queue;
pub mod regs;
pub mod ste;

/// The value of bits `[hi:lo]` of `v`.
pub(crate) const fn field(v: u64, hi: u32, lo: u32) -> u64 {
    (v >> lo) & (u64::MAX >> (63 - (hi - lo)))
}

/// `value` placed at bits `[hi:lo]` (excess high bits dropped).
pub(crate) const fn place(value: u64, hi: u32, lo: u32) -> u64 {
    (value & (u64::MAX >> (63 - (hi - lo)))) << lo
}
