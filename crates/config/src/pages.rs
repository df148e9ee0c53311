//! Host devices smaller than a page: the 4 KiB windows stage 2 maps for a
//! passed-through device, the neighbours those windows expose, and the node
//! the guest's device tree gets for the device.
//!
//! Invariant: the windows are page aligned and cover every byte of the
//! device's `reg`; a neighbour is another host device with a byte inside the
//! windows but outside the device's own `reg`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ferrovisor_types::{GuestIrq, GuestPhysAddr, HostRegion};

use crate::devices::DeviceInfo;
use crate::error::{range, Report, Who};
use crate::guestnode::node_name;
use crate::host::HostPlatform;
use crate::model::{PtDtNode, PAGE_SIZE};

const NEIGHBOUR_HINT: &str = "stage-2 maps whole 4 KiB pages: the guest can program them although its device tree does not list them, and no other guest can have them; give whole pages to one guest";

/// Why a device's `reg` cannot be rounded to pages.
pub(crate) enum PageError {
    /// This `reg` entry has size 0.
    Empty(HostRegion),
    /// This `reg` entry reaches into the last page of the address space.
    Wraps(HostRegion),
}

/// The pages holding `regs`: each entry rounded out to 4 KiB, entries that
/// share a page merged (adjacent pages stay separate windows), in `reg` order.
pub(crate) fn page_windows(regs: &[HostRegion]) -> Result<Vec<HostRegion>, PageError> {
    let mask = !(PAGE_SIZE - 1);
    let mut out: Vec<(u64, u64)> = Vec::new();
    for r in regs {
        if r.size == 0 {
            return Err(PageError::Empty(*r));
        }
        let end = r.base.0.checked_add(r.size).and_then(|e| e.checked_add(PAGE_SIZE - 1));
        let Some(end) = end else {
            return Err(PageError::Wraps(*r));
        };
        let (mut start, mut end) = (r.base.0 & mask, end & mask);
        // Union with every window that shares a page, at the first one's place.
        let at = out.iter().position(|&(s, e)| s < end && start < e);
        out.retain(|&(s, e)| {
            let shared = s < end && start < e;
            if shared {
                start = start.min(s);
                end = end.max(e);
            }
            !shared
        });
        out.insert(at.unwrap_or(out.len()).min(out.len()), (start, end));
    }
    Ok(out.into_iter().map(|(s, e)| HostRegion::new(s, e.saturating_sub(s))).collect())
}

const HOST_DT_HINT: &str = "check the reg of the device in the host DT";

/// The pages stage 2 maps for host device `dev`, or the finding (message,
/// hint) why it has none: an empty `reg`, a `reg` in the last page of the
/// address space, or a page in host RAM.
pub(crate) fn device_windows(
    host: &HostPlatform,
    dev: &DeviceInfo,
) -> Result<Vec<HostRegion>, (String, &'static str)> {
    let what = &dev.path;
    let windows = match page_windows(&dev.regions) {
        Ok(w) if w.is_empty() => return Err((format!("host device {what} has an empty reg"), HOST_DT_HINT)),
        Ok(w) => w,
        Err(PageError::Empty(r)) => {
            return Err((format!("host device {what} region at {:#x} has size 0", r.base.0), HOST_DT_HINT))
        }
        Err(PageError::Wraps(r)) => {
            let msg = format!(
                "host device {what} region {} reaches the last page of the address space",
                range(r.base.0, r.size)
            );
            return Err((msg, HOST_DT_HINT));
        }
    };
    let ram = host.memory.iter().find(|m| windows.iter().any(|w| w.overlaps(m)));
    if let Some(m) = ram {
        let msg =
            format!("the 4 KiB pages of host device {what} overlap host RAM {}", range(m.base.0, m.size));
        return Err((msg, "a pass-through must be device MMIO; guest RAM goes in memory nodes"));
    }
    Ok(windows)
}

/// The parts of `window` not covered by `regs`.
fn uncovered(window: HostRegion, regs: &[HostRegion]) -> Vec<HostRegion> {
    let mut parts: Vec<(u64, u64)> = regs
        .iter()
        .filter(|r| r.overlaps(&window))
        .map(|r| (r.base.0.max(window.base.0), r.end().min(window.end())))
        .collect();
    parts.sort_unstable();
    let mut gaps = Vec::new();
    let mut next = window.base.0;
    for (start, end) in parts {
        if start > next {
            gaps.push(HostRegion::new(next, start.saturating_sub(next)));
        }
        next = next.max(end);
    }
    if next < window.end() {
        gaps.push(HostRegion::new(next, window.end().saturating_sub(next)));
    }
    gaps
}

/// The host devices other than `dev` that `windows` expose: those with a
/// `reg` byte inside the windows but outside `dev`'s own `reg`, in DT order.
fn neighbours<'h>(host: &'h HostPlatform, dev: &DeviceInfo, windows: &[HostRegion]) -> Vec<&'h DeviceInfo> {
    let slack: Vec<HostRegion> = windows.iter().flat_map(|w| uncovered(*w, &dev.regions)).collect();
    host.devices
        .iter()
        .filter(|d| d.path != dev.path)
        .filter(|d| d.regions.iter().any(|r| slack.iter().any(|s| s.overlaps(r))))
        .collect()
}

/// Whether `region` shares no byte with `dev`'s `reg` (so a window of `dev`
/// that overlaps it reaches it through the rest of the page).
pub(crate) fn outside_device(dev: &DeviceInfo, region: &HostRegion) -> bool {
    !dev.regions.iter().any(|r| r.overlaps(region))
}

/// The guest DT node of `dev` when its first `reg` entry sits at `gpa0`.
/// `None` when a `reg` entry does not fit in the guest address space.
pub(crate) fn dt_node(dev: &DeviceInfo, gpa0: u64, irq_map: &[(u32, u32)]) -> Option<PtDtNode> {
    let first = dev.regions.first()?.base.0;
    let mut regs = Vec::new();
    for r in &dev.regions {
        let gpa = if r.base.0 >= first {
            gpa0.checked_add(r.base.0.checked_sub(first)?)
        } else {
            gpa0.checked_sub(first.checked_sub(r.base.0)?)
        };
        regs.push((GuestPhysAddr(gpa?), r.size));
    }
    let irqs = dev
        .irqs
        .iter()
        .filter_map(|s| {
            let guest = irq_map.iter().find(|(h, _)| *h == s.irq.raw()).map_or(s.irq.raw(), |(_, g)| *g);
            // A guest INTID that is none is refused by the validator.
            Some((GuestIrq::new(guest)?, s.trigger))
        })
        .collect();
    Some(PtDtNode {
        name: node_name(&dev.path),
        compatible: dev.compatible.clone(),
        regs,
        irqs,
        primecell: dev.guest_node.primecell,
        props: dev.guest_node.props.clone(),
    })
}

/// Warns (on config node `path`) about the neighbours that passing `dev`
/// through with `windows` exposes to the guest, one warning listing them all.
pub(crate) fn warn_neighbours(
    host: &HostPlatform,
    dev: &DeviceInfo,
    windows: &[HostRegion],
    path: &str,
    who: Who<'_>,
    report: &mut Report,
) {
    let exposed: Vec<&str> = neighbours(host, dev, windows).iter().map(|d| d.path.as_str()).collect();
    if exposed.is_empty() {
        return;
    }
    let pages = if windows.len() == 1 { "page" } else { "pages" };
    let msg = format!(
        "passing {} through also exposes {} (same 4 KiB {pages}) to guest {}",
        dev.path,
        exposed.join(", "),
        who.name
    );
    report.warn(who, path, msg, NEIGHBOUR_HINT);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(regs: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let regs: Vec<HostRegion> = regs.iter().map(|&(b, s)| HostRegion::new(b, s)).collect();
        match page_windows(&regs) {
            Ok(w) => w.iter().map(|r| (r.base.0, r.size)).collect(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn windows_round_out_and_merge_shared_pages_only() {
        assert_eq!(windows(&[(0xa003e00, 0x200)]), [(0xa003000, 0x1000)]);
        assert_eq!(windows(&[(0x9010000, 0x1000)]), [(0x9010000, 0x1000)]);
        // Straddles a page boundary: two pages.
        assert_eq!(windows(&[(0x10ff0, 0x20)]), [(0x10000, 0x2000)]);
        // Two entries in one page merge; adjacent pages stay separate; order kept.
        assert_eq!(
            windows(&[(0x21000, 0x1000), (0x20100, 0x10), (0x20800, 0x10)]),
            [(0x21000, 0x1000), (0x20000, 0x1000)]
        );
        // A later entry joining two windows.
        assert_eq!(windows(&[(0x0, 0x10), (0x2000, 0x10), (0x800, 0x2000)]), [(0x0, 0x3000)]);
        assert!(matches!(page_windows(&[HostRegion::new(0x1000, 0)]), Err(PageError::Empty(_))));
        let top = HostRegion::new(u64::MAX - 0x10, 0x8);
        assert!(matches!(page_windows(&[top]), Err(PageError::Wraps(_))));
    }

    #[test]
    fn uncovered_parts_of_a_page() {
        let page = HostRegion::new(0x1000, 0x1000);
        let gaps = uncovered(page, &[HostRegion::new(0x1200, 0x200), HostRegion::new(0x1e00, 0x200)]);
        assert_eq!(gaps, [HostRegion::new(0x1000, 0x200), HostRegion::new(0x1400, 0xa00)]);
        assert!(uncovered(page, &[page]).is_empty());
    }
}
