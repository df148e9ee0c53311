//! The 32-bit SCMI message header: message id (bits 7:0), type (9:8),
//! protocol id (17:10), token (27:18); bits 31:28 are reserved.

/// Message type 0: a command (the only type an agent sends).
pub const TYPE_COMMAND: u8 = 0;

/// A decoded message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHeader {
    /// Message id within the protocol.
    pub message: u8,
    /// Message type (0: command, 2: delayed response, 3: notification).
    pub kind: u8,
    /// Protocol id.
    pub protocol: u8,
    /// Token the agent chose; the response echoes it.
    pub token: u16,
}

impl MsgHeader {
    /// Decodes `raw` (reserved bits ignored).
    pub fn decode(raw: u32) -> Self {
        Self {
            message: (raw & 0xff) as u8,
            kind: ((raw >> 8) & 0x3) as u8,
            protocol: ((raw >> 10) & 0xff) as u8,
            token: ((raw >> 18) & 0x3ff) as u16,
        }
    }

    /// Encodes the header (reserved bits zero).
    pub fn encode(self) -> u32 {
        u32::from(self.message)
            | (u32::from(self.kind & 0x3) << 8)
            | (u32::from(self.protocol) << 10)
            | (u32::from(self.token & 0x3ff) << 18)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reserved_bits() {
        let h = MsgHeader { message: 0x7, kind: 0, protocol: 0x14, token: 0x3ff };
        assert_eq!(MsgHeader::decode(h.encode()), h);
        assert_eq!(h.encode(), 0x7 | (0x14 << 10) | (0x3ff << 18));
        assert_eq!(MsgHeader::decode(0xf000_0000 | h.encode()), h);
    }
}
