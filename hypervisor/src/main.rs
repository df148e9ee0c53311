//! ferrovisor: a bare-metal ARMv8-A hypervisor that runs at EL2.
//!
//! Design principles:
//! - Only `arch/` and `platform/` contain `unsafe`; each block says why it is
//!   sound. `core/` and `shell/` are safe code over those hooks.
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
