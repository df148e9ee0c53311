//! Emulated devices for guests: an MMIO bus of device windows and a PL011 UART model.
#![no_std]
#![forbid(unsafe_code)]
