//! The host platform as the hypervisor needs it at boot, read from the host
//! DTB: RAM, CPUs, GICv3, console PL011, arch timer PPIs, PSCI, SMMUs, and
//! every memory-mapped device (for pass-through).
//!
//! Invariant: a parsed [`HostPlatform`] has at least one RAM region, one CPU,
//! a GICv3 with a distributor and at least one redistributor region, and the
//! four timer PPIs.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use ferrovisor_types::{HostIrq, HostRegion, Mpidr};

use crate::devices::{all_devices, decode_irqs, find_gic, split_reg, DeviceInfo, SMMU_V3_COMPATIBLE};
use crate::dt::{as_cells, as_str, cells_to_u64, Node, Tree};
use crate::error::HostDtError;
use crate::hostpci::HostPci;

/// The host's GICv3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GicInfo {
    /// GIC architecture version (always 3 for now).
    pub version: u8,
    /// Distributor (GICD) frame.
    pub dist: HostRegion,
    /// Redistributor (GICR) regions.
    pub redist: Vec<HostRegion>,
    /// The ITS frame, if the GIC has one.
    pub its: Option<HostRegion>,
    /// DT path of the GIC node.
    pub path: String,
}

/// The hypervisor's console UART (a PL011).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UartInfo {
    /// DT path of the UART node.
    pub path: String,
    /// Its register frame.
    pub region: HostRegion,
    /// Its interrupt, if it has one on the GIC.
    pub irq: Option<HostIrq>,
}

/// The four architected timer PPIs as INTIDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerInfo {
    /// Secure physical timer (usually 29).
    pub secure_phys: HostIrq,
    /// Non-secure EL1 physical timer (usually 30).
    pub phys: HostIrq,
    /// EL1 virtual timer (usually 27).
    pub virt: HostIrq,
    /// EL2 physical timer (usually 26).
    pub hyp_phys: HostIrq,
}

/// The PSCI conduit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciMethod {
    /// Calls go to EL3 through SMC.
    Smc,
    /// Calls go through HVC (only meaningful when something runs above us).
    Hvc,
}

/// Everything the hypervisor reads from the host DT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPlatform {
    /// Every `reg` entry of every memory node, in DT order (empty ones dropped).
    pub memory: Vec<HostRegion>,
    /// CPU MPIDRs in DT order; `cpus[0]` need not be the boot CPU.
    pub cpus: Vec<Mpidr>,
    /// The GICv3.
    pub gic: GicInfo,
    /// The console: `/chosen/stdout-path` if it is a PL011, else the first PL011.
    pub console: Option<UartInfo>,
    /// Arch timer interrupts.
    pub timer: TimerInfo,
    /// PSCI conduit from `/psci`.
    pub psci: Option<PsciMethod>,
    /// `/chosen/bootargs`.
    pub bootargs: Option<String>,
    /// `/chosen/linux,initrd-start` .. `linux,initrd-end`.
    pub initrd: Option<HostRegion>,
    /// Every SMMUv3.
    pub smmus: Vec<DeviceInfo>,
    /// Every memory-mapped device (see [`crate::host_devices`]).
    pub devices: Vec<DeviceInfo>,
    /// The PCIe host bridge, if the host DT has one ferrovisor can drive.
    pub pci: Option<HostPci>,
}

/// Compatible string of the console UART.
const PL011_COMPATIBLE: &str = "arm,pl011";

fn reg_regions(tree: &Tree<'_>, idx: usize, node: &Node<'_>) -> Result<Vec<HostRegion>, HostDtError> {
    let bad = |reason| HostDtError::BadProperty { node: node.path.clone(), property: "reg", reason };
    let reg =
        node.prop("reg").ok_or(HostDtError::MissingProperty { node: node.path.clone(), property: "reg" })?;
    let parent = node.parent.unwrap_or(idx);
    let pairs = split_reg(reg, tree.address_cells(parent), tree.size_cells(parent))
        .ok_or(bad("length does not match #address-cells/#size-cells"))?
        .ok_or(bad("unsupported #address-cells/#size-cells"))?;
    pairs
        .into_iter()
        .map(|(a, s)| a.checked_add(s).map(|_| HostRegion::new(a, s)).ok_or(bad("region wraps past the end")))
        .collect()
}

fn parse_memory(tree: &Tree<'_>) -> Result<Vec<HostRegion>, HostDtError> {
    let mut memory = Vec::new();
    for (idx, node) in tree.nodes.iter().enumerate() {
        let is_mem = node.str_prop("device_type") == Some("memory") && node.parent == Some(0);
        if is_mem {
            memory.extend(reg_regions(tree, idx, node)?.into_iter().filter(|r| r.size > 0));
        }
    }
    if memory.is_empty() {
        return Err(HostDtError::MissingNode { what: "memory node with a non-empty reg" });
    }
    Ok(memory)
}

fn parse_cpus(tree: &Tree<'_>) -> Result<Vec<Mpidr>, HostDtError> {
    let cpus_idx = tree.find("/cpus").ok_or(HostDtError::MissingNode { what: "/cpus node" })?;
    let ac = tree.address_cells(cpus_idx);
    let mut cpus = Vec::new();
    for (_, cpu) in tree.children(cpus_idx) {
        if cpu.str_prop("device_type") != Some("cpu") && cpu.base_name() != "cpu" {
            continue;
        }
        let bad = |reason| HostDtError::BadProperty { node: cpu.path.clone(), property: "reg", reason };
        let reg = cpu
            .prop("reg")
            .ok_or(HostDtError::MissingProperty { node: cpu.path.clone(), property: "reg" })?;
        let cells = as_cells(reg).ok_or(bad("length is not a multiple of 4"))?;
        let first = cells.get(..ac).ok_or(bad("shorter than #address-cells"))?;
        cpus.push(Mpidr(cells_to_u64(first).ok_or(bad("unsupported #address-cells"))?));
    }
    if cpus.is_empty() {
        return Err(HostDtError::MissingNode { what: "cpu node under /cpus" });
    }
    Ok(cpus)
}

fn parse_gic(tree: &Tree<'_>) -> Result<GicInfo, HostDtError> {
    let idx =
        find_gic(tree).ok_or(HostDtError::MissingNode { what: "node compatible with \"arm,gic-v3\"" })?;
    let node = tree.node(idx).ok_or(HostDtError::MissingNode { what: "GIC node" })?;
    let regions = crate::devices::device_at(tree, idx)?
        .map(|d| d.regions)
        .ok_or(HostDtError::NotADevice { path: node.path.clone() })?;
    let n_redist = node.u32_prop("#redistributor-regions").unwrap_or(1) as usize;
    let bad = |reason| HostDtError::BadProperty { node: node.path.clone(), property: "reg", reason };
    let dist = *regions.first().ok_or(bad("no distributor region"))?;
    let redist = regions
        .get(1..n_redist.saturating_add(1))
        .ok_or(bad("fewer redistributor regions than #redistributor-regions"))?;
    if redist.is_empty() {
        return Err(bad("no redistributor region"));
    }
    let its = tree
        .children(idx)
        .find(|(_, n)| n.is_compatible("arm,gic-v3-its"))
        .and_then(|(i, _)| crate::devices::device_at(tree, i).ok().flatten())
        .and_then(|d| d.regions.first().copied());
    Ok(GicInfo { version: 3, dist, redist: redist.to_vec(), its, path: node.path.clone() })
}

fn parse_timer(tree: &Tree<'_>) -> Result<TimerInfo, HostDtError> {
    let idx = tree
        .nodes
        .iter()
        .position(|n| n.is_compatible("arm,armv8-timer"))
        .ok_or(HostDtError::MissingNode { what: "node compatible with \"arm,armv8-timer\"" })?;
    let irqs = decode_irqs(tree, idx)?;
    let path = tree.node(idx).map(|n| n.path.clone()).unwrap_or_default();
    let get = |i: usize| {
        irqs.get(i).map(|s| s.irq).ok_or_else(|| HostDtError::BadProperty {
            node: path.clone(),
            property: "interrupts",
            reason: "fewer than 4 GIC interrupts",
        })
    };
    Ok(TimerInfo { secure_phys: get(0)?, phys: get(1)?, virt: get(2)?, hyp_phys: get(3)? })
}

fn parse_console(tree: &Tree<'_>, devices: &[DeviceInfo]) -> Option<UartInfo> {
    let is_pl011 = |d: &&DeviceInfo| d.compatible.iter().any(|c| c == PL011_COMPATIBLE);
    let chosen = tree.find("/chosen").and_then(|i| tree.node(i));
    let stdout = chosen.and_then(|c| c.str_prop("stdout-path").or_else(|| c.str_prop("linux,stdout-path")));
    let target = stdout.map(|s| s.split(':').next().unwrap_or(s)).and_then(|s| {
        if s.starts_with('/') {
            Some(s.to_string())
        } else {
            let aliases = tree.find("/aliases").and_then(|i| tree.node(i))?;
            aliases.prop(s).and_then(as_str).map(|p| p.to_string())
        }
    });
    let by_path = target.and_then(|t| devices.iter().filter(is_pl011).find(|d| d.path == t));
    let uart = by_path.or_else(|| devices.iter().find(is_pl011))?;
    let region = *uart.regions.first()?;
    Some(UartInfo { path: uart.path.clone(), region, irq: uart.irqs.first().map(|s| s.irq) })
}

fn chosen_u64(node: &Node<'_>, name: &'static str) -> Result<Option<u64>, HostDtError> {
    let Some(v) = node.prop(name) else {
        return Ok(None);
    };
    let cells = as_cells(v).and_then(|c| cells_to_u64(&c));
    cells.map(Some).ok_or(HostDtError::BadProperty {
        node: node.path.clone(),
        property: name,
        reason: "must be 1 or 2 cells",
    })
}

impl HostPlatform {
    /// Reads the host DTB.
    pub fn parse(dtb: &[u8]) -> Result<HostPlatform, HostDtError> {
        let tree = Tree::parse(dtb).map_err(HostDtError::Malformed)?;
        let memory = parse_memory(&tree)?;
        let cpus = parse_cpus(&tree)?;
        let gic = parse_gic(&tree)?;
        let timer = parse_timer(&tree)?;
        let devices = all_devices(&tree);
        let console = parse_console(&tree, &devices);
        let psci = match tree.find("/psci").and_then(|i| tree.node(i)) {
            None => None,
            Some(n) => match n.str_prop("method") {
                Some("smc") => Some(PsciMethod::Smc),
                Some("hvc") => Some(PsciMethod::Hvc),
                _ => {
                    let reason = "must be \"smc\" or \"hvc\"";
                    return Err(HostDtError::BadProperty {
                        node: n.path.clone(),
                        property: "method",
                        reason,
                    });
                }
            },
        };
        let chosen = tree.find("/chosen").and_then(|i| tree.node(i));
        let bootargs = chosen.and_then(|c| c.str_prop("bootargs")).map(|s| s.to_string());
        let initrd = match chosen {
            None => None,
            Some(c) => match (chosen_u64(c, "linux,initrd-start")?, chosen_u64(c, "linux,initrd-end")?) {
                (Some(start), Some(end)) => {
                    let size = end.checked_sub(start).ok_or(HostDtError::BadProperty {
                        node: c.path.clone(),
                        property: "linux,initrd-end",
                        reason: "is below linux,initrd-start",
                    })?;
                    Some(HostRegion::new(start, size))
                }
                _ => None,
            },
        };
        let smmus = devices
            .iter()
            .filter(|d| d.compatible.iter().any(|c| c == SMMU_V3_COMPATIBLE))
            .cloned()
            .collect();
        let pci = crate::hostpci::parse(&tree);
        Ok(HostPlatform { memory, cpus, gic, console, timer, psci, bootargs, initrd, smmus, devices, pci })
    }

    /// The memory-mapped host device at this full DT path.
    pub fn device(&self, fdt_path: &str) -> Option<&DeviceInfo> {
        self.devices.iter().find(|d| d.path == fdt_path)
    }

    /// The memory-mapped host devices whose `reg` overlaps `region`.
    pub fn devices_overlapping(&self, region: &HostRegion) -> impl Iterator<Item = &DeviceInfo> + '_ {
        let region = *region;
        self.devices.iter().filter(move |d| d.regions.iter().any(|r| r.overlaps(&region)))
    }

    /// Whether `region` lies entirely inside one host RAM region.
    pub fn in_ram(&self, region: &HostRegion) -> bool {
        self.memory.iter().any(|m| region.base.0 >= m.base.0 && region.end() <= m.end())
    }

    /// Total host RAM in bytes (saturating).
    pub fn ram_size(&self) -> u64 {
        self.memory.iter().fold(0u64, |acc, m| acc.saturating_add(m.size))
    }

    /// Host regions the hypervisor keeps for itself, with the owner's DT path
    /// and why: the GIC distributor, redistributors and ITS, the console UART,
    /// every SMMU, and the ECAM window of the PCIe host bridge.
    pub fn hypervisor_owned(&self) -> Vec<(String, HostRegion, &'static str)> {
        let mut out = Vec::new();
        out.push((self.gic.path.clone(), self.gic.dist, "GIC distributor"));
        for r in &self.gic.redist {
            out.push((self.gic.path.clone(), *r, "GIC redistributor"));
        }
        if let Some(its) = self.gic.its {
            let its_path = self
                .devices
                .iter()
                .find(|d| d.regions.first() == Some(&its))
                .map_or_else(|| self.gic.path.clone(), |d| d.path.clone());
            out.push((its_path, its, "GIC ITS"));
        }
        if let Some(c) = &self.console {
            out.push((c.path.clone(), c.region, "hypervisor console UART"));
        }
        for s in &self.smmus {
            for r in &s.regions {
                out.push((s.path.clone(), *r, "SMMU"));
            }
        }
        if let Some(pci) = &self.pci {
            out.push((
                pci.path.clone(),
                pci.ecam,
                "PCIe host bridge (its functions go to guests one by one)",
            ));
        }
        out
    }
}
