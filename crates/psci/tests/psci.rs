//! PSCI/SMCCC decoding and per-guest policy, call by call, plus fuzzing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferrovisor_psci::{decode, fid, handle, ret, Action, Call, GuestCpus, VcpuPower};
use ferrovisor_types::VcpuId;
use proptest::prelude::*;

/// A guest with RAM at [0x4000_0000, 0x5000_0000) and the given vCPU states.
struct Guest(Vec<VcpuPower>);

impl GuestCpus for Guest {
    fn vcpu_count(&self) -> usize {
        self.0.len()
    }
    fn power(&self, vcpu: VcpuId) -> VcpuPower {
        self.0.get(vcpu.index()).copied().unwrap_or(VcpuPower::Off)
    }
    fn mpidr(&self, vcpu: VcpuId) -> u64 {
        ferrovisor_psci::vmpidr(vcpu)
    }
    fn entry_valid(&self, entry: u64) -> bool {
        (0x4000_0000..0x5000_0000).contains(&entry)
    }
}

/// vCPU `n`.
fn vc(n: usize) -> VcpuId {
    VcpuId::new(n).unwrap()
}

/// The MPIDR of vCPU `n`.
fn vmpidr(n: usize) -> u64 {
    ferrovisor_psci::vmpidr(vc(n))
}

fn guest() -> Guest {
    Guest(vec![VcpuPower::On, VcpuPower::Off, VcpuPower::OnPending, VcpuPower::Off])
}

fn call(regs: [u64; 4]) -> Action {
    handle(&decode(&regs), vc(0), &guest())
}

fn r(code: i64) -> Action {
    Action::Return([code as u64, 0, 0, 0])
}

#[test]
fn versions() {
    assert_eq!(decode(&[0x8400_0000, 0, 0, 0]), Call::Version);
    assert_eq!(call([0x8400_0000, 9, 9, 9]), Action::Return([0x1_0001, 0, 0, 0]));
    assert_eq!(call([0x8000_0000, 0, 0, 0]), Action::Return([0x1_0001, 0, 0, 0]));
    // The top half of x0 is not part of the function ID.
    assert_eq!(call([0xdead_beef_8400_0000, 0, 0, 0]), Action::Return([0x1_0001, 0, 0, 0]));
}

#[test]
fn features() {
    for &f in fid::IMPLEMENTED {
        assert_eq!(call([0x8400_000a, f as u64, 0, 0]), r(ret::SUCCESS), "{f:#x}");
    }
    assert_eq!(call([0x8400_000a, 0x8000_0000, 0, 0]), r(0));
    for f in [0x8400_000e_u64, 0xc400_000e, 0x8400_0005, 0x8000_0001, 0x8000_8000, 0x8400_0000_0000] {
        assert_eq!(call([0x8400_000a, f, 0, 0]), r(ret::NOT_SUPPORTED), "{f:#x}");
    }
    // Upper half of the SMC32 argument is ignored: this asks about PSCI_VERSION.
    assert_eq!(call([0x8400_000a, 0xffff_ffff_8400_0000, 0, 0]), r(0));
}

#[test]
fn smccc_arch_features_is_never_supported() {
    for f in [0x8000_0000_u64, 0x8000_0001, 0x8000_8000, 0x8000_7fff, 0x8000_3fff] {
        assert_eq!(decode(&[0x8000_0001, f, 0, 0]), Call::SmcccArchFeatures { fid: f as u32 });
        assert_eq!(call([0x8000_0001, f, 0, 0]), r(ret::NOT_SUPPORTED));
    }
    // The workaround calls themselves are unknown functions.
    assert_eq!(call([0x8000_8000, 0, 0, 0]), r(ret::NOT_SUPPORTED));
}

#[test]
fn cpu_on() {
    let on64 = |target: u64, entry: u64| call([0xc400_0003, target, entry, 0x1234]);
    assert_eq!(
        on64(vmpidr(1), 0x4008_0000),
        Action::StartVcpu { vcpu: vc(1), entry: 0x4008_0000, context: 0x1234 }
    );
    // Bit 31, U, MT and bits 63:40 are ignored; only Aff3..Aff0 match.
    assert_eq!(
        on64(0xff00_0000_4100_0003, 0x4008_0000),
        Action::StartVcpu { vcpu: vc(3), entry: 0x4008_0000, context: 0x1234 }
    );
    assert_eq!(on64(vmpidr(4), 0x4008_0000), r(ret::INVALID_PARAMETERS));
    assert_eq!(on64(0x100, 0x4008_0000), r(ret::INVALID_PARAMETERS)); // Aff1 = 1
    assert_eq!(on64(1 << 32, 0x4008_0000), r(ret::INVALID_PARAMETERS)); // Aff3 = 1
    assert_eq!(on64(vmpidr(0), 0x4008_0000), r(ret::ALREADY_ON));
    assert_eq!(on64(vmpidr(2), 0x4008_0000), r(ret::ON_PENDING));
    assert_eq!(on64(vmpidr(1), 0x1000), r(ret::INVALID_ADDRESS));
    assert_eq!(on64(vmpidr(1), 0x4008_0002), r(ret::INVALID_ADDRESS));
    assert_eq!(on64(vmpidr(1), 0x1_4008_0000), r(ret::INVALID_ADDRESS));
    // SMC32: arguments truncated, so the entry point becomes valid.
    assert_eq!(
        call([0x8400_0003, 1, 0x1_4008_0000, 0xffff_ffff_0000_0005]),
        Action::StartVcpu { vcpu: vc(1), entry: 0x4008_0000, context: 5 }
    );
}

#[test]
fn cpu_on_of_the_caller_is_already_on() {
    // Even if the hypervisor's bookkeeping lags, the caller is running.
    let g = Guest(vec![VcpuPower::Off, VcpuPower::On]);
    let c = decode(&[0xc400_0003, vmpidr(0), 0x4000_0000, 0]);
    assert_eq!(handle(&c, vc(0), &g), r(ret::ALREADY_ON));
}

#[test]
fn affinity_info() {
    let info = |target: u64, level: u64| call([0xc400_0004, target, level, 0]);
    assert_eq!(info(vmpidr(0), 0), r(0));
    assert_eq!(info(vmpidr(1), 0), r(1));
    assert_eq!(info(vmpidr(2), 0), r(2));
    assert_eq!(info(vmpidr(9), 0), r(ret::INVALID_PARAMETERS));
    assert_eq!(info(vmpidr(1), 1), r(ret::INVALID_PARAMETERS));
    assert_eq!(
        decode(&[0x8400_0004, 0x1_0000_0002, 0x1_0000_0000, 0]),
        Call::AffinityInfo { target: 2, lowest_level: 0 }
    );
}

#[test]
fn power_and_system_calls() {
    assert_eq!(call([0x8400_0002, 0, 0, 0]), Action::StopCaller);
    assert_eq!(call([0xc400_0001, 0x1_0000, 0x4000_0000, 7]), Action::Suspend);
    assert_eq!(
        decode(&[0xc400_0001, 0xffff_ffff_0001_0000, 0x1_4000_0000, 7]),
        Call::CpuSuspend { power_state: 0x1_0000, entry: 0x1_4000_0000, context: 7 }
    );
    assert_eq!(call([0x8400_0006, 0, 0, 0]), r(2));
    assert_eq!(call([0x8400_0008, 0, 0, 0]), Action::SystemOff);
    assert_eq!(call([0x8400_0009, 0, 0, 0]), Action::SystemReset);
}

#[test]
fn system_reset2() {
    assert_eq!(call([0x8400_0012, 0, 0, 0]), Action::SystemReset);
    assert_eq!(call([0xc400_0012, 0, 0xdead, 0]), Action::SystemReset);
    assert_eq!(call([0x8400_0012, 1, 0, 0]), r(ret::INVALID_PARAMETERS));
    assert_eq!(call([0x8400_0012, 0x8000_0000, 0, 0]), r(ret::NOT_SUPPORTED));
    assert_eq!(
        decode(&[0xc400_0012, 0x1_8000_0001, 0x1_0000_0000, 0]),
        Call::SystemReset2 { reset_type: 0x8000_0001, cookie: 0x1_0000_0000 }
    );
}

#[test]
fn unknown_functions() {
    // SMC64 forms of SMC32-only functions, unimplemented PSCI functions, others.
    for f in [0xc400_0000_u64, 0xc400_0002, 0xc400_0008, 0x8400_0005, 0x8400_000e, 0xc200_0000, 0, u64::MAX] {
        assert_eq!(decode(&[f, 0, 0, 0]), Call::Unknown { fid: f as u32 });
        assert_eq!(call([f, 0, 0, 0]), r(ret::NOT_SUPPORTED));
    }
    assert_eq!(ret::NOT_SUPPORTED as u64, u64::MAX);
}

#[test]
fn vmpidr_layout() {
    assert_eq!(vmpidr(0), 0x8000_0000);
    assert_eq!(vmpidr(5), 0x8000_0005);
    assert_eq!(vmpidr(15), 0x8000_000f);
    // Every vCPU a guest can have has its own MPIDR.
    let all: Vec<u64> = VcpuId::all(VcpuId::LIMIT).map(ferrovisor_psci::vmpidr).collect();
    assert!(all.iter().enumerate().all(|(i, m)| !all[..i].contains(m)));
}

proptest! {
    #[test]
    fn decode_and_handle_never_panic(regs in any::<[u64; 4]>(), caller in 0usize..16, states in proptest::collection::vec(0u8..3, 0..8)) {
        let g = Guest(states.iter().map(|s| match s {
            0 => VcpuPower::Off,
            1 => VcpuPower::OnPending,
            _ => VcpuPower::On,
        }).collect());
        let c = decode(&regs);
        let caller = vc(caller);
        let _ = handle(&c, caller, &g);
        // Any PSCI-range ID with random arguments too.
        let c = decode(&[0x8400_0000 | (regs[0] & 0x4000_001f), regs[1], regs[2], regs[3]]);
        if let Action::StartVcpu { vcpu, .. } = handle(&c, caller, &g) {
            prop_assert!(vcpu.index() < g.vcpu_count());
            prop_assert_eq!(g.power(vcpu), VcpuPower::Off);
        }
    }
}

proptest! {
    /// A query is answered with a plain return, whatever its arguments and
    /// the vCPUs' states: safe for the hypervisor's exit fast path.
    #[test]
    fn queries_only_return(regs in any::<[u64; 4]>(), caller in 0usize..4) {
        for fid in [regs[0], 0x8400_0000, 0x8400_0004, 0xc400_0004, 0x8400_0006, 0x8400_000a, 0x8000_0000, 0x8000_0001] {
            let c = decode(&[fid, regs[1], regs[2], regs[3]]);
            if c.is_query() {
                prop_assert!(matches!(handle(&c, vc(caller), &guest()), Action::Return(_)), "{:?}", c);
            }
        }
    }
}

#[test]
fn state_changing_calls_are_not_queries() {
    for regs in [
        [0x8400_0003_u64, 1, 0x4000_0000, 0],
        [0x8400_0002, 0, 0, 0],
        [0x8400_0001, 0, 0x4000_0000, 0],
        [0x8400_0008, 0, 0, 0],
        [0x8400_0009, 0, 0, 0],
        [0x8400_0012, 0, 0, 0],
    ] {
        assert!(!decode(&regs).is_query(), "{:?}", decode(&regs));
    }
    for regs in [[0x8400_0000_u64, 0, 0, 0], [0x8000_0000, 0, 0, 0], [0x8400_000a, 0x8400_0003, 0, 0]] {
        assert!(decode(&regs).is_query(), "{:?}", decode(&regs));
    }
}
