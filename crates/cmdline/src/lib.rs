//! Text input for the hypervisor: boot arguments, shell command lines, and the
//! console line editor. Pure logic, tested on the host.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

pub mod bootargs;
pub mod line;
pub mod words;
