//! The platform model: ownership, shared clock votes, events.

use super::*;
use alloc::vec;

fn apb(p: &mut Platform) -> u32 {
    p.add_clock("apb-pclk", Rates::Discrete(vec![24_000_000]), 24_000_000)
}

#[test]
fn a_domain_switches_only_for_its_owner_and_says_so() {
    let mut p = Platform::new();
    let rtc = p.add_power("rtc", Some(0));
    assert_eq!(p.agent(1).set_power(rtc, true), Err(Status::Denied));
    assert_eq!(p.take_events(), []);
    p.agent(0).set_power(rtc, true).unwrap();
    // Switching to the state it is in changes nothing.
    p.agent(0).set_power(rtc, true).unwrap();
    assert_eq!(p.take_events(), [Event::Power { domain: rtc, on: true }]);
    assert!(p.power_domain(rtc).unwrap().on);
    assert_eq!(p.agent(0).set_power(9, true), Err(Status::NotFound));
}

#[test]
fn a_shared_clock_runs_while_any_agent_votes_and_each_sees_its_own_vote() {
    let mut p = Platform::new();
    let clk = apb(&mut p);
    p.agent(0).set_clock_enabled(clk, true).unwrap();
    p.agent(3).set_clock_enabled(clk, true).unwrap();
    assert!(p.agent(3).clock_enabled(clk).unwrap());
    assert!(!p.agent(1).clock_enabled(clk).unwrap(), "agent 1 never enabled it");
    p.agent(0).set_clock_enabled(clk, false).unwrap();
    assert!(p.clock(clk).unwrap().running(), "agent 3 still needs it");
    p.agent(3).set_clock_enabled(clk, false).unwrap();
    assert!(!p.clock(clk).unwrap().running());
    assert_eq!(p.clock(clk).unwrap().starts, 1);
    assert_eq!(p.agent(MAX_AGENTS).set_clock_enabled(clk, true), Err(Status::Denied));
}

#[test]
fn a_rate_changes_only_when_no_other_agent_uses_the_clock() {
    let mut p = Platform::new();
    let clk = p.add_clock("div", Rates::Range { min: 1_000, max: 10_000, step: 1_000 }, 1_000);
    assert_eq!(p.agent(0).set_clock_rate(clk, 2_500), Err(Status::OutOfRange));
    assert_eq!(p.agent(0).set_clock_rate(clk, 20_000), Err(Status::OutOfRange));
    p.agent(0).set_clock_enabled(clk, true).unwrap();
    p.agent(0).set_clock_rate(clk, 3_000).unwrap();
    p.agent(1).set_clock_enabled(clk, true).unwrap();
    assert_eq!(p.agent(0).set_clock_rate(clk, 4_000), Err(Status::Denied));
    // Asking for the rate it already has is fine.
    p.agent(0).set_clock_rate(clk, 3_000).unwrap();
    assert_eq!(p.agent(1).clock_rate(clk), Ok(3_000));
}

#[test]
fn resets_belong_to_one_agent_and_are_events() {
    let mut p = Platform::new();
    let line = p.add_reset("virtio0", Some(2));
    assert_eq!(p.agent(0).reset(line, None), Err(Status::Denied));
    p.agent(2).reset(line, Some(true)).unwrap();
    assert!(p.reset_line(line).unwrap().asserted);
    p.agent(2).reset(line, Some(false)).unwrap();
    p.agent(2).reset(line, None).unwrap();
    assert_eq!(
        p.take_events(),
        [
            Event::Reset { line, hold: Some(true) },
            Event::Reset { line, hold: Some(false) },
            Event::Reset { line, hold: None }
        ]
    );
    assert_eq!(p.reset_line(line).unwrap().resets, 2);
}

#[test]
fn a_released_agent_loses_its_votes_and_its_domains_go_off() {
    let mut p = Platform::new();
    let (a, b) = (p.add_power("a", Some(0)), p.add_power("b", Some(1)));
    let clk = apb(&mut p);
    p.agent(0).set_power(a, true).unwrap();
    p.agent(1).set_power(b, true).unwrap();
    p.agent(0).set_clock_enabled(clk, true).unwrap();
    p.take_events();
    p.release(0);
    assert_eq!(p.take_events(), [Event::Power { domain: a, on: false }]);
    assert!(!p.clock(clk).unwrap().running());
    assert!(p.power_domain(b).unwrap().on, "another agent's domain stays");
}

#[test]
fn ownership_moves_with_the_device() {
    let mut p = Platform::new();
    let d = p.add_power("rtc", Some(0));
    let r = p.add_reset("rtc", Some(0));
    p.set_owner(Some(d), Some(r), Some(1));
    assert_eq!(p.agent(0).set_power(d, true), Err(Status::Denied));
    assert_eq!(p.agent(0).reset(r, None), Err(Status::Denied));
    p.agent(1).set_power(d, true).unwrap();
    p.take_events();
    p.set_owner(Some(d), None, Some(1));
    assert!(p.take_events().is_empty(), "no change of hands, no event");
    p.set_owner(Some(d), None, None);
    assert_eq!(p.take_events(), [Event::Power { domain: d, on: false }], "handed over off");
    assert!(!p.power_domain(d).unwrap().on);
    assert_eq!(p.agent(1).set_power(d, false), Err(Status::Denied), "nobody owns it now");
}

#[test]
fn through_the_protocol_an_agent_reaches_only_its_view() {
    use crate::agent::{AgentView, Resource};
    use crate::header::MsgHeader;
    let mut p = Platform::new();
    let mine = p.add_power("rtc", Some(0));
    let theirs = p.add_power("gpio", Some(1));
    let view = AgentView {
        name: "g0".into(),
        power: vec![Resource { name: "rtc".into(), platform_id: mine }],
        ..AgentView::default()
    };
    // POWER_STATE_SET(flags 0, domain 0, ON) is the agent's rtc domain.
    let set_on = |domain: u32| {
        let mut params = vec![];
        for w in [0u32, domain, 0] {
            params.extend_from_slice(&w.to_le_bytes());
        }
        params
    };
    let h = MsgHeader { message: 0x4, kind: 0, protocol: crate::protocol::POWER, token: 1 };
    let r = crate::handle(&view, &mut p.agent(0), h, &set_on(0));
    assert_eq!(r.status(), Status::Success.raw());
    assert!(p.power_domain(mine).unwrap().on);
    // Domain 1 is not in its view: NOT_FOUND, whatever the platform has.
    let r = crate::handle(&view, &mut p.agent(0), h, &set_on(1));
    assert_eq!(r.status(), Status::NotFound.raw());
    assert!(!p.power_domain(theirs).unwrap().on);
}
