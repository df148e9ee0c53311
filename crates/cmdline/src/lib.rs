//! Console text for the hypervisor: boot arguments, shell command lines, the
//! console line editor, and the output path every CPU prints through. Pure
//! logic, tested on the host.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

pub mod bootargs;
pub mod line;
pub mod output;
pub mod words;
