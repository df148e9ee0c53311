//! The console's output ring: bytes waiting for the UART, queued in whole
//! units (a log line, a tagged guest line, a shell echo), plus what the
//! shell shows on its current line so that other output can redraw it.
//!
//! Invariants: a unit is queued whole or not at all; bytes leave in the
//! order they were queued; bytes dropped for lack of room are counted and
//! announced by one notice line queued before the next unit that fits.

/// Longest shell line (prompt and typed text) kept for redrawing.
pub const PROMPT_MAX: usize = 320;

/// Goes back to the start of the terminal line and erases it (carriage
/// return, VT100 "erase to end of line"): queued before output that
/// interrupts the shell's prompt.
pub const ERASE: &[u8] = b"\r\x1b[K";

/// A unit did not fit; `needed` bytes of room would take it (more than the
/// ring's capacity: it never will).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    /// Free bytes the unit needs.
    pub needed: usize,
}

/// A byte ring of `N` bytes.
#[derive(Debug)]
pub struct Ring<const N: usize> {
    buf: [u8; N],
    /// Index of the oldest queued byte.
    head: usize,
    len: usize,
    /// Bytes ever queued: a unit's end position is this after queuing it.
    total: u64,
    /// Bytes dropped since the last notice.
    dropped: u64,
    /// Whether the last queued byte did not end a line (all-zero when new,
    /// so that a static ring costs no image space).
    mid_line: bool,
    prompt: [u8; PROMPT_MAX],
    prompt_len: usize,
    /// Whether the shell's line (prompt and typed text) is on the screen.
    prompt_shown: bool,
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Ring<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            head: 0,
            len: 0,
            total: 0,
            dropped: 0,
            mid_line: false,
            prompt: [0; PROMPT_MAX],
            prompt_len: 0,
            prompt_shown: false,
        }
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes ever queued (the end position of the last unit).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes ever removed (sent).
    pub fn removed(&self) -> u64 {
        self.total - self.len as u64
    }

    /// Room left.
    pub fn free(&self) -> usize {
        N - self.len
    }

    /// Bytes dropped and not yet announced.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Counts `n` bytes that were dropped for lack of room.
    pub fn drop_bytes(&mut self, n: usize) {
        self.dropped = self.dropped.saturating_add(n as u64);
    }

    /// Each `queue_*` returns the unit's end position ([`Ring::total`]),
    /// or [`Full`] without queuing anything.
    ///
    /// Queues text that ends in a newline (log lines, tagged guest lines,
    /// command output). If the shell's line is on the screen, the text
    /// replaces it and the shell's line is drawn again below.
    pub fn queue_text(&mut self, text: &[u8]) -> Result<u64, Full> {
        let wrap = self.prompt_shown;
        let (notice, notice_len) = self.notice(wrap || !self.mid_line);
        let newline = wrap && !text.ends_with(b"\n");
        let redraw = if wrap { ERASE.len() + 2 * usize::from(newline) + self.prompt_len } else { 0 };
        let needed = notice_len + text.len() + redraw;
        if needed > self.free() {
            return Err(Full { needed });
        }
        if wrap {
            self.push(ERASE);
        }
        self.push(notice.get(..notice_len).unwrap_or(&[]));
        self.dropped = 0;
        self.push(text);
        if wrap {
            if newline {
                self.push(b"\r\n");
            }
            let prompt = self.prompt;
            self.push(prompt.get(..self.prompt_len).unwrap_or(&[]));
        }
        Ok(self.total)
    }

    /// Queues bytes as they are (an attached guest's output).
    pub fn queue_raw(&mut self, bytes: &[u8]) -> Result<u64, Full> {
        let (notice, notice_len) = self.notice(!self.mid_line);
        let needed = notice_len + bytes.len();
        if needed > self.free() {
            return Err(Full { needed });
        }
        self.push(notice.get(..notice_len).unwrap_or(&[]));
        self.dropped = 0;
        self.push(bytes);
        Ok(self.total)
    }

    /// Queues the shell's echo and records the line the shell shows after
    /// it (`None`: no prompt on the screen, a command runs or a guest has
    /// the console). The line is recorded even when the echo does not fit.
    pub fn queue_edit(&mut self, echo: &[u8], line: Option<&[u8]>) -> Result<u64, Full> {
        match line {
            Some(line) => {
                let n = line.len().min(PROMPT_MAX);
                if let (Some(dst), Some(src)) = (self.prompt.get_mut(..n), line.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.prompt_len = n;
                self.prompt_shown = true;
            }
            None => self.prompt_shown = false,
        }
        if echo.len() > self.free() {
            return Err(Full { needed: echo.len() });
        }
        self.push(echo);
        Ok(self.total)
    }

    /// Copies the oldest queued bytes into `out` without removing them;
    /// returns how many.
    pub fn peek(&self, out: &mut [u8]) -> usize {
        let n = self.len.min(out.len());
        let first = n.min(N - self.head);
        if let (Some(dst), Some(src)) = (out.get_mut(..first), self.buf.get(self.head..self.head + first)) {
            dst.copy_from_slice(src);
        }
        if let (Some(dst), Some(src)) = (out.get_mut(first..n), self.buf.get(..n - first)) {
            dst.copy_from_slice(src);
        }
        n
    }

    /// Removes the `n` oldest bytes (after they were sent).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        self.head = if self.len == 0 { 0 } else { (self.head + n) % N };
    }

    /// Appends bytes the caller has made room for.
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(self.free()) {
            if let Some(slot) = self.buf.get_mut((self.head + self.len) % N) {
                *slot = b;
            }
            self.len += 1;
            self.total += 1;
        }
        if let Some(&last) = bytes.last() {
            self.mid_line = last != b'\n';
        }
    }

    /// The notice for bytes dropped so far (empty if none), starting on a
    /// new line unless `line_start`.
    fn notice(&self, line_start: bool) -> ([u8; 64], usize) {
        let mut out = [0u8; 64];
        let mut len = 0;
        if self.dropped == 0 {
            return (out, 0);
        }
        let mut put = |bytes: &[u8]| {
            for &b in bytes {
                if let Some(slot) = out.get_mut(len) {
                    *slot = b;
                    len += 1;
                }
            }
        };
        if !line_start {
            put(b"\r\n");
        }
        put(b"[console: ");
        let mut digits = [0u8; 20];
        let mut n = self.dropped;
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        put(digits.get(i..).unwrap_or(&[]));
        put(b" bytes of output dropped]\r\n");
        (out, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn take<const N: usize>(r: &mut Ring<N>) -> Vec<u8> {
        let mut out = alloc::vec![0u8; N];
        let n = r.peek(&mut out);
        r.consume(n);
        out.truncate(n);
        out
    }

    #[test]
    fn units_are_whole_and_in_order() {
        let mut r: Ring<16> = Ring::new();
        assert_eq!(r.queue_text(b"hello\r\n"), Ok(7));
        assert_eq!(r.queue_raw(b"abc"), Ok(10));
        assert_eq!(r.queue_text(b"too long line\r\n"), Err(Full { needed: 15 }));
        assert_eq!(r.len(), 10);
        let mut two = [0u8; 2];
        assert_eq!(r.peek(&mut two), 2);
        r.consume(2);
        assert_eq!(take(&mut r), b"llo\r\nabc");
        assert_eq!((r.total(), r.removed()), (10, 10));
        // Wraps around the end of the buffer.
        r.queue_text(b"0123456789\r\n").unwrap();
        assert_eq!(take(&mut r), b"0123456789\r\n");
        assert!(r.is_empty());
    }

    #[test]
    fn drops_are_announced_once_on_their_own_line() {
        let mut r: Ring<64> = Ring::new();
        r.queue_raw(b"partial").unwrap();
        r.drop_bytes(12);
        r.drop_bytes(300);
        r.queue_text(b"next\r\n").unwrap();
        assert_eq!(take(&mut r), b"partial\r\n[console: 312 bytes of output dropped]\r\nnext\r\n");
        r.queue_text(b"more\r\n").unwrap();
        assert_eq!(take(&mut r), b"more\r\n");
        r.drop_bytes(1);
        assert!(r.queue_text(&[b'x'; 40]).is_err(), "notice and text need 77 bytes");
        assert_eq!(r.dropped(), 1);
    }

    #[test]
    fn text_redraws_the_shell_line() {
        let mut r: Ring<128> = Ring::new();
        r.queue_edit(b"ferrovisor> ", Some(b"ferrovisor> ")).unwrap();
        r.queue_edit(b"ve", Some(b"ferrovisor> ve")).unwrap();
        r.queue_text(b"[g] line\r\n").unwrap();
        r.queue_text(b"no newline").unwrap();
        assert_eq!(
            take(&mut r),
            b"ferrovisor> ve\r\x1b[K[g] line\r\nferrovisor> ve\r\x1b[Kno newline\r\nferrovisor> ve"
                .as_slice()
        );
        // Enter: the command's own output is not wrapped.
        r.queue_edit(b"\r\n", None).unwrap();
        r.queue_text(b"answer\r\n").unwrap();
        assert_eq!(take(&mut r), b"\r\nanswer\r\n");
    }

    #[test]
    fn the_shell_line_is_recorded_even_when_its_echo_is_dropped() {
        let mut r: Ring<16> = Ring::new();
        r.queue_raw(&[b'.'; 14]).unwrap();
        assert!(r.queue_edit(b"abc", Some(b"> abc")).is_err());
        take(&mut r);
        r.queue_text(b"x\n").unwrap();
        assert_eq!(take(&mut r), b"\r\x1b[Kx\n> abc");
        let long = [b'p'; PROMPT_MAX + 10];
        r.queue_edit(b"", Some(&long)).unwrap();
        assert!(r.queue_text(b"y\n").is_err(), "a long shell line is kept up to PROMPT_MAX");
    }
}
