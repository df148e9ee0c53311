//! An MMIO bus: non-overlapping guest-physical windows, each backed by a device.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};
use ferrovisor_types::GuestPhysAddr;

/// A device reached through trapped guest loads and stores.
///
/// `offset` is relative to the start of the device's window and `size` is the
/// access width in bytes as the guest issued it (normally 1, 2, 4 or 8, but a
/// device must cope with any value without panicking).
pub trait MmioDevice {
    /// A guest load of `size` bytes at `offset`; the result is zero-extended.
    fn read(&mut self, offset: u64, size: u8) -> u64;
    /// A guest store of the low `size` bytes of `value` at `offset`.
    fn write(&mut self, offset: u64, size: u8, value: u64);
}

impl<T: MmioDevice + ?Sized> MmioDevice for Box<T> {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        (**self).read(offset, size)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        (**self).write(offset, size, value)
    }
}

/// Why a window could not be added to an [`MmioBus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusError {
    /// The window has size zero.
    ZeroSize {
        /// Requested base.
        base: GuestPhysAddr,
    },
    /// `base + size` does not fit in the 64-bit address space.
    Overflow {
        /// Requested base.
        base: GuestPhysAddr,
        /// Requested size.
        size: u64,
    },
    /// The window shares at least one byte with a window already on the bus.
    Overlap {
        /// Requested base.
        base: GuestPhysAddr,
        /// Requested size.
        size: u64,
        /// Base of the existing window.
        existing_base: GuestPhysAddr,
        /// Size of the existing window.
        existing_size: u64,
    },
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BusError::ZeroSize { base } => write!(f, "MMIO window at {base} has size zero"),
            BusError::Overflow { base, size } => {
                write!(f, "MMIO window at {base} of size {size:#x} runs past the end of the address space")
            }
            BusError::Overlap { base, size, existing_base, existing_size } => write!(
                f,
                "MMIO window at {base} of size {size:#x} overlaps the window at \
                 {existing_base} of size {existing_size:#x}"
            ),
        }
    }
}

/// One window of the bus.
#[derive(Debug)]
struct Window<D> {
    base: u64,
    /// Last byte inside the window (inclusive, so a window may end at 2^64).
    last: u64,
    device: D,
}

/// A set of non-overlapping device windows, looked up by guest physical
/// address.
///
/// Windows are kept sorted by base, so lookups are a binary search; the
/// shared lookup ([`MmioBus::find`]) first tries the window it found last
/// (a guest polling one device, e.g. its UART, hits it every time).
#[derive(Debug)]
pub struct MmioBus<D> {
    windows: Vec<Window<D>>,
    /// Index of the window the last [`MmioBus::find`] found.
    last: AtomicUsize,
}

impl<D> Default for MmioBus<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D> MmioBus<D> {
    /// An empty bus.
    pub const fn new() -> Self {
        Self { windows: Vec::new(), last: AtomicUsize::new(0) }
    }

    /// Adds `device` on the window `[base, base + size)`.
    ///
    /// Refuses a zero size, a window that runs past the end of the address
    /// space and a window overlapping one already present.
    pub fn insert(&mut self, base: GuestPhysAddr, size: u64, device: D) -> Result<(), BusError> {
        if size == 0 {
            return Err(BusError::ZeroSize { base });
        }
        let last = base.raw().checked_add(size - 1).ok_or(BusError::Overflow { base, size })?;
        // First window whose base lies above the new one.
        let idx = self.windows.partition_point(|w| w.base <= base.raw());
        let neighbours = [idx.checked_sub(1), Some(idx)];
        for w in neighbours.into_iter().flatten().filter_map(|i| self.windows.get(i)) {
            if w.base <= last && base.raw() <= w.last {
                return Err(BusError::Overlap {
                    base,
                    size,
                    existing_base: GuestPhysAddr(w.base),
                    existing_size: (w.last - w.base).wrapping_add(1),
                });
            }
        }
        self.windows.insert(idx, Window { base: base.raw(), last, device });
        Ok(())
    }

    /// The device whose window contains `addr`, with the offset of `addr`
    /// inside that window (for devices that lock their own state).
    #[inline]
    pub fn find(&self, addr: GuestPhysAddr) -> Option<(&D, u64)> {
        let a = addr.raw();
        if let Some(w) = self.windows.get(self.last.load(Ordering::Relaxed)) {
            if w.base <= a && a <= w.last {
                return Some((&w.device, a - w.base));
            }
        }
        let idx = self.windows.partition_point(|w| w.base <= a).checked_sub(1)?;
        let w = self.windows.get(idx)?;
        if a > w.last {
            return None;
        }
        self.last.store(idx, Ordering::Relaxed);
        Some((&w.device, a - w.base))
    }

    /// The device whose window contains `addr`, with the offset of `addr`
    /// inside that window.
    pub fn find_mut(&mut self, addr: GuestPhysAddr) -> Option<(&mut D, u64)> {
        let idx = self.windows.partition_point(|w| w.base <= addr.raw()).checked_sub(1)?;
        let w = self.windows.get_mut(idx)?;
        if addr.raw() <= w.last {
            Some((&mut w.device, addr.raw() - w.base))
        } else {
            None
        }
    }

    /// The windows as `(base, size, device)`, in ascending address order.
    ///
    /// A window covering the whole address space reports size 0 (its true
    /// size, 2^64, does not fit).
    pub fn iter(&self) -> impl Iterator<Item = (GuestPhysAddr, u64, &D)> + '_ {
        self.windows.iter().map(|w| (GuestPhysAddr(w.base), (w.last - w.base).wrapping_add(1), &w.device))
    }

    /// Removes the window starting exactly at `base` and returns its device.
    pub fn remove(&mut self, base: GuestPhysAddr) -> Option<D> {
        let idx = self.windows.binary_search_by_key(&base.raw(), |w| w.base).ok()?;
        Some(self.windows.remove(idx).device)
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether the bus has no window.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

impl<D: MmioDevice> MmioBus<D> {
    /// Forwards a guest load to the device at `addr`; `None` if no window
    /// contains it.
    pub fn read(&mut self, addr: GuestPhysAddr, size: u8) -> Option<u64> {
        let (dev, offset) = self.find_mut(addr)?;
        Some(dev.read(offset, size))
    }

    /// Forwards a guest store to the device at `addr`; `false` if no window
    /// contains it.
    pub fn write(&mut self, addr: GuestPhysAddr, size: u8, value: u64) -> bool {
        match self.find_mut(addr) {
            Some((dev, offset)) => {
                dev.write(offset, size, value);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
