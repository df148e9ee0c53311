//! Command queue entries (16 bytes each).

use crate::{field, place};

/// 64-bit words in a command.
pub const WORDS: usize = 2;

/// The commands ferrovisor issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Forget cached configuration for stream `sid` (after its STE
    /// changed). `CMD_CFGI_STE`, leaf.
    CfgiSte {
        /// Stream ID.
        sid: u32,
    },
    /// Forget every cached STE and CD (`CMD_CFGI_ALL`: `CFGI_STE_RANGE`
    /// with Range 31).
    CfgiAll,
    /// Forget cached context descriptor 0 of stream `sid` (`CMD_CFGI_CD`,
    /// leaf).
    CfgiCd {
        /// Stream ID.
        sid: u32,
    },
    /// Invalidate the non-secure, non-hypervisor TLB entries of `asid`
    /// (`CMD_TLBI_NH_ASID`, VMID 0).
    TlbiAsid {
        /// Address space id.
        asid: u16,
    },
    /// Invalidate every TLB entry of `vmid`, stage 1 and stage 2
    /// (`CMD_TLBI_S12_VMALL`).
    TlbiVmid {
        /// Virtual machine id.
        vmid: u16,
    },
    /// Invalidate all non-secure, non-hypervisor TLB entries
    /// (`CMD_TLBI_NSNH_ALL`).
    TlbiAll,
    /// Completes when every earlier command has (`CMD_SYNC`, no signal:
    /// the driver watches the consumer index pass it).
    Sync,
}

impl Command {
    /// Operation code (bits \[7:0\] of word 0).
    pub const fn opcode(&self) -> u8 {
        match self {
            Command::CfgiSte { .. } => 0x03,
            Command::CfgiAll => 0x04,
            Command::CfgiCd { .. } => 0x05,
            Command::TlbiAsid { .. } => 0x11,
            Command::TlbiVmid { .. } => 0x28,
            Command::TlbiAll => 0x30,
            Command::Sync => 0x46,
        }
    }

    /// The 16 bytes the queue holds.
    pub const fn encode(&self) -> [u64; WORDS] {
        let op = self.opcode() as u64;
        match *self {
            Command::CfgiSte { sid } | Command::CfgiCd { sid } => [op | place(sid as u64, 63, 32), 1],
            // Range 31: all stream IDs.
            Command::CfgiAll => [op, 31],
            Command::TlbiAsid { asid } => [op | place(asid as u64, 63, 48), 0],
            Command::TlbiVmid { vmid } => [op | place(vmid as u64, 47, 32), 0],
            Command::TlbiAll | Command::Sync => [op, 0],
        }
    }

    /// The command in `words`, if it is one ferrovisor issues (for tests
    /// and error reports).
    pub const fn decode(words: [u64; WORDS]) -> Option<Command> {
        let sid = field(words[0], 63, 32) as u32;
        Some(match field(words[0], 7, 0) {
            0x03 => Command::CfgiSte { sid },
            0x04 => Command::CfgiAll,
            0x05 => Command::CfgiCd { sid },
            0x11 => Command::TlbiAsid { asid: field(words[0], 63, 48) as u16 },
            0x28 => Command::TlbiVmid { vmid: field(words[0], 47, 32) as u16 },
            0x30 => Command::TlbiAll,
            0x46 => Command::Sync,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        for c in [
            Command::CfgiSte { sid: 0x18 },
            Command::CfgiAll,
            Command::CfgiCd { sid: 0xffff },
            Command::TlbiAsid { asid: 7 },
            Command::TlbiVmid { vmid: 3 },
            Command::TlbiAll,
            Command::Sync,
        ] {
            assert_eq!(Command::decode(c.encode()), Some(c));
        }
        assert_eq!(Command::CfgiSte { sid: 0x18 }.encode(), [0x18_0000_0003, 1]);
        assert_eq!(Command::Sync.encode(), [0x46, 0]);
        assert_eq!(Command::TlbiVmid { vmid: 3 }.encode(), [0x3_0000_0028, 0]);
        assert_eq!(Command::decode([0x99, 0]), None);
    }
}
