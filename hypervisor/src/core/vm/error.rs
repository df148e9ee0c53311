//! Why a guest could not be built or loaded, typed: what failed, at which
//! config node, with the hint the validator's one-line format carries
//! (`{path}: {message} (hint: {hint})`, through
//! [`ferrovisor_config::ConfigError`]).
//!
//! A build failure is a hypervisor bug or a plan the boot could not keep
//! (the validator checked the config against the same limits), so most
//! hints say to report it.

use alloc::string::{String, ToString};
use core::fmt;
use ferrovisor_config::{ConfigError, GuestConfig};
use ferrovisor_types::{HostIrq, HostRegion};

/// What went wrong while building a guest.
#[derive(Debug)]
pub enum Failure {
    /// Guest number `number` has no VMID left.
    NoVmid {
        /// 1-based guest number.
        number: usize,
    },
    /// Stage-2 tables could not be allocated or a mapping could not be
    /// made (the heap is full).
    Stage2(ferrovisor_stage2::Stage2Error),
    /// The host RAM the validator planned is not free.
    PlannedRam {
        /// The range.
        range: HostRegion,
        /// Why the allocator refused it.
        reason: String,
    },
    /// An emulated device's window clashes with another.
    Window {
        /// The device.
        what: &'static str,
        /// The clash.
        error: ferrovisor_vdev::bus::BusError,
    },
    /// The virtual GIC refused its shape.
    Vgic(ferrovisor_vgic::VgicError),
    /// The forwarded interrupts are inconsistent.
    Forwarding(ferrovisor_vgic::ForwardError),
    /// A host interrupt cannot be forwarded.
    HostIrq {
        /// The interrupt.
        irq: HostIrq,
        /// Why.
        reason: &'static str,
    },
    /// A device's DMA needs the SMMU, which is not running.
    NoSmmu,
    /// The page of a device's DMA address registers is not in the
    /// hypervisor's device map, so it cannot be trapped and forwarded.
    TrapPage {
        /// Host address of the page.
        base: u64,
    },
    /// `ferrovisor.fail-build=NAME` asked for this failure (a test).
    Injected,
}

/// A guest build failure at config node `path` of guest `guest`.
#[derive(Debug)]
pub struct VmBuildError {
    /// The guest.
    pub guest: String,
    /// The config node that asked for what failed.
    pub path: String,
    /// What failed.
    pub failure: Failure,
}

const HEAP_HINT: &str = "the hypervisor heap is full: the validator plans each guest's heap, so this is a hypervisor bug; give the guests fewer regions or boot fewer guests, and report it";
const PLAN_HINT: &str = "the validator planned this range for the guest; another holder means the boot's placement differs from the plan (a hypervisor bug): report it";
const BUG_HINT: &str = "the validator checks this; a hypervisor bug: report it";

impl VmBuildError {
    /// `failure` of guest `config` at its node `path`.
    pub fn new(config: &GuestConfig, path: &str, failure: Failure) -> Self {
        Self { guest: config.name.clone(), path: path.into(), failure }
    }

    /// The message part of the line.
    fn message(&self) -> String {
        match &self.failure {
            Failure::NoVmid { number } => alloc::format!("no free VMID for guest number {number}"),
            Failure::Stage2(e) => alloc::format!("stage-2 tables: {e}"),
            Failure::PlannedRam { range, reason } => alloc::format!(
                "cannot take the planned host RAM {:#x}-{:#x}: {reason}",
                range.base.raw(),
                range.end().saturating_sub(1)
            ),
            Failure::Window { what, error } => alloc::format!("{what}: {error}"),
            Failure::Vgic(e) => alloc::format!("virtual GIC: {e:?}"),
            Failure::Forwarding(e) => alloc::format!("forwarded interrupts: {e}"),
            Failure::HostIrq { irq, reason } => alloc::format!("host interrupt {irq}: {reason}"),
            Failure::NoSmmu => {
                "its devices' DMA must go through the SMMU, which is not running (see the boot log)"
                    .to_string()
            }
            Failure::TrapPage { base } => alloc::format!(
                "the page {base:#x} of its DMA address registers is not in the hypervisor's device map"
            ),
            Failure::Injected => {
                alloc::format!("build failure injected by ferrovisor.fail-build={}", self.guest)
            }
        }
    }

    /// The hint part of the line.
    fn hint(&self) -> &'static str {
        match &self.failure {
            Failure::NoVmid { .. } => "a config has at most 32 guests",
            Failure::Stage2(_) => HEAP_HINT,
            Failure::PlannedRam { .. } => PLAN_HINT,
            Failure::Window { .. } => {
                "move the window (guest-physical-addr, scmi-channel-addr) to a free page"
            }
            Failure::Vgic(_) => "a guest has 1 to 8 vCPUs",
            Failure::Forwarding(_) | Failure::HostIrq { .. } | Failure::TrapPage { .. } => BUG_HINT,
            Failure::NoSmmu => {
                "the guest is not started without DMA isolation: check the smmu line of the boot banner"
            }
            Failure::Injected => "a test option: remove ferrovisor.fail-build from the boot arguments",
        }
    }

    /// The line as the validator prints its findings.
    pub fn to_config_error(&self) -> ConfigError {
        ConfigError {
            path: self.path.clone(),
            guest: Some(self.guest.clone()),
            message: self.message(),
            hint: self.hint().to_string(),
        }
    }
}

impl fmt::Display for VmBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_config_error(), f)
    }
}

/// Why a guest's images could not be loaded when it starts.
#[derive(Debug)]
pub enum LoadError {
    /// The boot loader gave no bundle.
    NoBundle,
    /// The bundle is malformed.
    Bundle(String),
    /// The config names no kernel.
    NoKernel,
    /// An image the config names is not in the bundle.
    Missing(String),
    /// The guest has no RAM region.
    NoRam,
    /// The images do not fit the first RAM region.
    Plan(ferrovisor_guestboot::PlanError),
    /// An image does not fit where it was planned.
    DoesNotFit(&'static str),
    /// The generated device tree could not be built.
    GuestDt(ferrovisor_guestboot::DtbError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NoBundle => write!(f, "no boot bundle"),
            LoadError::Bundle(e) => write!(f, "boot bundle: {e}"),
            LoadError::NoKernel => write!(f, "no kernel image configured"),
            LoadError::Missing(name) => write!(f, "image {name} is not in the boot bundle"),
            LoadError::NoRam => write!(f, "no RAM"),
            LoadError::Plan(e) => write!(f, "{e}"),
            LoadError::DoesNotFit(what) => write!(f, "{what} does not fit in guest RAM"),
            LoadError::GuestDt(e) => write!(f, "guest device tree: {e}"),
        }
    }
}
