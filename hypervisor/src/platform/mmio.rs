//! A window of 32-bit device registers accessed with volatile loads/stores.
//!
//! Reads come in two kinds, as in `safe-mmio`: [`MmioWindow::read_pure`]
//! for registers whose read changes nothing (status, control), and
//! [`MmioWindow::read_with_effects`] for those whose read does (a UART's
//! data register pops its receive FIFO; interrupt acknowledge registers),
//! so a reader of a driver sees which accesses cannot be repeated or
//! reordered freely. (Why not `safe-mmio` itself: docs/architecture.md,
//! "Where unsafe lives".)

/// A mapped MMIO register window. Accesses are bounds-checked against its size.
#[derive(Debug)]
pub struct MmioWindow {
    base: *mut u32,
    size: usize,
}

// SAFETY: the window is a device address, not Rust-owned memory; the drivers
// that own a window serialise access to it with their own locks.
unsafe impl Send for MmioWindow {}

impl MmioWindow {
    /// Wraps `size` bytes of device registers at `base`.
    ///
    /// # Safety
    /// `base..base + size` must be device registers mapped in the EL2 tables
    /// (identity map), and no other owner may use them in a conflicting way.
    pub const unsafe fn new(base: usize, size: usize) -> Self {
        Self { base: base as *mut u32, size }
    }

    /// Reads the 32-bit register at byte `offset`, one whose read has no
    /// side effect (0 if out of range).
    pub fn read_pure(&self, offset: usize) -> u32 {
        self.load(offset)
    }

    /// Reads the 32-bit register at byte `offset`, one whose read changes
    /// the device's state (0 if out of range).
    pub fn read_with_effects(&self, offset: usize) -> u32 {
        self.load(offset)
    }

    fn load(&self, offset: usize) -> u32 {
        if !offset.is_multiple_of(4) || offset + 4 > self.size {
            return 0;
        }
        // SAFETY: in range and aligned per the check above; `new`'s contract
        // makes the address a valid device register.
        unsafe { self.base.add(offset / 4).read_volatile() }
    }

    /// Writes the 32-bit register at byte `offset` (ignored if out of range).
    pub fn write(&self, offset: usize, value: u32) {
        if !offset.is_multiple_of(4) || offset + 4 > self.size {
            return;
        }
        // SAFETY: as in `load`.
        unsafe { self.base.add(offset / 4).write_volatile(value) }
    }
}
