//! Physical CPUs: numbering, bring-up with PSCI CPU_ON, IPIs, idle.
//!
//! The boot CPU is index 0; the others follow in host DT order. Each CPU's
//! GIC redistributor frame is its position in the host DT's /cpus (QEMU virt
//! lays redistributors out in that order).

use crate::arch::aarch64::boot::{secondary_entry_addr, MAX_CPUS};
use crate::arch::aarch64::{cpu, gicv, psci, timer};
use crate::core::irq::{self, Outcome};
use crate::core::{power, ticks};
use crate::platform::gicv3;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use ferrovisor_types::{HostIrq, PcpuId};
use ferrovisor_vgic::sgi1r_value;

struct Slot {
    mpidr: AtomicU64,
    /// The `ICC_SGI1R_EL1` value that kicks this CPU (computed with its
    /// MPIDR).
    kick: AtomicU64,
    gicr: AtomicUsize,
    online: AtomicBool,
    kicks: AtomicU64,
}

static SLOTS: [Slot; MAX_CPUS] = [const {
    Slot {
        mpidr: AtomicU64::new(0),
        kick: AtomicU64::new(0),
        gicr: AtomicUsize::new(0),
        online: AtomicBool::new(false),
        kicks: AtomicU64::new(0),
    }
}; MAX_CPUS];
static COUNT: AtomicUsize = AtomicUsize::new(1);
/// vCPUs pinned to each pCPU (placed there for good when their guest was
/// built).
static PINNED: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
static VTIMER_FIRED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// The guests' virtual timer (PPI 27) and the GIC maintenance interrupt
/// (PPI 25), as the host sees them.
const VTIMER_PPI: HostIrq = HostIrq::of::<{ ferrovisor_types::platform::VTIMER_INTID }>();
/// The GIC maintenance interrupt's INTID.
pub const MAINTENANCE_PPI: HostIrq = HostIrq::of::<{ ferrovisor_types::platform::MAINTENANCE_INTID }>();

/// The loaded guest's virtual timer fired on this pCPU: mask it (the guest
/// gets a virtual interrupt and re-arms it) and note it for the scheduler.
fn on_vtimer(_: HostIrq) -> Outcome {
    let ctl = gicv::read_cntv_ctl();
    gicv::write_cntv_ctl(ctl | gicv::CNTV_IMASK);
    if let Some(f) = VTIMER_FIRED.get(cpu::index()) {
        f.store(true, Ordering::Release);
    }
    Outcome::Done
}

/// Switches off a masked virtual timer left in the hardware by the last
/// saved vCPU; called before the pCPU sleeps, with no guest loaded.
///
/// The hardware copy only serves to wake the pCPU for a saved vCPU (the
/// guest's own view is in its saved registers), and a masked timer cannot
/// do that: it is one that fired ([`on_vtimer`] masked it) or that its guest
/// masked. Left enabled it is worse than useless under QEMU's
/// `-icount sleep=off`: with every CPU asleep, QEMU warps the clock to the
/// next timer deadline, which for a fired and masked timer is the end of
/// time, and spins there (this hung the shell after a guest powered off).
pub fn quiet_masked_vtimer() {
    let on_and_masked = gicv::CNTV_ENABLE | gicv::CNTV_IMASK;
    if gicv::read_cntv_ctl() & on_and_masked == on_and_masked {
        gicv::write_cntv_ctl(0);
    }
}

/// Whether the virtual timer fired on this pCPU since the last call.
pub fn take_vtimer_fired() -> bool {
    VTIMER_FIRED.get(cpu::index()).is_some_and(|f| f.swap(false, Ordering::AcqRel))
}

/// The maintenance interrupt only needs to make the guest exit; the
/// scheduler then refills the list registers.
fn on_maintenance(_: HostIrq) -> Outcome {
    Outcome::Done
}
static TIMER_IRQ: AtomicU64 = AtomicU64::new(26);

/// The outcome of numbering the host's CPUs.
pub struct Plan {
    /// CPUs in the host DT beyond `MAX_CPUS`, left off.
    pub ignored: usize,
    /// Whether the boot CPU was found in the host DT.
    pub boot_found: bool,
}

/// Numbers the CPUs from the host DT's list of MPIDRs.
pub fn plan(mpidrs: &[u64]) -> Plan {
    let boot = cpu::mpidr();
    let boot_pos = mpidrs.iter().position(|&m| m == boot);
    SLOTS[0].mpidr.store(boot, Ordering::Relaxed);
    SLOTS[0].kick.store(sgi1r_value(irq::SGI_KICK.raw(), boot), Ordering::Relaxed);
    SLOTS[0].gicr.store(boot_pos.unwrap_or(0), Ordering::Relaxed);
    let mut next = 1;
    let mut ignored = 0;
    for (pos, &m) in mpidrs.iter().enumerate() {
        if Some(pos) == boot_pos {
            continue;
        }
        match SLOTS.get(next) {
            Some(slot) => {
                slot.mpidr.store(m, Ordering::Relaxed);
                slot.kick.store(sgi1r_value(irq::SGI_KICK.raw(), m), Ordering::Relaxed);
                slot.gicr.store(pos, Ordering::Relaxed);
                next += 1;
            }
            None => ignored += 1,
        }
    }
    COUNT.store(next, Ordering::Relaxed);
    Plan { ignored, boot_found: boot_pos.is_some() }
}

/// CPUs the hypervisor manages.
pub fn count() -> usize {
    COUNT.load(Ordering::Relaxed)
}

/// The GIC redistributor frame of CPU `index`.
pub fn gicr_index(index: usize) -> usize {
    SLOTS.get(index).map_or(0, |s| s.gicr.load(Ordering::Relaxed))
}

/// The affinity of CPU `index`.
pub fn mpidr_of(index: usize) -> u64 {
    SLOTS.get(index).map_or(0, |s| s.mpidr.load(Ordering::Relaxed))
}

/// Whether CPU `index` has come online.
pub fn is_online(index: usize) -> bool {
    SLOTS.get(index).is_some_and(|s| s.online.load(Ordering::Acquire))
}

/// CPUs online now.
pub fn online_count() -> usize {
    (0..count()).filter(|&i| is_online(i)).count()
}

/// Kicks (IPIs) CPU `index` has received.
pub fn kicks(index: usize) -> u64 {
    SLOTS.get(index).map_or(0, |s| s.kicks.load(Ordering::Relaxed))
}

fn on_kick(_: HostIrq) -> Outcome {
    note_kick();
    Outcome::Done
}

/// What a kick does on the CPU that receives it (the IRQ handler, and the
/// exit fast path, which takes kicks itself): counts it and wakes a
/// waiter in WFE.
pub fn note_kick() {
    if let Some(slot) = SLOTS.get(cpu::index()) {
        // Only this CPU writes its count: a plain load and store (the
        // release orders it for the CPU that waits for it to change).
        slot.kicks.store(slot.kicks.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
    }
    cpu::send_event();
}

fn on_timer(_: HostIrq) -> Outcome {
    ticks::on_tick();
    Outcome::Done
}

/// Per-CPU interrupt setup shared by the boot CPU and the secondaries.
fn init_local_interrupts(index: usize) {
    let gicr = gicr_index(index);
    let mpidr = mpidr_of(index);
    let timer_irq = u32::try_from(TIMER_IRQ.load(Ordering::Relaxed)).ok().and_then(HostIrq::new);
    if gicv3::enable(irq::SGI_KICK, gicr, mpidr, 0x80, true).is_err()
        || timer_irq.is_none_or(|t| gicv3::enable(t, gicr, mpidr, 0x80, false).is_err())
        || gicv3::enable(VTIMER_PPI, gicr, mpidr, 0x80, false).is_err()
        || gicv3::enable(MAINTENANCE_PPI, gicr, mpidr, 0x80, false).is_err()
    {
        log::error!("cpu{index}: could not enable its IPI, timer and guest interrupts");
    }
    crate::arch::aarch64::gicv::enable_for_guests();
    ticks::start();
    if let Some(slot) = SLOTS.get(index) {
        slot.online.store(true, Ordering::Release);
    }
    cpu::send_event();
}

/// Registers the IPI and timer handlers and sets up the boot CPU.
pub fn init_boot_cpu(hyp_timer: HostIrq) {
    TIMER_IRQ.store(hyp_timer.raw() as u64, Ordering::Relaxed);
    irq::register(irq::SGI_KICK, on_kick);
    irq::register(hyp_timer, on_timer);
    irq::register(VTIMER_PPI, on_vtimer);
    irq::register(MAINTENANCE_PPI, on_maintenance);
    init_local_interrupts(0);
}

/// Starts every other CPU with PSCI CPU_ON; returns how many calls failed.
pub fn start_secondaries() -> usize {
    let mut failed = 0;
    for index in 1..count() {
        let mpidr = mpidr_of(index);
        if let Err(e) = psci::cpu_on(power::conduit(), mpidr, secondary_entry_addr(), index as u64) {
            log::error!("cpu{index} (mpidr {mpidr:#x}): PSCI CPU_ON failed: {e:?}");
            failed += 1;
        }
    }
    failed
}

/// Waits up to `seconds` for every CPU to come online.
pub fn wait_online(seconds: u64) -> usize {
    let deadline = timer::now() + seconds * timer::frequency();
    // WFE: a CPU that comes online sends an event; the tick bounds the wait.
    while online_count() < count() && timer::now() < deadline {
        cpu::wait_for_event();
    }
    online_count()
}

/// Sends one IPI to every other online CPU and waits for each to take it.
/// Returns the number of CPUs that answered.
pub fn ipi_check() -> usize {
    let mut answered = 0;
    for index in (0..count()).filter(|&i| i != cpu::index() && is_online(i)) {
        let before = kicks(index);
        if gicv3::send_sgi(irq::SGI_KICK.raw(), mpidr_of(index)).is_err() {
            continue;
        }
        let deadline = timer::now() + timer::frequency();
        while kicks(index) == before && timer::now() < deadline {
            cpu::wait_for_event();
        }
        if kicks(index) != before {
            answered += 1;
        } else {
            log::warn!("cpu{index} did not take an IPI within 1 s");
        }
    }
    answered
}

/// Brings up a secondary CPU once it has a stack and the MMU on (its GIC
/// CPU interface and local interrupts); parks it if it cannot serve.
pub fn secondary_start(index: usize) {
    if index >= count() {
        power::park();
    }
    if gicv3::init_cpu(gicr_index(index)).is_err() {
        log::error!("cpu{index}: GIC CPU interface did not come up");
        power::park();
    }
    init_local_interrupts(index);
}

/// The `ICC_SGI1R_EL1` value that kicks `pcpu` (for callers that keep it
/// at hand, such as a vCPU's sender side).
pub fn kick_value(pcpu: PcpuId) -> u64 {
    SLOTS.get(pcpu.index()).map_or(0, |s| s.kick.load(Ordering::Relaxed))
}

/// Makes `pcpu` look at its run queue and its vCPUs' interrupts again: an
/// IPI that exits a running guest or wakes an idle pCPU. Nothing for the
/// calling CPU itself (it looks before its next entry anyway).
pub fn kick(pcpu: PcpuId) {
    if pcpu.index() == cpu::index() {
        return;
    }
    if let Some(slot) = SLOTS.get(pcpu.index()) {
        gicv3::send_sgi_value(slot.kick.load(Ordering::Relaxed));
    }
}

/// The CPU this runs on.
pub fn current() -> PcpuId {
    // Only CPUs below the limit leave the boot code (the others park).
    PcpuId::new(cpu::index()).unwrap_or(PcpuId::of::<0>())
}

/// Counts one more vCPU pinned to `pcpu`.
pub fn note_pinned(pcpu: PcpuId) {
    if let Some(p) = PINNED.get(pcpu.index()) {
        p.fetch_add(1, Ordering::AcqRel);
    }
}

/// How many vCPUs are pinned to `pcpu`.
pub fn pinned(pcpu: PcpuId) -> usize {
    PINNED.get(pcpu.index()).map_or(0, |p| p.load(Ordering::Acquire))
}
