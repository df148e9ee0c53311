//! Random sequences of guest accesses, SGIs, injections and LR traffic:
//! nothing panics, and a vCPU never holds one INTID in two list registers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

// Any number the fuzzer draws, folded into what the typed IDs can name:
// interrupts up to 1019 (beyond the vGIC's SPIs too), vCPUs up to 15
// (beyond the vGIC's vCPUs too). Larger values cannot reach the API.
fn gi(n: u32) -> ferrovisor_types::GuestIrq {
    common::gi(n % 1020)
}

fn vc(n: usize) -> ferrovisor_types::VcpuId {
    common::vc(n % 16)
}

fn hi(n: u32) -> ferrovisor_types::HostIrq {
    common::hi(n % 1020)
}
use ferrovisor_types::GuestPhysAddr;
use ferrovisor_vgic::lr::{lr_is_invalid, lr_vintid, LR_HW};
use ferrovisor_vgic::{Effects, Vgic};
use proptest::prelude::*;

const VCPUS: usize = 3;
const NLRS: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Read { vcpu: usize, addr: u64, size: u8 },
    Write { vcpu: usize, addr: u64, size: u8, value: u64 },
    Sgi { vcpu: usize, value: u64 },
    Level { intid: u32, vcpu: usize, level: bool },
    Edge { intid: u32, vcpu: usize },
    Link { intid: u32, vcpu: usize, pintid: u32 },
    Flush { vcpu: usize },
    Sync { vcpu: usize },
    Guest { vcpu: usize, lr: usize, eoi: bool },
    Corrupt { vcpu: usize, lr: usize, value: u64 },
}

/// Offsets where registers live, so random accesses hit them often.
const DIST_HOT: [u64; 12] = [0, 4, 0x80, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380, 0x400, 0xc00, 0x6000];
const REDIST_HOT: [u64; 12] =
    [0, 8, 0x14, 0xffe8, 0x10080, 0x10100, 0x10180, 0x10200, 0x10280, 0x10300, 0x10400, 0x10c04];

fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        (prop::sample::select(&DIST_HOT[..]), 0u64..0x120).prop_map(|(b, o)| DIST + b + o),
        (0usize..VCPUS + 1, prop::sample::select(&REDIST_HOT[..]), 0u64..0x40)
            .prop_map(|(v, b, o)| REDIST + 0x2_0000 * v as u64 + b + o),
        (0u64..0x1_0000).prop_map(|o| DIST + o),
        (0u64..0x8_0000).prop_map(|o| REDIST + o),
        any::<u64>(),
    ]
}

fn size() -> impl Strategy<Value = u8> {
    prop_oneof![4 => Just(4u8), 2 => Just(8u8), 2 => Just(1u8), 1 => Just(2u8), 1 => any::<u8>()]
}

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), Just(u64::MAX), Just(0u64), (0u64..8).prop_map(|b| 1 << (b * 5))]
}

fn intid() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..100, 1 => any::<u32>()]
}

fn vcpu() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 0usize..VCPUS, 1 => any::<usize>()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (vcpu(), addr(), size()).prop_map(|(vcpu, addr, size)| Op::Read { vcpu, addr, size }),
        8 => (vcpu(), addr(), size(), value())
            .prop_map(|(vcpu, addr, size, value)| Op::Write { vcpu, addr, size, value }),
        2 => (vcpu(), value()).prop_map(|(vcpu, value)| Op::Sgi { vcpu, value }),
        3 => (intid(), vcpu(), any::<bool>()).prop_map(|(intid, vcpu, level)| Op::Level { intid, vcpu, level }),
        3 => (intid(), vcpu()).prop_map(|(intid, vcpu)| Op::Edge { intid, vcpu }),
        1 => (intid(), vcpu(), prop_oneof![10u32..100, any::<u32>()])
            .prop_map(|(intid, vcpu, pintid)| Op::Link { intid, vcpu, pintid }),
        4 => (0..VCPUS).prop_map(|vcpu| Op::Flush { vcpu }),
        2 => (0..VCPUS).prop_map(|vcpu| Op::Sync { vcpu }),
        4 => (0..VCPUS, 0..NLRS, any::<bool>()).prop_map(|(vcpu, lr, eoi)| Op::Guest { vcpu, lr, eoi }),
        1 => (0..VCPUS, 0..NLRS, any::<u64>()).prop_map(|(vcpu, lr, value)| Op::Corrupt { vcpu, lr, value }),
    ]
}

fn check_lrs(g: &Vgic, vcpu: usize, l: &[u64]) {
    let valid: Vec<u32> = l.iter().filter(|&&x| !lr_is_invalid(x)).map(|&x| lr_vintid(x)).collect();
    for (i, a) in valid.iter().enumerate() {
        assert!(!valid[i + 1..].contains(a), "INTID {a} twice in the LRs of vCPU {vcpu}: {l:x?}");
        let info = g.irq_info(gi(*a), vc(vcpu)).unwrap();
        assert_eq!(info.in_lr, Some(vc(vcpu)), "INTID {a} loaded but not owned");
    }
    for &x in l {
        assert!(!(x & LR_HW != 0 && x >> 62 == 3), "HW LR pending+active: {x:#x}");
        assert!(x == 0 || !lr_is_invalid(x), "flush left an invalid non-zero LR");
    }
}

fn run(g: &mut Vgic, ops: &[Op]) {
    let mut banks = vec![vec![0u64; NLRS]; VCPUS];
    let mut fx = Effects::new();
    for op in ops {
        match *op {
            Op::Read { vcpu, addr, size } => {
                g.mmio_read(vc(vcpu), GuestPhysAddr(addr), size);
            }
            Op::Write { vcpu, addr, size, value } => {
                g.mmio_write(vc(vcpu), GuestPhysAddr(addr), size, value, &mut fx)
            }
            Op::Sgi { vcpu, value } => g.write_sgi1r(vc(vcpu), value, &mut fx),
            Op::Level { intid, vcpu, level } => g.set_level(gi(intid), vc(vcpu), level, &mut fx),
            Op::Edge { intid, vcpu } => g.raise_edge(gi(intid), vc(vcpu), &mut fx),
            Op::Link { intid, vcpu, pintid } => {
                let _ = g.link_hw(gi(intid), vc(vcpu), hi(pintid));
            }
            Op::Flush { vcpu } => {
                let f = g.flush_lrs(vc(vcpu), &mut banks[vcpu]);
                assert!(f.used <= NLRS);
                assert_eq!(f.kicks & (1 << vcpu), 0);
                check_lrs(g, vcpu, &banks[vcpu]);
            }
            Op::Sync { vcpu } => g.sync_lrs(vc(vcpu), &mut banks[vcpu]),
            Op::Guest { vcpu, lr, eoi: true } => common::eoi(&mut banks[vcpu][lr]),
            Op::Guest { vcpu, lr, eoi: false } => common::ack(&mut banks[vcpu][lr]),
            Op::Corrupt { vcpu, lr, value } => banks[vcpu][lr] = value,
        }
        for e in fx.drain() {
            if let ferrovisor_vgic::Effect::Kick { vcpu } = e {
                assert!(vcpu.index() < VCPUS);
            }
        }
        for v in 0..VCPUS {
            g.has_deliverable(vc(v));
        }
    }
    // Drain: after the guest handles everything, nothing stays stuck in LRs
    // that are not in the banks.
    for (v, bank) in banks.iter_mut().enumerate() {
        g.sync_lrs(vc(v), bank);
        g.flush_lrs(vc(v), bank);
        check_lrs(g, v, bank);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_traffic_never_panics_nor_duplicates(ops in prop::collection::vec(op(), 1..200)) {
        let mut g = vgic(VCPUS, 64);
        run(&mut g, &ops);
    }

    #[test]
    fn random_traffic_after_linux_init(ops in prop::collection::vec(op(), 1..200)) {
        let mut g = vgic(VCPUS, 64);
        linux_init(&mut g);
        let mut fx = Effects::new();
        for v in 0..VCPUS {
            w32(&mut g, v, sgi(v, 0x100), !0);
            let _ = g.link_hw(gi(27), vc(v), hi(27));
        }
        for i in 0..2 {
            g.mmio_write(vc(0), gicd(0x104 + 4 * i), 4, u64::from(u32::MAX), &mut fx);
        }
        run(&mut g, &ops);
    }

    #[test]
    fn arbitrary_configs_never_panic(vcpus in 0usize..20, spis in 0u32..1100, d in any::<u64>(), r in any::<u64>()) {
        let cfg = ferrovisor_vgic::VgicConfig {
            vcpus, spis, dist_base: GuestPhysAddr(d & !0xffff), redist_base: GuestPhysAddr(r & !0xffff),
        };
        if let Ok(mut g) = Vgic::new(cfg) {
            let (base, size) = g.redist_range();
            prop_assert!(base.0.checked_add(size).is_some());
            let last = base.0 + size - 0x2_0000 + 8;
            prop_assert_eq!(g.mmio_read(vc(0), GuestPhysAddr(last), 8) & 0x10, 0x10);
        }
    }
}

/// Every LR eventually drains when the guest keeps handling interrupts.
#[test]
fn everything_pending_drains() {
    let mut g = vgic(2, 64);
    linux_init(&mut g);
    let mut fx = Effects::new();
    for i in 0..2 {
        g.mmio_write(vc(0), gicd(0x104 + 4 * i), 4, u64::from(u32::MAX), &mut fx);
    }
    for intid in 32..96 {
        g.raise_edge(gi(intid), vc(0), &mut fx);
    }
    let mut l = lrs(NLRS);
    let mut rounds = 0;
    while g.flush_lrs(vc(0), &mut l).used > 0 {
        handle_all(&mut l);
        g.sync_lrs(vc(0), &mut l);
        rounds += 1;
        assert!(rounds <= 16);
    }
    assert_eq!(rounds, 16);
    assert!(!g.has_deliverable(vc(0)));
}
