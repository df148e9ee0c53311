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
mod dmaregs;
mod dt;
mod error;
mod guestnode;
mod host;
mod hostpci;
mod limits;
mod model;
mod nodes;
mod pages;
mod parse;
mod pcifn;
mod plan;
mod resolve;
pub mod scmi;
mod validate;

use alloc::format;
use alloc::vec::Vec;

pub use devices::{
    host_device, host_devices, DeviceInfo, HostClock, HostIrqSpec, IommuLink, Trigger, GIC_V3_COMPATIBLE,
    SMMU_V3_COMPATIBLE,
};
pub use dt::DtbError;
pub use error::{ConfigError, HostDtError};
pub use guestnode::GuestProps;
pub use host::{GicInfo, HostPlatform, PsciMethod, TimerInfo, UartInfo};
pub use hostpci::{HostPci, PciWindow, PCI_ECAM_COMPATIBLE};
pub use limits::{
    Hypervisor, BOOT_HEAP, GUEST_IPA_LIMIT, GUEST_SPIS, HEAP_PER_DMA_TRAP, HEAP_PER_GUEST, HEAP_PER_NODE,
    HEAP_PER_TABLE, HEAP_PER_VCPU, HEAP_PER_VUART, MAX_CONFIG_DTB, MAX_FINDINGS, MAX_GUESTS, MAX_GUEST_INTID,
    MAX_MEMORY_REGIONS, MAX_PASSTHROUGH, RAM_BLOCK, RUNTIME_HEAP_RESERVE,
};
pub use model::{
    Config, DmaIntercept, DmaProtection, DtProp, GuestConfig, IrqRoute, MemoryRegion, PassthroughConfig,
    PciFunction, PtDtNode, PtRegion, ScmiResources, VirtualPci, VuartConfig, MAX_DMA_REGISTERS,
    MAX_GUEST_NAME, MAX_VCPUS, PAGE_SIZE, VUART_SIZE,
};
pub use parse::{CONFIG_COMPATIBLE, GUEST_COMPATIBLE, PASSTHROUGH_COMPATIBLE, VUART_COMPATIBLE};
pub use pcifn::{DEFAULT_ECAM, DEFAULT_WINDOW, MAX_STREAMS, VIRTUAL_ECAM_SIZE};
pub use plan::{dma_tables, heap_estimate, stage2_tables};

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
    /// The name of every rejected guest, in config order, also of those
    /// whose errors are past the [`MAX_FINDINGS`] the report keeps.
    pub rejected: Vec<alloc::string::String>,
}

impl LoadOutcome {
    /// Whether no error was found.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Parses and validates the config DTB against the host DTB, the names of
/// the files in the boot bundle and what the hypervisor occupies (its RAM
/// placement and the heap it has for guests). Never panics; collects every
/// finding. Each accepted guest's RAM is planned ([`MemoryRegion::host`]):
/// the hypervisor reserves exactly that.
pub fn load(host_dtb: &[u8], config_dtb: &[u8], bundle_files: &[&str], hyp: &Hypervisor) -> LoadOutcome {
    let mut report = error::Report::default();
    let host = HostPlatform::parse(host_dtb);
    let raw = if config_dtb.len() > MAX_CONFIG_DTB {
        let msg = format!(
            "the config DTB has {} bytes, more than the {MAX_CONFIG_DTB} the hypervisor reads",
            config_dtb.len()
        );
        report.global("/", msg, "a config this large is not a plausible guest description: check that the bundle holds the right file");
        None
    } else {
        parse::parse_config(config_dtb, &mut report)
    };
    let host = match host {
        Ok(h) => h,
        Err(e) => {
            let hint = "the hypervisor needs a host DT with memory, cpus, a GICv3 and an arch timer";
            report.global("/", format!("cannot check guests against the host: {e}"), hint);
            report.close();
            return LoadOutcome {
                config: Config::default(),
                rejected: report.rejected_names(),
                errors: report.errors,
                warnings: report.warnings,
            };
        }
    };
    let mut checked: Vec<GuestConfig> = Vec::new();
    for (index, raw_guest) in raw.iter().flatten().enumerate() {
        let who = error::Who { index, name: &raw_guest.name };
        let guest = validate::check_guest(&host, raw_guest, who, bundle_files, &mut report);
        cross::check_against(&guest, who, &checked, &mut report);
        scmi::check_against(&guest, who, &checked, &mut report);
        checked.push(guest);
    }
    // Host RAM and heap, exactly as the hypervisor will take them: every
    // identity region first, then the rest in config order.
    let mut planner = plan::Planner::new(&host, hyp);
    for (index, g) in checked.iter_mut().enumerate() {
        if !report.is_rejected(index) {
            let name = g.name.clone();
            planner.reserve_identity(g, error::Who { index, name: &name }, &mut report);
        }
    }
    for (index, g) in checked.iter_mut().enumerate() {
        if !report.is_rejected(index) {
            let name = g.name.clone();
            planner.place(g, error::Who { index, name: &name }, &mut report);
        }
    }
    report.close();
    let guests =
        checked.into_iter().enumerate().filter(|(i, _)| !report.is_rejected(*i)).map(|(_, g)| g).collect();
    LoadOutcome {
        config: Config { guests },
        rejected: report.rejected_names(),
        errors: report.errors,
        warnings: report.warnings,
    }
}
