//! PSCI and SMCCC for guests: call decoding and the per-guest CPU power state machine.
#![no_std]
#![forbid(unsafe_code)]
