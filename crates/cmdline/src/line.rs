//! A minimal line editor for the serial console: printable characters,
//! backspace, Ctrl-C and Ctrl-U. Terminal escape sequences (arrow, Home,
//! Delete and function keys in either cursor mode, Alt+key) are ignored
//! whole: none of their bytes reaches the line.

use alloc::string::String;
use alloc::vec::Vec;

/// The longest line accepted; further characters are dropped (with a bell).
pub const MAX_LINE: usize = 256;

/// What one input byte produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Nothing finished yet; echo these bytes back.
    Echo(Vec<u8>),
    /// A full line was entered (Enter); echo a newline.
    Line(String),
    /// The line was abandoned (Ctrl-C).
    Cancel,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Started,
    /// `ESC [`: parameters and intermediates up to a final byte.
    Csi,
    /// `ESC O`: one more byte (keys in application cursor mode, F1-F4).
    Ss3,
}

/// Accumulates console bytes into lines.
#[derive(Debug, Default)]
pub struct LineEditor {
    buf: String,
    escape: Escape,
    last_was_cr: bool,
}

impl LineEditor {
    /// An empty editor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one byte.
    pub fn feed(&mut self, byte: u8) -> Event {
        let after_cr = core::mem::replace(&mut self.last_was_cr, byte == b'\r');
        // Inside a sequence a printable byte is swallowed; a control byte
        // (Enter, Ctrl-C, another ESC) ends the sequence and acts as usual.
        let (next, swallowed) = match (self.escape, byte) {
            (Escape::None, _) => (Escape::None, false),
            (Escape::Started, b'[') => (Escape::Csi, true),
            (Escape::Started, b'O') => (Escape::Ss3, true),
            (Escape::Csi, 0x20..=0x3f) => (Escape::Csi, true),
            (Escape::Started | Escape::Csi | Escape::Ss3, 0x20..=0x7e) => (Escape::None, true),
            _ => (Escape::None, false),
        };
        self.escape = next;
        if swallowed {
            return Event::Echo(Vec::new());
        }
        match byte {
            b'\r' => Event::Line(core::mem::take(&mut self.buf)),
            b'\n' if after_cr => Event::Echo(Vec::new()),
            b'\n' => Event::Line(core::mem::take(&mut self.buf)),
            0x1b => {
                self.escape = Escape::Started;
                Event::Echo(Vec::new())
            }
            0x03 => {
                self.buf.clear();
                Event::Cancel
            }
            0x15 => {
                let n = self.buf.chars().count();
                self.buf.clear();
                Event::Echo(erase(n))
            }
            0x08 | 0x7f => match self.buf.pop() {
                Some(_) => Event::Echo(erase(1)),
                None => Event::Echo(Vec::new()),
            },
            0x20..=0x7e if self.buf.len() < MAX_LINE => {
                self.buf.push(byte as char);
                Event::Echo(alloc::vec![byte])
            }
            0x20..=0x7e => Event::Echo(alloc::vec![0x07]),
            _ => Event::Echo(Vec::new()),
        }
    }

    /// The line typed so far.
    pub fn pending(&self) -> &str {
        &self.buf
    }
}

fn erase(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 3);
    for _ in 0..n {
        out.extend_from_slice(b"\x08 \x08");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_all(ed: &mut LineEditor, bytes: &[u8]) -> Vec<Event> {
        bytes.iter().map(|&b| ed.feed(b)).collect()
    }

    #[test]
    fn edits_and_finishes_lines() {
        let mut ed = LineEditor::new();
        let ev = feed_all(&mut ed, b"hx\x7fi\r\n");
        assert_eq!(ev[2], Event::Echo(b"\x08 \x08".to_vec()));
        assert_eq!(ev[4], Event::Line("hi".into()));
        assert_eq!(ev[5], Event::Echo(Vec::new()));
        assert_eq!(ed.pending(), "");
        let ev = feed_all(&mut ed, b"ab\x1b[Ac\n");
        assert_eq!(ev.last(), Some(&Event::Line("abc".into())));
        assert_eq!(feed_all(&mut ed, b"zz\x03").last(), Some(&Event::Cancel));
        assert_eq!(ed.pending(), "");
    }

    #[test]
    fn escape_sequences_never_reach_the_line() {
        let keys: [&[u8]; 12] = [
            b"\x1b[A",       // up, normal cursor mode
            b"\x1bOB",       // down, application cursor mode
            b"\x1b[1;5C",    // Ctrl-right
            b"\x1b[3~",      // Delete
            b"\x1b[15~",     // F5
            b"\x1bOP",       // F1
            b"\x1b[H",       // Home
            b"\x1b[200~",    // bracketed paste start
            b"\x1bx",        // Alt-x
            b"\x1b[<0;1;2M", // mouse report
            b"\x1b\x1b[D",   // ESC then left
            b"\x1b[",        // cut short (by the Enter below)
        ];
        for key in keys {
            let mut ed = LineEditor::new();
            let mut input = b"ver".to_vec();
            input.extend_from_slice(key);
            input.extend_from_slice(b"sion");
            let cut_short = key == b"\x1b[";
            if cut_short {
                input.truncate(3 + key.len());
                input.push(b'\r');
            } else {
                input.push(b'\r');
            }
            let events = feed_all(&mut ed, &input);
            let want = if cut_short { "ver" } else { "version" };
            assert_eq!(events.last(), Some(&Event::Line(want.into())), "key {key:?}");
            assert!(events.iter().all(|e| match e {
                Event::Echo(bytes) => !bytes.contains(&0x1b),
                _ => true,
            }));
        }
        // Ctrl-C inside a sequence still cancels.
        let mut ed = LineEditor::new();
        assert_eq!(feed_all(&mut ed, b"ab\x1b[1\x03").last(), Some(&Event::Cancel));
        assert_eq!(ed.pending(), "");
    }

    #[test]
    fn long_lines_are_capped() {
        let mut ed = LineEditor::new();
        for _ in 0..MAX_LINE {
            ed.feed(b'a');
        }
        assert_eq!(ed.feed(b'a'), Event::Echo(alloc::vec![7]));
        assert_eq!(ed.pending().len(), MAX_LINE);
    }

    proptest! {
        #[test]
        fn any_bytes_are_safe(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut ed = LineEditor::new();
            for b in bytes {
                let _ = ed.feed(b);
                prop_assert!(ed.pending().len() <= MAX_LINE);
            }
        }
    }
}
