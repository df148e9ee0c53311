//! The hypervisor console: one PL011 shared by all CPUs, the output ring
//! they print through, and the input ring that feeds the shell.
//!
//! Output (`ferrovisor_cmdline::output`): a writer copies its whole line
//! into the ring under a lock held only for the copy, IRQs masked; one CPU
//! at a time drains the ring into the UART, and no CPU ever waits for a lock
//! held across a UART wait. A full ring waits while the drainer makes
//! progress, else the line is dropped and a notice counts the loss. Input
//! reads the UART's receive side under the input lock only. A dying
//! hypervisor writes through [`emergency_write`], which never waits for a
//! lock.

use crate::arch::aarch64::{cpu, timer};
use crate::platform::pl011::{self, Pl011};
use core::fmt;
use ferrovisor_cmdline::output::{Machine, Output, Port};
use ferrovisor_config::UartInfo;
use ferrovisor_sync::Mutex;

/// The shell's prompt: the console redraws it, with the line being typed,
/// after other output, and the shell prints it.
pub const PROMPT: &str = "ferrovisor> ";

/// Where QEMU virt's first PL011 lives; used until the host DT is parsed.
pub const EARLY_UART: usize = pl011::EARLY_CONSOLE;

/// Bytes of output the ring holds while the UART is busy.
const OUTPUT_RING: usize = 16 * 1024;

/// How long the UART may refuse a byte, or a drainer make no progress,
/// before output is dropped instead of waited for.
const STALL_MS: u64 = 50;

static OUTPUT: Output<Cpu, OUTPUT_RING> = Output::new();
static INPUT: Mutex<InputRing> = Mutex::new(InputRing::new());

/// The running CPU, as the output path sees it.
struct Cpu;

impl Machine for Cpu {
    fn cpu() -> usize {
        cpu::index()
    }
    fn irq_save() -> bool {
        let masked = cpu::irqs_masked();
        cpu::irq_disable();
        masked
    }
    fn irq_restore(was_masked: bool) {
        if !was_masked {
            cpu::irq_enable();
        }
    }
    fn now() -> u64 {
        timer::now()
    }
    fn relax() {
        cpu::wait_for_event();
    }
    fn wake() {
        cpu::send_event();
    }
    fn spin_hint() {
        cpu::spin_hint();
    }
}

/// The console UART's transmit side.
struct Tx(Pl011);

impl Port for Tx {
    fn try_put(&self, byte: u8) -> bool {
        self.0.try_put(byte)
    }
}

fn tx() -> Tx {
    Tx(pl011::console())
}

const RING: usize = 512;

struct InputRing {
    buf: [u8; RING],
    head: usize,
    len: usize,
}

impl InputRing {
    const fn new() -> Self {
        Self { buf: [0; RING], head: 0, len: 0 }
    }
    fn push(&mut self, b: u8) {
        if self.len < RING {
            if let Some(slot) = self.buf.get_mut((self.head + self.len) % RING) {
                *slot = b;
            }
            self.len += 1;
        }
    }
    fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let b = self.buf.get(self.head).copied();
        self.head = (self.head + 1) % RING;
        self.len -= 1;
        b
    }
}

/// Starts the console on QEMU virt's first PL011 ([`EARLY_UART`]), until
/// the host DT names one.
pub fn init() {
    OUTPUT.set_stall_ticks(timer::frequency().saturating_mul(STALL_MS) / 1000);
}

/// Moves the console to the host DT's console PL011, if it is usable; the
/// early one stays otherwise.
pub fn use_host_uart(uart: &UartInfo) {
    if pl011::set_console(uart).is_err() {
        log::warn!(
            "{}: console at {} is not a 4 KiB frame in the hypervisor's device map (below 1 GiB or from 256 GiB); keeping the UART at {EARLY_UART:#x}",
            uart.path,
            uart.region.base
        );
    }
}

/// Writes a string to the console (`\n` becomes `\r\n`).
pub fn write_str(s: &str) {
    write_fmt(format_args!("{s}"));
}

/// Writes raw bytes, unchanged (an attached guest's output).
pub fn write_bytes(bytes: &[u8]) {
    OUTPUT.raw(&tx(), bytes);
}

/// Writes formatted text to the console as one unit (up to 1 KiB).
pub fn write_fmt(args: fmt::Arguments<'_>) {
    OUTPUT.format(&tx(), args);
}

/// The shell's echo: writes `echo` and records the line the shell shows
/// after it (prompt and typed text), which other output redraws below
/// itself; `None` while no prompt is shown (a command runs, or a guest has
/// the console).
pub fn edit(echo: &[u8], line: Option<&str>) {
    OUTPUT.edit(&tx(), echo, line.map(str::as_bytes));
}

/// Waits until queued output has reached the UART (or the UART stalled):
/// before powering off.
pub fn flush() {
    OUTPUT.flush(&tx());
}

/// Writes without waiting for any lock: for panics, fatal exceptions and a
/// CPU that is not at EL2 (before the MMU is on). Queued output goes first
/// if no other CPU is draining it.
pub fn emergency_write(args: fmt::Arguments<'_>) {
    OUTPUT.emergency(&tx(), args);
}

/// Polls of a full transmit FIFO before [`early_write`] skips a byte.
const EARLY_TRIES: u32 = 1_000_000;

/// Writes straight to the UART and touches nothing else (no lock, atomic
/// or EL2 register): for a CPU that is not at EL2 or runs before the MMU
/// is on.
pub fn early_write(args: fmt::Arguments<'_>) {
    let uart = pl011::console();
    ferrovisor_cmdline::output::format_chunks(args, &mut |piece| {
        for &b in piece {
            let _ = (0..EARLY_TRIES).any(|_| uart.try_put(b));
        }
    });
}

/// Interrupt handler for console input: moves received bytes into the ring.
/// Also safe to call outside interrupt context.
pub fn on_rx_interrupt() {
    let uart = pl011::console();
    let was_masked = Cpu::irq_save();
    let mut ring = INPUT.lock();
    for _ in 0..32 {
        match uart.get() {
            Some(b) => ring.push(b),
            None => break,
        }
    }
    drop(ring);
    Cpu::irq_restore(was_masked);
}

/// Enables the console's receive interrupt.
pub fn enable_rx_interrupt() {
    pl011::console().enable_rx_interrupt();
}

/// Whether console input is waiting to be read.
pub fn input_pending() -> bool {
    let was_masked = Cpu::irq_save();
    let pending = INPUT.lock().len > 0;
    Cpu::irq_restore(was_masked);
    pending
}

/// Takes one byte of console input, if any arrived. Call with IRQs masked.
pub fn read_byte() -> Option<u8> {
    INPUT.lock().pop()
}

/// `print!` to the hypervisor console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::core::console::write_fmt(format_args!($($arg)*)) };
}

/// `println!` to the hypervisor console.
#[macro_export]
macro_rules! println {
    () => { $crate::core::console::write_str("\n") };
    ($($arg:tt)*) => {{
        $crate::core::console::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    }};
}
