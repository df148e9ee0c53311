//! Reports of denied guest accesses: the log lines, the per-vCPU fault count
//! and the stuck flag the shell shows.
//!
//! Every exception the hypervisor injects for an access or instruction it
//! refuses goes through [`denied`]: it is counted ([`FaultState::count`],
//! `vcpu list`), reported on a line naming guest, vCPU, PC, address and
//! direction within the vCPU's rate limit, and watched for a vCPU stuck
//! re-taking it. The decisions are `ferrovisor_trap::watch`'s (tested on the
//! host); this file only reads the clock and the log level, and prints.
//!
//! The pCPU a vCPU is pinned to is the only writer of its [`FaultState`];
//! the shell reads it from another CPU. Faults take the full exit: nothing
//! here runs on the exit fast path.

use super::vcpu::Vcpu;
use super::{ExitReason, VcpuShared};
use crate::arch::aarch64::timer;
use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use ferrovisor_trap::watch::{BURST, PER_SECOND};
use ferrovisor_trap::{Access, FaultSite};

/// What other CPUs see of a vCPU's faults.
pub struct FaultState {
    /// Denied accesses so far (exceptions injected for them).
    count: AtomicU64,
    /// 0: not stuck; else the stuck site's access, [`access_code`].
    stuck: AtomicU8,
    stuck_pc: AtomicU64,
    stuck_addr: AtomicU64,
    /// Identical faults in a row so far.
    stuck_run: AtomicU64,
    /// The vCPU's progress counter while stuck ([`progress`]).
    stuck_progress: AtomicU64,
}

/// A vCPU re-taking the same fault, as the shell shows it.
pub struct Stuck {
    /// Where it faults.
    pub site: FaultSite,
    /// How many times in a row so far.
    pub run: u64,
}

/// "read from 0x.. at pc 0x.., N times in a row".
impl fmt::Display for Stuck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {} times in a row", SiteText(self.site), self.run)
    }
}

fn access_code(access: Access) -> u8 {
    match access {
        Access::Read => 1,
        Access::Write => 2,
        Access::Fetch => 3,
        Access::Undefined => 4,
    }
}

fn access_from(code: u8) -> Option<Access> {
    Some(match code {
        1 => Access::Read,
        2 => Access::Write,
        3 => Access::Fetch,
        4 => Access::Undefined,
        _ => return None,
    })
}

impl FaultState {
    /// No faults yet.
    pub const fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            stuck: AtomicU8::new(0),
            stuck_pc: AtomicU64::new(0),
            stuck_addr: AtomicU64::new(0),
            stuck_run: AtomicU64::new(0),
            stuck_progress: AtomicU64::new(0),
        }
    }

    /// Denied accesses so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The fault the vCPU is stuck at, unless it made progress since
    /// (`progress`: its [`progress`] counter now).
    pub fn stuck(&self, progress: u64) -> Option<Stuck> {
        let access = access_from(self.stuck.load(Ordering::Acquire))?;
        if self.stuck_progress.load(Ordering::Relaxed) != progress {
            return None;
        }
        let site = FaultSite {
            pc: self.stuck_pc.load(Ordering::Relaxed),
            addr: self.stuck_addr.load(Ordering::Relaxed),
            access,
        };
        Some(Stuck { site, run: self.stuck_run.load(Ordering::Relaxed) })
    }

    /// Forgets the stuck flag (the guest restarts).
    pub fn clear(&self) {
        self.stuck.store(0, Ordering::Release);
    }

    /// Single writer (the vCPU's pCPU): a plain load and store.
    fn bump(&self) {
        self.count.store(self.count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    fn publish(&self, site: FaultSite, run: u64, progress: u64) {
        self.stuck_pc.store(site.pc, Ordering::Relaxed);
        self.stuck_addr.store(site.addr, Ordering::Relaxed);
        self.stuck_run.store(run, Ordering::Relaxed);
        self.stuck_progress.store(progress, Ordering::Relaxed);
        self.stuck.store(access_code(site.access), Ordering::Release);
    }

    /// Mirrors the watch's stuck state after a fault or a poll.
    fn sync(&self, stuck: Option<(FaultSite, u64)>) {
        match stuck {
            Some((_, run)) => self.stuck_run.store(run, Ordering::Relaxed),
            None if self.stuck.load(Ordering::Relaxed) != 0 => self.clear(),
            None => {}
        }
    }
}

impl Default for FaultState {
    fn default() -> Self {
        Self::new()
    }
}

/// Exits the guest asked for and was served (emulated MMIO, hypercalls,
/// SMC, WFI/WFE, system registers): a vCPU whose count moved did something
/// else than re-take its fault. Interrupts do not count.
pub fn progress(s: &VcpuShared) -> u64 {
    [ExitReason::Mmio, ExitReason::Hvc, ExitReason::Smc, ExitReason::Wfx, ExitReason::SysReg]
        .iter()
        .fold(0u64, |sum, r| sum.wrapping_add(s.exits_for(*r)))
}

/// What a guest was refused, for its report line.
pub enum Denial<'a> {
    /// A load, store or fetch at a guest-physical address not mapped for
    /// the guest: an abort is injected.
    Unmapped {
        /// Read, write or fetch.
        access: Access,
        /// The guest-physical address.
        ipa: u64,
        /// The guest-virtual address (FAR), named when it differs.
        va: u64,
        /// Whether the syndrome described the instruction (ISV).
        syndrome: bool,
    },
    /// An instruction the hypervisor does not emulate: an undefined
    /// instruction exception is injected.
    Undefined(fmt::Arguments<'a>),
}

/// A fault site as report lines name it.
struct SiteText(FaultSite);

impl fmt::Display for SiteText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match s.access {
            Access::Undefined => write!(f, "undefined instruction at pc {:#x}", s.pc),
            a => write!(f, "{} {:#x} at pc {:#x}", a.phrase(), s.addr, s.pc),
        }
    }
}

/// Reports an access of the loaded vCPU that was refused at guest PC `pc`
/// (the exception is injected by the caller): counts it, logs it within the
/// rate limit, and flags the vCPU stuck if it keeps re-taking it.
pub fn denied(vcpu: &mut Vcpu, pc: u64, denial: Denial<'_>) {
    let shared = &vcpu.shared;
    shared.faults.bump();
    let (access, addr) = match denial {
        Denial::Unmapped { access, ipa, .. } => (access, ipa),
        Denial::Undefined(_) => (Access::Undefined, 0),
    };
    let site = FaultSite { pc, addr, access };
    let progress = progress(shared);
    let visible = log::log_enabled!(log::Level::Warn);
    let out = vcpu.watch.fault(site, progress, timer::now(), timer::frequency(), visible);
    let (name, index) = (&vcpu.vm.name, vcpu.index);
    if let Some(n) = out.summary {
        summary(name, index, n);
    }
    if out.report {
        match denial {
            Denial::Unmapped { access, ipa, va, syndrome } => log::warn!(
                "guest {name} vcpu{index}: {} {ipa:#x}{}{} at pc {pc:#x}: not mapped for this guest, abort injected",
                access.phrase(),
                VaText(va, ipa),
                if syndrome { "" } else { " (no instruction syndrome)" },
            ),
            Denial::Undefined(what) => {
                log::warn!("guest {name} vcpu{index}: {what} at pc {pc:#x}: undefined instruction injected")
            }
        }
    }
    if let Some(run) = out.stuck {
        shared.faults.publish(site, run, progress);
        log::warn!(
            "guest {name} vcpu{index}: stuck: {} failed {run} times in a row with nothing else done in between; \
             further identical faults are counted, not logged",
            SiteText(site)
        );
    } else {
        shared.faults.sync(vcpu.watch.stuck());
    }
}

/// ` (va 0x...)` when the guest-virtual address differs from the physical.
struct VaText(u64, u64);

impl fmt::Display for VaText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == self.1 {
            return Ok(());
        }
        write!(f, " (va {:#x})", self.0)
    }
}

/// A rate-limited note about the loaded vCPU that is not a fault (a
/// register emulated as read-as-zero): printed at `level`, and only
/// messages that level lets through take from the vCPU's rate limit.
pub fn note(vcpu: &mut Vcpu, level: log::Level, what: fmt::Arguments<'_>) {
    let visible = log::log_enabled!(level);
    if !visible {
        return;
    }
    let out = vcpu.watch.note(timer::now(), timer::frequency(), visible);
    if let Some(n) = out.summary {
        summary(&vcpu.vm.name, vcpu.index, n);
    }
    if out.report {
        log::log!(level, "guest {} vcpu{}: {what}", vcpu.vm.name, vcpu.index);
    }
}

/// At every full synchronous exit, before it is handled: ends a stuck
/// episode once the vCPU made progress, and prints held-back reports'
/// count when the rate limit allows. One check when there is nothing to do.
#[inline(always)]
pub fn poll(vcpu: &mut Vcpu) {
    if !vcpu.watch.is_quiet() {
        poll_held(vcpu);
    }
}

#[cold]
#[inline(never)]
fn poll_held(vcpu: &mut Vcpu) {
    let shared = &vcpu.shared;
    let held = vcpu.watch.poll(progress(shared), timer::now(), timer::frequency());
    shared.faults.sync(vcpu.watch.stuck());
    if let Some(n) = held {
        summary(&vcpu.vm.name, vcpu.index, n);
    }
}

/// Prints the count of held-back reports whatever the rate limit (the
/// guest stopped or paused: the vCPU may not exit again for a long time).
pub fn flush(vcpu: &mut Vcpu) {
    if let Some(n) = vcpu.watch.flush() {
        summary(&vcpu.vm.name, vcpu.index, n);
    }
}

fn summary(name: &str, index: usize, n: u64) {
    log::warn!(
        "guest {name} vcpu{index}: {n} more fault reports suppressed (at most {BURST} at once, then {PER_SECOND} per second)"
    );
}
