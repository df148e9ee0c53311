//! The device tree a guest boots with, written with `vm-fdt`.
//!
//! The root is `compatible = "ferrovisor,virt"`: Linux on arm64 needs no
//! board compatible (everything is probed from the nodes), so the string only
//! names the platform. Node layout follows QEMU's `virt` machine: `/cpus`,
//! `/memory@..`, `/intc@..` (GICv3, the root interrupt parent), `/timer`,
//! `/psci`, `/apb-pclk` (the clock of the PL011 and of passed-through
//! PrimeCell devices), `/pl011@..`, `/chosen`, `/aliases`, then one node per
//! passed-through host device ([`PassthroughNode`], made from the config's
//! `PtDtNode` by [`PtNodeParts`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ferrovisor_config::Trigger;
use ferrovisor_types::{GuestIrq, GuestPhysAddr, IntidClass};
use vm_fdt::FdtWriter;

mod error;
mod fromconfig;
mod pci;
mod scmi;
pub use error::DtbError;
pub use fromconfig::PtNodeParts;
pub use pci::PciDt;
pub use scmi::{DeviceScmi, ScmiDt};

/// Root `compatible` of every generated guest DTB.
pub const ROOT_COMPATIBLE: &str = ferrovisor_hvcall::ROOT_COMPATIBLE;
/// Architected timer PPIs (INTIDs): secure phys, non-secure phys, virtual,
/// hypervisor phys, as on QEMU `virt`.
pub const DEFAULT_TIMER_PPIS: [u32; 4] = ferrovisor_types::platform::TIMER_PPIS;
/// Size of one GICv3 redistributor frame pair (RD + SGI).
pub const GICR_STRIDE: u64 = ferrovisor_types::platform::GICR_STRIDE;
/// Size of the GICv3 distributor window.
pub const GICD_SIZE: u64 = ferrovisor_types::platform::GICD_SIZE;
/// Size of the PL011 register window.
pub const PL011_SIZE: u64 = ferrovisor_types::platform::PL011_WINDOW;
/// Frequency of the fixed `apb-pclk` clock feeding the PL011.
pub const APB_PCLK_HZ: u32 = 24_000_000;
/// Most vCPUs: `reg` of a CPU node is its MPIDR Aff0, one per
/// [`ferrovisor_types::VcpuId`].
pub const MAX_DT_VCPUS: usize = ferrovisor_types::VcpuId::LIMIT;

const GIC_PHANDLE: u32 = 1;
/// Phandle of the `apb-pclk` fixed clock, for pass-through AMBA (primecell)
/// devices that need it as their `apb_pclk`.
pub const CLK_PHANDLE: u32 = 2;
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
const IRQ_TYPE_EDGE_RISING: u32 = 1;
const IRQ_TYPE_LEVEL_HIGH: u32 = 4;
const IRQ_TYPE_LEVEL_LOW: u32 = 8;
/// GICv3 maintenance interrupt: PPI 9 (INTID 25).
const GIC_MAINTENANCE_PPI: u32 = ferrovisor_types::platform::MAINTENANCE_INTID - 16;
/// Properties a [`PassthroughNode`] may not set through `props`: the
/// generator writes them, or (phandles) they would clash with its own.
const RESERVED_PROPS: [&str; 7] = [
    "compatible",
    "reg",
    "interrupts",
    "interrupts-extended",
    "interrupt-parent",
    "phandle",
    "linux,phandle",
];
/// Further reserved properties of a [`PassthroughNode`] with `apb_pclk`.
const CLOCK_PROPS: [&str; 2] = ["clocks", "clock-names"];

/// Where the guest's virtual GICv3 lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GicLayout {
    /// Distributor base (a [`GICD_SIZE`] window).
    pub dist: GuestPhysAddr,
    /// First redistributor; one frame pair per vCPU follows.
    pub redist: GuestPhysAddr,
    /// Bytes per redistributor, normally [`GICR_STRIDE`].
    pub redist_stride: u64,
}

impl GicLayout {
    /// A layout with the standard GICv3 redistributor stride.
    pub const fn new(dist: GuestPhysAddr, redist: GuestPhysAddr) -> Self {
        Self { dist, redist, redist_stride: GICR_STRIDE }
    }
}

/// Value of an extra property of a [`PassthroughNode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropValue<'a> {
    /// A property without value (a flag).
    Empty,
    /// One string.
    Str(&'a str),
    /// A string list.
    Strs(&'a [&'a str]),
    /// One 32-bit cell.
    U32(u32),
    /// Several 32-bit cells.
    U32s(&'a [u32]),
    /// Raw bytes, written as given (a property copied from the host DT).
    Bytes(&'a [u8]),
}

/// A host device node copied into the guest DTB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassthroughNode<'a> {
    /// Node name; any unit address is replaced by the first `reg` address.
    pub name: &'a str,
    /// `compatible` strings (omitted when empty).
    pub compatible: &'a [&'a str],
    /// Guest windows `(address, size)`, written as 2+2-cell `reg`.
    pub reg: &'a [(GuestPhysAddr, u64)],
    /// Guest interrupts (SPIs only) with their trigger.
    pub interrupts: &'a [(GuestIrq, Trigger)],
    /// A PrimeCell (AMBA) device: gets `clocks = <&apb_pclk>` and
    /// `clock-names = "apb_pclk"`, and the DTB gets the `/apb-pclk` node.
    pub apb_pclk: bool,
    /// Further properties, written as given; names must differ from each
    /// other and from the generated ones.
    pub props: &'a [(&'a str, PropValue<'a>)],
    /// Its clocks, power domain and reset through the guest's SCMI
    /// platform (its clocks replace the `apb_pclk` fixed clock).
    pub scmi: DeviceScmi<'a>,
}

impl PassthroughNode<'_> {
    /// Whether it gets the `apb-pclk` fixed clock: a PrimeCell device whose
    /// clocks do not come through SCMI.
    fn fixed_pclk(&self) -> bool {
        self.apb_pclk && self.scmi.clocks.is_empty()
    }
}

/// Everything the generated guest DTB describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestDtb<'a> {
    /// Guest name, shown in `/model` as `"ferrovisor guest <name>"`.
    pub name: &'a str,
    /// vCPU count: `/cpus/cpu@N` with `reg = N` (the vCPU's MPIDR Aff0).
    pub vcpus: usize,
    /// RAM regions `(address, size)`: one `/memory@..` node each.
    pub memory: &'a [(GuestPhysAddr, u64)],
    /// Kernel command line (`/chosen/bootargs`).
    pub bootargs: Option<&'a str>,
    /// Initrd `(address, length)` (`/chosen/linux,initrd-start/-end`).
    pub initrd: Option<(GuestPhysAddr, u64)>,
    /// Emulated PL011 `(base, SPI)`: also `stdout-path` and `serial0`.
    pub vuart: Option<(GuestPhysAddr, GuestIrq)>,
    /// The virtual GICv3.
    pub gic: GicLayout,
    /// Timer INTIDs (PPIs), normally [`DEFAULT_TIMER_PPIS`].
    pub timer_ppis: [u32; 4],
    /// PSCI conduit: `"hvc"` or `"smc"`.
    pub psci_conduit: &'a str,
    /// Passed-through host devices.
    pub passthrough: &'a [PassthroughNode<'a>],
    /// The guest's SCMI platform, if its devices have clocks, power
    /// domains or resets.
    pub scmi: Option<ScmiDt>,
    /// Its virtual PCIe host bridge, if it has PCIe functions.
    pub pci: Option<&'a PciDt>,
}

impl<'a> GuestDtb<'a> {
    /// A description with the defaults: no bootargs, initrd, UART or
    /// pass-through, QEMU's timer PPIs and the `hvc` PSCI conduit.
    pub const fn new(
        name: &'a str,
        vcpus: usize,
        memory: &'a [(GuestPhysAddr, u64)],
        gic: GicLayout,
    ) -> Self {
        Self {
            name,
            vcpus,
            memory,
            bootargs: None,
            initrd: None,
            vuart: None,
            gic,
            timer_ppis: DEFAULT_TIMER_PPIS,
            psci_conduit: "hvc",
            passthrough: &[],
            scmi: None,
            pci: None,
        }
    }
}

/// GIC specifier `<GIC_SPI n flags>` of an SPI.
fn spi_cells(node: &str, irq: GuestIrq, flags: u32) -> Result<[u32; 3], DtbError> {
    if irq.class() != IntidClass::Spi {
        return Err(DtbError::NotSpi { node: String::from(node), irq });
    }
    Ok([GIC_SPI, irq.raw() - 32, flags])
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| String::from(*s)).collect()
}

/// Writes the guest DTB described by `dtb`.
pub fn build(dtb: &GuestDtb<'_>) -> Result<Vec<u8>, DtbError> {
    if dtb.vcpus == 0 || dtb.vcpus > MAX_DT_VCPUS {
        return Err(DtbError::BadVcpus(dtb.vcpus));
    }
    if dtb.memory.is_empty() {
        return Err(DtbError::NoMemory);
    }
    check_memory(dtb.memory)?;
    if !matches!(dtb.psci_conduit, "hvc" | "smc") {
        return Err(DtbError::BadPsciConduit(String::from(dtb.psci_conduit)));
    }
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", ROOT_COMPATIBLE)?;
    fdt.property_string("model", &format!("ferrovisor guest {}", dtb.name))?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    let uart_path = dtb.vuart.map(|(base, _)| format!("/pl011@{:x}", base.raw()));
    write_chosen(&mut fdt, dtb, uart_path.as_deref())?;
    write_cpus(&mut fdt, dtb.vcpus)?;
    for &(base, size) in dtb.memory {
        let node = fdt.begin_node(&format!("memory@{:x}", base.raw()))?;
        fdt.property_string("device_type", "memory")?;
        fdt.property_array_u64("reg", &[base.raw(), size])?;
        fdt.end_node(node)?;
    }
    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list("compatible", strings(&["arm,psci-1.0", "arm,psci-0.2"]))?;
    fdt.property_string("method", dtb.psci_conduit)?;
    fdt.end_node(psci)?;
    write_gic(&mut fdt, &dtb.gic, dtb.vcpus)?;
    write_timer(&mut fdt, &dtb.timer_ppis)?;
    if let Some(scmi) = &dtb.scmi {
        scmi::write_platform(&mut fdt, scmi)?;
    }
    if dtb.vuart.is_some() || dtb.passthrough.iter().any(|d| d.fixed_pclk()) {
        write_apb_pclk(&mut fdt)?;
    }
    if let Some((base, irq)) = dtb.vuart {
        write_pl011(&mut fdt, base, irq)?;
    }
    for dev in dtb.passthrough {
        write_passthrough(&mut fdt, dev)?;
    }
    if let Some(pci) = dtb.pci {
        pci::write(&mut fdt, pci)?;
    }
    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

/// Every region non-empty, inside the address space and disjoint from the
/// others (so that no two `/memory@..` nodes share a name).
fn check_memory(memory: &[(GuestPhysAddr, u64)]) -> Result<(), DtbError> {
    let last = |(base, size): (GuestPhysAddr, u64)| {
        size.checked_sub(1).and_then(|s| base.raw().checked_add(s)).ok_or(DtbError::BadMemory { base, size })
    };
    for (i, &a) in memory.iter().enumerate() {
        let a_last = last(a)?;
        for &b in memory.iter().skip(i + 1) {
            let b_last = last(b)?;
            if a.0.raw() <= b_last && b.0.raw() <= a_last {
                return Err(DtbError::BadMemory { base: b.0, size: b.1 });
            }
        }
    }
    Ok(())
}

fn write_chosen(fdt: &mut FdtWriter, dtb: &GuestDtb<'_>, uart_path: Option<&str>) -> Result<(), DtbError> {
    let chosen = fdt.begin_node("chosen")?;
    if let Some(args) = dtb.bootargs {
        fdt.property_string("bootargs", args)?;
    }
    if let Some((start, len)) = dtb.initrd {
        fdt.property_u64("linux,initrd-start", start.raw())?;
        fdt.property_u64("linux,initrd-end", start.raw().saturating_add(len))?;
    }
    if let Some(path) = uart_path {
        fdt.property_string("stdout-path", path)?;
    }
    if dtb.pci.is_some() {
        fdt.property_u32("linux,pci-probe-only", 1)?;
    }
    fdt.end_node(chosen)?;
    if let Some(path) = uart_path {
        let aliases = fdt.begin_node("aliases")?;
        fdt.property_string("serial0", path)?;
        fdt.end_node(aliases)?;
    }
    Ok(())
}

fn write_cpus(fdt: &mut FdtWriter, vcpus: usize) -> Result<(), DtbError> {
    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for (n, aff0) in (0..vcpus).zip(0u32..) {
        let cpu = fdt.begin_node(&format!("cpu@{n:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_u32("reg", aff0)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;
    Ok(())
}

fn write_gic(fdt: &mut FdtWriter, gic: &GicLayout, vcpus: usize) -> Result<(), DtbError> {
    let redist_size = u64::try_from(vcpus)
        .ok()
        .and_then(|n| n.checked_mul(gic.redist_stride))
        .ok_or(DtbError::RedistOverflow)?;
    let node = fdt.begin_node(&format!("intc@{:x}", gic.dist.raw()))?;
    fdt.property_string("compatible", "arm,gic-v3")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#redistributor-regions", 1)?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_null("ranges")?;
    fdt.property_array_u64("reg", &[gic.dist.raw(), GICD_SIZE, gic.redist.raw(), redist_size])?;
    fdt.property_array_u32("interrupts", &[GIC_PPI, GIC_MAINTENANCE_PPI, IRQ_TYPE_LEVEL_HIGH])?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(node)?;
    Ok(())
}

fn write_timer(fdt: &mut FdtWriter, ppis: &[u32; 4]) -> Result<(), DtbError> {
    let mut cells = Vec::with_capacity(12);
    for &intid in ppis {
        if IntidClass::of(intid) != IntidClass::Ppi {
            return Err(DtbError::TimerNotPpi(intid));
        }
        cells.extend_from_slice(&[GIC_PPI, intid - 16, IRQ_TYPE_LEVEL_LOW]);
    }
    let node = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    fdt.property_array_u32("interrupts", &cells)?;
    fdt.property_null("always-on")?;
    fdt.end_node(node)?;
    Ok(())
}

fn write_apb_pclk(fdt: &mut FdtWriter) -> Result<(), DtbError> {
    let clk = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", APB_PCLK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(CLK_PHANDLE)?;
    fdt.end_node(clk)?;
    Ok(())
}

fn write_pl011(fdt: &mut FdtWriter, base: GuestPhysAddr, irq: GuestIrq) -> Result<(), DtbError> {
    let name = format!("pl011@{:x}", base.raw());
    let spec = spi_cells(&name, irq, IRQ_TYPE_LEVEL_HIGH)?;
    let node = fdt.begin_node(&name)?;
    fdt.property_string_list("compatible", strings(&["arm,pl011", "arm,primecell"]))?;
    fdt.property_array_u64("reg", &[base.raw(), PL011_SIZE])?;
    fdt.property_array_u32("interrupts", &spec)?;
    fdt.property_array_u32("clocks", &[CLK_PHANDLE, CLK_PHANDLE])?;
    fdt.property_string_list("clock-names", strings(&["uartclk", "apb_pclk"]))?;
    fdt.end_node(node)?;
    Ok(())
}

fn write_passthrough(fdt: &mut FdtWriter, dev: &PassthroughNode<'_>) -> Result<(), DtbError> {
    let stem = dev.name.split('@').next().unwrap_or(dev.name);
    let name = match dev.reg.first() {
        Some((gpa, _)) => format!("{stem}@{:x}", gpa.raw()),
        None => String::from(stem),
    };
    let mut irq_cells = Vec::with_capacity(dev.interrupts.len() * 3);
    for &(irq, trigger) in dev.interrupts {
        let flags = match trigger {
            Trigger::Edge => IRQ_TYPE_EDGE_RISING,
            Trigger::Level => IRQ_TYPE_LEVEL_HIGH,
        };
        irq_cells.extend_from_slice(&spi_cells(&name, irq, flags)?);
    }
    for (i, &(prop, _)) in dev.props.iter().enumerate() {
        if RESERVED_PROPS.contains(&prop)
            || (dev.fixed_pclk() && CLOCK_PROPS.contains(&prop))
            || dev.scmi.writes(prop)
        {
            return Err(DtbError::ReservedProperty { node: name, prop: String::from(prop) });
        }
        if dev.props.iter().take(i).any(|&(earlier, _)| earlier == prop) {
            return Err(DtbError::DuplicateProperty { node: name, prop: String::from(prop) });
        }
    }
    let node = fdt.begin_node(&name)?;
    if !dev.compatible.is_empty() {
        fdt.property_string_list("compatible", strings(dev.compatible))?;
    }
    if !dev.reg.is_empty() {
        let cells: Vec<u64> = dev.reg.iter().flat_map(|&(a, s)| [a.raw(), s]).collect();
        fdt.property_array_u64("reg", &cells)?;
    }
    if !irq_cells.is_empty() {
        fdt.property_array_u32("interrupts", &irq_cells)?;
    }
    if dev.fixed_pclk() {
        fdt.property_u32("clocks", CLK_PHANDLE)?;
        fdt.property_string("clock-names", "apb_pclk")?;
    }
    scmi::write_device(fdt, &dev.scmi)?;
    for &(prop, value) in dev.props {
        match value {
            PropValue::Empty => fdt.property_null(prop)?,
            PropValue::Str(s) => fdt.property_string(prop, s)?,
            PropValue::Strs(list) => fdt.property_string_list(prop, strings(list))?,
            PropValue::U32(v) => fdt.property_u32(prop, v)?,
            PropValue::U32s(v) => fdt.property_array_u32(prop, v)?,
            PropValue::Bytes(v) => fdt.property(prop, v)?,
        }
    }
    fdt.end_node(node)?;
    Ok(())
}

#[cfg(test)]
mod tests;
