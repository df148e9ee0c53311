//! The tests, selected by `probe.tests=a,b,c`.
//!
//! | test | what | PASS line detail |
//! | --- | --- | --- |
//! | `hello` | prints | `hello from EL1` |
//! | `mem` | pattern over 4 MiB of RAM after the image | `base=.. size=.. checksum=..` |
//! | `hvc` | SMCCC and PSCI versions over HVC | `smccc=M.m psci=M.m smccc_version_call=yes/no` |
//! | `smp` | CPU_ON every other DT CPU, wait, AFFINITY_INFO | `online=<n>` |
//! | `sgiping=N` | N SGI round trips with the next DT CPU (started with CPU_ON), both waiting in WFI, timed | `n=.. done=.. answered=.. ticks=.. other=.. off=yes` |
//! | `read=ADDR`, `write=ADDR` | one 32-bit access, expected to abort | `aborted esr=.. far=..` |
//! | `spin=N` | N million LCG steps | `n=<N> result=..` |
//! | `yield=N` | N WFIs with interrupts masked (under the hypervisor only) | `n=<N>` |
//! | `print=N` | N lines `print <i> abcdefghijklmnopqrstuvwxyz0123456789 end`, back to back or `probe.printgap=US` apart; `print=0` never ends | `n=<N>` |
//! | `echo` | prints `echo: type a line`, reads one line from the UART (polling), echoes it | `got '<line>'` |
//! | `idregs` | reads ID_AA64PFR0/PFR1/ISAR1/DFR0: SVE, SME, pointer authentication and the PMU must be hidden (true under ferrovisor, not natively on `-cpu max`) | `pfr0=.. pfr1=.. isar1=.. dfr0=..` |
//! | `rtcirq=N` | N PL031 RTC alarm interrupts through the GIC, WFI (or with `probe.irqwait=spin` polling) between; with `probe.expect_irq=0`: none may arrive within 2 s; with `probe.irqhold=MS` the handler holds each interrupt active (line asserted) MS ms before clearing it; with `probe.expect_desched=1` (ferrovisor, shared pCPU) every interrupt must have found the vCPU descheduled, and every hold must have been descheduled | `n=.. irqs=.. lat_ticks_min=.. lat_ticks_avg=.. lat_ticks_max=..`, under ferrovisor also `desched_wait=.. desched_held=.. pcpu_vcpus=..` |
//! | `mmioread=ADDR,N` | N 32-bit reads of ADDR, timed; exit counters under ferrovisor | `addr=.. n=.. ticks=.. exits_dabt=.. exits_total=..` |
//! | `hvcloop=N` | N `hvc #0` (ferrovisor NOP, natively PSCI_VERSION), timed | `n=.. ticks=.. fid=..` |
//! | `exits` | ferrovisor's exit counters (under ferrovisor only) | `total=.. dabt=.. fwd=.. maint=..` |
//! | `irqexits=N` | `rtcirq` polling with IRQs open, checks the exit-counter deltas (under ferrovisor only) | `n=.. irqs=.. d_total=.. d_dabt=.. d_fwd=.. d_maint=.. lat_ticks_*=..` |
//! | `timermasked` | leaves the virtual timer enabled, expired and masked, for the end action to find (as Linux's timer handler can leave it) | `ctl=..` (ISTATUS set) |
//! | `escapes` | prints terminal escape sequences and control bytes (a guest's colours, a bell) | `\x1b[1mbold\x1b[0m bell\x07 tab\tend` (raw bytes) |
//! | `unfinished` | prints `PROBE <name> unfinished` without a newline, then runs the end action at once (no DONE line) | none |
//! | `undef` | executes UDF: checks the unexpected-exception path, which prints `EXCEPTION ...` and runs the end action | none (never returns) |
//! | `faultloop=ADDR,N` | one 32-bit load from ADDR re-taking its abort N times in a row (the handler returns to it unchanged), then skipped; `N = 0`: forever (a guest stuck on a fault) | `addr=.. n=.. taken=.. esr=.. far=.. pc=..` |
//! | `fetch=ADDR` | branches to ADDR, expected to abort (instruction abort at ADDR) | `aborted esr=.. far=..` |
//! | `hvcimm` | `hvc #1`, expected to be undefined at the HVC itself (not an SMCCC call) | `undefined esr=.. elr=.. hvc_at=..` |
//! | `sysreg=N` | N reads of PMCR_EL0 (ferrovisor: trapped, read as zero) | `n=.. pmcr=..` |
//! | `sleep=MS` | waits MS ms polling the virtual counter (no exits) | `ms=..` |
//! | `edu` | QEMU's edu PCI device at `probe.ecam`: identification, DMA of 2 KiB into the device and back (data checked), its INTx (`probe.eduintid`) on completion | `cfg=.. bar0=.. id=.. dma=done data=ok intid=.. irq=yes` |
//! | `edudma=ADDR` | edu DMAs to ADDR (an attack), then to the probe's own RAM: PASS if that second DMA did not land (the SMMU stopped the device) | `target=.. dma=done contained=yes` |
//! | `virtioring=BASE,TARGET` | a virtio-blk (virtio-mmio v2 at BASE) queue in the probe's RAM; the used ring is then aimed at TARGET before sector 0 is read: PASS if the move was refused and the device completed into the probe's own ring (with `dma-registers`; natively FAIL) | `target=.. readback=own own_ring=used status=0 data=ok` |
//! | `guard=ADDR` | fills the page at ADDR and checks it every 10 ms for `probe.guardms` ms (default 5000) | `page=.. ms=.. unchanged` |
//!
//! Each test prints its own `PROBE <name> <test>: PASS|FAIL <detail>` line and
//! returns whether it passed. Unknown names FAIL. In `probe.tests`, the
//! field after `mmioread=ADDR`, `faultloop=ADDR` or `virtioring=BASE` is
//! its second argument if it starts with a digit (`mmioread=0x09010000,1000`).

mod access;
mod edu;
mod faults;
mod hvc;
mod ipi;
mod load;
mod mem;
mod rtc;
mod scmi;
pub mod smp;
mod timing;
mod virtio;

use crate::fdt::Cpus;
use crate::irq::WaitMode;
use core::sync::atomic::{AtomicU32, Ordering};

/// What the tests know about the machine.
pub struct Env {
    /// The DTB's physical range, if there is a usable one.
    pub dtb: Option<(u64, u64)>,
    /// The DT memory range holding the image, if the DT has one.
    pub ram: Option<(u64, u64)>,
    /// The CPUs listed in the DT.
    pub cpus: Cpus,
    /// The DT itself, if there is a usable one.
    pub fdt: Option<crate::fdt::Fdt<'static>>,
    /// Test options from the boot arguments.
    pub opts: TestOptions,
}

/// Options of individual tests (`probe.<option>=<value>` boot arguments).
#[derive(Clone, Copy, Debug)]
pub struct TestOptions {
    /// `probe.rtc=ADDR`: the PL031's base (default 0x0901_0000).
    pub rtc: u64,
    /// `probe.rtcintid=INTID`: the PL031's SPI (default 34).
    pub rtc_intid: u32,
    /// `probe.expect_irq=0|1`: whether `rtcirq` expects interrupts (default 1).
    pub expect_irq: bool,
    /// `probe.expect_exits=N`: data-abort exits `mmioread` must see (default:
    /// not checked).
    pub expect_exits: Option<u64>,
    /// `probe.irqwait=wfi|spin`: how `rtcirq` waits for its interrupts
    /// (default `wfi`).
    pub irq_wait: WaitMode,
    /// `probe.irqhold=MS`: `rtcirq`'s handler keeps each RTC interrupt
    /// active, its line asserted, for MS ms before clearing it (default 0).
    pub irq_hold_ms: u64,
    /// `probe.expect_desched=0|1`: `rtcirq` requires that ferrovisor
    /// descheduled the vCPU while each interrupt was pending and, with
    /// `probe.irqhold`, while each was held (default 0).
    pub expect_desched: bool,
    /// `probe.printgap=US`: `print` sleeps this many microseconds (WFI until
    /// the virtual timer) after each line (default 0).
    pub print_gap_us: u64,
    /// `probe.ecam=ADDR`: the PCIe ECAM window the `edu` tests scan (bus 0;
    /// default 0x3f00_0000, a ferrovisor guest's virtual host bridge;
    /// natively QEMU virt's is at 0x40_1000_0000).
    pub ecam: u64,
    /// `probe.eduintid=INTID`: the edu function's INTx interrupt (default
    /// 37: slot 2, INTA on QEMU virt).
    pub edu_intid: u32,
    /// `probe.guardms=MS`: how long `guard` watches its page (default 5000).
    pub guard_ms: u64,
}

impl TestOptions {
    /// The defaults: QEMU virt's RTC.
    pub const DEFAULT: TestOptions = TestOptions {
        rtc: 0x0901_0000,
        rtc_intid: 34,
        expect_irq: true,
        expect_exits: None,
        irq_wait: WaitMode::Wfi,
        irq_hold_ms: 0,
        expect_desched: false,
        print_gap_us: 0,
        ecam: 0x3f00_0000,
        edu_intid: 37,
        guard_ms: 5000,
    };

    /// Takes one `probe.x=v` word; false if it is not a test option or its
    /// value is bad (then nothing changes).
    pub fn parse(&mut self, word: &str) -> bool {
        let Some((key, value)) = word.split_once('=') else {
            return false;
        };
        if key == "probe.irqwait" {
            self.irq_wait = match value {
                "wfi" => WaitMode::Wfi,
                "spin" => WaitMode::Spin,
                _ => return false,
            };
            return true;
        }
        let Some(v) = parse_u64(value) else {
            return false;
        };
        match key {
            "probe.rtc" if v.is_multiple_of(4) => self.rtc = v,
            "probe.rtcintid" if (32..=u64::from(crate::gic::MAX_INTID)).contains(&v) => {
                self.rtc_intid = v as u32
            }
            "probe.expect_irq" if v <= 1 => self.expect_irq = v == 1,
            "probe.expect_exits" => self.expect_exits = Some(v),
            "probe.irqhold" if v <= 1000 => self.irq_hold_ms = v,
            "probe.expect_desched" if v <= 1 => self.expect_desched = v == 1,
            "probe.printgap" if v <= 1_000_000 => self.print_gap_us = v,
            "probe.guardms" if v <= 600_000 => self.guard_ms = v,
            "probe.ecam" if v.is_multiple_of(1 << 20) => self.ecam = v,
            "probe.eduintid" if (32..=u64::from(crate::gic::MAX_INTID)).contains(&v) => {
                self.edu_intid = v as u32
            }
            _ => return false,
        }
        true
    }
}

/// The tests of a `probe.tests` list, in order (empty fields skipped).
pub fn split(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    core::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let first = rest.split(',').next().unwrap_or("");
        let mut end = first.len();
        if ["mmioread=", "faultloop=", "virtioring="].iter().any(|p| first.starts_with(p)) {
            let next = rest.get(end + 1..).and_then(|r| r.split(',').next()).unwrap_or("");
            if next.starts_with(|c: char| c.is_ascii_digit()) {
                end += 1 + next.len();
            }
        }
        let item = rest.get(..end).unwrap_or("");
        rest = rest.get(end + 1..).unwrap_or("");
        if !item.is_empty() {
            return Some(item);
        }
    })
}

/// Prints `<test>: PASS|FAIL <detail>` and returns whether it passed.
macro_rules! report {
    ($test:expr, $ok:expr, $($arg:tt)*) => {{
        let ok: bool = $ok;
        $crate::out!(
            "{}: {} {}",
            $test,
            if ok { "PASS" } else { "FAIL" },
            format_args!($($arg)*)
        );
        ok
    }};
}
pub(crate) use report;

/// What a secondary CPU started by a test does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub enum Role {
    /// `smp`: say it is online, power off.
    Hello = 0,
    /// `sgiping`: answer SGIs.
    Pong = 1,
}

static ROLE: AtomicU32 = AtomicU32::new(Role::Hello as u32);

/// Sets what the next secondary started does.
pub fn set_secondary_role(role: Role) {
    ROLE.store(role as u32, Ordering::SeqCst);
}

/// A secondary CPU's life, by the role its test gave it.
pub fn secondary(index: u64) -> ! {
    if ROLE.load(Ordering::SeqCst) == Role::Pong as u32 {
        ipi::pong()
    }
    smp::secondary(index)
}

/// Runs one test (`name` or `name=arg`); true if it passed.
pub fn run(env: &Env, test: &str) -> bool {
    let (kind, arg) = match test.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (test, None),
    };
    match (kind, arg) {
        ("hello", None) => report!(test, true, "hello from EL{}", crate::cpu::current_el()),
        ("mem", None) => mem::run(env, test),
        ("hvc", None) => hvc::run(test),
        ("smp", None) => smp::run(env, test),
        ("sgiping", Some(n)) => ipi::run(env, test, n),
        ("read", Some(addr)) => access::run(test, addr, false),
        ("scmi", Some(arg)) => scmi::run(test, arg),
        ("write", Some(addr)) => access::run(test, addr, true),
        ("spin", Some(n)) => load::spin(n),
        ("yield", Some(n)) => load::yield_cpu(n),
        ("print", Some(n)) => load::print(n, env.opts.print_gap_us),
        ("rtcirq", Some(n)) => rtc::rtcirq(env, n),
        ("irqexits", Some(n)) => rtc::irqexits(env, n),
        ("mmioread", Some(arg)) => timing::mmioread(env, arg),
        ("hvcloop", Some(n)) => timing::hvcloop(n),
        ("exits", None) => timing::exits(test),
        ("timermasked", None) => {
            let ctl = crate::irq::leave_vtimer_expired_masked();
            report!(test, ctl & 0b111 == 0b111, "ctl={ctl:#x}")
        }
        ("undef", None) => undef(),
        ("faultloop", Some(arg)) => faults::faultloop(arg),
        ("fetch", Some(addr)) => faults::fetch(test, addr),
        ("hvcimm", None) => faults::hvcimm(test),
        ("sysreg", Some(n)) => faults::sysreg(n),
        ("sleep", Some(ms)) => faults::sleep(ms),
        ("escapes", None) => report!(test, true, "{ESCAPES}"),
        ("unfinished", None) => {
            crate::console::unfinished(format_args!("unfinished"));
            crate::end()
        }
        ("dtnode", Some(name)) => dtnode(env, test, name),
        ("edu", None) => edu::run(env, test),
        ("edudma", Some(addr)) => edu::attack(env, test, addr),
        ("guard", Some(addr)) => edu::guard(env, test, addr),
        ("virtioring", Some(arg)) => virtio::run(test, arg),
        ("echo", None) => echo(test),
        ("idregs", None) => idregs(test),
        _ => report!(test, false, "unknown test"),
    }
}

/// The detail of the `escapes` line: a colour sequence around `bold`, a BEL
/// and a tab.
pub const ESCAPES: &str = "\x1b[1mbold\x1b[0m bell\x07 tab\tend";

/// `dtnode=NAME`: PASS if the DT's root has a node NAME (`name@unit` must
/// match exactly; a name without unit address matches any) with a
/// `compatible`, which the line shows.
fn dtnode(env: &Env, test: &str, name: &str) -> bool {
    match env.fdt.and_then(|f| f.string(&[name], "compatible")) {
        Some(compatible) => report!(test, true, "compatible={compatible}"),
        None => report!(test, false, "no node /{name} with a compatible"),
    }
}

/// Checks that features whose state the hypervisor does not switch are
/// hidden from the guest.
fn idregs(test: &str) -> bool {
    let (pfr0, pfr1, isar1, dfr0): (u64, u64, u64, u64);
    // SAFETY: reading ID registers has no side effects (under ferrovisor they
    // trap to EL2, which answers with the guest's view).
    unsafe {
        core::arch::asm!(
            "mrs {0}, id_aa64pfr0_el1", "mrs {1}, id_aa64pfr1_el1", "mrs {2}, id_aa64isar1_el1", "mrs {3}, id_aa64dfr0_el1",
            out(reg) pfr0, out(reg) pfr1, out(reg) isar1, out(reg) dfr0, options(nomem, nostack)
        )
    };
    let sve = (pfr0 >> 32) & 0xf;
    let sme = (pfr1 >> 24) & 0xf;
    let pauth = (isar1 >> 4) & 0xff | (isar1 >> 24) & 0xff;
    let pmu = (dfr0 >> 8) & 0xf;
    report!(
        test,
        sve == 0 && sme == 0 && pauth == 0 && pmu == 0,
        "pfr0={pfr0:#x} pfr1={pfr1:#x} isar1={isar1:#x} dfr0={dfr0:#x}"
    )
}

/// Reads one line typed on the console and prints it back.
fn echo(test: &str) -> bool {
    crate::out!("echo: type a line");
    let mut buf = [0u8; 64];
    let mut len = 0;
    loop {
        match crate::console::get() {
            b'\r' | b'\n' => break,
            b if b.is_ascii_graphic() || b == b' ' => {
                if let Some(slot) = buf.get_mut(len) {
                    *slot = b;
                    len += 1;
                }
            }
            _ => {}
        }
    }
    let line = core::str::from_utf8(buf.get(..len).unwrap_or(&[])).unwrap_or("");
    report!(test, !line.is_empty(), "got '{}'", line)
}

/// Executes a permanently undefined instruction: the vectors report it as an
/// unexpected exception and run the end action, so this never returns.
fn undef() -> bool {
    crate::out!("undef executing UDF #0: expect EXCEPTION");
    // SAFETY: UDF traps to the probe's own vectors, which print the exception
    // and end the probe; execution never continues after it.
    unsafe { core::arch::asm!("udf #0", options(nomem, nostack, noreturn)) }
}

/// Parses a decimal or `0x` hexadecimal number.
pub fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}
