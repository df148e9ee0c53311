//! ARM PL011 UART: the hypervisor's console (transmit and receive).

use super::mmio::MmioWindow;

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
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: forwarded from this function's contract.
        let regs = unsafe { MmioWindow::new(base, 0x1000) };
        Self { regs }
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn put(&self, byte: u8) {
        while self.regs.read(FR) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        self.regs.write(DR, byte as u32);
    }

    /// Sends a string, turning `\n` into `\r\n`.
    pub fn write_str(&self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
    }

    /// Takes one received byte, if any.
    pub fn get(&self) -> Option<u8> {
        if self.regs.read(FR) & FR_RXFE != 0 {
            None
        } else {
            Some((self.regs.read(DR) & 0xff) as u8)
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
