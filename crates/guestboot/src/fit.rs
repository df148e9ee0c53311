//! Whether each accepted guest's images fit its boot RAM, checked with the
//! config (at boot and by `cargo xtask validate`) rather than when the guest
//! starts: a guest whose kernel, initrd and device tree cannot be placed is
//! rejected like any other config error, never listed as valid and then
//! failing at every start.
//!
//! The check is [`crate::plan`] itself, on the guest's first memory region
//! (where the boot vCPU starts) with the real kernel and initrd and the
//! guest's own DTB file, or, for a generated DTB, [`GENERATED_DTB_MAX`].

use alloc::format;
use alloc::vec::Vec;
use ferrovisor_config::{ConfigError, GuestConfig, LoadOutcome};

use crate::plan::plan;

/// An upper bound on the device tree the hypervisor generates for a guest
/// (8 vCPUs, 16 memory regions, 32 devices fit in well under it).
pub const GENERATED_DTB_MAX: u64 = 64 * 1024;

/// Why `g`'s images do not fit, if they do not. `file` gives a bundle
/// file's bytes by name.
pub fn images_fit<'a>(g: &GuestConfig, file: &dyn Fn(&str) -> Option<&'a [u8]>) -> Option<ConfigError> {
    let kernel = file(g.kernel.as_deref()?)?;
    let initrd = g.initrd.as_deref().and_then(file).map(|i| i.len() as u64);
    let dtb_len = match g.dtb.as_deref() {
        Some(name) => file(name).map_or(GENERATED_DTB_MAX, |d| d.len() as u64),
        None => GENERATED_DTB_MAX,
    };
    let ram = g.memory.first()?;
    let e = plan(ram.gpa, ram.size, kernel, initrd, dtb_len).err()?;
    Some(ConfigError {
        path: ram.path.clone(),
        guest: Some(g.name.clone()),
        message: format!("the guest's images do not fit its first memory region, where it boots: {e}"),
        hint: "the kernel (with its BSS), the initrd and the device tree are placed in the first memory node: make it larger, 2 MiB aligned for a Linux Image, or list a larger region first".into(),
    })
}

/// Moves every accepted guest of `outcome` whose images do not fit into
/// the errors (it is then rejected).
pub fn reject_unfit<'a>(outcome: &mut LoadOutcome, file: &dyn Fn(&str) -> Option<&'a [u8]>) {
    let guests = core::mem::take(&mut outcome.config.guests);
    let mut kept = Vec::with_capacity(guests.len());
    for g in guests {
        match images_fit(&g, file) {
            Some(e) => {
                outcome.rejected.push(g.name.clone());
                outcome.errors.push(e);
            }
            None => kept.push(g),
        }
    }
    outcome.config.guests = kept;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrovisor_config::MemoryRegion;
    use ferrovisor_types::{GuestPhysAddr, HostPhysAddr};

    fn guest(gpa: u64, size: u64) -> GuestConfig {
        GuestConfig {
            name: "g".into(),
            path: "/guests/g".into(),
            vcpus: 1,
            affinity: None,
            memory: alloc::vec![MemoryRegion {
                gpa: GuestPhysAddr(gpa),
                size,
                identity: false,
                host: HostPhysAddr(0),
                path: "/guests/g/memory@40000000".into(),
            }],
            kernel: Some("k".into()),
            initrd: Some("i".into()),
            dtb: None,
            bootargs: None,
            vuart: None,
            passthrough: Vec::new(),
            scmi_channel: None,
            manual_start: false,
            pci: None,
        }
    }

    #[test]
    fn a_kernel_and_initrd_larger_than_the_boot_region_reject_the_guest() {
        let kernel = alloc::vec![1u8; 0x10_0000];
        let initrd = alloc::vec![2u8; 0x40_0000];
        let file = |n: &str| match n {
            "k" => Some(kernel.as_slice()),
            "i" => Some(initrd.as_slice()),
            _ => None,
        };
        // 16 MiB holds 1 MiB of kernel, 4 MiB of initrd and the DTB.
        assert_eq!(images_fit(&guest(0x4000_0000, 0x100_0000), &file), None);
        // 4 MiB does not.
        let e = images_fit(&guest(0x4000_0000, 0x40_0000), &file).unwrap();
        assert_eq!(e.path, "/guests/g/memory@40000000");
        assert!(e.message.starts_with("the guest's images do not fit its first memory region"), "{e}");
        let mut outcome = LoadOutcome::default();
        outcome.config.guests = alloc::vec![guest(0x4000_0000, 0x100_0000), guest(0x4000_0000, 0x40_0000)];
        reject_unfit(&mut outcome, &file);
        assert_eq!(outcome.config.guests.len(), 1);
        assert_eq!(outcome.errors.len(), 1);
    }

    #[test]
    fn a_guest_without_a_kernel_is_not_checked() {
        let mut g = guest(0x4000_0000, 0x1000);
        g.kernel = None;
        assert_eq!(images_fit(&g, &|_| None), None);
    }
}
