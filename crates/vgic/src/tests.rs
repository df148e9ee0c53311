//! Unit tests of the internals: routing, register decoding, effects, reset state.

use crate::regs::BitReg;
use crate::testids::{gi, hi, vc};
use crate::*;

fn g(vcpus: usize) -> Vgic {
    let cfg = VgicConfig {
        vcpus,
        spis: 64,
        dist_base: GuestPhysAddr(0x800_0000),
        redist_base: GuestPhysAddr(0x80a_0000),
    };
    Vgic::new(cfg).unwrap()
}

#[test]
fn routes_map_affinity_to_vcpus() {
    let v = g(4);
    assert_eq!(v.route_target(0), Some(0));
    assert_eq!(v.route_target(3), Some(3));
    assert_eq!(v.route_target(4), None);
    assert_eq!(v.route_target(0x100), None, "Aff1");
    assert_eq!(v.route_target(0x1_0000_0000), None, "Aff3");
    assert_eq!(v.route_target(dist::IROUTER_IRM | 0xff), Some(0), "IRM");
}

#[test]
fn bit_arrays_decode() {
    assert_eq!(BitReg::at(0x80), Some((BitReg::Group, 0)));
    assert_eq!(BitReg::at(0x104), Some((BitReg::SetEnable, 1)));
    assert_eq!(BitReg::at(0x3fc), Some((BitReg::ClearActive, 31)));
    assert_eq!(BitReg::at(0x400), None);
    assert_eq!(BitReg::at(0x7f), None);
}

#[test]
fn kicks_are_deduplicated() {
    let mut fx = Effects::new();
    fx.push(Effect::Kick { vcpu: vc(1) });
    fx.push(Effect::HwEnable { pintid: hi(40), enable: true });
    fx.push(Effect::Kick { vcpu: vc(1) });
    fx.push(Effect::HwEnable { pintid: hi(40), enable: true });
    assert_eq!(fx.len(), 3);
    assert_eq!(fx.drain().count(), 3);
    assert!(fx.is_empty());
}

#[test]
fn effects_beyond_the_inline_ones_keep_their_order() {
    let mut fx = Effects::new();
    for pintid in 0..40 {
        fx.push(Effect::HwEnable { pintid: hi(pintid), enable: true });
        fx.push(Effect::Kick { vcpu: vc((pintid % 3) as usize) });
    }
    // 40 enables and 3 distinct kicks, deduplicated across the spill.
    assert_eq!(fx.len(), 43);
    let all: alloc::vec::Vec<Effect> = fx.drain().collect();
    assert_eq!(all.first(), Some(&Effect::HwEnable { pintid: hi(0), enable: true }));
    assert_eq!(all.get(1), Some(&Effect::Kick { vcpu: vc(0) }));
    assert_eq!(all.last(), Some(&Effect::HwEnable { pintid: hi(39), enable: true }));
    let enables: alloc::vec::Vec<u32> = all
        .iter()
        .filter_map(|e| match e {
            Effect::HwEnable { pintid, .. } => Some(pintid.raw()),
            _ => None,
        })
        .collect();
    assert_eq!(enables, (0..40).collect::<alloc::vec::Vec<u32>>());
    assert!(fx.is_empty());
    fx.push(Effect::Kick { vcpu: vc(2) });
    assert_eq!(fx.to_vec(), [Effect::Kick { vcpu: vc(2) }], "usable again after a drain");
}

#[test]
fn reset_state() {
    let v = g(2);
    let sgi = v.irq_info(gi(0), vc(1)).unwrap();
    assert!(sgi.edge && sgi.group1 && !sgi.enabled);
    let ppi = v.irq_info(gi(27), vc(1)).unwrap();
    assert!(!ppi.edge && ppi.target == Some(vc(1)));
    assert_eq!(v.irq_info(gi(96), vc(0)), None);
    assert_eq!(v.irq_info(gi(3), vc(2)), None);
    assert!(!v.has_deliverable(vc(0)) && !v.has_deliverable(vc(7)));
}
