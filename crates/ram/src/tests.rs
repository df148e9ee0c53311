//! Unit tests: reservations, top-down aligned allocation, release merging, messages.

use alloc::string::ToString;
use alloc::vec;

use super::*;

const MIB: u64 = 1 << 20;

fn r(base: u64, size: u64) -> HostRegion {
    HostRegion::new(base, size)
}

/// Two banks: 1 GiB at 0x4000_0000, 256 MiB at 0x1_0000_0000.
fn two_banks() -> RamAllocator {
    RamAllocator::new(&[r(0x1_0000_0000, 256 * MIB), r(0x4000_0000, 1024 * MIB)])
}

#[test]
fn new_sorts_and_merges() {
    let a = RamAllocator::new(&[
        r(0x5000, 0x1000),
        r(0x1000, 0x2000),
        r(0x3000, 0x1000),
        r(0x2000, 0x800),
        r(0x9000, 0),
        r(u64::MAX - 0xfff, 0x2000),
    ]);
    assert_eq!(a.ram(), &[r(0x1000, 0x3000), r(0x5000, 0x1000), r(u64::MAX - 0xfff, 0xfff)]);
    assert_eq!(a.free_regions(), a.ram());
    assert_eq!(a.free_bytes(), 0x4fff);
}

#[test]
fn reserve_carves_and_names_the_holder() {
    let mut a = two_banks();
    let total = a.free_bytes();
    a.reserve(r(0x4008_0000, 0x20_0000), "hypervisor").unwrap();
    a.reserve(r(0x4800_0000, 0x1_0000), "host-dtb").unwrap();
    assert_eq!(a.free_bytes(), total - 0x21_0000);
    assert_eq!(
        a.free_regions(),
        &[
            r(0x4000_0000, 0x8_0000),
            r(0x4028_0000, 0x4800_0000 - 0x4028_0000),
            r(0x4801_0000, 0x8000_0000 - 0x4801_0000),
            r(0x1_0000_0000, 256 * MIB),
        ]
    );
    let err = a.reserve(r(0x4000_0000, 0x10_0000), "guest0").unwrap_err();
    assert_eq!(
        err,
        RamError::InUse {
            requested: r(0x4000_0000, 0x10_0000),
            region: r(0x4008_0000, 0x20_0000),
            owner: "hypervisor".to_string()
        }
    );
    assert_eq!(
        err.to_string(),
        "[0x40000000..0x40100000) overlaps [0x40080000..0x40280000) already held by \"hypervisor\""
    );
    assert_eq!(a.owner_of(0x4800_ffff), Some("host-dtb"));
    assert_eq!(a.owner_of(0x4801_0000), None);
    let names: vec::Vec<&str> = a.reservations().iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(names, ["hypervisor", "host-dtb"]);
}

#[test]
fn reserve_outside_ram() {
    let mut a = two_banks();
    // Spans the gap between the banks.
    let gap = r(0x7fff_f000, 0x8000_2000);
    assert_eq!(a.reserve(gap, "x"), Err(RamError::OutsideRam { region: gap }));
    assert!(matches!(a.reserve(r(0, 0x1000), "x"), Err(RamError::OutsideRam { .. })));
    assert!(matches!(a.reserve(r(u64::MAX, 2), "x"), Err(RamError::OutsideRam { .. })));
    assert_eq!(a.reserve(r(0x4000_0000, 0), "x"), Err(RamError::ZeroSize));
    assert!(a.reserve(gap, "x").unwrap_err().to_string().contains("not entirely inside host RAM"));
    assert!(a.reservations().is_empty());
}

#[test]
fn allocate_from_the_top_with_alignment() {
    let mut a = two_banks();
    let top = a.allocate(0x3000, 0x1000, "vm0-ram").unwrap();
    assert_eq!(top, r(0x1_1000_0000 - 0x3000, 0x3000));
    // 2 MiB aligned: goes below the previous one, at the highest aligned spot.
    let b = a.allocate(4 * MIB, 2 * MIB, "vm1-ram").unwrap();
    assert_eq!(b, r(0x1_1000_0000 - 6 * MIB, 4 * MIB));
    assert!(b.base.is_aligned(2 * MIB));
    // Too big for the high bank: falls to the low one.
    let c = a.allocate(512 * MIB, 512 * MIB, "vm2-ram").unwrap();
    assert_eq!(c, r(0x6000_0000, 512 * MIB));
    assert_eq!(a.reservations().len(), 3);
    assert_eq!(a.reservations()[0].1, "vm2-ram");
}

#[test]
fn allocate_congruent_keeps_the_offset_in_the_block() {
    let mut a = two_banks();
    // Guest RAM at a guest address 0x1000 past a 2 MiB boundary gets host
    // RAM 0x1000 past one too: the highest such base that fits.
    let g = a.allocate_congruent(4 * MIB, 2 * MIB, 0x4000_1000, "vm0-ram").unwrap();
    assert_eq!(g.base.0 % (2 * MIB), 0x1000);
    assert_eq!(g, r(0x1_1000_0000 - 6 * MIB + 0x1000, 4 * MIB));
    // A small region takes the top page, in the gap above it (4 KiB
    // alignment: it does not cost a 2 MiB block).
    let small = a.allocate_congruent(0x1000, 0x1000, 0, "vm1-ram").unwrap();
    assert_eq!(small, r(0x1_1000_0000 - 0x1000, 0x1000));
    assert!(matches!(
        a.allocate_congruent(0x1000, 0x1000, 0x800, "x"),
        Err(RamError::BadAlign { what: "phase", .. })
    ));
    // Exactly one spot: base 0x4000_1000 in [0x4000_0000, 0x4040_0000).
    let mut b = RamAllocator::new(&[r(0x4000_0000, 4 * MIB)]);
    let one = b.allocate_congruent(4 * MIB - 0x1000, 2 * MIB, 0x1000, "x").unwrap();
    assert_eq!(one, r(0x4000_1000, 4 * MIB - 0x1000));
    let mut c = RamAllocator::new(&[r(0x4000_0000, 4 * MIB)]);
    assert!(matches!(c.allocate_congruent(4 * MIB, 2 * MIB, 0x1000, "x"), Err(RamError::NoSpace { .. })));
}

#[test]
fn allocate_errors() {
    let mut a = two_banks();
    assert_eq!(a.allocate(0, 0x1000, "x"), Err(RamError::ZeroSize));
    assert_eq!(a.allocate(0x1000, 0x800, "x"), Err(RamError::BadAlign { what: "alignment", value: 0x800 }));
    assert!(matches!(a.allocate(0x1000, 0x3000, "x"), Err(RamError::BadAlign { .. })));
    assert!(matches!(a.allocate(0x1800, 0x1000, "x"), Err(RamError::BadAlign { what: "size", .. })));
    let err = a.allocate(2048 * MIB, 0x1000, "x").unwrap_err();
    assert_eq!(err, RamError::NoSpace { size: 2048 * MIB, align: 0x1000, largest_free: 1024 * MIB });
    assert_eq!(
        err.to_string(),
        "no free RAM for 0x80000000 bytes aligned to 0x1000 (largest free range: 0x40000000 bytes)"
    );
    // Fits by size but not by alignment.
    let mut b = RamAllocator::new(&[r(0x4000_1000, 0x20_0000)]);
    assert!(matches!(b.allocate(0x20_0000, 0x20_0000, "x"), Err(RamError::NoSpace { .. })));
    assert!(matches!(b.allocate(!0xfffu64, 0x1000, "x"), Err(RamError::NoSpace { .. })));
    assert!(matches!(b.allocate(0x1000, 1 << 63, "x"), Err(RamError::NoSpace { .. })));
}

#[test]
fn release_merges_neighbours() {
    let mut a = RamAllocator::new(&[r(0x4000_0000, 0x10_0000)]);
    let x = a.allocate(0x1000, 0x1000, "x").unwrap();
    let y = a.allocate(0x1000, 0x1000, "y").unwrap();
    let z = a.allocate(0x1000, 0x1000, "z").unwrap();
    assert_eq!(a.free_regions().len(), 1);
    a.release(y).unwrap();
    assert_eq!(a.free_regions().len(), 2);
    a.release(x).unwrap();
    assert_eq!(a.free_regions().len(), 2);
    a.release(z).unwrap();
    assert_eq!(a.free_regions(), &[r(0x4000_0000, 0x10_0000)]);
    assert!(a.reservations().is_empty());
    assert_eq!(a.release(x), Err(RamError::NotReserved { region: x }));
    a.reserve(r(0x4000_0000, 0x2000), "guest").unwrap();
    assert_eq!(
        a.release(r(0x4000_0000, 0x1000)),
        Err(RamError::NotReserved { region: r(0x4000_0000, 0x1000) })
    );
    assert!(a
        .release(r(0x4000_0000, 0x1000))
        .unwrap_err()
        .to_string()
        .contains("not exactly a current reservation"));
}
