//! Changing the tables: [`Stage2::map`] and [`Stage2::unmap`], with block splitting.

use core::sync::atomic::{fence, Ordering};

use crate::desc::{self, Entry, ENTRIES, LAST_LEVEL, ROOT_LEVEL};
use crate::{
    GuestPhysAddr, HostPhysAddr, Invalidate, MemAttrs, Stage2, Stage2Error, IPA_LIMIT, PAGE_SIZE, PA_LIMIT,
};

impl Stage2 {
    /// Maps `size` bytes of guest physical addresses from `gpa` to host
    /// physical addresses from `hpa` with `attrs`.
    ///
    /// `gpa`, `hpa` and `size` must be 4 KiB aligned, `size` non-zero, the
    /// guest range below [`IPA_LIMIT`] and the host range below [`PA_LIMIT`].
    /// 1 GiB and 2 MiB blocks are used wherever both addresses are aligned to
    /// them and the rest of the range covers them. Only invalid entries
    /// become valid: the caller needs a `DSB ISHST` before the guest uses the
    /// mapping, but no TLB invalidation.
    ///
    /// # Errors
    ///
    /// [`Stage2Error::ZeroSize`], [`Stage2Error::Unaligned`],
    /// [`Stage2Error::OutOfRange`], [`Stage2Error::AlreadyMapped`] (the first
    /// mapped page of the range) or [`Stage2Error::BadTableAddress`]. On any
    /// error the tables are left as they were.
    pub fn map(
        &mut self,
        gpa: GuestPhysAddr,
        hpa: HostPhysAddr,
        size: u64,
        attrs: MemAttrs,
    ) -> Result<(), Stage2Error> {
        let end = check_guest_range(gpa, size)?;
        if hpa.0 & (PAGE_SIZE - 1) != 0 {
            return Err(Stage2Error::Unaligned { what: "host address", value: hpa.0 });
        }
        check_end("host range", hpa.0, size, PA_LIMIT)?;
        if let Some(first) = self.first_mapped(gpa.0, end)? {
            return Err(Stage2Error::AlreadyMapped { gpa: GuestPhysAddr(first) });
        }
        // Both ranges were checked, so the offsets below cannot overflow.
        let mut offset = 0;
        while offset < size {
            let g = gpa.0 + offset;
            let h = hpa.0 + offset;
            let level = block_level(g, h, size - offset);
            let step = desc::entry_size(level);
            if let Err(e) = self.install(g, level, desc::leaf(self.format, level, h, attrs)) {
                // Undo the part mapped so far and any table created for it;
                // the range was entirely unmapped, so this restores it.
                let _ = self.clear(self.root, ROOT_LEVEL, 0, gpa.0, g + step);
                return Err(e);
            }
            offset += step;
        }
        Ok(())
    }

    /// Unmaps `size` bytes of guest physical addresses from `gpa`.
    ///
    /// `gpa` and `size` must be 4 KiB aligned, `size` non-zero and the range
    /// below [`IPA_LIMIT`]. Unmapped pages in the range are fine. A block
    /// partly inside the range is split into a table of smaller blocks or
    /// pages with the same attributes, and only the part inside is removed.
    /// Tables left empty are freed.
    ///
    /// Returns the TLB maintenance the caller must do before the removed
    /// host memory is reused (see the crate documentation).
    ///
    /// # Errors
    ///
    /// [`Stage2Error::ZeroSize`], [`Stage2Error::Unaligned`] or
    /// [`Stage2Error::OutOfRange`] (nothing changed), or
    /// [`Stage2Error::BadTableAddress`] while splitting a block (blocks
    /// already split still translate as before; nothing was unmapped).
    pub fn unmap(&mut self, gpa: GuestPhysAddr, size: u64) -> Result<Invalidate, Stage2Error> {
        let end = check_guest_range(gpa, size)?;
        // Split first, so that no leaf straddles either end of the range and
        // the clearing below allocates nothing and cannot fail half-way.
        let mut changed = self.split_at(gpa.0)?;
        if end < IPA_LIMIT {
            changed |= self.split_at(end)?;
        }
        changed |= self.clear(self.root, ROOT_LEVEL, 0, gpa.0, end)?;
        Ok(if changed { Invalidate::Range { gpa, size } } else { Invalidate::None })
    }

    /// The first mapped address in `[start, end)` (page aligned), if any.
    fn first_mapped(&self, start: u64, end: u64) -> Result<Option<u64>, Stage2Error> {
        let mut pos = start;
        while pos < end {
            let mut t = self.root;
            let mut next = None;
            for level in ROOT_LEVEL..=LAST_LEVEL {
                match desc::decode(self.format, self.entry(t, desc::index(pos, level))?, level) {
                    Entry::Invalid => {
                        let size = desc::entry_size(level);
                        next = Some((pos & !(size - 1)).saturating_add(size));
                        break;
                    }
                    Entry::Table(pa) => t = self.child(pa)?,
                    Entry::Leaf { .. } => return Ok(Some(pos)),
                }
            }
            pos = next.ok_or(Stage2Error::Corrupt)?;
        }
        Ok(None)
    }

    /// Writes leaf descriptor `d` for `gpa` at `level`, creating tables on
    /// the way; the target entry must be invalid.
    fn install(&mut self, gpa: u64, level: u8, d: u64) -> Result<(), Stage2Error> {
        let mut t = self.root;
        for l in ROOT_LEVEL..level {
            let i = desc::index(gpa, l);
            match desc::decode(self.format, self.entry(t, i)?, l) {
                Entry::Table(pa) => t = self.child(pa)?,
                Entry::Invalid => {
                    let (child, pa) = self.alloc_table()?;
                    // The new table is zeroed; order that before linking it.
                    fence(Ordering::Release);
                    self.set_entry(t, i, desc::table(pa))?;
                    t = child;
                }
                Entry::Leaf { .. } => return Err(Stage2Error::AlreadyMapped { gpa: GuestPhysAddr(gpa) }),
            }
        }
        let i = desc::index(gpa, level);
        if self.entry(t, i)? & 1 != 0 {
            return Err(Stage2Error::AlreadyMapped { gpa: GuestPhysAddr(gpa) });
        }
        self.set_entry(t, i, d)
    }

    /// Splits the blocks containing `addr` until none straddles it; returns
    /// whether any block was split.
    fn split_at(&mut self, addr: u64) -> Result<bool, Stage2Error> {
        let mut split = false;
        let mut t = self.root;
        for level in ROOT_LEVEL..=LAST_LEVEL {
            let i = desc::index(addr, level);
            match desc::decode(self.format, self.entry(t, i)?, level) {
                Entry::Invalid => break,
                Entry::Table(pa) => t = self.child(pa)?,
                Entry::Leaf { oa, attrs } => {
                    if addr & (desc::entry_size(level) - 1) == 0 || level >= LAST_LEVEL {
                        break;
                    }
                    let attrs = attrs.ok_or(Stage2Error::Corrupt)?;
                    let next = level + 1;
                    let step = desc::entry_size(next);
                    let (child, pa) = self.alloc_table()?;
                    let mut out = oa;
                    for j in 0..ENTRIES {
                        self.set_entry(child, j, desc::leaf(self.format, next, out, attrs))?;
                        out = out.saturating_add(step);
                    }
                    // Fill the new table completely before linking it.
                    fence(Ordering::Release);
                    self.set_entry(t, i, desc::table(pa))?;
                    split = true;
                    t = child;
                }
            }
        }
        Ok(split)
    }

    /// Removes every leaf of `[start, end)` below table `t` at `level`, which
    /// covers IPAs from `base`; frees tables left empty (except `t` itself).
    /// No leaf may straddle `start` or `end` (see [`Stage2::split_at`]).
    /// Returns whether any valid entry was removed.
    pub(crate) fn clear(
        &mut self,
        t: usize,
        level: u8,
        base: u64,
        start: u64,
        end: u64,
    ) -> Result<bool, Stage2Error> {
        let shift = desc::shift(level);
        let size = desc::entry_size(level);
        let (Some(first), Some(last)) = (start.checked_sub(base), end.checked_sub(base + 1)) else {
            return Err(Stage2Error::Corrupt);
        };
        let (first, last) = ((first >> shift) as usize, (last >> shift) as usize);
        if start >= end || last >= ENTRIES {
            return Err(Stage2Error::Corrupt);
        }
        let mut changed = false;
        for i in first..=last {
            // `i < 512` and the table covers at most the IPA space.
            let e_start = base + ((i as u64) << shift);
            let e_end = e_start + size;
            let whole = start <= e_start && e_end <= end;
            match desc::decode(self.format, self.entry(t, i)?, level) {
                Entry::Invalid => {}
                Entry::Leaf { .. } if whole => {
                    self.set_entry(t, i, 0)?;
                    changed = true;
                }
                Entry::Leaf { .. } => return Err(Stage2Error::Corrupt),
                Entry::Table(pa) => {
                    let child = self.child(pa)?;
                    if whole {
                        self.set_entry(t, i, 0)?;
                        self.free_subtree(child, level + 1)?;
                        changed = true;
                    } else {
                        let (s, e) = (start.max(e_start), end.min(e_end));
                        changed |= self.clear(child, level + 1, e_start, s, e)?;
                        if self.is_empty(child)? {
                            self.set_entry(t, i, 0)?;
                            self.free_table(child);
                        }
                    }
                }
            }
        }
        Ok(changed)
    }

    /// Test helper: the level of every leaf, as `(gpa, level)`, in order.
    #[cfg(test)]
    pub(crate) fn leaf_levels(&self) -> alloc::vec::Vec<(u64, u8)> {
        let mut out = alloc::vec::Vec::new();
        for m in self.mappings() {
            let mut g = m.gpa.0;
            while g < m.gpa.0 + m.size {
                let Some((level, _)) = self.descriptor(GuestPhysAddr(g)) else {
                    break;
                };
                out.push((g, level));
                g += desc::entry_size(level);
            }
        }
        out
    }
}

/// The largest level whose block fits at `gpa`/`hpa` within `remaining`.
fn block_level(gpa: u64, hpa: u64, remaining: u64) -> u8 {
    for level in ROOT_LEVEL..LAST_LEVEL {
        let size = desc::entry_size(level);
        if gpa & (size - 1) == 0 && hpa & (size - 1) == 0 && remaining >= size {
            return level;
        }
    }
    LAST_LEVEL
}

/// Checks a guest range's size and alignment and that it ends within the
/// IPA space; returns its end.
fn check_guest_range(gpa: GuestPhysAddr, size: u64) -> Result<u64, Stage2Error> {
    if size == 0 {
        return Err(Stage2Error::ZeroSize);
    }
    if size & (PAGE_SIZE - 1) != 0 {
        return Err(Stage2Error::Unaligned { what: "size", value: size });
    }
    if gpa.0 & (PAGE_SIZE - 1) != 0 {
        return Err(Stage2Error::Unaligned { what: "guest address", value: gpa.0 });
    }
    check_end("guest range", gpa.0, size, IPA_LIMIT)
}

/// Checks that `[start, start + size)` ends at or below `limit`; returns the end.
fn check_end(what: &'static str, start: u64, size: u64, limit: u64) -> Result<u64, Stage2Error> {
    start.checked_add(size).filter(|&end| end <= limit).ok_or(Stage2Error::OutOfRange {
        what,
        start,
        size,
        limit,
    })
}

/// How many tables (root included) a fresh [`Stage2`] holds after
/// [`Stage2::map`] of each `(gpa, hpa, size)` in `mappings`, which must be
/// valid, non-overlapping mappings (as a validated guest config gives). It
/// follows `map`'s own block choice, so the hypervisor can tell a guest's
/// stage-2 heap cost before it builds anything. Pure arithmetic: no table is
/// allocated, and a 1 GiB region costs a few hundred steps, not one per page.
pub fn tables_for(mappings: &[(GuestPhysAddr, HostPhysAddr, u64)]) -> usize {
    let l2 = desc::entry_size(ROOT_LEVEL);
    let l3 = desc::entry_size(ROOT_LEVEL + 1);
    // Level-2 tables by 1 GiB slot and level-3 tables by 2 MiB slot.
    let mut level2: alloc::vec::Vec<u64> = alloc::vec::Vec::new();
    let mut level3: alloc::vec::Vec<u64> = alloc::vec::Vec::new();
    for &(gpa, hpa, size) in mappings {
        let mut offset = 0u64;
        while offset < size {
            let (g, h) = (gpa.0.saturating_add(offset), hpa.0.saturating_add(offset));
            let level = block_level(g, h, size - offset);
            if level > ROOT_LEVEL {
                level2.push(g / l2);
            }
            let step = if level == LAST_LEVEL {
                level3.push(g / l3);
                // Every page up to the next 2 MiB boundary is a page too.
                (l3 - g % l3).min(size - offset)
            } else {
                desc::entry_size(level)
            };
            offset = offset.saturating_add(step);
        }
    }
    level2.sort_unstable();
    level2.dedup();
    level3.sort_unstable();
    level3.dedup();
    1 + level2.len() + level3.len()
}
