//! A small cpio "newc" writer for the initramfs: unlike
//! `ferrovisor_bundle::Writer` (regular files only) it also writes
//! directories, symlinks and device nodes, which Linux's initramfs unpacker
//! creates as such.

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// File type bits of a cpio mode.
pub const S_IFDIR: u32 = 0o040000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;

/// Builds a newc archive in memory. Names are written without a leading `/`;
/// every timestamp and owner is 0, so the same inputs give the same bytes.
#[derive(Debug, Default)]
pub struct Newc {
    out: Vec<u8>,
    inode: u32,
}

impl Newc {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory with permission bits `perm` (e.g. 0o755).
    pub fn dir(&mut self, name: &str, perm: u32) -> &mut Self {
        self.entry(name, S_IFDIR | perm, 2, &[], (0, 0))
    }

    /// A regular file with permission bits `perm`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(name, S_IFREG | perm, 1, data, (0, 0))
    }

    /// A symbolic link `name -> target` (the target is the entry's data).
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, S_IFLNK | 0o777, 1, target.as_bytes(), (0, 0))
    }

    /// A character device node `major:minor` with permission bits `perm`.
    pub fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> &mut Self {
        self.entry(name, S_IFCHR | perm, 1, &[], (major, minor))
    }

    /// Appends the trailer and returns the archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, 1, &[], (0, 0));
        self.out
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, data: &[u8], rdev: (u32, u32)) -> &mut Self {
        self.inode += 1;
        let name = name.trim_start_matches('/');
        let name_size = name.len() as u32 + 1;
        let fields: [u32; 13] =
            [self.inode, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, name_size, 0];
        self.out.extend_from_slice(MAGIC);
        for field in fields {
            self.out.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
        self
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrovisor_bundle::Bundle;

    /// (name, mode, rdevmajor, rdevminor, data) of every entry, trailer excluded.
    type Entry = (String, u32, u32, u32, Vec<u8>);

    /// A strict reader for the tests: every header field, not only regular files.
    fn entries(bytes: &[u8]) -> Vec<Entry> {
        let field = |at: usize, i: usize| {
            let s = std::str::from_utf8(&bytes[at + 6 + i * 8..at + 14 + i * 8]).unwrap();
            u32::from_str_radix(s, 16).unwrap() as usize
        };
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(&bytes[at..at + 6], MAGIC, "magic at {at}");
            let (mode, size, name_size) = (field(at, 1), field(at, 6), field(at, 11));
            let name = std::str::from_utf8(&bytes[at + 110..at + 110 + name_size - 1]).unwrap();
            assert_eq!(bytes[at + 110 + name_size - 1], 0);
            let data_at = (at + 110 + name_size + 3) & !3;
            if name == TRAILER {
                assert_eq!((data_at + size + 3) & !3, bytes.len());
                return out;
            }
            let data = bytes[data_at..data_at + size].to_vec();
            out.push((name.to_string(), mode as u32, field(at, 9) as u32, field(at, 10) as u32, data));
            at = (data_at + size + 3) & !3;
        }
    }

    fn sample() -> Vec<u8> {
        let mut w = Newc::new();
        w.dir("/dev", 0o755)
            .char_dev("/dev/console", 0o600, 5, 1)
            .dir("bin", 0o755)
            .file("bin/busybox", 0o755, &[0xaa; 1001])
            .symlink("bin/sh", "busybox")
            .file("init", 0o755, b"#!/bin/sh\n")
            .dir("lib/modules", 0o755)
            .symlink("lib/modules/6.1.0-56-cloud-arm64", ".");
        w.finish()
    }

    #[test]
    fn every_kind_of_entry_round_trips() {
        let e = entries(&sample());
        let kinds: Vec<(&str, u32)> = e.iter().map(|(n, m, ..)| (n.as_str(), *m)).collect();
        assert_eq!(
            kinds,
            [
                ("dev", 0o040755),
                ("dev/console", 0o020600),
                ("bin", 0o040755),
                ("bin/busybox", 0o100755),
                ("bin/sh", 0o120777),
                ("init", 0o100755),
                ("lib/modules", 0o040755),
                ("lib/modules/6.1.0-56-cloud-arm64", 0o120777),
            ]
        );
        assert_eq!((e[1].2, e[1].3), (5, 1), "/dev/console is char 5:1");
        assert_eq!(e[4].4, b"busybox", "a symlink's data is its target");
        assert_eq!(e[7].4, b".");
        assert!(e[0].4.is_empty() && e[1].4.is_empty());
    }

    #[test]
    fn bundle_parser_reads_the_regular_files_and_skips_the_rest() {
        let bytes = sample();
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(b.names(), ["bin/busybox", "init"]);
        assert_eq!(b.get("bin/busybox").unwrap(), &[0xaa; 1001][..]);
        assert_eq!(b.get("init").unwrap(), b"#!/bin/sh\n");
    }

    #[test]
    fn output_is_deterministic_and_aligned() {
        assert_eq!(sample(), sample());
        assert_eq!(sample().len() % 4, 0);
        assert_eq!(Newc::new().finish().len(), 124, "trailer only: 110 + 11 bytes of name, padded");
    }
}
