//! The console: a PL011 at a fixed address, polled transmit only.
//!
//! The UART is at 0x0900_0000 both on QEMU virt and in every ferrovisor
//! config (the hypervisor emulates a PL011 there for each guest); the probe
//! does not look it up in the DT and does not program it (baud rate, enable
//! bits): it only waits while the transmit FIFO is full and writes DR.
//!
//! Every output line goes through [`line`], which holds a lock so lines from
//! several CPUs never interleave. The lock remembers its owner: an exception
//! or a panic on the CPU that holds it prints anyway instead of deadlocking.

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Physical (= virtual) address of the PL011.
pub const UART_BASE: usize = 0x0900_0000;
const DR: usize = 0x00;
const FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;

/// The longest probe name kept; longer names are cut at a char boundary.
const NAME_MAX: usize = 32;

fn put(byte: u8) {
    let fr = (UART_BASE + FR) as *const u32;
    let dr = (UART_BASE + DR) as *mut u32;
    // SAFETY: the PL011's registers are at UART_BASE, mapped as device memory
    // by the identity map (or accessed with the MMU off); FR is read-only and
    // writing DR only sends a byte.
    unsafe {
        while core::ptr::read_volatile(fr) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        core::ptr::write_volatile(dr, u32::from(byte));
    }
}

fn write_raw(s: &str) {
    for b in s.bytes() {
        if b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}

/// Waits for one received byte (polling FR.RXFE).
pub fn get() -> u8 {
    let fr = (UART_BASE + FR) as *const u32;
    let dr = (UART_BASE + DR) as *const u32;
    // SAFETY: as in `put`; reading DR pops one byte from the receive FIFO,
    // which only this function consumes.
    unsafe {
        while core::ptr::read_volatile(fr) & FR_RXFE != 0 {
            core::hint::spin_loop();
        }
        (core::ptr::read_volatile(dr) & 0xff) as u8
    }
}

/// Owner of the console lock: 0 = free, else CPU index + 1.
static OWNER: AtomicUsize = AtomicUsize::new(0);

/// Holds the console; writes through `fmt::Write`.
struct Guard {
    nested: bool,
}

fn lock() -> Guard {
    let me = crate::cpu::index() + 1;
    if OWNER.load(Ordering::Relaxed) == me {
        return Guard { nested: true };
    }
    while OWNER.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
        core::hint::spin_loop();
    }
    Guard { nested: false }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.nested {
            OWNER.store(0, Ordering::Release);
        }
    }
}

impl Write for Guard {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_raw(s);
        Ok(())
    }
}

/// Prints one line: `PROBE <name> <args>`.
pub fn line(args: fmt::Arguments<'_>) {
    let mut guard = lock();
    // Writing to the UART cannot fail; a formatting error only cuts the line.
    let _ = writeln!(guard, "PROBE {} {}", name(), args);
}

/// Prints `PROBE <name> <args>` without ending the line (a guest that
/// stops in the middle of one).
pub fn unfinished(args: fmt::Arguments<'_>) {
    let mut guard = lock();
    let _ = write!(guard, "PROBE {} {}", name(), args);
}

/// Prints `PROBE <name> <args>`, a whole line.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}

/// The probe's name, set once by the boot CPU before other CPUs start.
struct Name {
    bytes: UnsafeCell<[u8; NAME_MAX]>,
    /// Length of the name in `bytes`; 0 = not set (use "probe").
    len: AtomicUsize,
}

// SAFETY: `bytes` is written only by `set_name`, on the boot CPU before any
// other CPU runs and while `len` is 0 (so no reader looks at it); readers
// load `len` with Acquire after it was stored with Release.
unsafe impl Sync for Name {}

static NAME: Name = Name { bytes: UnsafeCell::new([0; NAME_MAX]), len: AtomicUsize::new(0) };

/// Sets the name used in every line (empty: keep "probe"). Call once, on the
/// boot CPU, before starting other CPUs.
pub fn set_name(name: &str) {
    let mut end = name.len().min(NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let Some(src) = name.as_bytes().get(..end) else {
        return;
    };
    if src.is_empty() || NAME.len.load(Ordering::Acquire) != 0 {
        return;
    }
    // SAFETY: see `impl Sync for Name`: only the boot CPU runs, once, and no
    // reader looks at `bytes` while `len` is still 0.
    let bytes = unsafe { &mut *NAME.bytes.get() };
    if let Some(dst) = bytes.get_mut(..src.len()) {
        dst.copy_from_slice(src);
        NAME.len.store(src.len(), Ordering::Release);
    }
}

/// The name used in every line.
pub fn name() -> &'static str {
    let len = NAME.len.load(Ordering::Acquire);
    if len == 0 {
        return "probe";
    }
    // SAFETY: `bytes` is no longer written once `len` is non-zero.
    let bytes: &'static [u8; NAME_MAX] = unsafe { &*NAME.bytes.get() };
    bytes.get(..len).and_then(|b| core::str::from_utf8(b).ok()).unwrap_or("probe")
}
