//! A vCPU's private state, owned by the run queue of its pCPU.

use super::Vm;
use crate::arch::aarch64::gicv::{self, VcpuGicState, CNTV_ENABLE, CNTV_IMASK, MAX_LRS};
use crate::arch::aarch64::guest::{self, El1Regs, FpRegs, VcpuRegs, PSTATE_EL1H_MASKED};
use crate::arch::aarch64::timer;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use ferrovisor_psci::{GuestCpus, VcpuPower};

/// The guest's virtual timer interrupt (PPI 27).
pub const VTIMER_INTID: u32 = 27;

/// One virtual CPU.
pub struct Vcpu {
    /// The guest it belongs to.
    pub vm: Arc<Vm>,
    /// Its index in the guest (also Aff0 of its MPIDR).
    pub index: usize,
    /// General registers and the last exit's syndrome.
    pub regs: VcpuRegs,
    /// EL1 system registers while not loaded.
    pub el1: El1Regs,
    /// FP/SIMD registers while not loaded.
    pub fp: FpRegs,
    /// List registers while not loaded (the vGIC model knows what is in them).
    pub lrs: [u64; MAX_LRS],
    /// Virtual CPU interface state while not loaded.
    pub gic: VcpuGicState,
    /// In WFI: runs again only when an interrupt is deliverable.
    pub waiting: bool,
    /// The vGIC generation the list registers were last refreshed at.
    pub seen_gen: u64,
    /// List registers holding an interrupt after the last refresh.
    pub lr_live: u16,
    /// One bit per list register the CPU implements (set by `load`).
    pub lr_mask: u16,
    /// The guest epoch this state belongs to.
    pub epoch: u32,
    /// Rate limit and stuck detection of its fault reports (`vm::faults`).
    pub watch: ferrovisor_trap::FaultWatch,
}

impl Vcpu {
    /// A powered-off vCPU of `vm`.
    pub fn new(vm: Arc<Vm>, index: usize) -> Self {
        Self {
            vm,
            index,
            regs: VcpuRegs::default(),
            el1: guest::el1_reset(),
            fp: FpRegs::default(),
            lrs: [0; MAX_LRS],
            gic: VcpuGicState::default(),
            waiting: false,
            seen_gen: u64::MAX,
            lr_live: 0,
            lr_mask: 0,
            epoch: 0,
            watch: ferrovisor_trap::FaultWatch::new(),
        }
    }

    /// The shared half of this vCPU.
    pub fn shared(&self) -> Option<&super::VcpuShared> {
        self.vm.vcpus.get(self.index)
    }

    /// Brings the vCPU to its reset state, entering at `entry` with `x0`.
    pub fn reset(&mut self, entry: u64, x0: u64) {
        self.regs = VcpuRegs::default();
        self.regs.pc = entry;
        self.regs.x[0] = x0;
        self.regs.pstate = PSTATE_EL1H_MASKED;
        self.el1 = guest::el1_reset();
        self.fp = FpRegs::default();
        self.lrs = [0; MAX_LRS];
        self.gic = VcpuGicState::default();
        self.waiting = false;
        self.seen_gen = u64::MAX;
        self.lr_live = 0;
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
        let vm = self.vm.clone();
        let Some(shared) = vm.vcpus.get(self.index) else { return false };
        if let Some((entry, context)) = shared.start.lock().take() {
            self.reset(entry, context);
            *shared.power.lock() = VcpuPower::On;
        }
        if *shared.power.lock() != VcpuPower::On {
            return false;
        }
        self.check_saved_timer();
        if self.waiting {
            if !vm.vgic.lock().has_deliverable(self.index) {
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
        let index = self.index;
        self.vm.vgic_update(|vgic, fx| vgic.raise_edge(VTIMER_INTID, index, fx));
    }

    /// Loads this vCPU's EL1, FP, GIC and stage-2 state onto the running
    /// pCPU. `dedicated`: no other vCPU is pinned to this pCPU, so the
    /// guest's WFI need not trap (it sleeps on the pCPU itself).
    pub fn load(&mut self, dedicated: bool) {
        self.lr_mask = ((1u32 << gicv::lr_count()) - 1) as u16;
        guest::load_el1(&self.el1);
        guest::load_fp(&self.fp);
        for (n, lr) in self.lrs.iter().enumerate().take(gicv::lr_count()) {
            gicv::write_lr(n, *lr);
        }
        gicv::load(&self.gic, gicv::ICH_HCR_EN);
        guest::load_stage2(
            ferrovisor_stage2::VTCR_EL2,
            self.vm.vttbr,
            ferrovisor_psci::vmpidr(self.index),
            0,
            if dedicated { guest::HCR_GUEST & !guest::HCR_TWI } else { guest::HCR_GUEST },
        );
    }

    /// Before each entry: hands the vGIC what the guest did with its list
    /// registers and refills them with what is deliverable now.
    pub fn refresh_lrs(&mut self) {
        // Nothing new in the vGIC and no list register the guest completed:
        // the list registers are right as they are.
        let gen = self.vm.vgic_gen.load(Ordering::Acquire);
        if gen == self.seen_gen && self.lr_live & gicv::completed_lrs() == 0 {
            return;
        }
        self.seen_gen = gen;
        let n = gicv::lr_count();
        for (i, lr) in self.lrs.iter_mut().enumerate().take(n) {
            *lr = gicv::read_lr(i);
        }
        // flush_lrs starts by reconciling the LRs with the model, which is
        // all sync_lrs would do here.
        let flush = self.vm.vgic.lock().flush_lrs(self.index, &mut self.lrs[..n]);
        self.lr_live = 0;
        for (i, lr) in self.lrs.iter().enumerate().take(n) {
            gicv::write_lr(i, *lr);
            if *lr != 0 {
                self.lr_live |= 1 << i;
            }
        }
        let hcr = gicv::ICH_HCR_EN | if flush.overflow { gicv::ICH_HCR_UIE } else { 0 };
        gicv::set_hcr(hcr);
        self.hand_out_kicks(flush.kicks);
    }

    /// Interrupts this vCPU gave back that are now other vCPUs' (bit `i`:
    /// vCPU `i`; the guest re-routed them meanwhile): those must refill and,
    /// if they sleep in an untrapped WFI, wake up.
    fn hand_out_kicks(&self, kicks: u32) {
        let kicks = kicks & !(1 << self.index);
        if kicks == 0 {
            return;
        }
        self.vm.vgic_gen.fetch_add(1, Ordering::AcqRel);
        for (v, s) in self.vm.vcpus.iter().enumerate() {
            if kicks & (1 << v) != 0 {
                crate::core::sched::kick(s.pcpu);
            }
        }
    }

    /// Exit fast path: makes INTID `intid` (which just fired) pending by
    /// writing it straight into a free list register, when the vGIC says
    /// that is all a refill would do ([`ferrovisor_vgic::Vgic::raise_edge_into_lr`]);
    /// true if it did. Interrupts the guest completed since the last refill
    /// are handed back first ([`ferrovisor_vgic::Vgic::retire_lrs`]) and
    /// their LRs reused. False: the caller raises `intid` the ordinary way
    /// and the scheduler loop refills the list registers (which finds any
    /// completion already handed back: consistent).
    #[inline(always)]
    pub fn inject_now(&mut self, intid: u32) -> bool {
        let completed = self.lr_live & gicv::completed_lrs();
        if completed != 0 {
            return self.inject_after_completions(intid, completed);
        }
        let free = !self.lr_live & self.lr_mask;
        if free == 0 {
            return false;
        }
        let index = self.index;
        let Some(value) = self.if_unchanged(|vgic| vgic.raise_edge_into_lr(intid, index)) else {
            return false;
        };
        let i = free.trailing_zeros() as usize;
        // `lrs` needs no copy: it is read back from the hardware before
        // every use.
        gicv::write_lr(i, value);
        self.lr_live |= 1 << i;
        true
    }

    /// Runs `f` on the vGIC if nothing changed in it since this vCPU's last
    /// refill, else returns None. Checked under the lock: every vGIC change
    /// bumps the generation while holding it.
    #[inline(always)]
    fn if_unchanged<R>(&self, f: impl FnOnce(&mut ferrovisor_vgic::Vgic) -> Option<R>) -> Option<R> {
        let mut vgic = self.vm.vgic.lock();
        if self.vm.vgic_gen.load(Ordering::Acquire) != self.seen_gen {
            return None;
        }
        f(&mut vgic)
    }

    /// [`Vcpu::inject_now`] when the guest completed some of the loaded
    /// interrupts (`completed`, LR bits) since the last refill: they are
    /// handed back first and their LRs reused or cleared. Out of line, so
    /// the path without completions stays short.
    #[inline(never)]
    fn inject_after_completions(&mut self, intid: u32, completed: u16) -> bool {
        let live = self.lr_live & !completed;
        let free = !live & self.lr_mask;
        if free == 0 {
            return false;
        }
        let (index, vm) = (self.index, &self.vm);
        let value = self.if_unchanged(|vgic| {
            let mut bits = completed;
            let done = core::iter::from_fn(|| {
                let i = bits.trailing_zeros() as usize;
                bits &= bits.wrapping_sub(1);
                (i < MAX_LRS).then(|| gicv::read_lr(i))
            });
            let value =
                if vgic.retire_lrs(index, done) { vgic.raise_edge_into_lr(intid, index) } else { None };
            if value.is_none() {
                // The model may have taken the completions back: make sure
                // the next entry refills (it finds those LRs invalid, which
                // is consistent).
                vm.vgic_gen.fetch_add(1, Ordering::AcqRel);
            }
            value
        });
        let Some(value) = value else { return false };
        let i = free.trailing_zeros() as usize;
        // The retired LRs are cleared: one left invalid with its EOI bit
        // would keep the maintenance interrupt asserted.
        let mut stale = completed & !(1 << i);
        while stale != 0 {
            gicv::write_lr(stale.trailing_zeros() as usize, 0);
            stale &= stale - 1;
        }
        gicv::write_lr(i, value);
        self.lr_live = live | (1 << i);
        true
    }

    /// Saves the pCPU's EL1, FP and GIC state into this vCPU.
    pub fn save(&mut self) {
        guest::save_el1(&mut self.el1);
        guest::save_fp(&mut self.fp);
        let n = gicv::lr_count();
        for (i, lr) in self.lrs.iter_mut().enumerate().take(n) {
            *lr = gicv::read_lr(i);
        }
        let kicks = {
            let mut vgic = self.vm.vgic.lock();
            vgic.sync_lrs(self.index, &mut self.lrs[..n]);
            vgic.take_kicks()
        };
        gicv::save(&mut self.gic);
        self.seen_gen = u64::MAX;
        self.hand_out_kicks(kicks);
        // A stopped or paused guest may not exit again for long: say now how
        // many of its fault reports were held back.
        if !self.watch.is_quiet() && self.vm.state() != super::VmState::Running {
            super::faults::flush(self);
        }
    }

    /// Whether the guest has an interrupt it could take now (WFI completes).
    pub fn has_deliverable(&self) -> bool {
        self.vm.vgic.lock().has_deliverable(self.index)
    }
}

impl GuestCpus for Vm {
    fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }

    fn power(&self, vcpu: usize) -> VcpuPower {
        self.vcpus.get(vcpu).map_or(VcpuPower::Off, |v| *v.power.lock())
    }

    fn mpidr(&self, vcpu: usize) -> u64 {
        ferrovisor_psci::vmpidr(vcpu)
    }

    fn entry_valid(&self, entry: u64) -> bool {
        self.in_ram(entry)
    }
}
