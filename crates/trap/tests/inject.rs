//! Injected exceptions: vector offsets, PSTATE and ESR_EL1 for each kind and origin.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferrovisor_trap::inject::INJECTED_PSTATE;
use ferrovisor_trap::{
    inject_data_abort, inject_instruction_abort, inject_undefined, vector_offset, El1Context,
};
use proptest::prelude::*;

const VBAR: u64 = 0xffff_8000_1001_0800;
const EL1H: u64 = 0x3c5 | 0xf000_0000; // EL1h with flags set, to check none are kept
const EL1T: u64 = 0x4;
const EL0: u64 = 0x0;
const AARCH32_USR: u64 = 0x10;

fn ctx(pstate: u64) -> El1Context {
    El1Context { pc: 0x4008_1234, pstate, vbar_el1: VBAR }
}

#[test]
fn vector_offsets() {
    assert_eq!(vector_offset(EL1T), 0x000);
    assert_eq!(vector_offset(EL1H), 0x200);
    assert_eq!(vector_offset(EL0), 0x400);
    assert_eq!(vector_offset(AARCH32_USR), 0x600);
    assert_eq!(vector_offset(0x1f), 0x600);
}

#[test]
fn data_abort_from_el1h() {
    let inj = inject_data_abort(&ctx(EL1H), 0xdead_b000, true);
    assert_eq!(inj.pc, VBAR + 0x200);
    assert_eq!(inj.pstate, INJECTED_PSTATE);
    assert_eq!(inj.pstate, 0x3c5);
    assert_eq!((inj.elr_el1, inj.spsr_el1), (0x4008_1234, EL1H));
    // EC 0x25, IL, WnR, DFSC 0b010000.
    assert_eq!(inj.esr_el1, 0x9600_0050);
    assert_eq!(inj.far_el1, Some(0xdead_b000));
    let read = inject_data_abort(&ctx(EL1H), 0, false);
    assert_eq!(read.esr_el1, 0x9600_0010);
}

#[test]
fn data_abort_from_el0_and_el1t() {
    let inj = inject_data_abort(&ctx(EL0), 0x1000, false);
    assert_eq!(inj.pc, VBAR + 0x400);
    assert_eq!(inj.esr_el1, 0x9200_0010); // EC 0x24
    let inj = inject_data_abort(&ctx(EL1T), 0x1000, true);
    assert_eq!(inj.pc, VBAR);
    assert_eq!(inj.esr_el1, 0x9600_0050);
    let inj = inject_data_abort(&ctx(AARCH32_USR), 0x1000, true);
    assert_eq!(inj.pc, VBAR + 0x600);
    assert_eq!(inj.esr_el1, 0x9200_0050);
}

#[test]
fn instruction_abort() {
    let inj = inject_instruction_abort(&ctx(EL1H), 0x4008_1234);
    assert_eq!(inj.pc, VBAR + 0x200);
    assert_eq!(inj.esr_el1, 0x8600_0010); // EC 0x21, IL, IFSC 0b010000
    assert_eq!(inj.far_el1, Some(0x4008_1234));
    let inj = inject_instruction_abort(&ctx(EL0), 0x40_0000);
    assert_eq!(inj.pc, VBAR + 0x400);
    assert_eq!(inj.esr_el1, 0x8200_0010); // EC 0x20
}

#[test]
fn undefined() {
    for (pstate, offset) in [(EL1H, 0x200), (EL1T, 0), (EL0, 0x400), (AARCH32_USR, 0x600)] {
        let inj = inject_undefined(&ctx(pstate));
        assert_eq!(inj.pc, VBAR + offset);
        assert_eq!(inj.esr_el1, 0x0200_0000); // EC 0, IL
        assert_eq!(inj.far_el1, None);
        assert_eq!((inj.pstate, inj.spsr_el1), (0x3c5, pstate));
    }
}

#[test]
fn vbar_res0_bits_and_wrapping() {
    let c = El1Context { pc: 0, pstate: EL1H, vbar_el1: u64::MAX };
    // VBAR_EL1[10:0] are RES0 and ignored.
    assert_eq!(inject_undefined(&c).pc, 0xffff_ffff_ffff_fa00);
    let c = El1Context { vbar_el1: 0x4000_07ff, ..c };
    assert_eq!(inject_undefined(&c).pc, 0x4000_0200);
}

proptest! {
    #[test]
    fn injections_never_panic(pc in any::<u64>(), pstate in any::<u64>(), vbar in any::<u64>(), far in any::<u64>(), w in any::<bool>()) {
        let c = El1Context { pc, pstate, vbar_el1: vbar };
        for inj in [inject_data_abort(&c, far, w), inject_instruction_abort(&c, far), inject_undefined(&c)] {
            prop_assert_eq!(inj.pstate, INJECTED_PSTATE);
            prop_assert_eq!(inj.elr_el1, pc);
            prop_assert_eq!(inj.pc & 0x7ff & !0x600, 0);
        }
    }
}
