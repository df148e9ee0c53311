//! Turns one guest's console byte stream into whole lines tagged with the
//! guest's name, safe to print on the shared hypervisor console.

use alloc::string::String;

/// Longest partial line kept before it is flushed anyway.
pub const MAX_LINE: usize = 256;
/// Longest guest name shown in the prefix; longer names are cut.
pub const MAX_NAME: usize = 64;

/// Splits a byte stream into lines prefixed with `"[name] "`.
///
/// `\r` is dropped, `\n` ends a line, printable ASCII and tab pass through
/// and every other byte (control characters, bytes of non-ASCII UTF-8)
/// becomes `?`, so a guest cannot send escape sequences to the console.
#[derive(Clone, Debug)]
pub struct LineTagger {
    /// The prefix followed by the pending part of the current line.
    line: String,
    /// Length of the prefix in `line`.
    prefix_len: usize,
}

/// The console form of one byte, or `None` for a byte that is dropped.
fn sanitize(byte: u8) -> Option<char> {
    match byte {
        b'\r' => None,
        b'\t' | 0x20..=0x7e => Some(char::from(byte)),
        _ => Some('?'),
    }
}

impl LineTagger {
    /// A tagger for the guest called `name` (sanitized like the stream and
    /// cut to [`MAX_NAME`] characters).
    pub fn new(name: &str) -> Self {
        let mut line = String::with_capacity(MAX_NAME + MAX_LINE + 3);
        line.push('[');
        line.extend(name.bytes().take(MAX_NAME).filter_map(sanitize));
        line.push_str("] ");
        let prefix_len = line.len();
        Self { line, prefix_len }
    }

    /// The `"[name] "` prefix put before every line.
    pub fn prefix(&self) -> &str {
        self.line.get(..self.prefix_len).unwrap_or("")
    }

    /// Bytes of the current, unfinished line.
    pub fn pending(&self) -> usize {
        self.line.len() - self.prefix_len
    }

    /// Feeds one byte; calls `out` with each line it completes (prefix
    /// included, newline excluded). A line reaching [`MAX_LINE`] bytes is
    /// emitted at once and the rest continues on a new line.
    pub fn push(&mut self, byte: u8, out: &mut impl FnMut(&str)) {
        if byte == b'\n' {
            self.emit(out);
            return;
        }
        if let Some(c) = sanitize(byte) {
            self.line.push(c);
            if self.pending() >= MAX_LINE {
                self.emit(out);
            }
        }
    }

    /// Feeds every byte of `bytes`.
    pub fn push_all(&mut self, bytes: &[u8], out: &mut impl FnMut(&str)) {
        for &b in bytes {
            self.push(b, out);
        }
    }

    /// Emits the unfinished line, if any (for instance when the guest stops).
    pub fn flush(&mut self, out: &mut impl FnMut(&str)) {
        if self.pending() > 0 {
            self.emit(out);
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
    fn replaces_control_and_non_ascii_bytes() {
        let mut t = LineTagger::new("g");
        let lines = run(&mut t, "a\tb\x1b[31mé\x7f\0\n".as_bytes());
        assert_eq!(lines, ["[g] a\tb?[31m????"]);
        let mut odd = LineTagger::new("bad\nname\u{1b}");
        assert_eq!(odd.prefix(), "[bad?name?] ");
        assert_eq!(run(&mut odd, b"x\n"), ["[bad?name?] x"]);
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
}
