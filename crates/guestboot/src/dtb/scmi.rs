//! The SCMI nodes of a guest DTB: `/firmware/scmi` (`arm,scmi-smc`) with
//! one child per protocol the guest has resources of, the shared-memory
//! node of its channel, and the `clocks`, `power-domains` and `resets` of
//! its passed-through devices pointing at them. Linux 6.1's rules, which
//! this follows (docs/passthrough.md, "Clocks, power and resets"): the node
//! is `/firmware/scmi`, its protocol children have no `compatible`, the
//! channel is an `arm,scmi-shmem` node outside every `/memory` range.

use alloc::format;
use alloc::vec::Vec;
use ferrovisor_types::GuestPhysAddr;
use vm_fdt::FdtWriter;

use super::DtbError;

/// Phandle of the SCMI power-domain protocol node.
pub const POWER_PHANDLE: u32 = 3;
/// Phandle of the SCMI clock protocol node.
pub const CLOCK_PHANDLE: u32 = 4;
/// Phandle of the SCMI reset protocol node.
pub const RESET_PHANDLE: u32 = 5;
/// Phandle of the channel's shared-memory node.
pub const SHMEM_PHANDLE: u32 = 6;

/// The guest's SCMI platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScmiDt {
    /// The channel page (4 KiB).
    pub channel: GuestPhysAddr,
    /// The SMCCC function id of a call (`arm,smc-id`).
    pub smc_id: u32,
    /// Whether it has power domains, clocks, resets (a protocol node each).
    pub power: bool,
    /// See `power`.
    pub clocks: bool,
    /// See `power`.
    pub resets: bool,
}

/// A passed-through device's SCMI resources, by the guest's (agent-local)
/// ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceScmi<'a> {
    /// Its power domain.
    pub power: Option<u32>,
    /// Its reset line.
    pub reset: Option<u32>,
    /// Its clocks, in order, with the device's name for each
    /// (`clock-names`; written only if every clock has one).
    pub clocks: &'a [(u32, Option<&'a str>)],
}

impl DeviceScmi<'_> {
    /// No SCMI resource.
    pub fn is_empty(&self) -> bool {
        self.power.is_none() && self.reset.is_none() && self.clocks.is_empty()
    }

    /// The properties it writes (reserved from the copied ones).
    pub(crate) fn writes(&self, prop: &str) -> bool {
        match prop {
            "clocks" | "clock-names" => !self.clocks.is_empty(),
            "power-domains" | "power-domain-names" => self.power.is_some(),
            "resets" | "reset-names" => self.reset.is_some(),
            _ => false,
        }
    }
}

/// `/firmware/scmi` and the channel's shared-memory node.
pub(crate) fn write_platform(fdt: &mut FdtWriter, scmi: &ScmiDt) -> Result<(), DtbError> {
    let firmware = fdt.begin_node("firmware")?;
    let node = fdt.begin_node("scmi")?;
    fdt.property_string("compatible", "arm,scmi-smc")?;
    fdt.property_u32("arm,smc-id", scmi.smc_id)?;
    fdt.property_u32("shmem", SHMEM_PHANDLE)?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    let protocols = [
        (scmi.power, 0x11, "#power-domain-cells", POWER_PHANDLE),
        (scmi.clocks, 0x14, "#clock-cells", CLOCK_PHANDLE),
        (scmi.resets, 0x16, "#reset-cells", RESET_PHANDLE),
    ];
    for (wanted, id, cells, phandle) in protocols {
        if !wanted {
            continue;
        }
        let p = fdt.begin_node(&format!("protocol@{id:x}"))?;
        fdt.property_u32("reg", id)?;
        fdt.property_u32(cells, 1)?;
        fdt.property_phandle(phandle)?;
        fdt.end_node(p)?;
    }
    fdt.end_node(node)?;
    fdt.end_node(firmware)?;
    let shm = fdt.begin_node(&format!("scmi-shmem@{:x}", scmi.channel.raw()))?;
    fdt.property_string("compatible", "arm,scmi-shmem")?;
    fdt.property_array_u64("reg", &[scmi.channel.raw(), 0x1000])?;
    fdt.property_phandle(SHMEM_PHANDLE)?;
    fdt.end_node(shm)?;
    Ok(())
}

/// A device's `clocks`/`clock-names`, `power-domains` and `resets`.
pub(crate) fn write_device(fdt: &mut FdtWriter, dev: &DeviceScmi<'_>) -> Result<(), DtbError> {
    if !dev.clocks.is_empty() {
        let cells: Vec<u32> = dev.clocks.iter().flat_map(|&(id, _)| [CLOCK_PHANDLE, id]).collect();
        fdt.property_array_u32("clocks", &cells)?;
        let names: Option<Vec<&str>> = dev.clocks.iter().map(|&(_, n)| n).collect();
        if let Some(names) = names {
            fdt.property_string_list(
                "clock-names",
                names.iter().map(|s| alloc::string::String::from(*s)).collect(),
            )?;
        }
    }
    if let Some(d) = dev.power {
        fdt.property_array_u32("power-domains", &[POWER_PHANDLE, d])?;
    }
    if let Some(r) = dev.reset {
        fdt.property_array_u32("resets", &[RESET_PHANDLE, r])?;
    }
    Ok(())
}
