//! The full-scan implementation of the hot paths (`sync_lrs`, `flush_lrs`,
//! `has_deliverable`) as it was before the loaded/candidate sets, kept as
//! the reference the optimised paths are checked against: a property test
//! drives two vGICs with the same random traffic, one through the public
//! calls and one through this module, and requires identical list
//! registers, flush results, effects, WFI answers and interrupt states.

use crate::lr::{lr_is_invalid, lr_vintid, LrFlush, LR_ACTIVE, LR_PENDING, MAX_LRS};
use crate::Vgic;

impl Vgic {
    /// [`Vgic::has_deliverable`] by scanning every interrupt.
    pub(crate) fn has_deliverable_full(&self, vcpu: usize) -> bool {
        if vcpu >= self.cfg.vcpus {
            return false;
        }
        let Some(bank) = self.banks.get(vcpu) else { return false };
        let private = bank.irqs.iter().enumerate().map(|(i, irq)| (i as u32, irq));
        let shared = self.spis.iter().enumerate().map(|(i, irq)| (32 + i as u32, irq));
        private.chain(shared).any(|(intid, irq)| match irq.lr {
            Some(slot) => slot.vcpu == vcpu && slot.pending(),
            None => self.deliverable(irq, intid, vcpu),
        })
    }

    /// [`Vgic::sync_lrs`] by scanning every interrupt.
    pub(crate) fn sync_lrs_full(&mut self, vcpu: usize, lrs: &mut [u64]) {
        if vcpu >= self.cfg.vcpus {
            self.count_bad();
            return;
        }
        self.reconcile_full(vcpu, lrs);
    }

    /// [`Vgic::flush_lrs`] by scanning every interrupt.
    pub(crate) fn flush_lrs_full(&mut self, vcpu: usize, lrs: &mut [u64]) -> LrFlush {
        if vcpu >= self.cfg.vcpus {
            self.count_bad();
            return LrFlush::default();
        }
        self.reconcile_full(vcpu, lrs);
        for lr in lrs.iter_mut() {
            if *lr != 0 {
                *lr = self.refresh(vcpu, lr_vintid(*lr));
            }
        }
        let free = lrs.iter().filter(|&&lr| lr == 0).count().min(MAX_LRS);
        let (best, found) = self.best_candidates_full(vcpu, free + 1);
        let mut next = best.iter().take(found.min(free));
        for lr in lrs.iter_mut().filter(|lr| **lr == 0) {
            let Some(&(_, intid)) = next.next() else { break };
            *lr = self.load(vcpu, intid);
        }
        let used = lrs.iter().filter(|&&lr| lr != 0).count();
        let kicks = core::mem::take(&mut self.deferred_kicks) & !(1u32 << vcpu);
        LrFlush { used, overflow: found > free, kicks }
    }

    /// Matches `lrs` against the interrupts the model believes loaded on
    /// `vcpu` by scanning every INTID; completes the ones that went invalid
    /// or vanished.
    fn reconcile_full(&mut self, vcpu: usize, lrs: &mut [u64]) {
        for lr in lrs.iter_mut() {
            if lr_is_invalid(*lr) {
                *lr = 0;
                continue;
            }
            let intid = lr_vintid(*lr);
            let slot = self.irq_mut(intid, vcpu).and_then(|irq| irq.lr.as_mut());
            match slot {
                Some(s) if s.vcpu == vcpu && !s.seen() => {
                    s.set_seen(true);
                    s.set_pending(*lr & LR_PENDING != 0);
                    s.set_active(*lr & LR_ACTIVE != 0);
                }
                _ => *lr = 0,
            }
        }
        for intid in (0..32).chain(32..32 + self.cfg.spis) {
            let Some(irq) = self.irq_mut(intid, vcpu) else { continue };
            let Some(s) = irq.lr.as_mut() else { continue };
            if s.vcpu != vcpu {
                continue;
            }
            if s.seen() {
                s.set_seen(false);
            } else {
                // Completed by the guest (or dropped by the caller).
                let hw = s.hw();
                irq.leave_lr(hw);
                self.released(intid, vcpu);
            }
        }
    }

    /// The (at most `k`, at most [`MAX_LRS`] + 1) best interrupts to load
    /// on `vcpu`, best first: active ones, then by priority, then by INTID.
    /// Returns them as `(sort key, INTID)` and how many were found.
    fn best_candidates_full(&self, vcpu: usize, k: usize) -> ([(u64, u32); MAX_LRS + 1], usize) {
        let mut best = [(u64::MAX, 0u32); MAX_LRS + 1];
        let k = k.min(best.len());
        let mut n = 0;
        let Some(bank) = self.banks.get(vcpu) else { return (best, 0) };
        let private = bank.irqs.iter().enumerate().map(|(i, irq)| (i as u32, irq));
        let shared = self.spis.iter().enumerate().map(|(i, irq)| (32 + i as u32, irq));
        for (intid, irq) in private.chain(shared) {
            let wanted = irq.lr.is_none()
                && ((irq.active() && self.target(intid, vcpu) == Some(vcpu))
                    || self.deliverable(irq, intid, vcpu));
            if !wanted {
                continue;
            }
            let key = (u64::from(!irq.active()) << 40) | (u64::from(irq.priority) << 32) | u64::from(intid);
            // Insertion into the sorted prefix `best[..n]`, capped at `k`.
            let pos = best.iter().take(n).position(|&(bk, _)| key < bk).unwrap_or(n);
            if pos >= k {
                continue;
            }
            n = (n + 1).min(k);
            if let Some(tail) = best.get_mut(pos..n) {
                tail.rotate_right(1);
                if let Some(first) = tail.first_mut() {
                    *first = (key, intid);
                }
            }
        }
        (best, n)
    }
}

impl Vgic {
    /// Asserts the invariants the optimised paths rely on: `loaded` is
    /// exactly the set of INTIDs whose `lr` names the vCPU, and every
    /// interrupt the LR fill of a vCPU wants is among its candidates.
    pub(crate) fn check_sets(&self) {
        for (v, bank) in self.banks.iter().enumerate() {
            for intid in 0..32 + self.cfg.spis {
                let irq = self.irq(intid, v).copied();
                let loaded = irq.and_then(|irq| irq.lr).is_some_and(|s| s.vcpu == v);
                assert_eq!(bank.loaded.contains(intid), loaded, "loaded set of vCPU {v}, INTID {intid}");
                if self.wanted(intid, v) {
                    assert!(bank.candidates.contains(intid), "INTID {intid} wanted by vCPU {v}: {irq:?}");
                }
            }
        }
    }
}

/// The random traffic both vGICs get; shared with the list-register
/// cache's tests (`cache::tests`).
pub(crate) mod tests {
    use crate::lr::{LrFlush, LR_ACTIVE, LR_PENDING};
    use crate::testids::{gi, hi, vc};
    use crate::{Effects, Vgic, VgicConfig};
    use alloc::vec;
    use alloc::vec::Vec;
    use ferrovisor_types::GuestPhysAddr;
    use proptest::prelude::*;

    pub(crate) const VCPUS: usize = 3;
    pub(crate) const SPIS: u32 = 64;
    const DIST: u64 = 0x0800_0000;
    const REDIST: u64 = 0x080a_0000;

    #[derive(Clone, Debug)]
    pub(crate) enum Op {
        /// `size`-byte MMIO store by `vcpu`.
        Write {
            vcpu: usize,
            addr: u64,
            size: u8,
            value: u64,
        },
        Sgi {
            vcpu: usize,
            value: u64,
        },
        Level {
            intid: u32,
            vcpu: usize,
            level: bool,
        },
        Edge {
            intid: u32,
            vcpu: usize,
        },
        Link {
            intid: u32,
            vcpu: usize,
            pintid: u32,
        },
        Unlink {
            intid: u32,
            vcpu: usize,
        },
        Flush {
            vcpu: usize,
        },
        Sync {
            vcpu: usize,
        },
        /// The guest acknowledges (pending -> active) or deactivates an LR.
        Guest {
            vcpu: usize,
            lr: usize,
            eoi: bool,
        },
        /// The guest acknowledges and deactivates an LR (handles it).
        Handle {
            vcpu: usize,
            lr: usize,
        },
        /// The hypervisor hands back something else than it was given.
        Corrupt {
            vcpu: usize,
            lr: usize,
            value: u64,
        },
    }

    /// Bit-array bases (IGROUPR ... ICACTIVER), shared by GICD and SGI_base.
    const BIT_ARRAYS: [u64; 7] = [0x080, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380];

    fn bits() -> impl Strategy<Value = u64> {
        prop_oneof![
            3 => (0u32..32).prop_map(|b| 1u64 << b),
            2 => any::<u32>().prop_map(u64::from),
            1 => Just(u64::from(u32::MAX)),
        ]
    }

    fn write() -> impl Strategy<Value = Op> {
        let v = 0usize..VCPUS;
        prop_oneof![
            // GICD_CTLR group enables.
            2 => (v.clone(), 0u64..4).prop_map(|(vcpu, value)| Op::Write { vcpu, addr: DIST, size: 4, value }),
            // GICD bit arrays for the SPIs.
            8 => (v.clone(), prop::sample::select(&BIT_ARRAYS[..]), 1u64..3, bits()).prop_map(
                |(vcpu, base, n, value)| Op::Write { vcpu, addr: DIST + base + 4 * n, size: 4, value }
            ),
            // GICR_* bit arrays for SGIs and PPIs.
            8 => (v.clone(), 0usize..VCPUS, prop::sample::select(&BIT_ARRAYS[..]), bits()).prop_map(
                |(vcpu, r, base, value)| {
                    let addr = REDIST + 0x2_0000 * r as u64 + 0x1_0000 + base;
                    Op::Write { vcpu, addr, size: 4, value }
                }
            ),
            // Priorities (GICD and GICR), one byte.
            2 => (v.clone(), 0u64..96, any::<u8>()).prop_map(|(vcpu, i, value)| {
                let addr = if i < 32 { REDIST + 0x2_0000 * (vcpu as u64) + 0x1_0400 + i } else { DIST + 0x400 + i };
                Op::Write { vcpu, addr, size: 1, value: u64::from(value) }
            }),
            // Trigger modes: GICR_ICFGR1, GICD_ICFGR2..5.
            2 => (v.clone(), 1u64..6, any::<u32>()).prop_map(|(vcpu, n, value)| {
                let addr = if n == 1 { REDIST + 0x2_0000 * (vcpu as u64) + 0x1_0c04 } else { DIST + 0xc00 + 4 * n };
                Op::Write { vcpu, addr, size: 4, value: u64::from(value) }
            }),
            // Routing: existing vCPUs, a missing one, IRM, Aff1.
            3 => (v, 32u64..96, prop::sample::select(&[0u64, 1, 2, 3, 1 << 31, 0x100][..])).prop_map(
                |(vcpu, i, value)| Op::Write { vcpu, addr: DIST + 0x6000 + 8 * i, size: 8, value }
            ),
        ]
    }

    pub(crate) fn op(nlrs: usize) -> impl Strategy<Value = Op> {
        let v = 0usize..VCPUS;
        let intid = prop_oneof![0u32..32, 32u32..96];
        prop_oneof![
            10 => write(),
            2 => (v.clone(), 0u64..16, 0u64..8, prop::bool::weighted(0.2)).prop_map(|(vcpu, i, list, irm)| {
                Op::Sgi { vcpu, value: (i << 24) | list | (u64::from(irm) << 40) }
            }),
            3 => (intid.clone(), v.clone(), any::<bool>()).prop_map(|(intid, vcpu, level)| Op::Level { intid, vcpu, level }),
            3 => (intid.clone(), v.clone()).prop_map(|(intid, vcpu)| Op::Edge { intid, vcpu }),
            1 => (intid.clone(), v.clone(), 16u32..100).prop_map(|(intid, vcpu, pintid)| Op::Link { intid, vcpu, pintid }),
            1 => (intid, v.clone()).prop_map(|(intid, vcpu)| Op::Unlink { intid, vcpu }),
            5 => v.clone().prop_map(|vcpu| Op::Flush { vcpu }),
            3 => v.clone().prop_map(|vcpu| Op::Sync { vcpu }),
            6 => (v.clone(), 0..nlrs, any::<bool>()).prop_map(|(vcpu, lr, eoi)| Op::Guest { vcpu, lr, eoi }),
            1 => (v, 0..nlrs, prop_oneof![any::<u64>(), (0u64..96).prop_map(|i| i | LR_PENDING)])
                .prop_map(|(vcpu, lr, value)| Op::Corrupt { vcpu, lr, value }),
        ]
    }

    /// One vGIC plus the list registers of its vCPUs.
    pub(crate) struct Machine {
        pub(crate) g: Vgic,
        pub(crate) lrs: Vec<Vec<u64>>,
    }

    impl Machine {
        pub(crate) fn new(nlrs: usize, booted: bool) -> Self {
            let cfg = VgicConfig {
                vcpus: VCPUS,
                spis: SPIS,
                dist_base: GuestPhysAddr(DIST),
                redist_base: GuestPhysAddr(REDIST),
            };
            let mut g = Vgic::new(cfg).unwrap();
            if booted {
                // Groups and every interrupt enabled, like a running Linux.
                let mut fx = Effects::new();
                g.mmio_write(vc(0), GuestPhysAddr(DIST), 4, 2, &mut fx);
                for n in 1..3 {
                    g.mmio_write(vc(0), GuestPhysAddr(DIST + 0x100 + 4 * n), 4, u64::from(u32::MAX), &mut fx);
                }
                for r in 0..VCPUS {
                    let addr = GuestPhysAddr(REDIST + 0x2_0000 * r as u64 + 0x1_0100);
                    g.mmio_write(vc(r), addr, 4, u64::from(u32::MAX), &mut fx);
                }
            }
            Self { g, lrs: vec![vec![0; nlrs]; VCPUS] }
        }

        /// Applies `op`, through the full-scan paths if `full`; returns what
        /// a flush reported and the effects.
        pub(crate) fn apply(&mut self, op: &Op, full: bool) -> (Option<LrFlush>, Effects) {
            let g = &mut self.g;
            let mut fx = Effects::new();
            let mut flush = None;
            if device_op(g, op, &mut fx) {
                return (None, fx);
            }
            match *op {
                Op::Write { .. }
                | Op::Sgi { .. }
                | Op::Level { .. }
                | Op::Edge { .. }
                | Op::Link { .. }
                | Op::Unlink { .. } => {}
                Op::Flush { vcpu } => {
                    let lrs = &mut self.lrs[vcpu];
                    flush = Some(if full { g.flush_lrs_full(vcpu, lrs) } else { g.flush_lrs(vc(vcpu), lrs) });
                }
                Op::Sync { vcpu } => {
                    let lrs = &mut self.lrs[vcpu];
                    if full {
                        g.sync_lrs_full(vcpu, lrs);
                    } else {
                        g.sync_lrs(vc(vcpu), lrs);
                    }
                }
                Op::Guest { vcpu, lr, .. } | Op::Handle { vcpu, lr } => guest_op(&mut self.lrs[vcpu][lr], op),
                Op::Corrupt { vcpu, lr, value } => self.lrs[vcpu][lr] = value,
            }
            (flush, fx)
        }
    }

    /// What the guest's CPU interface does to list register value `x` for
    /// [`Op::Guest`] (acknowledge, or deactivate) and [`Op::Handle`] (both).
    pub(crate) fn guest_op(x: &mut u64, op: &Op) {
        let ack = |x: &mut u64| {
            if *x & (LR_PENDING | LR_ACTIVE) == LR_PENDING {
                *x = (*x & !LR_PENDING) | LR_ACTIVE;
            }
        };
        match *op {
            Op::Guest { eoi: true, .. } => *x &= !LR_ACTIVE,
            Op::Guest { eoi: false, .. } => ack(x),
            Op::Handle { .. } => {
                ack(x);
                *x &= !LR_ACTIVE;
            }
            _ => {}
        }
    }

    /// Applies `op` to `g` if it is a change from outside the list
    /// registers (a register write, an SGI, a device line or edge, a HW
    /// link); false for the other operations.
    pub(crate) fn device_op(g: &mut Vgic, op: &Op, fx: &mut Effects) -> bool {
        match *op {
            Op::Write { vcpu, addr, size, value } => {
                g.mmio_write(vc(vcpu), GuestPhysAddr(addr), size, value, fx)
            }
            Op::Sgi { vcpu, value } => g.write_sgi1r(vc(vcpu), value, fx),
            Op::Level { intid, vcpu, level } => g.set_level(gi(intid), vc(vcpu), level, fx),
            Op::Edge { intid, vcpu } => g.raise_edge(gi(intid), vc(vcpu), fx),
            Op::Link { intid, vcpu, pintid } => {
                let _ = g.link_hw(gi(intid), vc(vcpu), hi(pintid));
            }
            Op::Unlink { intid, vcpu } => {
                g.unlink_hw(gi(intid), vc(vcpu));
            }
            _ => return false,
        }
        true
    }

    fn equivalent(nlrs: usize, booted: bool, ops: &[Op]) -> Result<(), TestCaseError> {
        let mut opt = Machine::new(nlrs, booted);
        let mut full = Machine::new(nlrs, booted);
        for (step, op) in ops.iter().enumerate() {
            let (f_opt, fx_opt) = opt.apply(op, false);
            let (f_full, fx_full) = full.apply(op, true);
            prop_assert_eq!(f_opt, f_full, "flush result at step {}: {:?}", step, op);
            prop_assert_eq!(fx_opt.to_vec(), fx_full.to_vec(), "effects at step {}: {:?}", step, op);
            prop_assert_eq!(&opt.lrs, &full.lrs, "list registers at step {}: {:?}", step, op);
            for v in 0..VCPUS {
                let want = full.g.has_deliverable_full(v);
                prop_assert_eq!(
                    opt.g.has_deliverable(vc(v)),
                    want,
                    "has_deliverable({}) at step {}",
                    v,
                    step
                );
                prop_assert_eq!(opt.g.has_deliverable_full(v), want, "states diverged at step {}", step);
            }
            opt.g.check_sets();
        }
        for v in 0..VCPUS {
            for intid in 0..32 + SPIS {
                prop_assert_eq!(
                    opt.g.irq_info(gi(intid), vc(v)),
                    full.g.irq_info(gi(intid), vc(v)),
                    "INTID {}",
                    intid
                );
            }
        }
        prop_assert_eq!(opt.g.bad_accesses(), full.g.bad_accesses());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

        /// The loaded/candidate sets never lose (nor invent) an interrupt:
        /// same LRs, flush results, effects and WFI answers as a full scan.
        #[test]
        fn optimised_paths_match_the_full_scan(
            (nlrs, booted, ops) in (1usize..6, any::<bool>())
                .prop_flat_map(|(n, b)| (Just(n), Just(b), prop::collection::vec(op(n), 1..250)))
        ) {
            equivalent(nlrs, booted, &ops)?;
        }
    }

    /// The LR values of each vCPU, sorted (the set a guest sees).
    pub(crate) fn lr_sets(lrs: &[Vec<u64>]) -> Vec<Vec<u64>> {
        lrs.iter()
            .map(|l| {
                let mut v: Vec<u64> = l.iter().copied().filter(|&x| x != 0).collect();
                v.sort_unstable();
                v
            })
            .collect()
    }

    /// A long deterministic run through many LR overflows and re-routings.
    #[test]
    fn flood_matches_the_full_scan() {
        let mut ops = Vec::new();
        for round in 0..40u32 {
            for i in 0..24 {
                let intid = 16 + (round * 7 + i * 5) % 80;
                ops.push(Op::Edge { intid, vcpu: (i % 3) as usize });
                ops.push(Op::Level { intid: 32 + (i * 3) % 64, vcpu: 0, level: (round + i) % 2 == 0 });
            }
            let value = u64::from(round % 4);
            ops.push(Op::Write { vcpu: 0, addr: DIST + 0x6000 + 8 * u64::from(32 + round), size: 8, value });
            for v in 0..VCPUS {
                ops.push(Op::Flush { vcpu: v });
                for lr in 0..4 {
                    ops.push(Op::Guest { vcpu: v, lr, eoi: false });
                    ops.push(Op::Guest { vcpu: v, lr, eoi: round % 3 != 0 });
                }
                ops.push(Op::Sync { vcpu: v });
            }
        }
        equivalent(4, true, &ops).unwrap();
    }
}
