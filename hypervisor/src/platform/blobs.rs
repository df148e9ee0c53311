//! The two blobs the boot loader hands over, as byte slices: the host DTB
//! (address in x0) and the boot bundle (`/chosen/linux,initrd-*`).
//!
//! A blob is turned into a `&'static [u8]` only after its range is checked
//! to lie in the normal-memory part of the EL2 map, and the range is
//! recorded: `hostram` keeps every recorded range out of guests' hands, so
//! nothing writes a blob for the rest of the run.

use crate::arch::aarch64::mmu;
use ferrovisor_sync::Mutex;
use ferrovisor_types::HostRegion;

const FDT_MAGIC: u32 = 0xd00d_feed;
/// Larger host DTBs are refused (QEMU's is about 8 KiB, padded to 1 MiB).
const MAX_DTB: usize = 2 * 1024 * 1024;

/// Ranges handed out as slices (the DTB, the bundle).
static HANDED_OUT: Mutex<[Option<HostRegion>; 2]> = Mutex::new([None; 2]);

/// Why a boot blob could not be used.
#[derive(Debug, Clone, Copy)]
pub enum BlobError {
    /// x0 held no address.
    Null,
    /// The DTB header's magic is wrong.
    BadMagic(u32),
    /// The DTB claims a size beyond `MAX_DTB`.
    TooLarge(usize),
    /// The blob is not inside host RAM.
    OutsideRam,
    /// The blob is not in the hypervisor's normal-memory map.
    Unmapped,
    /// The blob overlaps the hypervisor image.
    OverlapsHypervisor,
}

impl core::fmt::Display for BlobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlobError::Null => write!(f, "no address (or a misaligned one)"),
            BlobError::BadMagic(m) => write!(f, "magic {m:#010x} is not a DTB's 0xd00dfeed"),
            BlobError::TooLarge(n) => write!(f, "header claims {n} bytes, more than {MAX_DTB}"),
            BlobError::OutsideRam => write!(f, "it does not lie inside host RAM"),
            BlobError::Unmapped => {
                write!(f, "it lies outside the RAM window the hypervisor maps (1 GiB to 256 GiB)")
            }
            BlobError::OverlapsHypervisor => write!(f, "it overlaps the hypervisor image"),
        }
    }
}

/// Makes `size` bytes at `addr` a slice for the rest of the run, after
/// checking that the EL2 map covers them as normal memory, and records the
/// range for `hostram`.
#[inline(never)]
fn keep(slot: usize, addr: u64, size: usize) -> Result<&'static [u8], BlobError> {
    if !mmu::is_normal_memory(addr, size as u64) {
        return Err(BlobError::Unmapped);
    }
    let image = super::image::layout();
    if addr < image.end as u64 && addr + size as u64 > image.start as u64 {
        return Err(BlobError::OverlapsHypervisor);
    }
    if let Some(s) = HANDED_OUT.lock().get_mut(slot) {
        *s = Some(HostRegion::new(addr, size as u64));
    }
    // SAFETY: the range is non-empty and inside the normal-memory part of
    // the EL2 identity map (checked above), so every byte is readable. The
    // boot loader put the blob there, clear of the hypervisor image
    // (checked above: the hypervisor never writes it), and `hostram` keeps the recorded range out of
    // every guest's RAM, so nothing writes it while the slice lives.
    Ok(unsafe { core::slice::from_raw_parts(addr as *const u8, size) })
}

/// The host DTB at `addr` (from x0 at entry), bounded by its header.
pub fn dtb_from_boot(addr: usize) -> Result<&'static [u8], BlobError> {
    if addr == 0 || !addr.is_multiple_of(8) {
        return Err(BlobError::Null);
    }
    let header = keep(0, addr as u64, 8)?;
    let word =
        |at: usize| header.get(at..at + 4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_be_bytes);
    let magic = word(0);
    if magic != FDT_MAGIC {
        return Err(BlobError::BadMagic(magic));
    }
    let size = word(4) as usize;
    if size > MAX_DTB {
        return Err(BlobError::TooLarge(size));
    }
    keep(0, addr as u64, size.max(8))
}

/// The boot bundle in `initrd` (from the host DT), if it lies inside one of
/// the host's `memory` regions.
pub fn bundle(initrd: HostRegion, memory: &[HostRegion]) -> Result<&'static [u8], BlobError> {
    let inside = memory.iter().any(|m| initrd.base.raw() >= m.base.raw() && initrd.end() <= m.end());
    if !inside || initrd.size == 0 {
        return Err(BlobError::OutsideRam);
    }
    let size = usize::try_from(initrd.size).map_err(|_| BlobError::OutsideRam)?;
    keep(1, initrd.base.raw(), size)
}

/// The ranges handed out as slices so far, which must stay out of guests'
/// RAM.
pub fn handed_out() -> [Option<HostRegion>; 2] {
    *HANDED_OUT.lock()
}
