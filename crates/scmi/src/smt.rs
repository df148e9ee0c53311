//! The shared-memory transport (SMT) of an `arm,scmi-smc` channel: one page
//! per guest that the agent writes a command into before its SMC, and the
//! platform overwrites with the response.
//!
//! Layout (little-endian words): 0x00 reserved; 0x04 channel status (bit 0
//! free, bit 1 error); 0x08 reserved (8 bytes); 0x10 flags (bit 0:
//! completion interrupt wanted); 0x14 length (4 + payload bytes); 0x18
//! message header; 0x1c payload.
//!
//! [`take_request`] copies what it reads into an owned [`Request`] first,
//! so a guest that rewrites the page during the call cannot change the
//! command being handled; [`put_response`] writes the whole response and
//! marks the channel free last.

use alloc::vec::Vec;

use crate::header::MsgHeader;

/// Offset of the channel status word.
pub const STATUS: usize = 0x04;
/// Offset of the flags word.
pub const FLAGS: usize = 0x10;
/// Offset of the length word.
pub const LENGTH: usize = 0x14;
/// Offset of the message header.
pub const HEADER: usize = 0x18;
/// Offset of the payload.
pub const PAYLOAD: usize = 0x1c;
/// Channel status: free (the platform owns nothing).
pub const STATUS_FREE: u32 = 1 << 0;
/// Channel status: error.
pub const STATUS_ERROR: u32 = 1 << 1;

/// A command as the agent wrote it, copied out of the channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Its header.
    pub header: MsgHeader,
    /// Its parameters.
    pub payload: Vec<u8>,
}

/// Why no command could be read from a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtError {
    /// The channel is smaller than the fixed part of the layout.
    TooSmall,
    /// The length word is below 4 (no header) or runs past the channel.
    BadLength(u32),
    /// The channel is marked free: the agent posted no command.
    NotPosted,
}

fn word(shm: &[u8], at: usize) -> Option<u32> {
    let b = shm.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]))
}

fn set_word(shm: &mut [u8], at: usize, value: u32) {
    if let Some(b) = at.checked_add(4).and_then(|end| shm.get_mut(at..end)) {
        b.copy_from_slice(&value.to_le_bytes());
    }
}

/// Reads the command the agent posted in `shm`.
///
/// # Errors
///
/// [`SmtError`] when the channel holds no well-formed command; the caller
/// answers with [`put_error`] (the length is not trusted).
pub fn take_request(shm: &[u8]) -> Result<Request, SmtError> {
    let status = word(shm, STATUS).ok_or(SmtError::TooSmall)?;
    if shm.len() < PAYLOAD {
        return Err(SmtError::TooSmall);
    }
    if status & STATUS_FREE != 0 {
        return Err(SmtError::NotPosted);
    }
    let length = word(shm, LENGTH).ok_or(SmtError::TooSmall)?;
    let payload_len = (length as usize).checked_sub(4).ok_or(SmtError::BadLength(length))?;
    let end = PAYLOAD.checked_add(payload_len).ok_or(SmtError::BadLength(length))?;
    let payload = shm.get(PAYLOAD..end).ok_or(SmtError::BadLength(length))?.to_vec();
    let header = MsgHeader::decode(word(shm, HEADER).ok_or(SmtError::TooSmall)?);
    Ok(Request { header, payload })
}

/// Writes a response (`header`, then `payload`, which starts with the
/// status) into `shm` and marks the channel free. A response that does not
/// fit is replaced by a bare PROTOCOL_ERROR status (SCMI's answer to a
/// channel too small for the message).
pub fn put_response(shm: &mut [u8], header: MsgHeader, payload: &[u8]) {
    let fits = PAYLOAD.checked_add(payload.len()).is_some_and(|end| end <= shm.len());
    let error = crate::Status::ProtocolError.raw().to_le_bytes();
    let body: &[u8] = if fits { payload } else { &error };
    set_word(shm, HEADER, header.encode());
    if let Some(dst) = shm.get_mut(PAYLOAD..PAYLOAD + body.len()) {
        dst.copy_from_slice(body);
    }
    set_word(shm, LENGTH, 4 + body.len() as u32);
    set_word(shm, STATUS, STATUS_FREE);
}

/// Marks the channel free with the error bit (no response could be built).
pub fn put_error(shm: &mut [u8]) {
    set_word(shm, STATUS, STATUS_FREE | STATUS_ERROR);
}

/// Whether the agent asked for a completion interrupt.
pub fn wants_interrupt(shm: &[u8]) -> bool {
    word(shm, FLAGS).is_some_and(|f| f & 1 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(header: u32, payload: &[u8]) -> Vec<u8> {
        let mut shm = alloc::vec![0u8; 128];
        set_word(&mut shm, LENGTH, 4 + payload.len() as u32);
        set_word(&mut shm, HEADER, header);
        shm[PAYLOAD..PAYLOAD + payload.len()].copy_from_slice(payload);
        shm
    }

    #[test]
    fn a_posted_command_is_copied_out() {
        let shm = posted(0x4403, &[1, 0, 0, 0]);
        let r = take_request(&shm).unwrap();
        assert_eq!(r.header, MsgHeader { message: 3, kind: 0, protocol: 0x11, token: 0 });
        assert_eq!(r.payload, [1, 0, 0, 0]);
    }

    #[test]
    fn bad_channels_are_errors() {
        assert_eq!(take_request(&[0; 8]), Err(SmtError::TooSmall));
        let mut shm = posted(0, &[]);
        set_word(&mut shm, STATUS, STATUS_FREE);
        assert_eq!(take_request(&shm), Err(SmtError::NotPosted));
        let mut shm = posted(0, &[]);
        set_word(&mut shm, LENGTH, 3);
        assert_eq!(take_request(&shm), Err(SmtError::BadLength(3)));
        set_word(&mut shm, LENGTH, 0xffff_ffff);
        assert_eq!(take_request(&shm), Err(SmtError::BadLength(0xffff_ffff)));
        set_word(&mut shm, LENGTH, 4 + 128);
        assert_eq!(take_request(&shm), Err(SmtError::BadLength(132)));
    }

    #[test]
    fn responses_free_the_channel_and_overflow_becomes_protocol_error() {
        let mut shm = posted(0x4403, &[]);
        let h = MsgHeader::decode(0x4403);
        put_response(&mut shm, h, &[0, 0, 0, 0, 7, 0, 0, 0]);
        assert_eq!(word(&shm, STATUS), Some(STATUS_FREE));
        assert_eq!(word(&shm, LENGTH), Some(12));
        assert_eq!(word(&shm, PAYLOAD + 4), Some(7));
        let big = alloc::vec![0u8; 200];
        put_response(&mut shm, h, &big);
        assert_eq!(word(&shm, LENGTH), Some(8));
        assert_eq!(word(&shm, PAYLOAD), Some(crate::Status::ProtocolError.raw()));
    }
}
