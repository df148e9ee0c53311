//! The boot bundle: a cpio "newc" archive carrying the config DTB and images.
//!
//! QEMU loads the bundle with `-initrd`; the hypervisor finds it through the
//! host DTB's `/chosen/linux,initrd-start` and reads files out of it in place
//! (no copy). `xtask` writes bundles with [`Writer`].
//!
//! Invariants: [`Bundle::parse`] never panics and never reads outside the
//! slice it was given; every malformed archive is a [`BundleError`].
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

/// The name of the config DTB inside every bundle.
pub const CONFIG_FILE: &str = "config.dtb";

const MAGIC: &[u8; 6] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

/// Why a bundle could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// A header at this offset does not start with the newc magic `070701`.
    BadMagic {
        /// Byte offset of the entry in the archive.
        offset: usize,
    },
    /// A header field at this offset is not 8 hex digits.
    BadField {
        /// Byte offset of the entry in the archive.
        offset: usize,
    },
    /// The archive ends inside the entry that starts at this offset.
    Truncated {
        /// Byte offset of the entry in the archive.
        offset: usize,
    },
    /// An entry name is not valid UTF-8 or lacks its NUL terminator.
    BadName {
        /// Byte offset of the entry in the archive.
        offset: usize,
    },
    /// The archive has no `TRAILER!!!` entry.
    NoTrailer,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::BadMagic { offset } => {
                write!(f, "boot bundle: no cpio newc header at offset {offset:#x} (is -initrd a bundle built by `cargo xtask`?)")
            }
            BundleError::BadField { offset } => {
                write!(f, "boot bundle: malformed cpio header field in entry at {offset:#x}")
            }
            BundleError::Truncated { offset } => {
                write!(f, "boot bundle: archive ends inside the entry at {offset:#x}")
            }
            BundleError::BadName { offset } => {
                write!(f, "boot bundle: entry name at {offset:#x} is not NUL-terminated UTF-8")
            }
            BundleError::NoTrailer => write!(f, "boot bundle: archive has no TRAILER!!! entry"),
        }
    }
}

/// One regular file in the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct File<'a> {
    /// Path inside the archive, without a leading `./` or `/`.
    pub name: &'a str,
    /// The file's bytes, borrowed from the archive.
    pub data: &'a [u8],
}

/// A parsed bundle: the regular files it holds, borrowed from its bytes.
#[derive(Debug, Clone, Default)]
pub struct Bundle<'a> {
    files: Vec<File<'a>>,
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

fn hex_field(bytes: &[u8], entry: usize, index: usize) -> Result<usize, BundleError> {
    let start = 6 + index * 8;
    let field =
        bytes.get(entry + start..entry + start + 8).ok_or(BundleError::Truncated { offset: entry })?;
    let mut value: usize = 0;
    for &b in field {
        let digit = (b as char).to_digit(16).ok_or(BundleError::BadField { offset: entry })?;
        value = (value << 4) | digit as usize;
    }
    Ok(value)
}

const MODE_TYPE_MASK: usize = 0o170000;
const MODE_REGULAR: usize = 0o100000;

impl<'a> Bundle<'a> {
    /// Reads every entry of a newc archive. Directories and other non-regular
    /// entries are skipped; the archive must end with `TRAILER!!!`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BundleError> {
        let mut files = Vec::new();
        let mut offset = 0usize;
        loop {
            let header = bytes
                .get(offset..offset.saturating_add(HEADER_LEN))
                .ok_or(BundleError::Truncated { offset })?;
            if &header[..6] != MAGIC {
                return Err(BundleError::BadMagic { offset });
            }
            let mode = hex_field(bytes, offset, 1)?;
            let file_size = hex_field(bytes, offset, 6)?;
            let name_size = hex_field(bytes, offset, 11)?;
            let name_start = offset + HEADER_LEN;
            let name_end = name_start.checked_add(name_size).ok_or(BundleError::Truncated { offset })?;
            let raw_name = bytes.get(name_start..name_end).ok_or(BundleError::Truncated { offset })?;
            let name = match raw_name.split_last() {
                Some((0, name)) => core::str::from_utf8(name).map_err(|_| BundleError::BadName { offset })?,
                _ => return Err(BundleError::BadName { offset }),
            };
            let data_start = align4(name_end).ok_or(BundleError::Truncated { offset })?;
            let data_end = data_start.checked_add(file_size).ok_or(BundleError::Truncated { offset })?;
            let data = bytes.get(data_start..data_end).ok_or(BundleError::Truncated { offset })?;
            if name == TRAILER {
                return Ok(Bundle { files });
            }
            if mode & MODE_TYPE_MASK == MODE_REGULAR {
                let name = name.trim_start_matches("./").trim_start_matches('/');
                files.push(File { name, data });
            }
            offset = align4(data_end).ok_or(BundleError::NoTrailer)?;
            if offset >= bytes.len() {
                return Err(BundleError::NoTrailer);
            }
        }
    }

    /// The file with this exact name, if present.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.files.iter().find(|f| f.name == name).map(|f| f.data)
    }

    /// All regular files, in archive order.
    pub fn files(&self) -> &[File<'a>] {
        &self.files
    }

    /// The names of all regular files, in archive order.
    pub fn names(&self) -> Vec<&'a str> {
        self.files.iter().map(|f| f.name).collect()
    }
}

/// Builds a newc archive in memory.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
    inode: u32,
}

impl Writer {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.inode += 1;
        let name_size = name.len() + 1;
        let fields: [u32; 13] =
            [self.inode, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, name_size as u32, 0];
        self.out.extend_from_slice(MAGIC);
        for field in fields {
            for shift in (0..8).rev() {
                let digit = (field >> (shift * 4)) & 0xf;
                self.out.push(b"0123456789abcdef"[digit as usize]);
            }
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// Adds a regular file. Names longer than 4 GiB or files larger than 4 GiB
    /// are not representable in newc and are the caller's bug.
    pub fn add(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, 0o100644, data);
        self
    }

    /// Appends the trailer and returns the archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, &[]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let mut w = Writer::new();
        w.add(CONFIG_FILE, b"\xd0\x0d\xfe\xed").add("linux/Image", &[7u8; 1001]).add("x", b"");
        let bytes = w.finish();
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(b.names(), ["config.dtb", "linux/Image", "x"]);
        assert_eq!(b.get("linux/Image").unwrap().len(), 1001);
        assert_eq!(b.get(CONFIG_FILE).unwrap(), b"\xd0\x0d\xfe\xed");
        assert_eq!(b.get("nope"), None);
    }

    #[test]
    fn errors_are_reported() {
        assert_eq!(Bundle::parse(b"").unwrap_err(), BundleError::Truncated { offset: 0 });
        let mut junk = [b'0'; 120];
        junk[..6].copy_from_slice(b"070707");
        assert_eq!(Bundle::parse(&junk).unwrap_err(), BundleError::BadMagic { offset: 0 });
        let mut w = Writer::new();
        w.add("a", b"abc");
        let mut bytes = w.finish();
        let trailer_len = 124; // header + "TRAILER!!!\0", padded to 4
        bytes.truncate(bytes.len() - trailer_len);
        assert_eq!(Bundle::parse(&bytes).unwrap_err(), BundleError::NoTrailer);
        bytes.truncate(bytes.len() - 2); // into the data of "a"
        assert_eq!(Bundle::parse(&bytes).unwrap_err(), BundleError::Truncated { offset: 0 });
    }

    #[test]
    fn reads_archives_made_by_gnu_cpio_layout() {
        // A directory entry and a "./"-prefixed name, as `cpio -H newc` writes.
        let mut w = Writer::new();
        w.entry("linux", 0o040755, &[]);
        w.entry("./linux/initrd.gz", 0o100644, b"gz");
        let bytes = w.finish();
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(b.names(), ["linux/initrd.gz"]);
    }

    proptest! {
        #[test]
        fn never_panics_on_mutations(flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..8), cut in 0usize..400) {
            let mut w = Writer::new();
            w.add(CONFIG_FILE, &[1, 2, 3, 4, 5]).add("img", &[9; 100]);
            let mut bytes = w.finish();
            for (at, v) in flips {
                let len = bytes.len();
                bytes[at % len] = v;
            }
            bytes.truncate(cut.min(bytes.len()));
            let _ = Bundle::parse(&bytes);
        }
    }
}
