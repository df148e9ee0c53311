//! `ICH_LR<n>_EL2` encoding and the list-register flush/sync logic.
//!
//! Layout: vINTID `[31:0]`, pINTID `[44:32]` (HW=1) or EOI maintenance
//! request bit 41 (HW=0), Priority `[55:48]`, Group `[60]`, HW `[61]`,
//! State `[63:62]` (00 invalid, 01 pending, 10 active, 11 both).

use crate::irq::{Irq, LrSlot};
use crate::Vgic;
use ferrovisor_types::{GuestIrq, VcpuId};

/// vINTID field.
pub const LR_VINTID_MASK: u64 = 0xffff_ffff;
/// pINTID field shift (valid with HW=1).
pub const LR_PINTID_SHIFT: u32 = 32;
/// pINTID field mask (after shifting).
pub const LR_PINTID_MASK: u64 = 0x1fff;
/// EOI bit (HW=0): maintenance interrupt on deactivation.
pub const LR_EOI: u64 = 1 << 41;
/// Priority field shift.
pub const LR_PRIORITY_SHIFT: u32 = 48;
/// Group bit (1 = group 1, virtual IRQ; 0 = group 0, virtual FIQ).
pub const LR_GROUP: u64 = 1 << 60;
/// HW bit.
pub const LR_HW: u64 = 1 << 61;
/// Pending state bit.
pub const LR_PENDING: u64 = 1 << 62;
/// Active state bit.
pub const LR_ACTIVE: u64 = 1 << 63;

/// Most list registers a flush fills (the architectural maximum).
pub const MAX_LRS: usize = 16;

/// Outcome of [`Vgic::flush_lrs`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct LrFlush {
    /// Number of non-invalid list registers after the flush.
    pub used: usize,
    /// More interrupts are waiting for this vCPU than free LRs: set
    /// `ICH_HCR_EL2.UIE` (and/or NPIE) to get a maintenance interrupt when
    /// LRs free up.
    pub overflow: bool,
    /// Bit `i` set: interrupts this vGIC took back from list registers
    /// (completed, or no longer deliverable here) are now deliverable to
    /// vCPU `i`; kick it like for [`crate::Effect::Kick`].
    pub kicks: u32,
}

/// The vINTID of an LR value.
pub const fn lr_vintid(lr: u64) -> u32 {
    (lr & LR_VINTID_MASK) as u32
}

/// Whether an LR value is in the invalid (inactive) state.
pub const fn lr_is_invalid(lr: u64) -> bool {
    lr & (LR_PENDING | LR_ACTIVE) == 0
}

/// The vINTID, priority and group fields of an LR for `irq`.
#[inline(always)]
fn lr_header(intid: u32, irq: &Irq) -> u64 {
    let group = if irq.group1() { LR_GROUP } else { 0 };
    u64::from(intid) | (u64::from(irq.priority) << LR_PRIORITY_SHIFT) | group
}

/// The HW bit and pINTID field of an LR linked to physical INTID `pintid`.
#[inline(always)]
fn lr_hw(pintid: u32) -> u64 {
    LR_HW | ((u64::from(pintid) & LR_PINTID_MASK) << LR_PINTID_SHIFT)
}

#[inline(always)]
fn encode(intid: u32, irq: &Irq, slot: &LrSlot) -> u64 {
    let mut v = lr_header(intid, irq);
    match irq.hw {
        Some(p) if slot.hw() => v |= lr_hw(p.raw()),
        // The EOI maintenance only serves to re-sample a line that is high
        // now; a line that rises later marks the interrupt, and the flush
        // that follows (the injection kicks the vCPU) re-encodes the LR.
        // An interrupt pended by `raise_edge` alone (the virtual timer)
        // needs no maintenance exit.
        _ if irq.level_sw() && irq.line() => v |= LR_EOI,
        _ => {}
    }
    if slot.pending() {
        v |= LR_PENDING;
    }
    if slot.active() {
        v |= LR_ACTIVE;
    }
    v
}

impl Vgic {
    /// After an exit of vCPU `vcpu`: reads back its list registers.
    ///
    /// An LR the guest completed (invalid) hands its interrupt back to the
    /// model (a level interrupt whose line is still high is pending again;
    /// an edge is done unless it was raised again meanwhile); pending,
    /// active and pending+active LRs stay loaded and their state is
    /// recorded. Invalid LRs, LRs this vGIC did not load for `vcpu` and
    /// duplicates are zeroed. `lrs` must be exactly what the last
    /// [`Vgic::flush_lrs`] left, as modified by the hardware.
    ///
    /// Cost: one step per LR and per INTID the model loaded on `vcpu`.
    pub fn sync_lrs(&mut self, vcpu: VcpuId, lrs: &mut [u64]) {
        let vcpu = vcpu.index();
        if vcpu >= self.cfg.vcpus {
            self.count_bad();
            return;
        }
        self.reconcile(vcpu, lrs);
    }

    /// Before entering vCPU `vcpu`: applies the model's changes to the
    /// loaded LRs and fills the free ones with the highest-priority
    /// interrupts deliverable to it (enabled, pending, group enabled in
    /// `GICD_CTLR`, routed to it, not already loaded), plus any interrupt
    /// made active by `GICx_ISACTIVER`. `lrs` holds the current contents
    /// (after [`Vgic::sync_lrs`]); its length is the number of LRs.
    ///
    /// Cost: one step per LR and per INTID loaded on `vcpu`, plus one per
    /// interrupt that became a candidate for `vcpu` since its last flush or
    /// stayed wanted (undelivered for lack of LRs); never a scan of the
    /// INTID space, never an allocation.
    pub fn flush_lrs(&mut self, vcpu: VcpuId, lrs: &mut [u64]) -> LrFlush {
        let vcpu = vcpu.index();
        if vcpu >= self.cfg.vcpus {
            self.count_bad();
            return LrFlush::default();
        }
        self.reconcile(vcpu, lrs);
        for lr in lrs.iter_mut() {
            if *lr != 0 {
                *lr = self.refresh(vcpu, lr_vintid(*lr));
            }
        }
        let free = lrs.iter().filter(|&&lr| lr == 0).count().min(MAX_LRS);
        let (best, found) = self.best_candidates(vcpu, free + 1);
        let mut next = best.iter().take(found.min(free));
        for lr in lrs.iter_mut().filter(|lr| **lr == 0) {
            let Some(&key) = next.next() else { break };
            *lr = self.load(vcpu, key as u32);
        }
        let used = lrs.iter().filter(|&&lr| lr != 0).count();
        let kicks = core::mem::take(&mut self.deferred_kicks) & !(1u32 << vcpu);
        LrFlush { used, overflow: found > free, kicks }
    }

    /// Matches `lrs` against the interrupts the model believes loaded on
    /// `vcpu`; completes the ones that went invalid or vanished. Costs one
    /// step per LR and per INTID loaded on `vcpu`.
    fn reconcile(&mut self, vcpu: usize, lrs: &mut [u64]) {
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
        let Some(loaded) = self.banks.get(vcpu).filter(|b| !b.loaded.is_empty()).map(|b| b.loaded) else {
            return;
        };
        for intid in loaded {
            let Some(irq) = self.irq_mut(intid, vcpu) else { continue };
            let Some(s) = irq.lr.as_mut().filter(|s| s.vcpu == vcpu) else {
                // Not actually loaded here (cannot happen): forget it.
                if let Some(b) = self.banks.get_mut(vcpu) {
                    b.loaded.remove(intid);
                }
                continue;
            };
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

    /// INTID `intid` just left an LR of `vcpu` (its `lr` was cleared): it
    /// is no longer loaded there and is a candidate again for its target;
    /// if it is now deliverable to another vCPU, that one needs a kick.
    pub(crate) fn released(&mut self, intid: u32, vcpu: usize) {
        if let Some(b) = self.banks.get_mut(vcpu) {
            b.loaded.remove(intid);
        }
        self.mark(intid, vcpu);
        let Some(t) = self.target(intid, vcpu) else { return };
        if t == vcpu || t >= 32 {
            return;
        }
        if self.irq(intid, vcpu).is_some_and(|irq| self.deliverable(irq, intid, t) || irq.active()) {
            self.deferred_kicks |= 1 << t;
        }
    }

    /// Applies pending model changes to the loaded INTID `intid` of `vcpu`
    /// and returns the new LR value (0 if it leaves the LR).
    pub(crate) fn refresh(&mut self, vcpu: usize, intid: u32) -> u64 {
        let signalable = match self.irq(intid, vcpu) {
            Some(irq) => self.signalable(irq, intid, vcpu),
            None => return 0,
        };
        let Some(irq) = self.irq_mut(intid, vcpu) else { return 0 };
        let Some(mut s) = irq.lr else { return 0 };
        if s.clear_pending() {
            s.set_pending(false);
        }
        if s.clear_active() {
            s.set_active(false);
        }
        s.set_clear_pending(false);
        s.set_clear_active(false);
        // ISACTIVER on a loaded interrupt. An LR with HW=1 cannot be
        // pending and active at once: a pending-only HW LR goes back to the
        // model below instead, and `load` puts the active state in first
        // (HW=0) and the physical activation after the guest completed it.
        if irq.active() && !(s.hw() && s.pending()) {
            s.set_active(true);
            irq.set_active(false);
        }
        // New pending state arriving on a loaded interrupt.
        // Not onto an LR without HW while a physical activation waits (it
        // must reach the guest with HW=1), and never pending+active with HW.
        let hw_ok = if s.hw() { !s.active() } else { !irq.hw_active() };
        let merge = irq.latch() && signalable && hw_ok;
        if merge {
            s.set_pending(true);
            s.set_latched(s.latched() | irq.level_sw());
            irq.set_latch(false);
        }
        if s.pending() && !s.active() {
            // Pending only: give it back, the fill re-sorts by priority.
            if !irq.level_sw() || s.latched() {
                irq.set_latch(true);
            }
            irq.lr = None;
            self.released(intid, vcpu);
            return 0;
        }
        if !s.pending() && !s.active() {
            irq.leave_lr(s.hw());
            self.released(intid, vcpu);
            return 0;
        }
        irq.lr = Some(s);
        encode(intid, irq, &s)
    }

    /// The (at most `k`, at most [`MAX_LRS`] + 1) best interrupts to load
    /// on `vcpu`, best first: active ones, then by priority, then by INTID.
    /// Returns their sort keys (the INTID in the low 32 bits) and how many
    /// were found.
    ///
    /// Visits only the candidates of `vcpu`, dropping those no longer
    /// wanted (whatever makes them wanted again marks them again).
    fn best_candidates(&mut self, vcpu: usize, k: usize) -> ([u64; MAX_LRS + 1], usize) {
        let mut best = [u64::MAX; MAX_LRS + 1];
        let k = k.min(best.len());
        let mut n = 0;
        let Some(candidates) =
            self.banks.get(vcpu).filter(|b| !b.candidates.is_empty()).map(|b| b.candidates)
        else {
            return (best, 0);
        };
        for intid in candidates {
            let irq = match self.irq(intid, vcpu) {
                Some(irq) if self.wanted(intid, vcpu) => irq,
                _ => {
                    if let Some(b) = self.banks.get_mut(vcpu) {
                        b.candidates.remove(intid);
                    }
                    continue;
                }
            };
            let key = (u64::from(!irq.active()) << 40) | (u64::from(irq.priority) << 32) | u64::from(intid);
            // Insertion into the sorted prefix `best[..n]`, capped at `k`.
            let pos = best.iter().take(n).position(|&bk| key < bk).unwrap_or(n);
            if pos >= k {
                continue;
            }
            n = (n + 1).min(k);
            if let Some(tail) = best.get_mut(pos..n) {
                tail.rotate_right(1);
                if let Some(first) = tail.first_mut() {
                    *first = key;
                }
            }
        }
        (best, n)
    }

    /// vCPUs (bit `i`: vCPU `i`) that interrupts taken back by
    /// [`Vgic::sync_lrs`] made something deliverable to, and which need a
    /// kick; the next [`Vgic::flush_lrs`] would report them otherwise. Call
    /// after a `sync_lrs` that no flush follows (a vCPU being descheduled).
    pub fn take_kicks(&mut self) -> u32 {
        core::mem::take(&mut self.deferred_kicks)
    }

    /// The exit fast path's share of a refill: the guest completed the
    /// interrupts whose LR values (read back, now invalid) are in `done`,
    /// and the model takes them back from `vcpu` exactly as
    /// [`Vgic::sync_lrs`] would (a completed interrupt that is not wanted
    /// again also leaves the candidates, as the next fill would drop it).
    ///
    /// Returns true if `vcpu` is left with nothing to load and no other
    /// vCPU to kick: the caller may then reuse those LRs (as free) and go on
    /// with [`Vgic::raise_edge_into_lr`]. False: the caller must take the
    /// ordinary path (the next `sync_lrs`/`flush_lrs` finds these
    /// completions already taken back and the LRs invalid, which is
    /// consistent). A value in `done` that is not invalid is no completion
    /// and is ignored.
    ///
    /// Cost: one step per value, no scan.
    pub fn retire_lrs(&mut self, vcpu: VcpuId, done: impl IntoIterator<Item = u64>) -> bool {
        let vcpu = vcpu.index();
        if vcpu >= self.cfg.vcpus {
            return false;
        }
        for lr in done.into_iter().filter(|&lr| lr_is_invalid(lr)) {
            let intid = lr_vintid(lr);
            let Some(irq) = self.irq_mut(intid, vcpu) else { continue };
            let Some(s) = irq.lr.filter(|s| s.vcpu == vcpu) else { continue };
            irq.leave_lr(s.hw());
            if let Some(b) = self.banks.get_mut(vcpu) {
                b.loaded.remove(intid);
            }
            // What `released` and the next fill would make of it, in one
            // step: wanted again (pending, or still active), it is a
            // candidate of its target, kicked if that is another vCPU;
            // otherwise it is no candidate anywhere.
            let Some(t) = self.target(intid, vcpu) else { continue };
            let wanted = self.wanted(intid, t);
            if let Some(b) = self.banks.get_mut(t) {
                if wanted {
                    b.candidates.insert(intid);
                } else {
                    b.candidates.remove(intid);
                }
            }
            if wanted && t != vcpu && t < 32 {
                self.deferred_kicks |= 1 << t;
            }
        }
        self.deferred_kicks == 0 && self.banks.get(vcpu).is_some_and(|b| b.candidates.is_empty())
    }

    /// Of `lrs` (as [`Vgic::flush_lrs`] left them for `vcpu`), the ones
    /// holding an SGI that `vcpu` may take again straight into the same LR
    /// once the guest completed it (bit `i` for LR `i`): enabled, group 1
    /// with group 1 enabled, no state outside its LR, no maintenance
    /// request. While nothing changes in the model for `vcpu`, such an SGI
    /// sent again needs nothing from the model (`LrCache::rearm_sgi`).
    pub fn rearmable_sgis(&self, vcpu: VcpuId, lrs: &[u64]) -> u16 {
        let vcpu = vcpu.index();
        let mut bits = 0u16;
        if !self.grp1 {
            return bits;
        }
        for (i, &lr) in lrs.iter().enumerate().take(MAX_LRS) {
            let intid = lr_vintid(lr);
            if lr == 0 || intid >= 16 || lr & (LR_HW | LR_EOI) != 0 {
                continue;
            }
            let ok = self.irq(intid, vcpu).is_some_and(|irq| {
                irq.group1()
                    && irq.edge()
                    && irq.in_lr_and_enabled()
                    && irq.lr.is_some_and(|s| s.vcpu == vcpu && !s.hw())
            });
            if ok {
                bits |= 1 << i;
            }
        }
        bits
    }

    /// The exit fast path when `intid` fires again while the guest still
    /// handles it: `vcpu` holds it in a list register read back active and
    /// not pending (acknowledged, no HW). The LR becomes pending and
    /// active, exactly what raising it and refilling would make of it (a
    /// virtual timer that fires again before its handler's EOI, as on an
    /// idle Linux vCPU whose next event is already due). Returns the LR
    /// value to write, or None if that would not be all (HW-linked,
    /// disabled, already pending outside its LR): the general path.
    #[inline]
    pub fn repend_lr(&mut self, intid: GuestIrq, vcpu: VcpuId) -> Option<u64> {
        let (intid, vcpu) = (intid.raw(), vcpu.index());
        if self.target(intid, vcpu) != Some(vcpu) {
            return None;
        }
        // An SGI only in group 1 (see `raise_edge_into_lr`).
        let group_on = (self.grp0 && intid >= 16, self.grp1);
        let irq = self.irq_mut(intid, vcpu)?;
        let mut s = irq.lr?;
        let group_enabled = if irq.group1() { group_on.1 } else { group_on.0 };
        if s.vcpu != vcpu
            || s.hw()
            || s.clear_pending()
            || s.clear_active()
            || irq.hw.is_some()
            || !irq.in_lr_and_enabled()
            || !group_enabled
        {
            return None;
        }
        s.set_pending(true);
        s.set_active(true);
        s.set_latched(s.latched() | irq.level_sw());
        irq.lr = Some(s);
        Some(lr_header(intid, irq) | LR_PENDING | LR_ACTIVE)
    }

    /// The exit fast path's cheapest case: the guest completed the
    /// interrupt `intid` that `vcpu` holds in a list register (read back
    /// invalid, without HW), and `intid` fires again. It goes back into
    /// the same list register: the model records the completion and the
    /// new pending state in one step, exactly as [`Vgic::retire_lrs`]
    /// followed by [`Vgic::raise_edge_into_lr`] would. Returns the LR value
    /// to write, or None if that would not be all (it is HW-linked, its
    /// line is high, it is pending again already, disabled, or something
    /// else waits): the caller takes the general path.
    #[inline]
    pub fn rearm_lr(&mut self, intid: GuestIrq, vcpu: VcpuId) -> Option<u64> {
        let (intid, vcpu) = (intid.raw(), vcpu.index());
        if !self.banks.get(vcpu)?.candidates.is_empty() || self.target(intid, vcpu) != Some(vcpu) {
            return None;
        }
        // An SGI only in group 1 (see `raise_edge_into_lr`).
        let group_on = (self.grp0 && intid >= 16, self.grp1);
        let irq = self.irq_mut(intid, vcpu)?;
        let s = irq.lr?;
        let group_enabled = if irq.group1() { group_on.1 } else { group_on.0 };
        if s.vcpu != vcpu || s.hw() || irq.hw.is_some() || !irq.in_lr_and_enabled() || !group_enabled {
            return None;
        }
        // As `raise_edge_into_lr` makes it: a level-sensitive one (the
        // virtual timer) latched.
        let mut s = LrSlot::new(vcpu);
        s.set_pending(true);
        s.set_latched(!irq.edge());
        irq.lr = Some(s);
        Some(lr_header(intid, irq) | LR_PENDING)
    }

    /// The fast path of an injection into the running vCPU `vcpu`:
    /// [`Vgic::raise_edge`] on INTID `intid` (bank `vcpu` for SGIs/PPIs)
    /// followed by the fill of one free list register, when that is all a
    /// flush would do. Returns the value to write into a free LR (the
    /// interrupt is then recorded as loaded on `vcpu`), or None with nothing
    /// changed; the caller then takes the ordinary path (`raise_edge`, then
    /// `flush_lrs` before the next entry).
    ///
    /// The caller guarantees what the model cannot see: nothing changed in
    /// the vGIC since `vcpu`'s last flush, the LRs the guest completed since
    /// then went through [`Vgic::retire_lrs`], and one LR is free (holding
    /// no interrupt the model counts as loaded). The
    /// model then checks that the interrupt is deliverable to `vcpu`, not
    /// pending, active or loaded anywhere, not a level interrupt with its
    /// line high, and that no other interrupt waits for `vcpu` (so loading
    /// it first cannot break the priority order). Loaded LRs keep their
    /// places; a flush might have put the same set in another order.
    ///
    /// An SGI comes only from `ICC_SGI1R_EL1` on this path (the mailbox):
    /// a group-0 one is refused, as [`Vgic::receive_sgis`] ignores it (the
    /// same holds for [`Vgic::rearm_lr`] and [`Vgic::repend_lr`]).
    ///
    /// Cost: a handful of checks, no scan.
    #[inline(always)]
    pub fn raise_edge_into_lr(&mut self, intid: GuestIrq, vcpu: VcpuId) -> Option<u64> {
        let (intid, vcpu) = (intid.raw(), vcpu.index());
        if !self.banks.get(vcpu)?.candidates.is_empty() {
            return None;
        }
        if self.target(intid, vcpu) != Some(vcpu) {
            return None;
        }
        // An SGI only in group 1 (see `raise_edge_into_lr`).
        let group_on = (self.grp0 && intid >= 16, self.grp1);
        let irq = self.irq_mut(intid, vcpu)?;
        let group_enabled = if irq.group1() { group_on.1 } else { group_on.0 };
        if !irq.quiet_and_enabled() || !group_enabled {
            return None;
        }
        // What raise_edge then load would leave, encoded as `encode` would
        // (the line is low, so never the EOI bit): a HW-linked interrupt
        // has a physical activation behind its pending state (HW=1); any
        // other is pending from its latch.
        let mut s = LrSlot::new(vcpu);
        s.set_pending(true);
        let mut value = lr_header(intid, irq) | LR_PENDING;
        match irq.hw {
            Some(p) => {
                irq.set_hw_active(true);
                s.set_hw(true);
                value |= lr_hw(p.raw());
            }
            None => s.set_latched(!irq.edge()),
        }
        irq.lr = Some(s);
        if let Some(b) = self.banks.get_mut(vcpu) {
            b.loaded.insert(intid);
        }
        Some(value)
    }

    /// Loads INTID `intid` into an LR of `vcpu`; returns the LR value.
    pub(crate) fn load(&mut self, vcpu: usize, intid: u32) -> u64 {
        let deliver = match self.irq(intid, vcpu) {
            Some(irq) => self.deliverable(irq, intid, vcpu),
            None => return 0,
        };
        let Some(irq) = self.irq_mut(intid, vcpu) else { return 0 };
        let mut s = LrSlot::new(vcpu);
        s.set_active(irq.active());
        irq.set_active(false);
        // HW=1 only when a physical activation stands behind the pending
        // state, and never pending+active.
        s.set_hw(irq.hw.is_some() && irq.hw_active() && !s.active());
        if deliver && !(s.active() && irq.hw_active()) {
            s.set_pending(true);
            s.set_latched(irq.level_sw() && irq.latch());
            irq.set_latch(false);
        }
        if !s.pending() && !s.active() {
            return 0;
        }
        irq.lr = Some(s);
        let value = encode(intid, irq, &s);
        if let Some(b) = self.banks.get_mut(vcpu) {
            b.loaded.insert(intid);
            b.candidates.remove(intid);
        }
        value
    }
}
