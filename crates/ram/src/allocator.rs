//! The [`RamAllocator`]: a sorted, merged free list plus named reservations.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use crate::{HostRegion, RamError, PAGE_SIZE};

/// Host RAM bookkeeping: which ranges are free, which are reserved or
/// allocated and by whom (see the crate documentation).
#[derive(Debug, Clone)]
pub struct RamAllocator {
    /// Host RAM, sorted and merged.
    ram: Vec<HostRegion>,
    /// Free ranges, sorted by base, merged, non-empty.
    free: Vec<HostRegion>,
    /// Reservations and allocations with their owners, sorted by base.
    reserved: Vec<(HostRegion, String)>,
}

impl RamAllocator {
    /// Starts with every byte of `ram` free. The regions (host RAM from the
    /// DT) may come in any order and may overlap or touch: they are sorted
    /// and merged; empty regions are ignored and a region running past the
    /// end of the address space is cut at `u64::MAX`.
    pub fn new(ram: &[HostRegion]) -> Self {
        let mut sorted: Vec<HostRegion> = ram
            .iter()
            .filter(|r| r.size > 0)
            .map(|r| HostRegion::new(r.base.0, r.end() - r.base.0))
            .filter(|r| r.size > 0)
            .collect();
        sorted.sort_by_key(|r| r.base);
        let mut merged: Vec<HostRegion> = Vec::with_capacity(sorted.len());
        for r in sorted {
            match merged.last_mut() {
                Some(last) if r.base.0 <= last.end() => {
                    let end = last.end().max(r.end());
                    last.size = end - last.base.0;
                }
                _ => merged.push(r),
            }
        }
        RamAllocator { free: merged.clone(), ram: merged, reserved: Vec::new() }
    }

    /// Marks exactly `region` as held by `owner` (the hypervisor image, the
    /// host DTB, the boot bundle, identity-mapped guest RAM...). Any byte
    /// granularity is accepted.
    ///
    /// # Errors
    ///
    /// [`RamError::ZeroSize`]; [`RamError::OutsideRam`] if the range is not
    /// entirely inside one RAM region; [`RamError::InUse`] with the holder's
    /// range and name if any byte is already reserved or allocated.
    pub fn reserve(&mut self, region: HostRegion, owner: &str) -> Result<(), RamError> {
        if region.size == 0 {
            return Err(RamError::ZeroSize);
        }
        let Some(end) = region.base.0.checked_add(region.size) else {
            return Err(RamError::OutsideRam { region });
        };
        let inside = self.ram.iter().any(|r| r.base.0 <= region.base.0 && end <= r.end());
        if !inside {
            return Err(RamError::OutsideRam { region });
        }
        if let Some((held, holder)) = self.reserved.iter().find(|(r, _)| r.overlaps(&region)) {
            return Err(RamError::InUse { requested: region, region: *held, owner: holder.clone() });
        }
        if !self.carve(region) {
            // Unreachable while free + reserved == RAM; refuse rather than
            // record a reservation the free list does not agree with.
            return Err(RamError::OutsideRam { region });
        }
        self.record(region, owner);
        Ok(())
    }

    /// Finds and reserves `size` bytes aligned to `align` for `owner`: the
    /// highest suitable range of the highest free range that can hold it
    /// (first fit from the top of RAM downward).
    ///
    /// # Errors
    ///
    /// As [`RamAllocator::allocate_congruent`].
    pub fn allocate(&mut self, size: u64, align: u64, owner: &str) -> Result<HostRegion, RamError> {
        self.allocate_congruent(size, align, 0, owner)
    }

    /// Like [`RamAllocator::allocate`], but the base is congruent to `phase`
    /// modulo `align` (`base % align == phase % align`) instead of aligned:
    /// guest RAM gets the same offset in its 2 MiB block on both sides of
    /// stage 2, so that the interior of the region maps with blocks whatever
    /// its guest address.
    ///
    /// # Errors
    ///
    /// [`RamError::ZeroSize`]; [`RamError::BadAlign`] if `align` is not a
    /// power of two of at least 4 KiB, or `size` or `phase` not a multiple of
    /// 4 KiB; [`RamError::NoSpace`] if no free range can hold it.
    pub fn allocate_congruent(
        &mut self,
        size: u64,
        align: u64,
        phase: u64,
        owner: &str,
    ) -> Result<HostRegion, RamError> {
        if size == 0 {
            return Err(RamError::ZeroSize);
        }
        if !align.is_power_of_two() || align < PAGE_SIZE {
            return Err(RamError::BadAlign { what: "alignment", value: align });
        }
        if !size.is_multiple_of(PAGE_SIZE) {
            return Err(RamError::BadAlign { what: "size", value: size });
        }
        if !phase.is_multiple_of(PAGE_SIZE) {
            return Err(RamError::BadAlign { what: "phase", value: phase });
        }
        let phase = phase & (align - 1);
        let found = self.free.iter().rev().find_map(|f| {
            let top = f.end().checked_sub(size)?;
            // The highest base <= top with base % align == phase.
            let base = top.checked_sub(phase)? & !(align - 1);
            let base = base.checked_add(phase)?;
            (base >= f.base.0).then_some(HostRegion::new(base, size))
        });
        let Some(region) = found else {
            return Err(RamError::NoSpace {
                size,
                align,
                largest_free: self.free.iter().map(|f| f.size).max().unwrap_or(0),
            });
        };
        if !self.carve(region) {
            return Err(RamError::NoSpace { size, align, largest_free: 0 });
        }
        self.record(region, owner);
        Ok(region)
    }

    /// Gives back `region`, which must be exactly one current reservation or
    /// allocation; its bytes become free again, merged with free neighbours.
    ///
    /// # Errors
    ///
    /// [`RamError::NotReserved`] if `region` is not exactly a reservation
    /// (a part or a superset of one is refused too).
    pub fn release(&mut self, region: HostRegion) -> Result<(), RamError> {
        let Some(pos) = self.reserved.iter().position(|(r, _)| *r == region) else {
            return Err(RamError::NotReserved { region });
        };
        self.reserved.remove(pos);
        self.insert_free(region);
        Ok(())
    }

    /// Total free bytes.
    pub fn free_bytes(&self) -> u64 {
        self.free.iter().fold(0, |sum, f| sum.saturating_add(f.size))
    }

    /// Every reservation and allocation with its owner, sorted by address.
    pub fn reservations(&self) -> &[(HostRegion, String)] {
        &self.reserved
    }

    /// The free ranges, sorted by address, merged.
    pub fn free_regions(&self) -> &[HostRegion] {
        &self.free
    }

    /// Host RAM as given to [`RamAllocator::new`], sorted and merged.
    pub fn ram(&self) -> &[HostRegion] {
        &self.ram
    }

    /// The owner of the reservation containing `addr`, if any.
    pub fn owner_of(&self, addr: u64) -> Option<&str> {
        self.reserved.iter().find(|(r, _)| r.contains(addr)).map(|(_, o)| o.as_str())
    }

    /// Removes `region` from the free range containing it entirely; returns
    /// false (changing nothing) if no free range contains it.
    fn carve(&mut self, region: HostRegion) -> bool {
        let end = region.end();
        let Some(i) = self.free.iter().position(|f| f.base.0 <= region.base.0 && end <= f.end()) else {
            return false;
        };
        let Some(&f) = self.free.get(i) else {
            return false;
        };
        let left = HostRegion::new(f.base.0, region.base.0 - f.base.0);
        let right = HostRegion::new(end, f.end() - end);
        let pieces = [left, right].into_iter().filter(|p| p.size > 0);
        self.free.splice(i..=i, pieces);
        true
    }

    /// Records a reservation, keeping the list sorted by base.
    fn record(&mut self, region: HostRegion, owner: &str) {
        let at = self.reserved.partition_point(|(r, _)| r.base < region.base);
        self.reserved.insert(at, (region, owner.to_owned()));
    }

    /// Returns `region` (disjoint from every free range) to the free list,
    /// merging it with touching neighbours.
    fn insert_free(&mut self, region: HostRegion) {
        let at = self.free.partition_point(|f| f.base < region.base);
        let mut merged = region;
        let mut from = at;
        let mut to = at;
        if let Some(prev) = at.checked_sub(1).and_then(|p| self.free.get(p)) {
            if prev.end() == merged.base.0 {
                merged = HostRegion::new(prev.base.0, prev.size.saturating_add(merged.size));
                from = at - 1;
            }
        }
        if let Some(next) = self.free.get(at) {
            if merged.end() == next.base.0 {
                merged.size = merged.size.saturating_add(next.size);
                to = at + 1;
            }
        }
        self.free.splice(from..to, [merged]);
    }
}
