//! Host RAM given to guests, as the boot and the shell see it; the
//! allocator and the handles on guest RAM are `platform::hostram`.

pub use crate::platform::hostram::{free_bytes, init, reservations};
