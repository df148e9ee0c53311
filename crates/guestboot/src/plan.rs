//! Where a guest's kernel, initrd and DTB go in its RAM (arm64 boot protocol).
//!
//! Rules (Linux `Documentation/arch/arm64/booting.rst`):
//! - an `Image` is loaded `text_offset` bytes above a 2 MiB aligned base, here
//!   the start of RAM, and entered at its first byte; it needs `image_size`
//!   bytes there (BSS included);
//! - a raw binary is loaded and entered at the start of RAM;
//! - the DTB is 8-byte aligned, at most 2 MiB and inside one 2 MiB block: it
//!   goes at the start of the last whole 2 MiB block of the first
//!   min(RAM size, 512 MiB) of RAM (or, in RAM too small for a whole block,
//!   as high as it fits there without crossing a 2 MiB boundary);
//! - the initrd (page aligned) ends right below the DTB's 2 MiB block.

use core::fmt;
use ferrovisor_types::GuestPhysAddr;

use crate::image::parse_header;

/// 2 MiB: kernel base alignment, largest DTB, DTB block.
pub const SZ_2M: u64 = 0x20_0000;
/// The DTB is placed inside this much of the start of RAM.
pub const DTB_WINDOW: u64 = 512 << 20;
/// Alignment of the initrd.
pub const PAGE: u64 = 0x1000;

/// One of the things placed in guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blob {
    /// The kernel image (with its BSS).
    Kernel,
    /// The initial ramdisk.
    Initrd,
    /// The device tree blob.
    Dtb,
}

impl fmt::Display for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Blob::Kernel => "kernel",
            Blob::Initrd => "initrd",
            Blob::Dtb => "DTB",
        })
    }
}

/// Where everything goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootPlan {
    /// Load address of the kernel file.
    pub kernel: GuestPhysAddr,
    /// Bytes reserved for the kernel: the file length or the header's
    /// `image_size`, whichever is larger.
    pub kernel_size: u64,
    /// Where the boot vCPU starts (x0 = DTB address).
    pub entry: GuestPhysAddr,
    /// Load address of the DTB.
    pub dtb: GuestPhysAddr,
    /// Load address of the initrd, if there is one.
    pub initrd: Option<GuestPhysAddr>,
}

/// Why no boot plan could be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The kernel file is empty.
    EmptyKernel,
    /// The DTB is empty.
    EmptyDtb,
    /// `ram_base + ram_size` runs past the end of the address space.
    RamOverflow {
        /// RAM base.
        ram_base: GuestPhysAddr,
        /// RAM size.
        ram_size: u64,
    },
    /// An `Image` kernel needs RAM starting on a 2 MiB boundary.
    UnalignedRamBase {
        /// RAM base.
        ram_base: GuestPhysAddr,
    },
    /// The DTB is larger than the 2 MiB the boot protocol allows.
    DtbTooLarge {
        /// DTB length.
        len: u64,
    },
    /// A blob at a fixed address runs past the end of RAM.
    OutsideRam {
        /// Which one.
        blob: Blob,
        /// Its address.
        start: u64,
        /// Its size.
        size: u64,
        /// End of RAM.
        ram_end: u64,
    },
    /// No room for a blob between the start of RAM and `top`.
    NoRoom {
        /// Which one.
        blob: Blob,
        /// Its size.
        size: u64,
        /// Start of RAM.
        ram_base: GuestPhysAddr,
        /// Highest end it could have had.
        top: u64,
    },
    /// Two blobs share bytes (each range is `[start, end)`).
    Overlap {
        /// First blob.
        a: Blob,
        /// Its range.
        a_range: (u64, u64),
        /// Second blob.
        b: Blob,
        /// Its range.
        b_range: (u64, u64),
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PlanError::EmptyKernel => f.write_str("the kernel image is empty"),
            PlanError::EmptyDtb => f.write_str("the DTB is empty"),
            PlanError::RamOverflow { ram_base, ram_size } => {
                write!(f, "RAM at {ram_base} of size {ram_size:#x} runs past the end of the address space")
            }
            PlanError::UnalignedRamBase { ram_base } => write!(
                f,
                "RAM starts at {ram_base}, not on a 2 MiB boundary ({SZ_2M:#x}): an arm64 \
                 Image must be loaded text_offset bytes above a 2 MiB aligned base"
            ),
            PlanError::DtbTooLarge { len } => {
                write!(f, "the DTB is {len:#x} bytes; the arm64 boot protocol allows at most {SZ_2M:#x}")
            }
            PlanError::OutsideRam { blob, start, size, ram_end } => {
                write!(f, "{blob} of {size:#x} bytes at {start:#x} runs past the end of RAM at {ram_end:#x}")
            }
            PlanError::NoRoom { blob, size, ram_base, top } => write!(
                f,
                "{blob} of {size:#x} bytes does not fit between the start of RAM {ram_base} \
                 and {top:#x}"
            ),
            PlanError::Overlap { a, a_range, b, b_range } => write!(
                f,
                "{a} [{:#x}, {:#x}) overlaps {b} [{:#x}, {:#x}); give the guest more RAM",
                a_range.0, a_range.1, b_range.0, b_range.1
            ),
        }
    }
}

const fn align_down(value: u64, align: u64) -> u64 {
    value & !(align - 1)
}

/// Places the kernel, DTB and initrd in the RAM region `[ram_base,
/// ram_base + ram_size)`; see the module documentation for the rules.
pub fn plan(
    ram_base: GuestPhysAddr,
    ram_size: u64,
    kernel: &[u8],
    initrd_len: Option<u64>,
    dtb_len: u64,
) -> Result<BootPlan, PlanError> {
    let base = ram_base.raw();
    let ram_end = base.checked_add(ram_size).ok_or(PlanError::RamOverflow { ram_base, ram_size })?;
    if kernel.is_empty() {
        return Err(PlanError::EmptyKernel);
    }
    let file_len = u64::try_from(kernel.len()).unwrap_or(u64::MAX);

    let (kernel_addr, kernel_size) = match parse_header(kernel) {
        Some(h) => {
            if !ram_base.is_aligned(SZ_2M) {
                return Err(PlanError::UnalignedRamBase { ram_base });
            }
            (base.saturating_add(h.text_offset), file_len.max(h.image_size))
        }
        None => (base, file_len),
    };
    match kernel_addr.checked_add(kernel_size) {
        Some(end) if end <= ram_end && kernel_addr < ram_end => {}
        _ => {
            return Err(PlanError::OutsideRam {
                blob: Blob::Kernel,
                start: kernel_addr,
                size: kernel_size,
                ram_end,
            })
        }
    }
    let kernel_range = (kernel_addr, kernel_addr + kernel_size);

    if dtb_len == 0 {
        return Err(PlanError::EmptyDtb);
    }
    if dtb_len > SZ_2M {
        return Err(PlanError::DtbTooLarge { len: dtb_len });
    }
    let window_end = base + ram_size.min(DTB_WINDOW);
    let dtb = place_dtb(base, window_end, dtb_len).ok_or(PlanError::NoRoom {
        blob: Blob::Dtb,
        size: dtb_len,
        ram_base,
        top: window_end,
    })?;
    let dtb_range = (dtb, dtb + dtb_len);
    check_disjoint(Blob::Kernel, kernel_range, Blob::Dtb, dtb_range)?;

    let initrd = match initrd_len {
        None => None,
        Some(len) => {
            let block = align_down(dtb, SZ_2M);
            let top = if block >= base { block } else { align_down(dtb, PAGE) };
            let start = top
                .checked_sub(len)
                .map(|s| align_down(s, PAGE))
                .filter(|&s| s >= base)
                .ok_or(PlanError::NoRoom { blob: Blob::Initrd, size: len, ram_base, top })?;
            let range = (start, start + len);
            check_disjoint(Blob::Kernel, kernel_range, Blob::Initrd, range)?;
            check_disjoint(Blob::Initrd, range, Blob::Dtb, dtb_range)?;
            Some(GuestPhysAddr(start))
        }
    };

    Ok(BootPlan {
        kernel: GuestPhysAddr(kernel_addr),
        kernel_size,
        entry: GuestPhysAddr(kernel_addr),
        dtb: GuestPhysAddr(dtb),
        initrd,
    })
}

/// The DTB address: the start of the last whole 2 MiB block in `[base, end)`,
/// else the highest 8-byte aligned spot that does not cross a 2 MiB boundary.
fn place_dtb(base: u64, end: u64, len: u64) -> Option<u64> {
    if let Some(block) = align_down(end, SZ_2M).checked_sub(SZ_2M) {
        if block >= base {
            return Some(block);
        }
    }
    let mut dtb = align_down(end.checked_sub(len)?, 8);
    let last = dtb + (len - 1);
    if dtb / SZ_2M != last / SZ_2M {
        dtb = align_down(align_down(last, SZ_2M).checked_sub(len)?, 8);
    }
    (dtb >= base).then_some(dtb)
}

fn check_disjoint(a: Blob, ar: (u64, u64), b: Blob, br: (u64, u64)) -> Result<(), PlanError> {
    if ar.0 < br.1 && br.0 < ar.1 {
        Err(PlanError::Overlap { a, a_range: ar, b, b_range: br })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
