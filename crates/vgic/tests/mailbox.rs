//! SGIs through the per-vCPU mailboxes of [`SharedVgic`]: posted without
//! the lock, taken by each target, they leave the model exactly as
//! `write_sgi1r` under the lock would; concurrent senders lose none.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ferrovisor_vgic::{Effect, Effects, SharedVgic, Vgic};
use proptest::prelude::*;

const VCPUS: usize = 4;

fn pending(g: &mut Vgic) -> Vec<(usize, u32)> {
    (0..VCPUS)
        .flat_map(|v| (0..16).map(move |i| (v, i)))
        .filter(|&(v, i)| g.irq_info(gi(i), vc(v)).unwrap().pending)
        .collect()
}

/// A write of ICC_SGI1R_EL1: an SGI, a target list or IRM, sometimes
/// affinity bits nobody has.
fn sgi1r() -> impl Strategy<Value = u64> {
    (
        0u64..16,
        0u64..16,
        any::<bool>(),
        prop_oneof![8 => Just(0u64), 1 => Just(1u64 << 16), 1 => Just(1u64 << 44)],
    )
        .prop_map(|(intid, list, irm, aff)| (intid << 24) | list | aff | if irm { 1 << 40 } else { 0 })
}

proptest! {
    #[test]
    fn mailboxes_end_where_the_locked_path_ends(writes in prop::collection::vec((0usize..VCPUS, sgi1r()), 0..40)) {
        let mut locked = vgic(VCPUS, 32);
        linux_init(&mut locked);
        let mut fx = Effects::new();
        let shared = {
            let mut g = vgic(VCPUS, 32);
            linux_init(&mut g);
            SharedVgic::new(g)
        };
        for &(sender, value) in &writes {
            locked.write_sgi1r(vc(sender), value, &mut fx);
            let targets = shared.post_sgi1r(vc(sender), value);
            // Every target has mail now.
            for t in (0..VCPUS).filter(|t| targets & (1 << t) != 0) {
                prop_assert!(shared.has_mail(vc(t)), "vCPU {} is a target of {:#x} without mail", t, value);
            }
        }
        fx.clear();
        for v in 0..VCPUS {
            let had = shared.has_mail(vc(v));
            prop_assert_eq!(shared.take_sgis(vc(v), &mut fx), had);
            prop_assert!(!shared.has_mail(vc(v)));
            // Taking one's own mail never kicks oneself.
            let kicked_self = fx.drain().any(|e| e == Effect::Kick { vcpu: vc(v) });
            prop_assert!(!kicked_self);
        }
        let want = pending(&mut locked);
        let got = shared.inspect(pending);
        prop_assert_eq!(got, want);
    }
}

#[test]
fn concurrent_senders_lose_no_sgi() {
    let shared = {
        let mut g = vgic(VCPUS, 32);
        linux_init(&mut g);
        SharedVgic::new(g)
    };
    // Each sender s sends SGI s and SGI s + 8 to every other vCPU, many
    // times, while every vCPU keeps taking its mail.
    std::thread::scope(|scope| {
        for s in 0..VCPUS {
            let shared = &shared;
            scope.spawn(move || {
                for n in 0..2000u64 {
                    let intid = if n % 2 == 0 { s as u64 } else { s as u64 + 8 };
                    shared.post_sgi1r(vc(s), (1 << 40) | (intid << 24));
                }
            });
            scope.spawn(move || {
                let mut fx = Effects::new();
                for _ in 0..2000 {
                    shared.take_sgis(vc(s), &mut fx);
                    fx.clear();
                }
            });
        }
    });
    let mut fx = Effects::new();
    for v in 0..VCPUS {
        shared.take_sgis(vc(v), &mut fx);
    }
    let got = shared.inspect(pending);
    let want: Vec<(usize, u32)> = (0..VCPUS)
        .flat_map(|v| (0..16u32).map(move |i| (v, i)))
        .filter(|&(v, i)| {
            let s = (i % 8) as usize;
            i % 8 < VCPUS as u32 && s != v
        })
        .collect();
    assert_eq!(got, want);
}
