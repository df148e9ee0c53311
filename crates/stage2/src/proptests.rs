//! Property test: random map/unmap sequences agree with a page-by-page reference model.

use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::tests::new;
use super::*;

/// The window of guest pages exercised: 8 MiB (four 2 MiB blocks) at 1 GiB.
const BASE: u64 = 1 << 30;
const PAGES: u64 = 2048;

#[derive(Debug, Clone)]
enum Op {
    Map {
        page: u64,
        pages: u64,
        /// Host page offset from the guest page; multiples of 512 keep
        /// 2 MiB alignment so blocks get used.
        delta: u64,
        device: bool,
    },
    Unmap {
        page: u64,
        pages: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let page = prop_oneof![0..PAGES, (0..PAGES / 512).prop_map(|b| b * 512)];
    let pages = prop_oneof![1..16u64, 1..1200u64, Just(512u64), Just(1024u64)];
    let delta = prop_oneof![Just(0u64), Just(512u64), Just(1536u64), 1..64u64];
    prop_oneof![
        (page.clone(), pages.clone(), delta, any::<bool>())
            .prop_map(|(page, pages, delta, device)| Op::Map { page, pages, delta, device }),
        (page, pages).prop_map(|(page, pages)| Op::Unmap { page, pages }),
    ]
}

type Model = BTreeMap<u64, (u64, MemAttrs)>;

fn gpa_of(page: u64) -> u64 {
    BASE + page * PAGE_SIZE
}

fn apply(s2: &mut Stage2, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match *op {
        Op::Map { page, pages, delta, device } => {
            let attrs = if device { MemAttrs::Device } else { MemAttrs::Ram };
            let gpa = gpa_of(page);
            let hpa = gpa_of(page + delta) + (1 << 32);
            let size = pages * PAGE_SIZE;
            let first = model.range(gpa..gpa + size).next().map(|(&g, _)| g);
            let got = s2.map(GuestPhysAddr(gpa), HostPhysAddr(hpa), size, attrs);
            match first {
                Some(g) => prop_assert_eq!(got, Err(Stage2Error::AlreadyMapped { gpa: GuestPhysAddr(g) })),
                None => {
                    prop_assert_eq!(got, Ok(()));
                    for i in 0..pages {
                        model.insert(gpa + i * PAGE_SIZE, (hpa + i * PAGE_SIZE, attrs));
                    }
                }
            }
        }
        Op::Unmap { page, pages } => {
            let gpa = gpa_of(page);
            let size = pages * PAGE_SIZE;
            let had: Vec<u64> = model.range(gpa..gpa + size).map(|(&g, _)| g).collect();
            let got = s2.unmap(GuestPhysAddr(gpa), size);
            if had.is_empty() {
                // A split may still be reported, but only if something was
                // mapped; with nothing in range there is nothing to split.
                prop_assert_eq!(got, Ok(Invalidate::None));
            } else {
                prop_assert_eq!(got, Ok(Invalidate::Range { gpa: GuestPhysAddr(gpa), size }));
            }
            for g in had {
                model.remove(&g);
            }
        }
    }
    Ok(())
}

fn check(s2: &Stage2, model: &Model, pages: impl Iterator<Item = u64>) -> Result<(), TestCaseError> {
    for page in pages {
        let gpa = gpa_of(page);
        let want = model.get(&gpa).map(|&(h, a)| (HostPhysAddr(h + 0x18), a));
        prop_assert_eq!(s2.translate(GuestPhysAddr(gpa + 0x18)), want, "page {}", page);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn agrees_with_page_model(ops in proptest::collection::vec(op(), 1..24)) {
        let mut s2 = new();
        let mut model = Model::new();
        for (n, op) in ops.iter().enumerate() {
            apply(&mut s2, &mut model, op)?;
            // Spot-check a stride of pages after each step, all at the end.
            check(&s2, &model, (n as u64 % 7..PAGES).step_by(7))?;
        }
        check(&s2, &model, 0..PAGES + 1300)?;
        let mapped: u64 = s2.mappings().iter().map(|m| m.size).sum();
        prop_assert_eq!(mapped, model.len() as u64 * PAGE_SIZE);
        s2.unmap(GuestPhysAddr(0), IPA_LIMIT).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(s2.table_count(), 1);
        prop_assert!(s2.mappings().is_empty());
    }
}

/// Non-overlapping mappings spread over 4 GiB of IPA space: page-aligned
/// guest and host addresses, some 2 MiB or 1 GiB aligned, sizes from one
/// page to past a 1 GiB block.
fn disjoint_mappings() -> impl Strategy<Value = Vec<(GuestPhysAddr, HostPhysAddr, u64)>> {
    let gap = prop_oneof![0..4u64, Just(512u64), 1..2048u64];
    let pages = prop_oneof![1..8u64, 1..2000u64, Just(512u64), Just(262_144u64), 262_100..262_700u64];
    let host = prop_oneof![Just(0u64), Just(512u64), 1..1024u64, Just(262_144u64)];
    proptest::collection::vec((gap, pages, host), 1..6).prop_map(|parts| {
        let mut next = 0u64;
        parts
            .into_iter()
            .map(|(gap, pages, host)| {
                let gpa = (next + gap) * PAGE_SIZE;
                next += gap + pages;
                // Host addresses: congruent to the guest's, or shifted.
                let hpa = (gpa + host * PAGE_SIZE) % (1 << 38);
                (GuestPhysAddr(gpa), HostPhysAddr(hpa - hpa % PAGE_SIZE), pages * PAGE_SIZE)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// `tables_for` predicts exactly the tables `map` allocates.
    #[test]
    fn tables_for_counts_what_map_allocates(maps in disjoint_mappings()) {
        let mut s2 = new();
        for &(gpa, hpa, size) in &maps {
            s2.map(gpa, hpa, size, MemAttrs::Ram).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        prop_assert_eq!(tables_for(&maps), s2.table_count());
    }
}
