//! `hvc`: the SMCCC and PSCI versions through `hvc #0`.
//!
//! PSCI_VERSION is called first. SMCCC_VERSION is called only if
//! PSCI_FEATURES says it is implemented, as the SMCCC specification asks
//! (QEMU's built-in PSCI does not implement it, and an unknown HVC is
//! undefined there); otherwise the SMCCC version is 1.0 by definition.

use super::report;
use crate::psci::{self, Version};

/// Runs the test; PASS if SMCCC >= 1.0 and PSCI >= 1.0.
pub fn run(test: &str) -> bool {
    let psci_version = psci::call(psci::PSCI_VERSION, 0, 0, 0);
    if psci_version < 0 {
        return report!(
            test,
            false,
            "PSCI_VERSION returned {psci_version} ({})",
            psci::error_name(psci_version)
        );
    }
    let psci_version = Version(psci_version as u32);
    let features = if psci_version.0 >= 0x1_0000 {
        psci::call(psci::PSCI_FEATURES, u64::from(psci::SMCCC_VERSION), 0, 0)
    } else {
        -1
    };
    let (smccc, called) = if features >= 0 {
        let v = psci::call(psci::SMCCC_VERSION, 0, 0, 0);
        if v < 0 {
            return report!(
                test,
                false,
                "SMCCC_VERSION returned {v} ({}) psci={psci_version}",
                psci::error_name(v)
            );
        }
        (Version(v as u32), "yes")
    } else {
        (Version(0x1_0000), "no")
    };
    let ok = smccc.0 >= 0x1_0000 && psci_version.0 >= 0x1_0000;
    report!(test, ok, "smccc={smccc} psci={psci_version} smccc_version_call={called}")
}
