//! Power domain management protocol (0x11), version 2.0: attributes, and
//! synchronous POWER_STATE_SET/GET with the generic ON (0) and OFF
//! (context lost, bit 30) states. No statistics, no notifications.

use super::{count, lookup, Out, Params, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, PROTOCOL_VERSION};
use crate::agent::{AgentView, Backend};
use crate::Status;

const VERSION: u32 = 0x2_0000;
const DOMAIN_ATTRIBUTES: u8 = 0x3;
const STATE_SET: u8 = 0x4;
const STATE_GET: u8 = 0x5;
const SUPPORTED: &[u8] = &[
    PROTOCOL_VERSION,
    PROTOCOL_ATTRIBUTES,
    PROTOCOL_MESSAGE_ATTRIBUTES,
    DOMAIN_ATTRIBUTES,
    STATE_SET,
    STATE_GET,
];
/// Generic states.
pub(crate) const STATE_ON: u32 = 0;
pub(crate) const STATE_OFF: u32 = 1 << 30;
/// POWER_DOMAIN_ATTRIBUTES bit 29: synchronous state changes supported.
const SYNC: u32 = 1 << 29;
/// POWER_STATE_SET flags bit 0: asynchronous.
const ASYNC: u32 = 1 << 0;

pub(crate) fn power(
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
        PROTOCOL_ATTRIBUTES => {
            out.u32(count(&view.power));
            // No statistics area: address low, high, length.
            out.u32(0);
            out.u32(0);
            out.u32(0);
        }
        DOMAIN_ATTRIBUTES => {
            let d = lookup(&view.power, p.u32()?)?;
            out.u32(SYNC);
            out.name(&d.name);
        }
        STATE_SET => {
            let flags = p.u32()?;
            let d = lookup(&view.power, p.u32()?)?;
            let state = p.u32()?;
            if flags & ASYNC != 0 {
                return Err(Status::NotSupported);
            }
            let on = match state {
                STATE_ON => true,
                STATE_OFF => false,
                _ => return Err(Status::InvalidParameters),
            };
            backend.set_power(d.platform_id, on)?;
        }
        STATE_GET => {
            let d = lookup(&view.power, p.u32()?)?;
            out.u32(if backend.power(d.platform_id)? { STATE_ON } else { STATE_OFF });
        }
        _ => return Err(Status::NotSupported),
    }
    Ok(())
}
