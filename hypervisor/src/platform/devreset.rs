//! Putting a passed-through device back into a quiet state, where the
//! hypervisor knows how (docs/passthrough.md, "Clocks, power and resets"):
//! a guest asked for its reset line, or its guest stopped.
//!
//! * virtio-mmio (`virtio,mmio`): the status register written 0, which the
//!   virtio spec defines as a device reset; it also stops the device's DMA.
//! * PL031 RTC (`arm,pl031`): interrupt mask cleared, pending interrupt
//!   cleared.
//! * PL061 GPIO (`arm,pl061`): interrupt enables cleared, pending edges
//!   cleared.
//!
//! Other devices are left as they are (the caller logs that).

use super::mmio::MmioWindow;
use crate::arch::aarch64::mmu;

/// What a reset did to the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reset {
    /// virtio-mmio status written 0.
    Virtio,
    /// PL031 interrupt masked and cleared.
    Pl031,
    /// PL061 interrupts disabled and cleared.
    Pl061,
    /// The hypervisor knows no reset for it.
    Unknown,
}

const VIRTIO_MAGIC: u32 = 0x7472_6976;

/// Resets the device at host-physical `base` (`size` bytes) with
/// `compatible`; only a window in the EL2 device map is touched.
pub fn reset(compatible: &[alloc::string::String], base: u64, size: u64) -> Reset {
    let has = |c: &str| compatible.iter().any(|x| x == c);
    let kind = if has("virtio,mmio") {
        Reset::Virtio
    } else if has("arm,pl031") {
        Reset::Pl031
    } else if has("arm,pl061") {
        Reset::Pl061
    } else {
        return Reset::Unknown;
    };
    let need = match kind {
        Reset::Virtio => 0x74,
        Reset::Pl031 => 0x20,
        _ => 0x420,
    };
    let Ok(len) = usize::try_from(size) else { return Reset::Unknown };
    if size < need || !mmu::is_device_memory(base, size) {
        return Reset::Unknown;
    }
    // SAFETY: `base..base + size` is the registers of a passed-through
    // device (from the validated config), checked above to lie in the EL2
    // device map; its guest is stopped or asked for this reset, and the
    // writes below only quiet it.
    let regs = unsafe { MmioWindow::new(base as usize, len) };
    match kind {
        Reset::Virtio => {
            if regs.read_pure(0) != VIRTIO_MAGIC {
                return Reset::Unknown;
            }
            regs.write(0x70, 0);
        }
        Reset::Pl031 => {
            regs.write(0x10, 0); // RTCIMSC: masked
            regs.write(0x1c, 1); // RTCICR: cleared
        }
        Reset::Pl061 => {
            regs.write(0x410, 0); // GPIOIE: disabled
            regs.write(0x41c, 0xff); // GPIOIC: edges cleared
        }
        Reset::Unknown => {}
    }
    kind
}
