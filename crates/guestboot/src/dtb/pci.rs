//! The virtual PCIe host bridge node of a guest DTB: a generic ECAM host
//! bridge (`pci-host-ecam-generic`) with bus 0 only, one 32-bit memory
//! window (PCI address = guest-physical address), and an `interrupt-map`
//! entry per function with INTx. `/chosen/linux,pci-probe-only` tells
//! Linux to keep the BARs where the hypervisor put them (it cannot move
//! them: the virtual bridge ignores such writes).

use alloc::format;
use alloc::vec::Vec;
use ferrovisor_types::{GuestIrq, GuestPhysAddr};
use vm_fdt::FdtWriter;

use super::{DtbError, GIC_PHANDLE};

/// `phys.hi` of a 32-bit non-prefetchable memory range.
const SPACE_MEM32: u32 = 0x0200_0000;

/// The guest's virtual host bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDt {
    /// Its 1 MiB ECAM window (bus 0).
    pub ecam: GuestPhysAddr,
    /// Its memory window `(base, size)`, below 4 GiB.
    pub window: (GuestPhysAddr, u64),
    /// INTx routes: device number, pin (1 = INTA .. 4 = INTD), guest SPI
    /// (level, active high).
    pub intx: Vec<(u8, u8, GuestIrq)>,
}

fn split(v: u64) -> [u32; 2] {
    [(v >> 32) as u32, v as u32]
}

/// Writes the `pcie@<ecam>` node.
pub(super) fn write(fdt: &mut FdtWriter, pci: &PciDt) -> Result<(), DtbError> {
    let node = fdt.begin_node(&format!("pcie@{:x}", pci.ecam.raw()))?;
    fdt.property_string("compatible", "pci-host-ecam-generic")?;
    fdt.property_string("device_type", "pci")?;
    fdt.property_u32("#address-cells", 3)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("#interrupt-cells", 1)?;
    fdt.property_array_u64("reg", &[pci.ecam.raw(), 1 << 20])?;
    fdt.property_array_u32("bus-range", &[0, 0])?;
    fdt.property_u32("linux,pci-domain", 0)?;
    fdt.property_null("dma-coherent")?;
    let (base, size) = (pci.window.0.raw(), pci.window.1);
    let [b_hi, b_lo] = split(base);
    let [s_hi, s_lo] = split(size);
    fdt.property_array_u32("ranges", &[SPACE_MEM32, b_hi, b_lo, b_hi, b_lo, s_hi, s_lo])?;
    // Match device and pin; the GIC's unit address is 2 cells (zero).
    fdt.property_array_u32("interrupt-map-mask", &[0xf800, 0, 0, 7])?;
    let mut map = Vec::with_capacity(pci.intx.len() * 10);
    for &(device, pin, irq) in &pci.intx {
        let spi = irq.raw().saturating_sub(32);
        map.extend_from_slice(&[u32::from(device) << 11, 0, 0, u32::from(pin), GIC_PHANDLE, 0, 0, 0, spi, 4]);
    }
    fdt.property_array_u32("interrupt-map", &map)?;
    fdt.end_node(node)?;
    Ok(())
}
