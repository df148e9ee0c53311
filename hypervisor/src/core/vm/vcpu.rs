//! A vCPU's private state, owned by the run queue of its pCPU.

use super::Vm;
use crate::arch::aarch64::guest::{self, El1Regs, FpRegs, VcpuRegs, PSTATE_EL1H_MASKED};
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use ferrovisor_psci::{GuestCpus, VcpuPower};

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
    /// The guest epoch this state belongs to.
    pub epoch: u32,
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
            epoch: 0,
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
    }

    /// Whether the vCPU may run now, after applying pending resets and
    /// PSCI starts.
    pub fn prepare(&mut self) -> bool {
        let epoch = self.vm.epoch.load(Ordering::Acquire);
        if epoch != self.epoch {
            self.epoch = epoch;
            self.reset(0, 0);
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
        let on = *shared.power.lock() == VcpuPower::On;
        on
    }

    /// Loads this vCPU's EL1, FP and stage-2 state onto the running pCPU.
    pub fn load(&self) {
        guest::load_el1(&self.el1);
        guest::load_fp(&self.fp);
        guest::load_stage2(
            ferrovisor_stage2::VTCR_EL2,
            self.vm.vttbr,
            ferrovisor_psci::vmpidr(self.index),
            0,
        );
    }

    /// Saves the pCPU's EL1 and FP state into this vCPU.
    pub fn save(&mut self) {
        guest::save_el1(&mut self.el1);
        guest::save_fp(&mut self.fp);
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
