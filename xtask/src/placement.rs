//! Where the hypervisor and its boot blobs sit in host RAM when QEMU virt
//! boots it, so that `validate` checks a config exactly as the hypervisor
//! does at boot (identity memory clear of them, the guests' heap).
//!
//! The hypervisor's own extent comes from its ELF (`__image_end`, the heap
//! section); the blobs follow QEMU 7.2's rules for a `-kernel` arm64 Image
//! (hw/arm/boot.c): the `-initrd` (our boot bundle) at RAM base + min(RAM/2,
//! 128 MiB), page aligned, and the DTB right after it, 2 MiB aligned, as big
//! as its header says. The `placement` integration test compares this with
//! what the booted hypervisor's `memory` command shows.

use anyhow::{bail, Context, Result};
use ferrovisor_config::{HostPlatform, Hypervisor};
use ferrovisor_types::HostRegion;
use object::{Object, ObjectSymbol};
use std::path::Path;

const MIB: u64 = 1024 * 1024;

/// Symbols of the hypervisor ELF that give its extent.
struct Layout {
    image_start: u64,
    image_end: u64,
    heap: u64,
}

fn layout(elf: &[u8]) -> Result<Layout> {
    let file = object::File::parse(elf).context("parsing the hypervisor ELF")?;
    let sym = |name: &str| -> Result<u64> {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
            .with_context(|| format!("the hypervisor ELF has no symbol {name}"))
    };
    Ok(Layout {
        image_start: sym("__image_start")?,
        image_end: sym("__image_end")?,
        heap: sym("__heap_end")?.saturating_sub(sym("__heap_start")?),
    })
}

/// The DTB's `totalsize` (header word 1).
fn dtb_size(dtb: &[u8]) -> Result<u64> {
    match dtb.get(4..8) {
        Some(b) => Ok(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))),
        None => bail!("the host DTB is too short to have a header"),
    }
}

/// What the hypervisor ELF at `elf_path` occupies when QEMU boots it with
/// `host_dtb` and a bundle of `bundle_len` bytes.
pub fn hypervisor(elf_path: &Path, host_dtb: &[u8], bundle_len: u64) -> Result<Hypervisor> {
    let elf = std::fs::read(elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    let l = layout(&elf)?;
    let host = HostPlatform::parse(host_dtb).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(ram) = host.memory.iter().find(|m| m.base.0 <= l.image_start && l.image_start < m.end()) else {
        bail!("the hypervisor's link address {:#x} is not in the host's RAM", l.image_start);
    };
    let base = ram.base.0;
    let page = |x: u64| x.next_multiple_of(0x1000);
    let bundle_at = page(base + (ram.size / 2).min(128 * MIB)).max(page(l.image_end));
    let dtb_at = (bundle_at + bundle_len).next_multiple_of(2 * MIB);
    let reserved = vec![
        (HostRegion::new(base, l.image_end - base), "hypervisor".to_string()),
        (HostRegion::new(dtb_at, page(dtb_size(host_dtb)?)), "host DTB".to_string()),
        (HostRegion::new(bundle_at, page(bundle_len)), "boot bundle".to_string()),
    ];
    Ok(Hypervisor {
        reserved,
        // The boot's own heap use is at most BOOT_HEAP (the `placement` test
        // checks that), so the boot computes the same figure.
        guest_heap: Hypervisor::guest_heap_for(l.heap, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtb_size_reads_the_header() {
        let mut dtb = vec![0xd0, 0x0d, 0xfe, 0xed, 0x00, 0x10, 0x00, 0x00];
        assert_eq!(dtb_size(&dtb).unwrap(), 0x10_0000);
        dtb.truncate(6);
        assert!(dtb_size(&dtb).is_err());
    }
}
