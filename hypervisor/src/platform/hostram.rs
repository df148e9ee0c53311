//! Host RAM given to guests: one allocator over the RAM the host DT lists,
//! minus what the hypervisor, the host DTB and the boot bundle occupy, and
//! exclusive handles on the ranges it hands out.
//!
//! The hypervisor's identity map covers all of RAM, so a range is reachable
//! at its physical address. A [`HostRam`] can only be had from the
//! allocator ([`HostRam::reserve`]), which never hands a byte out twice and
//! always keeps the hypervisor image and the boot blobs for itself; it is
//! the only way the hypervisor writes guest memory (loading images,
//! zeroing), and gives its range back when dropped.

use crate::arch::aarch64::mmu;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::arch::asm;
use ferrovisor_ram::RamAllocator;
use ferrovisor_sync::Mutex;
use ferrovisor_types::HostRegion;

/// Cache line / DC ZVA granule assumed for maintenance loops (the
/// architectural minimum is 16 bytes; 64 is what cores and QEMU use).
const LINE: u64 = 64;
/// Granule of a [`HostRam`] range.
const PAGE: u64 = 4096;

static RAM: Mutex<Option<RamAllocator>> = Mutex::new(None);

/// Starts the allocator with host RAM and the hypervisor's own reservations.
///
/// Whatever `reserved` says, the hypervisor image and the boot blobs handed
/// out as slices (`platform::blobs`) are kept out of guests' hands: any part
/// of them still free afterwards is reserved as "hypervisor" (and logged,
/// as the caller should have named it).
#[inline(never)]
pub fn init(ram: &[HostRegion], reserved: &[(HostRegion, &str)]) {
    let mut alloc = RamAllocator::new(ram);
    for (region, owner) in reserved {
        if let Err(e) = alloc.reserve(*region, owner) {
            log::warn!("cannot reserve {owner} at {}: {e}", region.base);
        }
    }
    let image = super::image::layout();
    let image = HostRegion::new(image.start as u64, (image.end - image.start) as u64);
    let [dtb, bundle] = super::blobs::handed_out();
    for keep in [Some(image), dtb, bundle].into_iter().flatten() {
        // Whatever part of it is still free.
        while let Some(part) = alloc.free_regions().iter().find_map(|free| {
            let base = free.base.raw().max(keep.base.raw());
            let end = free.end().min(keep.end());
            (base < end).then(|| HostRegion::new(base, end - base))
        }) {
            log::warn!("hypervisor memory at {} was not reserved; reserving it", part.base);
            if alloc.reserve(part, "hypervisor").is_err() {
                break;
            }
        }
    }
    *RAM.lock() = Some(alloc);
}

/// Every reservation with its holder, in address order (`memory` command).
pub fn reservations() -> Vec<(HostRegion, String)> {
    RAM.lock().as_ref().map_or_else(Vec::new, |a| a.reservations().to_vec())
}

/// Bytes of host RAM not given to anyone.
pub fn free_bytes() -> u64 {
    RAM.lock().as_ref().map_or(0, |a| a.free_bytes())
}

/// A range of host RAM owned by one guest.
#[derive(Debug)]
pub struct HostRam {
    region: HostRegion,
}

/// An offset or length outside the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

impl HostRam {
    /// Takes exactly `region` from the allocator for `owner` (a guest):
    /// whole 4 KiB pages of host RAM in the EL2 map's normal memory, of
    /// which no byte is held by anyone else.
    pub fn reserve(region: HostRegion, owner: &str) -> Result<Self, String> {
        if !region.base.raw().is_multiple_of(PAGE) || !region.size.is_multiple_of(PAGE) {
            return Err("not whole 4 KiB pages".into());
        }
        if !mmu::is_normal_memory(region.base.raw(), region.size) {
            return Err("outside the RAM window the hypervisor maps".into());
        }
        match RAM.lock().as_mut() {
            Some(a) => a.reserve(region, owner).map_err(|e| e.to_string())?,
            None => return Err("RAM allocator not ready".into()),
        }
        Ok(Self { region })
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
        // `reserve` took from the allocator for this handle alone and checked
        // to be mapped normal memory; `bytes` is hypervisor memory (or a
        // boot blob), which the allocator never hands out, so the two
        // cannot overlap.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
        Ok(())
    }

    /// Zeroes the whole range (DC ZVA, 64 bytes per instruction).
    pub fn zero(&self) {
        let mut addr = self.region.base.raw();
        let end = self.region.end();
        while addr + LINE <= end {
            // SAFETY: `addr` is a line inside the range (loop bounds; the
            // range is whole pages, so lines are aligned), which is ours and
            // mapped as normal memory (DC ZVA needs that).
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

impl Drop for HostRam {
    fn drop(&mut self) {
        let region = self.region;
        let result = match RAM.lock().as_mut() {
            Some(a) => a.release(region).map_err(|e| e.to_string()),
            None => Err("RAM allocator not ready".to_string()),
        };
        if let Err(e) = result {
            log::error!("host RAM at {} ({:#x} bytes) not given back: {e}", region.base, region.size);
        }
    }
}
