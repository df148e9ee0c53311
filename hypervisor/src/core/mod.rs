//! Architecture-independent hypervisor logic: boot sequence, console, logging,
//! interrupts, CPUs, guests. Never names a system register: see `arch`.

pub mod boot;
pub mod console;
pub mod cpus;
pub mod footprint;
pub mod guests;
pub mod heap;
pub mod host;
pub mod irq;
pub mod logger;
pub mod memory;
pub mod panic;
pub mod passthrough;
pub mod power;
pub mod sched;
pub mod ticks;
pub mod vm;
