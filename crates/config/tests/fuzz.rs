//! Property tests: random bytes and random mutations (bit flips, byte
//! overwrites, truncation) of valid host and config DTBs never make
//! `HostPlatform::parse`, `host_devices` or `load` panic.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ferrovisor_config::{host_devices, HostPlatform};
use proptest::prelude::*;
use support::load;

const QEMU: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3.dtb");
const QEMU_SMMU: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3-smmuv3.dtb");
const SMALL: &[u8] = include_bytes!("fixtures/host-small.dtb");
const DEFAULT: &[u8] = include_bytes!("fixtures/qemu-virt-default.dtb");
const BAD: &[u8] = include_bytes!("fixtures/qemu-virt-bad-guest.dtb");
const DMA: &[u8] = include_bytes!("fixtures/rule-iommu.dtb");
const SUBPAGE: &[u8] = include_bytes!("fixtures/rule-subpage-twice.dtb");
const BUNDLE: &[&str] = &["linux/Image", "linux/initrd.gz", "guests/probe.bin"];

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    /// Sets a big-endian word: hits lengths, offsets and cell values.
    SetWord(usize, u32),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        3 => (any::<usize>(), prop_oneof![Just(0u32), Just(1), Just(2), Just(3), Just(9), Just(u32::MAX), any::<u32>()])
            .prop_map(|(i, v)| Mutation::SetWord(i, v)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(base: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = base.to_vec();
    for m in muts {
        if v.is_empty() {
            break;
        }
        let len = v.len();
        match *m {
            Mutation::FlipBit(i, b) => v[i % len] ^= 1 << b,
            Mutation::SetByte(i, x) => v[i % len] = x,
            Mutation::SetWord(i, w) => {
                let at = (i % len) & !3;
                for (k, byte) in w.to_be_bytes().iter().enumerate() {
                    if let Some(slot) = v.get_mut(at + k) {
                        *slot = *byte;
                    }
                }
            }
            Mutation::Truncate(n) => v.truncate(n % len),
        }
    }
    v
}

fn host_base() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![Just(QEMU), Just(QEMU_SMMU), Just(SMALL)]
}

fn config_base() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![Just(DEFAULT), Just(BAD), Just(DMA), Just(SUBPAGE)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = HostPlatform::parse(&bytes);
        let _ = load(&bytes, &bytes, BUNDLE);
        let _ = load(QEMU, &bytes, BUNDLE);
    }

    #[test]
    fn mutated_host_dtb_never_panics(base in host_base(), muts in proptest::collection::vec(mutation(), 1..6)) {
        let host = mutate(base, &muts);
        let _ = HostPlatform::parse(&host);
        let _ = host_devices(&host);
        let _ = load(&host, DEFAULT, BUNDLE);
    }

    #[test]
    fn mutated_config_dtb_never_panics(host in host_base(), base in config_base(), muts in proptest::collection::vec(mutation(), 1..6)) {
        let config = mutate(base, &muts);
        let out = load(host, &config, BUNDLE);
        for e in out.errors.iter().chain(&out.warnings) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }
}

/// Header words pointing past the blob are the classic crash; try them all.
#[test]
fn every_header_word_set_to_extremes() {
    for base in [QEMU, DEFAULT] {
        for word in 0..10 {
            for value in
                [0u32, 1, 3, 0x7fff_ffff, 0xffff_fff0, u32::MAX, base.len() as u32, base.len() as u32 + 4]
            {
                let v = mutate(base, &[Mutation::SetWord(word * 4, value)]);
                let _ = HostPlatform::parse(&v);
                let _ = load(QEMU, &v, BUNDLE);
            }
        }
    }
}
