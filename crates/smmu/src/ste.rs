//! Stream table entries: one 64-byte entry per stream (a PCIe function's
//! requester ID), in a linear table the SMMU indexes by stream ID.

use crate::{field, place};

/// 64-bit words in an entry.
pub const WORDS: usize = 8;
/// Bytes in an entry.
pub const BYTES: usize = WORDS * 8;

/// One stream table entry, as the SMMU reads it (little-endian words).
pub type Ste = [u64; WORDS];

/// What an entry does with its stream's transactions (STE.Config, or V = 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// V = 0: every transaction aborts and the SMMU records `C_BAD_STE`
    /// with the stream ID (how ferrovisor leaves streams no guest has, so
    /// that a stray DMA is seen in the log, not just stopped).
    Invalid,
    /// Config = 0b000: every transaction aborts, no event.
    Abort,
    /// Config = 0b100: transactions pass untranslated (never used by
    /// ferrovisor: it would give the device all of memory).
    Bypass,
    /// Config = 0b101: stage-1 translation through the context descriptor
    /// at this physical address.
    Stage1 {
        /// Physical address of the (single) context descriptor.
        cd: u64,
    },
    /// Config = 0b110: stage-2 translation through the tables at `root`,
    /// tagged with `vmid`.
    Stage2 {
        /// Physical address of the root table.
        root: u64,
        /// The VMID (S2VMID).
        vmid: u16,
    },
    /// Anything else (nested, reserved): ferrovisor writes none.
    Other(u64),
}

const VALID: u64 = 1;
/// Config field, bits \[3:1\].
const fn config(c: u64) -> u64 {
    place(c, 3, 1)
}

/// An entry for a stream nobody has ([`Config::Invalid`]).
pub const fn unassigned() -> Ste {
    [0; WORDS]
}

/// An entry that aborts quietly ([`Config::Abort`]).
pub const fn abort() -> Ste {
    let mut ste = [0; WORDS];
    ste[0] = VALID | config(0b000);
    ste
}

/// An entry translating its stream through the one context descriptor at
/// physical address `cd` (64-byte aligned): linear CD table of one entry
/// (S1Fmt 0, S1CDMax 0), CD fetches inner-shareable write-back,
/// non-secure EL1 stream world, incoming shareability kept.
pub const fn stage1(cd: u64) -> Ste {
    let mut ste = [0; WORDS];
    ste[0] = VALID | config(0b101) | (cd & 0x000f_ffff_ffff_ffc0);
    ste[1] = place(0b01, 3, 2) // S1CIR: write-back, read/write-allocate
        | place(0b01, 5, 4) // S1COR: the same
        | place(0b11, 7, 6) // S1CSH: inner shareable
        | place(0b01, 45, 44); // SHCFG: incoming shareability
    ste
}

/// An entry translating its stream at stage 2 through the tables at `root`
/// (4 KiB aligned), tagged with `vmid`, walked as the CPU's `VTCR_EL2`
/// value `vtcr` describes: its T0SZ, SL0, IRGN0, ORGN0, SH0, TG0 and PS
/// fields (bits \[18:0\]) are the STE's S2T0SZ..S2PS fields in the same
/// order and widths (word 2, bits \[50:32\]). AArch64 tables, faults
/// recorded (S2R), access flag faults off (the tables set AF),
/// incoming shareability kept.
pub const fn stage2(root: u64, vmid: u16, vtcr: u64) -> Ste {
    let mut ste = [0; WORDS];
    ste[0] = VALID | config(0b110);
    ste[1] = place(0b01, 45, 44); // SHCFG: incoming shareability
    ste[2] = vmid as u64 // S2VMID [15:0]
        | ((vtcr & 0x7_ffff) << 32) // S2T0SZ..S2PS
        | (1 << 51) // S2AA64
        | (1 << 53) // S2AFFD
        | (1 << 58); // S2R
    ste[3] = root & 0x000f_ffff_ffff_fff0; // S2TTB [51:4]
    ste
}

/// What entry `ste` does.
pub const fn decode(ste: &Ste) -> Config {
    let w0 = ste[0];
    if w0 & VALID == 0 {
        return Config::Invalid;
    }
    match field(w0, 3, 1) {
        0b000 => Config::Abort,
        0b100 => Config::Bypass,
        0b101 => Config::Stage1 { cd: w0 & 0x000f_ffff_ffff_ffc0 },
        0b110 => Config::Stage2 { root: ste[3] & 0x000f_ffff_ffff_fff0, vmid: ste[2] as u16 },
        other => Config::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_to_what_they_were_made_for() {
        assert_eq!(decode(&unassigned()), Config::Invalid);
        assert_eq!(decode(&abort()), Config::Abort);
        assert_eq!(decode(&stage1(0x4123_4540)), Config::Stage1 { cd: 0x4123_4540 });
        // Valid, Config 0b101, the pointer in [51:6], nothing in S1CDMax.
        assert_eq!(stage1(0x4123_4540)[0], 0x4123_4540 | 0b1011);
        assert_eq!(stage1(0x4123_4540)[0] >> 59, 0);
        // Stage 2 with the CPU's VTCR_EL2 of ferrovisor (T0SZ 25, SL0 1,
        // WBWA walks, inner shareable, 4 KiB, 40-bit PS).
        let s2 = stage2(0x4567_8000, 3, 0x8002_3559);
        assert_eq!(decode(&s2), Config::Stage2 { root: 0x4567_8000, vmid: 3 });
        assert_eq!(s2[0], 0b1101);
        assert_eq!(s2[2] & 0xffff, 3);
        assert_eq!((s2[2] >> 32) & 0x3f, 25); // S2T0SZ
        assert_eq!((s2[2] >> 38) & 0b11, 0b01); // S2SL0
        assert_eq!((s2[2] >> 44) & 0b11, 0b11); // S2SH0
        assert_eq!((s2[2] >> 46) & 0b11, 0b00); // S2TG: 4 KiB
        assert_eq!((s2[2] >> 48) & 0b111, 0b010); // S2PS: 40 bits
        assert_eq!(s2[2] >> 51 & 1, 1); // S2AA64
        assert_eq!(s2[2] >> 58 & 1, 1); // S2R
        assert_eq!(s2[3], 0x4567_8000);
        // A bypass entry would be decoded as such (ferrovisor writes none).
        let mut bypass = abort();
        bypass[0] |= 0b100 << 1;
        assert_eq!(decode(&bypass), Config::Bypass);
    }
}
