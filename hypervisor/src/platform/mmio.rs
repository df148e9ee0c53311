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

/// A page of a passed-through device that the hypervisor reaches on its
/// guest's behalf (the trapped page of intercepted DMA address registers);
/// `None` if it is not in the EL2 device map.
///
/// The caller must be the page's only user in the hypervisor: the
/// validator gives a device page to one guest's pass-through alone, and that
/// pass-through builds one trap for it.
pub fn passthrough_page(base: u64) -> Option<MmioWindow> {
    const PAGE: u64 = 0x1000;
    if !base.is_multiple_of(PAGE) || !crate::arch::aarch64::mmu::is_device_memory(base, PAGE) {
        return None;
    }
    // SAFETY: the page is in the EL2 device map (checked above), and has
    // one user in the hypervisor (the contract above).
    Some(unsafe { MmioWindow::new(base as usize, PAGE as usize) })
}

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

    /// A load of `size` bytes (1, 2, 4 or 8) at byte `offset` with the
    /// access width a guest used, for a window a guest reaches through a
    /// trap (`core::vm::devices::dmaregs`); 0 if out of range, misaligned
    /// or of another width. Whether it has side effects is the device's
    /// business: the guest issued it.
    pub fn read_sized(&self, offset: usize, size: u8) -> u64 {
        let width = usize::from(size);
        if !matches!(size, 1 | 2 | 4 | 8) || !offset.is_multiple_of(width) || offset + width > self.size {
            return 0;
        }
        let at = self.base.cast::<u8>().wrapping_add(offset);
        // SAFETY: in range and naturally aligned per the check above;
        // `new`'s contract makes the address device registers, which take
        // accesses of the width the guest used.
        unsafe {
            match size {
                1 => u64::from(at.read_volatile()),
                2 => u64::from(at.cast::<u16>().read_volatile()),
                4 => u64::from(at.cast::<u32>().read_volatile()),
                _ => at.cast::<u64>().read_volatile(),
            }
        }
    }

    /// A store of the low `size` bytes (1, 2, 4 or 8) of `value` at byte
    /// `offset` (ignored if out of range, misaligned or of another width).
    pub fn write_sized(&self, offset: usize, size: u8, value: u64) {
        let width = usize::from(size);
        if !matches!(size, 1 | 2 | 4 | 8) || !offset.is_multiple_of(width) || offset + width > self.size {
            return;
        }
        let at = self.base.cast::<u8>().wrapping_add(offset);
        // SAFETY: as in `read_sized`.
        unsafe {
            match size {
                1 => at.write_volatile(value as u8),
                2 => at.cast::<u16>().write_volatile(value as u16),
                4 => at.cast::<u32>().write_volatile(value as u32),
                _ => at.cast::<u64>().write_volatile(value),
            }
        }
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
