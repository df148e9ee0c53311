//! Interception of a passed-through device's DMA address registers, for a
//! device with no IOMMU in front of it (docs/security.md, "Intercepted DMA
//! address registers").
//!
//! The page holding the registers is trapped; every access to it that does
//! not touch a DMA address register goes to the device unchanged
//! ([`GateRead::Through`], [`GateWrite::Through`]). A DMA address is a pair
//! of 32-bit registers (low and high half). The gate keeps what the guest
//! wrote (`pending`) and what the device holds (`committed`, as the guest
//! wrote it): after each write to either half, the whole address is checked
//! against the guest's RAM (the range `[address, address + length)` must lie
//! in one RAM region) and translated to the host address, and only then are
//! both halves written to the device. An address outside the guest's RAM
//! is refused: the device keeps its last good address. Reads of a DMA
//! register return the committed value, so a guest can tell that a write was
//! refused.
//!
//! Accesses to the page outside the device's own registers (a neighbour
//! device sharing the page) are dropped ([`GateRead::Outside`],
//! [`GateWrite::Outside`]): their DMA registers are not checked, so the
//! guest does not reach them.
//!
//! A driver that writes the low half first while the high half still holds
//! an older value may see that half-written address refused; the pair
//! reaches the device when the high half completes it.

use alloc::vec::Vec;

/// One 64-bit DMA address register pair of a device, offsets from the base
/// of the trapped page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaRegister {
    /// Offset of the low 32 bits (4-aligned).
    pub low: u64,
    /// Offset of the high 32 bits (4-aligned).
    pub high: u64,
    /// Bytes the device may access from the address: the whole range must
    /// be guest RAM.
    pub length: u64,
}

impl DmaRegister {
    fn touches(&self, offset: u64, size: u8) -> bool {
        let end = offset.saturating_add(u64::from(size));
        [self.low, self.high].iter().any(|&r| offset < r.saturating_add(4) && r < end)
    }
}

/// What to do with a trapped read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateRead {
    /// Not a DMA register: read the device.
    Through,
    /// Outside the device's registers: reads as 0, the device untouched.
    Outside,
    /// A DMA register: this value (the committed address as the guest
    /// wrote it, or 0 for an access that covers only part of a register).
    Value(u64),
}

/// What to do with a trapped write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateWrite {
    /// Not a DMA register: write the device as the guest asked.
    Through,
    /// Outside the device's registers: dropped.
    Outside,
    /// The address is in the guest's RAM: write these host-address halves
    /// to the device, low first, as `(offset, value)`.
    Commit {
        /// The low register and the low half of the host address.
        low: (u64, u32),
        /// The high register and the high half.
        high: (u64, u32),
    },
    /// The guest cleared the register (address 0): nothing reaches the
    /// device, which keeps its last good address.
    Cleared,
    /// The address is outside the guest's RAM: nothing reaches the device.
    Refused {
        /// Index of the register pair.
        register: usize,
        /// The refused guest address.
        address: u64,
    },
    /// A write covering only part of a register, or straddling two: ignored.
    Malformed {
        /// Index of the register pair.
        register: usize,
    },
}

/// The interception state of one device's DMA address registers.
#[derive(Clone, Debug)]
pub struct DmaGate {
    registers: Vec<DmaRegister>,
    /// The device's own registers in the page: `[start, end)`.
    window: (u64, u64),
    /// The address each pair holds as the guest last wrote it.
    pending: Vec<u64>,
    /// The address each pair holds in the device, as the guest wrote it.
    committed: Vec<u64>,
}

impl DmaGate {
    /// A gate for `registers`, all holding 0, of a device whose registers
    /// are `[window.0, window.1)` of the page.
    pub fn new(registers: Vec<DmaRegister>, window: (u64, u64)) -> Self {
        let n = registers.len();
        Self { registers, window, pending: alloc::vec![0; n], committed: alloc::vec![0; n] }
    }

    fn outside(&self, offset: u64, size: u8) -> bool {
        offset < self.window.0 || offset.saturating_add(u64::from(size)) > self.window.1
    }

    /// The register pairs.
    pub fn registers(&self) -> &[DmaRegister] {
        &self.registers
    }

    /// Forgets what the guest wrote (it restarts).
    pub fn reset(&mut self) {
        self.pending.iter_mut().chain(self.committed.iter_mut()).for_each(|v| *v = 0);
    }

    fn find(&self, offset: u64, size: u8) -> Option<usize> {
        self.registers.iter().position(|r| r.touches(offset, size))
    }

    /// A guest load of `size` bytes at `offset`.
    pub fn read(&self, offset: u64, size: u8) -> GateRead {
        if self.outside(offset, size) {
            return GateRead::Outside;
        }
        let Some(i) = self.find(offset, size) else { return GateRead::Through };
        let (Some(r), Some(&value)) = (self.registers.get(i), self.committed.get(i)) else {
            return GateRead::Value(0);
        };
        GateRead::Value(match (size, offset) {
            (4, o) if o == r.low => value & 0xffff_ffff,
            (4, o) if o == r.high => value >> 32,
            (8, o) if o == r.low && r.high == r.low + 4 => value,
            _ => 0,
        })
    }

    /// A guest store of the low `size` bytes of `value` at `offset`.
    /// `translate(address, length)` gives the host address of a guest RAM
    /// range, or `None` when the range is not all in one RAM region.
    pub fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        translate: impl Fn(u64, u64) -> Option<u64>,
    ) -> GateWrite {
        if self.outside(offset, size) {
            return GateWrite::Outside;
        }
        let Some(i) = self.find(offset, size) else { return GateWrite::Through };
        let (Some(r), Some(pending)) = (self.registers.get(i).copied(), self.pending.get_mut(i)) else {
            return GateWrite::Malformed { register: i };
        };
        let low32 = value & 0xffff_ffff;
        *pending = match (size, offset) {
            (4, o) if o == r.low => (*pending & !0xffff_ffff) | low32,
            (4, o) if o == r.high => (*pending & 0xffff_ffff) | (low32 << 32),
            (8, o) if o == r.low && r.high == r.low + 4 => value,
            _ => return GateWrite::Malformed { register: i },
        };
        let address = *pending;
        if address == 0 {
            if let Some(c) = self.committed.get_mut(i) {
                *c = 0;
            }
            return GateWrite::Cleared;
        }
        match translate(address, r.length.max(1)) {
            Some(host) => {
                if let Some(c) = self.committed.get_mut(i) {
                    *c = address;
                }
                GateWrite::Commit { low: (r.low, host as u32), high: (r.high, (host >> 32) as u32) }
            }
            None => GateWrite::Refused { register: i, address },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Guest RAM 0x4000_0000..0x5000_0000 at host 0x8_0000_0000.
    fn ram(address: u64, length: u64) -> Option<u64> {
        let (gpa, size, hpa) = (0x4000_0000u64, 0x1000_0000u64, 0x8_0000_0000u64);
        let end = address.checked_add(length)?;
        (address >= gpa && end <= gpa + size).then(|| hpa + (address - gpa))
    }

    /// virtio-mmio's three queue address pairs.
    fn gate() -> DmaGate {
        DmaGate::new(
            vec![
                DmaRegister { low: 0x80, high: 0x84, length: 0x1000 },
                DmaRegister { low: 0x90, high: 0x94, length: 0x1000 },
                DmaRegister { low: 0xa0, high: 0xa4, length: 0x1000 },
            ],
            (0, 0x200),
        )
    }

    #[test]
    fn neighbours_in_the_page_are_out_of_reach() {
        let mut g = DmaGate::new(vec![DmaRegister { low: 0xe80, high: 0xe84, length: 16 }], (0xe00, 0x1000));
        assert_eq!(g.read(0x80, 4), GateRead::Outside);
        assert_eq!(g.write(0x80, 4, 0x1234, ram), GateWrite::Outside);
        assert_eq!(g.write(0xdfc, 8, 0, ram), GateWrite::Outside);
        assert_eq!(g.read(0xe70, 4), GateRead::Through);
        assert_eq!(
            g.write(0xe80, 4, 0x4000_0000, ram),
            GateWrite::Commit { low: (0xe80, 0), high: (0xe84, 8) }
        );
    }

    #[test]
    fn other_registers_go_through() {
        let mut g = gate();
        assert_eq!(g.read(0x70, 4), GateRead::Through);
        assert_eq!(g.write(0x44, 4, 1, ram), GateWrite::Through);
        assert_eq!(g.write(0x100, 1, 1, ram), GateWrite::Through);
        assert_eq!(g.write(0x7c, 4, 1, ram), GateWrite::Through);
        assert_eq!(g.write(0x88, 4, 1, ram), GateWrite::Through);
    }

    #[test]
    fn an_address_in_ram_is_translated_and_committed() {
        let mut g = gate();
        let w = g.write(0x80, 4, 0x4123_4000, ram);
        assert_eq!(w, GateWrite::Commit { low: (0x80, 0x0123_4000), high: (0x84, 8) });
        assert_eq!(g.write(0x84, 4, 0, ram), GateWrite::Commit { low: (0x80, 0x0123_4000), high: (0x84, 8) });
        assert_eq!(g.read(0x80, 4), GateRead::Value(0x4123_4000));
        assert_eq!(g.read(0x84, 4), GateRead::Value(0));
        assert_eq!(g.read(0x90, 4), GateRead::Value(0));
    }

    #[test]
    fn an_address_outside_ram_is_refused_and_the_old_one_stays() {
        let mut g = gate();
        g.write(0x90, 4, 0x4000_0000, ram);
        assert_eq!(
            g.write(0x90, 4, 0x3000_0000, ram),
            GateWrite::Refused { register: 1, address: 0x3000_0000 }
        );
        assert_eq!(g.read(0x90, 4), GateRead::Value(0x4000_0000));
        // The high half moves it outside, too.
        assert_eq!(g.write(0x94, 4, 1, ram), GateWrite::Refused { register: 1, address: 0x1_3000_0000 });
        // A range that runs past the end of RAM.
        let mut g = gate();
        assert_eq!(
            g.write(0xa0, 4, 0x4fff_f800, ram),
            GateWrite::Refused { register: 2, address: 0x4fff_f800 }
        );
        assert_eq!(
            g.write(0xa0, 4, 0x4fff_f000, ram),
            GateWrite::Commit { low: (0xa0, 0x0fff_f000), high: (0xa4, 8) }
        );
    }

    #[test]
    fn a_64_bit_write_sets_both_halves() {
        let mut g = gate();
        assert_eq!(
            g.write(0x80, 8, 0x4000_1000, ram),
            GateWrite::Commit { low: (0x80, 0x1000), high: (0x84, 8) }
        );
        assert_eq!(g.read(0x80, 8), GateRead::Value(0x4000_1000));
        assert_eq!(
            g.write(0x80, 8, 0xdead_0000_0000, ram),
            GateWrite::Refused { register: 0, address: 0xdead_0000_0000 }
        );
    }

    #[test]
    fn partial_writes_are_malformed_and_zero_clears() {
        let mut g = gate();
        assert_eq!(g.write(0x81, 1, 0x40, ram), GateWrite::Malformed { register: 0 });
        assert_eq!(g.write(0x82, 4, 0x40, ram), GateWrite::Malformed { register: 0 });
        assert_eq!(g.write(0x84, 8, 0x40, ram), GateWrite::Malformed { register: 0 });
        assert_eq!(g.read(0x81, 1), GateRead::Value(0));
        g.write(0x80, 4, 0x4000_0000, ram);
        assert_eq!(g.write(0x80, 4, 0, ram), GateWrite::Cleared);
        assert_eq!(g.read(0x80, 4), GateRead::Value(0));
        g.write(0x80, 4, 0x4000_0000, ram);
        g.reset();
        assert_eq!(g.read(0x80, 4), GateRead::Value(0));
    }

    proptest::proptest! {
        /// Whatever a guest writes, the device is only ever given host
        /// addresses of ranges in the guest's RAM.
        #[test]
        fn the_device_only_sees_guest_ram(
            writes in proptest::collection::vec((0x78u64..0xb0, proptest::sample::select(vec![1u8, 2, 4, 8]), proptest::prelude::any::<u64>()), 0..64),
        ) {
            let mut g = gate();
            for (offset, size, value) in writes {
                let value = if value % 3 == 0 { 0x4000_0000 | (value & 0x0fff_f000) } else { value };
                if let GateWrite::Commit { low, high } = g.write(offset, size, value, ram) {
                    let host = u64::from(high.1) << 32 | u64::from(low.1);
                    proptest::prop_assert!((0x8_0000_0000..0x8_1000_0000 - 0xfff).contains(&host));
                }
            }
        }
    }
}
