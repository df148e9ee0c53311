//! Data abort syndromes, faulting IPAs and the register values of emulated MMIO.

use ferrovisor_types::GuestPhysAddr;

/// The ISS of a data abort taken from a lower exception level (EC 0x24).
///
/// When `isv` is false the hardware gives no description of the access, and
/// `size`, `sign_extend`, `reg`, `sixty_four` and `acquire_release` are
/// reported as 1, false, 0, false and false: they mean nothing, and the
/// hypervisor cannot emulate the access without decoding the instruction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DataAbort {
    /// Instruction syndrome valid (ISV, `ISS[24]`).
    pub isv: bool,
    /// Access size in bytes, 1, 2, 4 or 8 (from SAS, `ISS[23:22]`).
    pub size: u8,
    /// A load that sign-extends the value (SSE, `ISS[21]`).
    pub sign_extend: bool,
    /// Transfer register number (SRT, `ISS[20:16]`); 31 means XZR/WZR.
    pub reg: u8,
    /// The register is 64 bits wide, Xn rather than Wn (SF, `ISS[15]`).
    pub sixty_four: bool,
    /// Load-acquire or store-release semantics (AR, `ISS[14]`).
    pub acquire_release: bool,
    /// The access was a write (WnR, `ISS[6]`). Cache maintenance and address
    /// translation instructions report a write.
    pub write: bool,
    /// Stage-2 fault on an access made by a stage-1 table walk (S1PTW, `ISS[7]`).
    pub s1ptw: bool,
    /// Caused by a cache maintenance or address translation instruction
    /// (CM, `ISS[8]`).
    pub cache_maintenance: bool,
    /// Data fault status code (DFSC, `ISS[5:0]`).
    pub dfsc: u8,
    /// FAR_EL2 holds a valid address (FnV, `ISS[10]`, is clear).
    pub far_valid: bool,
}

impl DataAbort {
    /// Decodes the 25-bit ISS of a data abort.
    pub const fn from_iss(iss: u32) -> Self {
        let isv = bit(iss, 24);
        DataAbort {
            isv,
            size: if isv { 1 << ((iss >> 22) & 3) } else { 1 },
            sign_extend: isv && bit(iss, 21),
            reg: if isv { ((iss >> 16) & 0x1f) as u8 } else { 0 },
            sixty_four: isv && bit(iss, 15),
            acquire_release: isv && bit(iss, 14),
            write: bit(iss, 6),
            s1ptw: bit(iss, 7),
            cache_maintenance: bit(iss, 8),
            dfsc: (iss & 0x3f) as u8,
            far_valid: !bit(iss, 10),
        }
    }

    /// Translation fault at any level: DFSC 0b0001xx (levels 0 to 3) or
    /// 0b101011 (level -1, with 52-bit addressing).
    pub const fn is_translation_fault(&self) -> bool {
        self.dfsc & 0x3c == 0x04 || self.dfsc == 0x2b
    }

    /// Permission fault at any level: DFSC 0b0011xx.
    pub const fn is_permission_fault(&self) -> bool {
        self.dfsc & 0x3c == 0x0c
    }

    /// Access flag fault at any level: DFSC 0b0010xx.
    pub const fn is_access_flag_fault(&self) -> bool {
        self.dfsc & 0x3c == 0x08
    }
}

/// The faulting intermediate physical address of a stage-2 abort.
///
/// HPFAR_EL2.FIPA (bits `[43:4]`) holds `IPA[51:12]`; the page offset comes from
/// `FAR_EL2[11:0]`. HPFAR_EL2 is only valid for stage-2 faults (translation,
/// access flag and permission faults, and faults on stage-1 table walks).
pub const fn fault_ipa(hpfar_el2: u64, far_el2: u64) -> GuestPhysAddr {
    let fipa = (hpfar_el2 >> 4) & ((1 << 40) - 1);
    GuestPhysAddr((fipa << 12) | (far_el2 & 0xfff))
}

/// Whether bit `n` of `iss` is set.
const fn bit(iss: u32, n: u32) -> bool {
    iss & (1 << n) != 0
}

/// Mask of the low `size` bytes (all 64 bits from 8 bytes on; 0 for size 0).
const fn size_mask(size: u8) -> u64 {
    let bits = if size >= 8 { 64 } else { size as u32 * 8 };
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The value to write to the transfer register after emulating a load.
///
/// `raw` is what the device returned. The value is truncated to `da.size`
/// bytes; if `da.sign_extend` it is then sign-extended to 64 bits; if the
/// register is a W register (`!da.sixty_four`) the top 32 bits are cleared,
/// as the architecture does for every write to a W register.
///
/// The caller must discard the value when `da.reg == 31` (WZR/XZR).
pub const fn read_result(raw: u64, da: &DataAbort) -> u64 {
    let mask = size_mask(da.size);
    let mut v = raw & mask;
    if da.sign_extend && mask != u64::MAX && mask != 0 {
        let sign = (mask >> 1) + 1;
        if v & sign != 0 {
            v |= !mask;
        }
    }
    if !da.sixty_four {
        v &= 0xffff_ffff;
    }
    v
}

/// The value an emulated store writes: the transfer register truncated to
/// `da.size` bytes. The caller passes 0 when `da.reg == 31` (WZR/XZR).
pub const fn write_value(reg_value: u64, da: &DataAbort) -> u64 {
    reg_value & size_mask(da.size)
}
