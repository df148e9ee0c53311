//! A guest's SCMI channel on the MMIO bus: the 4 KiB shared-memory page of
//! its `arm,scmi-smc` transport, held by the hypervisor and emulated (every
//! guest access traps), so the request the hypervisor reads and the
//! response it writes are exactly what the guest sees, with no cache
//! maintenance between a cacheable and a device mapping of the same page.
//! The call itself is an SMC/HVC (`vm::scmi::call`).

use super::{Caller, Emulated};
use ferrovisor_scmi::smt;
use ferrovisor_sync::Mutex;

/// Size of the channel.
pub const CHANNEL_SIZE: usize = 0x1000;

/// The channel page.
pub struct ScmiChannel {
    page: Mutex<[u8; CHANNEL_SIZE]>,
}

impl ScmiChannel {
    /// A free channel (nothing posted).
    pub fn new() -> Self {
        let c = Self { page: Mutex::new([0; CHANNEL_SIZE]) };
        c.reset();
        c
    }

    /// Back to its initial state: zeros, the channel free (the guest
    /// restarts).
    pub fn reset(&self) {
        let mut page = self.page.lock();
        page.fill(0);
        if let Some(w) = page.get_mut(smt::STATUS..smt::STATUS + 4) {
            w.copy_from_slice(&smt::STATUS_FREE.to_le_bytes());
        }
    }

    /// Runs `f` on the page.
    pub fn with<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        f(&mut self.page.lock()[..])
    }
}

impl Default for ScmiChannel {
    fn default() -> Self {
        Self::new()
    }
}

/// The bytes `[offset, offset + size)` of the page, if inside and `size`
/// is 1, 2, 4 or 8.
fn span(offset: u64, size: u8) -> Option<core::ops::Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let len = usize::from(size);
    if !matches!(len, 1 | 2 | 4 | 8) {
        return None;
    }
    let end = start.checked_add(len).filter(|&e| e <= CHANNEL_SIZE)?;
    Some(start..end)
}

impl Emulated for alloc::sync::Arc<ScmiChannel> {
    fn read(&self, _: &Caller<'_>, offset: u64, size: u8) -> u64 {
        let Some(range) = span(offset, size) else { return 0 };
        let page = self.page.lock();
        let mut bytes = [0u8; 8];
        if let (Some(dst), Some(src)) = (bytes.get_mut(..range.len()), page.get(range)) {
            dst.copy_from_slice(src);
        }
        u64::from_le_bytes(bytes)
    }

    fn write(&self, _: &Caller<'_>, offset: u64, size: u8, value: u64) {
        let Some(range) = span(offset, size) else { return };
        let len = range.len();
        let mut page = self.page.lock();
        if let (Some(dst), Some(src)) = (page.get_mut(range), value.to_le_bytes().get(..len)) {
            dst.copy_from_slice(src);
        }
    }
}
