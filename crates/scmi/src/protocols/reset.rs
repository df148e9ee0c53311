//! Reset domain management protocol (0x16), version 1.0: attributes and
//! synchronous RESET (an autonomous pulse, or explicit assert and
//! deassert) of the architectural cold reset. No notifications.

use super::{count, lookup, Out, Params, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, PROTOCOL_VERSION};
use crate::agent::{AgentView, Backend};
use crate::Status;

const VERSION: u32 = 0x1_0000;
const DOMAIN_ATTRIBUTES: u8 = 0x3;
const RESET: u8 = 0x4;
const SUPPORTED: &[u8] =
    &[PROTOCOL_VERSION, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, DOMAIN_ATTRIBUTES, RESET];
/// RESET flags: bit 0 autonomous, bit 1 explicit assert, bit 2 async.
const AUTONOMOUS: u32 = 1 << 0;
const ASSERT: u32 = 1 << 1;
const ASYNC: u32 = 1 << 2;

pub(crate) fn reset(
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
        PROTOCOL_ATTRIBUTES => out.u32(count(&view.resets)),
        DOMAIN_ATTRIBUTES => {
            let d = lookup(&view.resets, p.u32()?)?;
            out.u32(0);
            // Latency unknown.
            out.u32(0xffff_ffff);
            out.name(&d.name);
        }
        RESET => {
            let d = lookup(&view.resets, p.u32()?)?;
            let flags = p.u32()?;
            let state = p.u32()?;
            if flags & ASYNC != 0 {
                return Err(Status::NotSupported);
            }
            // Only the architectural cold reset (bit 31 clear, value 0).
            if state != 0 {
                return Err(Status::InvalidParameters);
            }
            let how = if flags & AUTONOMOUS != 0 { None } else { Some(flags & ASSERT != 0) };
            backend.reset(d.platform_id, how)?;
        }
        _ => return Err(Status::NotSupported),
    }
    Ok(())
}
