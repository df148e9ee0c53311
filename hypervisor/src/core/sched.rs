//! The per-pCPU scheduler: every pCPU runs the vCPUs pinned to it, round
//! robin with a time slice, and sleeps in WFI when none can run.
//!
//! A vCPU is taken out of its run queue while it runs, so the queue lock is
//! never held across guest execution. The boot CPU also serves the shell and
//! guest reset requests between slices.
//!
//! vCPUs are pinned for good when their guest is created, so each pCPU knows
//! how many it serves. A pCPU with one vCPU is *dedicated*: it runs without
//! the hypervisor tick (no slices to end) and without trapping the guest's
//! WFI, so the guest stays loaded while it sleeps and only its own
//! interrupts and accesses cause exits (docs/architecture.md).

use crate::arch::aarch64::boot::MAX_CPUS;
use crate::arch::aarch64::{cpu, guest};
use crate::core::vm::exit::{self, Next};
use crate::core::vm::vcpu::Vcpu;
use crate::core::vm::ExitReason;
use crate::core::{cpus, ticks};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::sync::atomic::Ordering;
use ferrovisor_sync::Mutex;

/// A run queue.
type Queue = Mutex<VecDeque<Box<Vcpu>>>;

static RUNQ: [Queue; MAX_CPUS] = [const { Mutex::new(VecDeque::new()) }; MAX_CPUS];

/// Puts a vCPU on its pCPU's run queue, for good.
pub fn enqueue(vcpu: Box<Vcpu>) {
    let pcpu = vcpu.shared().pcpu;
    if let Some(q) = RUNQ.get(pcpu.index()) {
        q.lock().push_back(vcpu);
        cpus::note_pinned(pcpu);
        cpus::kick(pcpu);
    }
}

/// Hook run by the boot CPU between slices (shell input, reset requests).
pub type Housekeeping = fn();

/// The scheduling loop of one pCPU; never returns.
pub fn run(housekeeping: Option<Housekeeping>) -> ! {
    let me = cpu::index();
    let Some(queue) = RUNQ.get(me) else { crate::core::power::park() };
    loop {
        if let Some(work) = housekeeping {
            work();
        }
        // Slices exist only between two or more vCPUs.
        ticks::set_periodic(cpus::pinned(cpus::current()) > 1);
        let mut picked = None;
        {
            let mut q = queue.lock();
            for _ in 0..q.len() {
                let Some(mut v) = q.pop_front() else { break };
                if v.prepare() {
                    picked = Some(v);
                    break;
                }
                q.push_back(v);
            }
        }
        match picked {
            Some(mut v) => {
                let waiting = run_slice(&mut v);
                let mut q = queue.lock();
                let alone = !q.iter_mut().any(|other| other.prepare());
                q.push_back(v);
                drop(q);
                // A vCPU in WFI with nobody else to run: sleep until the next
                // interrupt. Whatever can make a waiting vCPU runnable comes
                // with one: its timer (armed in hardware while saved), a
                // forwarded interrupt, or a kick from the CPU that changed
                // its vGIC or state. On a pCPU with several vCPUs the tick
                // bounds the wait too. WFI may end early by the
                // architecture, so the loop re-checks.
                if waiting && alone {
                    idle_once();
                }
            }
            None => idle_once(),
        }
    }
}

/// Sleeps until an interrupt, then handles it.
fn idle_once() {
    cpu::irq_disable();
    crate::core::cpus::quiet_masked_vtimer();
    cpu::wait_for_interrupt();
    cpu::irq_enable();
    cpu::irq_disable();
}

/// Runs `v` until its slice ends, it yields, or it cannot run any more.
/// Returns whether it stopped because it waits for an interrupt (WFI).
fn run_slice(v: &mut Vcpu) -> bool {
    let mut waiting = false;
    let start_tick = ticks::count(cpu::index());
    let dedicated = cpus::pinned(cpus::current()) == 1;
    v.load(dedicated);
    let shared = v.shared.clone();
    shared.loads.fetch_add(1, Ordering::Relaxed);
    crate::core::cpus::take_vtimer_fired();
    loop {
        shared.running.store(true, Ordering::Release);
        if v.vm.state() != crate::core::vm::VmState::Running {
            shared.running.store(false, Ordering::Release);
            break;
        }
        v.refresh_lrs();
        let vector = guest::run(&mut *v);
        let next = match vector {
            guest::ExitVector::Sync => exit::handle_sync(v),
            // The fast path (vm::fast) acknowledged, handled and counted
            // the interrupt; what is left is the loop's checks and the refill
            // of the list registers.
            guest::ExitVector::Irq => Next::Resume,
            guest::ExitVector::Fiq | guest::ExitVector::SError => {
                shared.count(ExitReason::Other);
                log::warn!("guest {} vcpu{}: {:?} taken while it ran", v.vm.name, v.index, vector);
                Next::Resume
            }
        };
        shared.running.store(false, Ordering::Release);
        let slice_over = !dedicated && ticks::count(cpu::index()) != start_tick;
        match next {
            Next::Resume
                if !slice_over
                    && !crate::core::vm::control::service_wanted()
                    && v.vm.state() == crate::core::vm::VmState::Running => {}
            Next::Resume => break,
            Next::Yield if v.loaded_has_deliverable() => {}
            Next::Yield => {
                v.waiting = true;
                waiting = true;
                break;
            }
            Next::Stop => break,
        }
        if *v.shared().power.lock() != ferrovisor_psci::VcpuPower::On {
            break;
        }
    }
    v.save();
    waiting
}
