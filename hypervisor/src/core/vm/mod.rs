//! Running guests (VMs): their shared state, vCPUs, memory and devices.
//!
//! A [`Vm`] is shared (`Arc`) between the pCPUs that run its vCPUs and the
//! shell. Each [`vcpu::Vcpu`] (register file, EL1 and FP state) is owned by
//! the run queue of the one pCPU it is pinned to, so only that pCPU ever
//! touches it. Everything other CPUs may look at or change lives in atomics
//! or behind short locks in [`Vm`] and [`VcpuShared`].

pub mod assign;
pub mod build;
pub mod console;
pub mod control;
pub mod devices;
pub mod dma;
pub mod error;
pub mod exit;
pub mod fast;
pub mod faults;
#[cfg(ferrovisor_profile_markers)]
mod markers;
pub mod scmi;
pub mod vcpu;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use ferrovisor_config::{GuestConfig, PassthroughConfig};
use ferrovisor_psci::VcpuPower;
use ferrovisor_stage2::Stage2;
use ferrovisor_sync::{Mutex, RwLock};
use ferrovisor_types::{GuestPhysAddr, HostRegion, PcpuId, VcpuId};
use ferrovisor_vgic::{Effect, Effects, ForwardTable, SharedVgic, Vgic, VgicConfig};

use crate::platform::hostram::HostRam;

/// A guest's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum VmState {
    /// Not running: never started, powered off, or stopped by the shell.
    Stopped = 0,
    /// vCPUs run.
    Running = 1,
    /// vCPUs are held; `resume` continues where they were.
    Paused = 2,
}

impl VmState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => VmState::Running,
            2 => VmState::Paused,
            _ => VmState::Stopped,
        }
    }

    /// Whether the guest takes interrupts now: forwarded device
    /// interrupts are raised in its vGIC while it runs or is paused (a
    /// paused guest finds them pending when it resumes); a stopped guest's
    /// are dropped and their host interrupt disabled.
    #[inline(always)]
    pub fn receives_interrupts(self) -> bool {
        matches!(self, VmState::Running | VmState::Paused)
    }

    /// The name the shell prints.
    pub fn name(self) -> &'static str {
        match self {
            VmState::Stopped => "stopped",
            VmState::Running => "running",
            VmState::Paused => "paused",
        }
    }
}

/// Why vCPUs exit, for accounting (`vcpu list`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum ExitReason {
    /// A physical interrupt for the hypervisor arrived (tick, IPI, console).
    Irq = 0,
    /// A passed-through device's interrupt, forwarded to a guest.
    Forwarded,
    /// A GIC maintenance interrupt (list registers to refill, a level
    /// interrupt's EOI).
    Maintenance,
    /// An emulated MMIO access (vUART, ...).
    Mmio,
    /// An access to an unmapped guest address (abort injected).
    Fault,
    /// HVC (PSCI, SMCCC).
    Hvc,
    /// SMC trapped (treated like HVC).
    Smc,
    /// WFI/WFE.
    Wfx,
    /// A trapped system register access.
    SysReg,
    /// Anything else (undefined instruction injected).
    Other,
}

/// Number of exit reasons.
pub const EXIT_REASONS: usize = 10;

/// Short names of the exit reasons, in order.
pub const EXIT_NAMES: [&str; EXIT_REASONS] =
    ["irq", "fwd", "maint", "mmio", "fault", "hvc", "smc", "wfx", "sysreg", "other"];

/// What other CPUs may read or change about one vCPU.
pub struct VcpuShared {
    /// The pCPU the vCPU is pinned to.
    pub pcpu: PcpuId,
    /// The `ICC_SGI1R_EL1` value that kicks that pCPU.
    pub kick: u64,
    /// PSCI power state.
    pub power: Mutex<VcpuPower>,
    /// A pending CPU_ON (entry point, context id) for the owning pCPU.
    pub start: Mutex<Option<(u64, u64)>>,
    /// Whether the vCPU is inside the guest right now (or about to enter).
    pub running: AtomicBool,
    /// Exits by reason.
    pub exits: [AtomicU64; EXIT_REASONS],
    /// Denied accesses: count, and whether the vCPU is stuck re-taking one.
    pub faults: faults::FaultState,
    /// Times the vCPU was loaded onto its pCPU (scheduled in): more than
    /// one means it was descheduled in between.
    pub loads: AtomicU64,
}

impl VcpuShared {
    fn new(pcpu: PcpuId) -> Self {
        Self {
            pcpu,
            kick: crate::core::cpus::kick_value(pcpu),
            power: Mutex::new(VcpuPower::Off),
            start: Mutex::new(None),
            running: AtomicBool::new(false),
            exits: [const { AtomicU64::new(0) }; EXIT_REASONS],
            faults: faults::FaultState::new(),
            loads: AtomicU64::new(0),
        }
    }

    /// Counts one exit. Only the pCPU the vCPU is pinned to counts its
    /// exits, so a plain load and store suffice (no read-modify-write
    /// loop on the exit path); readers on other CPUs see whole values.
    #[inline(always)]
    pub fn count(&self, reason: ExitReason) {
        #[cfg(ferrovisor_profile_markers)]
        markers::exit(reason);
        if let Some(c) = self.exits.get(reason as usize) {
            c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
    }

    /// Exits so far for `reason`.
    pub fn exits_for(&self, reason: ExitReason) -> u64 {
        self.exits.get(reason as usize).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// All exits so far.
    pub fn total_exits(&self) -> u64 {
        self.exits.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// One slab of guest RAM: where the guest sees it and the host RAM behind it.
pub struct RamSlab {
    /// Guest-physical base.
    pub gpa: GuestPhysAddr,
    /// The host RAM (owned): given back to the allocator when the slab
    /// goes, so a guest whose build failed half-way leaves nothing behind.
    pub host: HostRam,
    /// Whether guest-physical equals host-physical.
    pub identity: bool,
}

/// Memory of a guest: its stage-2 tables and the RAM behind them.
pub struct VmMemory {
    /// Stage-2 translation.
    pub stage2: Stage2,
    /// RAM slabs, in config order.
    pub ram: Vec<RamSlab>,
}

/// A guest at run time.
pub struct Vm {
    /// Index in the VM table.
    pub id: usize,
    /// Its name (config node name).
    pub name: String,
    /// The validated config it was built from.
    pub config: GuestConfig,
    /// VMID tagging its TLB entries.
    pub vmid: u16,
    /// VTTBR_EL2 value (root table and VMID).
    pub vttbr: u64,
    state: AtomicU8,
    /// Bumped on every (re)start: vCPUs seeing a new epoch reset their state.
    pub epoch: AtomicU32,
    /// Per-vCPU shared state.
    pub vcpus: Vec<Arc<VcpuShared>>,
    /// The emulated UART, if configured (also on `mmio`).
    pub vuart: Option<Arc<devices::vuart::Vuart>>,
    /// Emulated devices (vGIC frames, vUART, ...) by guest-physical window;
    /// fixed once the guest is built.
    pub mmio: devices::Bus,
    /// The virtual GICv3 (distributor, redistributors, interrupt state),
    /// shared by the vCPUs' pCPUs. Change it through [`Vm::vgic_update`],
    /// which tells the vCPUs and carries out the effects.
    pub vgic: SharedVgic,
    /// Stage-2 tables and RAM.
    pub memory: Mutex<VmMemory>,
    /// Host regions of its RAM (for PSCI entry checks), fixed after build.
    pub ram_ranges: Vec<(GuestPhysAddr, HostRegion)>,
    /// Why the guest cannot start, if it cannot (no kernel image, ...).
    pub unbootable: Option<String>,
    /// A reset requested by the guest (PSCI SYSTEM_RESET), served by cpu0.
    pub reset_requested: AtomicBool,
    /// Its SCMI agent, if its devices have clocks, power domains or resets.
    pub scmi: Option<scmi::Agent>,
    /// Its DMA context behind the SMMU, if a device of it is behind one.
    pub dma: Option<dma::DmaContext>,
    /// The trapped DMA address register pages of its pass-throughs with
    /// `dma-registers`, by config index (also on `mmio`).
    pub dma_traps: Vec<(usize, Arc<devices::dmaregs::DmaRegisterTrap>)>,
    /// Its forwarded interrupts (host to guest INTID), from the config:
    /// the one table the exit fast path, the slow path, the vGIC links and
    /// the shell use. The interrupts of a device it does not have now are
    /// in it, switched off.
    pub forwards: ForwardTable,
    /// Which of its config's pass-throughs it has now (by index): all but
    /// the `standby` ones at boot; `passthrough assign` moves devices
    /// (`assign`). Changed only while none of its vCPUs runs.
    assigned: Vec<AtomicBool>,
}

impl Vm {
    /// The current lifecycle state.
    pub fn state(&self) -> VmState {
        VmState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Changes the lifecycle state.
    pub fn set_state(&self, state: VmState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Applies what a vGIC change asks of the hypervisor: kick the pCPUs of
    /// vCPUs that have something new to take.
    pub fn apply(&self, fx: &mut Effects) {
        use crate::platform::gicv3;
        for e in fx.drain() {
            match e {
                Effect::Kick { vcpu } => {
                    if let Some(v) = self.vcpus.get(vcpu.index()) {
                        crate::core::cpus::kick(v.pcpu);
                    }
                }
                // The guest enabled, disabled, re-routed or dropped a
                // passed-through interrupt: mirror it on the physical GIC.
                Effect::HwEnable { pintid, enable } => {
                    let _ = gicv3::set_enabled(pintid, enable);
                }
                Effect::HwRoute { pintid, vcpu } => {
                    if let Some(v) = self.vcpus.get(vcpu.index()) {
                        let _ = gicv3::route(pintid, crate::core::cpus::mpidr_of(v.pcpu.index()));
                    }
                }
                Effect::HwDeactivate { pintid } => gicv3::deactivate(pintid),
                // Physical priority and trigger stay as the hypervisor set
                // them (the host DT's trigger; one priority for all
                // forwarded interrupts); the guest's values order virtual
                // delivery only.
                Effect::HwPriority { .. } | Effect::HwConfig { .. } => {}
            }
        }
    }

    /// Changes the vGIC: runs `f` under its lock, tells the vCPUs that it
    /// changed, and applies the effects (kicks, physical GIC updates).
    pub fn vgic_update<R>(&self, f: impl FnOnce(&mut Vgic, &mut Effects) -> R) -> R {
        let mut fx = Effects::default();
        let r = self.vgic.update(&mut fx, f);
        self.apply(&mut fx);
        r
    }

    /// [`Vm::vgic_update`] for a change to `vcpu`'s own SGIs or PPIs (its
    /// virtual timer): only `vcpu`'s list registers can depend on it, so
    /// only its generation moves and the other vCPUs keep their fast path.
    pub fn vgic_update_for<R>(&self, vcpu: VcpuId, f: impl FnOnce(&mut Vgic, &mut Effects) -> R) -> R {
        let mut fx = Effects::default();
        let r = self.vgic.update_for(vcpu, &mut fx, f);
        self.apply(&mut fx);
        r
    }

    /// Moves the SGIs other vCPUs (or `vcpu` itself) sent to `vcpu` into
    /// the vGIC; called on `vcpu`'s own pCPU only (ferrovisor_vgic::shared).
    #[inline(always)]
    pub fn take_sgis(&self, vcpu: VcpuId) {
        if self.vgic.has_mail(vcpu) {
            self.take_sgis_slow(vcpu);
        }
    }

    #[inline(never)]
    fn take_sgis_slow(&self, vcpu: VcpuId) {
        let mut fx = Effects::default();
        if self.vgic.take_sgis(vcpu, &mut fx) {
            self.apply(&mut fx);
        }
    }

    /// SGIs taken from `vcpu`'s mailbox that did not go straight into its
    /// list registers: pending in the model, for the refill.
    #[cold]
    #[inline(never)]
    pub fn receive_sgis(&self, vcpu: VcpuId, sgis: u16) {
        let mut fx = Effects::default();
        self.vgic.receive(vcpu, sgis, &mut fx);
        self.apply(&mut fx);
    }

    /// A write of `value` to `ICC_SGI1R_EL1` by `sender`: the SGI goes into
    /// the targets' mailboxes without the vGIC's lock, and the other
    /// targets' pCPUs are kicked. True if `sender` is a target itself (it
    /// takes its mail on its way back into the guest).
    pub fn send_sgi(&self, sender: VcpuId, value: u64) -> bool {
        let targets = self.vgic.post_sgi1r(sender, value);
        let me = 1u32.checked_shl(sender.index() as u32).unwrap_or(0);
        self.kick_vcpus(targets & !me);
        targets & me != 0
    }

    /// Kicks the pCPUs of the vCPUs in `vcpus` (bit `i`: vCPU `i`), so that
    /// they refill their list registers or wake from WFI.
    #[inline(always)]
    pub fn kick_vcpus(&self, vcpus: u32) {
        if vcpus != 0 {
            self.kick_each(vcpus);
        }
    }

    #[inline(never)]
    fn kick_each(&self, vcpus: u32) {
        let me = crate::core::cpus::current();
        let mut left = vcpus;
        while left != 0 {
            if let Some(v) = self.vcpus.get(left.trailing_zeros() as usize).filter(|v| v.pcpu != me) {
                crate::platform::gicv3::send_sgi_value(v.kick);
            }
            left &= left - 1;
        }
    }

    /// The vGIC's shape for this guest.
    pub fn vgic_config(&self) -> VgicConfig {
        vgic_config(self.vcpus.len())
    }

    /// Whether the guest has pass-through `index` (of its config) now.
    pub fn has_device(&self, index: usize) -> bool {
        self.assigned.get(index).is_some_and(|a| a.load(Ordering::Acquire))
    }

    /// Gives pass-through `index` to the guest or takes it away: its DT,
    /// mappings and forwarded interrupts follow (callers: `build`,
    /// `assign`).
    fn set_device(&self, index: usize, on: bool) {
        if let Some(a) = self.assigned.get(index) {
            a.store(on, Ordering::Release);
        }
        self.forwards.set_device(index, on);
    }

    /// The pass-throughs the guest has now, with their config index.
    pub fn devices(&self) -> impl Iterator<Item = (usize, &PassthroughConfig)> + '_ {
        self.config.passthrough.iter().enumerate().filter(|(i, _)| self.has_device(*i))
    }

    /// The index of the pass-through of host device `path` in its config.
    pub fn listing(&self, path: &str) -> Option<usize> {
        self.config.passthrough.iter().position(|pt| pt.host_device.as_deref() == Some(path))
    }

    /// The host address of guest range `[gpa, gpa + len)` if it lies in
    /// one RAM region of this guest.
    pub fn host_range(&self, gpa: u64, len: u64) -> Option<u64> {
        let end = gpa.checked_add(len)?;
        self.ram_ranges.iter().find_map(|(base, host)| {
            let offset = gpa.checked_sub(base.raw())?;
            (end - base.raw() <= host.size).then(|| host.base.raw() + offset)
        })
    }

    /// Whether `gpa` lies in this guest's RAM.
    pub fn in_ram(&self, gpa: u64) -> bool {
        self.ram_ranges.iter().any(|(base, host)| gpa >= base.raw() && gpa - base.raw() < host.size)
    }
}

/// One summary line: name, state, vCPUs, RAM, pass-through devices (used by
/// the boot banner and `guest list`).
impl core::fmt::Display for Vm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mem: u64 = self.config.memory.iter().map(|m| m.size).sum();
        write!(
            f,
            "{:<16} {:<10} vcpus {} memory {} MiB, {} pass-through device(s)",
            self.name,
            self.state().name(),
            self.vcpus.len(),
            mem >> 20,
            self.devices().count()
        )
    }
}

/// SPIs every guest's vGIC has: the config binding's number (the validator
/// refuses guest INTIDs beyond it).
pub const VGIC_SPIS: u32 = ferrovisor_config::GUEST_SPIS;

/// The vGIC shape for a guest with `vcpus` vCPUs, at the host GIC's
/// addresses (where the generated guest DT places it).
pub fn vgic_config(vcpus: usize) -> VgicConfig {
    let (dist, redist) = crate::core::host::gic_layout();
    VgicConfig { vcpus, spis: VGIC_SPIS, dist_base: dist, redist_base: redist }
}

static VMS: RwLock<Vec<Arc<Vm>>> = RwLock::new(Vec::new());

/// Adds a built VM to the table.
pub fn register(vm: Arc<Vm>) {
    // IRQs masked: forwarded interrupts look VMs up (`by_id`) in their
    // handler, which must not find this CPU holding the write lock.
    crate::arch::aarch64::cpu::without_irqs(|| VMS.write().push(vm));
}

/// All VMs, in config order.
pub fn all() -> Vec<Arc<Vm>> {
    VMS.read().clone()
}

/// The VM called `name`.
pub fn by_name(name: &str) -> Option<Arc<Vm>> {
    VMS.read().iter().find(|v| v.name == name).cloned()
}

/// The VM whose [`Vm::id`] is `id` (a guest that failed to build has no
/// entry, so ids are not table indices).
pub fn by_id(id: usize) -> Option<Arc<Vm>> {
    VMS.read().iter().find(|v| v.id == id).cloned()
}
