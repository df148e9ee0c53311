//! One guest's vGIC as its pCPUs share it: the model behind a lock, and a
//! generation counter that tells a vCPU whether its list registers are
//! still what the model would put there.
//!
//! Every change of interrupt state goes through [`SharedVgic::update`],
//! which bumps the generation while it holds the lock. A vCPU whose list
//! registers were filled at generation `g` and whose guest completed none of
//! them may skip the refill on entry as long as the generation is still `g`
//! ([`crate::cache::LrCache`]).

use crate::{Effects, Vgic};
use core::sync::atomic::{AtomicU64, Ordering};
use spin::{Mutex, MutexGuard};

/// A vGIC shared between the pCPUs that run a guest's vCPUs.
#[derive(Debug)]
pub struct SharedVgic {
    model: Mutex<Vgic>,
    gen: AtomicU64,
}

impl SharedVgic {
    /// Shares `vgic`, at generation 0.
    pub fn new(vgic: Vgic) -> Self {
        Self { model: Mutex::new(vgic), gen: AtomicU64::new(0) }
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
        *model = vgic;
        self.gen.fetch_add(1, Ordering::AcqRel);
    }
}
