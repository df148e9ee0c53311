//! Architecture-independent hypervisor logic: boot sequence, console, logging,
//! interrupts, CPUs, guests. Never names a system register: see `arch`.
//!
//! Safe code only, enforced by the compiler (the lint below, which no
//! item inside may relax); raw pointers, assembly and linker symbols sit
//! behind safe APIs in `arch` and `platform`.

#![forbid(unsafe_code)]

pub mod boot;
pub mod console;
pub mod cpus;
pub mod footprint;
pub mod guests;
pub mod heap;
pub mod host;
pub mod iommu;
pub mod irq;
pub mod logger;
pub mod memory;
pub mod panic;
pub mod passthrough;
pub mod pci;
pub mod power;
pub mod sched;
pub mod ticks;
pub mod vm;
