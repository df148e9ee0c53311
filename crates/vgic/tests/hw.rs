//! Interrupts backed by physical ones (`link_hw`): LR encoding with HW=1,
//! mirroring of the guest's configuration, and physical deactivation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ferrovisor_vgic::lr::{LR_ACTIVE, LR_EOI, LR_GROUP, LR_HW, LR_PENDING};
use ferrovisor_vgic::{Effect, Effects, VgicError};

#[test]
fn virtual_timer_ppi_is_delivered_with_hw_bit() {
    let mut g = vgic(2, 32);
    linux_init(&mut g);
    for v in 0..2 {
        g.link_hw(gi(27), vc(v), hi(27)).unwrap();
    }
    let fx = w32(&mut g, 1, sgi(1, 0x100), 1 << 27);
    assert_eq!(fx, [Effect::HwEnable { pintid: hi(27), enable: true }]);
    let mut fx = Effects::new();
    g.raise_edge(gi(27), vc(1), &mut fx);
    assert_eq!(fx.to_vec(), [Effect::Kick { vcpu: vc(1) }]);
    let mut l = lrs(4);
    g.flush_lrs(vc(1), &mut l);
    assert_eq!(l[0], 27 | (27 << 32) | (0xa0 << 48) | LR_GROUP | LR_HW | LR_PENDING);
    assert_eq!(l[0] & LR_EOI, 0);
    // The guest takes it; a software pend meanwhile never makes a HW LR
    // pending+active.
    ack(&mut l[0]);
    g.sync_lrs(vc(1), &mut l);
    w32(&mut g, 1, sgi(1, 0x200), 1 << 27);
    g.flush_lrs(vc(1), &mut l);
    assert_eq!(l[0] >> 62, 2);
    // Deactivation (which hardware forwards to the physical timer PPI)
    // frees the LR; the software pend then arrives without HW.
    eoi(&mut l[0]);
    g.sync_lrs(vc(1), &mut l);
    g.flush_lrs(vc(1), &mut l);
    assert_eq!(loaded(&l), [27]);
    assert_eq!(l[0] & LR_HW, 0);
    // vCPU 0's timer is a separate bank.
    assert!(!g.irq_info(gi(27), vc(0)).unwrap().enabled);
}

#[test]
fn passed_through_spi_mirrors_its_configuration() {
    let mut g = vgic(2, 64);
    g.link_hw(gi(48), vc(0), hi(80)).unwrap();
    let mut fx = Effects::new();
    g.mmio_write(vc(0), gicd(0x400 + 48), 1, 0x87, &mut fx);
    assert_eq!(fx.to_vec(), [Effect::HwPriority { pintid: hi(80), priority: 0x80 }]);
    let fx = w64(&mut g, 0, gicd(0x6000 + 8 * 48), 1);
    assert_eq!(fx, [Effect::HwRoute { pintid: hi(80), vcpu: vc(1) }]);
    let fx = w32(&mut g, 0, gicd(0xc0c), 2);
    assert_eq!(fx, [Effect::HwConfig { pintid: hi(80), edge: true }]);
    assert!(w32(&mut g, 0, gicd(0xc0c), 2).is_empty(), "no change, no effect");
    let fx = w32(&mut g, 0, gicd(0x104), 1 << 16);
    assert_eq!(fx, [Effect::HwEnable { pintid: hi(80), enable: true }]);
    let fx = w32(&mut g, 0, gicd(0x184), 1 << 16);
    assert_eq!(fx, [Effect::HwEnable { pintid: hi(80), enable: false }]);
    // Routed nowhere: no HwRoute.
    assert!(w64(&mut g, 0, gicd(0x6000 + 8 * 48), 7).is_empty());
    assert_eq!(g.unlink_hw(gi(48), vc(0)), Some(hi(80)));
    assert!(w32(&mut g, 0, gicd(0x104), 1 << 16).is_empty());
}

#[test]
fn discarding_hw_state_asks_for_physical_deactivation() {
    let mut g = vgic(1, 32);
    linux_init(&mut g);
    g.link_hw(gi(40), vc(0), hi(90)).unwrap();
    w32(&mut g, 0, gicd(0x104), 1 << 8);
    let mut fx = Effects::new();
    // Pending, not yet loaded: ICPENDR drops the physical activation.
    g.raise_edge(gi(40), vc(0), &mut fx);
    let fx = w32(&mut g, 0, gicd(0x284), 1 << 8);
    assert_eq!(fx, [Effect::HwDeactivate { pintid: hi(90) }]);
    let mut l = lrs(2);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
    // Active in an LR: ICACTIVER drops it.
    let mut fx = Effects::new();
    g.raise_edge(gi(40), vc(0), &mut fx);
    g.flush_lrs(vc(0), &mut l);
    ack(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    let fx = w32(&mut g, 0, gicd(0x384), 1 << 8);
    assert_eq!(fx, [Effect::HwDeactivate { pintid: hi(90) }]);
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
    // A software-only pend has no physical activation to drop.
    w32(&mut g, 0, gicd(0x204), 1 << 8);
    assert!(w32(&mut g, 0, gicd(0x284), 1 << 8).is_empty());
}

#[test]
fn physical_fire_during_a_software_delivery_waits_for_a_hw_lr() {
    let mut g = vgic(1, 32);
    linux_init(&mut g);
    g.link_hw(gi(40), vc(0), hi(90)).unwrap();
    w32(&mut g, 0, gicd(0x104), 1 << 8);
    w32(&mut g, 0, gicd(0x204), 1 << 8);
    let mut l = lrs(2);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(l[0] & LR_HW, 0);
    ack(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    let mut fx = Effects::new();
    g.raise_edge(gi(40), vc(0), &mut fx);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(l[0] >> 62, 2, "not merged into the software LR");
    eoi(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(l[0] & (LR_HW | LR_PENDING | LR_ACTIVE), LR_HW | LR_PENDING);
    assert_eq!((l[0] >> 32) & 0x1fff, 90);
}

#[test]
fn hw_level_interrupt_is_not_resampled_by_the_model() {
    let mut g = vgic(1, 32);
    linux_init(&mut g);
    g.link_hw(gi(41), vc(0), hi(91)).unwrap();
    w32(&mut g, 0, gicd(0x104), 1 << 9);
    let mut fx = Effects::new();
    g.raise_edge(gi(41), vc(0), &mut fx);
    let mut l = lrs(2);
    g.flush_lrs(vc(0), &mut l);
    handle_all(&mut l);
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0, "the physical GIC re-fires if still asserted");
}

#[test]
fn link_hw_rejects_bad_numbers() {
    let mut g = vgic(2, 32);
    assert_eq!(g.link_hw(gi(5), vc(0), hi(27)), Err(VgicError::BadIntid(5)));
    assert_eq!(g.link_hw(gi(64), vc(0), hi(100)), Err(VgicError::BadIntid(64)));
    assert_eq!(g.link_hw(gi(27), vc(2), hi(27)), Err(VgicError::BadIntid(27)));
    assert_eq!(g.link_hw(gi(27), vc(0), hi(15)), Err(VgicError::BadPintid(hi(15))));
    // INTID 1020 and above cannot even be named as a HostIrq.
    assert_eq!(g.link_hw(gi(63), vc(0), hi(1019)), Ok(()));
    assert_eq!(g.irq_info(gi(63), vc(0)).unwrap().hw, Some(hi(1019)));
}

/// The physical interrupt can fire again as soon as the guest deactivates
/// it through the HW LR, before the hypervisor has read that LR back. The
/// new activation must reach the guest with HW=1 again, or the physical
/// interrupt stays active for ever (a virtio-blk disk stalled this way).
#[test]
fn physical_refire_before_the_completed_lr_is_synced_keeps_the_hw_bit() {
    let mut g = vgic(2, 64);
    linux_init(&mut g);
    g.link_hw(gi(79), vc(0), hi(79)).unwrap();
    let _ = w32(&mut g, 0, gicd(0x100 + 4 * (79 / 32)), 1 << (79 % 32));
    let mut fx = Effects::new();
    g.raise_edge(gi(79), vc(0), &mut fx);
    let mut l = lrs(4);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(l[0] & (LR_HW | LR_PENDING), LR_HW | LR_PENDING);
    // The guest takes and completes it (the hardware deactivates physical
    // 79), and 79 fires again before the next exit is processed.
    ack(&mut l[0]);
    eoi(&mut l[0]);
    g.raise_edge(gi(79), vc(0), &mut fx);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), [79]);
    assert_eq!(
        l[0] & (LR_HW | LR_PENDING),
        LR_HW | LR_PENDING,
        "second delivery must carry HW=1: {:#x}",
        l[0]
    );
    assert_eq!((l[0] >> 32) & 0x1fff, 79);
}

#[test]
fn set_active_on_a_pending_hw_lr_never_makes_it_pending_and_active() {
    let mut g = vgic(1, 32);
    linux_init(&mut g);
    g.link_hw(gi(27), vc(0), hi(27)).unwrap();
    w32(&mut g, 0, sgi(0, 0x100), 1 << 27);
    let mut fx = Effects::new();
    g.raise_edge(gi(27), vc(0), &mut fx);
    let mut l = lrs(2);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(l[0] >> 62, 1, "pending, HW=1");
    // The guest makes it active by hand (GICR_ISACTIVER0) while the
    // physical activation is still pending in the LR: first the active
    // state (HW=0), ...
    w32(&mut g, 0, sgi(0, 0x300), 1 << 27);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), [27]);
    assert_eq!((l[0] >> 62, l[0] & LR_HW), (2, 0), "active only, HW=0");
    // ... then, once the guest completed that, the physical activation
    // (HW=1), whose completion deactivates the physical PPI: nothing stuck.
    eoi(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), [27]);
    assert_eq!((l[0] >> 62, l[0] & LR_HW), (1, LR_HW), "pending, HW=1");
    ack(&mut l[0]);
    eoi(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), Vec::<u32>::new());
    let info = g.irq_info(gi(27), vc(0)).unwrap();
    assert!(!info.active && !info.pending);
}
