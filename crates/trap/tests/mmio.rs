//! Faulting IPAs and the register values of emulated loads and stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferrovisor_trap::{fault_ipa, read_result, write_value, DataAbort};
use ferrovisor_types::GuestPhysAddr;
use proptest::prelude::*;

fn access(size: u8, sign_extend: bool, sixty_four: bool) -> DataAbort {
    DataAbort {
        isv: true,
        size,
        sign_extend,
        reg: 0,
        sixty_four,
        acquire_release: false,
        write: false,
        s1ptw: false,
        cache_maintenance: false,
        dfsc: 0x07,
        far_valid: true,
    }
}

#[test]
fn fault_ipa_combines_hpfar_and_far() {
    // IPA 0x0900_0018 (a PL011 register): HPFAR.FIPA = 0x9000 at bit 4.
    assert_eq!(fault_ipa(0x9_0000, 0xffff_0000_dead_b018), GuestPhysAddr(0x0900_0018));
    // Highest FIPA bit (IPA[51]) kept; HPFAR bits above 43 and below 4 dropped.
    assert_eq!(fault_ipa(0xffff_f000_0000_000f | (1 << 43), 0xfff), GuestPhysAddr((1 << 51) | 0xfff));
    assert_eq!(fault_ipa(0, 0x1234), GuestPhysAddr(0x234));
}

#[test]
fn load_results() {
    // (raw, size, SSE, SF, expected)
    let table: &[(u64, u8, bool, bool, u64)] = &[
        (0x1234_5678_9abc_def0, 1, false, false, 0xf0),
        (0x1234_5678_9abc_def0, 1, true, false, 0xffff_fff0),
        (0x1234_5678_9abc_def0, 1, true, true, 0xffff_ffff_ffff_fff0),
        (0x1234_5678_9abc_de70, 1, true, true, 0x70),
        (0x1234_5678_9abc_def0, 2, false, true, 0xdef0),
        (0x1234_5678_9abc_def0, 2, true, false, 0xffff_def0),
        (0x1234_5678_9abc_def0, 2, true, true, 0xffff_ffff_ffff_def0),
        (0x1234_5678_9abc_def0, 4, false, false, 0x9abc_def0),
        (0x1234_5678_9abc_def0, 4, false, true, 0x9abc_def0),
        (0x1234_5678_9abc_def0, 4, true, true, 0xffff_ffff_9abc_def0),
        (0x1234_5678_1abc_def0, 4, true, true, 0x1abc_def0),
        (0x1234_5678_9abc_def0, 8, false, true, 0x1234_5678_9abc_def0),
        (0x8234_5678_9abc_def0, 8, true, true, 0x8234_5678_9abc_def0),
        // A W register never keeps bits 63:32.
        (0x1234_5678_9abc_def0, 8, false, false, 0x9abc_def0),
    ];
    for &(raw, size, sse, sf, want) in table {
        assert_eq!(
            read_result(raw, &access(size, sse, sf)),
            want,
            "raw {raw:#x} size {size} sse {sse} sf {sf}"
        );
    }
}

#[test]
fn store_values() {
    let v = 0x1234_5678_9abc_def0;
    assert_eq!(write_value(v, &access(1, false, false)), 0xf0);
    assert_eq!(write_value(v, &access(2, false, false)), 0xdef0);
    assert_eq!(write_value(v, &access(4, false, true)), 0x9abc_def0);
    assert_eq!(write_value(v, &access(8, false, true)), v);
    // Sizes the hardware never reports are handled without panicking.
    assert_eq!(write_value(v, &access(0, false, true)), 0);
    assert_eq!(write_value(v, &access(3, false, true)), 0xbc_def0);
    assert_eq!(write_value(v, &access(200, false, true)), v);
}

proptest! {
    #[test]
    fn accessors_never_panic(raw in any::<u64>(), size in any::<u8>(), sse in any::<bool>(), sf in any::<bool>(), hpfar in any::<u64>(), far in any::<u64>()) {
        let da = access(size, sse, sf);
        let r = read_result(raw, &da);
        if !sf {
            prop_assert_eq!(r >> 32, 0);
        }
        let _ = write_value(raw, &da);
        let _ = fault_ipa(hpfar, far);
    }
}
