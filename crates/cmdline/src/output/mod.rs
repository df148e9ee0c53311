//! Console output shared by all CPUs, without a lock held across UART waits.
//!
//! Writers queue whole units (a log line, a tagged guest line, an echo) in
//! one [`Ring`] under a lock held only for the copy, with IRQs masked, and
//! note where their unit ends. The UART is driven by one CPU at a time, the
//! *drainer*, chosen by an atomic flag that no CPU spins on: a writer whose
//! bytes are not out yet either becomes the drainer (when the flag is free)
//! and sends the ring up to the end of its own unit, or waits while the
//! current drainer makes progress. A drainer never sends more than what was
//! queued up to its own unit (plus units it was left, below), so a guest
//! that prints without pause pays for its own output and cannot keep
//! another CPU, such as the shell's, draining for ever.
//!
//! Nothing is left behind: a writer returns once its bytes are out, or
//! after recording its end in `want` for the drainer to reach: an
//! interrupt handler that prints on the drainer's own CPU (it cannot wait
//! for itself), or a writer that saw no progress for the stall time. The
//! drainer re-reads `want` while it sends and once more after letting go
//! of the flag.
//!
//! A full ring makes a writer wait only while bytes reach the UART; when
//! the UART accepts nothing for the stall time, or the drainer is this very
//! CPU, the unit is dropped and counted, and one notice line says how many
//! bytes were lost. Waiting uses [`Machine::relax`] (WFE), which under
//! QEMU's one-vCPU-at-a-time `-icount` mode lets the drainer run.

mod chunks;
pub mod ring;

pub use chunks::{format_chunks, CHUNK};
pub use ring::{Full, Ring, ERASE, PROMPT_MAX};

use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// What the output path needs from the CPU it runs on.
pub trait Machine {
    /// This CPU's index.
    fn cpu() -> usize;
    /// Masks IRQs on this CPU; returns whether they were masked already.
    fn irq_save() -> bool;
    /// Undoes [`Machine::irq_save`].
    fn irq_restore(was_masked: bool);
    /// A monotonic clock in ticks.
    fn now() -> u64;
    /// Waits a little for another CPU's progress (WFE).
    fn relax();
    /// Wakes CPUs waiting in [`Machine::relax`] (SEV).
    fn wake();
    /// One turn of a spin-wait on a short lock (a hint that lets a
    /// simulator run another CPU).
    fn spin_hint();
}

/// The UART's transmit side.
pub trait Port {
    /// Sends `byte` if the transmitter has room; false if it is full.
    fn try_put(&self, byte: u8) -> bool;
}

/// Spin strategy of the ring lock: [`Machine::spin_hint`].
pub struct Hint<M>(PhantomData<M>);

impl<M: Machine> spin::RelaxStrategy for Hint<M> {
    fn relax() {
        M::spin_hint();
    }
}

/// The shared output path, with a ring of `N` bytes.
pub struct Output<M: Machine, const N: usize> {
    ring: spin::mutex::Mutex<Ring<N>, Hint<M>>,
    /// 0 when nobody drains, else the draining CPU's index + 1.
    drainer: AtomicUsize,
    /// Bytes handed to the UART so far (the ring's removed count): the
    /// drainer's progress.
    sent: AtomicU64,
    /// An end position some writer left to the drainer (see the module
    /// docs); the drainer sends at least this far.
    want: AtomicU64,
    /// The UART refused a byte for the stall time; cleared when it takes one.
    stalled: AtomicBool,
    /// How long the UART may refuse a byte, or a drainer make no progress
    /// (0: not set, no limit; all-zero when new, so that a static output
    /// path costs no image space).
    stall_ticks: AtomicU64,
}

impl<M: Machine, const N: usize> Default for Output<M, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Machine, const N: usize> Output<M, N> {
    /// An empty output path (no stall limit until one is set).
    pub const fn new() -> Self {
        Self {
            ring: spin::mutex::Mutex::new(Ring::new()),
            drainer: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            want: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            stall_ticks: AtomicU64::new(0),
        }
    }

    /// Sets how long (in [`Machine::now`] ticks, at least 1) a stuck UART or
    /// drainer is waited for before output is dropped.
    pub fn set_stall_ticks(&self, ticks: u64) {
        self.stall_ticks.store(ticks.max(1), Ordering::Relaxed);
    }

    /// The stall time; unlimited until it is set.
    fn stall_limit(&self) -> u64 {
        match self.stall_ticks.load(Ordering::Relaxed) {
            0 => u64::MAX,
            ticks => ticks,
        }
    }

    /// Queues text (ending in a newline); returns once it has left the ring
    /// (or was left to the drainer, see the module docs).
    pub fn text(&self, port: &impl Port, text: &[u8]) {
        let mut end = None;
        for piece in text.chunks(CHUNK) {
            end = self.queue(port, piece.len(), |r| r.queue_text(piece)).or(end);
        }
        self.deliver(port, end);
    }

    /// Queues bytes unchanged; returns once they have left the ring.
    pub fn raw(&self, port: &impl Port, bytes: &[u8]) {
        let mut end = None;
        for piece in bytes.chunks(CHUNK) {
            end = self.queue(port, piece.len(), |r| r.queue_raw(piece)).or(end);
        }
        self.deliver(port, end);
    }

    /// Queues the shell's echo, records the line it shows after it (see
    /// [`Ring::queue_edit`]); returns once the echo has left the ring.
    pub fn edit(&self, port: &impl Port, echo: &[u8], line: Option<&[u8]>) {
        let end = self.queue(port, echo.len(), |r| r.queue_edit(echo, line));
        self.deliver(port, end);
    }

    /// Formats `args` as text (`\n` becomes `\r\n`), queues it in pieces
    /// of at most [`CHUNK`] bytes; returns once it has left the ring.
    pub fn format(&self, port: &impl Port, args: fmt::Arguments<'_>) {
        let mut end = None;
        format_chunks(args, &mut |piece| {
            end = self.queue(port, piece.len(), |r| r.queue_text(piece)).or(end);
        });
        self.deliver(port, end);
    }

    /// Whether nothing waits for the UART.
    pub fn is_empty(&self) -> bool {
        self.with_ring(|r| r.is_empty())
    }

    /// Returns once everything queued so far is sent (or the UART stalled,
    /// or nothing moved for the stall time): before powering off.
    pub fn flush(&self, port: &impl Port) {
        let end = self.with_ring(|r| r.total());
        self.deliver(port, Some(end));
    }

    /// For a dying hypervisor: sends what is queued if no other CPU is
    /// draining and the ring lock is free (never waits for either), then
    /// `args` straight to the UART.
    pub fn emergency(&self, port: &impl Port, args: fmt::Arguments<'_>) {
        let me = M::cpu() + 1;
        if self.drainer.compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            self.pump(port, u64::MAX, true);
            self.drainer.store(0, Ordering::SeqCst);
        }
        format_chunks(args, &mut |piece| {
            for &b in piece {
                if !self.put(port, b) {
                    return;
                }
            }
        });
    }

    /// Waits until the bytes up to `end` are sent, sending them itself
    /// whenever no other CPU drains (see the module docs).
    fn deliver(&self, port: &impl Port, end: Option<u64>) {
        let Some(end) = end else { return };
        let mut watch = Progress::start(self);
        loop {
            if self.sent.load(Ordering::SeqCst) >= end {
                return;
            }
            if self.drains_here() {
                // An interrupt handler on the drainer's CPU: leave the
                // bytes to the drainer below us on this stack.
                self.want.fetch_max(end, Ordering::SeqCst);
                return;
            }
            let drained = self.drain_to(port, end);
            if self.stalled.load(Ordering::Acquire) {
                return;
            }
            if drained {
                continue;
            }
            if !watch.moving(self) {
                // The drainer is stuck: it takes our bytes too, or, if it
                // let go meanwhile, we drain them.
                self.want.fetch_max(end, Ordering::SeqCst);
                if !self.drain_to(port, end) {
                    return;
                }
                continue;
            }
            M::relax();
        }
    }

    /// Becomes the drainer if nobody is, and sends up to `target` (and up
    /// to `want`); returns whether this call was the drainer.
    fn drain_to(&self, port: &impl Port, target: u64) -> bool {
        let me = M::cpu() + 1;
        let mut took = false;
        loop {
            if self.drainer.compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                return took;
            }
            took = true;
            self.pump(port, target, false);
            self.drainer.store(0, Ordering::SeqCst);
            M::wake();
            // A writer that gave up waiting may have raised `want` just
            // before we let go: look once more now that the flag is free.
            let sent = self.sent.load(Ordering::SeqCst);
            if self.want.load(Ordering::SeqCst) <= sent || self.stalled.load(Ordering::Acquire) {
                return took;
            }
        }
    }

    /// Queues one unit, waiting for room while bytes reach the UART; drops
    /// it (counted) otherwise. Returns the unit's end position.
    fn queue(
        &self,
        port: &impl Port,
        size: usize,
        mut unit: impl FnMut(&mut Ring<N>) -> Result<u64, Full>,
    ) -> Option<u64> {
        let mut watch = Progress::start(self);
        loop {
            let needed = match self.with_ring(&mut unit) {
                Ok(end) => return Some(end),
                Err(full) => full.needed,
            };
            if needed > N || self.drains_here() {
                break;
            }
            // Make room by sending what is queued, if nobody else drains:
            // with a stalled UART this tries each byte once, without waiting.
            let queued = self.with_ring(|r| r.total());
            let drained = self.drain_to(port, queued);
            if self.stalled.load(Ordering::Acquire) {
                break;
            }
            if drained {
                continue;
            }
            if !watch.moving(self) {
                break;
            }
            M::relax();
        }
        self.with_ring(|r| r.drop_bytes(size));
        None
    }

    /// Whether this CPU holds the drainer flag (further down its stack).
    fn drains_here(&self) -> bool {
        self.drainer.load(Ordering::SeqCst) == M::cpu() + 1
    }

    /// Sends queued bytes up to `target` or `want`, whichever is further,
    /// until the ring is empty or the UART stalls. In an `emergency` the
    /// ring lock is only tried, never waited for.
    fn pump(&self, port: &impl Port, target: u64, emergency: bool) {
        let mut chunk = [0u8; 64];
        loop {
            let goal = target.max(self.want.load(Ordering::SeqCst));
            let left = goal.saturating_sub(self.sent.load(Ordering::SeqCst));
            let room = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let Some(buf) = chunk.get_mut(..room) else { return };
            let n = if emergency {
                self.try_with_ring(|r| r.peek(buf)).unwrap_or(0)
            } else {
                self.with_ring(|r| r.peek(buf))
            };
            if n == 0 {
                return;
            }
            let sent = buf.get(..n).unwrap_or(&[]).iter().take_while(|&&b| self.put(port, b)).count();
            if emergency {
                let _ = self.try_with_ring(|r| r.consume(sent));
            } else {
                self.with_ring(|r| r.consume(sent));
            }
            self.sent.fetch_add(sent as u64, Ordering::SeqCst);
            M::wake();
            if sent < n {
                return;
            }
        }
    }

    /// Sends one byte, waiting up to the stall time for room (not at all
    /// while the UART is known to be stalled).
    fn put(&self, port: &impl Port, byte: u8) -> bool {
        if port.try_put(byte) {
            if self.stalled.load(Ordering::Relaxed) {
                self.stalled.store(false, Ordering::Release);
            }
            return true;
        }
        if self.stalled.load(Ordering::Acquire) {
            return false;
        }
        let start = M::now();
        let limit = self.stall_limit();
        loop {
            core::hint::spin_loop();
            if port.try_put(byte) {
                return true;
            }
            if M::now().wrapping_sub(start) > limit {
                self.stalled.store(true, Ordering::Release);
                return false;
            }
        }
    }

    fn with_ring<R>(&self, f: impl FnOnce(&mut Ring<N>) -> R) -> R {
        let was_masked = M::irq_save();
        let r = f(&mut self.ring.lock());
        M::irq_restore(was_masked);
        r
    }

    fn try_with_ring<R>(&self, f: impl FnOnce(&mut Ring<N>) -> R) -> Option<R> {
        let was_masked = M::irq_save();
        let r = self.ring.try_lock().map(|mut ring| f(&mut ring));
        M::irq_restore(was_masked);
        r
    }
}

/// Watches the drainer's progress while a CPU waits for it.
struct Progress {
    sent: u64,
    since: u64,
}

impl Progress {
    fn start<M: Machine, const N: usize>(out: &Output<M, N>) -> Self {
        Self { sent: out.sent.load(Ordering::Acquire), since: M::now() }
    }

    /// False once no byte reached the UART for the stall time.
    fn moving<M: Machine, const N: usize>(&mut self, out: &Output<M, N>) -> bool {
        let sent = out.sent.load(Ordering::Acquire);
        let now = M::now();
        if sent != self.sent {
            self.sent = sent;
            self.since = now;
            return true;
        }
        now.wrapping_sub(self.since) <= out.stall_limit()
    }
}

#[cfg(test)]
mod tests;
