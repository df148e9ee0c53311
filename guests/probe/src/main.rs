//! The ferrovisor probe: a bare-metal AArch64 EL1 guest that runs tests and
//! prints one parseable line per result.
//!
//! It boots the same way natively on QEMU virt (at EL1, PSCI over HVC) and as
//! a ferrovisor guest: an arm64 Image linked at 0x40080000, the DTB address in
//! x0. Boot arguments (`/chosen/bootargs`, space separated):
//!
//! - `probe.name=NAME`: the name in every line (default `probe`);
//! - `probe.tests=a,b,c`: the tests to run, in order (default
//!   `hello,mem,hvc,smp`); see [`tests`];
//! - `probe.end=off|reset|wfi|none`: what to do at the end (default `off`):
//!   PSCI SYSTEM_OFF, PSCI SYSTEM_RESET, WFI forever, or park in a WFE loop;
//! - test options `probe.rtc=`, `probe.rtcintid=`, `probe.expect_irq=`,
//!   `probe.expect_exits=`, `probe.irqwait=` (see [`tests::TestOptions`]).
//!
//! Output: `PROBE <name> START el=1 cpus=<n> hyp=ferrovisor|none
//! bootargs="<...>"`, then per test
//! `PROBE <name> <test>: PASS <detail>` or `... FAIL <detail>`, free text as
//! `PROBE <name> <text>`, and finally `PROBE <name> DONE pass=<n> fail=<m>`.

#![no_std]
#![no_main]

mod boot;
mod console;
mod cpu;
mod exception;
mod fdt;
mod gic;
mod hyp;
mod irq;
mod psci;
mod tests;

use core::sync::atomic::{AtomicU8, Ordering};

/// The default test list.
const DEFAULT_TESTS: &str = "hello,mem,hvc,smp";

/// What to do when the tests are done (or on a fatal error).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum EndAction {
    Off = 0,
    Reset = 1,
    Wfi = 2,
    None = 3,
}

impl EndAction {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "reset" => Some(Self::Reset),
            "wfi" => Some(Self::Wfi),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

static END_ACTION: AtomicU8 = AtomicU8::new(EndAction::Off as u8);

/// The boot arguments the probe understands.
struct Options<'a> {
    name: &'a str,
    tests: &'a str,
    end: EndAction,
    /// A `probe.end=` value that was not understood.
    bad_end: Option<&'a str>,
    /// Options of individual tests.
    test: tests::TestOptions,
    /// The first test option whose value was not understood.
    bad_test_option: Option<&'a str>,
}

impl<'a> Options<'a> {
    fn parse(bootargs: &'a str) -> Self {
        let mut opts = Options {
            name: "probe",
            tests: DEFAULT_TESTS,
            end: EndAction::Off,
            bad_end: None,
            test: tests::TestOptions::DEFAULT,
            bad_test_option: None,
        };
        for word in bootargs.split_ascii_whitespace() {
            if let Some(v) = word.strip_prefix("probe.name=") {
                if !v.is_empty() {
                    opts.name = v;
                }
            } else if let Some(v) = word.strip_prefix("probe.tests=") {
                opts.tests = v;
            } else if let Some(v) = word.strip_prefix("probe.end=") {
                match EndAction::parse(v) {
                    Some(end) => {
                        opts.end = end;
                        opts.bad_end = None;
                    }
                    None => opts.bad_end = Some(v),
                }
            } else if word.starts_with("probe.") && !opts.test.parse(word) {
                opts.bad_test_option.get_or_insert(word);
            }
        }
        opts
    }
}

/// The DTB at `addr`, if it is in normal memory, readable, and has a
/// plausible header. Every word read before the size is known is read with
/// the abort catcher, so a bad pointer cannot crash the probe.
fn dtb_blob(addr: u64) -> Option<&'static [u8]> {
    const NORMAL: core::ops::Range<u64> = (1 << 30)..(256 << 30);
    if !addr.is_multiple_of(8) || !NORMAL.contains(&addr) {
        return None;
    }
    let mut header = [0u8; 40];
    for (i, chunk) in header.chunks_exact_mut(4).enumerate() {
        let word = exception::try_read32(addr + 4 * i as u64).ok()?;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    let size = fdt::total_size(&header)?;
    let end = addr.checked_add(size as u64)?;
    if end > NORMAL.end {
        return None;
    }
    exception::try_read32((end - 4) & !3).ok()?;
    // SAFETY: the blob's first and last words are readable normal memory
    // (RAM is contiguous, so the rest is too), identity mapped; nothing in
    // the probe writes it (the mem test keeps clear of it).
    Some(unsafe { core::slice::from_raw_parts(addr as *const u8, size) })
}

/// The boot CPU's Rust entry, from `boot.rs`, with the DTB address.
pub extern "C" fn primary_main(dtb: u64) -> ! {
    let blob = dtb_blob(dtb);
    let fdt = blob.and_then(fdt::Fdt::new);
    let bootargs = fdt.and_then(|f| f.string(&["chosen"], "bootargs")).unwrap_or("");
    let opts = Options::parse(bootargs);
    console::set_name(opts.name);
    END_ACTION.store(opts.end as u8, Ordering::SeqCst);
    let cpus = fdt.and_then(|f| f.cpus()).unwrap_or(fdt::Cpus::NONE);
    let root_compatible = fdt.and_then(|f| f.property(&[], "compatible")).unwrap_or(&[]);
    hyp::set_under_ferrovisor(hyp::compatible_has(root_compatible, hyp::FERROVISOR_COMPATIBLE));

    out!("START el={} cpus={} hyp={} bootargs=\"{}\"", cpu::current_el(), cpus.count, hyp::name(), bootargs);
    if fdt.is_none() {
        out!("no usable DTB at {dtb:#x}: running with empty bootargs");
    }
    if let Some(bad) = opts.bad_end {
        out!("unknown probe.end={bad}: using off");
    }
    if let Some(bad) = opts.bad_test_option {
        out!("unknown or bad option {bad}: ignored");
    }

    let env = tests::Env {
        dtb: blob.map(|b| (dtb, dtb + b.len() as u64)),
        ram: fdt.and_then(|f| f.memory_containing(boot::image_range().0)),
        cpus,
        fdt,
        opts: opts.test,
    };
    let (mut pass, mut fail) = (0u32, 0u32);
    for test in tests::split(opts.tests) {
        if tests::run(&env, test) {
            pass += 1;
        } else {
            fail += 1;
        }
    }
    out!("DONE pass={pass} fail={fail}");
    end()
}

/// A secondary CPU's Rust entry, from `boot.rs`, with its CPU index.
pub extern "C" fn secondary_main(index: u64) -> ! {
    tests::secondary(index)
}

/// Runs the `probe.end` action; never returns.
pub fn end() -> ! {
    let action = match END_ACTION.load(Ordering::SeqCst) {
        1 => EndAction::Reset,
        2 => EndAction::Wfi,
        3 => EndAction::None,
        _ => EndAction::Off,
    };
    let (fid, what) = match action {
        EndAction::Off => (psci::SYSTEM_OFF, "SYSTEM_OFF"),
        EndAction::Reset => (psci::SYSTEM_RESET, "SYSTEM_RESET"),
        EndAction::Wfi => cpu::sleep_forever(),
        EndAction::None => cpu::park(),
    };
    let r = psci::call(fid, 0, 0, 0);
    out!("{what} returned {r} ({})", psci::error_name(r));
    cpu::sleep_forever()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(loc) => out!("PANIC {} at {}:{}", info.message(), loc.file(), loc.line()),
        None => out!("PANIC {}", info.message()),
    }
    end()
}
