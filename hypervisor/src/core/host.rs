//! The host platform as the host DT describes it, kept for the whole run,
//! and the two blobs the boot loader hands over: the host DTB and the bundle.

use ferrovisor_config::HostPlatform;
use ferrovisor_types::HostRegion;
use spin::Once;

static PLATFORM: Once<HostPlatform> = Once::new();
static BUNDLE: Once<&'static [u8]> = Once::new();

const FDT_MAGIC: u32 = 0xd00d_feed;
/// Larger host DTBs are refused (QEMU's is about 8 KiB, padded to 1 MiB).
const MAX_DTB: usize = 2 * 1024 * 1024;

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
}

impl core::fmt::Display for BlobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlobError::Null => write!(f, "no address (or a misaligned one)"),
            BlobError::BadMagic(m) => write!(f, "magic {m:#010x} is not a DTB's 0xd00dfeed"),
            BlobError::TooLarge(n) => write!(f, "header claims {n} bytes, more than {MAX_DTB}"),
            BlobError::OutsideRam => write!(f, "it does not lie inside host RAM"),
        }
    }
}

/// The host DTB at `addr` (from x0 at entry), bounded by its header.
pub fn dtb_from_boot(addr: usize) -> Result<&'static [u8], BlobError> {
    if addr == 0 || !addr.is_multiple_of(8) {
        return Err(BlobError::Null);
    }
    // SAFETY: the boot protocol puts a DTB at x0 in RAM, which the EL2 map
    // covers as normal memory; its first 8 bytes hold magic and total size.
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, 8) };
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if magic != FDT_MAGIC {
        return Err(BlobError::BadMagic(magic));
    }
    let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if size > MAX_DTB {
        return Err(BlobError::TooLarge(size));
    }
    // SAFETY: as above; the loader placed `size` bytes of DTB there and
    // nothing writes to them afterwards.
    let dtb = unsafe { core::slice::from_raw_parts(addr as *const u8, size) };
    Ok(dtb)
}

/// Keeps the boot bundle's bytes for the rest of the run.
pub fn set_bundle(bytes: &'static [u8]) {
    BUNDLE.call_once(|| bytes);
}

/// The boot bundle's bytes, if there is one.
pub fn bundle() -> Option<&'static [u8]> {
    BUNDLE.get().copied()
}

/// Where guests see their virtual GIC: the host GIC's distributor and first
/// redistributor addresses (the validator keeps guest windows off them).
pub fn gic_layout() -> (ferrovisor_types::GuestPhysAddr, ferrovisor_types::GuestPhysAddr) {
    let p = PLATFORM.get();
    let dist = p.map_or(0x0800_0000, |p| p.gic.dist.base.raw());
    let redist = p.and_then(|p| p.gic.redist.first()).map_or(0x080a_0000, |r| r.base.raw());
    (ferrovisor_types::GuestPhysAddr(dist), ferrovisor_types::GuestPhysAddr(redist))
}

/// Keeps the parsed platform for the rest of the run.
pub fn set_platform(platform: HostPlatform) -> &'static HostPlatform {
    PLATFORM.call_once(|| platform)
}

/// The boot bundle that QEMU loaded with `-initrd`, if the host DT names one
/// inside RAM.
pub fn bundle_bytes(platform: &HostPlatform) -> Result<Option<&'static [u8]>, BlobError> {
    let Some(region) = platform.initrd else {
        return Ok(None);
    };
    let inside = platform
        .memory
        .iter()
        .any(|m: &HostRegion| region.base.raw() >= m.base.raw() && region.end() <= m.end());
    if !inside || region.size == 0 {
        return Err(BlobError::OutsideRam);
    }
    // SAFETY: the region lies inside host RAM (checked above), which the EL2
    // map covers; the loader put the bundle there and nothing overwrites it.
    Ok(Some(unsafe { core::slice::from_raw_parts(region.base.raw() as *const u8, region.size as usize) }))
}
