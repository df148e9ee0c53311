//! Host RAM bookkeeping: reservations and aligned allocations for guest memory.
#![no_std]
#![forbid(unsafe_code)]
