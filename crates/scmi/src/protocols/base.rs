//! Base protocol (0x10), version 2.0: discovery of the platform, the
//! protocols and this agent. Error notifications are not supported.

use super::{Out, Params, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, PROTOCOL_VERSION};
use crate::agent::AgentView;
use crate::{protocol, Status};

const VERSION: u32 = 0x2_0000;
const DISCOVER_VENDOR: u8 = 0x3;
const DISCOVER_SUB_VENDOR: u8 = 0x4;
const DISCOVER_IMPLEMENTATION_VERSION: u8 = 0x5;
const DISCOVER_LIST_PROTOCOLS: u8 = 0x6;
const DISCOVER_AGENT: u8 = 0x7;
const SUPPORTED: &[u8] = &[
    PROTOCOL_VERSION,
    PROTOCOL_ATTRIBUTES,
    PROTOCOL_MESSAGE_ATTRIBUTES,
    DISCOVER_VENDOR,
    DISCOVER_SUB_VENDOR,
    DISCOVER_IMPLEMENTATION_VERSION,
    DISCOVER_LIST_PROTOCOLS,
    DISCOVER_AGENT,
];
/// The protocols besides Base, ascending.
const PROTOCOLS: [u8; 3] = [protocol::POWER, protocol::CLOCK, protocol::RESET];
/// The platform is agent 0 here; the guest is agent 1 (it learns of no
/// other guest).
const OWN_ID: u32 = 1;

pub(crate) fn base(view: &AgentView, message: u8, p: &mut Params<'_>, out: &mut Out) -> Result<(), Status> {
    if let Some(done) = super::common(message, VERSION, SUPPORTED, p, out) {
        return done;
    }
    match message {
        // Bits 15:8 agents, 7:0 protocols other than Base.
        PROTOCOL_ATTRIBUTES => out.u32((1 << 8) | PROTOCOLS.len() as u32),
        DISCOVER_VENDOR => out.name("ferrovisor"),
        DISCOVER_SUB_VENDOR => out.name("qemu-virt"),
        DISCOVER_IMPLEMENTATION_VERSION => out.u32(1),
        DISCOVER_LIST_PROTOCOLS => {
            // The ids come packed four to a word, exactly ceil(n / 4)
            // words: Linux 6.1 checks the response's length. Skipping all
            // of them leaves none; skipping more is invalid.
            let skip = p.u32()? as usize;
            let rest = PROTOCOLS.get(skip..).ok_or(Status::InvalidParameters)?;
            out.u32(rest.len() as u32);
            for chunk in rest.chunks(4) {
                let mut packed = [0u8; 4];
                for (d, s) in packed.iter_mut().zip(chunk) {
                    *d = *s;
                }
                out.bytes(&packed);
            }
        }
        DISCOVER_AGENT => {
            let id = p.u32()?;
            let (id, name) = match id {
                0 => (0, "platform"),
                OWN_ID | 0xffff_ffff => (OWN_ID, view.name.as_str()),
                _ => return Err(Status::NotFound),
            };
            out.u32(id);
            out.name(name);
        }
        _ => return Err(Status::NotSupported),
    }
    Ok(())
}
