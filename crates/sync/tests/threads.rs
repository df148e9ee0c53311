//! The locks under real contention (host threads): no lost update, no
//! reader beside a writer.

#![allow(clippy::unwrap_used)]

use ferrovisor_sync::{Mutex, RwLock};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn a_mutex_loses_no_update() {
    let m = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    *m.lock() += 1;
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(*m.lock(), 80_000);
}

#[test]
fn try_lock_fails_while_held_and_works_after() {
    let m = Mutex::new(5);
    let g = m.lock();
    assert!(m.try_lock().is_none());
    assert!(m.is_locked());
    drop(g);
    assert_eq!(*m.try_lock().unwrap(), 5);
    assert!(format!("{m:?}").contains('5'));
}

#[test]
fn readers_share_and_writers_exclude() {
    let l = Arc::new(RwLock::new((0u64, 0u64)));
    let readers_in = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for w in 0..2 {
        let l = l.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..10_000u64 {
                let mut g = l.write();
                // A reader never sees the two halves apart.
                g.0 = i + w;
                g.1 = i + w;
            }
        }));
    }
    for _ in 0..3 {
        let (l, readers_in) = (l.clone(), readers_in.clone());
        threads.push(std::thread::spawn(move || {
            for _ in 0..10_000 {
                let g = l.read();
                readers_in.fetch_add(1, Ordering::Relaxed);
                assert_eq!(g.0, g.1);
            }
        }));
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(readers_in.load(Ordering::Relaxed), 30_000);
    let g1 = l.read();
    let g2 = l.read();
    assert_eq!(g1.0, g2.1);
}
