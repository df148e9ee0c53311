//! The host platform as the host DT describes it, kept for the whole run,
//! and the two blobs the boot loader hands over: the host DTB and the bundle.

use ferrovisor_config::HostPlatform;
use spin::Once;

static PLATFORM: Once<HostPlatform> = Once::new();
static BUNDLE: Once<&'static [u8]> = Once::new();

pub use crate::platform::blobs::{dtb_from_boot, BlobError};

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
    match platform.initrd {
        None => Ok(None),
        Some(region) => crate::platform::blobs::bundle(region, &platform.memory).map(Some),
    }
}
