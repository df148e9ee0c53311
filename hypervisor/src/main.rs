//! ferrovisor: a bare-metal ARMv8-A hypervisor that runs at EL2.
//!
//! Design principles:
//! - Only `arch/` and `platform/` contain `unsafe`; each block says why it is
//!   sound. `core/` and `shell/` forbid unsafe code (the compiler enforces
//!   it) and use the safe APIs below them. Where it lives:
//!   - `arch/aarch64`: the boot, vector and world-switch assembly (`boot`,
//!     `vectors`, `guest`: the exit vectors hand the fast path its vCPU
//!     back through the `GuestCpu` trait), FP/SIMD and TLB maintenance
//!     (`guest`), the system registers `aarch64-cpu` lacks (`sysreg`),
//!     interrupt masking and `yield` (`cpu`), ID registers by encoding
//!     (`idregs`), the EL2 table exported to the boot code (`mmu`);
//!   - `platform`: the GIC and console UART over host-DT frames checked
//!     against the EL2 map (`gicv3`, `pl011`, `mmio`), the boot DTB and
//!     bundle as slices (`blobs`), guest RAM handles from the RAM
//!     allocator (`hostram`), the heap area (`heap`) and the linker's
//!     section symbols (`image`).
//!
//!   docs/architecture.md ("Where unsafe lives") says why each holds and
//!   which assembly remains.
//! - A guest can never crash the hypervisor; only a hypervisor bug reaches
//!   the panic handler, which leaves an epitaph and powers off.
//! - Logic that can run on the host lives in `crates/` with unit tests.
#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod arch;
mod core;
mod platform;
mod shell;
