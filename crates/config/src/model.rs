//! The typed, validated guest configuration handed to the hypervisor.
//!
//! Invariant: every value reachable from a [`Config`] returned by
//! [`crate::load`] passed validation: windows are page aligned and do not
//! overlap inside a guest, devices and interrupts belong to one guest only,
//! and DMA-capable devices are protected or explicitly acknowledged.

use alloc::string::String;
use alloc::vec::Vec;
use ferrovisor_types::{GuestIrq, GuestPhysAddr, HostIrq, HostPhysAddr, PcpuId};

pub use crate::devices::Trigger;

/// Granule of every stage-2 window: addresses and sizes must be multiples.
pub const PAGE_SIZE: u64 = 0x1000;
/// Whether `value` is a multiple of [`PAGE_SIZE`].
pub(crate) const fn aligned(value: u64) -> bool {
    value.is_multiple_of(PAGE_SIZE)
}

/// Size of the emulated PL011 register window.
pub const VUART_SIZE: u64 = ferrovisor_types::platform::PL011_WINDOW;
/// Most virtual CPUs one guest may have: a policy below what the vGIC and
/// [`ferrovisor_types::VcpuId`] could address (16), and the hypervisor's
/// physical CPUs (8).
pub const MAX_VCPUS: u32 = 8;
/// Longest guest name.
pub const MAX_GUEST_NAME: usize = 32;

/// The whole configuration: the guests that passed validation, in DT order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Accepted guests.
    pub guests: Vec<GuestConfig>,
}

/// One guest (virtual machine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestConfig {
    /// Node name under `/guests`, `[a-z0-9_-]{1,32}`.
    pub name: String,
    /// Config node path, e.g. `/guests/linux0`.
    pub path: String,
    /// Number of virtual CPUs, 1..=8.
    pub vcpus: u32,
    /// Physical CPU indices (0-based, in host DT order) the vCPUs may run on;
    /// `None` = any.
    pub affinity: Option<Vec<PcpuId>>,
    /// Guest RAM regions.
    pub memory: Vec<MemoryRegion>,
    /// Kernel image (bundle file name).
    pub kernel: Option<String>,
    /// Initial ramdisk (bundle file name).
    pub initrd: Option<String>,
    /// Guest DTB (bundle file name); `None` = the hypervisor generates one.
    pub dtb: Option<String>,
    /// Kernel command line.
    pub bootargs: Option<String>,
    /// Emulated PL011 UART.
    pub vuart: Option<VuartConfig>,
    /// Passed-through devices and raw regions.
    pub passthrough: Vec<PassthroughConfig>,
    /// Guest-physical base of its SCMI channel (one 4 KiB page), when one
    /// of its pass-throughs has a clock, power domain or reset line.
    pub scmi_channel: Option<GuestPhysAddr>,
    /// `manual-start`: the hypervisor does not start it at boot (the shell's
    /// `guest start` does).
    pub manual_start: bool,
    /// Its virtual PCIe host bridge, when it has PCIe functions.
    pub pci: Option<VirtualPci>,
}

/// One region of guest RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Guest physical base (page aligned).
    pub gpa: GuestPhysAddr,
    /// Size in bytes (page multiple, non-zero).
    pub size: u64,
    /// Guest physical == host physical (the region lies inside host RAM).
    pub identity: bool,
    /// Host physical base of the RAM behind it, as the validator planned it
    /// (see `plan`): the guest address for an identity region, else a base
    /// with the same offset in its 2 MiB block as `gpa` (regions of 2 MiB
    /// and more). The hypervisor reserves exactly this range.
    pub host: HostPhysAddr,
    /// Config node path.
    pub path: String,
}

/// An emulated PL011.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VuartConfig {
    /// Guest physical base of its 4 KiB register window.
    pub gpa: GuestPhysAddr,
    /// Its guest interrupt (an SPI).
    pub irq: GuestIrq,
    /// Config node path.
    pub path: String,
}

/// How DMA of a passed-through device is contained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaProtection {
    /// The device cannot master DMA.
    None,
    /// An SMMU translates its DMA through the guest's stage-2 tables (see
    /// [`crate::DeviceInfo::iommu`] for the stream IDs).
    Iommu,
    /// Unprotected: the config says `dma-unprotected-ack` and the guest's RAM
    /// is identity mapped. The device can reach all host memory.
    UnprotectedAcknowledged,
    /// The device's DMA address registers are intercepted
    /// (`dma-registers`, [`PassthroughConfig::intercept`]): each address
    /// written there is checked against the guest's RAM and translated.
    Intercepted {
        /// Whether the config also says `dma-unprotected-ack` (with identity
        /// memory): the device reads more addresses from memory, which
        /// nobody checks.
        acknowledged: bool,
    },
}

/// Most DMA address register pairs one pass-through names.
pub const MAX_DMA_REGISTERS: usize = 8;

/// The trapped page of a pass-through whose DMA address registers are
/// intercepted: every access to it goes through the hypervisor, which
/// passes all but the DMA registers to the device unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaIntercept {
    /// Host address of the page (in one of the pass-through's regions).
    pub hpa: HostPhysAddr,
    /// Where the guest sees it.
    pub gpa: GuestPhysAddr,
    /// The register pairs, offsets from the page base.
    pub registers: Vec<ferrovisor_vdev::DmaRegister>,
    /// The device's own registers in the page, `[start, end)` offsets; the
    /// rest of the page (neighbour devices) is out of the guest's reach.
    pub window: (u64, u64),
}

/// One host window mapped into the guest. For a device smaller than a page
/// this is the whole enclosing page (or pages), neighbours included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtRegion {
    /// Host physical base (page aligned).
    pub hpa: HostPhysAddr,
    /// Guest physical base (page aligned).
    pub gpa: GuestPhysAddr,
    /// Size in bytes (page multiple).
    pub size: u64,
}

/// One property of a guest DT node: name and raw (big-endian) value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtProp {
    /// Property name, a valid DT property name (1 to 31 characters of
    /// `[0-9a-zA-Z,._+?#-]`).
    pub name: String,
    /// Raw value, written as is.
    pub value: Vec<u8>,
}

/// What the hypervisor needs to describe a passed-through host device in the
/// guest's generated device tree (rules: docs/config.md, "The guest DT node
/// of a host device").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtDtNode {
    /// Host node name without the unit address, e.g. `pl031`, `virtio_mmio`.
    pub name: String,
    /// `compatible` of the host node, most specific first.
    pub compatible: Vec<String>,
    /// The device's exact `reg` windows in guest space (not page-rounded):
    /// the first at `guest-physical-addr`, the others at the same offset
    /// from it as on the host; sizes from the host `reg`.
    pub regs: Vec<(GuestPhysAddr, u64)>,
    /// The device's interrupts in host DT order, each translated through
    /// `interrupt-map` (the same INTID when not remapped).
    pub irqs: Vec<(GuestIrq, Trigger)>,
    /// `compatible` contains `"arm,primecell"`: the guest node needs
    /// `clocks = <apb_pclk>` and `clock-names = "apb_pclk"` (Linux's AMBA
    /// bus reads the peripheral ID through that clock).
    pub primecell: bool,
    /// Every other property of the guest node: the host node's properties
    /// that need no translation, copied byte for byte (`gpio-controller`,
    /// `#gpio-cells`, `dma-coherent`, ...), `interrupt-names` of the
    /// interrupts kept, and binding completions (see
    /// [`crate::GuestProps::props`]).
    pub props: Vec<DtProp>,
}

/// One host interrupt forwarded to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqRoute {
    /// Host INTID (an SPI of the device).
    pub host: HostIrq,
    /// Guest INTID (an SPI).
    pub guest: GuestIrq,
    /// Trigger mode from the host DT.
    pub trigger: Trigger,
}

/// A pass-through: a host device (or raw host region) given to one guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassthroughConfig {
    /// Config node name, e.g. `rtc@9010000`.
    pub name: String,
    /// Config node path.
    pub path: String,
    /// Host DT path of the device; `None` for a raw region.
    pub host_device: Option<String>,
    /// Windows mapped into the guest.
    pub regions: Vec<PtRegion>,
    /// Interrupts forwarded to the guest.
    pub irqs: Vec<IrqRoute>,
    /// DMA containment.
    pub dma: DmaProtection,
    /// `compatible` of the host device (for a raw region: of the host devices
    /// it covers), for the generated guest DTB.
    pub compatible: Vec<String>,
    /// The guest DT node of a host device; `None` for a raw region.
    pub dt: Option<PtDtNode>,
    /// Its clocks, power domain and reset line, switched through SCMI.
    pub scmi: ScmiResources,
    /// `standby`: listed for reassignment only. The guest gets the device
    /// when the shell's `passthrough assign` moves it there; until then it
    /// is neither mapped, forwarded nor in the guest's DT. At most one of
    /// the guests that list a host device lists it without `standby` (its
    /// owner at boot).
    pub standby: bool,
    /// The PCIe function of a `pci-function` pass-through (whose regions
    /// the hypervisor fills in at boot with its BARs).
    pub pci: Option<PciFunction>,
    /// SMMU stream IDs of its DMA when `dma` is [`DmaProtection::Iommu`]:
    /// the hypervisor points them at the guest's context while the guest
    /// has the device, and makes them abort otherwise.
    pub streams: Vec<u32>,
    /// The trapped page of its DMA address registers when `dma` is
    /// [`DmaProtection::Intercepted`] (inside `regions`: stage 2 leaves that
    /// one page unmapped).
    pub intercept: Option<DmaIntercept>,
}

/// A PCIe function given to a guest, which sees it at the same
/// bus:device.function on its virtual host bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciFunction {
    /// Its host (and guest) address.
    pub bdf: ferrovisor_pci::Bdf,
    /// The INTx pin the config expects it to use (`intx`; checked against
    /// the function's Interrupt Pin register at boot), `None` for none.
    pub pin: Option<ferrovisor_pci::Pin>,
}

/// A guest's virtual PCIe host bridge (ECAM, bus 0 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualPci {
    /// Guest-physical base of its 1 MiB ECAM window (`pci-ecam`).
    pub ecam: GuestPhysAddr,
    /// Guest-physical window its functions' BARs are placed in (`pci-window`).
    pub window: (GuestPhysAddr, u64),
    /// The guest node that configures it.
    pub path: String,
}

/// What a pass-through device needs from the platform's clock, power and
/// reset controller, which its guest reaches through SCMI (`crate::scmi`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScmiResources {
    /// Its power domain (`scmi-power-domain`).
    pub power: Option<String>,
    /// Its reset line (`scmi-reset`).
    pub reset: Option<String>,
    /// Its clocks, from the host DT node, in order.
    pub clocks: Vec<crate::devices::HostClock>,
}

impl ScmiResources {
    /// No clock, power domain or reset line.
    pub fn is_empty(&self) -> bool {
        self.power.is_none() && self.reset.is_none() && self.clocks.is_empty()
    }
}
