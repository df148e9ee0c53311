//! Trapped MSR/MRS accesses (EC 0x18): operands, matching keys and names.

/// A trapped system register access or system instruction (EC 0x18).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SysRegAccess {
    /// Op0, `ISS[21:20]` (3 for most registers, 2 for debug, 1 for SYS).
    pub op0: u8,
    /// Op1, `ISS[16:14]`.
    pub op1: u8,
    /// CRn, `ISS[13:10]`.
    pub crn: u8,
    /// CRm, `ISS[4:1]`.
    pub crm: u8,
    /// Op2, `ISS[19:17]`.
    pub op2: u8,
    /// General purpose register transferred, `ISS[9:5]`; 31 means XZR.
    pub rt: u8,
    /// `true` for MRS (read into `rt`), `false` for MSR or a system
    /// instruction (Direction, `ISS[0]`).
    pub read: bool,
}

/// Packs a system register encoding into a key for matching:
/// `op0[1:0]:op1[2:0]:CRn[3:0]:CRm[3:0]:op2[2:0]` in bits `[15:0]`. Extra
/// high bits of each operand are dropped.
pub const fn sysreg_key(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> u32 {
    ((op0 as u32 & 3) << 14)
        | ((op1 as u32 & 7) << 11)
        | ((crn as u32 & 0xf) << 7)
        | ((crm as u32 & 0xf) << 3)
        | (op2 as u32 & 7)
}

impl SysRegAccess {
    /// Decodes the 25-bit ISS of an EC 0x18 trap.
    pub const fn from_iss(iss: u32) -> Self {
        SysRegAccess {
            op0: ((iss >> 20) & 3) as u8,
            op2: ((iss >> 17) & 7) as u8,
            op1: ((iss >> 14) & 7) as u8,
            crn: ((iss >> 10) & 0xf) as u8,
            rt: ((iss >> 5) & 0x1f) as u8,
            crm: ((iss >> 1) & 0xf) as u8,
            read: iss & 1 != 0,
        }
    }

    /// The [`sysreg_key`] of the accessed register, to match against the
    /// constants of this module.
    pub const fn key(&self) -> u32 {
        sysreg_key(self.op0, self.op1, self.crn, self.crm, self.op2)
    }

    /// The architectural name of a few well-known registers (GICv3 CPU
    /// interface, generic timer, PMU, debug, ID and VM control registers,
    /// set/way cache maintenance), `None` for the others.
    ///
    /// Numbered registers get a generic name such as `DBGBVR<n>_EL1`.
    pub fn name(&self) -> Option<&'static str> {
        let key = self.key();
        if let Some((_, name)) = TABLE.iter().find(|(k, _)| *k == key) {
            return Some(name);
        }
        numbered_name(self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

/// Names of the registers that come in numbered families.
fn numbered_name(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Option<&'static str> {
    match (op0, op1, crn, crm, op2) {
        (2, 0, 0, _, 4) => Some("DBGBVR<n>_EL1"),
        (2, 0, 0, _, 5) => Some("DBGBCR<n>_EL1"),
        (2, 0, 0, _, 6) => Some("DBGWVR<n>_EL1"),
        (2, 0, 0, _, 7) => Some("DBGWCR<n>_EL1"),
        (3, 0, 12, 8, 4..=7) => Some("ICC_AP0R<n>_EL1"),
        (3, 0, 12, 9, 0..=3) => Some("ICC_AP1R<n>_EL1"),
        (3, 3, 14, 8..=11, _) => Some("PMEVCNTR<n>_EL0"),
        (3, 3, 14, 12..=15, _) => Some("PMEVTYPER<n>_EL0"),
        _ => None,
    }
}

macro_rules! sysregs {
    ($($name:ident = ($op0:literal, $op1:literal, $crn:literal, $crm:literal, $op2:literal);)*) => {
        $(
            #[doc = concat!("Key of `", stringify!($name), "` (op0=", stringify!($op0),
                ", op1=", stringify!($op1), ", CRn=", stringify!($crn), ", CRm=",
                stringify!($crm), ", op2=", stringify!($op2), ").")]
            pub const $name: u32 = sysreg_key($op0, $op1, $crn, $crm, $op2);
        )*
        /// Key and name of every register named by [`SysRegAccess::name`].
        const TABLE: &[(u32, &str)] = &[$(($name, stringify!($name))),*];
    };
}

sysregs! {
    // Identification.
    MIDR_EL1 = (3, 0, 0, 0, 0);
    MPIDR_EL1 = (3, 0, 0, 0, 5);
    ID_AA64PFR0_EL1 = (3, 0, 0, 4, 0);
    ID_AA64PFR1_EL1 = (3, 0, 0, 4, 1);
    ID_AA64DFR0_EL1 = (3, 0, 0, 5, 0);
    ID_AA64ISAR0_EL1 = (3, 0, 0, 6, 0);
    ID_AA64ISAR1_EL1 = (3, 0, 0, 6, 1);
    ID_AA64MMFR0_EL1 = (3, 0, 0, 7, 0);
    ID_AA64MMFR1_EL1 = (3, 0, 0, 7, 1);
    ID_AA64MMFR2_EL1 = (3, 0, 0, 7, 2);
    // VM control (trapped by HCR_EL2.TVM/TRVM/TACR).
    SCTLR_EL1 = (3, 0, 1, 0, 0);
    ACTLR_EL1 = (3, 0, 1, 0, 1);
    TTBR0_EL1 = (3, 0, 2, 0, 0);
    TTBR1_EL1 = (3, 0, 2, 0, 1);
    TCR_EL1 = (3, 0, 2, 0, 2);
    AFSR0_EL1 = (3, 0, 5, 1, 0);
    AFSR1_EL1 = (3, 0, 5, 1, 1);
    ESR_EL1 = (3, 0, 5, 2, 0);
    FAR_EL1 = (3, 0, 6, 0, 0);
    MAIR_EL1 = (3, 0, 10, 2, 0);
    AMAIR_EL1 = (3, 0, 10, 3, 0);
    CONTEXTIDR_EL1 = (3, 0, 13, 0, 1);
    // GICv3 CPU interface.
    ICC_PMR_EL1 = (3, 0, 4, 6, 0);
    ICC_IAR0_EL1 = (3, 0, 12, 8, 0);
    ICC_EOIR0_EL1 = (3, 0, 12, 8, 1);
    ICC_HPPIR0_EL1 = (3, 0, 12, 8, 2);
    ICC_BPR0_EL1 = (3, 0, 12, 8, 3);
    ICC_DIR_EL1 = (3, 0, 12, 11, 1);
    ICC_RPR_EL1 = (3, 0, 12, 11, 3);
    ICC_SGI1R_EL1 = (3, 0, 12, 11, 5);
    ICC_ASGI1R_EL1 = (3, 0, 12, 11, 6);
    ICC_SGI0R_EL1 = (3, 0, 12, 11, 7);
    ICC_IAR1_EL1 = (3, 0, 12, 12, 0);
    ICC_EOIR1_EL1 = (3, 0, 12, 12, 1);
    ICC_HPPIR1_EL1 = (3, 0, 12, 12, 2);
    ICC_BPR1_EL1 = (3, 0, 12, 12, 3);
    ICC_CTLR_EL1 = (3, 0, 12, 12, 4);
    ICC_SRE_EL1 = (3, 0, 12, 12, 5);
    ICC_IGRPEN0_EL1 = (3, 0, 12, 12, 6);
    ICC_IGRPEN1_EL1 = (3, 0, 12, 12, 7);
    // Generic timer.
    CNTKCTL_EL1 = (3, 0, 14, 1, 0);
    CNTFRQ_EL0 = (3, 3, 14, 0, 0);
    CNTPCT_EL0 = (3, 3, 14, 0, 1);
    CNTVCT_EL0 = (3, 3, 14, 0, 2);
    CNTP_TVAL_EL0 = (3, 3, 14, 2, 0);
    CNTP_CTL_EL0 = (3, 3, 14, 2, 1);
    CNTP_CVAL_EL0 = (3, 3, 14, 2, 2);
    CNTV_TVAL_EL0 = (3, 3, 14, 3, 0);
    CNTV_CTL_EL0 = (3, 3, 14, 3, 1);
    CNTV_CVAL_EL0 = (3, 3, 14, 3, 2);
    // Performance monitors.
    PMINTENSET_EL1 = (3, 0, 9, 14, 1);
    PMINTENCLR_EL1 = (3, 0, 9, 14, 2);
    PMCR_EL0 = (3, 3, 9, 12, 0);
    PMCNTENSET_EL0 = (3, 3, 9, 12, 1);
    PMCNTENCLR_EL0 = (3, 3, 9, 12, 2);
    PMOVSCLR_EL0 = (3, 3, 9, 12, 3);
    PMSWINC_EL0 = (3, 3, 9, 12, 4);
    PMSELR_EL0 = (3, 3, 9, 12, 5);
    PMCEID0_EL0 = (3, 3, 9, 12, 6);
    PMCEID1_EL0 = (3, 3, 9, 12, 7);
    PMCCNTR_EL0 = (3, 3, 9, 13, 0);
    PMXEVTYPER_EL0 = (3, 3, 9, 13, 1);
    PMXEVCNTR_EL0 = (3, 3, 9, 13, 2);
    PMUSERENR_EL0 = (3, 3, 9, 14, 0);
    PMOVSSET_EL0 = (3, 3, 9, 14, 3);
    PMCCFILTR_EL0 = (3, 3, 14, 15, 7);
    // Debug.
    OSDTRRX_EL1 = (2, 0, 0, 0, 2);
    MDCCINT_EL1 = (2, 0, 0, 2, 0);
    MDSCR_EL1 = (2, 0, 0, 2, 2);
    OSDTRTX_EL1 = (2, 0, 0, 3, 2);
    OSECCR_EL1 = (2, 0, 0, 6, 2);
    MDRAR_EL1 = (2, 0, 1, 0, 0);
    OSLAR_EL1 = (2, 0, 1, 0, 4);
    OSLSR_EL1 = (2, 0, 1, 1, 4);
    OSDLR_EL1 = (2, 0, 1, 3, 4);
    DBGPRCR_EL1 = (2, 0, 1, 4, 4);
    DBGCLAIMSET_EL1 = (2, 0, 7, 8, 6);
    DBGCLAIMCLR_EL1 = (2, 0, 7, 9, 6);
    DBGAUTHSTATUS_EL1 = (2, 0, 7, 14, 6);
    MDCCSR_EL0 = (2, 3, 0, 1, 0);
    DBGDTR_EL0 = (2, 3, 0, 4, 0);
    DBGDTRRX_EL0 = (2, 3, 0, 5, 0);
    // Set/way cache maintenance (trapped by HCR_EL2.TSW).
    DC_ISW = (1, 0, 7, 6, 2);
    DC_CSW = (1, 0, 7, 10, 2);
    DC_CISW = (1, 0, 7, 14, 2);
}
