//! Placing memory BARs in a host bridge's windows, as firmware would:
//! naturally aligned, each taking at least a 4 KiB page so that no two
//! BARs share a page (stage 2 maps BARs into guests page by page).

use crate::enumerate::Function;
use crate::header::{Bar, BarKind, COMMAND, COMMAND_IO, COMMAND_MEMORY};
use crate::ConfigSpace;
use alloc::vec::Vec;
use core::fmt;

/// The smallest footprint and alignment of a placed BAR.
pub const MIN_FOOTPRINT: u64 = 4096;

/// A window of bus addresses BARs may be placed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Why a BAR could not be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignError {
    /// I/O BARs are not supported.
    IoUnsupported,
    /// The window has no room left for this many bytes (aligned).
    NoSpace {
        /// The BAR's footprint.
        needed: u64,
    },
}

impl fmt::Display for AssignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IoUnsupported => f.write_str("it has an I/O BAR (I/O space is not supported)"),
            Self::NoSpace { needed } => write!(f, "no room for {needed:#x} bytes left in the window"),
        }
    }
}

/// A BAR and where it was placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The BAR.
    pub bar: Bar,
    /// Its bus address.
    pub address: u64,
}

/// Hands out aligned ranges of one 32-bit and one optional 64-bit window,
/// bottom up.
#[derive(Clone, Debug)]
pub struct BarAllocator {
    mem32: (Window, u64),
    mem64: Option<(Window, u64)>,
}

fn take(window: &mut (Window, u64), footprint: u64) -> Option<u64> {
    let (w, next) = window;
    let at = next.checked_next_multiple_of(footprint)?;
    let end = at.checked_add(footprint)?;
    (end <= w.base.checked_add(w.size)?).then(|| {
        *next = end;
        at
    })
}

impl BarAllocator {
    /// An allocator over `mem32` (placed below 4 GiB) and, if any,
    /// `mem64` (for 64-bit BARs).
    pub fn new(mem32: Window, mem64: Option<Window>) -> Self {
        Self { mem32: (mem32, mem32.base), mem64: mem64.map(|w| (w, w.base)) }
    }

    /// The footprint of `bar`: its size, at least a page (a power of two).
    pub fn footprint(bar: &Bar) -> u64 {
        bar.size.max(MIN_FOOTPRINT).checked_next_power_of_two().unwrap_or(u64::MAX)
    }

    /// Places `bar`: 64-bit BARs in the 64-bit window if there is one, all
    /// others (and 64-bit ones without it) in the 32-bit window.
    pub fn place(&mut self, bar: &Bar) -> Result<u64, AssignError> {
        let footprint = Self::footprint(bar);
        let window = match (bar.kind, self.mem64.as_mut()) {
            (BarKind::Io, _) => return Err(AssignError::IoUnsupported),
            (BarKind::Mem64, Some(w)) => w,
            _ => &mut self.mem32,
        };
        let at = take(window, footprint).ok_or(AssignError::NoSpace { needed: footprint })?;
        if bar.kind == BarKind::Mem32 && at.checked_add(footprint).is_none_or(|end| end > 1 << 32) {
            return Err(AssignError::NoSpace { needed: footprint });
        }
        Ok(at)
    }
}

/// Places every BAR of `f` (largest first, to keep alignment holes small),
/// writes them to the function, and switches memory decoding on (bus
/// mastering stays off). Nothing is written if one does not fit.
pub fn assign_all(
    cfg: &mut impl ConfigSpace,
    alloc: &mut BarAllocator,
    f: &Function,
) -> Result<Vec<Placed>, AssignError> {
    let mut order: Vec<&Bar> = f.bars.iter().collect();
    order.sort_by_key(|b| core::cmp::Reverse(b.size));
    let mut trial = alloc.clone();
    let mut placed = Vec::with_capacity(order.len());
    for bar in order {
        placed.push(Placed { bar: *bar, address: trial.place(bar)? });
    }
    placed.sort_by_key(|p| p.bar.index);
    *alloc = trial;
    let command = cfg.read32(f.bdf, COMMAND) & 0xffff;
    cfg.write32(f.bdf, COMMAND, command & !(COMMAND_IO | COMMAND_MEMORY));
    for p in &placed {
        cfg.write32(f.bdf, p.bar.offset(), p.address as u32 | p.bar.type_bits());
        if p.bar.kind == BarKind::Mem64 {
            cfg.write32(f.bdf, p.bar.offset() + 4, (p.address >> 32) as u32);
        }
    }
    cfg.write32(f.bdf, COMMAND, (command & !COMMAND_IO) | COMMAND_MEMORY);
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enumerate::enumerate_bus0;
    use crate::fake::FakeBus;
    use crate::header::COMMAND_BUS_MASTER;
    use crate::Bdf;
    use proptest::prelude::*;

    const MEM32: Window = Window { base: 0x1000_0000, size: 0x2eff_0000 };

    fn bar(index: u8, kind: BarKind, size: u64) -> Bar {
        Bar { index, kind, prefetchable: false, size }
    }

    #[test]
    fn qemu_functions_get_aligned_bars_and_decoding() {
        let mut bus = FakeBus::qemu();
        let found = enumerate_bus0(&mut bus);
        let mut alloc = BarAllocator::new(MEM32, None);
        let edu = assign_all(&mut bus, &mut alloc, &found.functions[0]).unwrap();
        let nvme = assign_all(&mut bus, &mut alloc, &found.functions[1]).unwrap();
        assert_eq!(edu[0].address, 0x1000_0000);
        assert_eq!(nvme[0].address, 0x1010_0000);
        let (e, n) = (Bdf::from_rid(0x10), Bdf::from_rid(0x18));
        assert_eq!(bus.reg(e, 0x10), 0x1000_0000);
        assert_eq!((bus.reg(n, 0x10), bus.reg(n, 0x14)), (0x1010_0004, 0));
        assert_eq!(bus.reg(e, COMMAND) & 0x7, COMMAND_MEMORY, "memory on, bus master off");
        assert_eq!(bus.reg(n, COMMAND) & COMMAND_BUS_MASTER, 0);
    }

    #[test]
    fn small_bars_take_a_page_and_64_bit_ones_go_high() {
        let high = Window { base: 0x80_0000_0000, size: 0x80_0000_0000 };
        let mut alloc = BarAllocator::new(MEM32, Some(high));
        assert_eq!(alloc.place(&bar(0, BarKind::Mem32, 0x100)), Ok(0x1000_0000));
        assert_eq!(alloc.place(&bar(1, BarKind::Mem32, 0x10)), Ok(0x1000_1000));
        assert_eq!(alloc.place(&bar(2, BarKind::Mem64, 0x4000)), Ok(0x80_0000_0000));
        assert_eq!(alloc.place(&bar(3, BarKind::Mem32, 0x10_0000)), Ok(0x1010_0000));
        assert_eq!(alloc.place(&bar(4, BarKind::Io, 0x100)), Err(AssignError::IoUnsupported));
    }

    #[test]
    fn no_space_is_reported_and_nothing_written() {
        let mut bus = FakeBus::qemu();
        let found = enumerate_bus0(&mut bus);
        let mut alloc = BarAllocator::new(Window { base: 0x1000_0000, size: 0x8_0000 }, None);
        assert_eq!(
            assign_all(&mut bus, &mut alloc, &found.functions[0]),
            Err(AssignError::NoSpace { needed: 0x10_0000 })
        );
        assert_eq!(bus.reg(Bdf::from_rid(0x10), 0x10), 0, "BAR untouched");
        assert_eq!(alloc.place(&bar(0, BarKind::Mem32, 0x1000)), Ok(0x1000_0000), "window untouched");
    }

    proptest! {
        #[test]
        fn placed_bars_are_aligned_disjoint_and_inside(sizes in proptest::collection::vec(0u32..24, 1..24)) {
            let window = Window { base: 0x1000_0000, size: 0x1000_0000 };
            let mut alloc = BarAllocator::new(window, None);
            let mut got: Vec<(u64, u64)> = Vec::new();
            for (i, s) in sizes.iter().enumerate() {
                let b = bar((i % 6) as u8, BarKind::Mem32, 16u64 << s);
                if let Ok(at) = alloc.place(&b) {
                    let fp = BarAllocator::footprint(&b);
                    prop_assert_eq!(at % fp, 0);
                    prop_assert!(at >= window.base && at + fp <= window.base + window.size);
                    prop_assert!(got.iter().all(|&(a, f)| at + fp <= a || a + f <= at));
                    got.push((at, fp));
                }
            }
        }
    }
}
