//! The agent against a fake platform backend: discovery, each protocol's
//! messages, the view's isolation, and malformed commands; fuzzed.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferrovisor_scmi::{handle, protocol, smt, AgentView, Backend, MsgHeader, Rates, Resource, Status};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A platform with power domains, clocks and resets 0..16, recording every
/// call (platform ids only).
#[derive(Default)]
struct Fake {
    power: BTreeMap<u32, bool>,
    clock_on: BTreeMap<u32, bool>,
    rate: BTreeMap<u32, u64>,
    calls: Vec<(&'static str, u32)>,
}

impl Fake {
    fn known(&mut self, what: &'static str, id: u32) -> Result<(), Status> {
        self.calls.push((what, id));
        if id < 16 {
            Ok(())
        } else {
            Err(Status::NotFound)
        }
    }
}

impl Backend for Fake {
    fn set_power(&mut self, domain: u32, on: bool) -> Result<(), Status> {
        self.known("set_power", domain)?;
        self.power.insert(domain, on);
        Ok(())
    }
    fn power(&self, domain: u32) -> Result<bool, Status> {
        Ok(*self.power.get(&domain).unwrap_or(&false))
    }
    fn set_clock_enabled(&mut self, clock: u32, on: bool) -> Result<(), Status> {
        self.known("set_clock_enabled", clock)?;
        self.clock_on.insert(clock, on);
        Ok(())
    }
    fn clock_enabled(&self, clock: u32) -> Result<bool, Status> {
        Ok(*self.clock_on.get(&clock).unwrap_or(&false))
    }
    fn clock_rate(&self, clock: u32) -> Result<u64, Status> {
        Ok(*self.rate.get(&clock).unwrap_or(&24_000_000))
    }
    fn set_clock_rate(&mut self, clock: u32, rate: u64) -> Result<(), Status> {
        self.known("set_clock_rate", clock)?;
        if rate == 0 {
            return Err(Status::OutOfRange);
        }
        self.rate.insert(clock, rate);
        Ok(())
    }
    fn clock_rates(&self, clock: u32) -> Result<Rates, Status> {
        if clock == 7 {
            Ok(Rates::Range { min: 1_000, max: 100_000_000, step: 1_000 })
        } else {
            Ok(Rates::Discrete((1..=11).map(|m| m * 1_000_000).collect()))
        }
    }
    fn reset(&mut self, domain: u32, _assert: Option<bool>) -> Result<(), Status> {
        self.known("reset", domain)
    }
}

fn view() -> AgentView {
    let r = |name: &str, platform_id| Resource { name: name.into(), platform_id };
    AgentView {
        name: "linux0".into(),
        power: vec![r("rtc", 5)],
        clocks: vec![r("apb_pclk", 3), r("ref", 7)],
        resets: vec![r("rtc", 9)],
    }
}

fn cmd(proto: u8, message: u8, params: &[u32]) -> (MsgHeader, Vec<u8>) {
    let bytes = params.iter().flat_map(|w| w.to_le_bytes()).collect();
    (MsgHeader { message, kind: 0, protocol: proto, token: 42 }, bytes)
}

fn words(payload: &[u8]) -> Vec<u32> {
    payload.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn call(fake: &mut Fake, proto: u8, message: u8, params: &[u32]) -> Vec<u32> {
    let (h, p) = cmd(proto, message, params);
    let r = handle(&view(), fake, h, &p);
    assert_eq!(r.header.token, 42);
    words(&r.payload)
}

#[test]
fn base_discovery() {
    let mut f = Fake::default();
    assert_eq!(call(&mut f, protocol::BASE, 0, &[]), [0, 0x2_0000]);
    assert_eq!(call(&mut f, protocol::BASE, 1, &[]), [0, (1 << 8) | 3]);
    assert_eq!(call(&mut f, protocol::BASE, 6, &[0]), [0, 3, 0x0016_1411]);
    assert_eq!(call(&mut f, protocol::BASE, 6, &[2]), [0, 1, 0x16]);
    // None left: the count and no padding word (Linux checks the length).
    assert_eq!(call(&mut f, protocol::BASE, 6, &[3]), [0, 0]);
    assert_eq!(call(&mut f, protocol::BASE, 6, &[4])[0], Status::InvalidParameters.raw());
    let agent = call(&mut f, protocol::BASE, 7, &[0xffff_ffff]);
    assert_eq!(&agent[..2], [0, 1]);
    assert_eq!(call(&mut f, protocol::BASE, 7, &[2]), [Status::NotFound.raw()]);
    assert_eq!(call(&mut f, protocol::BASE, 2, &[7]), [0, 0]);
    assert_eq!(call(&mut f, protocol::BASE, 2, &[8]), [Status::NotFound.raw()]);
}

#[test]
fn power_domains_switch_through_the_view() {
    let mut f = Fake::default();
    assert_eq!(call(&mut f, protocol::POWER, 1, &[]), [0, 1, 0, 0, 0]);
    assert_eq!(call(&mut f, protocol::POWER, 4, &[0, 0, 0]), [0]);
    assert_eq!(f.power.get(&5), Some(&true));
    assert_eq!(call(&mut f, protocol::POWER, 5, &[0]), [0, 0]);
    assert_eq!(call(&mut f, protocol::POWER, 4, &[0, 0, 1 << 30]), [0]);
    assert_eq!(call(&mut f, protocol::POWER, 5, &[0]), [0, 1 << 30]);
    // Outside the view: NOT_FOUND, and the platform is never asked.
    assert_eq!(call(&mut f, protocol::POWER, 4, &[0, 1, 0]), [Status::NotFound.raw()]);
    assert_eq!(call(&mut f, protocol::POWER, 4, &[1, 0, 0]), [Status::NotSupported.raw()]);
    assert_eq!(call(&mut f, protocol::POWER, 4, &[0, 0, 7]), [Status::InvalidParameters.raw()]);
    assert_eq!(f.calls, [("set_power", 5), ("set_power", 5)]);
}

#[test]
fn clocks_rates_and_enable() {
    let mut f = Fake::default();
    assert_eq!(call(&mut f, protocol::CLOCK, 1, &[]), [0, 2]);
    let attrs = call(&mut f, protocol::CLOCK, 3, &[0]);
    assert_eq!(attrs[..2], [0, 0]);
    assert_eq!(call(&mut f, protocol::CLOCK, 7, &[0, 1]), [0]);
    assert_eq!(call(&mut f, protocol::CLOCK, 3, &[0])[1], 1);
    // Eleven discrete rates: eight, then three.
    let first = call(&mut f, protocol::CLOCK, 4, &[0, 0]);
    assert_eq!(first[1], (3 << 16) | 8);
    assert_eq!(first[2..4], [1_000_000, 0]);
    let second = call(&mut f, protocol::CLOCK, 4, &[0, 8]);
    assert_eq!(second[1], 3);
    assert_eq!(call(&mut f, protocol::CLOCK, 4, &[0, 12]), [Status::OutOfRange.raw()]);
    let range = call(&mut f, protocol::CLOCK, 4, &[1, 0]);
    assert_eq!(range[1], (1 << 12) | 3);
    assert_eq!(call(&mut f, protocol::CLOCK, 5, &[0, 1, 50_000_000, 0]), [0]);
    assert_eq!(call(&mut f, protocol::CLOCK, 6, &[1]), [0, 50_000_000, 0]);
    assert_eq!(call(&mut f, protocol::CLOCK, 5, &[0, 1, 0, 0]), [Status::OutOfRange.raw()]);
    assert_eq!(call(&mut f, protocol::CLOCK, 6, &[2]), [Status::NotFound.raw()]);
}

#[test]
fn resets_pulse_assert_and_refuse_async() {
    let mut f = Fake::default();
    assert_eq!(call(&mut f, protocol::RESET, 1, &[]), [0, 1]);
    assert_eq!(call(&mut f, protocol::RESET, 4, &[0, 1, 0]), [0]);
    assert_eq!(call(&mut f, protocol::RESET, 4, &[0, 4, 0]), [Status::NotSupported.raw()]);
    assert_eq!(call(&mut f, protocol::RESET, 4, &[0, 1, 1 << 31]), [Status::InvalidParameters.raw()]);
    assert_eq!(call(&mut f, protocol::RESET, 4, &[3, 1, 0]), [Status::NotFound.raw()]);
    assert_eq!(f.calls, [("reset", 9)]);
}

#[test]
fn malformed_commands_get_error_statuses() {
    let mut f = Fake::default();
    // Too short for its parameters.
    assert_eq!(call(&mut f, protocol::POWER, 4, &[0]), [Status::ProtocolError.raw()]);
    // Unknown protocol and message; a non-command type.
    assert_eq!(call(&mut f, 0x15, 0, &[]), [Status::NotSupported.raw()]);
    assert_eq!(call(&mut f, protocol::CLOCK, 0x9, &[]), [Status::NotSupported.raw()]);
    let h = MsgHeader { message: 0, kind: 3, protocol: protocol::BASE, token: 1 };
    assert_eq!(words(&handle(&view(), &mut f, h, &[]).payload), [Status::NotSupported.raw()]);
}

#[test]
fn a_command_through_the_shared_memory_channel() {
    let mut shm = vec![0u8; 128];
    let (h, p) = cmd(protocol::POWER, 4, &[0, 0, 0]);
    shm[smt::LENGTH..smt::LENGTH + 4].copy_from_slice(&(4 + p.len() as u32).to_le_bytes());
    shm[smt::HEADER..smt::HEADER + 4].copy_from_slice(&h.encode().to_le_bytes());
    shm[smt::PAYLOAD..smt::PAYLOAD + p.len()].copy_from_slice(&p);
    let req = smt::take_request(&shm).unwrap();
    // The guest rewrites the channel now: the copy is what counts.
    shm[smt::PAYLOAD..smt::PAYLOAD + 4].copy_from_slice(&7u32.to_le_bytes());
    let mut f = Fake::default();
    let r = handle(&view(), &mut f, req.header, &req.payload);
    smt::put_response(&mut shm, r.header, &r.payload);
    assert_eq!(f.power.get(&5), Some(&true));
    assert_eq!(&shm[smt::STATUS..smt::STATUS + 4], &smt::STATUS_FREE.to_le_bytes());
    assert_eq!(&shm[smt::PAYLOAD..smt::PAYLOAD + 4], &[0, 0, 0, 0]);
}

const STATUSES: [Status; 11] = [
    Status::Success,
    Status::NotSupported,
    Status::InvalidParameters,
    Status::Denied,
    Status::NotFound,
    Status::OutOfRange,
    Status::Busy,
    Status::CommsError,
    Status::GenericError,
    Status::HardwareError,
    Status::ProtocolError,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any header and parameters: a response with a valid status and the
    /// token echoed, and the platform only ever sees ids of the view.
    #[test]
    fn any_command_is_answered_and_contained(
        raw in any::<u32>(),
        proto in prop_oneof![Just(0x10u8), Just(0x11u8), Just(0x14u8), Just(0x16u8), any::<u8>()],
        params in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut h = MsgHeader::decode(raw);
        h.protocol = proto;
        let mut f = Fake::default();
        let r = handle(&view(), &mut f, h, &params);
        prop_assert_eq!(r.header, h);
        let status = r.status();
        prop_assert!(STATUSES.iter().any(|s| s.raw() == status), "status {:#x}", status);
        prop_assert!(r.payload.len().is_multiple_of(4), "payload of {} bytes", r.payload.len());
        for (_, id) in &f.calls {
            prop_assert!([5u32, 3, 7, 9].contains(id), "platform id {} outside the view", id);
        }
    }

    /// Any channel contents: a request or an error, never a panic.
    #[test]
    fn any_channel_is_read_safely(shm in proptest::collection::vec(any::<u8>(), 0..96)) {
        let _ = smt::take_request(&shm);
        let mut copy = shm.clone();
        smt::put_response(&mut copy, MsgHeader::decode(0), &[0; 8]);
    }
}
