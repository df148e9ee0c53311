//! Bus/device/function addresses: requester ID, `bb:dd.f` text form and ECAM offsets.

use core::fmt;

/// A PCI function address: bus (8 bits), device (5 bits), function (3 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    bus: u8,
    device: u8,
    function: u8,
}

/// Why a `bb:dd.f` string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BdfParseError {
    /// Not of the form `bb:dd.f` (hex bus and device, one digit function).
    Syntax,
    /// Device above 0x1f or function above 7.
    OutOfRange,
}

impl fmt::Display for BdfParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax => f.write_str("expected bus:device.function in hex, e.g. 00:02.0"),
            Self::OutOfRange => f.write_str("device must be 00..1f and function 0..7"),
        }
    }
}

impl Bdf {
    /// The function at `bus:device.function`, or `None` if device > 31 or function > 7.
    pub const fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device > 0x1f || function > 7 {
            return None;
        }
        Some(Self { bus, device, function })
    }

    /// The function whose 16-bit requester ID (PCIe RID, SMMU stream ID) is `rid`.
    pub const fn from_rid(rid: u16) -> Self {
        Self { bus: (rid >> 8) as u8, device: ((rid >> 3) & 0x1f) as u8, function: (rid & 7) as u8 }
    }

    /// Bus number.
    pub const fn bus(self) -> u8 {
        self.bus
    }

    /// Device number (0..=31).
    pub const fn device(self) -> u8 {
        self.device
    }

    /// Function number (0..=7).
    pub const fn function(self) -> u8 {
        self.function
    }

    /// The requester ID `bus << 8 | device << 3 | function`.
    pub const fn rid(self) -> u16 {
        (self.bus as u16) << 8 | (self.device as u16) << 3 | self.function as u16
    }

    /// Byte offset of register `reg` of this function inside an ECAM window
    /// (`bus << 20 | device << 15 | function << 12 | reg`); `reg` is masked to 4 KiB.
    pub const fn ecam_offset(self, reg: u16) -> u64 {
        (self.bus as u64) << 20
            | (self.device as u64) << 15
            | (self.function as u64) << 12
            | (reg & 0xfff) as u64
    }

    /// Parses `bb:dd.f` (hex bus and device, function digit), as written in the config.
    pub fn parse(text: &str) -> Result<Self, BdfParseError> {
        let (bus, rest) = text.split_once(':').ok_or(BdfParseError::Syntax)?;
        let (device, function) = rest.split_once('.').ok_or(BdfParseError::Syntax)?;
        let hex = |s: &str, max_len: usize| -> Result<u8, BdfParseError> {
            if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(BdfParseError::Syntax);
            }
            u8::from_str_radix(s, 16).map_err(|_| BdfParseError::Syntax)
        };
        let bus = hex(bus, 2)?;
        let device = hex(device, 2)?;
        let function = hex(function, 1)?;
        Self::new(bus, device, function).ok_or(BdfParseError::OutOfRange)
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    #[test]
    fn rid_and_ecam_offset() {
        let b = Bdf::new(1, 2, 3).unwrap();
        assert_eq!(b.rid(), 0x0113);
        assert_eq!(b.ecam_offset(0x10), 0x0011_3010);
        assert_eq!(b.ecam_offset(0x1004), 0x0011_3004);
        assert_eq!(Bdf::new(0, 32, 0), None);
        assert_eq!(Bdf::new(0, 0, 8), None);
    }

    #[test]
    fn display_and_parse() {
        let b = Bdf::new(0, 2, 0).unwrap();
        assert_eq!(b.to_string(), "00:02.0");
        assert_eq!(Bdf::parse("00:02.0"), Ok(b));
        assert_eq!(Bdf::parse("ff:1f.7").unwrap().rid(), 0xffff);
        assert_eq!(Bdf::parse("00:20.0"), Err(BdfParseError::OutOfRange));
        assert_eq!(Bdf::parse("00:02.8"), Err(BdfParseError::OutOfRange));
        for bad in ["", "00:02", "0002.0", "000:02.0", "00:02.", "0g:02.0", "+1:02.0", "00:02.00"] {
            assert_eq!(Bdf::parse(bad), Err(BdfParseError::Syntax), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn rid_round_trips(rid in any::<u16>()) {
            let b = Bdf::from_rid(rid);
            prop_assert_eq!(b.rid(), rid);
            prop_assert_eq!(Bdf::parse(&b.to_string()), Ok(b));
        }
    }
}
