//! Formatting console text into pieces the output ring takes whole.

use core::fmt;

/// Largest unit queued at once: formatted text is cut into pieces of this
/// size, so a message longer than this may interleave with other CPUs'.
pub const CHUNK: usize = 1024;

/// Formats `args` into pieces of at most [`CHUNK`] bytes, `\n` turned into
/// `\r\n`, and hands each to `emit`.
pub fn format_chunks(args: fmt::Arguments<'_>, emit: &mut dyn FnMut(&[u8])) {
    struct Chunker<'a> {
        buf: [u8; CHUNK],
        len: usize,
        emit: &'a mut dyn FnMut(&[u8]),
    }
    impl Chunker<'_> {
        fn push(&mut self, b: u8) {
            if self.len == CHUNK {
                (self.emit)(&self.buf);
                self.len = 0;
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }
    impl fmt::Write for Chunker<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for b in s.bytes() {
                if b == b'\n' {
                    // Keep "\r\n" in one piece.
                    if self.len + 2 > CHUNK {
                        (self.emit)(self.buf.get(..self.len).unwrap_or(&[]));
                        self.len = 0;
                    }
                    self.push(b'\r');
                }
                self.push(b);
            }
            Ok(())
        }
    }
    let mut c = Chunker { buf: [0; CHUNK], len: 0, emit };
    // Formatting into the buffer cannot fail; a failing Display impl only
    // cuts the text.
    let _ = fmt::write(&mut c, args);
    if c.len > 0 {
        (c.emit)(c.buf.get(..c.len).unwrap_or(&[]));
    }
}
