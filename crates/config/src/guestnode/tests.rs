//! The guest node rules on QEMU virt's real host DT and on a synthetic host
//! with every kind of property a guest node must not carry.

use super::*;
use crate::devices::device_at;
use alloc::vec;

const QEMU: &[u8] = include_bytes!("../../tests/fixtures/qemu-virt-gicv3.dtb");
const SMMU: &[u8] = include_bytes!("../../tests/fixtures/qemu-virt-gicv3-smmuv3.dtb");
const PROPS: &[u8] = include_bytes!("../../tests/fixtures/host-props.dtb");

/// The guest node of host device `path`.
fn node_of(dtb: &[u8], path: &str) -> GuestProps {
    let tree = Tree::parse(dtb).unwrap();
    let idx = tree.find(path).unwrap();
    device_at(&tree, idx).unwrap().unwrap().guest_node
}

fn prop(name: &str, value: &[u8]) -> DtProp {
    DtProp { name: name.into(), value: value.to_vec() }
}

#[test]
fn qemu_pl061_is_a_gpio_and_interrupt_controller() {
    // Host: phandle, clock-names, clocks, interrupts, gpio-controller,
    // #gpio-cells, compatible, reg. No interrupt-controller (QEMU leaves it out).
    let g = node_of(QEMU, "/pl061@9030000");
    assert_eq!(
        g.props,
        [
            prop("gpio-controller", &[]),
            prop("#gpio-cells", &[0, 0, 0, 2]),
            prop("interrupt-controller", &[]),
            prop("#interrupt-cells", &[0, 0, 0, 2]),
        ]
    );
    assert!(g.primecell);
    assert!(g.left_out.is_empty(), "{:?}", g.left_out);
}

#[test]
fn qemu_pl031_virtio_and_flash() {
    let rtc = node_of(QEMU, "/pl031@9010000");
    assert_eq!((rtc.props.len(), rtc.primecell, rtc.left_out.len()), (0, true, 0));
    let virtio = node_of(QEMU, "/virtio_mmio@a003e00");
    assert_eq!(
        (virtio.props, virtio.primecell, virtio.left_out.len()),
        (vec![prop("dma-coherent", &[])], false, 0)
    );
    let flash = node_of(QEMU, "/flash@0");
    assert_eq!(flash.props, [prop("bank-width", &[0, 0, 0, 4])]);
}

#[test]
fn qemu_pcie_host_bridge_loses_its_windows_and_msis_not_its_iommu() {
    // iommu-map is the hypervisor's (silent); ranges, interrupt-map and
    // msi-map are host wiring the guest lacks.
    let pcie = node_of(SMMU, "/pcie@10000000");
    assert_eq!(pcie.left_out, ["interrupt-map", "ranges", "msi-map"]);
    let names: Vec<&str> = pcie.props.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["#interrupt-cells", "dma-coherent", "bus-range", "linux,pci-domain", "device_type"]);
}

#[test]
fn references_status_children_and_foreign_interrupts_are_left_out() {
    let g = node_of(PROPS, "/busy@9800000");
    assert_eq!(
        g.props,
        [
            prop("reg-names", b"regs\0"),
            prop("test,burst-len", &[0, 0, 1, 0]),
            prop("dma-coherent", &[]),
            prop("wakeup-source", &[]),
            prop("label", b"busy\0"),
            prop("interrupt-names", b"tx\0rx\0"),
        ]
    );
    assert!(!g.primecell);
    assert_eq!(
        g.left_out,
        [
            "clocks",
            "resets",
            "pinctrl-0",
            "power-domains",
            "reset-gpios",
            "vdd-supply",
            "test,syscon",
            "test,partner",
            "a-property-name-that-is-far-too-long (not a valid property name)",
            "status \"disabled\"",
            "1 interrupt(s) not on the GIC",
            "child nodes child@0",
        ]
    );
}

#[test]
fn completions_are_not_doubled_and_primecell_clocks_are_translated() {
    let gpio = node_of(PROPS, "/gpio@9900000");
    let names: Vec<&str> = gpio.props.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["gpio-controller", "#gpio-cells", "interrupt-controller", "#interrupt-cells"]);
    assert!(gpio.primecell && gpio.left_out.is_empty());
    let uart = node_of(PROPS, "/serial@9a00000");
    assert!(uart.primecell && uart.props.is_empty());
    assert_eq!(uart.left_out, ["clocks other than apb_pclk"]);
}

#[test]
fn a_device_without_gic_interrupts_gets_no_names_and_no_completion() {
    let keys = node_of(PROPS, "/keys@9b00000");
    assert!(keys.props.is_empty(), "{:?}", keys.props);
    assert_eq!(keys.left_out, ["1 interrupt(s) not on the GIC"]);
}

#[test]
fn property_rules() {
    assert!(valid_name("#gpio-cells") && valid_name("arm,primecell-periphid"));
    assert!(!valid_name("") && !valid_name("a b") && !valid_name(&"x".repeat(32)));
    assert!(is_pinctrl_state("pinctrl-0") && is_pinctrl_state("pinctrl-12"));
    assert!(!is_pinctrl_state("pinctrl-names") && !is_pinctrl_state("pinctrl-"));
    let tree = Tree::parse(QEMU).unwrap();
    for name in [
        "clocks",
        "resets",
        "power-domains",
        "msi-parent",
        "dmas",
        "enable-gpios",
        "phy-handle",
        "vcc-supply",
    ] {
        assert!(is_reference(&tree, name, &[0, 0, 0, 1]), "{name}");
    }
    // A vendor property is a reference when its first cell is a host phandle
    // (0x8000 is QEMU's apb-pclk), data otherwise; unprefixed ones are data.
    assert!(is_reference(&tree, "acme,clk", &[0, 0, 0x80, 0]));
    assert!(!is_reference(&tree, "acme,len", &[0, 0, 0, 16]));
    assert!(!is_reference(&tree, "arm,primecell-periphid", &[0, 0, 0x80, 0]));
    assert!(!is_reference(&tree, "bank-width", &[0, 0, 0x80, 0]));
    assert!(!is_reference(&tree, "gpio-controller", &[]));
    assert!(!is_reference(&tree, "gpio-line-names", b"a\0"));
}

#[test]
fn node_names_fit_the_guest_dt() {
    assert_eq!(node_name("/soc/pl031@9010000"), "pl031");
    assert_eq!(node_name("/virtio_mmio@a003e00"), "virtio_mmio");
    assert_eq!(node_name("/odd#name@0"), "odd-name");
    assert_eq!(node_name("/9p@0"), "dev-9p");
    assert_eq!(node_name("/@1000"), "dev-");
    assert_eq!(node_name(&alloc::format!("/{}@0", "n".repeat(40))).len(), 31);
}
