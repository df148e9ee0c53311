//! Clocks, power domains and resets of pass-through devices, which a guest
//! switches through the hypervisor's SCMI platform (docs/config.md, "Clocks,
//! power and resets"): what each device has, the guest's SCMI channel, and
//! the rules that keep a power domain or reset line to one guest.
//!
//! A host device's clocks come from its host DT node (`clocks`); its power
//! domain and reset line from the pass-through node (`scmi-power-domain`,
//! `scmi-reset`), since the QEMU virt board has none of its own. A guest
//! with any of them gets an SCMI channel: one 4 KiB window at
//! `scmi-channel-addr` (default [`DEFAULT_CHANNEL`]).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::cross::movable_pair;
use crate::devices::{DeviceInfo, HostClock};
use crate::error::{Report, Who};
use crate::model::{GuestConfig, PassthroughConfig, ScmiResources};

/// Where a guest's SCMI channel sits unless its config says otherwise: a
/// page QEMU virt leaves free, below the virtio-mmio transports.
pub const DEFAULT_CHANNEL: u64 = 0x09ff_f000;

/// Size of the SCMI channel window.
pub const CHANNEL_SIZE: u64 = 0x1000;

/// The SMCCC function id of SCMI calls (fast call, SMC64, vendor-specific
/// hypervisor service): the same for every guest, the channel being the
/// calling guest's own.
pub const SMC_ID: u32 = ferrovisor_hvcall::SCMI;

/// Longest resource name an SCMI attributes message carries.
pub const MAX_NAME: usize = 15;

const NAME_HINT: &str =
    "name it with 1 to 15 of a-z, 0-9, '-' and '_' (SCMI attribute messages carry 15 characters)";

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The resources of one pass-through: the host device's clocks, and the
/// power domain and reset line its node names. `device` is None for a raw
/// region, which can have none.
pub(crate) fn resources(
    device: Option<&DeviceInfo>,
    power: Option<&str>,
    reset: Option<&str>,
    path: &str,
    who: Who<'_>,
    r: &mut Report,
) -> ScmiResources {
    let mut out = ScmiResources::default();
    if device.is_none() {
        if power.is_some() || reset.is_some() {
            let msg = "scmi-power-domain and scmi-reset need a host device".to_string();
            r.error(
                who,
                path,
                msg,
                "a raw region has no power domain or reset line: pass the device with host-device",
            );
        }
        return out;
    }
    for (prop, name, slot) in
        [("scmi-power-domain", power, &mut out.power), ("scmi-reset", reset, &mut out.reset)]
    {
        let Some(name) = name else { continue };
        if valid_name(name) {
            *slot = Some(name.into());
        } else {
            r.error(who, path, format!("{prop} \"{name}\" is not a valid name"), NAME_HINT);
        }
    }
    out.clocks = device.map(|d| d.clocks.clone()).unwrap_or_default();
    out
}

/// The guest's SCMI channel: `Some` when one of its pass-throughs has a
/// clock, power domain or reset line; checked for alignment (the overlap
/// with its other windows is the layout check's).
pub(crate) fn channel(
    addr: Option<u64>,
    pts: &[PassthroughConfig],
    guest_path: &str,
    who: Who<'_>,
    r: &mut Report,
) -> Option<u64> {
    if pts.iter().all(|p| p.scmi.is_empty()) {
        if addr.is_some() {
            let msg =
                "scmi-channel-addr is set, but no pass-through device has a clock, power domain or reset"
                    .to_string();
            r.warn(who, guest_path, msg, "the guest gets no SCMI channel: remove scmi-channel-addr");
        }
        return None;
    }
    let base = addr.unwrap_or(DEFAULT_CHANNEL);
    if !base.is_multiple_of(CHANNEL_SIZE) {
        let msg = format!("scmi-channel-addr {base:#x} is not 4 KiB aligned");
        r.error(who, guest_path, msg, "the SCMI channel is one 4 KiB page: use a multiple of 0x1000");
    }
    Some(base)
}

/// Picks a power domain or reset line out of a device's resources.
type Pick = fn(&ScmiResources) -> Option<&String>;

/// Power domains and reset lines belong to one guest: `g`'s against every
/// earlier guest's.
pub(crate) fn check_against(g: &GuestConfig, who: Who<'_>, earlier: &[GuestConfig], r: &mut Report) {
    let kinds: [(&str, Pick); 2] =
        [("power domain", |s| s.power.as_ref()), ("reset line", |s| s.reset.as_ref())];
    for pt in &g.passthrough {
        for (what, pick) in kinds {
            // The same device listed in an earlier guest (movable): one
            // power domain and reset line wherever it is listed.
            for e in earlier {
                for o in e.passthrough.iter().filter(|o| movable_pair(pt, o)) {
                    if pick(&pt.scmi) != pick(&o.scmi) {
                        let name = |v: Option<&String>| v.map_or("none".into(), |n| format!("\"{n}\""));
                        let msg = format!(
                            "its {what} is {} here but {} in guest {} ({}), which lists the same host device",
                            name(pick(&pt.scmi)),
                            name(pick(&o.scmi)),
                            e.name,
                            o.path
                        );
                        r.error(who, &pt.path, msg, "a device has one power domain and one reset line: give every listing of it the same scmi-power-domain and scmi-reset");
                    }
                }
            }
            let Some(name) = pick(&pt.scmi) else { continue };
            let owner = earlier.iter().find_map(|e| {
                e.passthrough
                    .iter()
                    .find(|o| pick(&o.scmi) == Some(name) && !movable_pair(pt, o))
                    .map(|o| (e, o))
            });
            if let Some((e, o)) = owner {
                let msg = format!("{what} \"{name}\" already belongs to guest {} ({})", e.name, o.path);
                r.error(who, &pt.path, msg, "a power domain or reset line switches devices of one guest only: give the devices in it to one guest");
                continue;
            }
            // A movable device takes its domain and line along: nothing
            // else may be in them.
            let moves = earlier.iter().any(|e| e.passthrough.iter().any(|o| movable_pair(pt, o)));
            let beside = g.passthrough.iter().find(|o| {
                !core::ptr::eq(*o, pt) && o.host_device != pt.host_device && pick(&o.scmi) == Some(name)
            });
            if let (true, Some(o)) = (moves, beside) {
                let msg = format!(
                    "{what} \"{name}\" moves with this device between guests, but {} is in it too",
                    o.path
                );
                r.error(who, &pt.path, msg, "a device listed in several guests (standby) must be alone in its power domain and reset line: give the other device its own");
            }
        }
    }
}

/// A guest's SCMI resources by agent-local id: the order its agent sees
/// them in (first use by its pass-throughs, in config order), which its DT
/// and its agent's view share.
pub struct GuestScmi<'a> {
    /// Its power domains.
    pub power: Vec<&'a str>,
    /// Its reset lines.
    pub resets: Vec<&'a str>,
    /// Its clocks.
    pub clocks: Vec<&'a HostClock>,
}

impl<'a> GuestScmi<'a> {
    /// The resources of `g`'s pass-throughs.
    pub fn of(g: &'a GuestConfig) -> Self {
        Self {
            power: distinct(&g.passthrough, |s| s.power.as_deref()),
            resets: distinct(&g.passthrough, |s| s.reset.as_deref()),
            clocks: distinct_clocks(&g.passthrough),
        }
    }

    /// Whether the guest has none.
    pub fn is_empty(&self) -> bool {
        self.power.is_empty() && self.resets.is_empty() && self.clocks.is_empty()
    }

    /// A pass-through's power domain, reset line and clocks (with the
    /// device's name for each) by agent-local id.
    #[allow(clippy::type_complexity)]
    pub fn device(
        &self,
        pt: &'a PassthroughConfig,
    ) -> (Option<u32>, Option<u32>, Vec<(u32, Option<&'a str>)>) {
        let id = |list: &[&str], name: Option<&str>| {
            name.and_then(|n| list.iter().position(|x| *x == n)).map(|i| i as u32)
        };
        let clocks = pt
            .scmi
            .clocks
            .iter()
            .filter_map(|c| {
                let i = self.clocks.iter().position(|x| x.name == c.name)?;
                Some((i as u32, c.consumer.as_deref()))
            })
            .collect();
        (id(&self.power, pt.scmi.power.as_deref()), id(&self.resets, pt.scmi.reset.as_deref()), clocks)
    }
}

/// The distinct names, in first-use order, of what `pick` returns for each
/// pass-through (a guest's view of its power domains or reset lines).
pub fn distinct<'a>(
    pts: &'a [PassthroughConfig],
    pick: impl Fn(&'a ScmiResources) -> Option<&'a str>,
) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for name in pts.iter().filter_map(|p| pick(&p.scmi)) {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The distinct clocks of a guest's pass-throughs, in first-use order.
pub fn distinct_clocks(pts: &[PassthroughConfig]) -> Vec<&HostClock> {
    let mut out: Vec<&HostClock> = Vec::new();
    for c in pts.iter().flat_map(|p| p.scmi.clocks.iter()) {
        if !out.iter().any(|o| o.name == c.name) {
            out.push(c);
        }
    }
    out
}
