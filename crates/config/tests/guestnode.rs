//! The guest DT node of a passed-through host device: what it keeps of the
//! host node (QEMU virt's PL061 and PL031), and the warning that lists what
//! it leaves out.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ferrovisor_config::{DtProp, PassthroughConfig, PtDtNode, Trigger};
use ferrovisor_types::{GuestIrq, GuestPhysAddr};
use support::load;

const QEMU: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3.dtb");
const PROPS: &[u8] = include_bytes!("fixtures/host-props.dtb");
const BUNDLE: &[&str] = &["linux/Image"];

fn prop(name: &str, value: &[u8]) -> DtProp {
    DtProp { name: name.into(), value: value.to_vec() }
}

fn dt(pt: &PassthroughConfig) -> &PtDtNode {
    pt.dt.as_ref().unwrap()
}

#[test]
fn pl061_and_pl031_nodes_are_complete() {
    let out = load(QEMU, include_bytes!("fixtures/node-gpio-rtc.dtb"), BUNDLE);
    assert!(out.is_clean() && out.warnings.is_empty(), "{:#?} {:#?}", out.errors, out.warnings);
    let pts = &out.config.guests[0].passthrough;
    let rtc = dt(&pts[0]);
    assert_eq!(rtc.name, "pl031");
    assert!(rtc.primecell && rtc.props.is_empty());
    let gpio = dt(&pts[1]);
    let want = PtDtNode {
        name: "pl061".into(),
        compatible: vec!["arm,pl061".into(), "arm,primecell".into()],
        regs: vec![(GuestPhysAddr(0x0c00_0000), 0x1000)],
        irqs: vec![(GuestIrq::of::<70>(), Trigger::Level)],
        primecell: true,
        props: vec![
            prop("gpio-controller", &[]),
            prop("#gpio-cells", &[0, 0, 0, 2]),
            prop("interrupt-controller", &[]),
            prop("#interrupt-cells", &[0, 0, 0, 2]),
        ],
    };
    assert_eq!(*gpio, want);
}

#[test]
fn what_a_node_leaves_out_is_one_warning_per_device() {
    let out = load(PROPS, include_bytes!("fixtures/node-left-out.dtb"), BUNDLE);
    assert!(out.is_clean(), "{:#?}", out.errors);
    let left: Vec<String> =
        out.warnings.iter().filter(|w| w.message.contains("leaves out")).map(|w| w.to_string()).collect();
    assert_eq!(left.len(), 2, "{left:#?}");
    assert!(left[0].starts_with("/guests/g/busy: the guest DT node of host device /busy@9800000 leaves out clocks, resets, pinctrl-0, power-domains, reset-gpios, vdd-supply, test,syscon, test,partner, a-property-name-that-is-far-too-long (not a valid property name), status \"disabled\", 1 interrupt(s) not on the GIC, child nodes child@0 (hint: "), "{}", left[0]);
    assert!(left[1].starts_with("/guests/g/uart: the guest DT node of host device /serial@9a00000 leaves out clocks other than apb_pclk (hint: "), "{}", left[1]);
    // The PL061 that already has its interrupt-controller properties keeps
    // them once, and has nothing to report.
    let gpio = dt(&out.config.guests[0].passthrough[2]);
    let names: Vec<&str> = gpio.props.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["gpio-controller", "#gpio-cells", "interrupt-controller", "#interrupt-cells"]);
    // The busy device keeps its data and its two GIC interrupts with their names.
    let busy = dt(&out.config.guests[0].passthrough[0]);
    assert_eq!(busy.irqs, [(GuestIrq::of::<42>(), Trigger::Level), (GuestIrq::of::<43>(), Trigger::Edge)]);
    assert!(busy.props.contains(&prop("interrupt-names", b"tx\0rx\0")));
    assert!(busy.props.contains(&prop("dma-coherent", &[])));
}
