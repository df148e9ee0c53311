//! An ARM PL011 (r1p5) UART model for guests: Linux amba-pl011, earlycon and
//! polling bare-metal drivers.
//!
//! Transmission is instant: every byte written to DR lands in a bounded
//! buffer the hypervisor drains with [`Pl011::take_tx`], so the transmit FIFO
//! always reads as empty. Reception goes through a 16-entry FIFO (LCR_H.FEN
//! set) or a 1-entry holding register, filled by [`Pl011::push_rx`].
//!
//! Not modelled: baud rates (the divisors are stored and read back), modem
//! lines (CTS/DSR/DCD/RI read 0), receive errors (none ever occur), DMA
//! (DMACR is stored only), loopback (CR.LBE is stored only) and IrDA.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::bus::MmioDevice;

/// Size of the register window.
pub const PL011_WINDOW: u64 = ferrovisor_types::platform::PL011_WINDOW;
/// Bytes kept in the transmit buffer before the oldest are dropped.
pub const TX_BUFFER_CAP: usize = 4096;
/// Depth of the receive FIFO when LCR_H.FEN is set.
pub const RX_FIFO_DEPTH: usize = 16;

const DR: u64 = 0x000;
const RSR: u64 = 0x004;
const FR: u64 = 0x018;
const ILPR: u64 = 0x020;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;
const DMACR: u64 = 0x048;
const ID_BASE: u64 = 0xfe0;

/// PeriphID0..3 then PCellID0..3: ARM PL011 r1p5 (AMBA id 0x00341011).
const ID_BYTES: [u32; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// FR: receive FIFO empty.
pub const FR_RXFE: u32 = 1 << 4;
/// FR: transmit FIFO full.
pub const FR_TXFF: u32 = 1 << 5;
/// FR: receive FIFO full.
pub const FR_RXFF: u32 = 1 << 6;
/// FR: transmit FIFO empty.
pub const FR_TXFE: u32 = 1 << 7;

/// LCR_H: FIFOs enabled.
pub const LCR_H_FEN: u32 = 1 << 4;

/// Interrupt bit: receive.
pub const INT_RX: u32 = 1 << 4;
/// Interrupt bit: transmit.
pub const INT_TX: u32 = 1 << 5;
/// Interrupt bit: receive timeout.
pub const INT_RT: u32 = 1 << 6;
/// All eleven interrupt bits (RIM..OE).
pub const INT_ALL: u32 = 0x7ff;

const CR_RESET: u32 = 0x300;
const IFLS_RESET: u32 = 0x12;

/// The emulated PL011. See the module documentation for what it models.
#[derive(Clone, Debug)]
pub struct Pl011 {
    rx: [u8; RX_FIFO_DEPTH],
    rx_head: usize,
    rx_len: usize,
    tx: VecDeque<u8>,
    tx_dropped: u64,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
    bad_accesses: u64,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// A UART in its reset state (CR = 0x300: TX and RX enabled, UART
    /// disabled; FIFOs off; all interrupts masked).
    pub fn new() -> Self {
        Self {
            rx: [0; RX_FIFO_DEPTH],
            rx_head: 0,
            rx_len: 0,
            tx: VecDeque::new(),
            tx_dropped: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            ris: 0,
            dmacr: 0,
            bad_accesses: 0,
        }
    }

    /// Current receive capacity: 16 with FIFOs enabled, else 1.
    fn rx_capacity(&self) -> usize {
        if self.lcr_h & LCR_H_FEN != 0 {
            RX_FIFO_DEPTH
        } else {
            1
        }
    }

    /// Queues a byte received from the outside world. `false` (and the byte
    /// is lost) when the receive FIFO is full.
    pub fn push_rx(&mut self, byte: u8) -> bool {
        if self.rx_len >= self.rx_capacity() {
            return false;
        }
        let slot = (self.rx_head + self.rx_len) % RX_FIFO_DEPTH;
        if let Some(s) = self.rx.get_mut(slot) {
            *s = byte;
        }
        self.rx_len += 1;
        // Like QEMU: receive and timeout interrupts as soon as one byte waits.
        self.ris |= INT_RX | INT_RT;
        true
    }

    /// How many more bytes [`Pl011::push_rx`] would accept now.
    pub fn rx_space(&self) -> usize {
        self.rx_capacity().saturating_sub(self.rx_len)
    }

    /// The bytes the guest transmitted since the last call, oldest first.
    pub fn take_tx(&mut self) -> impl Iterator<Item = u8> + '_ {
        self.tx.drain(..)
    }

    /// Appends the bytes the guest transmitted since the last call to `out`.
    pub fn drain_tx(&mut self, out: &mut Vec<u8>) {
        out.extend(self.tx.drain(..));
    }

    /// Transmitted bytes dropped because the transmit buffer was full
    /// ([`TX_BUFFER_CAP`]) when they were written.
    pub fn tx_dropped(&self) -> u64 {
        self.tx_dropped
    }

    /// Level of the interrupt line: some unmasked interrupt is pending.
    pub fn irq_level(&self) -> bool {
        self.mis() != 0
    }

    /// Accesses to unknown offsets, writes to read-only registers, reads of
    /// write-only registers and accesses of an unusual size.
    pub fn bad_accesses(&self) -> u64 {
        self.bad_accesses
    }

    fn mis(&self) -> u32 {
        self.ris & self.imsc
    }

    fn pop_rx(&mut self) -> u32 {
        if self.rx_len == 0 {
            return 0;
        }
        let byte = self.rx.get(self.rx_head).copied().unwrap_or(0);
        self.rx_head = (self.rx_head + 1) % RX_FIFO_DEPTH;
        self.rx_len -= 1;
        if self.rx_len == 0 {
            self.ris &= !(INT_RX | INT_RT);
        }
        u32::from(byte)
    }

    fn flush_rx(&mut self) {
        self.rx_head = 0;
        self.rx_len = 0;
        self.ris &= !(INT_RX | INT_RT);
    }

    fn transmit(&mut self, byte: u8) {
        if self.tx.len() >= TX_BUFFER_CAP {
            self.tx.pop_front();
            self.tx_dropped = self.tx_dropped.saturating_add(1);
        }
        self.tx.push_back(byte);
        // The byte left at once: the transmit FIFO is below its trigger level.
        self.ris |= INT_TX;
    }

    fn flags(&self) -> u32 {
        let mut fr = FR_TXFE;
        if self.rx_len == 0 {
            fr |= FR_RXFE;
        }
        if self.rx_len >= self.rx_capacity() {
            fr |= FR_RXFF;
        }
        fr
    }

    /// The value of the 32-bit register at word offset `reg`, without side
    /// effects; `None` for an offset that holds no readable register.
    fn peek(&self, reg: u64) -> Option<u32> {
        Some(match reg {
            DR if self.rx_len == 0 => 0,
            DR => self.rx.get(self.rx_head).map_or(0, |&b| u32::from(b)),
            RSR => 0,
            FR => self.flags(),
            ILPR => self.ilpr,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            RIS => self.ris,
            MIS => self.mis(),
            DMACR => self.dmacr,
            ID_BASE..=0xffc => {
                let idx = usize::try_from((reg - ID_BASE) / 4).ok()?;
                ID_BYTES.get(idx).copied()?
            }
            _ => return None,
        })
    }

    /// A 32-bit register read with its side effects.
    fn read_reg(&mut self, reg: u64) -> u32 {
        if reg == DR {
            return self.pop_rx();
        }
        match self.peek(reg) {
            Some(v) => v,
            None => {
                // Unknown offsets and the write-only ICR.
                self.bad_accesses = self.bad_accesses.saturating_add(1);
                0
            }
        }
    }

    /// A 32-bit register write.
    fn write_reg(&mut self, reg: u64, value: u32) {
        match reg {
            DR => self.transmit(value as u8),
            RSR => {} // Clears the error flags; there never are any.
            ILPR => self.ilpr = value & 0xff,
            IBRD => self.ibrd = value & 0xffff,
            FBRD => self.fbrd = value & 0x3f,
            LCR_H => {
                if (self.lcr_h ^ value) & LCR_H_FEN != 0 {
                    // Toggling FIFO mode empties the receive path.
                    self.flush_rx();
                }
                self.lcr_h = value & 0xff;
            }
            CR => self.cr = value & 0xff87,
            IFLS => self.ifls = value & 0x3f,
            IMSC => {
                let value = value & INT_ALL;
                if value & !self.imsc & INT_TX != 0 {
                    // The transmit FIFO is always empty, so unmasking the
                    // transmit interrupt finds it asserted.
                    self.ris |= INT_TX;
                }
                self.imsc = value;
            }
            ICR => self.ris &= !(value & INT_ALL),
            DMACR => self.dmacr = value & 0x7,
            _ => self.bad_accesses = self.bad_accesses.saturating_add(1),
        }
    }

    fn note_size(&mut self, size: u8) {
        if !matches!(size, 1 | 2 | 4) {
            self.bad_accesses = self.bad_accesses.saturating_add(1);
        }
    }
}

/// Bit position and mask of a sub-word access of `size` bytes at `offset`
/// inside its 32-bit word; `None` for a whole-word access.
fn lane(offset: u64, size: u8) -> Option<(u32, u32)> {
    let shift = ((offset & 3) * 8) as u32;
    let mask: u32 = match size {
        1 => 0xff,
        2 if offset & 3 <= 2 => 0xffff,
        _ => return None,
    };
    Some((shift, mask))
}

impl MmioDevice for Pl011 {
    /// Reads the aligned 32-bit register holding `offset`; 1- and 2-byte
    /// accesses return the addressed bytes of it (reading any byte of DR
    /// pops the receive FIFO), every other size the whole word.
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.note_size(size);
        let word = self.read_reg(offset & !3);
        let value = match lane(offset, size) {
            Some((shift, mask)) => (word >> shift) & mask,
            None => word,
        };
        u64::from(value)
    }

    /// Writes the aligned 32-bit register holding `offset`; 1- and 2-byte
    /// accesses replace only the addressed bytes, every other size writes
    /// the low 32 bits of `value` as a whole word.
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.note_size(size);
        let reg = offset & !3;
        let word = match lane(offset, size) {
            Some((shift, mask)) => {
                let old = if reg == DR { 0 } else { self.peek(reg).unwrap_or(0) };
                (old & !(mask << shift)) | (((value as u32) & mask) << shift)
            }
            None => value as u32,
        };
        self.write_reg(reg, word);
    }
}

#[cfg(test)]
mod tests;
