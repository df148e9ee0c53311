//! Errors of the guest DTB generator.

use alloc::string::String;
use core::fmt;
use ferrovisor_types::{GuestIrq, GuestPhysAddr};

use super::MAX_DT_VCPUS;

/// Why the guest DTB could not be built.
#[derive(Debug, PartialEq, Eq)]
pub enum DtbError {
    /// `vm-fdt` refused a node or property (bad name, NUL in a string...).
    Fdt(vm_fdt::Error),
    /// The vCPU count is 0 or above [`MAX_DT_VCPUS`].
    BadVcpus(usize),
    /// No memory region.
    NoMemory,
    /// A memory region is empty, runs past the end of the address space or
    /// overlaps another.
    BadMemory {
        /// Its base.
        base: GuestPhysAddr,
        /// Its size.
        size: u64,
    },
    /// The redistributor window size overflows.
    RedistOverflow,
    /// The PSCI conduit is neither `hvc` nor `smc`.
    BadPsciConduit(String),
    /// A timer interrupt is not a PPI (16..=31).
    TimerNotPpi(u32),
    /// A device interrupt is not an SPI (32..=1019).
    NotSpi {
        /// The node it belongs to.
        node: String,
        /// The interrupt.
        irq: GuestIrq,
    },
    /// A pass-through node sets a property the generator writes itself.
    ReservedProperty {
        /// The node.
        node: String,
        /// The property.
        prop: String,
    },
    /// A pass-through node sets a property twice.
    DuplicateProperty {
        /// The node.
        node: String,
        /// The property.
        prop: String,
    },
}

impl From<vm_fdt::Error> for DtbError {
    fn from(e: vm_fdt::Error) -> Self {
        DtbError::Fdt(e)
    }
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtbError::Fdt(e) => write!(f, "guest DTB: {e}"),
            DtbError::BadVcpus(n) => {
                write!(f, "guest DTB: {n} vCPUs (must be 1 to {MAX_DT_VCPUS})")
            }
            DtbError::NoMemory => f.write_str("guest DTB: the guest has no memory region"),
            DtbError::BadMemory { base, size } => write!(
                f,
                "guest DTB: memory region at {base} of size {size:#x} is empty, \
                 overflows or overlaps another"
            ),
            DtbError::RedistOverflow => f.write_str("guest DTB: the GIC redistributor window overflows"),
            DtbError::BadPsciConduit(c) => {
                write!(f, "guest DTB: PSCI conduit {c:?} is neither \"hvc\" nor \"smc\"")
            }
            DtbError::TimerNotPpi(i) => {
                write!(f, "guest DTB: timer interrupt {i} is not a PPI (16..=31)")
            }
            DtbError::NotSpi { node, irq } => {
                write!(f, "guest DTB: {node}: {irq} is not an SPI (32..=1019)")
            }
            DtbError::ReservedProperty { node, prop } => {
                write!(f, "guest DTB: {node}: property {prop:?} is generated, not copied")
            }
            DtbError::DuplicateProperty { node, prop } => {
                write!(f, "guest DTB: {node}: property {prop:?} is given twice")
            }
        }
    }
}
