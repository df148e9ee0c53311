//! Tests of the MMIO bus, including a proptest against a naive model.

use super::*;
use alloc::vec;
use proptest::prelude::*;

fn gpa(a: u64) -> GuestPhysAddr {
    GuestPhysAddr(a)
}

#[test]
fn insert_and_find() {
    let mut bus = MmioBus::new();
    bus.insert(gpa(0x1000), 0x1000, 'a').unwrap();
    bus.insert(gpa(0x3000), 0x100, 'b').unwrap();
    assert_eq!(bus.find_mut(gpa(0x1000)).map(|(d, o)| (*d, o)), Some(('a', 0)));
    assert_eq!(bus.find_mut(gpa(0x1fff)).map(|(d, o)| (*d, o)), Some(('a', 0xfff)));
    assert!(bus.find_mut(gpa(0x2000)).is_none());
    assert!(bus.find_mut(gpa(0xfff)).is_none());
    assert_eq!(bus.find_mut(gpa(0x30ff)).map(|(d, o)| (*d, o)), Some(('b', 0xff)));
    assert!(bus.find_mut(gpa(0x3100)).is_none());
    assert_eq!(bus.len(), 2);
    // The shared lookup agrees with the mutable one everywhere.
    for a in (0..0x4000).step_by(0x80).chain([0xfff, 0x1fff, 0x30ff, 0x3100]) {
        let shared = bus.find(gpa(a)).map(|(d, o)| (*d, o));
        assert_eq!(shared, bus.find_mut(gpa(a)).map(|(d, o)| (*d, o)), "{a:#x}");
    }
}

#[test]
fn refuses_zero_size_overflow_and_overlap() {
    let mut bus = MmioBus::new();
    assert_eq!(bus.insert(gpa(0x1000), 0, ()), Err(BusError::ZeroSize { base: gpa(0x1000) }));
    assert!(matches!(bus.insert(gpa(u64::MAX), 2, ()), Err(BusError::Overflow { .. })));
    bus.insert(gpa(0x2000), 0x1000, ()).unwrap();
    for (base, size) in [(0x1000, 0x1001), (0x2fff, 1), (0x2800, 0x10), (0x1000, 0x10000)] {
        assert_eq!(
            bus.insert(gpa(base), size, ()),
            Err(BusError::Overlap {
                base: gpa(base),
                size,
                existing_base: gpa(0x2000),
                existing_size: 0x1000
            })
        );
    }
    // Touching windows are fine.
    bus.insert(gpa(0x1000), 0x1000, ()).unwrap();
    bus.insert(gpa(0x3000), 0x1000, ()).unwrap();
    assert!(!bus.is_empty() && bus.len() == 3);
}

#[test]
fn window_may_end_at_top_of_address_space() {
    let mut bus = MmioBus::new();
    bus.insert(gpa(u64::MAX - 0xfff), 0x1000, 1u8).unwrap();
    assert_eq!(bus.find_mut(gpa(u64::MAX)).map(|(_, o)| o), Some(0xfff));
    let mut whole = MmioBus::new();
    whole.insert(gpa(0), u64::MAX, 2u8).unwrap();
    assert!(whole.find_mut(gpa(u64::MAX - 1)).is_some());
    let text = alloc::format!("{}", BusError::Overflow { base: gpa(1), size: u64::MAX });
    assert!(text.contains("0xffffffffffffffff"));
}

#[test]
fn iter_is_sorted_and_remove_works() {
    let mut bus = MmioBus::new();
    bus.insert(gpa(0x5000), 0x10, 5).unwrap();
    bus.insert(gpa(0x1000), 0x10, 1).unwrap();
    bus.insert(gpa(0x3000), 0x10, 3).unwrap();
    let got: Vec<_> = bus.iter().map(|(b, s, d)| (b.raw(), s, *d)).collect();
    assert_eq!(got, vec![(0x1000, 0x10, 1), (0x3000, 0x10, 3), (0x5000, 0x10, 5)]);
    assert_eq!(bus.remove(gpa(0x3008)), None);
    assert_eq!(bus.remove(gpa(0x3000)), Some(3));
    assert!(bus.find_mut(gpa(0x3000)).is_none());
    bus.insert(gpa(0x3000), 0x2000, 4).unwrap();
}

struct Echo(u64);

impl MmioDevice for Echo {
    fn read(&mut self, offset: u64, _size: u8) -> u64 {
        self.0 + offset
    }
    fn write(&mut self, _offset: u64, _size: u8, value: u64) {
        self.0 = value;
    }
}

#[test]
fn dispatch_through_boxed_devices() {
    let mut bus: MmioBus<Box<dyn MmioDevice>> = MmioBus::new();
    bus.insert(gpa(0x9000_0000), 0x1000, Box::new(Echo(0))).unwrap();
    assert!(bus.write(gpa(0x9000_0000), 4, 100));
    assert_eq!(bus.read(gpa(0x9000_0004), 4), Some(104));
    assert_eq!(bus.read(gpa(0x9000_1000), 4), None);
    assert!(!bus.write(gpa(0x8fff_ffff), 4, 1));
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, u64),
    Remove(u64),
    Find(u64),
}

fn op() -> impl Strategy<Value = Op> {
    // Small address space so that collisions are common; a few huge values
    // exercise overflow.
    let addr = prop_oneof![0u64..64, Just(u64::MAX - 3), any::<u64>()];
    let size = prop_oneof![0u64..16, Just(u64::MAX), any::<u64>()];
    prop_oneof![
        (addr.clone(), size).prop_map(|(a, s)| Op::Insert(a, s)),
        addr.clone().prop_map(Op::Remove),
        addr.prop_map(Op::Find),
    ]
}

proptest! {
    #[test]
    fn matches_a_naive_model(ops in proptest::collection::vec(op(), 0..64)) {
        let mut bus = MmioBus::new();
        // Model: list of (base, last inclusive, id).
        let mut model: Vec<(u64, u64, usize)> = Vec::new();
        for (id, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert(base, size) => {
                    let expect_ok = size != 0
                        && base.checked_add(size - 1).is_some_and(|last| {
                            model.iter().all(|&(b, l, _)| last < b || base > l)
                        });
                    let got = bus.insert(gpa(base), size, id);
                    prop_assert_eq!(got.is_ok(), expect_ok);
                    if expect_ok {
                        model.push((base, base + (size - 1), id));
                    }
                }
                Op::Remove(base) => {
                    let pos = model.iter().position(|&(b, _, _)| b == base);
                    let want = pos.map(|p| model.remove(p).2);
                    prop_assert_eq!(bus.remove(gpa(base)), want);
                }
                Op::Find(addr) => {
                    let want = model
                        .iter()
                        .find(|&&(b, l, _)| b <= addr && addr <= l)
                        .map(|&(b, _, id)| (id, addr - b));
                    // The shared lookup, with its last-window hint left
                    // by earlier lookups across inserts and removes.
                    prop_assert_eq!(bus.find(gpa(addr)).map(|(d, o)| (*d, o)), want);
                    prop_assert_eq!(bus.find_mut(gpa(addr)).map(|(d, o)| (*d, o)), want);
                }
            }
            prop_assert_eq!(bus.len(), model.len());
        }
    }
}
