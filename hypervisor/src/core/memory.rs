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

/// Gives back exactly one earlier reservation or allocation.
pub fn release(region: HostRegion) -> Result<(), String> {
    match RAM.lock().as_mut() {
        Some(a) => a.release(region).map_err(|e| e.to_string()),
        None => Err("RAM allocator not ready".into()),
    }
}

/// Every reservation with its holder, in address order (`memory` command).
pub fn reservations() -> alloc::vec::Vec<(HostRegion, String)> {
    RAM.lock().as_ref().map_or_else(alloc::vec::Vec::new, |a| a.reservations().to_vec())
}

/// Bytes of host RAM not given to anyone.
pub fn free_bytes() -> u64 {
    RAM.lock().as_ref().map_or(0, |a| a.free_bytes())
}
