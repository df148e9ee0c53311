//! PSCI calls to the host firmware (QEMU's built-in PSCI on virt).

use smccc::psci;
use smccc::{Hvc, Smc};

/// How PSCI calls reach the firmware, from the host DT's /psci `method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// SMC to EL3 (QEMU virt with virtualization=on).
    Smc,
    /// HVC (only meaningful below EL2; kept for completeness).
    Hvc,
}

/// Powers on the CPU with affinity `mpidr` at `entry` with `context` in x0.
pub fn cpu_on(conduit: Conduit, mpidr: u64, entry: u64, context: u64) -> Result<(), psci::Error> {
    match conduit {
        Conduit::Smc => psci::cpu_on::<Smc>(mpidr, entry, context),
        Conduit::Hvc => psci::cpu_on::<Hvc>(mpidr, entry, context),
    }
}

/// Powers the machine off. Returns only if the firmware refused.
pub fn system_off(conduit: Conduit) -> psci::Error {
    let result = match conduit {
        Conduit::Smc => psci::system_off::<Smc>(),
        Conduit::Hvc => psci::system_off::<Hvc>(),
    };
    match result {
        Err(e) => e,
        Ok(()) => psci::Error::Denied,
    }
}
