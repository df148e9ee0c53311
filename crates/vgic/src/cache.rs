//! A vCPU's list registers as the hypervisor keeps them: the values saved
//! while the vCPU is not loaded, which of them hold an interrupt, and the
//! vGIC generation they were filled at, so that an entry with nothing new
//! skips the refill and a device interrupt can go straight into a free list
//! register on the exit fast path.
//!
//! The hardware is reached through [`LrBank`]: the hypervisor implements it
//! with the `ICH_*_EL2` registers, the tests with a plain array that plays
//! the guest's part (acknowledge, deactivate), so every decision made here
//! runs on the host against the vGIC model.
//!
//! Protocol, for the pCPU that owns the vCPU:
//! * [`LrCache::load`] when the vCPU is scheduled in (writes the saved
//!   values back);
//! * [`LrCache::refresh`] before every entry (hands the model what the
//!   guest did and refills, unless nothing changed);
//! * [`LrCache::inject_now`] on the exit fast path (one interrupt straight
//!   into a free LR, or `false`: raise it in the model the ordinary way);
//! * [`LrCache::save`] when the vCPU is scheduled out (reads the LRs back
//!   and hands the model their state).
//!
//! Those return the vCPUs to kick (a bit per vCPU): interrupts this vCPU
//! gave back that are now theirs. The hypervisor sends the IPIs.

use crate::lr::MAX_LRS;
use crate::shared::SharedVgic;
use ferrovisor_types::{GuestIrq, IntidClass, VcpuId};

/// The list registers of the CPU a vCPU is loaded on.
pub trait LrBank {
    /// List registers the CPU implements, `1..=16`.
    fn count(&self) -> usize;
    /// Reads list register `n`.
    fn read(&self, n: usize) -> u64;
    /// Writes list register `n`.
    fn write(&mut self, n: usize, value: u64);
    /// List registers whose interrupt the guest completed (bit `n`): those
    /// without pending or active state (`ICH_ELRSR_EL2 | ICH_EISR_EL2`).
    fn completed(&self) -> u16;
    /// Turns the virtual CPU interface on, with the underflow maintenance
    /// interrupt if `underflow` (more interrupts wait than LRs are free).
    fn enable(&mut self, underflow: bool);
}

/// One vCPU's list-register cache (see the module documentation).
#[derive(Clone, Debug)]
pub struct LrCache {
    /// The list registers while the vCPU is not loaded.
    saved: [u64; MAX_LRS],
    /// List registers holding an interrupt after the last refill.
    live: u16,
    /// One bit per list register the CPU implements (set by `load`).
    mask: u16,
    /// The vGIC generation of the last refill; `u64::MAX`: refill.
    seen: u64,
    /// LRs holding an SGI the model found re-armable
    /// ([`crate::Vgic::rearmable_sgis`]) at the generation `seen`: the only
    /// ones [`LrCache::rearm_sgi`] rewrites without the model.
    armed: u16,
    /// The last refill left interrupts waiting for a free LR: the next
    /// entry refills whatever else happened (the guest's progress may
    /// change which ones belong in the LRs, e.g. an active one waiting).
    overflow: bool,
}

impl Default for LrCache {
    fn default() -> Self {
        Self::new()
    }
}

impl LrCache {
    /// Empty list registers, a refill due.
    pub const fn new() -> Self {
        Self { saved: [0; MAX_LRS], live: 0, mask: 0, seen: u64::MAX, armed: 0, overflow: false }
    }

    /// The vCPU (re)starts: empty list registers, a refill due.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// The saved list registers (for inspection; 0 is empty).
    pub fn saved(&self) -> &[u64; MAX_LRS] {
        &self.saved
    }

    /// Schedules the vCPU in: writes its saved list registers to `bank`.
    /// The virtual CPU interface is turned on by the caller (with the rest
    /// of its state).
    pub fn load(&mut self, bank: &mut impl LrBank) {
        let n = bank.count().clamp(1, MAX_LRS);
        self.mask = ((1u32 << n) - 1) as u16;
        for (i, lr) in self.saved.iter().enumerate().take(n) {
            bank.write(i, *lr);
        }
    }

    /// Before an entry: if the vGIC changed since the last refill, the
    /// guest completed one of the loaded interrupts or the last refill left
    /// some waiting, hands the model what
    /// the guest did with its list registers and refills them with what is
    /// deliverable now. Returns the vCPUs to kick (never `vcpu` itself).
    #[inline(always)]
    pub fn refresh(&mut self, vgic: &SharedVgic, vcpu: VcpuId, bank: &mut impl LrBank) -> u32 {
        let gen = vgic.generation(vcpu);
        if gen == self.seen && !self.overflow && self.live & bank.completed() == 0 {
            return 0;
        }
        self.refill(vgic, vcpu, gen, bank)
    }

    /// [`LrCache::refresh`] when something changed: out of line, so that
    /// the entry with nothing new stays short.
    #[inline(never)]
    fn refill(&mut self, vgic: &SharedVgic, vcpu: VcpuId, gen: u64, bank: &mut impl LrBank) -> u32 {
        // Read before the lock: a change after this point leaves `seen`
        // behind the generation, so the next entry refills again.
        self.seen = gen;
        let n = bank.count().clamp(1, MAX_LRS);
        let mut lrs = [0u64; MAX_LRS];
        for (i, lr) in lrs.iter_mut().enumerate().take(n) {
            *lr = bank.read(i);
        }
        // flush_lrs starts by reconciling the LRs with the model, which is
        // all sync_lrs would do here.
        let (flush, armed) = {
            let mut model = vgic.lock();
            let flush = model.flush_lrs(vcpu, &mut lrs[..n]);
            (flush, model.rearmable_sgis(vcpu, &lrs[..n]))
        };
        self.armed = armed;
        self.live = 0;
        for (i, lr) in lrs.iter().enumerate().take(n) {
            bank.write(i, *lr);
            if *lr != 0 {
                self.live |= 1 << i;
            }
        }
        self.overflow = flush.overflow;
        bank.enable(flush.overflow);
        owed(vgic, flush.kicks, vcpu)
    }

    /// Exit fast path: makes INTID `intid` (which just fired) pending by
    /// writing it straight into a free list register, when the vGIC says
    /// that is all a refill would do ([`crate::Vgic::raise_edge_into_lr`]):
    /// nothing changed in the model since the last refill. Interrupts the
    /// guest completed since then are handed back first
    /// ([`crate::Vgic::retire_lrs`]) and their LRs reused. `false`: the
    /// caller raises `intid` the ordinary way and the next entry refills
    /// (which finds any completion already handed back: consistent).
    #[inline(always)]
    pub fn inject_now(
        &mut self,
        vgic: &SharedVgic,
        vcpu: VcpuId,
        intid: GuestIrq,
        bank: &mut impl LrBank,
    ) -> bool {
        let completed = self.live & bank.completed();
        if completed != 0 {
            if completed & (completed - 1) == 0 && self.rearm(vgic, vcpu, intid, completed, bank) {
                return true;
            }
            return self.inject_after_completions(vgic, vcpu, intid, completed, bank);
        }
        let free = !self.live & self.mask;
        if free == 0 {
            return false;
        }
        // `if_unchanged` spelled out: its closure would not be inlined here.
        let value = {
            let mut model = vgic.lock();
            if vgic.generation(vcpu) == self.seen {
                model.raise_edge_into_lr(intid, vcpu)
            } else {
                None
            }
        };
        let Some(value) = value else {
            return self.repend(vgic, vcpu, intid, bank);
        };
        let i = free.trailing_zeros() as usize;
        bank.write(i, value);
        self.live |= 1 << i;
        // Not armed here, to keep a device interrupt's path short: an SGI
        // that came this way is armed by its first `rearm`.
        true
    }

    /// LR `i` was written by a fast path whose model step checked what
    /// [`crate::Vgic::rearmable_sgis`] checks: if it holds an SGI, that SGI
    /// is re-armable (the bit means nothing for other interrupts:
    /// [`LrCache::rearm_sgi`] only takes SGIs).
    #[inline(always)]
    fn arm(&mut self, i: usize) {
        self.armed |= 1 << i;
    }

    /// [`LrCache::inject_now`] when `intid` could not go into a free LR:
    /// if the guest still handles it (its LR read back active, not
    /// pending), that LR becomes pending and active
    /// ([`crate::Vgic::repend_lr`]). False otherwise.
    #[cold]
    #[inline(never)]
    fn repend(&mut self, vgic: &SharedVgic, vcpu: VcpuId, intid: GuestIrq, bank: &mut impl LrBank) -> bool {
        let mut live = self.live;
        while live != 0 {
            let i = live.trailing_zeros() as usize;
            live &= live - 1;
            let old = bank.read(i);
            if crate::lr::lr_vintid(old) != intid.raw() {
                continue;
            }
            let state = old & (crate::lr::LR_PENDING | crate::lr::LR_ACTIVE | crate::lr::LR_HW);
            if state != crate::lr::LR_ACTIVE {
                return false;
            }
            return self.rewrite_if_unchanged(vgic, vcpu, i, bank, |model| model.repend_lr(intid, vcpu));
        }
        false
    }

    /// The cross-CPU wake-up: SGI `intid`, taken from `vcpu`'s mailbox,
    /// made pending in `vcpu`'s list registers. When the guest completed it
    /// in its LR and that is the only completion, it goes back into the
    /// same LR without the model's lock ([`LrCache::rearm_sgi`]); otherwise
    /// [`LrCache::inject_one`]. False: the caller raises it in the model.
    #[inline(always)]
    pub fn inject_sgi(
        &mut self,
        vgic: &SharedVgic,
        vcpu: VcpuId,
        intid: GuestIrq,
        bank: &mut impl LrBank,
    ) -> bool {
        self.rearm_sgi(vgic, vcpu, intid, bank) || self.inject_one(vgic, vcpu, intid, bank)
    }

    /// [`LrCache::inject_sgi`]'s step without the lock, for an LR the last
    /// refill found re-armable (`armed`: the SGI was enabled, group 1,
    /// with no state outside its LR). Sound because the model would do
    /// nothing else, and needs to know nothing:
    /// * nothing changed in the model for `vcpu` since the last refill
    ///   (generation), and that refill left nothing waiting (no overflow;
    ///   every change that makes an interrupt wait moves the generation): a
    ///   refill now would put the SGI back into an LR and nothing more;
    /// * an SGI is edge-triggered, never HW-linked, and its LR has no
    ///   maintenance request: completing it has no effect in the model but
    ///   freeing the LR, and pending again it reads exactly as the model
    ///   loaded it (header and priority unchanged since); the LR says group
    ///   1, which an SGI from `ICC_SGI1R_EL1` must be;
    /// * the model still counts the SGI as loaded in that LR, and every
    ///   reader of the model's view of a loaded interrupt (the next refill,
    ///   the deschedule, the fast path's retire) reads the LR back first.
    ///   The one exception, the scheduler's WFI test while the vCPU is
    ///   loaded, asks [`LrCache::holds_pending`] as well.
    #[inline(always)]
    fn rearm_sgi(
        &mut self,
        vgic: &SharedVgic,
        vcpu: VcpuId,
        intid: GuestIrq,
        bank: &mut impl LrBank,
    ) -> bool {
        let completed = self.live & bank.completed();
        if completed == 0
            || completed & (completed - 1) != 0
            || completed & self.armed == 0
            || self.overflow
            || intid.class() != IntidClass::Sgi
        {
            return false;
        }
        let i = completed.trailing_zeros() as usize;
        let old = bank.read(i);
        if crate::lr::lr_vintid(old) != intid.raw()
            || old & (crate::lr::LR_HW | crate::lr::LR_EOI | crate::lr::LR_GROUP) != crate::lr::LR_GROUP
            || vgic.generation(vcpu) != self.seen
        {
            return false;
        }
        bank.write(i, old | crate::lr::LR_PENDING);
        true
    }

    /// Whether a list register the vCPU holds is pending (read from the
    /// CPU: the model's view of loaded interrupts may lag behind, see
    /// [`LrCache::rearm_sgi`]).
    pub fn holds_pending(&self, bank: &impl LrBank) -> bool {
        let mut live = self.live;
        while live != 0 {
            let i = live.trailing_zeros() as usize;
            live &= live - 1;
            if bank.read(i) & crate::lr::LR_PENDING != 0 {
                return true;
            }
        }
        false
    }

    /// [`LrCache::inject_now`] out of line, for the kick path's one SGI:
    /// keeps its caller's frame small.
    #[inline(never)]
    pub fn inject_one(
        &mut self,
        vgic: &SharedVgic,
        vcpu: VcpuId,
        intid: GuestIrq,
        bank: &mut impl LrBank,
    ) -> bool {
        self.inject_now(vgic, vcpu, intid, bank)
    }

    /// [`LrCache::inject_now`] when the guest completed one loaded
    /// interrupt (LR bit `completed`) and it was `intid` itself (a vCPU
    /// woken by the same SGI again and again): back into its LR
    /// ([`crate::Vgic::rearm_lr`]). False if that does not apply. Out of
    /// line and small: the cross-CPU wake-up's path.
    #[inline(never)]
    fn rearm(
        &mut self,
        vgic: &SharedVgic,
        vcpu: VcpuId,
        intid: GuestIrq,
        completed: u16,
        bank: &mut impl LrBank,
    ) -> bool {
        let i = completed.trailing_zeros() as usize;
        let old = bank.read(i);
        if crate::lr::lr_vintid(old) != intid.raw() || old & crate::lr::LR_HW != 0 {
            return false;
        }
        self.rewrite_if_unchanged(vgic, vcpu, i, bank, |model| model.rearm_lr(intid, vcpu))
    }

    /// Rewrites live list register `i` with the value `f` gives (the model
    /// updated to match), if nothing changed in the model for `vcpu` since
    /// the last refill; false if something did or `f` declines.
    #[inline(always)]
    fn rewrite_if_unchanged(
        &mut self,
        vgic: &SharedVgic,
        vcpu: VcpuId,
        i: usize,
        bank: &mut impl LrBank,
        f: impl FnOnce(&mut crate::Vgic) -> Option<u64>,
    ) -> bool {
        match self.if_unchanged(vgic, vcpu, f) {
            Some(value) => {
                bank.write(i, value);
                self.arm(i);
                true
            }
            None => false,
        }
    }

    /// [`LrCache::inject_now`] when the guest completed some of the loaded
    /// interrupts (`completed`, LR bits) since the last refill. Out of line,
    /// so the path without completions stays short.
    #[inline(never)]
    fn inject_after_completions(
        &mut self,
        vgic: &SharedVgic,
        vcpu: VcpuId,
        intid: GuestIrq,
        completed: u16,
        bank: &mut impl LrBank,
    ) -> bool {
        let live = self.live & !completed;
        let free = !live & self.mask;
        if free == 0 {
            return false;
        }
        let value = self.if_unchanged(vgic, vcpu, |model| {
            let mut bits = completed;
            let done = core::iter::from_fn(|| {
                let i = bits.trailing_zeros() as usize;
                bits &= bits.wrapping_sub(1);
                (i < MAX_LRS).then(|| bank.read(i))
            });
            let value =
                if model.retire_lrs(vcpu, done) { model.raise_edge_into_lr(intid, vcpu) } else { None };
            if value.is_none() {
                // The model may have taken the completions back: the next
                // entry must refill (it finds those LRs invalid, which is
                // consistent).
                vgic.invalidate();
            }
            value
        });
        let Some(value) = value else { return false };
        let i = free.trailing_zeros() as usize;
        // The retired LRs are cleared: one left invalid with its EOI bit
        // would keep the maintenance interrupt asserted.
        let mut stale = completed & !(1 << i);
        while stale != 0 {
            bank.write(stale.trailing_zeros() as usize, 0);
            stale &= stale - 1;
        }
        bank.write(i, value);
        self.live = live | (1 << i);
        self.arm(i);
        true
    }

    /// Runs `f` on the model if nothing changed in it for `vcpu` since the
    /// last refill (checked under its lock: every change bumps the generation
    /// while holding it); else None.
    #[inline(always)]
    fn if_unchanged<R>(
        &self,
        vgic: &SharedVgic,
        vcpu: VcpuId,
        f: impl FnOnce(&mut crate::Vgic) -> Option<R>,
    ) -> Option<R> {
        let mut model = vgic.lock();
        if vgic.generation(vcpu) != self.seen {
            return None;
        }
        f(&mut model)
    }

    /// Schedules the vCPU out: reads its list registers back and hands the
    /// model their state. The caller turns the virtual CPU interface off.
    /// Returns the vCPUs to kick (never `vcpu` itself).
    pub fn save(&mut self, vgic: &SharedVgic, vcpu: VcpuId, bank: &impl LrBank) -> u32 {
        let n = bank.count().clamp(1, MAX_LRS);
        for (i, lr) in self.saved.iter_mut().enumerate().take(n) {
            *lr = bank.read(i);
        }
        let kicks = {
            let mut model = vgic.lock();
            model.sync_lrs(vcpu, &mut self.saved[..n]);
            model.take_kicks()
        };
        self.seen = u64::MAX;
        self.armed = 0;
        owed(vgic, kicks, vcpu)
    }
}

/// The vCPUs in `kicks` but `vcpu`: they must refill (the generation moves
/// on) and, if they sleep in an untrapped WFI, wake up.
fn owed(vgic: &SharedVgic, kicks: u32, vcpu: VcpuId) -> u32 {
    let kicks = kicks & !vcpu.bit();
    if kicks != 0 {
        vgic.invalidate();
    }
    kicks
}

#[cfg(test)]
mod tests;
