//! Host device drivers: the hardware the hypervisor keeps for itself.
//!
//! Each driver wraps one device's registers behind a safe API. Raw MMIO
//! pointers are created only here, from addresses taken from the host DT.

pub mod gicv3;
pub mod hostram;
pub mod mmio;
pub mod pl011;
