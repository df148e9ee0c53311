//! One guest's vGIC as its pCPUs share it: the model behind a lock, and a
//! generation counter that tells a vCPU whether its list registers are
//! still what the model would put there.
//!
//! Every change of interrupt state goes through [`SharedVgic::update`],
//! which bumps the generation while it holds the lock. A vCPU whose list
//! registers were filled at generation `g` and whose guest completed none of
//! them may skip the refill on entry as long as the generation is still `g`
//! ([`crate::cache::LrCache`]).
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
use ferrovisor_types::VcpuId;
use spin::{Mutex, MutexGuard};

/// A vGIC shared between the pCPUs that run a guest's vCPUs.
#[derive(Debug)]
pub struct SharedVgic {
    model: Mutex<Vgic>,
    gen: AtomicU64,
    /// SGIs sent to each vCPU and not yet in the model (bit n: SGI n).
    mail: [AtomicU16; MAX_VCPUS],
    /// The guest's vCPU count (the model's, readable without the lock).
    vcpus: AtomicUsize,
}

impl SharedVgic {
    /// Shares `vgic`, at generation 0.
    pub fn new(vgic: Vgic) -> Self {
        let vcpus = AtomicUsize::new(vgic.config().vcpus);
        Self { model: Mutex::new(vgic), gen: AtomicU64::new(0), mail: Default::default(), vcpus }
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
        for (t, mail) in self.mail.iter().enumerate().take(vcpus) {
            if targets & (1 << t) != 0 {
                mail.fetch_or(1 << intid, Ordering::Release);
            }
        }
        targets
    }

    /// Whether SGIs wait in `vcpu`'s mailbox.
    #[inline(always)]
    pub fn has_mail(&self, vcpu: VcpuId) -> bool {
        self.mail.get(vcpu.index()).is_some_and(|m| m.load(Ordering::Relaxed) != 0)
    }

    /// Moves the SGIs in `vcpu`'s mailbox into the model (called by
    /// `vcpu`'s own pCPU before it refills its list registers or tests for a
    /// deliverable interrupt); false if there were none.
    pub fn take_sgis(&self, vcpu: VcpuId, fx: &mut Effects) -> bool {
        let Some(mail) = self.mail.get(vcpu.index()) else { return false };
        if mail.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let sgis = mail.swap(0, Ordering::Acquire);
        if sgis == 0 {
            return false;
        }
        self.update(fx, |g, fx| g.receive_sgis(vcpu, sgis, fx));
        true
    }

    /// Changes the model: runs `f` under the lock with an effect list, and
    /// bumps the generation before the lock is released. The caller carries
    /// out the effects.
    pub fn update<R>(&self, fx: &mut Effects, f: impl FnOnce(&mut Vgic, &mut Effects) -> R) -> R {
        let mut model = self.model.lock();
        let r = f(&mut model, fx);
        self.gen.fetch_add(1, Ordering::AcqRel);
        r
    }

    /// Looks at the model under the lock, for calls that change no
    /// interrupt state any vCPU's list registers depend on: register reads
    /// (which only count malformed accesses), queries, snapshots.
    pub fn inspect<R>(&self, f: impl FnOnce(&mut Vgic) -> R) -> R {
        f(&mut self.model.lock())
    }

    /// The generation now.
    #[inline(always)]
    pub fn generation(&self) -> u64 {
        self.gen.load(Ordering::Acquire)
    }

    /// Marks every vCPU's list registers as possibly stale (the next entry
    /// of each refills).
    pub fn invalidate(&self) {
        self.gen.fetch_add(1, Ordering::AcqRel);
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
        self.gen.fetch_add(1, Ordering::AcqRel);
    }
}
