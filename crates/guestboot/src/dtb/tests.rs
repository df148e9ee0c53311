//! Tests of the generated guest DTB, read back with the test walker.

use super::*;
use crate::testfdt::Tree;
use alloc::string::ToString;
use proptest::prelude::*;

const MEM: [(GuestPhysAddr, u64); 2] =
    [(GuestPhysAddr(0x4000_0000), 0x2000_0000), (GuestPhysAddr(0x1_0000_0000), 0x1000_0000)];

fn gic() -> GicLayout {
    GicLayout::new(GuestPhysAddr(0x800_0000), GuestPhysAddr(0x80a_0000))
}

fn full() -> GuestDtb<'static> {
    GuestDtb {
        bootargs: Some("console=ttyAMA0 earlycon"),
        initrd: Some((GuestPhysAddr(0x5f40_0000), 0x12_3456)),
        vuart: Some((GuestPhysAddr(0x900_0000), GuestIrq::of::<33>())),
        ..GuestDtb::new("linux0", 2, &MEM, gic())
    }
}

#[test]
fn root_and_chosen() {
    let t = Tree::parse(&build(&full()).unwrap());
    assert_eq!(t.str("/", "compatible"), "ferrovisor,virt");
    assert_eq!(t.str("/", "model"), "ferrovisor guest linux0");
    assert_eq!(t.u32s("/", "#address-cells"), [2]);
    assert_eq!(t.u32s("/", "#size-cells"), [2]);
    let gic_phandle = t.u32s("/intc@8000000", "phandle");
    assert_eq!(t.u32s("/", "interrupt-parent"), gic_phandle);
    assert_eq!(t.str("/chosen", "bootargs"), "console=ttyAMA0 earlycon");
    assert_eq!(t.u64s("/chosen", "linux,initrd-start"), [0x5f40_0000]);
    assert_eq!(t.u64s("/chosen", "linux,initrd-end"), [0x5f52_3456]);
    assert_eq!(t.str("/chosen", "stdout-path"), "/pl011@9000000");
    assert_eq!(t.str("/aliases", "serial0"), "/pl011@9000000");
}

#[test]
fn cpus_and_memory() {
    let t = Tree::parse(&build(&full()).unwrap());
    assert_eq!(t.u32s("/cpus", "#address-cells"), [1]);
    assert_eq!(t.u32s("/cpus", "#size-cells"), [0]);
    for n in 0..2u32 {
        let p = alloc::format!("/cpus/cpu@{n}");
        assert_eq!(t.u32s(&p, "reg"), [n]);
        assert_eq!(t.str(&p, "device_type"), "cpu");
        assert_eq!(t.str(&p, "compatible"), "arm,armv8");
        assert_eq!(t.str(&p, "enable-method"), "psci");
    }
    assert!(!t.has("/cpus/cpu@2"));
    assert_eq!(t.str("/memory@40000000", "device_type"), "memory");
    assert_eq!(t.u64s("/memory@40000000", "reg"), [0x4000_0000, 0x2000_0000]);
    assert_eq!(t.u64s("/memory@100000000", "reg"), [0x1_0000_0000, 0x1000_0000]);
}

#[test]
fn gic_timer_psci() {
    let t = Tree::parse(&build(&full()).unwrap());
    let g = "/intc@8000000";
    assert_eq!(t.str(g, "compatible"), "arm,gic-v3");
    assert_eq!(t.u32s(g, "#interrupt-cells"), [3]);
    assert_eq!(t.prop(g, "interrupt-controller"), Some(&[][..]));
    assert_eq!(t.u32s(g, "#redistributor-regions"), [1]);
    assert_eq!(t.u64s(g, "reg"), [0x800_0000, 0x1_0000, 0x80a_0000, 2 * 0x2_0000]);
    assert_eq!(t.u32s(g, "interrupts"), [1, 9, 4]);
    assert_eq!(t.str("/timer", "compatible"), "arm,armv8-timer");
    assert_eq!(t.u32s("/timer", "interrupts"), [1, 13, 8, 1, 14, 8, 1, 11, 8, 1, 10, 8]);
    assert_eq!(t.prop("/timer", "always-on"), Some(&[][..]));
    assert_eq!(t.strs("/psci", "compatible"), ["arm,psci-1.0", "arm,psci-0.2"]);
    assert_eq!(t.str("/psci", "method"), "hvc");
}

#[test]
fn pl011_and_its_clock() {
    let t = Tree::parse(&build(&full()).unwrap());
    let u = "/pl011@9000000";
    assert_eq!(t.strs(u, "compatible"), ["arm,pl011", "arm,primecell"]);
    assert_eq!(t.u64s(u, "reg"), [0x900_0000, 0x1000]);
    assert_eq!(t.u32s(u, "interrupts"), [0, 1, 4]);
    assert_eq!(t.strs(u, "clock-names"), ["uartclk", "apb_pclk"]);
    let clk = t.u32s("/apb-pclk", "phandle");
    assert_eq!(t.u32s(u, "clocks"), [clk[0], clk[0]]);
    assert_eq!(t.str("/apb-pclk", "compatible"), "fixed-clock");
    assert_eq!(t.u32s("/apb-pclk", "#clock-cells"), [0]);
    assert_eq!(t.u32s("/apb-pclk", "clock-frequency"), [24_000_000]);
    assert_eq!(t.str("/apb-pclk", "clock-output-names"), "clk24mhz");
}

#[test]
fn minimal_guest_has_no_optional_nodes() {
    let t = Tree::parse(&build(&GuestDtb::new("g", 1, &MEM[..1], gic())).unwrap());
    assert!(t.has("/chosen") && t.has("/cpus/cpu@0") && t.has("/timer"));
    assert!(!t.has("/aliases") && !t.has("/apb-pclk"));
    assert_eq!(t.prop("/chosen", "bootargs"), None);
    assert_eq!(t.prop("/chosen", "stdout-path"), None);
    assert_eq!(t.u64s("/intc@8000000", "reg")[3], 0x2_0000);
}

#[test]
fn passthrough_nodes() {
    let regs = [(GuestPhysAddr(0x901_0000), 0x1000)];
    let irqs = [(GuestIrq::of::<34>(), Trigger::Level), (GuestIrq::of::<35>(), Trigger::Edge)];
    let props = [
        ("clock-names", PropValue::Str("apb_pclk")),
        ("wakeup-source", PropValue::Empty),
        ("cells", PropValue::U32s(&[1, 2])),
        ("x", PropValue::U32(7)),
        ("names", PropValue::Strs(&["a", "b"])),
        ("raw", PropValue::Bytes(&[1, 2, 3])),
    ];
    let pt = [PassthroughNode {
        name: "rtc@9010000",
        compatible: &["arm,pl031", "arm,primecell"],
        reg: &regs,
        interrupts: &irqs,
        apb_pclk: false,
        props: &props,
        scmi: DeviceScmi::default(),
    }];
    let d = GuestDtb { passthrough: &pt, ..GuestDtb::new("g", 1, &MEM, gic()) };
    let t = Tree::parse(&build(&d).unwrap());
    let p = "/rtc@9010000";
    assert_eq!(t.strs(p, "compatible"), ["arm,pl031", "arm,primecell"]);
    assert_eq!(t.u64s(p, "reg"), [0x901_0000, 0x1000]);
    assert_eq!(t.u32s(p, "interrupts"), [0, 2, 4, 0, 3, 1]);
    assert_eq!(t.str(p, "clock-names"), "apb_pclk");
    assert_eq!(t.prop(p, "wakeup-source"), Some(&[][..]));
    assert_eq!(t.u32s(p, "cells"), [1, 2]);
    assert_eq!(t.u32s(p, "x"), [7]);
    assert_eq!(t.strs(p, "names"), ["a", "b"]);
    assert_eq!(t.prop(p, "raw"), Some(&[1, 2, 3][..]));
    assert_eq!(t.prop(p, "clocks"), None);

    let bad_props = [("reg", PropValue::U32(1))];
    let pt = [PassthroughNode { props: &bad_props, ..pt[0] }];
    let d = GuestDtb { passthrough: &pt, ..d };
    assert!(matches!(build(&d), Err(DtbError::ReservedProperty { .. })));
    let ppi = [(GuestIrq::of::<27>(), Trigger::Level)];
    let pt = [PassthroughNode { interrupts: &ppi, props: &[], ..pt[0] }];
    let d = GuestDtb { passthrough: &pt, ..d };
    assert_eq!(build(&d), Err(DtbError::NotSpi { node: "rtc@9010000".into(), irq: GuestIrq::of::<27>() }));
}

/// A PrimeCell pass-through gets the `/apb-pclk` clock even in a guest
/// without vUART (its `clocks` used to name a phandle no node had).
#[test]
fn primecell_passthrough_gets_the_clock_without_a_vuart() {
    let regs = [(GuestPhysAddr(0x903_0000), 0x1000)];
    let props =
        [("gpio-controller", PropValue::Bytes(&[])), ("#gpio-cells", PropValue::Bytes(&[0, 0, 0, 2]))];
    let pt = [PassthroughNode {
        name: "pl061",
        compatible: &["arm,pl061", "arm,primecell"],
        reg: &regs,
        interrupts: &[(GuestIrq::of::<39>(), Trigger::Level)],
        apb_pclk: true,
        props: &props,
        scmi: DeviceScmi::default(),
    }];
    let d = GuestDtb { passthrough: &pt, ..GuestDtb::new("g", 1, &MEM, gic()) };
    let t = Tree::parse(&build(&d).unwrap());
    let p = "/pl061@9030000";
    let clk = t.u32s("/apb-pclk", "phandle");
    assert_eq!(t.u32s(p, "clocks"), clk);
    assert_eq!(t.str(p, "clock-names"), "apb_pclk");
    assert_eq!(t.prop(p, "gpio-controller"), Some(&[][..]));
    assert_eq!(t.u32s(p, "#gpio-cells"), [2]);
    assert!(!t.has("/pl011@9000000"));
    // Without a PrimeCell device and without vUART: no clock.
    let pt = [PassthroughNode { apb_pclk: false, ..pt[0] }];
    let t = Tree::parse(&build(&GuestDtb { passthrough: &pt, ..d }).unwrap());
    assert!(!t.has("/apb-pclk"));
    assert_eq!(t.prop(p, "clocks"), None);
}

#[test]
fn passthrough_props_may_not_clash() {
    let regs = [(GuestPhysAddr(0x903_0000), 0x1000)];
    let base = PassthroughNode {
        name: "dev",
        compatible: &["x"],
        reg: &regs,
        interrupts: &[],
        apb_pclk: true,
        props: &[],
        scmi: DeviceScmi::default(),
    };
    let err = |props: &[(&str, PropValue<'_>)]| {
        let pt = [PassthroughNode { props, ..base }];
        build(&GuestDtb { passthrough: &pt, ..GuestDtb::new("g", 1, &MEM, gic()) }).unwrap_err()
    };
    for name in ["clocks", "clock-names", "phandle", "linux,phandle", "interrupts-extended"] {
        let e = err(&[(name, PropValue::Empty)]);
        assert_eq!(e, DtbError::ReservedProperty { node: "dev@9030000".into(), prop: name.into() });
    }
    let e = err(&[("a", PropValue::Empty), ("b", PropValue::U32(1)), ("a", PropValue::Bytes(&[]))]);
    assert_eq!(e, DtbError::DuplicateProperty { node: "dev@9030000".into(), prop: "a".into() });
    assert!(e.to_string().contains("\"a\" is given twice"), "{e}");
    // Without apb_pclk the node may carry clocks of its own.
    let pt = [PassthroughNode { apb_pclk: false, props: &[("clocks", PropValue::U32(2))], ..base }];
    assert!(build(&GuestDtb { passthrough: &pt, ..GuestDtb::new("g", 1, &MEM, gic()) }).is_ok());
}

#[test]
fn rejects_bad_descriptions() {
    let base = GuestDtb::new("g", 1, &MEM, gic());
    assert_eq!(build(&GuestDtb { vcpus: 0, ..base }), Err(DtbError::BadVcpus(0)));
    assert_eq!(build(&GuestDtb { vcpus: 257, ..base }), Err(DtbError::BadVcpus(257)));
    assert_eq!(build(&GuestDtb { memory: &[], ..base }), Err(DtbError::NoMemory));
    let e = build(&GuestDtb { psci_conduit: "svc", ..base }).unwrap_err();
    assert!(e.to_string().contains("svc"));
    let e = build(&GuestDtb { timer_ppis: [29, 30, 27, 40], ..base }).unwrap_err();
    assert_eq!(e, DtbError::TimerNotPpi(40));
    let e = build(&GuestDtb { vuart: Some((GuestPhysAddr(0x900_0000), GuestIrq::of::<5>())), ..base });
    assert!(matches!(e, Err(DtbError::NotSpi { .. })));
    let e = build(&GuestDtb { bootargs: Some("a\0b"), ..base }).unwrap_err();
    assert_eq!(e, DtbError::Fdt(vm_fdt::Error::InvalidString));
    let huge = GicLayout { redist_stride: u64::MAX, ..gic() };
    assert_eq!(build(&GuestDtb { vcpus: 2, gic: huge, ..base }), Err(DtbError::RedistOverflow));
    let smc = Tree::parse(&build(&GuestDtb { psci_conduit: "smc", ..base }).unwrap());
    assert_eq!(smc.str("/psci", "method"), "smc");
}

proptest! {
    #[test]
    fn builds_or_errors_never_panics(
        name in "[ -~]{0,40}",
        vcpus in 0usize..300,
        mem in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..4),
        args in proptest::option::of("[ -~]{0,80}"),
        uart in proptest::option::of((any::<u64>(), 0u32..1100)),
        ppis in proptest::array::uniform4(0u32..40),
    ) {
        let mem: Vec<_> = mem.into_iter().map(|(a, s)| (GuestPhysAddr(a), s)).collect();
        let d = GuestDtb {
            bootargs: args.as_deref(),
            vuart: uart.and_then(|(a, i)| Some((GuestPhysAddr(a), GuestIrq::new(i)?))),
            timer_ppis: ppis,
            ..GuestDtb::new(&name, vcpus, &mem, gic())
        };
        if let Ok(blob) = build(&d) {
            let t = Tree::parse(&blob);
            prop_assert_eq!(t.nodes.iter().filter(|(p, _)| p.starts_with("/cpus/cpu@")).count(), vcpus);
            prop_assert_eq!(t.str("/", "model"), alloc::format!("ferrovisor guest {name}"));
        }
    }
}

#[test]
fn scmi_platform_and_device_links() {
    let regs = [(GuestPhysAddr(0x901_0000), 0x1000)];
    let irqs = [(GuestIrq::of::<34>(), Trigger::Level)];
    let clocks = [(0, Some("apb_pclk"))];
    let pt = [PassthroughNode {
        name: "pl031@9010000",
        compatible: &["arm,pl031", "arm,primecell"],
        reg: &regs,
        interrupts: &irqs,
        apb_pclk: true,
        props: &[],
        scmi: DeviceScmi { power: Some(1), reset: None, clocks: &clocks },
    }];
    let scmi = ScmiDt {
        channel: GuestPhysAddr(0x9ff_f000),
        smc_id: 0xc600_8000,
        power: true,
        clocks: true,
        resets: false,
    };
    let d = GuestDtb { passthrough: &pt, scmi: Some(scmi), ..GuestDtb::new("g", 1, &MEM, gic()) };
    let t = Tree::parse(&build(&d).unwrap());
    let s = "/firmware/scmi";
    assert_eq!(t.strs(s, "compatible"), ["arm,scmi-smc"]);
    assert_eq!(t.u32s(s, "arm,smc-id"), [0xc600_8000]);
    let shm = t.u32s(s, "shmem")[0];
    assert_eq!(t.u32s("/scmi-shmem@9fff000", "phandle"), [shm]);
    assert_eq!(t.u64s("/scmi-shmem@9fff000", "reg"), [0x9ff_f000, 0x1000]);
    let pd = t.u32s("/firmware/scmi/protocol@11", "phandle")[0];
    let clk = t.u32s("/firmware/scmi/protocol@14", "phandle")[0];
    assert_eq!(t.u32s("/firmware/scmi/protocol@14", "#clock-cells"), [1]);
    assert_eq!(t.prop("/firmware/scmi/protocol@16", "reg"), None, "no resets: no reset protocol node");
    let p = "/pl031@9010000";
    assert_eq!(t.u32s(p, "clocks"), [clk, 0], "the clock comes through SCMI");
    assert_eq!(t.strs(p, "clock-names"), ["apb_pclk"]);
    assert_eq!(t.u32s(p, "power-domains"), [pd, 1]);
    assert_eq!(t.prop("/apb-pclk", "phandle"), None, "no fixed clock needed");
}

#[test]
fn virtual_pci_host_bridge() {
    let pci = PciDt {
        ecam: GuestPhysAddr(0x3f00_0000),
        window: (GuestPhysAddr(0x1000_0000), 0x2eff_0000),
        intx: alloc::vec![(2, 1, GuestIrq::of::<37>()), (3, 1, GuestIrq::of::<60>())],
    };
    let t = Tree::parse(&build(&GuestDtb { pci: Some(&pci), ..full() }).unwrap());
    let n = "/pcie@3f000000";
    assert_eq!(t.str(n, "compatible"), "pci-host-ecam-generic");
    assert_eq!(t.str(n, "device_type"), "pci");
    assert_eq!(t.u64s(n, "reg"), [0x3f00_0000, 0x10_0000]);
    assert_eq!(t.u32s(n, "bus-range"), [0, 0]);
    assert_eq!(t.u32s(n, "ranges"), [0x0200_0000, 0, 0x1000_0000, 0, 0x1000_0000, 0, 0x2eff_0000]);
    assert_eq!(t.u32s(n, "interrupt-map-mask"), [0xf800, 0, 0, 7]);
    let gic = t.u32s("/intc@8000000", "phandle")[0];
    assert_eq!(
        t.u32s(n, "interrupt-map"),
        [0x1000, 0, 0, 1, gic, 0, 0, 0, 5, 4, 0x1800, 0, 0, 1, gic, 0, 0, 0, 28, 4]
    );
    assert_eq!(t.u32s("/chosen", "linux,pci-probe-only"), [1]);
    // Without functions: no node, no probe-only.
    let t = Tree::parse(&build(&full()).unwrap());
    assert!(!t.has(n));
    assert!(t.prop("/chosen", "linux,pci-probe-only").is_none());
}
