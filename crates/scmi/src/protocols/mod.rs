//! The four protocols an agent may use, and the parameter reader and
//! response writer they share. Each protocol function returns `Ok` after
//! writing its return values, or the error status.

mod base;
mod clock;
mod power;
mod reset;

use alloc::vec::Vec;

pub(crate) use base::base;
pub(crate) use clock::clock;
pub(crate) use power::power;
pub(crate) use reset::reset;

use crate::agent::Resource;
use crate::{Status, NAME_LEN};

/// Message ids every protocol has.
pub(crate) const PROTOCOL_VERSION: u8 = 0x0;
pub(crate) const PROTOCOL_ATTRIBUTES: u8 = 0x1;
pub(crate) const PROTOCOL_MESSAGE_ATTRIBUTES: u8 = 0x2;

/// Reads the parameters of a command, word by word; a command shorter than
/// its parameters is a PROTOCOL_ERROR.
pub(crate) struct Params<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Params<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Status> {
        let b = self.bytes.get(self.at..self.at + 4).ok_or(Status::ProtocolError)?;
        self.at += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Status> {
        let low = self.u32()?;
        let high = self.u32()?;
        Ok(u64::from(low) | (u64::from(high) << 32))
    }
}

/// The return values of a command, after the status word.
#[derive(Default)]
pub(crate) struct Out {
    values: Vec<u8>,
}

impl Out {
    pub(crate) fn u32(&mut self, v: u32) {
        self.values.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.u32(v as u32);
        self.u32((v >> 32) as u32);
    }

    /// A NUL-terminated name in a 16-byte field (cut to 15 bytes).
    pub(crate) fn name(&mut self, name: &str) {
        let mut field = [0u8; NAME_LEN];
        for (dst, src) in field.iter_mut().zip(name.bytes().take(NAME_LEN - 1)) {
            *dst = src;
        }
        self.values.extend_from_slice(&field);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.values.extend_from_slice(b);
    }

    pub(crate) fn finish(self, status: Status) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.values.len());
        out.extend_from_slice(&status.raw().to_le_bytes());
        if status == Status::Success {
            out.extend_from_slice(&self.values);
        }
        out
    }
}

/// The resource with agent-local id `id`, or NOT_FOUND.
pub(crate) fn lookup(list: &[Resource], id: u32) -> Result<&Resource, Status> {
    list.get(id as usize).ok_or(Status::NotFound)
}

/// PROTOCOL_MESSAGE_ATTRIBUTES: attributes 0 for a supported message id,
/// NOT_FOUND otherwise.
fn message_attributes(supported: &[u8], p: &mut Params<'_>, out: &mut Out) -> Result<(), Status> {
    let id = p.u32()?;
    if u8::try_from(id).is_ok_and(|id| supported.contains(&id)) {
        out.u32(0);
        Ok(())
    } else {
        Err(Status::NotFound)
    }
}

/// The two messages every protocol answers alike: PROTOCOL_VERSION and
/// PROTOCOL_MESSAGE_ATTRIBUTES. `None` for any other message.
pub(crate) fn common(
    message: u8,
    version: u32,
    supported: &[u8],
    p: &mut Params<'_>,
    out: &mut Out,
) -> Option<Result<(), Status>> {
    match message {
        PROTOCOL_VERSION => {
            out.u32(version);
            Some(Ok(()))
        }
        PROTOCOL_MESSAGE_ATTRIBUTES => Some(message_attributes(supported, p, out)),
        _ => None,
    }
}

/// How many resources of a kind the view has, as a 16-bit count.
pub(crate) fn count(list: &[Resource]) -> u32 {
    list.len().min(0xffff) as u32
}
