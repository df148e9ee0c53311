//! Property test: random reserve/allocate/release sequences against a brute-force model.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

const BASE: u64 = 0x4000_0000;
/// Window of pages exercised; RAM is two banks of pages inside it.
const WINDOW: u64 = 180;
const BANKS: [(u64, u64); 2] = [(16, 64), (100, 64)];

fn addr(page: u64) -> u64 {
    BASE + page * PAGE_SIZE
}

#[derive(Debug, Clone)]
enum Op {
    Reserve { page: u64, pages: u64 },
    Allocate { pages: u64, align_log2: u32 },
    ReleaseNth(usize),
    ReleaseAny { page: u64, pages: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..WINDOW, 1..24u64).prop_map(|(page, pages)| Op::Reserve { page, pages }),
        (1..24u64, 12..17u32).prop_map(|(pages, align_log2)| Op::Allocate { pages, align_log2 }),
        any::<usize>().prop_map(Op::ReleaseNth),
        (0..WINDOW, 1..8u64).prop_map(|(page, pages)| Op::ReleaseAny { page, pages }),
    ]
}

fn in_ram(a: u64) -> bool {
    BANKS.iter().any(|&(p, n)| a >= addr(p) && a < addr(p + n))
}

/// The model: reservations as (region, owner), in insertion order.
struct Model(Vec<(HostRegion, String)>);

impl Model {
    fn holder(&self, region: &HostRegion) -> Option<&(HostRegion, String)> {
        self.0.iter().filter(|(r, _)| r.overlaps(region)).min_by_key(|(r, _)| r.base)
    }

    fn page_free(&self, a: u64) -> bool {
        in_ram(a) && !self.0.iter().any(|(r, _)| r.contains(a))
    }

    /// The highest aligned base whose whole range is free, by brute force.
    fn best_fit(&self, size: u64, align: u64) -> Option<u64> {
        (0..WINDOW)
            .rev()
            .map(addr)
            .find(|&b| b % align == 0 && (0..size / PAGE_SIZE).all(|i| self.page_free(b + i * PAGE_SIZE)))
    }
}

fn apply(a: &mut RamAllocator, m: &mut Model, op: &Op, n: usize) -> Result<(), TestCaseError> {
    let owner = format!("owner{n}");
    match *op {
        Op::Reserve { page, pages } => {
            let region = HostRegion::new(addr(page), pages * PAGE_SIZE);
            let inside = BANKS.iter().any(|&(p, k)| page >= p && page + pages <= p + k);
            let want = if !inside {
                Err(RamError::OutsideRam { region })
            } else if let Some((held, o)) = m.holder(&region) {
                Err(RamError::InUse { requested: region, region: *held, owner: o.clone() })
            } else {
                m.0.push((region, owner.clone()));
                Ok(())
            };
            prop_assert_eq!(a.reserve(region, &owner), want);
        }
        Op::Allocate { pages, align_log2 } => {
            let (size, align) = (pages * PAGE_SIZE, 1u64 << align_log2);
            let got = a.allocate(size, align, &owner);
            match m.best_fit(size, align) {
                Some(base) => {
                    let region = HostRegion::new(base, size);
                    prop_assert_eq!(got, Ok(region));
                    m.0.push((region, owner));
                }
                None => prop_assert!(matches!(got, Err(RamError::NoSpace { .. })), "{:?}", got),
            }
        }
        Op::ReleaseNth(i) => {
            if !m.0.is_empty() {
                let (region, _) = m.0.remove(i % m.0.len());
                prop_assert_eq!(a.release(region), Ok(()));
            }
        }
        Op::ReleaseAny { page, pages } => {
            let region = HostRegion::new(addr(page), pages * PAGE_SIZE);
            match m.0.iter().position(|(r, _)| *r == region) {
                Some(i) => {
                    m.0.remove(i);
                    prop_assert_eq!(a.release(region), Ok(()));
                }
                None => prop_assert_eq!(a.release(region), Err(RamError::NotReserved { region })),
            }
        }
    }
    Ok(())
}

fn check(a: &RamAllocator, m: &Model) -> Result<(), TestCaseError> {
    let mut want = m.0.clone();
    want.sort_by_key(|(r, _)| r.base);
    prop_assert_eq!(a.reservations(), &want[..]);
    let res = a.reservations();
    for pair in res.windows(2) {
        prop_assert!(pair[0].0.end() <= pair[1].0.base.0, "reservations overlap");
    }
    let free = a.free_regions();
    for pair in free.windows(2) {
        prop_assert!(pair[0].end() < pair[1].base.0, "free list not sorted/merged");
    }
    for page in 0..WINDOW {
        let p = addr(page);
        let is_free = free.iter().any(|f| f.contains(p));
        let is_held = res.iter().any(|(r, _)| r.contains(p));
        prop_assert_eq!(is_free, m.page_free(p), "page {}", page);
        prop_assert_eq!(is_held, in_ram(p) && !m.page_free(p), "page {}", page);
    }
    let held: u64 = res.iter().map(|(r, _)| r.size).sum();
    prop_assert_eq!(a.free_bytes() + held, 128 * PAGE_SIZE);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_overlaps_and_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut a = RamAllocator::new(&[
            HostRegion::new(addr(BANKS[1].0), BANKS[1].1 * PAGE_SIZE),
            HostRegion::new(addr(BANKS[0].0), BANKS[0].1 * PAGE_SIZE),
        ]);
        let mut m = Model(Vec::new());
        for (n, op) in ops.iter().enumerate() {
            apply(&mut a, &mut m, op, n)?;
            check(&a, &m)?;
        }
        for (r, _) in m.0.drain(..) {
            prop_assert_eq!(a.release(r), Ok(()));
        }
        prop_assert_eq!(a.free_regions(), a.ram());
    }
}
