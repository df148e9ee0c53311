//! Host hardware and memory the hypervisor keeps for itself, behind safe
//! APIs: the only code besides `arch` with `unsafe`.
//!
//! Each driver wraps one device's registers. Raw MMIO pointers are created
//! only here, from addresses taken from the host DT and checked against the
//! EL2 map; so are the slices over the boot blobs, the heap area and the
//! handles on host RAM given to guests.

pub mod blobs;
pub mod devreset;
pub mod ecam;
pub mod gicv3;
pub mod heap;
pub mod hostram;
pub mod image;
pub mod mmio;
pub mod pl011;
pub mod smmuv3;
