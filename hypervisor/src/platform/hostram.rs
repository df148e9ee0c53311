//! Exclusive handles on ranges of host RAM given to guests.
//!
//! The hypervisor's identity map covers all of RAM, so a range is reachable
//! at its physical address. A [`HostRam`] is created once per range from the
//! RAM allocator (which guarantees nobody else holds the range) and is the
//! only way the hypervisor writes guest memory (loading images, zeroing).

use core::arch::asm;
use ferrovisor_types::HostRegion;

/// Cache line / DC ZVA granule assumed for maintenance loops (the
/// architectural minimum is 16 bytes; 64 is what cores and QEMU use).
const LINE: u64 = 64;

/// A range of host RAM owned by one guest.
#[derive(Debug)]
pub struct HostRam {
    region: HostRegion,
}

/// An offset or length outside the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

impl HostRam {
    /// Takes ownership of `region`.
    ///
    /// # Safety
    /// `region` must be host RAM covered by the EL2 identity map, 64-byte
    /// aligned, and reserved for this handle alone (no hypervisor data, no
    /// other guest, no other `HostRam`).
    pub unsafe fn claim(region: HostRegion) -> Self {
        Self { region }
    }

    /// The host range.
    pub fn region(&self) -> HostRegion {
        self.region
    }

    fn check(&self, offset: u64, len: u64) -> Result<usize, OutOfRange> {
        let end = offset.checked_add(len).ok_or(OutOfRange)?;
        if end > self.region.size {
            return Err(OutOfRange);
        }
        Ok((self.region.base.raw() + offset) as usize)
    }

    /// Copies `bytes` to `offset` in the range.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), OutOfRange> {
        let addr = self.check(offset, bytes.len() as u64)?;
        // SAFETY: the destination lies inside the range (checked), which
        // `claim`'s contract makes exclusively ours and mapped; `bytes` is
        // hypervisor memory, so the two cannot overlap.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
        Ok(())
    }

    /// Zeroes the whole range (DC ZVA, 64 bytes per instruction).
    pub fn zero(&self) {
        let mut addr = self.region.base.raw();
        let end = self.region.end();
        while addr + LINE <= end {
            // SAFETY: `addr` is a line inside the range (loop bounds), which
            // is ours and mapped as normal memory (DC ZVA needs that).
            unsafe { asm!("dc zva, {}", in(reg) addr, options(nostack)) };
            addr += LINE;
        }
        while addr < end {
            // SAFETY: a byte inside the range.
            unsafe { (addr as *mut u8).write_volatile(0) };
            addr += 1;
        }
    }

    /// Cleans `[offset, offset + len)` to the point of coherency, so that a
    /// guest starting with its MMU and caches off sees what was written.
    pub fn clean(&self, offset: u64, len: u64) -> Result<(), OutOfRange> {
        let start = self.check(offset, len)? as u64 & !(LINE - 1);
        let end = self.region.base.raw() + offset + len;
        let mut addr = start;
        while addr < end {
            // SAFETY: cache maintenance by address on our own mapped range;
            // it does not change memory contents.
            unsafe { asm!("dc cvac, {}", in(reg) addr, options(nostack)) };
            addr += LINE;
        }
        // SAFETY: a barrier only orders the maintenance above.
        unsafe { asm!("dsb sy", options(nostack)) };
        Ok(())
    }
}
