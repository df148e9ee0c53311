//! The hypervisor console: one PL011 shared by all CPUs, plus the input ring
//! that feeds the shell.
//!
//! Output takes a lock with IRQs masked on this CPU, so an interrupt handler
//! on the same CPU can never deadlock against it. A dying hypervisor writes
//! through [`emergency_write`], which does not wait for the lock forever.

use crate::arch::aarch64::cpu;
use crate::platform::pl011::Pl011;
use core::fmt;
use spin::Mutex;

/// Where QEMU virt's first PL011 lives; used until the host DT is parsed.
pub const EARLY_UART: usize = 0x0900_0000;

static UART: Mutex<Option<Pl011>> = Mutex::new(None);
static INPUT: Mutex<InputRing> = Mutex::new(InputRing::new());
static UART_BASE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(EARLY_UART);

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
            self.buf[(self.head + self.len) % RING] = b;
            self.len += 1;
        }
    }
    fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let b = self.buf[self.head];
        self.head = (self.head + 1) % RING;
        self.len -= 1;
        Some(b)
    }
}

/// Uses the PL011 at `base` as the console.
///
/// # Safety
/// `base` must be a PL011 owned by the hypervisor (the host DT's console),
/// mapped at EL2.
pub unsafe fn init(base: usize) {
    UART_BASE.store(base, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: forwarded from this function's contract.
    *UART.lock() = Some(unsafe { Pl011::new(base) });
}

/// Runs `f` with the console UART, IRQs masked on this CPU.
fn with_uart(f: impl FnOnce(&Pl011)) {
    let masked = cpu::irqs_masked();
    cpu::irq_disable();
    if let Some(uart) = UART.lock().as_ref() {
        f(uart);
    }
    if !masked {
        cpu::irq_enable();
    }
}

/// Writes a string to the console.
pub fn write_str(s: &str) {
    with_uart(|u| u.write_str(s));
}

/// Writes raw bytes (shell echo).
pub fn write_bytes(bytes: &[u8]) {
    with_uart(|u| bytes.iter().for_each(|&b| u.put(b)));
}

/// Writes formatted text to the console as one unit.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    struct W<'a>(&'a Pl011);
    impl fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.write_str(s);
            Ok(())
        }
    }
    with_uart(|u| {
        let _ = fmt::write(&mut W(u), args);
    });
}

/// Writes without taking the lock if it stays busy: for panics, fatal
/// exceptions and a CPU that is not at EL2 (before the MMU is on).
pub fn emergency_write(args: fmt::Arguments<'_>) {
    struct W(Pl011);
    impl fmt::Write for W {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.write_str(s);
            Ok(())
        }
    }
    let base = UART_BASE.load(core::sync::atomic::Ordering::Relaxed);
    // SAFETY: `base` is the console PL011 (the early default or the host DT's);
    // interleaving with a lock holder garbles text at worst.
    let mut w = W(unsafe { Pl011::new(base) });
    let _ = fmt::write(&mut w, args);
}

/// Interrupt handler for console input: moves received bytes into the ring.
/// Also safe to call outside interrupt context.
pub fn on_rx_interrupt() {
    let mut bytes = [0u8; 32];
    let mut n = 0;
    with_uart(|uart| {
        while n < bytes.len() {
            match uart.get() {
                Some(b) => {
                    bytes[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
    });
    let masked = cpu::irqs_masked();
    cpu::irq_disable();
    let mut ring = INPUT.lock();
    bytes[..n].iter().for_each(|&b| ring.push(b));
    drop(ring);
    if !masked {
        cpu::irq_enable();
    }
}

/// Enables the console's receive interrupt.
pub fn enable_rx_interrupt() {
    with_uart(|u| u.enable_rx_interrupt());
}

/// Whether console input is waiting to be read.
pub fn input_pending() -> bool {
    INPUT.lock().len > 0
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
