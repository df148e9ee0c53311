//! The [`Stage2`] structure: table storage, software walks and read-only queries.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use crate::desc::{self, Entry, ENTRIES, LAST_LEVEL, OA_MASK, ROOT_LEVEL};
use crate::Format;
use crate::{GuestPhysAddr, HostPhysAddr, Mapping, MemAttrs, Stage2Error, IPA_LIMIT, PAGE_SIZE};

/// One 4 KiB translation table, as the hardware reads it.
#[repr(C, align(4096))]
pub(crate) struct Table(pub(crate) [u64; ENTRIES]);

/// A live table and the physical address its parent descriptor holds.
struct Slot {
    /// One table; an array of one, because that is what a fallible heap
    /// allocation (`Vec::try_reserve_exact`) turns into without `unsafe`.
    table: Box<[Table; 1]>,
    pa: u64,
}

/// A zeroed table on the heap, or [`Stage2Error::OutOfMemory`] when the heap
/// cannot hold one more (never the allocator's abort).
fn new_table() -> Result<Box<[Table; 1]>, Stage2Error> {
    let mut one: Vec<Table> = Vec::new();
    one.try_reserve_exact(1).map_err(|_| Stage2Error::OutOfMemory)?;
    one.push(Table([0; ENTRIES]));
    Box::<[Table; 1]>::try_from(one.into_boxed_slice()).map_err(|_| Stage2Error::OutOfMemory)
}

/// The stage-2 translation tables of one guest (see the crate documentation
/// for the format and the caller's TLB maintenance duties).
pub struct Stage2 {
    /// Virtual → physical address of a table, fixed at construction.
    phys_of: fn(usize) -> u64,
    /// Table storage; `None` marks a freed slot awaiting reuse.
    slots: Vec<Option<Slot>>,
    /// Freed slot indices.
    free_slots: Vec<usize>,
    /// Physical address of each live table → its slot index.
    by_pa: BTreeMap<u64, usize>,
    /// Slot of the root (level 1) table.
    pub(crate) root: usize,
    /// Physical address of the root table.
    root_pa: u64,
    /// Descriptor format (CPU stage 2, or the SMMU's stage 1).
    pub(crate) format: Format,
}

impl fmt::Debug for Stage2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stage2")
            .field("root_pa", &format_args!("{:#x}", self.root_pa))
            .field("tables", &self.table_count())
            .finish()
    }
}

impl Stage2 {
    /// Creates empty tables (one root table, every IPA unmapped).
    ///
    /// `phys_of` turns the virtual address of a table into the physical
    /// address the hardware walks; the hypervisor, whose heap is
    /// identity-mapped, passes `|v| v as u64`. It is called once per table,
    /// when the table is allocated.
    ///
    /// # Errors
    ///
    /// [`Stage2Error::BadTableAddress`] if the root table's physical address
    /// is not 4 KiB aligned or not below [`crate::PA_LIMIT`].
    pub fn new(phys_of: fn(usize) -> u64) -> Result<Self, Stage2Error> {
        Self::with_format(phys_of, Format::Stage2)
    }

    /// Creates empty tables in `format` ([`Format::SmmuStage1`]: the same
    /// map for a guest's DMA through the SMMU). Errors as [`Stage2::new`].
    pub fn with_format(phys_of: fn(usize) -> u64, format: Format) -> Result<Self, Stage2Error> {
        let mut s2 = Stage2 {
            format,
            phys_of,
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_pa: BTreeMap::new(),
            root: 0,
            root_pa: 0,
        };
        let (root, root_pa) = s2.alloc_table()?;
        s2.root = root;
        s2.root_pa = root_pa;
        Ok(s2)
    }

    /// Physical address of the root table (for [`crate::vttbr`]).
    pub fn root_pa(&self) -> u64 {
        self.root_pa
    }

    /// Number of translation tables in use, root included (each is 4 KiB).
    pub fn table_count(&self) -> usize {
        self.by_pa.len()
    }

    /// The block or page descriptor translating `gpa`, with its level (1:
    /// 1 GiB block, 2: 2 MiB block, 3: 4 KiB page), found by walking the
    /// tables as the hardware does; `None` if `gpa` is unmapped.
    pub fn descriptor(&self, gpa: GuestPhysAddr) -> Option<(u8, u64)> {
        if gpa.0 >= IPA_LIMIT {
            return None;
        }
        let mut t = self.root;
        for level in ROOT_LEVEL..=LAST_LEVEL {
            let d = self.entry(t, desc::index(gpa.0, level)).ok()?;
            match desc::decode(self.format, d, level) {
                Entry::Invalid => return None,
                Entry::Table(pa) => t = self.child(pa).ok()?,
                Entry::Leaf { .. } => return Some((level, d)),
            }
        }
        None
    }

    /// The host physical address and attributes `gpa` translates to, by
    /// walking the tables as the hardware does; `None` if unmapped (the
    /// guest would take a stage-2 translation fault).
    pub fn translate(&self, gpa: GuestPhysAddr) -> Option<(HostPhysAddr, MemAttrs)> {
        let (level, d) = self.descriptor(gpa)?;
        match desc::decode(self.format, d, level) {
            Entry::Leaf { oa, attrs: Some(attrs) } => {
                let offset = gpa.0 & (desc::entry_size(level) - 1);
                Some((HostPhysAddr(oa | offset), attrs))
            }
            _ => None,
        }
    }

    /// Every mapping, in guest address order, with contiguous runs (same
    /// attributes, contiguous in both address spaces) merged into one entry.
    pub fn mappings(&self) -> Vec<Mapping> {
        let mut out = Vec::new();
        self.collect(self.root, ROOT_LEVEL, 0, &mut out);
        out
    }

    /// Appends the leaves of table `t` at `level`, covering IPAs from `base`.
    fn collect(&self, t: usize, level: u8, base: u64, out: &mut Vec<Mapping>) {
        let Ok(table) = self.table(t) else {
            return;
        };
        let size = desc::entry_size(level);
        let mut gpa = base;
        for &d in table.0.iter() {
            match desc::decode(self.format, d, level) {
                Entry::Invalid => {}
                Entry::Table(pa) => {
                    if let Ok(child) = self.child(pa) {
                        if level < LAST_LEVEL {
                            self.collect(child, level + 1, gpa, out);
                        }
                    }
                }
                Entry::Leaf { oa, attrs } => {
                    if let Some(attrs) = attrs {
                        push_merged(out, gpa, oa, size, attrs);
                    }
                }
            }
            gpa = gpa.saturating_add(size);
        }
    }

    /// Allocates a zeroed (all-invalid) table: its slot and physical address.
    pub(crate) fn alloc_table(&mut self) -> Result<(usize, u64), Stage2Error> {
        let table = new_table()?;
        let virt = core::ptr::from_ref::<[Table; 1]>(&table).addr();
        let phys = (self.phys_of)(virt);
        if phys & (PAGE_SIZE - 1) != 0 || phys & !OA_MASK != 0 || self.by_pa.contains_key(&phys) {
            return Err(Stage2Error::BadTableAddress { virt, phys });
        }
        let slot = Some(Slot { table, pa: phys });
        let index = match self.free_slots.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i) {
                    *s = slot;
                }
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.by_pa.insert(phys, index);
        Ok((index, phys))
    }

    /// Frees table `t` (not its children).
    pub(crate) fn free_table(&mut self, t: usize) {
        if t == self.root {
            return;
        }
        if let Some(slot) = self.slots.get_mut(t).and_then(Option::take) {
            self.by_pa.remove(&slot.pa);
            self.free_slots.push(t);
        }
    }

    /// Frees table `t` at `level` and every table below it.
    pub(crate) fn free_subtree(&mut self, t: usize, level: u8) -> Result<(), Stage2Error> {
        if level < LAST_LEVEL {
            for i in 0..ENTRIES {
                if let Entry::Table(pa) = desc::decode(self.format, self.entry(t, i)?, level) {
                    let child = self.child(pa)?;
                    self.free_subtree(child, level + 1)?;
                }
            }
        }
        self.free_table(t);
        Ok(())
    }

    /// Whether every entry of table `t` is invalid.
    pub(crate) fn is_empty(&self, t: usize) -> Result<bool, Stage2Error> {
        Ok(self.table(t)?.0.iter().all(|d| d & 1 == 0))
    }

    /// Table in slot `t`.
    fn table(&self, t: usize) -> Result<&Table, Stage2Error> {
        self.slots.get(t).and_then(Option::as_ref).map(|s| &s.table[0]).ok_or(Stage2Error::Corrupt)
    }

    /// Entry `i` of table `t`.
    pub(crate) fn entry(&self, t: usize, i: usize) -> Result<u64, Stage2Error> {
        self.table(t)?.0.get(i).copied().ok_or(Stage2Error::Corrupt)
    }

    /// Writes entry `i` of table `t`.
    pub(crate) fn set_entry(&mut self, t: usize, i: usize, d: u64) -> Result<(), Stage2Error> {
        let entry = self
            .slots
            .get_mut(t)
            .and_then(Option::as_mut)
            .and_then(|s| s.table[0].0.get_mut(i))
            .ok_or(Stage2Error::Corrupt)?;
        *entry = d;
        Ok(())
    }

    /// Slot of the table at physical address `pa`.
    pub(crate) fn child(&self, pa: u64) -> Result<usize, Stage2Error> {
        self.by_pa.get(&pa).copied().ok_or(Stage2Error::Corrupt)
    }
}

/// Appends a leaf to `out`, extending the last mapping if it continues it.
fn push_merged(out: &mut Vec<Mapping>, gpa: u64, hpa: u64, size: u64, attrs: MemAttrs) {
    if let Some(last) = out.last_mut() {
        let continues = last.attrs == attrs
            && last.gpa.0.checked_add(last.size) == Some(gpa)
            && last.hpa.0.checked_add(last.size) == Some(hpa);
        if continues {
            last.size = last.size.saturating_add(size);
            return;
        }
    }
    out.push(Mapping { gpa: GuestPhysAddr(gpa), hpa: HostPhysAddr(hpa), size, attrs });
}
