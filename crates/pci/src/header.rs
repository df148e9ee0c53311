//! The type-0 configuration header: register offsets, the identity of a
//! function, and its base address registers (BARs) sized the standard way.

use crate::{Bdf, ConfigSpace};
use alloc::vec::Vec;

/// Vendor ID (low half) and device ID (high half).
pub const ID: u16 = 0x00;
/// Command (low half) and status (high half).
pub const COMMAND: u16 = 0x04;
/// Revision (low byte) and 24-bit class code.
pub const CLASS: u16 = 0x08;
/// Cache line size, latency timer, header type (byte 2), BIST.
pub const HEADER: u16 = 0x0c;
/// The first of the six BARs.
pub const BAR0: u16 = 0x10;
/// Subsystem vendor and subsystem IDs.
pub const SUBSYSTEM: u16 = 0x2c;
/// Expansion ROM base address.
pub const ROM: u16 = 0x30;
/// Capabilities pointer (low byte).
pub const CAP_PTR: u16 = 0x34;
/// Interrupt line (byte 0), interrupt pin (byte 1), min grant, max latency.
pub const INTERRUPT: u16 = 0x3c;
/// Where a type-0 header ends and device-specific space begins.
pub const HEADER_END: u16 = 0x40;
/// Where extended configuration space begins (PCIe).
pub const EXTENDED: u16 = 0x100;

/// Command: I/O space decoding.
pub const COMMAND_IO: u32 = 1;
/// Command: memory space decoding.
pub const COMMAND_MEMORY: u32 = 1 << 1;
/// Command: bus mastering (the function may start DMA).
pub const COMMAND_BUS_MASTER: u32 = 1 << 2;
/// Command: parity error response.
pub const COMMAND_PARITY: u32 = 1 << 6;
/// Command: SERR# enable.
pub const COMMAND_SERR: u32 = 1 << 8;
/// Command: INTx emulation disabled.
pub const COMMAND_INTX_DISABLE: u32 = 1 << 10;
/// Status (in the command dword): the function has a capability list.
pub const STATUS_CAP_LIST: u32 = 1 << 20;

/// What a function is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionId {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code: base class, subclass, programming interface.
    pub class: u32,
    /// Header layout (0: endpoint, 1: PCI-to-PCI bridge), without the
    /// multi-function bit.
    pub header_type: u8,
    /// The device has functions other than 0.
    pub multi_function: bool,
}

impl FunctionId {
    /// Reads the identity of `bdf`; `None` if nothing answers there.
    pub fn read(cfg: &impl ConfigSpace, bdf: Bdf) -> Option<Self> {
        let id = cfg.read32(bdf, ID);
        if id & 0xffff == 0xffff {
            return None;
        }
        let header = (cfg.read32(bdf, HEADER) >> 16) as u8;
        Some(Self {
            vendor: id as u16,
            device: (id >> 16) as u16,
            class: cfg.read32(bdf, CLASS) >> 8,
            header_type: header & 0x7f,
            multi_function: header & 0x80 != 0,
        })
    }

    /// A host bridge (class 06.00), which the host's own driver owns.
    pub const fn is_host_bridge(&self) -> bool {
        self.class >> 8 == 0x0600
    }
}

/// What a BAR maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// 32-bit memory.
    Mem32,
    /// 64-bit memory (takes two BAR slots).
    Mem64,
    /// I/O space.
    Io,
}

/// One implemented BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Its slot, 0..=5 (a 64-bit BAR also uses the next one).
    pub index: u8,
    /// What it maps.
    pub kind: BarKind,
    /// Prefetchable memory.
    pub prefetchable: bool,
    /// Size in bytes, a power of two.
    pub size: u64,
}

impl Bar {
    /// The read-only low bits of the BAR register (space, type, prefetch).
    pub const fn type_bits(&self) -> u32 {
        let pf = if self.prefetchable { 1 << 3 } else { 0 };
        match self.kind {
            BarKind::Mem32 => pf,
            BarKind::Mem64 => 0b100 | pf,
            BarKind::Io => 1,
        }
    }

    /// The config-space offset of its (low) register.
    pub const fn offset(&self) -> u16 {
        BAR0 + 4 * self.index as u16
    }
}

/// Sizes the BARs of type-0 function `bdf`: decoding is switched off, each
/// BAR written with all-ones and read back, and the original values and
/// command register restored. Unimplemented BARs are left out; a bridge
/// (another header type) has none here.
pub fn size_bars(cfg: &mut impl ConfigSpace, bdf: Bdf) -> Vec<Bar> {
    let mut bars = Vec::new();
    if FunctionId::read(cfg, bdf).is_none_or(|id| id.header_type != 0) {
        return bars;
    }
    let command = cfg.read32(bdf, COMMAND) & 0xffff;
    // Status bits are write-1-to-clear: zeros there leave them.
    cfg.write32(bdf, COMMAND, command & !(COMMAND_IO | COMMAND_MEMORY));
    let mut index = 0u8;
    while index < 6 {
        let off = BAR0 + 4 * u16::from(index);
        let orig = cfg.read32(bdf, off);
        cfg.write32(bdf, off, u32::MAX);
        let lo = cfg.read32(bdf, off);
        cfg.write32(bdf, off, orig);
        if orig & 1 == 1 {
            let mask = lo & !0b11;
            if mask != 0 {
                let size = u64::from((!mask).wrapping_add(1)).max(4);
                bars.push(Bar { index, kind: BarKind::Io, prefetchable: false, size });
            }
            index += 1;
            continue;
        }
        let prefetchable = orig & (1 << 3) != 0;
        let wide = (orig >> 1) & 0b11 == 0b10;
        let (kind, mask) = if wide && index < 5 {
            let hi_off = off + 4;
            let orig_hi = cfg.read32(bdf, hi_off);
            cfg.write32(bdf, hi_off, u32::MAX);
            let hi = cfg.read32(bdf, hi_off);
            cfg.write32(bdf, hi_off, orig_hi);
            (BarKind::Mem64, u64::from(hi) << 32 | u64::from(lo & !0xf))
        } else {
            (BarKind::Mem32, 0xffff_ffff_0000_0000 | u64::from(lo & !0xf))
        };
        let implemented = if kind == BarKind::Mem64 { mask != 0 } else { lo & !0xf != 0 };
        if implemented {
            bars.push(Bar { index, kind, prefetchable, size: (!mask).wrapping_add(1) });
        }
        index += if kind == BarKind::Mem64 { 2 } else { 1 };
    }
    cfg.write32(bdf, COMMAND, command);
    bars
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{edu, nvme, FakeBus};

    #[test]
    fn identity_and_absence() {
        let bus = FakeBus::qemu();
        let edu = FunctionId::read(&bus, Bdf::new(0, 2, 0).unwrap()).unwrap();
        assert_eq!((edu.vendor, edu.device, edu.class, edu.header_type), (0x1234, 0x11e8, 0x00ff00, 0));
        assert!(!edu.multi_function && !edu.is_host_bridge());
        let host = FunctionId::read(&bus, Bdf::new(0, 0, 0).unwrap()).unwrap();
        assert!(host.is_host_bridge());
        assert_eq!(FunctionId::read(&bus, Bdf::new(0, 9, 0).unwrap()), None);
    }

    #[test]
    fn sizing_finds_bars_and_restores_everything() {
        let mut bus = FakeBus::qemu();
        let (e, n) = (Bdf::new(0, 2, 0).unwrap(), Bdf::new(0, 3, 0).unwrap());
        bus.write32(e, BAR0, 0x1230_0000);
        bus.write32(e, COMMAND, COMMAND_MEMORY | COMMAND_BUS_MASTER);
        let before: Vec<u32> = (0..16).map(|i| bus.read32(e, i * 4)).collect();
        assert_eq!(
            size_bars(&mut bus, e),
            [Bar { index: 0, kind: BarKind::Mem32, prefetchable: false, size: 1 << 20 }]
        );
        let after: Vec<u32> = (0..16).map(|i| bus.read32(e, i * 4)).collect();
        assert_eq!(before, after);
        assert_eq!(
            size_bars(&mut bus, n),
            [Bar { index: 0, kind: BarKind::Mem64, prefetchable: false, size: 0x4000 }]
        );
        // An I/O BAR and a prefetchable one.
        let mut other = FakeBus::new();
        let f = Bdf::new(0, 5, 0).unwrap();
        other.add(f, edu().bar(0, 0xffff_ff01).bar(1, 0xffff_0008));
        assert_eq!(
            size_bars(&mut other, f),
            [
                Bar { index: 0, kind: BarKind::Io, prefetchable: false, size: 0x100 },
                Bar { index: 1, kind: BarKind::Mem32, prefetchable: true, size: 0x1_0000 },
            ]
        );
        let _ = nvme();
    }

    #[test]
    fn type_bits_and_offsets() {
        let b = Bar { index: 2, kind: BarKind::Mem64, prefetchable: true, size: 0x4000 };
        assert_eq!((b.type_bits(), b.offset()), (0b1100, 0x18));
        assert_eq!(Bar { kind: BarKind::Io, ..b }.type_bits(), 1);
    }
}
