//! One guest's vGIC as its pCPUs share it: the model behind a lock, and a
//! generation counter per vCPU that tells it whether its list registers
//! are still what the model would put there.
//!
//! Every change of interrupt state goes through [`SharedVgic::update`],
//! which bumps every vCPU's generation while it holds the lock, or
//! [`SharedVgic::update_for`] for a change that only one vCPU's list
//! registers can depend on (its own SGIs and PPIs), which bumps only that
//! vCPU's. A vCPU whose list registers were filled at generation `g` and
//! whose guest completed none of them may skip the refill on entry as long
//! as its generation is still `g` ([`crate::cache::LrCache`]).
//!
//! SGIs between vCPUs do not take the lock on the sender's side: a write
//! to `ICC_SGI1R_EL1` sets bits in each target vCPU's mailbox (an atomic
//! word per vCPU, [`SharedVgic::post_sgi1r`]) and the sender kicks the
//! targets' pCPUs; each vCPU moves its mailbox into the model itself before
//! it refills its list registers or checks for a deliverable interrupt
//! ([`SharedVgic::take_sgis`]). So no pCPU spins on the lock because
//! another vCPU sends it an SGI, and only a vCPU's own pCPU touches its
//! list registers. SGIs carry no sender in GICv3 with affinity routing, so
//! a mailbox bit that is already set loses nothing.

use crate::{Effects, Vgic, MAX_VCPUS};
use core::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use ferrovisor_sync::{Mutex, MutexGuard};
use ferrovisor_types::VcpuId;

/// A vGIC shared between the pCPUs that run a guest's vCPUs.
#[derive(Debug)]
pub struct SharedVgic {
    model: Mutex<Vgic>,
    /// Per vCPU: bumped under the lock by every change its list registers
    /// may depend on.
    gen: [AtomicU64; MAX_VCPUS],
    /// SGIs sent to each vCPU and not yet in the model (bit n: SGI n).
    mail: [AtomicU16; MAX_VCPUS],
    /// The guest's vCPU count (the model's, readable without the lock).
    vcpus: AtomicUsize,
}

impl SharedVgic {
    /// Shares `vgic`, every vCPU at generation 0.
    pub fn new(vgic: Vgic) -> Self {
        let vcpus = AtomicUsize::new(vgic.config().vcpus);
        Self { model: Mutex::new(vgic), gen: Default::default(), mail: Default::default(), vcpus }
    }

    /// A write of `value` to `ICC_SGI1R_EL1` by vCPU `sender`, without the
    /// lock: the SGI goes into each target's mailbox. Returns the targets
    /// (bit per vCPU), for the caller to kick their pCPUs (the sender among
    /// them takes its mail on its way back into the guest).
    pub fn post_sgi1r(&self, sender: VcpuId, value: u64) -> u32 {
        let vcpus = self.vcpus.load(Ordering::Relaxed);
        if sender.index() >= vcpus {
            return 0;
        }
        let (intid, targets) = crate::inject::sgi1r_targets(value, sender.index(), vcpus);
        let mut left = targets;
        while left != 0 {
            if let Some(mail) = self.mail.get(left.trailing_zeros() as usize) {
                mail.fetch_or(1 << intid, Ordering::Release);
            }
            left &= left - 1;
        }
        targets
    }

    /// Whether SGIs wait in `vcpu`'s mailbox.
    #[inline(always)]
    pub fn has_mail(&self, vcpu: VcpuId) -> bool {
        self.mail.get(vcpu.index()).is_some_and(|m| m.load(Ordering::Relaxed) != 0)
    }

    /// Empties `vcpu`'s mailbox and returns the SGIs it held (bit n: SGI
    /// n), for its own pCPU to put straight into list registers on the
    /// exit fast path; those that do not fit go to [`SharedVgic::receive`].
    #[inline(always)]
    pub fn take_mail(&self, vcpu: VcpuId) -> u16 {
        match self.mail.get(vcpu.index()) {
            Some(m) if m.load(Ordering::Relaxed) != 0 => m.swap(0, Ordering::Acquire),
            _ => 0,
        }
    }

    /// Makes SGIs `sgis` (bit n: SGI n, taken from `vcpu`'s mailbox)
    /// pending for `vcpu` in the model.
    pub fn receive(&self, vcpu: VcpuId, sgis: u16, fx: &mut Effects) {
        if sgis != 0 {
            // An SGI's state is the receiver's alone.
            self.update_for(vcpu, fx, |g, fx| g.receive_sgis(vcpu, sgis, fx));
        }
    }

    /// Moves the SGIs in `vcpu`'s mailbox into the model (called by
    /// `vcpu`'s own pCPU before it refills its list registers or tests for a
    /// deliverable interrupt); false if there were none.
    pub fn take_sgis(&self, vcpu: VcpuId, fx: &mut Effects) -> bool {
        let sgis = self.take_mail(vcpu);
        self.receive(vcpu, sgis, fx);
        sgis != 0
    }

    /// Changes the model: runs `f` under the lock with an effect list, and
    /// bumps every vCPU's generation before the lock is released. The
    /// caller carries out the effects.
    pub fn update<R>(&self, fx: &mut Effects, f: impl FnOnce(&mut Vgic, &mut Effects) -> R) -> R {
        let mut model = self.model.lock();
        let r = f(&mut model, fx);
        self.bump_all();
        r
    }

    /// [`SharedVgic::update`] for a change that only `vcpu`'s list
    /// registers can depend on (the state of its own SGIs and PPIs): only
    /// its generation moves, so the other vCPUs keep their list registers
    /// and their exit fast path.
    pub fn update_for<R>(
        &self,
        vcpu: VcpuId,
        fx: &mut Effects,
        f: impl FnOnce(&mut Vgic, &mut Effects) -> R,
    ) -> R {
        let mut model = self.model.lock();
        let r = f(&mut model, fx);
        match self.gen.get(vcpu.index()) {
            Some(g) => {
                g.fetch_add(1, Ordering::AcqRel);
            }
            None => self.bump_all(),
        }
        r
    }

    fn bump_all(&self) {
        for g in &self.gen {
            g.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Looks at the model under the lock, for calls that change no
    /// interrupt state any vCPU's list registers depend on: register reads
    /// (which only count malformed accesses), queries, snapshots.
    pub fn inspect<R>(&self, f: impl FnOnce(&mut Vgic) -> R) -> R {
        f(&mut self.model.lock())
    }

    /// `vcpu`'s generation now.
    #[inline(always)]
    pub fn generation(&self, vcpu: VcpuId) -> u64 {
        self.gen.get(vcpu.index()).map_or(u64::MAX - 1, |g| g.load(Ordering::Acquire))
    }

    /// Marks every vCPU's list registers as possibly stale (the next entry
    /// of each refills).
    pub fn invalidate(&self) {
        self.bump_all();
    }

    /// The lock, for the list-register cache, which checks the generation
    /// under it.
    #[inline(always)]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Vgic> {
        self.model.lock()
    }

    /// Replaces the model (a guest restart), invalidating every vCPU's
    /// list registers.
    pub fn replace(&self, vgic: Vgic) {
        let mut model = self.model.lock();
        self.vcpus.store(vgic.config().vcpus, Ordering::Relaxed);
        for m in &self.mail {
            m.store(0, Ordering::Relaxed);
        }
        *model = vgic;
        self.bump_all();
    }
}
