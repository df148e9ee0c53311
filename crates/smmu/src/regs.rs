//! SMMUv3 registers (non-secure page 0 and page 1): offsets, the control
//! bits ferrovisor sets, and the ID registers decoded.

use crate::field;

/// Identification register 0 (features).
pub const IDR0: usize = 0x00;
/// Identification register 1 (table and queue sizes).
pub const IDR1: usize = 0x04;
/// Identification register 5 (granules, output address size).
pub const IDR5: usize = 0x14;
/// Control register 0 (enables).
pub const CR0: usize = 0x20;
/// Acknowledges CR0 writes (reads back what took effect).
pub const CR0ACK: usize = 0x24;
/// Control register 1 (table and queue memory attributes).
pub const CR1: usize = 0x28;
/// Control register 2.
pub const CR2: usize = 0x2c;
/// Global bypass attribute (what happens while the SMMU is disabled).
pub const GBPA: usize = 0x44;
/// Interrupt enables.
pub const IRQ_CTRL: usize = 0x50;
/// Acknowledges IRQ_CTRL writes.
pub const IRQ_CTRLACK: usize = 0x54;
/// Global errors (active where it differs from GERRORN).
pub const GERROR: usize = 0x60;
/// Global errors acknowledged by software.
pub const GERRORN: usize = 0x64;
/// Stream table base (64-bit).
pub const STRTAB_BASE: usize = 0x80;
/// Stream table format and size.
pub const STRTAB_BASE_CFG: usize = 0x88;
/// Command queue base (64-bit).
pub const CMDQ_BASE: usize = 0x90;
/// Command queue producer index (software writes).
pub const CMDQ_PROD: usize = 0x98;
/// Command queue consumer index (the SMMU advances; bits \[30:24\] error).
pub const CMDQ_CONS: usize = 0x9c;
/// Event queue base (64-bit).
pub const EVENTQ_BASE: usize = 0xa0;
/// Event queue producer index (the SMMU advances), in page 1.
pub const EVENTQ_PROD: usize = 0x1_00a8;
/// Event queue consumer index (software writes), in page 1.
pub const EVENTQ_CONS: usize = 0x1_00ac;
/// Bytes of register space the driver touches: pages 0 and 1.
pub const WINDOW: usize = 0x2_0000;

/// CR0.SMMUEN: translation (and abort) of incoming transactions.
pub const CR0_SMMUEN: u32 = 1 << 0;
/// CR0.EVENTQEN: event queue writes.
pub const CR0_EVENTQEN: u32 = 1 << 2;
/// CR0.CMDQEN: command queue processing.
pub const CR0_CMDQEN: u32 = 1 << 3;

/// IRQ_CTRL.GERROR_IRQEN.
pub const IRQ_GERROR: u32 = 1 << 0;
/// IRQ_CTRL.EVENTQ_IRQEN.
pub const IRQ_EVENTQ: u32 = 1 << 2;

/// GBPA.ABORT: while the SMMU is disabled, transactions abort.
pub const GBPA_ABORT: u32 = 1 << 20;
/// GBPA.Update: set to make a GBPA write take effect; clears when done.
pub const GBPA_UPDATE: u32 = 1 << 31;

/// CR1: tables and queues in inner-shareable, write-back cacheable memory
/// (the hypervisor's heap). SH = 0b11, OC = IC = 0b01 for both.
pub const CR1_WB_INNER_SHAREABLE: u32 =
    (0b11 << 10) | (0b01 << 8) | (0b01 << 6) | (0b11 << 4) | (0b01 << 2) | 0b01;

/// GERROR.CMDQ_ERR: the command queue stopped on an error (CMDQ_CONS.ERR).
pub const GERROR_CMDQ_ERR: u32 = 1 << 0;
/// GERROR.EVTQ_ABT_ERR: an event queue write aborted.
pub const GERROR_EVTQ_ABT: u32 = 1 << 2;
/// GERROR.SFM_ERR: the SMMU entered service failure mode.
pub const GERROR_SFM: u32 = 1 << 8;

/// What the active GERROR bits `active` mean, most serious first.
pub fn gerror_names(active: u32) -> impl Iterator<Item = &'static str> {
    [
        (GERROR_SFM, "service failure mode (SFM_ERR)"),
        (GERROR_CMDQ_ERR, "the command queue stopped on an error (CMDQ_ERR)"),
        (
            GERROR_EVTQ_ABT,
            "an event could not be recorded: the event queue was full or its write aborted (EVTQ_ABT_ERR)",
        ),
    ]
    .into_iter()
    .filter(move |(bit, _)| active & bit != 0)
    .map(|(_, name)| name)
}

/// CMDQ_CONS.ERR: why the command queue stopped.
pub fn cmdq_error(cons: u32) -> &'static str {
    match (cons >> 24) & 0x7f {
        0 => "none",
        1 => "illegal command (CERROR_ILL)",
        2 => "command fetch aborted (CERROR_ABT)",
        3 => "ATC invalidation sync failed (CERROR_ATC_INV_SYNC)",
        _ => "unknown error",
    }
}

/// The translation stage of the guests' DMA contexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaStage {
    /// A stage-1 context descriptor per guest (QEMU 7.2's SMMU).
    Stage1,
    /// Stage-2 tables per guest (`IDR0.S2P`).
    Stage2,
}

/// What the ID registers say, as far as ferrovisor cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// Stage-1 translation (IDR0.S1P).
    pub stage1: bool,
    /// Stage-2 translation (IDR0.S2P).
    pub stage2: bool,
    /// AArch64 translation tables (IDR0.TTF includes AArch64).
    pub aarch64_tables: bool,
    /// Two-level stream tables (IDR0.ST_LEVEL).
    pub two_level_streams: bool,
    /// 16-bit ASIDs (IDR0.ASID16).
    pub asid16: bool,
    /// Stream ID bits (IDR1.SIDSIZE).
    pub sid_bits: u32,
    /// Most command queue entries, log2 (IDR1.CMDQS).
    pub cmdq_log2: u32,
    /// Most event queue entries, log2 (IDR1.EVENTQS).
    pub eventq_log2: u32,
    /// 4 KiB granule (IDR5.GRAN4K).
    pub granule_4k: bool,
    /// Output address size in bits (IDR5.OAS).
    pub oas_bits: u32,
}

impl Features {
    /// Decodes IDR0, IDR1 and IDR5.
    pub fn decode(idr0: u32, idr1: u32, idr5: u32) -> Self {
        let (idr0, idr1, idr5) = (u64::from(idr0), u64::from(idr1), u64::from(idr5));
        Self {
            stage1: field(idr0, 1, 1) == 1,
            stage2: field(idr0, 0, 0) == 1,
            aarch64_tables: field(idr0, 3, 2) & 0b10 != 0,
            two_level_streams: field(idr0, 28, 27) == 1,
            asid16: field(idr0, 12, 12) == 1,
            sid_bits: field(idr1, 5, 0) as u32,
            cmdq_log2: field(idr1, 25, 21) as u32,
            eventq_log2: field(idr1, 20, 16) as u32,
            granule_4k: field(idr5, 4, 4) == 1,
            oas_bits: match field(idr5, 2, 0) {
                0 => 32,
                1 => 36,
                2 => 40,
                3 => 42,
                4 => 44,
                5 => 48,
                _ => 52,
            },
        }
    }

    /// Which stage a guest's DMA context uses: stage 2 where the SMMU has
    /// it (tables in the CPU's stage-2 format, tagged with the guest's
    /// VMID), else stage 1 (a context descriptor per guest, its VMID as
    /// ASID). `None` with neither.
    pub fn dma_stage(&self) -> Option<DmaStage> {
        if self.stage2 {
            Some(DmaStage::Stage2)
        } else if self.stage1 {
            Some(DmaStage::Stage1)
        } else {
            None
        }
    }

    /// Why ferrovisor cannot use this SMMU for its guests' DMA contexts,
    /// if it cannot: it needs stage 1 or stage 2 with AArch64 tables, the
    /// 4 KiB granule and an output size covering the 40-bit host addresses
    /// its tables hold.
    pub fn unusable(&self) -> Option<&'static str> {
        if self.dma_stage().is_none() {
            Some("neither stage-1 nor stage-2 translation (IDR0.S1P, IDR0.S2P)")
        } else if !self.aarch64_tables {
            Some("no AArch64 translation tables (IDR0.TTF)")
        } else if !self.granule_4k {
            Some("no 4 KiB granule (IDR5.GRAN4K)")
        } else if self.oas_bits < 40 {
            Some("output addresses below 40 bits (IDR5.OAS)")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gerror_bits_are_named() {
        let names: std::vec::Vec<&str> =
            super::gerror_names(super::GERROR_EVTQ_ABT | super::GERROR_SFM).collect();
        assert_eq!(names.len(), 2);
        assert!(names[0].contains("SFM_ERR") && names[1].contains("EVTQ_ABT_ERR"));
        assert_eq!(super::gerror_names(1 << 5).count(), 0);
    }

    use super::*;

    #[test]
    fn decodes_qemu_7_2_like_ids() {
        // S1P, TTF = AArch64, ST_LEVEL = 2-level, ASID16; SIDSIZE 16,
        // CMDQS 19, EVENTQS 19; GRAN4K, GRAN64K, OAS 44 bits.
        let idr0 = (1 << 27) | (1 << 12) | (0b10 << 2) | (1 << 1);
        let idr1 = (19 << 21) | (19 << 16) | 16;
        let idr5 = (1 << 6) | (1 << 4) | 4;
        let f = Features::decode(idr0, idr1, idr5);
        assert_eq!(
            f,
            Features {
                stage1: true,
                stage2: false,
                aarch64_tables: true,
                two_level_streams: true,
                asid16: true,
                sid_bits: 16,
                cmdq_log2: 19,
                eventq_log2: 19,
                granule_4k: true,
                oas_bits: 44,
            }
        );
        assert_eq!(f.unusable(), None);
        assert_eq!(f.dma_stage(), Some(DmaStage::Stage1));
        assert_eq!(
            Features::decode(idr0 & !(1 << 1), idr1, idr5).unusable(),
            Some("neither stage-1 nor stage-2 translation (IDR0.S1P, IDR0.S2P)")
        );
        // With stage 2 (S2P), stage 2 is preferred; stage 2 alone works.
        assert_eq!(Features::decode(idr0 | 1, idr1, idr5).dma_stage(), Some(DmaStage::Stage2));
        let s2_only = Features::decode((idr0 & !(1 << 1)) | 1, idr1, idr5);
        assert_eq!((s2_only.dma_stage(), s2_only.unusable()), (Some(DmaStage::Stage2), None));
        assert_eq!(
            Features::decode(idr0, idr1, idr5 & !7).unusable(),
            Some("output addresses below 40 bits (IDR5.OAS)")
        );
    }

    #[test]
    fn names_command_queue_errors() {
        assert_eq!(cmdq_error(1 << 24 | 5), "illegal command (CERROR_ILL)");
        assert_eq!(cmdq_error(7), "none");
    }
}
