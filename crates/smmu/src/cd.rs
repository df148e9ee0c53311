//! Context descriptors: the stage-1 translation regime a stream uses (one
//! per guest with DMA-capable devices in ferrovisor).

use crate::place;

/// 64-bit words in a context descriptor.
pub const WORDS: usize = 8;

/// One context descriptor, as the SMMU reads it.
pub type Cd = [u64; WORDS];

/// MAIR attribute index of guest RAM in ferrovisor's stage-1 tables:
/// Normal, inner and outer write-back read/write-allocate.
pub const ATTR_RAM: u64 = 0;
/// MAIR attribute index of device memory: Device-nGnRE.
pub const ATTR_DEVICE: u64 = 1;
/// The MAIR value matching [`ATTR_RAM`] and [`ATTR_DEVICE`].
pub const MAIR: u64 = 0xff | (0x04 << 8);

/// A stage-1 context translating a 39-bit input space (the guest-physical
/// space of ferrovisor's stage 2: T0SZ 25, walks start at level 1) with a
/// 4 KiB granule into 40-bit output addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage1Context {
    /// Physical address of the level-1 root table (4 KiB aligned).
    pub root: u64,
    /// Address space id (tags the SMMU's TLB entries; one per guest).
    pub asid: u16,
}

impl Stage1Context {
    /// The descriptor: TTB0 walks inner-shareable write-back, TTB1 walks
    /// disabled (EPD1), AArch64 tables, access-flag faults disabled (the
    /// tables set AF anyway), faults recorded and aborted (R, A; no stall).
    pub const fn encode(&self) -> Cd {
        let mut cd = [0; WORDS];
        cd[0] = place(25, 5, 0) // T0SZ: 39-bit input
            // TG0 = 0b00: 4 KiB granule
            | place(0b01, 9, 8) // IR0: write-back, read/write-allocate
            | place(0b01, 11, 10) // OR0: the same
            | place(0b11, 13, 12) // SH0: inner shareable
            | (1 << 30) // EPD1: no TTB1 walks
            | (1 << 31) // V
            | place(0b010, 34, 32) // IPS: 40 bits
            | (1 << 35) // AFFD
            | (1 << 41) // AA64
            | (1 << 45) // R: record faults
            | (1 << 46) // A: abort faulting transactions
            | (1 << 47) // ASET: ASID not shared with the CPUs' broadcasts
            | place(self.asid as u64, 63, 48);
        cd[1] = self.root & 0x000f_ffff_ffff_fff0;
        cd[3] = MAIR;
        cd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_fields() {
        let cd = Stage1Context { root: 0x4567_8000, asid: 3 }.encode();
        assert_eq!(cd[0] & 0x3f, 25, "T0SZ");
        assert_eq!((cd[0] >> 6) & 3, 0, "TG0 4 KiB");
        assert_ne!(cd[0] & (1 << 31), 0, "valid");
        assert_ne!(cd[0] & (1 << 41), 0, "AArch64");
        assert_eq!((cd[0] >> 32) & 7, 0b010, "IPS 40 bits");
        assert_eq!(cd[0] >> 48, 3, "ASID");
        assert_eq!(cd[1], 0x4567_8000);
        assert_eq!(cd[3], 0x04ff);
    }
}
