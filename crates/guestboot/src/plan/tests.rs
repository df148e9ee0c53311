//! Tests of boot placement: Image and raw kernels, DTB rules, overlaps.

use super::*;
use crate::image::test_header;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

const MIB: u64 = 1 << 20;
const BASE: GuestPhysAddr = GuestPhysAddr(0x4000_0000);

fn image(text_offset: u64, image_size: u64, file_len: usize) -> Vec<u8> {
    let mut k = vec![0u8; file_len];
    k[..64].copy_from_slice(&test_header(text_offset, image_size, 0xa));
    k
}

#[test]
fn image_at_aligned_base() {
    let k = image(0, 40 * MIB, 4096);
    let p = plan(BASE, 1024 * MIB, &k, Some(10 * MIB), 0x2000).unwrap();
    assert_eq!(p.kernel, BASE);
    assert_eq!(p.entry, BASE);
    assert_eq!(p.kernel_size, 40 * MIB);
    // Last 2 MiB block of the first 512 MiB.
    assert_eq!(p.dtb, GuestPhysAddr(BASE.raw() + 510 * MIB));
    assert_eq!(p.initrd, Some(GuestPhysAddr(BASE.raw() + 500 * MIB)));
}

#[test]
fn image_honours_text_offset_and_legacy_kernels() {
    let k = image(0x8_0000, 0x10_0000, 0x20_0000);
    let p = plan(BASE, 64 * MIB, &k, None, 100).unwrap();
    assert_eq!(p.kernel, GuestPhysAddr(BASE.raw() + 0x8_0000));
    assert_eq!(p.entry, p.kernel);
    assert_eq!(p.kernel_size, 0x20_0000, "file longer than image_size");
    assert_eq!(p.dtb, GuestPhysAddr(BASE.raw() + 62 * MIB));
    assert_eq!(p.initrd, None);
    let old = image(0, 0, 4096);
    let p = plan(BASE, 64 * MIB, &old, None, 100).unwrap();
    assert_eq!(p.kernel, GuestPhysAddr(BASE.raw() + 0x8_0000));
}

#[test]
fn image_needs_2mib_aligned_ram() {
    let k = image(0, MIB, 4096);
    let base = GuestPhysAddr(0x4010_0000);
    let err = plan(base, 64 * MIB, &k, None, 100).unwrap_err();
    assert_eq!(err, PlanError::UnalignedRamBase { ram_base: base });
    assert!(err.to_string().contains("0x40100000"));
    assert!(err.to_string().contains("2 MiB"));
}

#[test]
fn raw_binary_at_ram_base() {
    let k = vec![0x14u8; 0x3000];
    let base = GuestPhysAddr(0x8010_0000); // not 2 MiB aligned: fine for raw
    let p = plan(base, 16 * MIB, &k, Some(0x1800), 0x1000).unwrap();
    assert_eq!((p.kernel, p.entry, p.kernel_size), (base, base, 0x3000));
    // RAM ends at 0x81100000; last whole block is 0x80e00000.
    assert_eq!(p.dtb, GuestPhysAddr(0x80e0_0000));
    assert_eq!(p.initrd, Some(GuestPhysAddr(0x80df_e000)));
}

#[test]
fn dtb_in_small_ram_does_not_cross_2mib() {
    // 1 MiB of RAM straddling a 2 MiB boundary at 0x200000.
    let base = GuestPhysAddr(0x18_0000);
    let k = vec![1u8; 0x1000];
    let p = plan(base, MIB, &k, Some(0x2000), 0x10_0000 - 0x10).unwrap_err();
    assert!(matches!(p, PlanError::NoRoom { blob: Blob::Dtb, .. }));
    let p = plan(base, MIB, &k, Some(0x2000), 0x1_0004).unwrap();
    let dtb = p.dtb.raw();
    assert_eq!(dtb % 8, 0);
    assert_eq!(dtb / SZ_2M, (dtb + 0x1_0004 - 1) / SZ_2M);
    assert_eq!(dtb, 0x20_0000 + 0x8_0000 - 0x1_0008);
    // The initrd ends at the start of the DTB's 2 MiB block.
    assert_eq!(p.initrd, Some(GuestPhysAddr(0x20_0000 - 0x2000)));
    // When that block starts below RAM, the initrd goes right under the DTB.
    let base = GuestPhysAddr(0x21_0000);
    let p = plan(base, MIB, &k, Some(0x2000), 0x1000).unwrap();
    assert_eq!(p.dtb, GuestPhysAddr(0x31_0000 - 0x1000));
    assert_eq!(p.initrd, Some(GuestPhysAddr(0x31_0000 - 0x3000)));
}

#[test]
fn dtb_size_limits() {
    let k = vec![1u8; 16];
    assert_eq!(plan(BASE, 64 * MIB, &k, None, 0), Err(PlanError::EmptyDtb));
    let err = plan(BASE, 64 * MIB, &k, None, SZ_2M + 1).unwrap_err();
    assert_eq!(err, PlanError::DtbTooLarge { len: SZ_2M + 1 });
    assert!(err.to_string().contains("0x200001"));
    assert!(plan(BASE, 64 * MIB, &k, None, SZ_2M).is_ok());
}

#[test]
fn overlaps_are_reported_with_numbers() {
    // 8 MiB guest, 7 MiB kernel: the DTB block at +6 MiB overlaps it.
    let k = image(0, 7 * MIB, 4096);
    let err = plan(BASE, 8 * MIB, &k, None, 0x1000).unwrap_err();
    assert_eq!(
        err,
        PlanError::Overlap {
            a: Blob::Kernel,
            a_range: (0x4000_0000, 0x4070_0000),
            b: Blob::Dtb,
            b_range: (0x4060_0000, 0x4060_1000)
        }
    );
    assert!(err.to_string().contains("[0x40000000, 0x40700000)"));
    // Initrd running into the kernel.
    let k = image(0, 4 * MIB, 4096);
    let err = plan(BASE, 16 * MIB, &k, Some(12 * MIB), 0x1000).unwrap_err();
    assert!(matches!(err, PlanError::Overlap { a: Blob::Kernel, b: Blob::Initrd, .. }));
    // Initrd larger than everything below the DTB.
    let err = plan(BASE, 16 * MIB, &k, Some(15 * MIB), 0x1000).unwrap_err();
    assert!(matches!(err, PlanError::NoRoom { blob: Blob::Initrd, .. }));
}

#[test]
fn kernel_must_fit_in_ram() {
    let k = image(0, 80 * MIB, 4096);
    let err = plan(BASE, 64 * MIB, &k, None, 0x1000).unwrap_err();
    assert!(matches!(err, PlanError::OutsideRam { blob: Blob::Kernel, .. }));
    assert!(err.to_string().contains("0x5000000"));
    assert_eq!(plan(BASE, 64 * MIB, &[], None, 1), Err(PlanError::EmptyKernel));
    assert!(matches!(
        plan(GuestPhysAddr(u64::MAX - 10), 64, &k, None, 1),
        Err(PlanError::RamOverflow { .. })
    ));
    let huge = image(u64::MAX - 0x1000, 4096, 4096);
    assert!(plan(GuestPhysAddr(0), 64 * MIB, &huge, None, 8).is_err());
}

fn disjoint(a: (u64, u64), b: (u64, u64)) -> bool {
    a.1 <= b.0 || b.1 <= a.0
}

proptest! {
    #[test]
    fn never_panics_and_results_are_sound(
        base in prop_oneof![any::<u64>(), (0u64..0x1_0000).prop_map(|b| b * PAGE)],
        size in prop_oneof![any::<u64>(), (0u64..0x10_0000).prop_map(|s| s * PAGE)],
        is_image in any::<bool>(),
        text_offset in prop_oneof![Just(0u64), Just(0x8_0000), any::<u64>()],
        image_size in prop_oneof![Just(0u64), 0u64..(1 << 30), any::<u64>()],
        file_len in 0usize..0x2000,
        initrd in proptest::option::of(prop_oneof![0u64..(1 << 30), any::<u64>()]),
        dtb_len in prop_oneof![0u64..0x30_0000, any::<u64>()],
    ) {
        let mut k = vec![0u8; file_len];
        if is_image && file_len >= 64 {
            k[..64].copy_from_slice(&test_header(text_offset, image_size, 0));
        }
        if let Ok(p) = plan(GuestPhysAddr(base), size, &k, initrd, dtb_len) {
            let end = base + size;
            let kr = (p.kernel.raw(), p.kernel.raw() + p.kernel_size);
            let dr = (p.dtb.raw(), p.dtb.raw() + dtb_len);
            prop_assert!(kr.0 >= base && kr.1 <= end);
            prop_assert!(dr.0 >= base && dr.1 <= end);
            prop_assert_eq!(dr.0 % 8, 0);
            prop_assert_eq!(dr.0 / SZ_2M, (dr.1 - 1) / SZ_2M);
            prop_assert!(disjoint(kr, dr));
            if let (Some(i), Some(len)) = (p.initrd, initrd) {
                let ir = (i.raw(), i.raw() + len);
                prop_assert_eq!(ir.0 % PAGE, 0);
                prop_assert!(ir.0 >= base && ir.1 <= end);
                prop_assert!(len == 0 || (disjoint(ir, kr) && disjoint(ir, dr)));
            }
        }
    }
}
