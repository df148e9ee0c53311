//! Decoding guest traps (ESR_EL2) and computing exceptions injected into guests.
#![no_std]
#![forbid(unsafe_code)]
