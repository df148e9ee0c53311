//! Emulated devices for guests: an MMIO bus of device windows and a PL011 UART model.
//!
//! Every device here is driven by guest register accesses, so no value a
//! guest writes, and no offset or size it uses, may panic: unknown accesses
//! read as zero and are counted.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

pub mod bus;
pub mod dmagate;
pub mod pl011;
pub mod tagged;

pub use bus::{BusError, MmioBus, MmioDevice};
pub use dmagate::{DmaGate, DmaRegister, GateRead, GateWrite};
pub use pl011::Pl011;
pub use tagged::LineTagger;
