//! Turns one guest's console byte stream into whole lines tagged with the
//! guest's name, safe to print on the shared hypervisor console.

use alloc::string::String;
use core::fmt::Write;

/// Longest partial line (in shown characters) kept before it is flushed
/// anyway.
pub const MAX_LINE: usize = 256;
/// Longest guest name shown in the prefix; longer names are cut.
pub const MAX_NAME: usize = 64;

/// Where the tagger is inside a terminal escape sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Escape {
    /// Plain text.
    #[default]
    None,
    /// After ESC.
    Started,
    /// In a control sequence (`ESC [` parameters, final byte).
    Csi,
    /// In a two-byte sequence with intermediate bytes (`ESC ( B`).
    Intermediate,
    /// In a string (`ESC ]` title, `ESC P` device control ...) up to BEL
    /// or ST (`ESC \`).
    String,
    /// ESC seen inside a string: `\` ends it.
    StringEsc,
}

/// Splits a byte stream into lines prefixed with `"[name] "`.
///
/// `\n` ends a line and `\r` is dropped. ANSI escape sequences (colours,
/// cursor moves, titles) are removed whole. Printable ASCII and tab pass
/// through; every other byte (control characters, a stray ESC, bytes of
/// non-ASCII UTF-8) is shown as `\xNN`, so a guest cannot send escape
/// sequences to the console and the reader still sees what was there.
#[derive(Clone, Debug)]
pub struct LineTagger {
    /// The prefix followed by the pending part of the current line.
    line: String,
    /// Length of the prefix in `line`.
    prefix_len: usize,
    escape: Escape,
    /// The guest run the pending line belongs to (see [`LineTagger::run`]).
    run: u32,
}

/// Appends the console form of a byte that is not part of an escape
/// sequence (`\r` and `\n` are handled by the caller).
fn show(line: &mut String, byte: u8) {
    match byte {
        b'\t' | 0x20..=0x7e => line.push(char::from(byte)),
        _ => {
            let _ = write!(line, "\\x{byte:02x}");
        }
    }
}

impl LineTagger {
    /// A tagger for the guest called `name` (shown like the stream and cut
    /// to [`MAX_NAME`] bytes).
    pub fn new(name: &str) -> Self {
        let mut line = String::with_capacity(MAX_NAME * 4 + MAX_LINE + 8);
        line.push('[');
        for &b in name.as_bytes().iter().take(MAX_NAME) {
            show(&mut line, b);
        }
        line.push_str("] ");
        let prefix_len = line.len();
        Self { line, prefix_len, escape: Escape::None, run: 0 }
    }

    /// The `"[name] "` prefix put before every line.
    pub fn prefix(&self) -> &str {
        self.line.get(..self.prefix_len).unwrap_or("")
    }

    /// Characters of the current, unfinished line.
    pub fn pending(&self) -> usize {
        self.line.len() - self.prefix_len
    }

    /// Feeds one byte; calls `out` with each line it completes (prefix
    /// included, newline excluded). A line reaching [`MAX_LINE`] characters
    /// is emitted at once and the rest continues on a new line.
    pub fn push(&mut self, byte: u8, out: &mut impl FnMut(&str)) {
        if !self.in_escape(byte) {
            match byte {
                b'\n' => return self.emit(out),
                b'\r' => return,
                // A new sequence; an ESC it cuts short was shown above, so
                // the length check below still applies (ESC ESC ESC ...).
                0x1b => self.escape = Escape::Started,
                _ => show(&mut self.line, byte),
            }
        }
        if self.pending() >= MAX_LINE {
            self.emit(out);
        }
    }

    /// Consumes `byte` if it belongs to an escape sequence; false if it is
    /// to be shown (the sequence, if any, was cut short by it).
    fn in_escape(&mut self, byte: u8) -> bool {
        let (next, consumed) = match (self.escape, byte) {
            (Escape::None, _) => return false,
            (Escape::Started, b'[') => (Escape::Csi, true),
            (Escape::Started, b']' | b'P' | b'X' | b'^' | b'_') => (Escape::String, true),
            (Escape::Started | Escape::Intermediate, 0x20..=0x2f) => (Escape::Intermediate, true),
            (Escape::Started | Escape::Intermediate, 0x30..=0x7e) => (Escape::None, true),
            (Escape::Csi, 0x20..=0x3f) => (Escape::Csi, true),
            (Escape::Csi, 0x40..=0x7e) => (Escape::None, true),
            (Escape::String, 0x07) => (Escape::None, true),
            (Escape::String, 0x1b) => (Escape::StringEsc, true),
            (Escape::String, b) if b != b'\n' => (Escape::String, true),
            (Escape::StringEsc, b'\\') => (Escape::None, true),
            // ESC inside a string starts a new sequence.
            (Escape::StringEsc, _) => {
                self.escape = Escape::Started;
                return self.in_escape(byte);
            }
            // A lone ESC followed by something that is not a sequence.
            (Escape::Started, _) => {
                show(&mut self.line, 0x1b);
                (Escape::None, false)
            }
            _ => (Escape::None, false),
        };
        self.escape = next;
        consumed
    }

    /// Feeds every byte of `bytes`.
    pub fn push_all(&mut self, bytes: &[u8], out: &mut impl FnMut(&str)) {
        for &b in bytes {
            self.push(b, out);
        }
    }

    /// Emits the unfinished line, if any (for instance when the guest
    /// stops), and forgets an unfinished escape sequence.
    pub fn flush(&mut self, out: &mut impl FnMut(&str)) {
        self.escape = Escape::None;
        if self.pending() > 0 {
            self.emit(out);
        }
    }

    /// Marks output as coming from guest run `run` (bumped on every guest
    /// start): the unfinished line of an earlier run is flushed first, so
    /// it is never glued to the new run's first line.
    pub fn run(&mut self, run: u32, out: &mut impl FnMut(&str)) {
        if run != self.run {
            self.flush(out);
            self.run = run;
        }
    }

    fn emit(&mut self, out: &mut impl FnMut(&str)) {
        out(&self.line);
        self.line.truncate(self.prefix_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn run(t: &mut LineTagger, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        t.push_all(bytes, &mut |l: &str| lines.push(l.to_string()));
        lines
    }

    #[test]
    fn tags_complete_lines_only() {
        let mut t = LineTagger::new("linux0");
        assert_eq!(t.prefix(), "[linux0] ");
        assert_eq!(run(&mut t, b"hello\r\nwor"), ["[linux0] hello"]);
        assert_eq!(t.pending(), 3);
        assert_eq!(run(&mut t, b"ld\n\n"), ["[linux0] world", "[linux0] "]);
        let mut flushed = Vec::new();
        t.flush(&mut |l: &str| flushed.push(l.to_string()));
        assert!(flushed.is_empty());
        run(&mut t, b"tail");
        t.flush(&mut |l: &str| flushed.push(l.to_string()));
        assert_eq!(flushed, ["[linux0] tail"]);
    }

    #[test]
    fn escape_sequences_are_removed_other_bytes_shown_escaped() {
        let mut t = LineTagger::new("g");
        // Colours (CSI), a title (OSC ended by BEL and by ST), a charset
        // switch (ESC ( B), a cursor save (ESC 7).
        let lines = run(&mut t, b"\x1b[1;31mred\x1b[0m \x1b]0;title\x07a\x1b]2;t\x1b\\b \x1b(Bc\x1b7d\n");
        assert_eq!(lines, ["[g] red ab cd"]);
        let lines = run(&mut t, "a\tb\x07é\x7f\0\x08\n".as_bytes());
        assert_eq!(lines, ["[g] a\tb\\x07\\xc3\\xa9\\x7f\\x00\\x08"]);
        // A lone ESC, an ESC cut short by a newline, a CSI cut short.
        assert_eq!(run(&mut t, b"x\x1b\x01y\x1b\n"), ["[g] x\\x1b\\x01y\\x1b"]);
        assert_eq!(run(&mut t, b"\x1b[12\x01z\n"), ["[g] \\x01z"]);
        // A run of ESCs shows each one and still splits long lines.
        let escs = [0x1bu8; 3 * MAX_LINE];
        let lines = run(&mut t, &escs);
        assert!(!lines.is_empty() && lines.iter().all(|l| l.len() <= 4 + MAX_LINE + 7), "{:?}", lines.len());
        let odd = LineTagger::new("bad\nname\u{1b}");
        assert_eq!(odd.prefix(), "[bad\\x0aname\\x1b] ");
    }

    #[test]
    fn an_unfinished_line_is_not_glued_to_the_next_run() {
        let mut t = LineTagger::new("g");
        let mut lines = Vec::new();
        t.run(1, &mut |l: &str| lines.push(l.to_string()));
        t.push_all(b"boot 1\nhalf a li\x1b[3", &mut |l: &str| lines.push(l.to_string()));
        t.run(1, &mut |l: &str| lines.push(l.to_string()));
        assert_eq!(lines, ["[g] boot 1"]);
        t.run(2, &mut |l: &str| lines.push(l.to_string()));
        t.push_all(b"1mboot 2\n", &mut |l: &str| lines.push(l.to_string()));
        assert_eq!(lines, ["[g] boot 1", "[g] half a li", "[g] 1mboot 2"]);
    }

    #[test]
    fn long_lines_are_split() {
        let mut t = LineTagger::new("g");
        let long = [b'x'; MAX_LINE * 2 + 5];
        let lines = run(&mut t, &long);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == 4 + MAX_LINE));
        assert_eq!(t.pending(), 5);
        let huge_name = "n".repeat(1000);
        assert_eq!(LineTagger::new(&huge_name).prefix().len(), MAX_NAME + 3);
    }

    proptest! {
        #[test]
        fn output_is_plain_text_and_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut t = LineTagger::new("g");
            for line in run(&mut t, &bytes) {
                prop_assert!(line.bytes().all(|b| b == b'\t' || (0x20..=0x7e).contains(&b)), "{:?}", line);
                prop_assert!(line.len() <= 4 + MAX_LINE + 7, "one byte adds at most a shown ESC and itself");
            }
        }
    }
}
