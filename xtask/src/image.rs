//! Turns the hypervisor ELF into the flat image QEMU loads with `-kernel`.
//!
//! The flat image is the ELF's loadable segments laid out from the lowest
//! physical address, with gaps zero-filled; its first bytes are the arm64
//! Image header the boot code emits, so QEMU loads it at RAM base + 0x80000
//! and passes the DTB in x0.

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSegment};

/// Flattens the loadable parts of `elf` (segments with file data).
pub fn flatten(elf: &[u8]) -> Result<Vec<u8>> {
    let file = object::File::parse(elf).context("parsing the hypervisor ELF")?;
    let mut parts = Vec::new();
    for segment in file.segments() {
        let data = segment.data().context("reading an ELF segment")?;
        if data.is_empty() {
            continue;
        }
        parts.push((segment.address(), data));
    }
    let Some(base) = parts.iter().map(|(addr, _)| *addr).min() else {
        bail!("the hypervisor ELF has no loadable data");
    };
    let end = parts.iter().map(|(addr, d)| addr + d.len() as u64).max().unwrap_or(base);
    let len = usize::try_from(end - base).context("image too large")?;
    if len > 64 << 20 {
        bail!("flat image would be {len} bytes: segments are spread too far apart");
    }
    let mut out = vec![0u8; len];
    for (addr, data) in parts {
        let at = (addr - base) as usize;
        out[at..at + data.len()].copy_from_slice(data);
    }
    if out.get(56..60) != Some(b"ARM\x64".as_slice()) {
        bail!("the flat image does not start with an arm64 Image header");
    }
    Ok(out)
}
