//! A vCPU's private state, owned by the run queue of its pCPU.

use super::Vm;
use crate::arch::aarch64::gicv::{self, VcpuGicState, CNTV_ENABLE, CNTV_IMASK};
use crate::arch::aarch64::guest::{self, El1Regs, FpRegs, VcpuRegs, PSTATE_EL1H_MASKED};
use crate::arch::aarch64::lrbank::HwLrs;
use crate::arch::aarch64::timer;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use ferrovisor_psci::{GuestCpus, VcpuPower};
use ferrovisor_types::{GuestIrq, VcpuId};
use ferrovisor_vgic::LrCache;

/// The guest's virtual timer interrupt (PPI 27).
pub const VTIMER_INTID: GuestIrq = GuestIrq::of::<{ ferrovisor_types::platform::VTIMER_INTID }>();

/// One virtual CPU.
pub struct Vcpu {
    /// The guest it belongs to.
    pub vm: Arc<Vm>,
    /// Its half that other pCPUs see (`vm.vcpus[index]`), held here so
    /// that the exit paths reach its counters without a table lookup.
    pub shared: Arc<super::VcpuShared>,
    /// Its identity in the guest (also Aff0 of its MPIDR).
    pub id: VcpuId,
    /// `id` as a table index.
    pub index: usize,
    /// General registers and the last exit's syndrome.
    pub regs: VcpuRegs,
    /// EL1 system registers while not loaded.
    pub el1: El1Regs,
    /// FP/SIMD registers while not loaded.
    pub fp: FpRegs,
    /// Its list registers: saved values, which hold an interrupt, and the
    /// vGIC generation they were filled at.
    pub lrs: LrCache,
    /// Virtual CPU interface state while not loaded.
    pub gic: VcpuGicState,
    /// In WFI: runs again only when an interrupt is deliverable.
    pub waiting: bool,
    /// Loaded on a pCPU it has to itself (set by [`Vcpu::load`]): no
    /// scheduling decision waits for its exits.
    pub dedicated: bool,
    /// The guest epoch this state belongs to.
    pub epoch: u32,
    /// Rate limit and stuck detection of its fault reports (`vm::faults`).
    pub watch: ferrovisor_trap::FaultWatch,
}

impl Vcpu {
    /// A powered-off vCPU of `vm`; None if `vm` has no vCPU `id`.
    pub fn new(vm: Arc<Vm>, id: VcpuId) -> Option<Self> {
        let shared = vm.vcpus.get(id.index())?.clone();
        Some(Self {
            vm,
            shared,
            id,
            index: id.index(),
            regs: VcpuRegs::default(),
            el1: guest::el1_reset(),
            fp: FpRegs::default(),
            lrs: LrCache::new(),
            gic: VcpuGicState::default(),
            waiting: false,
            dedicated: false,
            epoch: 0,
            watch: ferrovisor_trap::FaultWatch::new(),
        })
    }

    /// The shared half of this vCPU.
    #[inline(always)]
    pub fn shared(&self) -> &super::VcpuShared {
        &self.shared
    }

    /// Brings the vCPU to its reset state, entering at `entry` with `x0`.
    pub fn reset(&mut self, entry: u64, x0: u64) {
        self.regs = VcpuRegs::default();
        self.regs.pc = entry;
        self.regs.x[0] = x0;
        self.regs.pstate = PSTATE_EL1H_MASKED;
        self.el1 = guest::el1_reset();
        self.fp = FpRegs::default();
        self.lrs.reset();
        self.gic = VcpuGicState::default();
        self.waiting = false;
    }

    /// Whether the vCPU may run now, after applying pending resets, PSCI
    /// starts, and virtual timer expiry while it was not loaded.
    pub fn prepare(&mut self) -> bool {
        let epoch = self.vm.epoch.load(Ordering::Acquire);
        if epoch != self.epoch {
            self.epoch = epoch;
            self.reset(0, 0);
            super::faults::flush(self);
            self.watch = ferrovisor_trap::FaultWatch::new();
        }
        if self.vm.state() != super::VmState::Running {
            return false;
        }
        let shared = self.shared.clone();
        if let Some((entry, context)) = shared.start.lock().take() {
            self.reset(entry, context);
            *shared.power.lock() = VcpuPower::On;
        }
        if *shared.power.lock() != VcpuPower::On {
            return false;
        }
        self.check_saved_timer();
        if self.waiting {
            if !self.has_deliverable() {
                return false;
            }
            self.waiting = false;
        }
        true
    }

    /// Raises the virtual timer interrupt if the (saved) timer expired.
    fn check_saved_timer(&mut self) {
        let ctl = self.el1.cntv_ctl;
        if ctl & CNTV_ENABLE != 0 && ctl & CNTV_IMASK == 0 && self.el1.cntv_cval <= timer::now() {
            self.el1.cntv_ctl |= CNTV_IMASK;
            self.raise_vtimer();
        }
    }

    /// Makes the virtual timer interrupt pending for this vCPU.
    pub fn raise_vtimer(&self) {
        let id = self.id;
        self.vm.vgic_update_for(id, |vgic, fx| vgic.raise_edge(VTIMER_INTID, id, fx));
    }

    /// Loads this vCPU's EL1, FP, GIC and stage-2 state onto the running
    /// pCPU. `dedicated`: no other vCPU is pinned to this pCPU, so the
    /// guest's WFI need not trap (it sleeps on the pCPU itself).
    pub fn load(&mut self, dedicated: bool) {
        self.dedicated = dedicated;
        guest::load_el1(&self.el1);
        guest::load_fp(&self.fp);
        self.lrs.load(&mut HwLrs);
        gicv::load(&self.gic, gicv::ICH_HCR_EN);
        guest::load_stage2(
            ferrovisor_stage2::VTCR_EL2,
            self.vm.vttbr,
            ferrovisor_psci::vmpidr(self.id),
            0,
            if dedicated { guest::HCR_GUEST & !guest::HCR_TWI } else { guest::HCR_GUEST },
        );
    }

    /// Before each entry: hands the vGIC what the guest did with its list
    /// registers and refills them with what is deliverable now (skipped
    /// when nothing changed: [`LrCache::refresh`]).
    #[inline(always)]
    pub fn refresh_lrs(&mut self) {
        self.vm.take_sgis(self.id);
        let kicks = self.lrs.refresh(&self.vm.vgic, self.id, &mut HwLrs);
        self.vm.kick_vcpus(kicks);
    }

    /// Exit fast path: makes INTID `intid` (which just fired) pending
    /// straight in a free list register when that is all a refill would do
    /// ([`LrCache::inject_now`]); false: the caller raises it the ordinary
    /// way.
    #[inline(always)]
    pub fn inject_now(&mut self, intid: GuestIrq) -> bool {
        self.lrs.inject_now(&self.vm.vgic, self.id, intid, &mut HwLrs)
    }

    /// Exit fast path, after a kick: moves the SGIs in this vCPU's mailbox
    /// straight into free list registers ([`LrCache::inject_one`]). True if
    /// there was mail and all of it went in; false if there was none (the
    /// kick was for something else) or some did not fit: those are made
    /// pending in the model, for the refill on the full exit.
    #[inline(always)]
    pub fn deliver_mail(&mut self) -> bool {
        let sgis = self.vm.vgic.take_mail(self.id);
        if sgis == 0 {
            return false;
        }
        // One SGI (a wake-up): one call, no loop.
        if sgis & (sgis - 1) == 0 {
            if let Some(intid) = GuestIrq::new(sgis.trailing_zeros()) {
                if self.lrs.inject_sgi(&self.vm.vgic, self.id, intid, &mut HwLrs) {
                    return true;
                }
            }
            self.vm.receive_sgis(self.id, sgis);
            return false;
        }
        self.deliver_several(sgis)
    }

    /// [`Vcpu::deliver_mail`] for several SGIs.
    #[cold]
    #[inline(never)]
    fn deliver_several(&mut self, sgis: u16) -> bool {
        let mut left = sgis;
        while left != 0 {
            let sgi = left.trailing_zeros();
            match GuestIrq::new(sgi) {
                Some(intid) if self.inject_now(intid) => left &= left - 1,
                _ => break,
            }
        }
        if left != 0 {
            self.vm.receive_sgis(self.id, left);
            return false;
        }
        true
    }

    /// Saves the pCPU's EL1, FP and GIC state into this vCPU.
    pub fn save(&mut self) {
        guest::save_el1(&mut self.el1);
        guest::save_fp(&mut self.fp);
        let kicks = self.lrs.save(&self.vm.vgic, self.id, &HwLrs);
        gicv::save(&mut self.gic);
        self.vm.kick_vcpus(kicks);
        // A stopped or paused guest may not exit again for long: say now how
        // many of its fault reports were held back.
        if !self.watch.is_quiet() && self.vm.state() != super::VmState::Running {
            super::faults::flush(self);
        }
    }

    /// [`Vcpu::has_deliverable`] for the vCPU loaded on this pCPU (its WFI
    /// exit): a list register pending in the CPU counts too (the model's
    /// view of loaded interrupts may lag behind the LRs, see
    /// `LrCache::rearm_sgi`).
    pub fn loaded_has_deliverable(&self) -> bool {
        self.lrs.holds_pending(&HwLrs) || self.has_deliverable()
    }

    /// Whether the guest has an interrupt it could take now (WFI completes).
    pub fn has_deliverable(&self) -> bool {
        self.vm.take_sgis(self.id);
        self.vm.vgic.inspect(|g| g.has_deliverable(self.id))
    }
}

impl GuestCpus for Vm {
    fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }

    fn power(&self, vcpu: VcpuId) -> VcpuPower {
        self.vcpus.get(vcpu.index()).map_or(VcpuPower::Off, |v| *v.power.lock())
    }

    fn mpidr(&self, vcpu: VcpuId) -> u64 {
        ferrovisor_psci::vmpidr(vcpu)
    }

    fn entry_valid(&self, entry: u64) -> bool {
        self.in_ram(entry)
    }
}
