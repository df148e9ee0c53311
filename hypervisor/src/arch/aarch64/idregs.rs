//! The guest's view of the CPU ID registers (trapped by HCR_EL2.TID3).
//!
//! Guests see the host's values, minus features whose per-CPU state the
//! hypervisor does not switch between vCPUs (SVE, SME, pointer
//! authentication, MTE, AMU, MPAM, RAS error records, statistical profiling,
//! trace) and minus the PMU (its registers trap to EL2 and read as zero).

use core::arch::asm;

/// Reads ID register `S3_0_C0_C<crm>_<op2>` (crm 1..=7) as EL2 sees it;
/// other encodings read as zero (reserved ID space).
fn read_raw(crm: u8, op2: u8) -> u64 {
    macro_rules! id {
        ($($crm:literal, $op2:literal);* $(;)?) => {
            match (crm, op2) {
                $(($crm, $op2) => {
                    let v: u64;
                    // SAFETY: reading an ID register has no side effects and
                    // every S3_0_C0_C1..7 encoding is readable at EL2.
                    unsafe { asm!(concat!("mrs {}, S3_0_C0_C", $crm, "_", $op2), out(reg) v, options(nomem, nostack)) };
                    v
                })*
                _ => 0,
            }
        };
    }
    id! {
        1,0; 1,1; 1,2; 1,3; 1,4; 1,5; 1,6; 1,7;
        2,0; 2,1; 2,2; 2,3; 2,4; 2,5; 2,6; 2,7;
        3,0; 3,1; 3,2; 3,3; 3,4; 3,5; 3,6; 3,7;
        4,0; 4,1; 4,2; 4,3; 4,4; 4,5; 4,6; 4,7;
        5,0; 5,1; 5,2; 5,3; 5,4; 5,5; 5,6; 5,7;
        6,0; 6,1; 6,2; 6,3; 6,4; 6,5; 6,6; 6,7;
        7,0; 7,1; 7,2; 7,3; 7,4; 7,5; 7,6; 7,7;
    }
}

const fn field(shift: u32) -> u64 {
    0xf << shift
}

/// The value a guest reads from ID register `S3_0_C0_C<crm>_<op2>`.
pub fn guest_view(crm: u8, op2: u8) -> u64 {
    let raw = read_raw(crm, op2);
    let hide = match (crm, op2) {
        // ID_AA64PFR0_EL1: RAS, SVE, SEL2, MPAM, AMU.
        (4, 0) => field(28) | field(32) | field(36) | field(40) | field(44),
        // ID_AA64PFR1_EL1: MTE, RAS_frac, MPAM_frac, SME, and everything above.
        (4, 1) => field(8) | field(12) | field(16) | field(24) | !0xffff_ffffu64,
        // ID_AA64ZFR0_EL1 (SVE), ID_AA64SMFR0_EL1 (SME): all of it.
        (4, 4) | (4, 5) => !0,
        // ID_AA64DFR0_EL1: TraceVer, PMUVer, PMSVer, TraceFilt, TraceBuffer, MTPMU, BRBE.
        (5, 0) => field(4) | field(8) | field(32) | field(40) | field(44) | field(48) | field(52),
        // ID_AA64ISAR1_EL1: APA, API, GPA, GPI (pointer authentication).
        (6, 1) => field(4) | field(8) | field(24) | field(28),
        // ID_AA64ISAR2_EL1: GPA3, APA3.
        (6, 2) => field(8) | field(12),
        // AArch32 ID_DFR0_EL1: PerfMon.
        (1, 2) => field(24),
        _ => 0,
    };
    raw & !hide
}
