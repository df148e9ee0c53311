//! Spin locks for the hypervisor: [`Mutex`] and [`RwLock`].
//!
//! They behave like the `spin` crate's, with one difference that the
//! profiler (`cargo xtask profile`) relies on: taking a free lock is a few
//! inline instructions, and **every instruction spent waiting for a lock
//! another CPU holds runs inside one of three out-of-line functions**,
//! `Mutex::lock_contended`, `RwLock::read_contended` and
//! `RwLock::write_contended`. The profiler adds up the instructions in
//! functions with those names as the hypervisor's *spinning* share, exactly
//! and without instrumenting anything. (Under QEMU `-icount` one CPU runs at
//! a time, so a spinning CPU burns instructions until the holder's turn
//! comes: the share is what the design costs on that test bed, an upper
//! bound for hardware.)
//!
//! Waiting uses [`core::hint::spin_loop`]. The locks are not fair and not
//! re-entrant: taking a lock the same CPU holds never returns, as with
//! `spin`.
#![no_std]

pub mod mutex;
pub mod rwlock;

pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The names of the functions that hold all lock waiting, as a symboliser
/// prints them (the profiler matches a function whose demangled name ends
/// with one of these).
pub const CONTENDED_FNS: [&str; 3] = ["::lock_contended", "::read_contended", "::write_contended"];
