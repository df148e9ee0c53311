//! The arm64 Linux `Image` header (Linux `Documentation/arch/arm64/booting.rst`).
//!
//! The 64-byte header starts with two instruction words and carries, little
//! endian: `text_offset` at byte 8, `image_size` at 16, `flags` at 24 and the
//! magic `"ARM\x64"` at 56. Anything without the magic is a raw binary.

/// Length of the header.
pub const HEADER_LEN: usize = 64;
/// The magic at byte 56.
pub const MAGIC: [u8; 4] = *b"ARM\x64";
/// `text_offset` assumed for kernels older than v3.17 (`image_size` 0).
pub const LEGACY_TEXT_OFFSET: u64 = 0x80000;

/// The fields of an arm64 `Image` header used to place the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset of the image from a 2 MiB aligned base ([`LEGACY_TEXT_OFFSET`]
    /// when the header's `image_size` is 0).
    pub text_offset: u64,
    /// Bytes the kernel occupies once running, BSS included (0 = unknown:
    /// a kernel older than v3.17).
    pub image_size: u64,
    /// Informative flags (endianness, page size, placement).
    pub flags: u64,
}

/// Kernel page size announced in the header flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// Not specified.
    Unspecified,
    /// 4 KiB.
    K4,
    /// 16 KiB.
    K16,
    /// 64 KiB.
    K64,
}

impl ImageHeader {
    /// Flags bit 0: the kernel is big endian.
    pub const fn big_endian(&self) -> bool {
        self.flags & 1 != 0
    }

    /// Flags bits 1-2: the kernel's page size.
    pub const fn page_size(&self) -> PageSize {
        match (self.flags >> 1) & 3 {
            1 => PageSize::K4,
            2 => PageSize::K16,
            3 => PageSize::K64,
            _ => PageSize::Unspecified,
        }
    }

    /// Flags bit 3: the 2 MiB aligned base may be anywhere in RAM (when
    /// clear it should be as close as possible to the start of RAM).
    pub const fn placement_anywhere(&self) -> bool {
        self.flags & 8 != 0
    }
}

fn le64(image: &[u8], at: usize) -> Option<u64> {
    let bytes = image.get(at..at.checked_add(8)?)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    Some(u64::from_le_bytes(word))
}

/// Reads the `Image` header at the start of `image`; `None` when there is no
/// header (a raw binary, or fewer than 64 bytes).
pub fn parse_header(image: &[u8]) -> Option<ImageHeader> {
    if image.len() < HEADER_LEN || image.get(56..60)? != MAGIC {
        return None;
    }
    let image_size = le64(image, 16)?;
    let flags = le64(image, 24)?;
    let text_offset = if image_size == 0 { LEGACY_TEXT_OFFSET } else { le64(image, 8)? };
    Some(ImageHeader { text_offset, image_size, flags })
}

/// Builds a 64-byte header (tests of this crate and its users).
#[cfg(test)]
pub(crate) fn test_header(text_offset: u64, image_size: u64, flags: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[8..16].copy_from_slice(&text_offset.to_le_bytes());
    h[16..24].copy_from_slice(&image_size.to_le_bytes());
    h[24..32].copy_from_slice(&flags.to_le_bytes());
    h[56..60].copy_from_slice(&MAGIC);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_a_modern_header() {
        let h = test_header(0, 0x1a3_0000, 0xa);
        let hdr = parse_header(&h).unwrap();
        assert_eq!(hdr, ImageHeader { text_offset: 0, image_size: 0x1a3_0000, flags: 0xa });
        assert!(!hdr.big_endian());
        assert_eq!(hdr.page_size(), PageSize::K4);
        assert!(hdr.placement_anywhere());
    }

    #[test]
    fn old_kernel_gets_default_text_offset() {
        let h = test_header(0x1234, 0, 0);
        assert_eq!(parse_header(&h).unwrap().text_offset, LEGACY_TEXT_OFFSET);
    }

    #[test]
    fn raw_binaries_and_short_inputs() {
        assert_eq!(parse_header(&[0u8; 4096]), None);
        assert_eq!(parse_header(&test_header(0, 1, 0)[..63]), None);
        assert_eq!(parse_header(&[]), None);
        assert!(parse_header(&test_header(0, 1, 0)).is_some());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse_header(&bytes);
        }
    }
}
