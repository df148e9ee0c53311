//! Interrupt delivery through list registers: routing, priorities,
//! overflow, level and edge semantics, SGIs, enables and WFI checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ferrovisor_vgic::lr::{LR_EOI, LR_GROUP, LR_HW, LR_PENDING};
use ferrovisor_vgic::{Effect, Effects, Vgic};

/// Linux-initialised vGIC with SPI `intid` enabled (and routed to `vcpu`).
fn with_spi(vcpus: usize, intid: u32, vcpu: usize) -> Vgic {
    let mut g = vgic(vcpus, 64);
    linux_init(&mut g);
    w64(&mut g, 0, gicd(0x6000 + 8 * u64::from(intid)), vcpu as u64);
    w32(&mut g, 0, gicd(0x100 + 4 * u64::from(intid / 32)), 1 << (intid % 32));
    g
}

fn edge(g: &mut Vgic, intid: u32) {
    let off = 0xc00 + 4 * u64::from(intid / 16);
    let cur = r32(g, gicd(off));
    w32(g, 0, gicd(off), cur | 2 << (2 * (intid % 16)));
}

#[test]
fn spi_routed_to_vcpu1_kicks_it_and_lands_in_its_lr() {
    let mut g = with_spi(2, 40, 1);
    let mut fx = Effects::new();
    g.set_level(gi(40), vc(0), true, &mut fx);
    assert_eq!(fx.to_vec(), [Effect::Kick { vcpu: vc(1) }]);
    let mut l0 = lrs(4);
    let f0 = g.flush_lrs(vc(0), &mut l0);
    assert_eq!((f0.used, f0.overflow), (0, false));
    assert_eq!(l0, [0; 4]);
    let mut l1 = lrs(4);
    let f1 = g.flush_lrs(vc(1), &mut l1);
    assert_eq!((f1.used, f1.overflow), (1, false));
    assert_eq!(l1[0], 40 | (0xa0 << 48) | LR_GROUP | LR_PENDING | LR_EOI);
    assert_eq!(g.irq_info(gi(40), vc(0)).unwrap().in_lr, Some(vc(1)));
    assert!(g.has_deliverable(vc(1)) && !g.has_deliverable(vc(0)));
}

#[test]
fn lrs_are_filled_by_priority_and_overflow_is_flagged() {
    let mut g = vgic(1, 64);
    linux_init(&mut g);
    let prios = [(33, 0x80u8), (34, 0x20), (35, 0xc0), (36, 0x20), (37, 0x40), (38, 0x60)];
    let mut fx = Effects::new();
    for &(intid, p) in &prios {
        edge(&mut g, intid);
        g.mmio_write(vc(0), gicd(0x400 + u64::from(intid)), 1, u64::from(p), &mut fx);
        w32(&mut g, 0, gicd(0x104), 1 << (intid - 32));
        g.raise_edge(gi(intid), vc(0), &mut fx);
    }
    let mut l = lrs(4);
    let f = g.flush_lrs(vc(0), &mut l);
    assert_eq!((f.used, f.overflow), (4, true));
    assert_eq!(loaded(&l), [34, 36, 37, 38]);
    // A more urgent interrupt displaces a pending-only one at the next flush.
    edge(&mut g, 39);
    g.mmio_write(vc(0), gicd(0x400 + 39), 1, 0, &mut fx);
    w32(&mut g, 0, gicd(0x104), 1 << 7);
    g.raise_edge(gi(39), vc(0), &mut fx);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), [39, 34, 36, 37]);
    // The guest takes them all; the rest come next.
    handle_all(&mut l);
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(l, [0; 4]);
    let f = g.flush_lrs(vc(0), &mut l);
    assert_eq!((f.used, f.overflow, loaded(&l)), (3, false, vec![38, 33, 35]));
    handle_all(&mut l);
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
    assert!(!g.has_deliverable(vc(0)));
}

#[test]
fn level_interrupt_redelivers_while_high_and_stops_when_low() {
    let mut g = with_spi(1, 33, 0);
    let mut fx = Effects::new();
    let mut l = lrs(4);
    g.set_level(gi(33), vc(0), true, &mut fx);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(state_of(&l, 33), Some(1));
    ack(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    assert!(!g.has_deliverable(vc(0)), "active only");
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(state_of(&l, 33), Some(2), "a high line alone does not make it pending+active");
    eoi(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    assert!(g.has_deliverable(vc(0)), "line still high");
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(state_of(&l, 33), Some(1), "pending again");
    ack(&mut l[0]);
    g.set_level(gi(33), vc(0), false, &mut fx);
    eoi(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
    assert!(!g.has_deliverable(vc(0)));
}

#[test]
fn level_dropping_before_the_ack_withdraws_the_lr() {
    let mut g = with_spi(2, 33, 1);
    let mut fx = Effects::new();
    let mut l = lrs(2);
    g.set_level(gi(33), vc(0), true, &mut fx);
    g.flush_lrs(vc(1), &mut l);
    fx.clear();
    g.set_level(gi(33), vc(0), false, &mut fx);
    assert_eq!(fx.to_vec(), [Effect::Kick { vcpu: vc(1) }], "owner must refresh its LR");
    g.sync_lrs(vc(1), &mut l);
    assert_eq!(g.flush_lrs(vc(1), &mut l).used, 0);
    assert!(!g.irq_info(gi(33), vc(0)).unwrap().pending);
}

#[test]
fn software_pending_level_interrupt_is_delivered_once() {
    let mut g = with_spi(1, 33, 0);
    w32(&mut g, 0, gicd(0x204), 2);
    let mut l = lrs(2);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(state_of(&l, 33), Some(1));
    // Withdrawn and reloaded at the next flush, it keeps its pending state.
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(state_of(&l, 33), Some(1));
    handle_all(&mut l);
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
}

#[test]
fn edge_raised_again_while_loaded_is_delivered_again() {
    let mut g = with_spi(1, 40, 0);
    edge(&mut g, 40);
    let mut fx = Effects::new();
    let mut l = lrs(4);
    g.raise_edge(gi(40), vc(0), &mut fx);
    g.flush_lrs(vc(0), &mut l);
    g.raise_edge(gi(40), vc(0), &mut fx);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), [40], "two edges before the ack collapse");
    assert_eq!(l[0] & LR_EOI, 0, "edge: no EOI maintenance");
    ack(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    g.raise_edge(gi(40), vc(0), &mut fx);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(state_of(&l, 40), Some(3), "pending+active");
    eoi(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(state_of(&l, 40), Some(1));
    handle_all(&mut l);
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
    // Raised while active and completed before the next flush: still delivered.
    g.raise_edge(gi(40), vc(0), &mut fx);
    g.flush_lrs(vc(0), &mut l);
    ack(&mut l[0]);
    g.raise_edge(gi(40), vc(0), &mut fx);
    eoi(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(state_of(&l, 40), Some(1));
}

#[test]
fn sgis_follow_the_target_list_and_irm() {
    let mut g = vgic(4, 32);
    linux_init(&mut g);
    let mut fx = Effects::new();
    // SGI 3 to vCPUs 1 and 2, from vCPU 0.
    g.write_sgi1r(vc(0), (3 << 24) | 0b0110, &mut fx);
    assert_eq!(fx.to_vec(), [Effect::Kick { vcpu: vc(1) }, Effect::Kick { vcpu: vc(2) }]);
    for (v, want) in [(0, false), (1, true), (2, true), (3, false)] {
        assert_eq!(g.irq_info(gi(3), vc(v)).unwrap().pending, want, "vCPU {v}");
    }
    let mut l = lrs(4);
    g.flush_lrs(vc(1), &mut l);
    assert_eq!(l[0], 3 | (0xa0 << 48) | LR_GROUP | LR_PENDING);
    // IRM: everybody but the writer.
    fx.clear();
    g.write_sgi1r(vc(2), (1 << 40) | (5 << 24), &mut fx);
    assert_eq!(fx.len(), 3);
    assert!(!fx.contains(&Effect::Kick { vcpu: vc(2) }));
    assert!(!g.irq_info(gi(5), vc(2)).unwrap().pending && g.irq_info(gi(5), vc(3)).unwrap().pending);
    // Self-targeted: pending, no kick.
    fx.clear();
    g.write_sgi1r(vc(1), (6 << 24) | 0b10, &mut fx);
    assert!(fx.is_empty() && g.irq_info(gi(6), vc(1)).unwrap().pending);
    // Aff1 != 0, or a range selector: nobody has that MPIDR.
    g.write_sgi1r(vc(0), (1 << 16) | (7 << 24) | 1, &mut fx);
    g.write_sgi1r(vc(0), (1 << 44) | (7 << 24) | 1, &mut fx);
    assert!((0..4).all(|v| !g.irq_info(gi(7), vc(v)).unwrap().pending));
    // A group-0 SGI is not generated by ICC_SGI1R_EL1.
    w32(&mut g, 0, sgi(3, 0x80), !(1 << 8));
    g.write_sgi1r(vc(0), (8 << 24) | 0b1000, &mut fx);
    assert!(!g.irq_info(gi(8), vc(3)).unwrap().pending);
    g.write_sgi1r(vc(9), 0, &mut fx);
    assert_eq!(g.bad_accesses(), 1);
}

#[test]
fn disabled_or_group_disabled_interrupts_are_not_delivered() {
    let mut g = with_spi(1, 34, 0);
    let mut fx = Effects::new();
    let mut l = lrs(4);
    g.raise_edge(gi(35), vc(0), &mut fx); // never enabled
    assert!(fx.is_empty(), "no kick for a disabled interrupt");
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
    assert!(!g.has_deliverable(vc(0)));
    w32(&mut g, 0, gicd(0), 0x10); // groups off
    g.raise_edge(gi(34), vc(0), &mut fx);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
    assert!(!g.has_deliverable(vc(0)));
    w32(&mut g, 0, gicd(0), 0x2);
    assert!(g.has_deliverable(vc(0)));
    assert_eq!(
        loaded(&{
            g.flush_lrs(vc(0), &mut l);
            l.clone()
        }),
        [34]
    );
    // Disabling withdraws a pending-only LR; enabling brings it back.
    w32(&mut g, 0, gicd(0x184), 1 << 2);
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
    assert!(g.irq_info(gi(34), vc(0)).unwrap().pending);
    w32(&mut g, 0, gicd(0x104), 1 << 2);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 1);
    // Group 0: delivered only with EnableGrp0, as a group-0 LR.
    handle_all(&mut l);
    g.sync_lrs(vc(0), &mut l);
    w32(&mut g, 0, gicd(0x84), !(1 << 2));
    g.raise_edge(gi(34), vc(0), &mut fx);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
    w32(&mut g, 0, gicd(0), 0x3);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), [34]);
    assert_eq!(l[0] & LR_GROUP, 0);
}

#[test]
fn rerouting_a_loaded_spi_moves_it() {
    let mut g = with_spi(2, 33, 0);
    let mut fx = Effects::new();
    let (mut l0, mut l1) = (lrs(2), lrs(2));
    g.raise_edge(gi(33), vc(0), &mut fx);
    g.flush_lrs(vc(0), &mut l0);
    let fx = w64(&mut g, 1, gicd(0x6000 + 8 * 33), 1);
    assert!(fx.contains(&Effect::Kick { vcpu: vc(0) }), "old owner must give it back");
    assert_eq!(g.flush_lrs(vc(1), &mut l1).used, 0, "still loaded on vCPU 0");
    g.sync_lrs(vc(0), &mut l0);
    let f = g.flush_lrs(vc(0), &mut l0);
    assert_eq!((f.used, f.kicks), (0, 0b10));
    g.flush_lrs(vc(1), &mut l1);
    assert_eq!(loaded(&l1), [33]);
}

#[test]
fn pending_and_active_registers_reach_loaded_interrupts() {
    let mut g = with_spi(1, 33, 0);
    let mut fx = Effects::new();
    let mut l = lrs(2);
    g.raise_edge(gi(33), vc(0), &mut fx);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(r32(&mut g, gicd(0x204)), 2, "ISPENDR sees the LR");
    w32(&mut g, 0, gicd(0x284), 2);
    assert_eq!(r32(&mut g, gicd(0x204)), 0);
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0, "ICPENDR withdrew it");
    // ISACTIVER on an idle interrupt loads it active; ICACTIVER clears it.
    w32(&mut g, 0, gicd(0x304), 2);
    assert_eq!(r32(&mut g, gicd(0x304)), 2);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(state_of(&l, 33), Some(2));
    w32(&mut g, 0, gicd(0x384), 2);
    assert_eq!(r32(&mut g, gicd(0x304)), 0);
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(g.flush_lrs(vc(0), &mut l).used, 0);
}

#[test]
fn sync_drops_foreign_and_duplicate_lrs() {
    let mut g = with_spi(2, 33, 0);
    let mut fx = Effects::new();
    let mut l = lrs(4);
    g.raise_edge(gi(33), vc(0), &mut fx);
    g.flush_lrs(vc(0), &mut l);
    l[1] = l[0];
    l[2] = 99 | LR_PENDING; // never loaded by the vGIC
    l[3] = 33 | LR_PENDING | LR_HW;
    g.sync_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), [33]);
    let mut other = vec![l[0]];
    g.sync_lrs(vc(1), &mut other);
    assert_eq!(other, [0], "vCPU 1 does not own it");
    assert_eq!(g.irq_info(gi(33), vc(0)).unwrap().in_lr, Some(vc(0)));
}

#[test]
fn ppis_are_banked_per_vcpu() {
    let mut g = vgic(2, 0);
    linux_init(&mut g);
    w32(&mut g, 1, sgi(1, 0x100), 1 << 23);
    let mut fx = Effects::new();
    g.set_level(gi(23), vc(1), true, &mut fx);
    g.set_level(gi(23), vc(0), true, &mut fx);
    let (mut l0, mut l1) = (lrs(2), lrs(2));
    assert_eq!(g.flush_lrs(vc(0), &mut l0).used, 0, "disabled on vCPU 0");
    g.flush_lrs(vc(1), &mut l1);
    assert_eq!(loaded(&l1), [23]);
    assert_eq!(l1[0] & LR_EOI, LR_EOI, "PPIs default to level");
}

#[test]
fn level_eoi_maintenance_follows_the_line() {
    // The virtual timer: a level PPI pended by raise_edge, its line never
    // driven by the model: no EOI maintenance request.
    let mut g = vgic(1, 64);
    linux_init(&mut g);
    w32(&mut g, 0, sgi(0, 0x100), 1 << 27);
    let mut fx = Effects::new();
    g.raise_edge(gi(27), vc(0), &mut fx);
    let mut l = lrs(4);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), [27]);
    assert_eq!(l[0] & LR_EOI, 0, "latched level PPI: no maintenance on EOI");
    handle_all(&mut l);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), Vec::<u32>::new(), "delivered once");

    // A level SPI whose line is high asks for the EOI maintenance; once the
    // line drops (the guest serviced the device), the next flush drops it.
    let mut g = with_spi(1, 40, 0);
    g.set_level(gi(40), vc(0), true, &mut fx);
    let mut l = lrs(4);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(l[0] & LR_EOI, LR_EOI);
    ack(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    g.set_level(gi(40), vc(0), false, &mut fx);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), [40], "still active in the guest");
    assert_eq!(l[0] & LR_EOI, 0, "line low: no maintenance needed");

    // The line rises again while the interrupt is active: the vCPU holding
    // it is kicked and the next flush asks for the maintenance again, so
    // the deactivation re-samples the line and it is delivered again.
    let mut fx = Effects::new();
    g.set_level(gi(40), vc(0), true, &mut fx);
    assert_eq!(fx.to_vec(), [Effect::Kick { vcpu: vc(0) }]);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(l[0] & LR_EOI, LR_EOI);
    eoi(&mut l[0]);
    g.sync_lrs(vc(0), &mut l);
    g.flush_lrs(vc(0), &mut l);
    assert_eq!(loaded(&l), [40], "re-sampled: pending again");
    assert_eq!(l[0] & LR_PENDING, LR_PENDING);
}

#[test]
fn kicks_owed_after_a_sync_are_handed_out() {
    // SPI 40 on vCPU 1, active there, when the guest re-routes it to vCPU 0
    // and it fires again: once vCPU 1 completes it and is descheduled (a
    // sync with no flush after it), vCPU 0 must be kicked.
    let mut g = with_spi(2, 40, 1);
    edge(&mut g, 40);
    let mut fx = Effects::new();
    g.raise_edge(gi(40), vc(0), &mut fx);
    let mut l1 = lrs(4);
    g.flush_lrs(vc(1), &mut l1);
    ack(&mut l1[0]);
    g.sync_lrs(vc(1), &mut l1);
    w64(&mut g, 0, gicd(0x6000 + 8 * 40), 0);
    g.raise_edge(gi(40), vc(0), &mut fx);
    eoi(&mut l1[0]);
    g.sync_lrs(vc(1), &mut l1);
    assert!(g.has_deliverable(vc(0)));
    assert_eq!(g.take_kicks(), 1, "vCPU 0 is owed a kick");
    assert_eq!(g.take_kicks(), 0, "handed out once");
    let mut l0 = lrs(4);
    assert_eq!(g.flush_lrs(vc(0), &mut l0).kicks, 0);
    assert_eq!(loaded(&l0), [40]);
}
