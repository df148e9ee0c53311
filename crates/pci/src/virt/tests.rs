//! The virtual host bridge against fake edu and nvme functions.

use super::*;
use crate::fake::{edu, FakeBus};
use crate::header::{size_bars, BarKind};
use crate::Pin;

const EDU: Bdf = Bdf::from_rid(0x10);
const NVME: Bdf = Bdf::from_rid(0x18);

fn ecam(bdf: Bdf, reg: u16) -> u32 {
    bdf.ecam_offset(reg) as u32
}

/// A bridge showing edu at 0x4000_0000 and nvme at 0x4010_0000.
fn bridge(bus: &mut FakeBus) -> VirtualBridge {
    let mut functions = Vec::new();
    for (bdf, at) in [(EDU, 0x4000_0000), (NVME, 0x4010_0000)] {
        let id = FunctionId::read(bus, bdf).unwrap();
        let bars = size_bars(bus, bdf).into_iter().map(|bar| VirtualBar { bar, guest_address: at }).collect();
        functions.push(VirtualFunction::new(bdf, bdf, id, bars, Some(Pin::A)));
    }
    VirtualBridge::new(functions)
}

#[test]
fn only_the_guests_functions_answer() {
    let mut bus = FakeBus::qemu();
    let mut b = bridge(&mut bus);
    assert_eq!(b.read(&mut bus, ecam(EDU, 0), 4), 0x11e8_1234);
    assert_eq!(b.read(&mut bus, ecam(EDU, 2), 2), 0x11e8);
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x0b), 1), 0x00, "class byte 0x00 of 00ff00");
    assert_eq!(b.read(&mut bus, ecam(Bdf::from_rid(0), 0), 4), u32::MAX, "host bridge hidden");
    assert_eq!(b.read(&mut bus, ecam(Bdf::from_rid(0x20), 0), 2), 0xffff, "absent");
    assert_eq!(b.read(&mut bus, ecam(EDU, 1), 2), 0xffff, "misaligned");
    assert_eq!(b.read(&mut bus, 1 << 20, 4), u32::MAX, "outside bus 0");
    b.write(&mut bus, ecam(Bdf::from_rid(0), 0x04), 4, 0x7);
    assert_eq!(bus.reg(Bdf::from_rid(0), 0x04) & 0x7, 0, "not reachable");
}

#[test]
fn bars_size_but_never_move() {
    let mut bus = FakeBus::qemu();
    let mut b = bridge(&mut bus);
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x10), 4), 0x4000_0000);
    b.write(&mut bus, ecam(EDU, 0x10), 4, u32::MAX);
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x10), 4), 0xfff0_0000, "1 MiB");
    b.write(&mut bus, ecam(EDU, 0x10), 4, 0x5000_0000);
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x10), 4), 0x4000_0000, "not moved");
    assert_eq!(bus.reg(EDU, 0x10), 0, "host BAR untouched");
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x14), 4), 0, "unimplemented slot");
    // 64-bit: both halves.
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x10), 4), 0x4010_0004);
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x14), 4), 0);
    b.write(&mut bus, ecam(NVME, 0x10), 4, u32::MAX);
    b.write(&mut bus, ecam(NVME, 0x14), 4, u32::MAX);
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x10), 4), 0xffff_c004);
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x14), 4), u32::MAX);
    b.write(&mut bus, ecam(NVME, 0x10), 4, 0x4010_0000);
    b.write(&mut bus, ecam(NVME, 0x14), 4, 0);
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x10), 4), 0x4010_0004);
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x30), 4), 0, "no expansion ROM");
    assert_eq!(b.functions()[1].bars[0].bar.kind, BarKind::Mem64);
}

#[test]
fn command_bits_the_guest_controls_reach_the_host() {
    let mut bus = FakeBus::qemu();
    let mut b = bridge(&mut bus);
    b.write(&mut bus, ecam(EDU, 0x04), 2, 0x0407 | 0x40);
    let host = bus.reg(EDU, 0x04) & 0xffff;
    assert_eq!(host, 0x0406 | 0x40, "memory, bus master, parity, INTx disable; no I/O");
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x04), 2), 0x0446);
    // A byte write to the status half changes nothing.
    b.write(&mut bus, ecam(EDU, 0x06), 2, 0);
    assert_eq!(bus.reg(EDU, 0x04) & 0xffff, 0x0446);
    b.write(&mut bus, ecam(EDU, 0x04), 1, 0);
    assert_eq!(bus.reg(EDU, 0x04) & 0xffff, 0x0400, "byte 0 cleared, INTx disable kept");
}

#[test]
fn msi_and_msix_are_hidden_from_the_chain() {
    let mut bus = FakeBus::qemu();
    let mut b = bridge(&mut bus);
    // edu: its only capability is MSI: no list at all.
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x06), 2) & 0x10, 0, "status: no capability list");
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x34), 1), 0);
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x40), 4), 0, "MSI reads 0");
    b.write(&mut bus, ecam(EDU, 0x40), 4, 0x0001_0000);
    assert_eq!(bus.reg(EDU, 0x40), 0x0080_0005, "MSI enable not written");
    // nvme: PM (0x40) -> [MSI-X at 0x50 removed] -> PCIe (0x60).
    assert_ne!(b.read(&mut bus, ecam(NVME, 0x06), 2) & 0x10, 0);
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x34), 1), 0x40);
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x40), 4), 0x0003_6001, "PM, next relinked to 0x60");
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x41), 1), 0x60);
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x50), 4), 0);
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x60), 4), 0x0002_0010, "PCIe cap, end of list");
    // A kept capability is written through (sub-word merged).
    b.write(&mut bus, ecam(NVME, 0x64), 2, 0xbeef);
    assert_eq!(bus.reg(NVME, 0x64) & 0xffff, 0xbeef);
    assert_eq!(b.read(&mut bus, ecam(NVME, 0x100), 4), 0, "no extended space");
}

#[test]
fn interrupt_line_is_the_guests_and_pin_reads_through() {
    let mut bus = FakeBus::qemu();
    let mut b = bridge(&mut bus);
    b.write(&mut bus, ecam(EDU, 0x3c), 1, 37);
    assert_eq!(b.read(&mut bus, ecam(EDU, 0x3c), 2), 0x0100 | 37);
    assert_eq!(bus.reg(EDU, 0x3c) & 0xff, 0, "host line untouched");
}

#[test]
fn multi_function_bit_follows_what_the_guest_has() {
    let mut bus = FakeBus::new();
    let (f0, f1) = (Bdf::new(0, 4, 0).unwrap(), Bdf::new(0, 4, 1).unwrap());
    bus.add(f0, edu().header(0x80));
    bus.add(f1, edu());
    let vf = |bdf| VirtualFunction::new(bdf, bdf, FunctionId::read(&bus, bdf).unwrap(), Vec::new(), None);
    let mut alone = VirtualBridge::new(alloc::vec![vf(f0)]);
    let mut both = VirtualBridge::new(alloc::vec![vf(f0), vf(f1)]);
    assert_eq!(alone.read(&mut bus, ecam(f0, 0x0e), 1), 0x00);
    assert_eq!(both.read(&mut bus, ecam(f0, 0x0e), 1), 0x80);
}
