//! Host RAM given to guests: one allocator over the RAM the host DT lists,
//! minus what the hypervisor, the host DTB and the boot bundle occupy.

use alloc::string::{String, ToString};
use ferrovisor_ram::RamAllocator;
use ferrovisor_types::HostRegion;
use spin::Mutex;

static RAM: Mutex<Option<RamAllocator>> = Mutex::new(None);

/// Starts the allocator with host RAM and the hypervisor's own reservations.
pub fn init(ram: &[HostRegion], reserved: &[(HostRegion, &str)]) {
    let mut alloc = RamAllocator::new(ram);
    for (region, owner) in reserved {
        if let Err(e) = alloc.reserve(*region, owner) {
            log::warn!("cannot reserve {owner} at {}: {e}", region.base);
        }
    }
    *RAM.lock() = Some(alloc);
}

/// Reserves exactly `region` (identity-mapped guest RAM).
pub fn reserve(region: HostRegion, owner: &str) -> Result<(), String> {
    match RAM.lock().as_mut() {
        Some(a) => a.reserve(region, owner).map_err(|e| e.to_string()),
        None => Err("RAM allocator not ready".into()),
    }
}

/// Allocates `size` bytes aligned to `align` for `owner`.
pub fn allocate(size: u64, align: u64, owner: &str) -> Result<HostRegion, String> {
    match RAM.lock().as_mut() {
        Some(a) => a.allocate(size, align, owner).map_err(|e| e.to_string()),
        None => Err("RAM allocator not ready".into()),
    }
}

/// Bytes of host RAM not given to anyone.
pub fn free_bytes() -> u64 {
    RAM.lock().as_ref().map_or(0, |a| a.free_bytes())
}
