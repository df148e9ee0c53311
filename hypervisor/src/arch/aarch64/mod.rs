//! AArch64 EL2: the only code that names system registers or runs assembly.
//!
//! What `core` needs from the architecture, and where it lives:
//! - `boot`: entry, per-CPU stacks, MMU on, then `core::boot::{primary_main,
//!   secondary_main}`; `secondary_entry_addr()` for PSCI CPU_ON.
//! - `cpu`: this CPU's index, MPIDR, interrupt masking, wait-for-interrupt.
//! - `timer`: the counter and the EL2 physical timer (CNTHP).
//! - `psci`: CPU_ON and SYSTEM_OFF through the host firmware's conduit.
//! - `vectors`: the trap frame and exception entry.
//! - `gicv`, `lrbank`: the virtual GIC CPU interface and its list
//!   registers (the vGIC's `LrBank`).
//! - `guest`: the world switch into a vCPU and back (the vCPU is a
//!   `GuestCpu`: its register file and its exit fast path), EL1/FP/stage-2
//!   state.
//! - `mmu`: the hypervisor's own static identity map, and which addresses
//!   it maps as device or normal memory (checked by `platform`).
//! - `sysreg`: the few system registers `aarch64-cpu` has no accessor for;
//!   every other register goes through that crate.

pub mod boot;
pub mod cpu;
pub mod gicv;
pub mod guest;
pub mod idregs;
pub mod lrbank;
pub mod mmu;
pub mod psci;
pub mod sysreg;
pub mod timer;
pub mod vectors;
