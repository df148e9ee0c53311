//! Architecture support. Only AArch64 (ARMv8-A at EL2) exists.

pub mod aarch64;
