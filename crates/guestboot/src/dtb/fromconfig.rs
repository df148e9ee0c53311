//! The guest DT node of a passed-through host device from the validated
//! config: a `PtDtNode` borrowed in the shape [`PassthroughNode`] takes.
//!
//! What the node keeps of the host node was decided by the config crate
//! (`ferrovisor_config::GuestProps`); this only lays it out: `compatible`,
//! `reg`, `interrupts`, the `apb_pclk` clock of a PrimeCell device, then the
//! copied properties as raw bytes.

use alloc::string::String;
use alloc::vec::Vec;
use ferrovisor_config::PtDtNode;

use super::{DeviceScmi, PassthroughNode, PropValue};

/// A [`PtDtNode`] with the string and property lists a [`PassthroughNode`]
/// points at.
pub struct PtNodeParts<'c> {
    dt: &'c PtDtNode,
    compatible: Vec<&'c str>,
    props: Vec<(&'c str, PropValue<'c>)>,
    scmi: DeviceIds<'c>,
}

/// A device's SCMI ids in its guest (`ferrovisor_config::scmi::GuestScmi`).
type DeviceIds<'c> = (Option<u32>, Option<u32>, Vec<(u32, Option<&'c str>)>);

impl<'c> PtNodeParts<'c> {
    /// Borrows `dt`.
    pub fn new(dt: &'c PtDtNode) -> Self {
        Self {
            dt,
            compatible: dt.compatible.iter().map(String::as_str).collect(),
            props: dt.props.iter().map(|p| (p.name.as_str(), PropValue::Bytes(&p.value))).collect(),
            scmi: (None, None, Vec::new()),
        }
    }

    /// Gives the node its SCMI power domain, reset line and clocks (by the
    /// guest's ids, as `ferrovisor_config::scmi::GuestScmi::device` says).
    pub fn with_scmi(mut self, ids: DeviceIds<'c>) -> Self {
        self.scmi = ids;
        self
    }

    /// The node for [`super::GuestDtb::passthrough`].
    pub fn node(&self) -> PassthroughNode<'_> {
        PassthroughNode {
            name: &self.dt.name,
            compatible: &self.compatible,
            reg: &self.dt.regs,
            interrupts: &self.dt.irqs,
            apb_pclk: self.dt.primecell,
            props: &self.props,
            scmi: DeviceScmi { power: self.scmi.0, reset: self.scmi.1, clocks: &self.scmi.2 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtb::{build, GicLayout, GuestDtb};
    use crate::testfdt::Tree;
    use ferrovisor_types::GuestPhysAddr;

    const HOST: &[u8] = include_bytes!("../../../config/tests/fixtures/qemu-virt-gicv3.dtb");
    const CONFIG: &[u8] = include_bytes!("../../../config/tests/fixtures/node-gpio-rtc.dtb");

    /// Every device of every host DT fixture, its guest node as the config
    /// crate decides it, is accepted by the writer: what the validator
    /// passes, the boot can write.
    #[test]
    fn every_fixture_device_makes_a_writable_node() {
        let hosts: [&[u8]; 4] = [
            HOST,
            include_bytes!("../../../config/tests/fixtures/qemu-virt-gicv3-smmuv3.dtb"),
            include_bytes!("../../../config/tests/fixtures/host-small.dtb"),
            include_bytes!("../../../config/tests/fixtures/host-props.dtb"),
        ];
        let memory = [(GuestPhysAddr(0x4000_0000), 0x100_0000)];
        let gic = GicLayout::new(GuestPhysAddr(0x800_0000), GuestPhysAddr(0x80a_0000));
        let mut count = 0;
        for host in hosts {
            for dev in ferrovisor_config::host_devices(host).unwrap() {
                let dt = PtDtNode {
                    name: String::from(dev.path.rsplit('/').next().unwrap().split('@').next().unwrap()),
                    compatible: dev.compatible.clone(),
                    regs: dev.regions.iter().map(|r| (GuestPhysAddr(r.base.0), r.size)).collect(),
                    irqs: Vec::new(),
                    primecell: dev.guest_node.primecell,
                    props: dev.guest_node.props.clone(),
                };
                let parts = PtNodeParts::new(&dt);
                let nodes = [parts.node()];
                let d = GuestDtb { passthrough: &nodes, ..GuestDtb::new("g", 1, &memory, gic) };
                assert!(build(&d).is_ok(), "{}: {:?}", dev.path, build(&d));
                count += 1;
            }
        }
        assert!(count > 80, "{count} devices");
    }

    /// QEMU virt's PL061 (at 0x0c000000, INTID 39 -> 70) and PL031 passed
    /// through, from the config to the guest DTB, in a guest without vUART.
    #[test]
    fn pl061_and_pl031_from_the_host_dt_to_the_guest_dtb() {
        let out = ferrovisor_config::load(
            HOST,
            CONFIG,
            &["linux/Image"],
            &ferrovisor_config::Hypervisor::with_heap(3 << 20),
        );
        assert!(out.is_clean(), "{:?}", out.errors);
        let guest = &out.config.guests[0];
        let parts: Vec<PtNodeParts> =
            guest.passthrough.iter().filter_map(|p| p.dt.as_ref()).map(PtNodeParts::new).collect();
        let nodes: Vec<PassthroughNode> = parts.iter().map(PtNodeParts::node).collect();
        let memory = [(GuestPhysAddr(0x4000_0000), 0x100_0000)];
        let gic = GicLayout::new(GuestPhysAddr(0x800_0000), GuestPhysAddr(0x80a_0000));
        let d = GuestDtb { passthrough: &nodes, ..GuestDtb::new("g", 1, &memory, gic) };
        let t = Tree::parse(&build(&d).unwrap());

        let clk = t.u32s("/apb-pclk", "phandle");
        let g = "/pl061@c000000";
        assert_eq!(t.strs(g, "compatible"), ["arm,pl061", "arm,primecell"]);
        assert_eq!(t.u64s(g, "reg"), [0xc00_0000, 0x1000]);
        assert_eq!(t.u32s(g, "interrupts"), [0, 70 - 32, 4]);
        assert_eq!(t.prop(g, "gpio-controller"), Some(&[][..]));
        assert_eq!(t.u32s(g, "#gpio-cells"), [2]);
        assert_eq!(t.prop(g, "interrupt-controller"), Some(&[][..]));
        assert_eq!(t.u32s(g, "#interrupt-cells"), [2]);
        assert_eq!(t.u32s(g, "clocks"), clk);
        assert_eq!(t.str(g, "clock-names"), "apb_pclk");
        // The host node's own phandle (0x8007) stays behind.
        assert_eq!(t.prop(g, "phandle"), None);

        let r = "/pl031@9010000";
        assert_eq!(t.u32s(r, "interrupts"), [0, 2, 4]);
        assert_eq!(t.u32s(r, "clocks"), clk);
        let names: Vec<&str> =
            t.nodes.iter().find(|(p, _)| p == r).unwrap().1.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["compatible", "reg", "interrupts", "clocks", "clock-names"]);
    }
}
