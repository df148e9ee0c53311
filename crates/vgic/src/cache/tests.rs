//! The list-register cache, as the hypervisor runs it, against the
//! reference model: one side is a [`SharedVgic`] with an [`LrCache`] and a
//! fake list-register bank per vCPU, driven exactly as the hypervisor's
//! scheduler and exit fast path drive them (refresh before each entry,
//! direct injection of a device interrupt, save and load around a
//! deschedule); the other is a plain vGIC through the full-scan paths,
//! where every injection is `raise_edge` and every entry a full flush.
//! Same random traffic, same guest actions; the list registers must hold
//! the same interrupts at every entry, and every interrupt must read the
//! same.

use super::{LrBank, LrCache};
use crate::lr::{lr_is_invalid, LR_PENDING, MAX_LRS};
use crate::reference::tests::{device_op, guest_op, lr_sets, op, Machine, Op, SPIS, VCPUS};
use crate::testids::{gi, vc};

/// The interrupts a vCPU's list registers hold, in a canonical order.
fn held(lrs: &[u64]) -> Vec<Vec<u64>> {
    lr_sets(core::slice::from_ref(&lrs.to_vec()))
}
use crate::{Effects, SharedVgic};
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

/// The list registers of one pCPU.
#[derive(Clone, Debug)]
struct FakeBank {
    lrs: Vec<u64>,
    underflow: bool,
}

impl LrBank for FakeBank {
    fn count(&self) -> usize {
        self.lrs.len()
    }

    fn read(&self, n: usize) -> u64 {
        self.lrs.get(n).copied().unwrap_or(0)
    }

    fn write(&mut self, n: usize, value: u64) {
        if let Some(lr) = self.lrs.get_mut(n) {
            *lr = value;
        }
    }

    fn completed(&self) -> u16 {
        self.lrs.iter().enumerate().filter(|(_, &lr)| lr_is_invalid(lr)).fold(0, |m, (i, _)| m | 1 << i)
    }

    fn enable(&mut self, underflow: bool) {
        self.underflow = underflow;
    }
}

/// The hypervisor's side: the shared vGIC, and per vCPU its cache and the
/// bank of the pCPU it runs on (one pCPU each).
struct Hyp {
    vgic: SharedVgic,
    cache: Vec<LrCache>,
    bank: Vec<FakeBank>,
}

/// One step: an operation of the reference traffic, then maybe a device
/// interrupt `(intid, vcpu)` taken on that vCPU's exit fast path.
type Step = (Op, Option<(u32, usize)>);

/// What a run did with the fast path.
#[derive(Default)]
struct Taken {
    direct: usize,
    after_retire: usize,
    /// SGIs injected while the guest had completed exactly one LR, holding
    /// that SGI: `LrCache::rearm_sgi`'s case (taken without the lock when
    /// nothing changed since the refill).
    sgi_again: usize,
}

/// An injection of this INTID stands for "the interrupt in the LR the
/// step's `Handle` just completed" (found when the step runs).
const SAME: u32 = u32::MAX;

fn run(nlrs: usize, booted: bool, steps: &[Step]) -> Result<Taken, TestCaseError> {
    let mut reference = Machine::new(nlrs, booted);
    let model = Machine::new(nlrs, booted).g;
    let mut hyp = Hyp {
        vgic: SharedVgic::new(model),
        cache: vec![LrCache::new(); VCPUS],
        bank: vec![FakeBank { lrs: vec![0; nlrs], underflow: false }; VCPUS],
    };
    for (cache, bank) in hyp.cache.iter_mut().zip(hyp.bank.iter_mut()) {
        cache.load(bank);
    }
    let mut taken = Taken::default();
    for (step, (op, inject)) in steps.iter().enumerate() {
        let mut fx = Effects::new();
        match *op {
            // The hypervisor only changes an LR through the cache; the
            // ordinary paths' test covers garbage in LRs.
            Op::Corrupt { .. } => continue,
            Op::Flush { vcpu } => {
                let (Some(cache), Some(bank)) = (hyp.cache.get_mut(vcpu), hyp.bank.get_mut(vcpu)) else {
                    continue;
                };
                let kicks = cache.refresh(&hyp.vgic, vc(vcpu), bank);
                let (flush, _) = reference.apply(op, true);
                let flush = flush.unwrap_or_default();
                prop_assert_eq!(kicks, flush.kicks, "kicks at the entry of vCPU {} at step {}", vcpu, step);
                prop_assert_eq!(bank.underflow, flush.overflow, "underflow at step {}", step);
                prop_assert_eq!(
                    held(&bank.lrs),
                    held(&reference.lrs[vcpu]),
                    "LRs at the entry of vCPU {} at step {}",
                    vcpu,
                    step
                );
                // Same set, maybe another order: go on from the hypervisor's
                // layout (the model finds its interrupts by vINTID).
                reference.lrs[vcpu].clone_from(&bank.lrs);
            }
            Op::Sync { vcpu } => {
                // Scheduled out and in again: another vCPU used the pCPU's
                // list registers meanwhile.
                let (Some(cache), Some(bank)) = (hyp.cache.get_mut(vcpu), hyp.bank.get_mut(vcpu)) else {
                    continue;
                };
                let kicks = cache.save(&hyp.vgic, vc(vcpu), bank);
                bank.lrs.iter_mut().for_each(|lr| *lr = 0x5a5a);
                cache.load(bank);
                reference.apply(op, true);
                let want = reference.g.take_kicks() & !(1 << vcpu);
                prop_assert_eq!(kicks, want, "kicks at the deschedule of vCPU {} at step {}", vcpu, step);
                prop_assert_eq!(&bank.lrs[..], &cache.saved()[..nlrs], "load restores the saved LRs");
            }
            Op::Guest { vcpu, lr, .. } | Op::Handle { vcpu, lr } => {
                if let Some(x) = hyp.bank.get_mut(vcpu).and_then(|b| b.lrs.get_mut(lr)) {
                    guest_op(x, op);
                }
                reference.apply(op, true);
            }
            _ => {
                hyp.vgic.update(&mut fx, |g, fx| device_op(g, op, fx));
                device_op(&mut reference.g, op, &mut Effects::new());
            }
        }
        if let Some((intid, vcpu)) = *inject {
            let (Some(cache), Some(bank)) = (hyp.cache.get_mut(vcpu), hyp.bank.get_mut(vcpu)) else {
                continue;
            };
            let intid = match (intid, op) {
                (SAME, Op::Handle { lr, .. }) => match bank.lrs.get(*lr) {
                    Some(&l) if l != 0 => crate::lr::lr_vintid(l),
                    _ => continue,
                },
                (SAME, _) => continue,
                _ => intid,
            };
            let done: Vec<u64> = bank.lrs.iter().copied().filter(|&l| l != 0 && lr_is_invalid(l)).collect();
            let completed = !done.is_empty();
            let sgi = intid < 16;
            let direct = if sgi {
                taken.sgi_again += usize::from(matches!(done[..], [l] if crate::lr::lr_vintid(l) == intid));
                // The kick path: from the mailbox straight into an LR.
                cache.inject_sgi(&hyp.vgic, vc(vcpu), gi(intid), bank)
            } else {
                cache.inject_now(&hyp.vgic, vc(vcpu), gi(intid), bank)
            };
            if direct {
                taken.direct += 1;
                taken.after_retire += usize::from(completed);
                raise(&mut reference.g, intid, vcpu);
                let f = reference.g.flush_lrs_full(vcpu, &mut reference.lrs[vcpu]);
                prop_assert!(!f.overflow, "step {}: the direct injection left something behind", step);
                prop_assert_eq!(f.kicks, 0, "step {}: the direct injection owed a kick", step);
                prop_assert_eq!(
                    held(&bank.lrs),
                    held(&reference.lrs[vcpu]),
                    "LRs after the direct injection of {} on vCPU {} at step {}",
                    intid,
                    vcpu,
                    step
                );
                reference.lrs[vcpu].clone_from(&bank.lrs);
            } else {
                if sgi {
                    hyp.vgic.receive(vc(vcpu), 1 << intid, &mut fx);
                } else {
                    hyp.vgic.update(&mut fx, |g, fx| g.raise_edge(gi(intid), vc(vcpu), fx));
                }
                raise(&mut reference.g, intid, vcpu);
            }
        }
        // Every interrupt reads the same once both models have seen the
        // LRs (on copies: the run goes on without an extra sync).
        let mut mine = hyp.vgic.inspect(|g| g.clone());
        let mut theirs = reference.g.clone();
        for v in 0..VCPUS {
            let (mut a, mut b) = (hyp.bank[v].lrs.clone(), reference.lrs[v].clone());
            mine.sync_lrs(vc(v), &mut a);
            theirs.sync_lrs_full(v, &mut b);
        }
        for v in 0..VCPUS {
            prop_assert_eq!(
                mine.has_deliverable(vc(v)),
                theirs.has_deliverable_full(v),
                "WFI of {} at step {}",
                v,
                step
            );
            for intid in 0..32 + SPIS {
                prop_assert_eq!(
                    mine.irq_info(gi(intid), vc(v)),
                    theirs.irq_info(gi(intid), vc(v)),
                    "INTID {} at step {}",
                    intid,
                    step
                );
            }
        }
        hyp.vgic.inspect(|g| g.check_sets());
    }
    Ok(taken)
}

/// The reference's injection: an SGI arrives as from `ICC_SGI1R_EL1`
/// (the mailbox), anything else is an edge.
fn raise(g: &mut crate::Vgic, intid: u32, vcpu: usize) {
    if intid < 16 {
        g.receive_sgis(vc(vcpu), 1 << intid, &mut Effects::new());
    } else {
        g.raise_edge(gi(intid), vc(vcpu), &mut Effects::new());
    }
}

/// Random traffic; injections mostly right after an entry of their vCPU,
/// where the direct path applies, or right after the guest handled an
/// interrupt (the path that retires it first).
fn steps(n: usize) -> impl Strategy<Value = Vec<Step>> {
    let target = (prop_oneof![1 => 0u32..16, 2 => 16u32..32, 4 => 32u32..96], 0usize..VCPUS);
    let again = (0usize..VCPUS, prop_oneof![3 => Just(0), 1 => 0..n]);
    let step = prop_oneof![
        6 => (op(n), prop::option::weighted(0.1, target.clone())),
        // Something changes, then an interrupt arrives before the vCPU
        // entered again: the direct path must see the change.
        3 => (op(n), target.clone()).prop_map(|(op, t)| (op, Some(t))),
        4 => target.clone().prop_map(|(intid, vcpu)| (Op::Flush { vcpu }, Some((intid, vcpu)))),
        3 => (target, prop_oneof![3 => Just(0), 1 => 0..n])
            .prop_map(|((intid, vcpu), lr)| (Op::Handle { vcpu, lr }, Some((intid, vcpu)))),
        // The interrupt the guest just handled fires again (a vCPU woken
        // by the same SGI again and again).
        2 => again.prop_map(|(vcpu, lr)| (Op::Handle { vcpu, lr }, Some((SAME, vcpu)))),
    ];
    prop::collection::vec(step, 1..200)
}

fn histories() -> impl Strategy<Value = (usize, bool, Vec<Step>)> {
    (1usize..6, any::<bool>()).prop_flat_map(|(n, b)| (Just(n), Just(b), steps(n)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The cache leaves everything as the reference would, over random
    /// histories (new ones every run).
    #[test]
    fn the_cache_matches_the_reference_model((nlrs, booted, steps) in histories()) {
        run(nlrs, booted, &steps)?;
    }
}

/// The same over a fixed set of histories, which take the direct paths
/// often enough for the comparison to mean something (fixed, so that the
/// count does not depend on the luck of the draw).
#[test]
fn the_direct_paths_are_covered() {
    use core::sync::atomic::{AtomicUsize, Ordering};
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let (direct, retired, again) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
    let config = ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let result = runner.run(&histories(), |(nlrs, booted, steps)| {
        let t = run(nlrs, booted, &steps)?;
        direct.fetch_add(t.direct, Ordering::Relaxed);
        retired.fetch_add(t.after_retire, Ordering::Relaxed);
        again.fetch_add(t.sgi_again, Ordering::Relaxed);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (direct, retired, again) =
        (direct.load(Ordering::Relaxed), retired.load(Ordering::Relaxed), again.load(Ordering::Relaxed));
    assert!(
        direct >= 200 && retired >= 10 && again >= 50,
        "direct injection taken {direct} times in 256 histories, {retired} after retiring LRs, \
         {again} SGIs fired again into the one LR just completed"
    );
}

/// A deterministic run that takes the direct paths many times: PPIs on
/// every vCPU, SPIs (routed to vCPU 0) on vCPU 0, some HW-linked, the
/// guest completing some between entries, deschedules in between.
#[test]
fn direct_injection_is_taken_and_matches() {
    let mut steps = Vec::new();
    for round in 0..60u32 {
        let v = (round % 3) as usize;
        let (intid, vcpu) = if round % 2 == 0 { (16 + (round / 2) % 16, v) } else { (32 + round % 64, 0) };
        if round % 5 == 0 {
            steps.push((Op::Link { intid, vcpu, pintid: intid }, None));
        }
        steps.push((Op::Flush { vcpu }, Some((intid, vcpu))));
        for lr in 0..4 {
            steps.push((Op::Guest { vcpu, lr, eoi: false }, None));
            steps.push((Op::Guest { vcpu, lr, eoi: round % 4 != 0 }, None));
        }
        // The next interrupt arrives after the guest completed the last
        // one, before any refill: the direct path retires it first.
        steps.push((Op::Flush { vcpu }, Some((16 + (round + 7) % 16, vcpu))));
        steps.push((Op::Guest { vcpu, lr: 0, eoi: false }, None));
        steps.push((Op::Guest { vcpu, lr: 0, eoi: true }, Some((16 + (round + 9) % 16, vcpu))));
        // Two loaded, the guest completes both, then one arrives: one LR
        // is reused, the other must be cleared.
        let (a, b) = (16 + (round + 3) % 16, 16 + (round + 4) % 16);
        steps.push((Op::Edge { intid: a, vcpu }, None));
        steps.push((Op::Edge { intid: b, vcpu }, None));
        steps.push((Op::Flush { vcpu }, None));
        steps.push((Op::Handle { vcpu, lr: 0 }, None));
        steps.push((Op::Handle { vcpu, lr: 1 }, Some((16 + (round + 5) % 16, vcpu))));
        if round % 7 == 0 {
            steps.push((Op::Sync { vcpu }, None));
        }
    }
    let taken = run(4, true, &steps).unwrap();
    assert!(
        taken.direct >= 100 && taken.after_retire >= 40,
        "direct injection taken {} times, {} after retiring LRs",
        taken.direct,
        taken.after_retire
    );
}

/// A change to one vCPU's own interrupts (`update_for`: an SGI from its
/// mailbox, its virtual timer) moves only that vCPU's generation: another
/// vCPU's entry still skips its refill; a change through `update` (an SPI)
/// moves every vCPU's.
#[test]
fn private_changes_leave_other_vcpus_cached() {
    let m = Machine::new(4, true);
    let vgic = SharedVgic::new(m.g);
    let mut cache = LrCache::new();
    let mut bank = FakeBank { lrs: vec![0; 4], underflow: false };
    cache.load(&mut bank);
    cache.refresh(&vgic, vc(1), &mut bank);
    bank.lrs[3] = 0x77;
    vgic.update_for(vc(0), &mut Effects::new(), |g, fx| g.raise_edge(gi(27), vc(0), fx));
    vgic.receive(vc(0), 1 << 3, &mut Effects::new());
    cache.refresh(&vgic, vc(1), &mut bank);
    assert_eq!(bank.lrs[3], 0x77, "vCPU 1 refilled for vCPU 0's own interrupts");
    let before = vgic.generation(vc(0));
    vgic.update(&mut Effects::new(), |g, fx| g.raise_edge(gi(40), vc(0), fx));
    assert_ne!(vgic.generation(vc(0)), before);
    cache.refresh(&vgic, vc(1), &mut bank);
    assert_eq!(bank.lrs[3], 0, "a guest-wide change did not refill vCPU 1");
}

/// A vCPU woken by the same SGI again and again (a cross-CPU ping-pong),
/// or by its virtual timer: after the guest handled it, the next one goes
/// back into the same LR (`rearm_lr`), matching the reference each time; a
/// second interrupt and deschedules in between take the general paths.
#[test]
fn the_same_sgi_again_goes_back_into_its_lr() {
    // SGI 1 (edge), and PPI 27 (level-sensitive, raised as an edge: the
    // virtual timer's case).
    for (intid, other) in [(1, 2), (27, 26)] {
        same_interrupt_again(intid, other);
    }
}

fn same_interrupt_again(intid: u32, other: u32) {
    let mut steps = Vec::new();
    for round in 0..50u32 {
        let vcpu = (round % 2) as usize;
        // Whatever the last round left in LR 0 is handled and refilled.
        for lr in 0..4 {
            steps.push((Op::Handle { vcpu, lr }, None));
        }
        steps.push((Op::Flush { vcpu }, None));
        steps.push((Op::Flush { vcpu }, Some((intid, vcpu))));
        for _ in 0..3 {
            steps.push((Op::Handle { vcpu, lr: 0 }, Some((intid, vcpu))));
        }
        // It fires again while the guest still handles it (acknowledged,
        // not ended): its LR becomes pending and active (`repend_lr`).
        steps.push((Op::Guest { vcpu, lr: 0, eoi: false }, Some((intid, vcpu))));
        steps.push((Op::Guest { vcpu, lr: 0, eoi: true }, None));
        steps.push((Op::Handle { vcpu, lr: 0 }, Some((intid, vcpu))));
        if round % 5 == 0 {
            // Another SGI while the first is pending in its LR.
            steps.push((Op::Flush { vcpu }, Some((other, vcpu))));
            steps.push((Op::Handle { vcpu, lr: 0 }, Some((intid, vcpu))));
        }
        if round % 7 == 0 {
            steps.push((Op::Sync { vcpu }, None));
        }
    }
    let taken = run(4, true, &steps).unwrap();
    assert!(
        taken.after_retire >= 100,
        "{} injections after the guest completed one, {} direct",
        taken.after_retire,
        taken.direct
    );
}

/// An entry with nothing new does not touch the model or the list
/// registers; a change anywhere in the vGIC makes the next entry refill.
#[test]
fn refresh_is_skipped_only_when_nothing_changed() {
    let m = Machine::new(4, true);
    let vgic = SharedVgic::new(m.g);
    let mut cache = LrCache::new();
    let mut bank = FakeBank { lrs: vec![0; 4], underflow: false };
    cache.load(&mut bank);
    vgic.update(&mut Effects::new(), |g, fx| g.raise_edge(gi(40), vc(0), fx));
    cache.refresh(&vgic, vc(0), &mut bank);
    assert_eq!(bank.lrs.iter().filter(|&&l| l & LR_PENDING != 0).count(), 1);
    // The guest acknowledges; a stray value written behind the cache's
    // back stays (no refill: nothing changed, nothing completed).
    guest_op(&mut bank.lrs[0], &Op::Guest { vcpu: 0, lr: 0, eoi: false });
    bank.lrs[3] = 0x77;
    cache.refresh(&vgic, vc(0), &mut bank);
    assert_eq!(bank.lrs[3], 0x77, "an entry with nothing new rewrote the LRs");
    // Another CPU changes the vGIC: the next entry refills (and drops the
    // stray value, which the model does not know).
    vgic.update(&mut Effects::new(), |g, fx| g.raise_edge(gi(41), vc(0), fx));
    cache.refresh(&vgic, vc(0), &mut bank);
    assert_eq!(bank.lrs[3], 0, "a changed vGIC did not refill");
    assert_eq!(bank.lrs.iter().filter(|&&l| l != 0).count(), 2);
    assert!(MAX_LRS >= bank.lrs.len());
}

/// A history proptest shrank a failure to: one LR, two active SGIs
/// waiting, and the guest deactivating the pending+active one it holds.
/// An entry must refill while interrupts wait for an LR (the cache once
/// skipped it, keeping a pending interrupt in the LR an active one needed).
#[test]
fn level_sgi_and_direct_injections_on_one_lr() {
    let steps = vec![
        (Op::Level { intid: 4, vcpu: 2, level: true }, Some((16, 2))),
        (Op::Flush { vcpu: 2 }, None),
        (Op::Write { vcpu: 1, addr: 135201536, size: 4, value: 3372431900 }, None),
        (Op::Handle { vcpu: 2, lr: 0 }, Some((28, 2))),
        (Op::Flush { vcpu: 2 }, Some((25, 2))),
        (Op::Handle { vcpu: 2, lr: 0 }, Some((19, 2))),
        (Op::Flush { vcpu: 2 }, Some((21, 2))),
        (Op::Handle { vcpu: 2, lr: 0 }, Some((33, 2))),
        (Op::Sgi { vcpu: 0, value: 1099578736640 }, Some((48, 1))),
        (Op::Flush { vcpu: 2 }, None),
        (Op::Guest { vcpu: 2, lr: 0, eoi: true }, None),
        (Op::Flush { vcpu: 2 }, Some((16, 2))),
    ];
    run(1, true, &steps).unwrap();
}

/// The cross-CPU wake-up's usual case takes no lock: the guest completed
/// SGI 1 in its LR, nothing else changed, and SGI 1 comes again while
/// another CPU holds the model's lock; it goes back into its LR at once
/// (`LrCache::rearm_sgi`). That it reads as the model would have it is
/// the reference comparisons' business (`SAME` in the histories).
#[test]
fn an_sgi_again_goes_back_without_the_lock() {
    extern crate std;
    use crate::lr::LR_ACTIVE;
    use std::sync::{mpsc, Arc};
    use std::time::Duration;
    let vgic = Arc::new(SharedVgic::new(Machine::new(4, true).g));
    let mut cache = LrCache::new();
    let mut bank = FakeBank { lrs: vec![0; 4], underflow: false };
    cache.load(&mut bank);
    vgic.receive(vc(0), 1 << 1, &mut Effects::new());
    cache.refresh(&vgic, vc(0), &mut bank);
    assert_eq!(crate::lr::lr_vintid(bank.lrs[0]), 1, "SGI 1 loaded");
    guest_op(&mut bank.lrs[0], &Op::Handle { vcpu: 0, lr: 0 });
    assert!(lr_is_invalid(bank.lrs[0]), "the guest completed it");
    let model = vgic.lock();
    let (tx, rx) = mpsc::channel();
    let shared = Arc::clone(&vgic);
    std::thread::spawn(move || {
        let ok = cache.inject_sgi(&shared, vc(0), gi(1), &mut bank);
        let _ = tx.send((ok, bank.lrs[0]));
    });
    let got = rx.recv_timeout(Duration::from_secs(10));
    drop(model);
    let (ok, lr) = got.expect("the SGI waited for the model's lock");
    assert!(ok, "SGI 1 did not go back into its LR");
    assert_eq!((crate::lr::lr_vintid(lr), lr & (LR_PENDING | LR_ACTIVE)), (1, LR_PENDING));
}

/// A history proptest shrank a failure to: SGI 0 made active (an
/// `ISACTIVER0` write) while disabled, loaded for that alone, completed by
/// the guest, then sent again. It must not go back into its LR without the
/// model (it is disabled): only SGIs the refill or a fast path found
/// re-armable do.
#[test]
fn an_sgi_loaded_only_active_is_not_rearmed() {
    let steps = vec![
        (Op::Write { vcpu: 0, addr: 135201536, size: 4, value: 1 }, None),
        (Op::Flush { vcpu: 2 }, None),
        (Op::Handle { vcpu: 2, lr: 0 }, Some((SAME, 2))),
    ];
    run(4, false, &steps).unwrap();
}

/// An SGI from the mailbox goes through the fast path only as
/// `receive_sgis` takes it: group 1. One configured as group 0 (with group
/// 0 enabled) is not loaded as a virtual FIQ.
#[test]
fn a_group0_sgi_from_the_mailbox_is_ignored_on_the_fast_path() {
    // vCPU 0's GICR_IGROUPR0: every SGI and PPI in group 0; GICD_CTLR:
    // both groups enabled, affinity routing.
    let steps = vec![
        (Op::Write { vcpu: 0, addr: 0x080b_0080, size: 4, value: 0 }, None),
        (Op::Write { vcpu: 0, addr: 0x0800_0000, size: 4, value: 0x13 }, None),
        (Op::Flush { vcpu: 0 }, Some((1, 0))),
        (Op::Flush { vcpu: 0 }, None),
    ];
    run(2, true, &steps).unwrap();
}
