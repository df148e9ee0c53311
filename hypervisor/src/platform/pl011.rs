//! ARM PL011 UART: the hypervisor's console (transmit and receive).
//!
//! The console PL011 is shared by all CPUs without a lock: its transmit
//! side is driven by one CPU at a time (the drainer of `core::console`), its
//! receive side under the console's input lock, and its setup registers
//! only at boot. Transmit and receive use separate FIFOs behind DR.

use super::mmio::MmioWindow;
use crate::arch::aarch64::mmu;
use core::sync::atomic::{AtomicUsize, Ordering};
use ferrovisor_config::UartInfo;

/// Where QEMU virt's first PL011 lives: the console until the host DT is
/// parsed.
pub const EARLY_CONSOLE: usize = 0x0900_0000;

static CONSOLE: AtomicUsize = AtomicUsize::new(EARLY_CONSOLE);

/// The console's register window is not in the EL2 map's device memory,
/// or not a whole 4 KiB frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotDeviceMemory;

/// Makes the host DT's console PL011 (`uart`, from `/chosen/stdout-path`)
/// the console, once its register frame is checked to be a 4 KiB frame in
/// the EL2 map's device memory.
pub fn set_console(uart: &UartInfo) -> Result<(), NotDeviceMemory> {
    let base = uart.region.base.raw();
    if !base.is_multiple_of(0x1000) || uart.region.size < 0x1000 || !mmu::is_device_memory(base, 0x1000) {
        return Err(NotDeviceMemory);
    }
    let base = usize::try_from(base).map_err(|_| NotDeviceMemory)?;
    CONSOLE.store(base, Ordering::Release);
    Ok(())
}

/// The console PL011 (QEMU virt's until [`set_console`]).
pub fn console() -> Pl011 {
    let base = CONSOLE.load(Ordering::Acquire);
    // SAFETY: `base` is EARLY_CONSOLE, where QEMU virt's console PL011 sits
    // (the boot code relies on it before the host DT is read), or the host
    // DT's console, which `set_console` checked to be a device frame of the
    // EL2 map. The host DT is trusted (it describes the board), and the
    // config validator never gives the console to a guest, so the
    // hypervisor owns it; its users share it as the module header says.
    unsafe { Pl011::new(base) }
}

const DR: usize = 0x00;
const FR: usize = 0x18;
const IMSC: usize = 0x38;
const ICR: usize = 0x44;
const LCR_H: usize = 0x2c;
const LCR_H_FEN: u32 = 1 << 4;
const LCR_H_WLEN8: u32 = 3 << 5;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;
const INT_RX: u32 = 1 << 4;
const INT_RT: u32 = 1 << 6;

/// A PL011 owned by the hypervisor.
#[derive(Debug)]
pub struct Pl011 {
    regs: MmioWindow,
}

impl Pl011 {
    /// Wraps the UART at `base`.
    ///
    /// # Safety
    /// `base` must be a PL011's 4 KiB register block, mapped at EL2, owned by
    /// the caller.
    const unsafe fn new(base: usize) -> Self {
        // SAFETY: forwarded from this function's contract.
        let regs = unsafe { MmioWindow::new(base, 0x1000) };
        Self { regs }
    }

    /// Sends one byte if the transmit FIFO has room; false if it is full.
    pub fn try_put(&self, byte: u8) -> bool {
        if self.regs.read_pure(FR) & FR_TXFF != 0 {
            return false;
        }
        self.regs.write(DR, byte as u32);
        true
    }

    /// Takes one received byte, if any.
    pub fn get(&self) -> Option<u8> {
        if self.regs.read_pure(FR) & FR_RXFE != 0 {
            None
        } else {
            Some((self.regs.read_with_effects(DR) & 0xff) as u8)
        }
    }

    /// Raises the UART's interrupt when a byte arrives (RX and RX timeout),
    /// with the 16-byte FIFOs on. Bytes already waiting keep their interrupt
    /// pending: only the other sources are cleared.
    pub fn enable_rx_interrupt(&self) {
        self.regs.write(LCR_H, LCR_H_FEN | LCR_H_WLEN8);
        self.regs.write(ICR, 0x7ff & !(INT_RX | INT_RT));
        self.regs.write(IMSC, INT_RX | INT_RT);
    }
}
