//! `scmi=CHANNEL:DEVICE`: the probe as an SCMI agent on ferrovisor's
//! `arm,scmi-smc` channel at guest-physical `CHANNEL`, for a passed-through
//! device at `DEVICE` that sits in the guest's power domain 0. Checks, in
//! order: the Base protocol version; powering domain 0 on makes the device
//! readable; off makes its accesses abort; a domain outside the guest's
//! view is NOT_FOUND; a malformed request (length below the header) gets an
//! error; on again, the device reads; a reset through reset line 0 clears
//! the device's (a PL031's) interrupt mask.

use super::{parse_u64, report};
use crate::exception::try_read32;

const STATUS: u64 = 0x04;
const LENGTH: u64 = 0x14;
const HEADER: u64 = 0x18;
const PAYLOAD: u64 = 0x1c;
const NOT_FOUND: i32 = -4;
const POWER_ON: u32 = 0;
const POWER_OFF: u32 = 1 << 30;

fn write32(addr: u64, v: u32) {
    // SAFETY: `addr` is a word of the SCMI channel page, which ferrovisor
    // emulates for this guest (device memory, no other user).
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

fn read32(addr: u64) -> u32 {
    // SAFETY: as in `write32`.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Posts a command and calls; returns the status word, the response's
/// first return value and the channel status, or None if the call failed.
fn command(
    ch: u64,
    protocol: u32,
    message: u32,
    params: &[u32],
    length: Option<u32>,
) -> Option<(i32, u32, u32)> {
    write32(ch + STATUS, 0);
    write32(ch + LENGTH, length.unwrap_or(4 + 4 * params.len() as u32));
    write32(ch + HEADER, message | (protocol << 10) | (7 << 18));
    for (i, p) in params.iter().enumerate() {
        write32(ch + PAYLOAD + 4 * i as u64, *p);
    }
    let x0 = crate::hyp::call_scmi();
    if x0 != 0 {
        return None;
    }
    Some((read32(ch + PAYLOAD) as i32, read32(ch + PAYLOAD + 4), read32(ch + STATUS)))
}

fn power(ch: u64, domain: u32, state: u32) -> Option<i32> {
    command(ch, 0x11, 0x4, &[0, domain, state], None).map(|r| r.0)
}

/// Runs `scmi=CHANNEL:DEVICE`.
pub fn run(test: &str, arg: &str) -> bool {
    let mut parts = arg.split(':');
    let (Some(ch), Some(dev)) = (parts.next().and_then(parse_u64), parts.next().and_then(parse_u64)) else {
        return report!(test, false, "want scmi=CHANNEL:DEVICE");
    };
    match command(ch, 0x10, 0x0, &[], None) {
        Some((0, 0x2_0000, status)) if status & 1 != 0 => {}
        other => return report!(test, false, "base version: {other:?}"),
    }
    if power(ch, 0, POWER_ON) != Some(0) {
        return report!(test, false, "power domain 0 on refused");
    }
    if let Err(a) = try_read32(dev) {
        return report!(test, false, "device aborted while on (esr={:#x})", a.esr);
    }
    if power(ch, 0, POWER_OFF) != Some(0) {
        return report!(test, false, "power domain 0 off refused");
    }
    if let Ok(v) = try_read32(dev) {
        return report!(test, false, "device read {v:#x} while its domain is off");
    }
    let outside = power(ch, 7, POWER_ON);
    if outside != Some(NOT_FOUND) {
        return report!(test, false, "domain 7 (not this guest's): {outside:?}, want NOT_FOUND");
    }
    // Length 2: shorter than a header.
    let malformed = command(ch, 0x11, 0x4, &[], Some(2));
    let refused = matches!(malformed, Some((_, _, status)) if status & 2 != 0);
    if !refused {
        return report!(test, false, "malformed request answered {malformed:?}");
    }
    if power(ch, 0, POWER_ON) != Some(0) || try_read32(dev).is_err() {
        return report!(test, false, "device not back after power on");
    }
    // Reset line 0 (autonomous reset): the hypervisor puts the device back
    // in its reset state; for a PL031 its interrupt mask (RTCIMSC) is 0.
    write32(dev + 0x10, 1);
    let before = read32(dev + 0x10);
    let reset = command(ch, 0x16, 0x4, &[0, 1, 0], None).map(|r| r.0);
    let after = read32(dev + 0x10);
    if before != 1 || reset != Some(0) || after != 0 {
        return report!(test, false, "reset: mask {before} -> {after}, status {reset:?}");
    }
    report!(
        test,
        true,
        "on: reads; off: aborts; outside domain NOT_FOUND; malformed refused; reset clears the mask"
    )
}
