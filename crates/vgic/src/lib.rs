//! The virtual GICv3 of one guest: pure state and logic, the hardware parts
//! (list registers, physical GIC, IPIs) are left to the hypervisor.
//!
//! # Model
//!
//! The guest uses the GICv3 system-register CPU interface, which the
//! hardware virtualizes (ICV_* registers backed by `ICH_LR<n>_EL2`). The
//! hypervisor traps and hands to this crate only:
//!
//! * the distributor frame (64 KiB) at [`VgicConfig::dist_base`],
//! * one redistributor per vCPU (RD_base then SGI_base, 64 KiB each, stride
//!   `0x20000`) from [`VgicConfig::redist_base`],
//! * writes of `ICC_SGI1R_EL1` (trapped because `HCR_EL2.IMO` is 1),
//!
//! through [`Vgic::mmio_read`], [`Vgic::mmio_write`] and
//! [`Vgic::write_sgi1r`]. Devices inject with [`Vgic::set_level`] and
//! [`Vgic::raise_edge`]; [`Vgic::link_hw`] backs a virtual interrupt by a
//! physical one. Around each run of a vCPU the hypervisor calls
//! [`Vgic::sync_lrs`] after the exit and [`Vgic::flush_lrs`] before the
//! entry. Operations that need the hypervisor to act (IPIs, mirroring on the
//! physical GIC) push [`Effect`]s into an [`Effects`] list.
//!
//! # Features and design decisions
//!
//! * No LPIs, no ITS, no extended SPI/PPI ranges, no MBIs; `GICD_TYPER`
//!   reports 10 INTID bits.
//! * A single security state: `GICD_CTLR.DS` and `ARE` read as one and
//!   ignore writes. Both groups exist: `IGROUPR` is writable and resets to
//!   all group 1 (like KVM); group-0 interrupts are delivered only while
//!   `GICD_CTLR.EnableGrp0` is set, and then as virtual FIQs (LR Group=0),
//!   which a Linux guest never enables. `IGRPMODR` and `NSACR` are RAZ/WI.
//! * SPIs: the configured count rounded up to a multiple of 32 (at most
//!   988), INTIDs `32..32 + spis`.
//! * Priorities keep 5 bits (the low 3 read as zero).
//! * SGIs are always edge-triggered (`ICFGR0` reads `0xAAAA_AAAA`). PPI
//!   trigger modes (`ICFGR1`) are writable, like on GIC-600, and reset to
//!   level; SPIs reset to level.
//! * Routing: `GICD_IROUTER<n>` stores Aff3..Aff0 and IRM. vCPU `i` has the
//!   affinity Aff0 = `i`, other fields 0 (the hypervisor's vMPIDR scheme,
//!   at most 16 vCPUs). An affinity matching no vCPU leaves the SPI
//!   undelivered (like hardware); IRM=1 (1-of-N) always picks vCPU 0.
//!   `GICR_WAKER` is kept for the guest's benefit only: a sleeping
//!   redistributor still receives interrupts.
//! * `ICC_SGI1R_EL1`: target list plus Aff1..3 (non-zero Aff1..3 or a range
//!   selector reaching past the vCPUs match nobody), or IRM=1 for every vCPU
//!   but the writer. Only SGIs configured as group 1 on the target are made
//!   pending (`ICC_SGI0R_EL1` is not emulated).
//! * List registers: every pending-only LR is taken back into the model at
//!   each flush and the free LRs are refilled by priority, so the guest
//!   always sees the highest-priority pending interrupts. LRs in the active
//!   or pending+active state stay put. An edge that arrives while its
//!   interrupt is active in an LR turns the LR pending+active; never for an
//!   LR with HW=1, whose pending state lives in the physical GIC.
//! * Level-sensitive interrupts (without HW link) whose line is high are
//!   written with the LR EOI bit (41) so that the guest's deactivation
//!   raises a maintenance interrupt: the hypervisor must then exit and sync
//!   so the line is re-sampled (`ICH_HCR_EL2.En` must be set). Every flush
//!   re-encodes the loaded LRs, so the bit follows the line: a line that
//!   rises while its interrupt is loaded kicks the vCPU holding it, and a
//!   level interrupt pended only by [`Vgic::raise_edge`] or `ISPENDR` (the
//!   virtual timer, whose level the hypervisor masks itself) costs no
//!   maintenance exit. A level interrupt active in
//!   an LR is not made pending+active by its line alone (that would give a
//!   spurious second delivery once the device is serviced).
//! * HW-linked interrupts (`link_hw`): the hypervisor injects them with
//!   [`Vgic::raise_edge`] after leaving the physical INTID active; the LR
//!   then carries HW=1 and the pINTID and the guest's deactivation
//!   deactivates the physical interrupt. A HW-linked interrupt pended by
//!   software (`ISPENDR`) is delivered with HW=0, because no physical
//!   activation stands behind it.
//! * Calling protocol: after every exit of vCPU `v`, `sync_lrs(v, lrs)` with
//!   the LR values read from the hardware (exactly as many as the last
//!   flush wrote; an LR that disappears counts as completed); before every
//!   entry, `flush_lrs(v, lrs)` and write all of `lrs` back. At most 16 LRs
//!   are filled. [`LrFlush::kicks`] names vCPUs to kick because an
//!   interrupt taken back from `v`'s LRs is now theirs (e.g. re-routed).
//! * Kicks: an access by vCPU `v` never kicks `v` itself (it flushes
//!   before re-entering); injections kick the target whoever calls.
//!   [`Effect::HwDeactivate`] asks the hypervisor to deactivate a physical
//!   INTID when the guest discards (`ICPENDR`/`ICACTIVER`) the state that
//!   stood for it.
//! * Hot paths: [`Vgic::sync_lrs`], [`Vgic::flush_lrs`] and
//!   [`Vgic::has_deliverable`] never scan the INTID space. Each vCPU keeps
//!   the set of INTIDs loaded in its LRs and a set of candidates: INTIDs
//!   that may have become deliverable to it (every state change, routing
//!   change or return from an LR adds the interrupt to its target's set;
//!   a `GICD_CTLR` group change adds all). The LR fill drops candidates it
//!   finds not wanted; `has_deliverable` (`&self`) only reads them.
//! * Priority masking (`ICV_PMR_EL1`, running priority) lives in the
//!   hardware CPU interface and is not seen here: [`Vgic::has_deliverable`]
//!   may report an interrupt the guest has masked (a spurious WFI wake-up).
//! * Every offset, size and value comes from a hostile guest: nothing
//!   panics. Misaligned accesses, unsupported sizes, accesses outside the
//!   frames and calls naming a vCPU that does not exist are ignored (reads
//!   return 0) and counted by [`Vgic::bad_accesses`].
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

pub mod cache;
mod dist;
mod effects;
pub mod forward;
mod inject;
mod irq;
pub mod lr;
mod mmio;
mod redist;
#[cfg(test)]
mod reference;
mod regs;
mod set;
pub mod shared;

use alloc::vec::Vec;

pub use cache::{LrBank, LrCache};
pub use effects::{Effect, Effects};
use ferrovisor_types::{GuestIrq, GuestPhysAddr, HostIrq, VcpuId};
pub use forward::{Forward, ForwardError, ForwardTable};
pub use inject::sgi1r_value;
use irq::Irq;
pub use lr::LrFlush;
use set::IntidSet;
pub use shared::SharedVgic;

/// Size of the distributor frame.
pub const DIST_SIZE: u64 = ferrovisor_types::platform::GICD_SIZE;
/// Size of one vCPU's redistributor (RD_base + SGI_base frames).
pub const REDIST_STRIDE: u64 = ferrovisor_types::platform::GICR_STRIDE;
/// Most vCPUs one vGIC serves: every [`VcpuId`] (Aff0 0..=15, no range
/// selectors needed). A config allows fewer (`ferrovisor_config::MAX_VCPUS`).
pub const MAX_VCPUS: usize = VcpuId::LIMIT;
/// Most SPIs (INTIDs 32..=1019).
pub const MAX_SPIS: u32 = 988;

/// Shape of the virtual GIC of one guest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VgicConfig {
    /// Number of vCPUs, `1..=16`.
    pub vcpus: usize,
    /// Number of SPIs; rounded up to a multiple of 32, at most 988.
    pub spis: u32,
    /// Guest physical address of the distributor (64 KiB aligned).
    pub dist_base: GuestPhysAddr,
    /// Guest physical address of the first redistributor (64 KiB aligned).
    pub redist_base: GuestPhysAddr,
}

/// Why a [`VgicConfig`] or a [`Vgic::link_hw`] request was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VgicError {
    /// `vcpus` is 0 or above [`MAX_VCPUS`].
    BadVcpuCount(usize),
    /// `spis` is above [`MAX_SPIS`].
    BadSpiCount(u32),
    /// A base address is not 64 KiB aligned or its range overflows.
    BadAddress(GuestPhysAddr),
    /// The distributor and redistributor ranges overlap.
    Overlap,
    /// The INTID is not a PPI or an existing SPI (or the vCPU index is out
    /// of range for a PPI).
    BadIntid(u32),
    /// The physical INTID is not a PPI or SPI (16..=1019).
    BadPintid(HostIrq),
}

/// [`Irq::target`] of an SPI routed to no vCPU.
pub(crate) const NO_TARGET: u8 = u8::MAX;

/// SGIs and PPIs of one vCPU, plus its redistributor state.
#[derive(Clone, Debug)]
pub(crate) struct Bank {
    pub irqs: [Irq; 32],
    /// `GICR_WAKER.ProcessorSleep` (ChildrenAsleep mirrors it).
    pub sleep: bool,
    /// INTIDs the model loaded into this vCPU's list registers: exactly
    /// those (SGIs/PPIs of this bank, SPIs) whose `lr` names this vCPU.
    pub loaded: IntidSet,
    /// INTIDs that may be deliverable to (or active for) this vCPU, outside
    /// any LR: a superset of what [`Vgic::has_deliverable`] and the LR fill
    /// look for. Set by every change that can make an interrupt wanted
    /// here ([`Vgic::mark`]); members found not wanted are removed lazily
    /// by the LR fill.
    pub candidates: IntidSet,
}

/// A snapshot of one interrupt, for debugging and tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IrqInfo {
    /// Enabled.
    pub enabled: bool,
    /// Pending as the guest would read it (model or list register).
    pub pending: bool,
    /// Active as the guest would read it (model or list register).
    pub active: bool,
    /// Priority (low 3 bits zero).
    pub priority: u8,
    /// Group 1.
    pub group1: bool,
    /// Edge-triggered.
    pub edge: bool,
    /// Physical INTID link.
    pub hw: Option<HostIrq>,
    /// The vCPU whose list registers hold it.
    pub in_lr: Option<VcpuId>,
    /// The vCPU it is delivered to (for SPIs: per `GICD_IROUTER`).
    pub target: Option<VcpuId>,
}

/// The virtual GICv3 of one guest.
#[derive(Clone, Debug)]
pub struct Vgic {
    cfg: VgicConfig,
    grp0: bool,
    grp1: bool,
    banks: Vec<Bank>,
    spis: Vec<Irq>,
    routes: Vec<u64>,
    bad: u64,
    /// vCPUs to kick, reported by the next [`Vgic::flush_lrs`].
    deferred_kicks: u32,
}

impl Vgic {
    /// Builds the vGIC in its reset state.
    pub fn new(cfg: VgicConfig) -> Result<Self, VgicError> {
        if cfg.vcpus == 0 || cfg.vcpus > MAX_VCPUS {
            return Err(VgicError::BadVcpuCount(cfg.vcpus));
        }
        if cfg.spis > MAX_SPIS {
            return Err(VgicError::BadSpiCount(cfg.spis));
        }
        let spis = cfg.spis.div_ceil(32).saturating_mul(32).min(MAX_SPIS);
        let redist_size = REDIST_STRIDE * cfg.vcpus as u64;
        for (base, size) in [(cfg.dist_base, DIST_SIZE), (cfg.redist_base, redist_size)] {
            if !base.is_aligned(DIST_SIZE) || base.checked_add(size).is_none() {
                return Err(VgicError::BadAddress(base));
            }
        }
        let (d, r) = (cfg.dist_base.raw(), cfg.redist_base.raw());
        if d < r + redist_size && r < d + DIST_SIZE {
            return Err(VgicError::Overlap);
        }
        let bank = Bank {
            irqs: core::array::from_fn(|i| Irq::reset(i as u32)),
            sleep: true,
            loaded: IntidSet::new(),
            candidates: IntidSet::new(),
        };
        Ok(Self {
            cfg: VgicConfig { spis, ..cfg },
            grp0: false,
            grp1: false,
            banks: (0..cfg.vcpus).map(|_| bank.clone()).collect(),
            spis: (0..spis).map(|i| Irq::reset(32 + i)).collect(),
            routes: (0..spis).map(|_| 0).collect(),
            bad: 0,
            deferred_kicks: 0,
        })
    }

    /// The configuration in effect (with the SPI count rounded up).
    pub fn config(&self) -> VgicConfig {
        self.cfg
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.cfg.vcpus
    }

    /// Number of SPIs (a multiple of 32).
    pub fn spis(&self) -> u32 {
        self.cfg.spis
    }

    /// Base and size of the distributor frame.
    pub fn dist_range(&self) -> (GuestPhysAddr, u64) {
        (self.cfg.dist_base, DIST_SIZE)
    }

    /// Base and size of all redistributors (`vcpus * 0x20000`).
    pub fn redist_range(&self) -> (GuestPhysAddr, u64) {
        (self.cfg.redist_base, REDIST_STRIDE * self.cfg.vcpus as u64)
    }

    /// Accesses and calls ignored because they were malformed (bad size,
    /// misaligned, outside the frames, or naming a vCPU that does not exist).
    pub fn bad_accesses(&self) -> u64 {
        self.bad
    }

    /// Whether `GICD_CTLR.EnableGrp0` / `EnableGrp1` are set, in that order.
    pub fn groups_enabled(&self) -> (bool, bool) {
        (self.grp0, self.grp1)
    }

    /// A snapshot of INTID `intid` (`vcpu_for_private` picks the bank of
    /// SGIs and PPIs); `None` if it does not exist.
    pub fn irq_info(&self, intid: GuestIrq, vcpu_for_private: VcpuId) -> Option<IrqInfo> {
        let (intid, vcpu_for_private) = (intid.raw(), vcpu_for_private.index());
        let irq = self.irq(intid, vcpu_for_private)?;
        Some(IrqInfo {
            enabled: irq.enabled(),
            pending: irq.pending_view(),
            active: irq.active_view(),
            priority: irq.priority,
            group1: irq.group1(),
            edge: irq.edge(),
            hw: irq.hw,
            in_lr: irq.lr.and_then(|s| VcpuId::new(s.vcpu)),
            target: self.target(intid, vcpu_for_private).and_then(VcpuId::new),
        })
    }

    /// Whether vCPU `vcpu` has an interrupt it could take: pending, enabled,
    /// its group enabled and delivered to it, or pending in one of its list
    /// registers. For deciding whether a WFI may sleep; the CPU interface's
    /// priority mask is not considered.
    ///
    /// Looks only at the INTIDs loaded on `vcpu` and at the candidates kept
    /// for it (interrupts that may have become pending since its last LR
    /// fill), not at every interrupt.
    pub fn has_deliverable(&self, vcpu: VcpuId) -> bool {
        let vcpu = vcpu.index();
        if vcpu >= self.cfg.vcpus {
            return false;
        }
        let Some(bank) = self.banks.get(vcpu) else { return false };
        let in_lr = bank.loaded.into_iter().any(|intid| {
            self.irq(intid, vcpu).and_then(|irq| irq.lr).is_some_and(|s| s.vcpu == vcpu && s.pending())
        });
        in_lr
            || bank.candidates.into_iter().any(|intid| {
                self.irq(intid, vcpu)
                    .is_some_and(|irq| irq.lr.is_none() && self.deliverable(irq, intid, vcpu))
            })
    }

    /// Whether the LR fill of `vcpu` wants INTID `intid`: outside any LR,
    /// and deliverable to `vcpu` or active and routed to it.
    pub(crate) fn wanted(&self, intid: u32, vcpu: usize) -> bool {
        self.irq(intid, vcpu).is_some_and(|irq| {
            irq.lr.is_none()
                && ((irq.active() && self.target(intid, vcpu) == Some(vcpu))
                    || self.deliverable(irq, intid, vcpu))
        })
    }

    /// INTID `intid` (bank `bank`) may have become deliverable or active:
    /// records it as a candidate of the vCPU it is routed to. Called after
    /// every change of its pending, enable, group, active, trigger, HW link,
    /// priority or routing state and when it leaves an LR; when in doubt,
    /// call it (a spurious candidate costs one check at the next fill).
    pub(crate) fn mark(&mut self, intid: u32, bank: usize) {
        let Some(t) = self.target(intid, bank) else { return };
        if let Some(b) = self.banks.get_mut(t) {
            b.candidates.insert(intid);
        }
    }

    /// Makes every interrupt a candidate on every vCPU (for global changes
    /// such as the `GICD_CTLR` group enables; the next fills sort it out).
    pub(crate) fn mark_all(&mut self) {
        let all = IntidSet::below(32 + self.cfg.spis);
        for b in &mut self.banks {
            b.candidates.union_with(&all);
        }
    }

    /// Whether `irq` (INTID `intid`), outside any LR, should be signalled
    /// to `vcpu` as pending.
    pub(crate) fn deliverable(&self, irq: &Irq, intid: u32, vcpu: usize) -> bool {
        irq.pending() && self.signalable(irq, intid, vcpu)
    }

    /// Enabled, group enabled and routed to `vcpu`.
    pub(crate) fn signalable(&self, irq: &Irq, intid: u32, vcpu: usize) -> bool {
        irq.enabled() && self.group_enabled(irq) && self.target(intid, vcpu) == Some(vcpu)
    }

    #[inline]
    pub(crate) fn group_enabled(&self, irq: &Irq) -> bool {
        if irq.group1() {
            self.grp1
        } else {
            self.grp0
        }
    }

    /// The vCPU INTID `intid` is delivered to; `bank` is the vCPU owning the
    /// SGI/PPI bank for private interrupts.
    #[inline]
    pub(crate) fn target(&self, intid: u32, bank: usize) -> Option<usize> {
        if intid < 32 {
            return (bank < self.cfg.vcpus).then_some(bank);
        }
        let t = self.spis.get(usize::try_from(intid - 32).ok()?)?.target;
        (t != NO_TARGET).then_some(usize::from(t))
    }

    /// The vCPU a `GICD_IROUTER` value designates.
    #[inline]
    pub(crate) fn route_target(&self, raw: u64) -> Option<usize> {
        if raw & dist::IROUTER_IRM != 0 {
            return Some(0);
        }
        if raw & 0xff_00ff_ff00 != 0 {
            return None;
        }
        let aff0 = (raw & 0xff) as usize;
        (aff0 < self.cfg.vcpus).then_some(aff0)
    }

    /// INTID `intid` (bank `bank` for SGIs/PPIs).
    #[inline]
    pub(crate) fn irq(&self, intid: u32, bank: usize) -> Option<&Irq> {
        if intid < 32 {
            self.banks.get(bank)?.irqs.get(intid as usize)
        } else {
            self.spis.get(usize::try_from(intid - 32).ok()?)
        }
    }

    /// INTID `intid` (bank `bank` for SGIs/PPIs), mutable.
    #[inline]
    pub(crate) fn irq_mut(&mut self, intid: u32, bank: usize) -> Option<&mut Irq> {
        if intid < 32 {
            self.banks.get_mut(bank)?.irqs.get_mut(intid as usize)
        } else {
            self.spis.get_mut(usize::try_from(intid - 32).ok()?)
        }
    }

    pub(crate) fn count_bad(&mut self) {
        self.bad = self.bad.saturating_add(1);
    }
}

#[cfg(test)]
mod tests;

/// Typed IDs from numbers, for the crate's own tests.
#[cfg(test)]
pub(crate) mod testids {
    use ferrovisor_types::{GuestIrq, HostIrq, VcpuId};

    /// Guest INTID `n` (tests name interrupts by number).
    pub(crate) fn gi(n: u32) -> GuestIrq {
        GuestIrq::new(n).expect("a GIC interrupt ID")
    }

    /// vCPU `n`.
    pub(crate) fn vc(n: usize) -> VcpuId {
        VcpuId::new(n).expect("a vCPU index")
    }

    /// Host INTID `n`.
    pub(crate) fn hi(n: u32) -> HostIrq {
        HostIrq::new(n).expect("a GIC interrupt ID")
    }
}
