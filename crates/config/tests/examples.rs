//! The shipped example configs (configs/qemu-virt/*.dts) against the QEMU
//! virt host: the typed values of the accepted guests, and the exact console
//! text for the rejected one.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ferrovisor_config::{
    DmaProtection, GuestConfig, HostClock, IrqRoute, MemoryRegion, PassthroughConfig, PtDtNode, PtRegion,
    ScmiResources, Trigger, VuartConfig,
};
use ferrovisor_types::{GuestIrq, GuestPhysAddr, HostIrq, HostPhysAddr, PcpuId};
use support::load;

const QEMU: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3.dtb");
const SMALL: &[u8] = include_bytes!("fixtures/host-small.dtb");
const DEFAULT: &[u8] = include_bytes!("fixtures/qemu-virt-default.dtb");
const BAD: &[u8] = include_bytes!("fixtures/qemu-virt-bad-guest.dtb");
const BUNDLE: &[&str] = &["linux/Image", "linux/initrd.gz", "guests/probe.bin"];

fn mem(gpa: u64, size: u64, identity: bool, host: u64, path: &str) -> MemoryRegion {
    MemoryRegion { gpa: GuestPhysAddr(gpa), size, identity, host: HostPhysAddr(host), path: path.into() }
}

fn vuart(guest: &str) -> Option<VuartConfig> {
    Some(VuartConfig {
        gpa: GuestPhysAddr(0x0900_0000),
        irq: GuestIrq::of::<33>(),
        path: format!("/guests/{guest}/uart@9000000"),
    })
}

#[test]
fn fixtures_are_copies_of_the_shipped_configs() {
    let shipped = include_str!("../../../configs/qemu-virt/default.dts");
    assert_eq!(
        shipped,
        include_str!("fixtures/qemu-virt-default.dts"),
        "copy configs/qemu-virt/default.dts to the fixtures and rerun build.sh"
    );
    let shipped = include_str!("../../../configs/qemu-virt/bad-guest.dts");
    assert_eq!(
        shipped,
        include_str!("fixtures/qemu-virt-bad-guest.dts"),
        "copy configs/qemu-virt/bad-guest.dts to the fixtures and rerun build.sh"
    );
}

#[test]
fn default_config_is_clean_and_typed() {
    let out = load(QEMU, DEFAULT, BUNDLE);
    assert!(out.is_clean(), "{:?}", out.errors);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let linux0 = GuestConfig {
        name: "linux0".into(),
        path: "/guests/linux0".into(),
        vcpus: 2,
        affinity: Some(vec![PcpuId::of::<0>(), PcpuId::of::<1>()]),
        // Planned from the top of the 2 GiB of RAM down, in config order.
        memory: vec![mem(0x4000_0000, 0x1000_0000, false, 0xb000_0000, "/guests/linux0/memory@40000000")],
        kernel: Some("linux/Image".into()),
        initrd: Some("linux/initrd.gz".into()),
        dtb: None,
        bootargs: Some("console=ttyAMA0".into()),
        vuart: vuart("linux0"),
        passthrough: vec![PassthroughConfig {
            name: "rtc@9010000".into(),
            path: "/guests/linux0/rtc@9010000".into(),
            host_device: Some("/pl031@9010000".into()),
            regions: vec![PtRegion {
                hpa: HostPhysAddr(0x0901_0000),
                gpa: GuestPhysAddr(0x0901_0000),
                size: 0x1000,
            }],
            irqs: vec![IrqRoute {
                host: HostIrq::of::<34>(),
                guest: GuestIrq::of::<34>(),
                trigger: Trigger::Level,
            }],
            dma: DmaProtection::None,
            compatible: vec!["arm,pl031".into(), "arm,primecell".into()],
            dt: Some(PtDtNode {
                name: "pl031".into(),
                compatible: vec!["arm,pl031".into(), "arm,primecell".into()],
                regs: vec![(GuestPhysAddr(0x0901_0000), 0x1000)],
                irqs: vec![(GuestIrq::of::<34>(), Trigger::Level)],
                primecell: true,
                props: vec![],
            }),
            // The host node's apb_pclk, switched through SCMI.
            scmi: ScmiResources {
                clocks: vec![HostClock {
                    name: "apb-pclk".into(),
                    consumer: Some("apb_pclk".into()),
                    rate: Some(24_000_000),
                }],
                ..ScmiResources::default()
            },
            standby: false,
            pci: None,
            streams: vec![],
            intercept: None,
        }],
        scmi_channel: Some(GuestPhysAddr(ferrovisor_config::scmi::DEFAULT_CHANNEL)),
        manual_start: false,
        pci: None,
    };
    let probe0 = GuestConfig {
        name: "probe0".into(),
        path: "/guests/probe0".into(),
        vcpus: 1,
        affinity: Some(vec![PcpuId::of::<2>()]),
        memory: vec![mem(0x4000_0000, 0x0100_0000, false, 0xaf00_0000, "/guests/probe0/memory@40000000")],
        kernel: Some("guests/probe.bin".into()),
        initrd: None,
        dtb: None,
        bootargs: Some("probe.name=probe0 probe.tests=hello,mem,hvc,echo probe.end=wfi".into()),
        vuart: vuart("probe0"),
        passthrough: vec![],
        scmi_channel: None,
        manual_start: false,
        pci: None,
    };
    assert_eq!(out.config.guests, vec![linux0, probe0]);
}

#[test]
fn default_config_is_clean_with_its_images() {
    // The image rules themselves are covered by the rule-images fixture.
    let out = load(QEMU, DEFAULT, BUNDLE);
    assert!(out.is_clean(), "{:#?}", out.errors);
    assert_eq!(out.config.guests.len(), 2);
}

/// The exact lines the hypervisor prints for configs/qemu-virt/bad-guest.dts.
pub const BAD_GUEST_ERRORS: [&str; 3] = [
    "/guests/evil0/memory@40000800: guest-physical-addr 0x40000800 is not 4 KiB aligned (hint: stage-2 maps whole 4 KiB pages: use a multiple of 0x1000)",
    "/guests/evil0/gic: host device /intc@8000000 is the GIC distributor, owned by the hypervisor (hint: the hypervisor keeps the GIC, its console UART and the SMMUs; a guest gets a virtual GIC, and an emulated UART (compatible = \"ferrovisor,vuart-pl011\"))",
    "/guests/evil0/console: host device /pl011@9000000 is the hypervisor console UART, owned by the hypervisor (hint: the hypervisor keeps the GIC, its console UART and the SMMUs; a guest gets a virtual GIC, and an emulated UART (compatible = \"ferrovisor,vuart-pl011\"))",
];

#[test]
fn bad_guest_rejects_only_the_middle_guest() {
    let out = load(QEMU, BAD, BUNDLE);
    let text: Vec<String> = out.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(text, BAD_GUEST_ERRORS);
    assert!(out.errors.iter().all(|e| e.guest.as_deref() == Some("evil0")));
    assert!(out.warnings.is_empty());
    let names: Vec<&str> = out.config.guests.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["linux0", "probe0"]);
}

#[test]
fn dma_protection_values() {
    let out = load(SMALL, include_bytes!("fixtures/rule-iommu.dtb"), BUNDLE);
    assert!(out.is_clean(), "{:?}", out.errors);
    let pts = &out.config.guests[0].passthrough;
    assert_eq!(pts[0].dma, DmaProtection::Iommu);
    assert_eq!(
        pts[0].regions,
        [PtRegion { hpa: HostPhysAddr(0x0908_0000), gpa: GuestPhysAddr(0x2000_0000), size: 0x1000 }]
    );
    // Two regions keep their offset; interrupt 42 remapped to 50, 41 identity.
    assert_eq!(pts[1].dma, DmaProtection::None);
    let gpas: Vec<u64> = pts[1].regions.iter().map(|r| r.gpa.0).collect();
    assert_eq!(gpas, [0x0906_0000, 0x0906_1000]);
    let routes: Vec<(u32, u32, Trigger)> =
        pts[1].irqs.iter().map(|r| (r.host.raw(), r.guest.raw(), r.trigger)).collect();
    assert_eq!(routes, [(42, 50, Trigger::Edge), (41, 41, Trigger::Level)]);

    let out = load(QEMU, include_bytes!("fixtures/rule-dma-ack.dtb"), BUNDLE);
    let pt = &out.config.guests[0].passthrough[0];
    assert_eq!(pt.dma, DmaProtection::UnprotectedAcknowledged);
    assert_eq!(pt.host_device, None);
    assert_eq!(pt.dt, None);
    assert_eq!(pt.compatible, ["virtio,mmio"]);
    assert_eq!(pt.irqs.len(), 2);
    assert!(out.config.guests[0].memory[0].identity);
}
