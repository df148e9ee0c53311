//! Unit tests: block selection, exact descriptor bits, errors, splitting, rollback.

use core::sync::atomic::{AtomicU64, Ordering};

use alloc::string::ToString;
use alloc::vec;

use super::*;

const GIB: u64 = 1 << 30;
const MIB2: u64 = 2 << 20;

/// Fake physical addresses for tables: host heap addresses do not fit in 40
/// bits, so hand out unique 4 KiB-aligned addresses below `PA_LIMIT`.
pub(crate) fn fake_phys(_virt: usize) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0x10_0000_0000);
    NEXT.fetch_add(PAGE_SIZE, Ordering::Relaxed)
}

pub(crate) fn new() -> Stage2 {
    Stage2::new(fake_phys).unwrap()
}

fn g(a: u64) -> GuestPhysAddr {
    GuestPhysAddr(a)
}

fn h(a: u64) -> HostPhysAddr {
    HostPhysAddr(a)
}

#[test]
fn vtcr_and_vttbr_values() {
    assert_eq!(VTCR_EL2, 0x8002_3559);
    assert_eq!(VTCR_EL2 & 0x3f, 25);
    assert_eq!((VTCR_EL2 >> 6) & 3, 1);
    assert_eq!((VTCR_EL2 >> 16) & 7, 0b010);
    assert_eq!(vttbr(0x4008_1000, 5), 0x0005_0000_4008_1000);
    assert_eq!(vttbr(0x4008_1000, 0x1ff), 0x00ff_0000_4008_1000);
}

#[test]
fn ram_region_gets_2mib_blocks() {
    let mut s2 = new();
    s2.map(g(GIB), h(0x8000_0000), 256 << 20, MemAttrs::Ram).unwrap();
    // Root plus one level-2 table, no level-3 tables.
    assert_eq!(s2.table_count(), 2);
    let levels = s2.leaf_levels();
    assert_eq!(levels.len(), 128);
    assert!(levels.iter().all(|&(_, l)| l == 2));
    assert_eq!(s2.translate(g(GIB + 0x12_3456)), Some((h(0x8012_3456), MemAttrs::Ram)));
    assert_eq!(s2.translate(g(GIB - 1)), None);
    assert_eq!(s2.translate(g(GIB + (256 << 20))), None);
    assert_eq!(
        s2.mappings(),
        vec![Mapping { gpa: g(GIB), hpa: h(0x8000_0000), size: 256 << 20, attrs: MemAttrs::Ram }]
    );
}

#[test]
fn exact_descriptor_bits() {
    let mut s2 = new();
    s2.map(g(GIB), h(0x8000_0000), MIB2, MemAttrs::Ram).unwrap();
    s2.map(g(0x0900_0000), h(0x0900_0000), PAGE_SIZE, MemAttrs::Device).unwrap();
    // Block: OA | AF | SH=11 | S2AP=11 | MemAttr=1111 | 0b01.
    assert_eq!(s2.descriptor(g(GIB + 5)), Some((2, 0x8000_07fd)));
    // Page: XN=10 | OA | AF | SH=00 | S2AP=11 | MemAttr=0001 | 0b11.
    assert_eq!(s2.descriptor(g(0x0900_0fff)), Some((3, 0x0040_0000_0900_04c7)));
    assert_eq!(s2.translate(g(0x0900_0010)), Some((h(0x0900_0010), MemAttrs::Device)));
    assert_eq!(s2.translate(g(0x0900_1000)), None);
    assert_eq!(s2.descriptor(g(0x0900_1000)), None);
    assert_eq!(s2.translate(g(IPA_LIMIT)), None);
}

#[test]
fn one_gib_block_when_aligned() {
    let mut s2 = new();
    s2.map(g(2 * GIB), h(3 * GIB), GIB + MIB2 + PAGE_SIZE, MemAttrs::Ram).unwrap();
    assert_eq!(s2.descriptor(g(2 * GIB)).map(|d| d.0), Some(1));
    assert_eq!(s2.descriptor(g(3 * GIB)).map(|d| d.0), Some(2));
    assert_eq!(s2.descriptor(g(3 * GIB + MIB2)).map(|d| d.0), Some(3));
    assert_eq!(s2.descriptor(g(2 * GIB)).unwrap().1 & !0xfff, 3 * GIB);
    assert_eq!(s2.translate(g(3 * GIB + MIB2 + 8)), Some((h(4 * GIB + MIB2 + 8), MemAttrs::Ram)));
    // Misaligned host address: only pages.
    let mut s2 = new();
    s2.map(g(GIB), h(GIB + PAGE_SIZE), MIB2, MemAttrs::Ram).unwrap();
    assert!(s2.leaf_levels().iter().all(|&(_, l)| l == 3));
    assert_eq!(s2.table_count(), 3);
}

#[test]
fn overlap_is_refused_without_change() {
    let mut s2 = new();
    s2.map(g(GIB + MIB2), h(0x8000_0000), PAGE_SIZE, MemAttrs::Ram).unwrap();
    let before = (s2.mappings(), s2.table_count());
    let err = s2.map(g(GIB), h(0x9000_0000), 4 * MIB2, MemAttrs::Ram).unwrap_err();
    assert_eq!(err, Stage2Error::AlreadyMapped { gpa: g(GIB + MIB2) });
    assert_eq!((s2.mappings(), s2.table_count()), before);
    assert_eq!(s2.translate(g(GIB)), None);
    // Over a block too.
    s2.map(g(4 * GIB), h(0), GIB, MemAttrs::Ram).unwrap();
    let err = s2.map(g(4 * GIB - PAGE_SIZE), h(0), 2 * PAGE_SIZE, MemAttrs::Device).unwrap_err();
    assert_eq!(err, Stage2Error::AlreadyMapped { gpa: g(4 * GIB) });
    assert_eq!(s2.translate(g(4 * GIB - PAGE_SIZE)), None);
}

#[test]
fn argument_errors() {
    let mut s2 = new();
    let ram = MemAttrs::Ram;
    assert_eq!(s2.map(g(0), h(0), 0, ram), Err(Stage2Error::ZeroSize));
    assert_eq!(
        s2.map(g(0x800), h(0), PAGE_SIZE, ram),
        Err(Stage2Error::Unaligned { what: "guest address", value: 0x800 })
    );
    assert_eq!(
        s2.map(g(0), h(0x10), PAGE_SIZE, ram),
        Err(Stage2Error::Unaligned { what: "host address", value: 0x10 })
    );
    assert_eq!(s2.map(g(0), h(0), 0x1800, ram), Err(Stage2Error::Unaligned { what: "size", value: 0x1800 }));
    assert_eq!(
        s2.map(g(IPA_LIMIT - PAGE_SIZE), h(0), 2 * PAGE_SIZE, ram),
        Err(Stage2Error::OutOfRange {
            what: "guest range",
            start: IPA_LIMIT - PAGE_SIZE,
            size: 2 * PAGE_SIZE,
            limit: IPA_LIMIT
        })
    );
    assert!(matches!(
        s2.map(g(0), h(PA_LIMIT), PAGE_SIZE, ram),
        Err(Stage2Error::OutOfRange { what: "host range", .. })
    ));
    assert!(matches!(s2.map(g(0), h(!0xfffu64), PAGE_SIZE, ram), Err(Stage2Error::OutOfRange { .. })));
    assert!(matches!(s2.unmap(g(!0xfffu64), !0xfffu64), Err(Stage2Error::OutOfRange { .. })));
    assert_eq!(s2.unmap(g(0), 0), Err(Stage2Error::ZeroSize));
    assert_eq!(s2.table_count(), 1);
    // The last page of both address spaces is usable.
    s2.map(g(IPA_LIMIT - PAGE_SIZE), h(PA_LIMIT - PAGE_SIZE), PAGE_SIZE, ram).unwrap();
    assert_eq!(s2.translate(g(IPA_LIMIT - 1)), Some((h(PA_LIMIT - 1), ram)));
    assert_eq!(s2.unmap(g(0), IPA_LIMIT), Ok(Invalidate::Range { gpa: g(0), size: IPA_LIMIT }));
    assert_eq!(s2.table_count(), 1);
}

#[test]
fn error_messages() {
    let e = Stage2Error::AlreadyMapped { gpa: g(0x4000_0000) };
    assert_eq!(e.to_string(), "guest address 0x40000000 is already mapped");
    let e = Stage2Error::Unaligned { what: "size", value: 0x10 };
    assert_eq!(e.to_string(), "size 0x10 is not 4 KiB aligned");
    assert!(Stage2Error::ZeroSize.to_string().contains("zero"));
}

#[test]
fn unmap_splits_a_block_in_the_middle() {
    let mut s2 = new();
    s2.map(g(GIB), h(0x8000_0000), 2 * MIB2, MemAttrs::Ram).unwrap();
    assert_eq!(s2.table_count(), 2);
    let hole = GIB + 0x10_0000;
    assert_eq!(s2.unmap(g(hole), 2 * PAGE_SIZE), Ok(Invalidate::Range { gpa: g(hole), size: 2 * PAGE_SIZE }));
    assert_eq!(s2.table_count(), 3);
    assert_eq!(s2.translate(g(hole)), None);
    assert_eq!(s2.translate(g(hole + PAGE_SIZE + 4)), None);
    assert_eq!(s2.translate(g(hole - 4)), Some((h(0x8010_0000 - 4), MemAttrs::Ram)));
    assert_eq!(s2.translate(g(hole + 2 * PAGE_SIZE)), Some((h(0x8010_2000), MemAttrs::Ram)));
    assert_eq!(s2.descriptor(g(hole - 4)).unwrap().0, 3);
    // The second block is untouched.
    assert_eq!(s2.descriptor(g(GIB + MIB2)).unwrap().0, 2);
    // Pages after the hole and the next block are contiguous: one run.
    assert_eq!(s2.mappings().len(), 2);
    // Unmapping an unmapped range needs no invalidation.
    assert_eq!(s2.unmap(g(hole), PAGE_SIZE), Ok(Invalidate::None));
    // Unmapping the rest frees every table.
    s2.unmap(g(GIB), 2 * MIB2).unwrap();
    assert_eq!(s2.table_count(), 1);
    assert!(s2.mappings().is_empty());
}

#[test]
fn unmap_splits_a_gib_block_down_to_pages() {
    let mut s2 = new();
    s2.map(g(GIB), h(GIB), GIB, MemAttrs::Device).unwrap();
    s2.unmap(g(GIB + 3 * MIB2 + PAGE_SIZE), PAGE_SIZE).unwrap();
    assert_eq!(s2.table_count(), 3);
    assert_eq!(s2.descriptor(g(GIB)).unwrap().0, 2);
    assert_eq!(s2.descriptor(g(GIB + 3 * MIB2)).unwrap().0, 3);
    assert_eq!(s2.translate(g(GIB + 3 * MIB2 + PAGE_SIZE)), None);
    assert_eq!(s2.translate(g(2 * GIB - 1)), Some((h(2 * GIB - 1), MemAttrs::Device)));
    assert_eq!(s2.mappings().len(), 2);
}

#[test]
fn bad_table_addresses_are_refused() {
    fn unaligned(_: usize) -> u64 {
        0x1234
    }
    fn too_high(_: usize) -> u64 {
        PA_LIMIT
    }
    fn always_same(_: usize) -> u64 {
        0x4000_0000
    }
    assert!(matches!(Stage2::new(unaligned), Err(Stage2Error::BadTableAddress { phys: 0x1234, .. })));
    assert!(Stage2::new(too_high).is_err());
    let mut s2 = Stage2::new(always_same).unwrap();
    assert_eq!(s2.root_pa(), 0x4000_0000);
    assert!(matches!(s2.map(g(0), h(0), PAGE_SIZE, MemAttrs::Ram), Err(Stage2Error::BadTableAddress { .. })));
    assert_eq!(s2.table_count(), 1);
    // Blocks at level 1 need no new table.
    s2.map(g(0), h(0), GIB, MemAttrs::Ram).unwrap();
    assert!(matches!(s2.unmap(g(0), PAGE_SIZE), Err(Stage2Error::BadTableAddress { .. })));
    assert_eq!(s2.translate(g(0)), Some((h(0), MemAttrs::Ram)));
}

#[test]
fn failed_map_rolls_back_created_tables() {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    fn limited(virt: usize) -> u64 {
        if COUNT.fetch_add(1, Ordering::Relaxed) < 4 {
            fake_phys(virt)
        } else {
            PA_LIMIT
        }
    }
    let mut s2 = Stage2::new(limited).unwrap();
    // Misaligned host address: each 2 MiB needs its own level-3 table.
    let err = s2.map(g(GIB), h(PAGE_SIZE), 4 * MIB2, MemAttrs::Ram).unwrap_err();
    assert!(matches!(err, Stage2Error::BadTableAddress { .. }));
    assert_eq!(s2.table_count(), 1);
    assert!(s2.mappings().is_empty());
    assert_eq!(s2.translate(g(GIB)), None);
}

#[test]
fn mappings_merge_contiguous_runs_only() {
    let mut s2 = new();
    s2.map(g(0), h(0x10_0000), PAGE_SIZE, MemAttrs::Ram).unwrap();
    s2.map(g(PAGE_SIZE), h(0x10_1000), PAGE_SIZE, MemAttrs::Ram).unwrap();
    s2.map(g(2 * PAGE_SIZE), h(0x10_2000), PAGE_SIZE, MemAttrs::Device).unwrap();
    s2.map(g(3 * PAGE_SIZE), h(0x20_0000), PAGE_SIZE, MemAttrs::Device).unwrap();
    let m = s2.mappings();
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].size, 2 * PAGE_SIZE);
    assert_eq!(m[0].to_string(), "GPA 0x0..0x2000 -> HPA 0x100000 (0x2000 bytes, ram)");
}

#[test]
fn smmu_stage1_tables_map_the_same_way_with_stage1_attributes() {
    let mut s1 = Stage2::with_format(fake_phys, Format::SmmuStage1).unwrap();
    s1.map(g(0x4000_0000), h(0x8000_0000), MIB2 + PAGE_SIZE, MemAttrs::Ram).unwrap();
    s1.map(g(0x0900_0000), h(0x0900_0000), PAGE_SIZE, MemAttrs::Device).unwrap();
    assert_eq!(s1.translate(g(0x4000_1234)), Some((h(0x8000_1234), MemAttrs::Ram)));
    assert_eq!(s1.translate(g(0x4020_0010)), Some((h(0x8020_0010), MemAttrs::Ram)));
    assert_eq!(s1.translate(g(0x0900_0004)), Some((h(0x0900_0004), MemAttrs::Device)));
    assert_eq!(s1.translate(g(0x4020_1000)), None);
    // A 2 MiB block of RAM: AttrIndx 0, AP 0b01, inner shareable, AF, nG,
    // PXN and UXN; a page of device memory: AttrIndx 1, no shareability.
    assert_eq!(s1.descriptor(g(0x4000_0000)), Some((2, 0x8000_0000 | 0x0060_0000_0000_0f41)));
    assert_eq!(s1.descriptor(g(0x0900_0000)), Some((3, 0x0900_0000 | 0x0060_0000_0000_0c47)));
    // The CPU's stage 2 encodes the same map differently.
    let mut s2 = new();
    s2.map(g(0x4000_0000), h(0x8000_0000), MIB2, MemAttrs::Ram).unwrap();
    assert_ne!(s2.descriptor(g(0x4000_0000)), s1.descriptor(g(0x4000_0000)));
    s1.unmap(g(0x4000_0000), MIB2 + PAGE_SIZE).unwrap();
    assert_eq!(s1.translate(g(0x4000_1234)), None);
}
