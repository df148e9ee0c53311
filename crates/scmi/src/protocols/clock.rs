//! Clock management protocol (0x14), version 1.0: attributes, rates
//! (discrete lists paged by index, or one range), synchronous rate set and
//! get, enable and disable. No asynchronous requests.

use super::{count, lookup, Out, Params, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, PROTOCOL_VERSION};
use crate::agent::{AgentView, Backend, Rates};
use crate::Status;

const VERSION: u32 = 0x1_0000;
const ATTRIBUTES: u8 = 0x3;
const DESCRIBE_RATES: u8 = 0x4;
const RATE_SET: u8 = 0x5;
const RATE_GET: u8 = 0x6;
const CONFIG_SET: u8 = 0x7;
const SUPPORTED: &[u8] = &[
    PROTOCOL_VERSION,
    PROTOCOL_ATTRIBUTES,
    PROTOCOL_MESSAGE_ATTRIBUTES,
    ATTRIBUTES,
    DESCRIBE_RATES,
    RATE_SET,
    RATE_GET,
    CONFIG_SET,
];
/// Most rates one DESCRIBE_RATES response returns.
const RATES_PER_RESPONSE: usize = 8;
/// num_rates_flags bit 12: the rates are a range (min, max, step).
const RANGE: u32 = 1 << 12;

pub(crate) fn clock(
    view: &AgentView,
    backend: &mut dyn Backend,
    message: u8,
    p: &mut Params<'_>,
    out: &mut Out,
) -> Result<(), Status> {
    if let Some(done) = super::common(message, VERSION, SUPPORTED, p, out) {
        return done;
    }
    match message {
        // Bits 15:0 clocks, 23:16 pending asynchronous requests (none).
        PROTOCOL_ATTRIBUTES => out.u32(count(&view.clocks)),
        ATTRIBUTES => {
            let c = lookup(&view.clocks, p.u32()?)?;
            out.u32(u32::from(backend.clock_enabled(c.platform_id)?));
            out.name(&c.name);
        }
        DESCRIBE_RATES => {
            let c = lookup(&view.clocks, p.u32()?)?;
            let index = p.u32()? as usize;
            match backend.clock_rates(c.platform_id)? {
                Rates::Discrete(rates) => {
                    let rest = rates.get(index..).ok_or(Status::OutOfRange)?;
                    let n = rest.len().min(RATES_PER_RESPONSE);
                    let remaining = (rest.len() - n).min(0xffff) as u32;
                    out.u32((remaining << 16) | n as u32);
                    for r in rest.iter().take(n) {
                        out.u64(*r);
                    }
                }
                Rates::Range { min, max, step } => {
                    if index != 0 {
                        return Err(Status::OutOfRange);
                    }
                    out.u32(RANGE | 3);
                    out.u64(min);
                    out.u64(max);
                    out.u64(step);
                }
            }
        }
        RATE_SET => {
            let flags = p.u32()?;
            let c = lookup(&view.clocks, p.u32()?)?;
            let rate = p.u64()?;
            if flags & 1 != 0 {
                return Err(Status::NotSupported);
            }
            backend.set_clock_rate(c.platform_id, rate)?;
        }
        RATE_GET => {
            let c = lookup(&view.clocks, p.u32()?)?;
            out.u64(backend.clock_rate(c.platform_id)?);
        }
        CONFIG_SET => {
            let c = lookup(&view.clocks, p.u32()?)?;
            let attributes = p.u32()?;
            backend.set_clock_enabled(c.platform_id, attributes & 1 != 0)?;
        }
        _ => return Err(Status::NotSupported),
    }
    Ok(())
}
