//! Unit tests of the internals: routing, register decoding, effects, reset state.

use crate::regs::BitReg;
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
    fx.push(Effect::Kick { vcpu: 1 });
    fx.push(Effect::HwEnable { pintid: 40, enable: true });
    fx.push(Effect::Kick { vcpu: 1 });
    fx.push(Effect::HwEnable { pintid: 40, enable: true });
    assert_eq!(fx.len(), 3);
    assert_eq!(fx.drain().count(), 3);
    assert!(fx.is_empty());
}

#[test]
fn reset_state() {
    let v = g(2);
    let sgi = v.irq_info(0, 1).unwrap();
    assert!(sgi.edge && sgi.group1 && !sgi.enabled);
    let ppi = v.irq_info(27, 1).unwrap();
    assert!(!ppi.edge && ppi.target == Some(1));
    assert_eq!(v.irq_info(96, 0), None);
    assert_eq!(v.irq_info(3, 2), None);
    assert!(!v.has_deliverable(0) && !v.has_deliverable(7));
}
