//! ferrovisor's hypercall ABI, the one definition the hypervisor and its
//! guests (the probe, fvbench) share.
//!
//! Every call is an SMCCC fast call, `hvc #0` (or a trapped `smc #0`), with
//! the function id in w0 and the results in x0..x3. ferrovisor's own calls
//! use the SMCCC vendor-specific hypervisor service range (OEN 6, fast,
//! SMC64: `0xC600_xxxx`); each only reads the calling vCPU's state, so the
//! exit fast path answers it.
//!
//! How to add a hypercall: docs/architecture.md, "How to add a hypercall".
#![no_std]
#![forbid(unsafe_code)]

/// The root `compatible` of the device tree ferrovisor generates for a
/// guest: how a guest tells it runs under ferrovisor.
pub const ROOT_COMPATIBLE: &str = "ferrovisor,virt";

/// Does nothing; returns 0 in x0 (the hypercall round-trip benchmark).
pub const NOP: u32 = 0xC600_0000;

/// Exit counters of the calling vCPU (see [`Exits`]).
pub const EXITS: u32 = 0xC600_0001;

/// Scheduling of the calling vCPU (see [`Sched`]).
pub const SCHED: u32 = 0xC600_0002;

/// An SCMI call on the calling guest's `arm,scmi-smc` channel (its DT's
/// `arm,smc-id`): not answered by the fast path; x0 = 0 once the response
/// is in the channel.
pub const SCMI: u32 = 0xC600_8000;

/// Every ferrovisor function id, for tests and for the hypervisor's
/// dispatch.
pub const ALL: [u32; 4] = [NOP, EXITS, SCHED, SCMI];

/// The results of [`EXITS`]: the calling vCPU's exits so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exits {
    /// x0: every exit.
    pub total: u64,
    /// x1: data aborts (emulated MMIO and refused accesses).
    pub data_aborts: u64,
    /// x2: forwarded device interrupts.
    pub forwarded: u64,
    /// x3: GIC maintenance interrupts.
    pub maintenance: u64,
}

impl Exits {
    /// x0..x3 as the hypervisor returns them.
    pub const fn to_regs(self) -> [u64; 4] {
        [self.total, self.data_aborts, self.forwarded, self.maintenance]
    }

    /// From x0..x3 as the guest receives them.
    pub const fn from_regs(r: [u64; 4]) -> Self {
        Self { total: r[0], data_aborts: r[1], forwarded: r[2], maintenance: r[3] }
    }

    /// Counter-wise `self - before` (wrapping: the counters only grow).
    pub const fn since(&self, before: &Exits) -> Exits {
        Exits {
            total: self.total.wrapping_sub(before.total),
            data_aborts: self.data_aborts.wrapping_sub(before.data_aborts),
            forwarded: self.forwarded.wrapping_sub(before.forwarded),
            maintenance: self.maintenance.wrapping_sub(before.maintenance),
        }
    }
}

/// The results of [`SCHED`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sched {
    /// x0: times the vCPU was loaded onto its pCPU (scheduled in).
    pub loads: u64,
    /// x1: vCPUs pinned to that pCPU (1: dedicated).
    pub pinned: u64,
}

impl Sched {
    /// x0..x3 as the hypervisor returns them.
    pub const fn to_regs(self) -> [u64; 4] {
        [self.loads, self.pinned, 0, 0]
    }

    /// From x0..x3 as the guest receives them.
    pub const fn from_regs(r: [u64; 4]) -> Self {
        Self { loads: r[0], pinned: r[1] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_vendor_hypervisor_fast_calls_and_distinct() {
        for (i, id) in ALL.iter().enumerate() {
            // Fast call (bit 31), SMC64 (bit 30), OEN 6 (bits 29:24).
            assert_eq!(id >> 24, 0xC6, "{id:#x}");
            assert!(!ALL[..i].contains(id), "{id:#x} twice");
        }
    }

    #[test]
    fn results_round_trip_through_registers() {
        let e = Exits { total: 9, data_aborts: 3, forwarded: 2, maintenance: 1 };
        assert_eq!(Exits::from_regs(e.to_regs()), e);
        let later = Exits { total: 12, data_aborts: 3, forwarded: 4, maintenance: 1 };
        assert_eq!(later.since(&e), Exits { total: 3, data_aborts: 0, forwarded: 2, maintenance: 0 });
        let s = Sched { loads: 4, pinned: 1 };
        assert_eq!(Sched::from_regs(s.to_regs()), s);
        assert_eq!(s.to_regs()[2..], [0, 0]);
    }
}
