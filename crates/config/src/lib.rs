//! ferrovisor's configuration: the host platform read from the host DTB, and
//! the guest configuration DTB turned into typed, validated guests.
//!
//! The same code runs in the hypervisor at boot and in `xtask validate` on
//! the host, so both print the same findings. Two entry points:
//!
//! - [`HostPlatform::parse`]: RAM, CPUs, GIC, console, timer, PSCI, SMMUs and
//!   every memory-mapped device of the host DT;
//! - [`load`]: parses the config DTB (see docs/config.md for the binding),
//!   checks it against the host and the boot bundle, and returns the guests
//!   that passed plus every error and warning found.
//!
//! Invariants: no input (host DTB, config DTB) can make this crate panic;
//! every finding carries the config node path, a message and a hint; a guest
//! with any error is left out of [`Config::guests`], the others stay.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

mod cross;
mod devices;
mod dt;
mod error;
mod guestnode;
mod host;
mod model;
mod nodes;
mod pages;
mod parse;
mod resolve;
mod validate;

use alloc::format;
use alloc::vec::Vec;

pub use devices::{
    host_device, host_devices, DeviceInfo, HostIrqSpec, IommuLink, Trigger, GIC_V3_COMPATIBLE,
    SMMU_V3_COMPATIBLE,
};
pub use dt::DtbError;
pub use error::{ConfigError, HostDtError};
pub use guestnode::GuestProps;
pub use host::{GicInfo, HostPlatform, PsciMethod, TimerInfo, UartInfo};
pub use model::{
    Config, DmaProtection, DtProp, GuestConfig, IrqRoute, MemoryRegion, PassthroughConfig, PtDtNode,
    PtRegion, VuartConfig, MAX_GUEST_NAME, MAX_VCPUS, PAGE_SIZE, VUART_SIZE,
};
pub use parse::{CONFIG_COMPATIBLE, GUEST_COMPATIBLE, PASSTHROUGH_COMPATIBLE, VUART_COMPATIBLE};

/// What [`load`] found: the accepted guests, and every error and warning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOutcome {
    /// The guests without errors, in DT order.
    pub config: Config,
    /// Every error; each one rejects its guest (or, with `guest: None`, the
    /// config as a whole when no guest could be read).
    pub errors: Vec<ConfigError>,
    /// Findings that do not reject a guest (e.g. acknowledged unprotected DMA).
    pub warnings: Vec<ConfigError>,
}

impl LoadOutcome {
    /// Whether no error was found.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Parses and validates the config DTB against the host DTB and the names of
/// the files in the boot bundle. Never panics; collects every finding.
pub fn load(host_dtb: &[u8], config_dtb: &[u8], bundle_files: &[&str]) -> LoadOutcome {
    let mut report = error::Report::default();
    let host = HostPlatform::parse(host_dtb);
    let raw = parse::parse_config(config_dtb, &mut report);
    let host = match host {
        Ok(h) => h,
        Err(e) => {
            let hint = "the hypervisor needs a host DT with memory, cpus, a GICv3 and an arch timer";
            report.global("/", format!("cannot check guests against the host: {e}"), hint);
            return LoadOutcome {
                config: Config::default(),
                errors: report.errors,
                warnings: report.warnings,
            };
        }
    };
    let mut checked: Vec<GuestConfig> = Vec::new();
    let mut ram_used = 0u64;
    for (index, raw_guest) in raw.iter().flatten().enumerate() {
        let who = error::Who { index, name: &raw_guest.name };
        let guest = validate::check_guest(&host, raw_guest, who, bundle_files, &mut report);
        cross::check_against(&guest, who, &checked, &mut report);
        if !report.is_rejected(index) {
            cross::check_ram_budget(&host, &guest, who, &mut ram_used, &mut report);
        }
        checked.push(guest);
    }
    let guests =
        checked.into_iter().enumerate().filter(|(i, _)| !report.is_rejected(*i)).map(|(_, g)| g).collect();
    LoadOutcome { config: Config { guests }, errors: report.errors, warnings: report.warnings }
}
