//! Guest boot: kernel image placement and the generated guest device tree.
#![no_std]
#![forbid(unsafe_code)]
