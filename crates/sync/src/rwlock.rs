//! A spin reader-writer lock whose waiting runs in
//! [`RwLock::read_contended`] and [`RwLock::write_contended`].

use core::cell::UnsafeCell;
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

/// The state word: this bit while a writer holds the lock; otherwise the
/// number of readers.
const WRITER: usize = 1 << (usize::BITS - 1);

/// A reader-writer lock that spins: any number of readers, or one writer.
/// A writer waits until the readers are gone; readers wait while a writer
/// holds it (writers are not preferred: the hypervisor's are rare).
pub struct RwLock<T: ?Sized> {
    state: AtomicUsize,
    value: UnsafeCell<T>,
}

// SAFETY: readers share `&T` between CPUs (needs `Sync`), a writer gets
// `&mut T` on any CPU (needs `Send`), as for `std::sync::RwLock`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: moving the lock moves the `T` it owns.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}

/// Shared access to an [`RwLock`]'s value.
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// Exclusive access to an [`RwLock`]'s value.
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub const fn new(value: T) -> Self {
        Self { state: AtomicUsize::new(0), value: UnsafeCell::new(value) }
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, waiting while a writer holds the lock.
    #[inline(always)]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        if !self.try_add_reader() {
            self.read_contended();
        }
        RwLockReadGuard { lock: self }
    }

    #[inline(always)]
    fn try_add_reader(&self) -> bool {
        let s = self.state.load(Ordering::Relaxed);
        s & WRITER == 0
            && s < WRITER - 1
            && self.state.compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// A writer holds the lock: wait here, out of line.
    #[cold]
    #[inline(never)]
    fn read_contended(&self) {
        while !self.try_add_reader() {
            core::hint::spin_loop();
        }
    }

    /// Exclusive access, waiting until no reader or writer holds the lock.
    #[inline(always)]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        if self.state.compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.write_contended();
        }
        RwLockWriteGuard { lock: self }
    }

    /// Someone holds the lock: wait here, out of line.
    #[cold]
    #[inline(never)]
    fn write_contended(&self) {
        loop {
            while self.state.load(Ordering::Relaxed) != 0 {
                core::hint::spin_loop();
            }
            if self.state.compare_exchange_weak(0, WRITER, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return;
            }
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.try_add_reader() {
            let g = RwLockReadGuard { lock: self };
            f.debug_struct("RwLock").field("value", &&*g).finish()
        } else {
            f.write_str("RwLock { <locked> }")
        }
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: while a read guard exists no writer holds the lock, so the
        // value is only shared.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.lock.state.fetch_sub(1, Ordering::Release);
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write guard is the only holder of the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.lock.state.store(0, Ordering::Release);
    }
}
