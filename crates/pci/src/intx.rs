//! INTx routing: the standard pin swizzle and a decoder for a host bridge's `interrupt-map`.
//!
//! A function's interrupt pin (config register 0x3d: 1 = INTA .. 4 = INTD) is
//! rotated by the device number at each bridge it crosses (and, on QEMU
//! `virt`, by the host bridge itself, whose `interrupt-map` spreads slots over
//! 4 SPIs). The hypervisor takes the real SPI numbers from the host DT, so this
//! module only decodes `interrupt-map` cells against `interrupt-map-mask`.

use crate::Bdf;

/// An INTx pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    /// INTA (pin register value 1).
    A,
    /// INTB (2).
    B,
    /// INTC (3).
    C,
    /// INTD (4).
    D,
}

impl Pin {
    /// The pin a config-space interrupt pin register value names; `None` for 0 (no pin) or > 4.
    pub const fn from_register(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::A),
            2 => Some(Self::B),
            3 => Some(Self::C),
            4 => Some(Self::D),
            _ => None,
        }
    }

    /// The register value (1..=4), also the `#interrupt-cells = 1` cell of an `interrupt-map`.
    pub const fn register(self) -> u8 {
        match self {
            Self::A => 1,
            Self::B => 2,
            Self::C => 3,
            Self::D => 4,
        }
    }
}

/// The standard swizzle: the pin seen upstream of a bridge for `pin` of a
/// function in slot `device` below it (`((pin - 1 + device) mod 4) + 1`).
pub const fn swizzle(device: u8, pin: Pin) -> Pin {
    match (pin.register() - 1 + (device & 3)) & 3 {
        0 => Pin::A,
        1 => Pin::B,
        2 => Pin::C,
        _ => Pin::D,
    }
}

/// Why an `interrupt-map` cannot be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntxMapError {
    /// The mask is not 4 cells (3 address cells + 1 interrupt cell).
    BadMask,
    /// The map length is not a whole number of entries of the given shape.
    BadLength,
}

/// A host bridge's `interrupt-map`, as u32 cells (already converted from big
/// endian), with its `interrupt-map-mask`.
///
/// Child specifiers are 3 PCI address cells (`phys.hi` carries the BDF in bits
/// 8..=23) plus 1 pin cell; each entry then holds the parent's phandle,
/// `parent_address_cells` and `parent_interrupt_cells` cells (from the
/// interrupt parent's node: 0 or 2 and 3 for a GICv3 on QEMU `virt`).
#[derive(Clone, Copy, Debug)]
pub struct IntxMap<'a> {
    map: &'a [u32],
    mask: [u32; 4],
    parent_address_cells: usize,
    parent_interrupt_cells: usize,
}

/// Where an INTx lands: the interrupt parent and its interrupt specifier cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntxRoute<'a> {
    /// Phandle of the interrupt parent.
    pub parent: u32,
    /// The parent's interrupt specifier (for a GIC: type, number, flags).
    pub interrupt: &'a [u32],
}

impl<'a> IntxMap<'a> {
    /// Checks the shape of `map` against the mask and parent cell counts.
    pub fn new(
        map: &'a [u32],
        mask: &[u32],
        parent_address_cells: usize,
        parent_interrupt_cells: usize,
    ) -> Result<Self, IntxMapError> {
        let mask: [u32; 4] = mask.try_into().map_err(|_| IntxMapError::BadMask)?;
        let entry = 4 + 1 + parent_address_cells + parent_interrupt_cells;
        if parent_interrupt_cells == 0 || !map.len().is_multiple_of(entry) {
            return Err(IntxMapError::BadLength);
        }
        Ok(Self { map, mask, parent_address_cells, parent_interrupt_cells })
    }

    /// The route of `pin` of `bdf` as the host bridge sees it (apply
    /// [`swizzle`] first for each bridge crossed); `None` if no entry matches.
    pub fn route(&self, bdf: Bdf, pin: Pin) -> Option<IntxRoute<'a>> {
        let child = [u32::from(bdf.rid()) << 8, 0, 0, u32::from(pin.register())];
        let entry = 4 + 1 + self.parent_address_cells + self.parent_interrupt_cells;
        self.map.chunks_exact(entry).find_map(|e| {
            let matches = child.iter().zip(&self.mask).zip(e).all(|((c, m), k)| c & m == k & m);
            if !matches {
                return None;
            }
            let (head, interrupt) = e.split_at(5 + self.parent_address_cells);
            Some(IntxRoute { parent: *head.get(4)?, interrupt })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// QEMU 7.2 `virt` with GICv3 (crates/config/tests/fixtures/qemu-virt-gicv3.dts):
    /// slot s, pin p goes to SPI 3 + ((s + p - 1) mod 4).
    fn qemu_map() -> Vec<u32> {
        let mut cells = Vec::new();
        for slot in 0..4u32 {
            for pin in 1..=4u32 {
                let spi = 3 + (slot + pin - 1) % 4;
                cells.extend_from_slice(&[slot << 11, 0, 0, pin, 0x8005, 0, 0, 0, spi, 4]);
            }
        }
        cells
    }

    #[test]
    fn swizzle_rotates_by_device() {
        assert_eq!(swizzle(0, Pin::A), Pin::A);
        assert_eq!(swizzle(1, Pin::A), Pin::B);
        assert_eq!(swizzle(2, Pin::D), Pin::B);
        assert_eq!(swizzle(7, Pin::B), Pin::A);
        assert_eq!(Pin::from_register(0), None);
        assert_eq!(Pin::from_register(5), None);
        assert_eq!(Pin::from_register(3), Some(Pin::C));
    }

    #[test]
    fn decodes_qemu_virt_map() {
        let cells = qemu_map();
        // Head of the fixture's interrupt-map, checked against the generated table.
        assert_eq!(cells[..10], [0, 0, 0, 1, 0x8005, 0, 0, 0, 3, 4]);
        assert_eq!(cells[40..50], [0x800, 0, 0, 1, 0x8005, 0, 0, 0, 4, 4]);
        let map = IntxMap::new(&cells, &[0x1800, 0, 0, 7], 2, 3).unwrap();
        let spi = |d, f, p| map.route(Bdf::new(0, d, f).unwrap(), p).map(|r| r.interrupt[1]);
        assert_eq!(spi(0, 0, Pin::A), Some(3));
        assert_eq!(spi(1, 0, Pin::A), Some(4));
        assert_eq!(spi(2, 3, Pin::A), Some(5)); // function bits are masked out
        assert_eq!(spi(5, 0, Pin::D), Some(3)); // slot 5 wraps onto slot 1
                                                // The map agrees with the swizzle of slot 0's table.
        for d in 0..32 {
            for p in [Pin::A, Pin::B, Pin::C, Pin::D] {
                assert_eq!(spi(d, 0, p), spi(0, 0, swizzle(d, p)));
            }
        }
        let r = map.route(Bdf::new(0, 1, 0).unwrap(), Pin::B).unwrap();
        assert_eq!(r, IntxRoute { parent: 0x8005, interrupt: &[0, 5, 4] });
    }

    #[test]
    fn refuses_bad_shapes_and_misses() {
        let cells = qemu_map();
        assert_eq!(IntxMap::new(&cells, &[0x1800, 0, 0], 2, 3).err(), Some(IntxMapError::BadMask));
        assert_eq!(IntxMap::new(&cells[..9], &[0x1800, 0, 0, 7], 2, 3).err(), Some(IntxMapError::BadLength));
        assert_eq!(IntxMap::new(&cells, &[0x1800, 0, 0, 7], 1, 3).err(), Some(IntxMapError::BadLength));
        assert_eq!(IntxMap::new(&cells, &[0x1800, 0, 0, 7], 2, 0).err(), Some(IntxMapError::BadLength));
        let map = IntxMap::new(&cells[..40], &[0x1800, 0, 0, 7], 2, 3).unwrap();
        assert_eq!(map.route(Bdf::new(0, 1, 0).unwrap(), Pin::A), None);
    }
}
