//! What the config tests share: `load` with a hypervisor placed as on QEMU
//! virt (image, stacks and heap from the start of RAM, the boot bundle at
//! 128 MiB, the host DTB after it) and a realistic heap for guests.
#![allow(dead_code)]

use ferrovisor_config::{Hypervisor, LoadOutcome};
use ferrovisor_types::HostRegion;

/// Start of QEMU virt's RAM.
pub const RAM_BASE: u64 = 0x4000_0000;

/// The hypervisor as the tests place it.
pub fn qemu_hypervisor() -> Hypervisor {
    Hypervisor {
        reserved: vec![
            (HostRegion::new(RAM_BASE, 0xe0_0000), "hypervisor".into()),
            (HostRegion::new(RAM_BASE + 0x800_0000, 0x200_0000), "boot bundle".into()),
            (HostRegion::new(RAM_BASE + 0xa00_0000, 0x10_0000), "host DTB".into()),
        ],
        guest_heap: 3 * 1024 * 1024,
    }
}

/// `ferrovisor_config::load` with [`qemu_hypervisor`].
pub fn load(host: &[u8], config: &[u8], bundle: &[&str]) -> LoadOutcome {
    ferrovisor_config::load(host, config, bundle, &qemu_hypervisor())
}
