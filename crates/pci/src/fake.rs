//! Fake configuration spaces for the tests: functions with BARs whose
//! writable bits follow their size, a command register, and capability
//! chains, modelled on what QEMU 7.2 shows (its host bridge, `edu`,
//! `nvme`).

use crate::header::{BAR0, COMMAND, ID};
use crate::{Bdf, ConfigSpace};
use alloc::collections::BTreeMap;

/// One function's registers.
#[derive(Clone, Debug)]
pub struct FakeFunction {
    pub regs: [u32; 1024],
    /// Writable bits of each BAR slot (the rest read as set at build time).
    bar_masks: [u32; 6],
}

impl FakeFunction {
    /// A type-0 function with identity `id` (device << 16 | vendor) and
    /// class dword `class` (class << 8 | revision).
    pub fn new(id: u32, class: u32) -> Self {
        let mut regs = [0; 1024];
        regs[0] = id;
        regs[2] = class;
        Self { regs, bar_masks: [0; 6] }
    }

    /// BAR slot `i` reads `all_ones` after all-ones is written: its low
    /// bits are its type, the rest the size mask.
    pub fn bar(mut self, i: usize, all_ones: u32) -> Self {
        let type_mask = if all_ones & 1 == 1 { 0b11 } else { 0xf };
        self.bar_masks[i] = all_ones & !type_mask;
        self.regs[4 + i] = all_ones & type_mask;
        self
    }

    /// BAR slot `i` is the high half of the 64-bit BAR below it.
    pub fn bar_high(mut self, i: usize) -> Self {
        self.bar_masks[i] = u32::MAX;
        self
    }

    /// A capability `id` at `offset` with dword `header_rest` (bits 16..31)
    /// and the next pointer `next`; sets the status capability bit and the
    /// pointer if it is the first.
    pub fn cap(mut self, offset: usize, id: u8, next: u8, rest: u16) -> Self {
        self.regs[offset / 4] = u32::from(rest) << 16 | u32::from(next) << 8 | u32::from(id);
        if self.regs[0x34 / 4] == 0 {
            self.regs[0x34 / 4] = offset as u32;
        }
        self.regs[1] |= 1 << 20;
        self
    }

    /// Interrupt pin register value (1 = INTA).
    pub fn pin(mut self, pin: u8) -> Self {
        self.regs[0x3c / 4] = u32::from(pin) << 8;
        self
    }

    /// Header type byte (bit 7: multi-function).
    pub fn header(mut self, header: u8) -> Self {
        self.regs[0x0c / 4] = u32::from(header) << 16;
        self
    }

    fn write(&mut self, offset: u16, value: u32) {
        let i = usize::from(offset / 4);
        match offset {
            ID | 0x08 => {}
            COMMAND => self.regs[1] = (self.regs[1] & 0xffff_0000) | (value & 0x07ff),
            0x10..=0x27 => {
                let slot = usize::from((offset - BAR0) / 4);
                let mask = self.bar_masks[slot];
                self.regs[i] = (self.regs[i] & !mask) | (value & mask);
            }
            _ => {
                if let Some(r) = self.regs.get_mut(i) {
                    *r = value;
                }
            }
        }
    }
}

/// QEMU's host bridge function (1b36:0008, class 06.00).
pub fn host_bridge() -> FakeFunction {
    FakeFunction::new(0x0008_1b36, 0x0600_0000)
}

/// QEMU's `edu` (1234:11e8, class 00.ff): a 1 MiB 32-bit BAR0, an MSI
/// capability (64-bit) at 0x40, INTA.
pub fn edu() -> FakeFunction {
    FakeFunction::new(0x11e8_1234, 0x00ff_0010).bar(0, 0xfff0_0000).cap(0x40, 0x05, 0, 0x0080).pin(1)
}

/// QEMU's `nvme` (1b36:0010, class 01.08.02): a 16 KiB 64-bit BAR0; power
/// management at 0x40, MSI-X at 0x50, PCI Express at 0x60; INTA.
pub fn nvme() -> FakeFunction {
    FakeFunction::new(0x0010_1b36, 0x0108_0202)
        .bar(0, 0xffff_c004)
        .bar_high(1)
        .cap(0x40, 0x01, 0x50, 0x0003)
        .cap(0x50, 0x11, 0x60, 0x0040)
        .cap(0x60, 0x10, 0, 0x0002)
        .pin(1)
}

/// A bus of fake functions.
#[derive(Clone, Debug, Default)]
pub struct FakeBus {
    pub functions: BTreeMap<Bdf, FakeFunction>,
}

impl FakeBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// QEMU virt with `-device edu,addr=2 -device nvme,addr=3`.
    pub fn qemu() -> Self {
        let mut bus = Self::new();
        bus.add(Bdf::new(0, 0, 0).unwrap_or(Bdf::from_rid(0)), host_bridge());
        bus.add(Bdf::from_rid(0x10), edu());
        bus.add(Bdf::from_rid(0x18), nvme());
        bus
    }

    /// Puts `f` at `bdf`.
    pub fn add(&mut self, bdf: Bdf, f: FakeFunction) {
        self.functions.insert(bdf, f);
    }

    /// Register `offset` of `bdf` (for checks).
    pub fn reg(&self, bdf: Bdf, offset: u16) -> u32 {
        self.read32(bdf, offset)
    }
}

impl ConfigSpace for FakeBus {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        self.functions
            .get(&bdf)
            .and_then(|f| f.regs.get(usize::from(offset / 4)))
            .copied()
            .unwrap_or(u32::MAX)
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(f) = self.functions.get_mut(&bdf) {
            f.write(offset & !3, value);
        }
    }
}
