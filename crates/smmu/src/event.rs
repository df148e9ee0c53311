//! Event queue records (32 bytes each): what a fault or a bad configuration
//! reports.

use crate::field;

/// 64-bit words in a record.
pub const WORDS: usize = 4;

/// One decoded event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Event type (bits \[7:0\]).
    pub code: u8,
    /// Stream ID: the device (PCIe requester ID).
    pub stream: u32,
    /// Input address of the faulting transaction (fault events only).
    pub addr: Option<u64>,
    /// The transaction was a read (fault events only).
    pub read: bool,
}

/// Name of event type `code`, as the specification spells it.
pub const fn name(code: u8) -> &'static str {
    match code {
        0x01 => "F_UUT",
        0x02 => "C_BAD_STREAMID",
        0x03 => "F_STE_FETCH",
        0x04 => "C_BAD_STE",
        0x05 => "F_BAD_ATS_TREQ",
        0x06 => "F_STREAM_DISABLED",
        0x07 => "F_TRANSL_FORBIDDEN",
        0x08 => "C_BAD_SUBSTREAMID",
        0x09 => "F_CD_FETCH",
        0x0a => "C_BAD_CD",
        0x0b => "F_WALK_EABT",
        0x10 => "F_TRANSLATION",
        0x11 => "F_ADDR_SIZE",
        0x12 => "F_ACCESS",
        0x13 => "F_PERMISSION",
        0x20 => "F_TLB_CONFLICT",
        0x21 => "F_CFG_CONFLICT",
        0x24 => "E_PAGE_REQUEST",
        _ => "unknown event",
    }
}

/// Whether records of type `code` carry the transaction's input address
/// and direction (the translation faults, and a walk's external abort).
pub const fn has_address(code: u8) -> bool {
    matches!(code, 0x01 | 0x0b | 0x10..=0x13)
}

impl Event {
    /// Decodes one record.
    pub const fn decode(rec: [u64; WORDS]) -> Self {
        let code = field(rec[0], 7, 0) as u8;
        let with_addr = has_address(code);
        Self {
            code,
            stream: field(rec[0], 63, 32) as u32,
            addr: if with_addr { Some(rec[2]) } else { None },
            read: with_addr && field(rec[1], 35, 35) == 1,
        }
    }

    /// The event type's name.
    pub const fn name(&self) -> &'static str {
        name(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_translation_fault_and_a_bad_ste() {
        let fault = Event::decode([0x0018_0000_0010, 1 << 35, 0x4000_1000, 0]);
        assert_eq!(fault, Event { code: 0x10, stream: 0x18, addr: Some(0x4000_1000), read: true });
        assert_eq!(fault.name(), "F_TRANSLATION");
        let write = Event::decode([0x0018_0000_0013, 0, 0x4000_1000, 0]);
        assert!(!write.read);
        assert_eq!(write.name(), "F_PERMISSION");
        let bad = Event::decode([0x0008_0000_0004, 1 << 35, 0xdead, 0]);
        assert_eq!(bad, Event { code: 4, stream: 8, addr: None, read: false });
        assert_eq!(bad.name(), "C_BAD_STE");
        assert_eq!(name(0x7f), "unknown event");
    }
}
