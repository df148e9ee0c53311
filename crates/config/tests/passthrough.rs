//! Pass-through of host devices: the stage-2 windows (whole pages, also for
//! sub-page devices such as virtio-mmio transports) and the guest DT node
//! data (`PtDtNode`), plus the exact text of the sub-page findings.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ferrovisor_config::{DmaProtection, DtProp, PassthroughConfig, PtDtNode, PtRegion, Trigger};
use ferrovisor_types::{GuestIrq, GuestPhysAddr, HostPhysAddr};
use support::load;

const QEMU: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3.dtb");
const SMALL: &[u8] = include_bytes!("fixtures/host-small.dtb");
const BUNDLE: &[&str] = &["linux/Image", "linux/initrd.gz", "guests/probe.bin"];

/// The only pass-through of the only guest of an accepted fixture.
fn only_pt(host: &[u8], config: &[u8]) -> PassthroughConfig {
    let out = load(host, config, BUNDLE);
    assert!(out.is_clean(), "{:#?}", out.errors);
    assert_eq!(out.config.guests.len(), 1);
    assert_eq!(out.config.guests[0].passthrough.len(), 1);
    out.config.guests[0].passthrough[0].clone()
}

fn page(hpa: u64, gpa: u64) -> PtRegion {
    PtRegion { hpa: HostPhysAddr(hpa), gpa: GuestPhysAddr(gpa), size: 0x1000 }
}

fn virtio_dt(gpa: u64) -> PtDtNode {
    PtDtNode {
        name: "virtio_mmio".into(),
        compatible: vec!["virtio,mmio".into()],
        regs: vec![(GuestPhysAddr(gpa), 0x200)],
        // virtio_mmio@a003e00: interrupts = <0 0x2f 1>, SPI 47 = INTID 79, edge.
        irqs: vec![(GuestIrq::of::<79>(), Trigger::Edge)],
        primecell: false,
        props: vec![DtProp { name: "dma-coherent".into(), value: vec![] }],
    }
}

#[test]
fn sub_page_device_gets_its_page() {
    let pt = only_pt(QEMU, include_bytes!("fixtures/rule-subpage.dtb"));
    assert_eq!(pt.host_device.as_deref(), Some("/virtio_mmio@a003e00"));
    assert_eq!(pt.regions, [page(0x0a00_3000, 0x0a00_3000)]);
    assert_eq!(pt.dt, Some(virtio_dt(0x0a00_3e00)));
    let routes: Vec<_> = pt.irqs.iter().map(|r| (r.host.raw(), r.guest.raw(), r.trigger)).collect();
    assert_eq!(routes, [(79, 79, Trigger::Edge)]);
    assert_eq!(pt.dma, DmaProtection::UnprotectedAcknowledged);
    assert_eq!(pt.compatible, ["virtio,mmio"]);
}

#[test]
fn sub_page_device_keeps_its_offset_at_another_address() {
    let pt = only_pt(QEMU, include_bytes!("fixtures/rule-subpage-remap.dtb"));
    assert_eq!(pt.regions, [page(0x0a00_3000, 0x0c00_0000)]);
    assert_eq!(pt.dt, Some(virtio_dt(0x0c00_0e00)));
}

#[test]
fn remapped_pl031() {
    let pt = only_pt(QEMU, include_bytes!("fixtures/rule-pt-remap.dtb"));
    assert_eq!(pt.regions, [page(0x0901_0000, 0x0c00_0000)]);
    let routes: Vec<_> = pt.irqs.iter().map(|r| (r.host.raw(), r.guest.raw(), r.trigger)).collect();
    assert_eq!(routes, [(34, 64, Trigger::Level)]);
    let dt = PtDtNode {
        name: "pl031".into(),
        compatible: vec!["arm,pl031".into(), "arm,primecell".into()],
        regs: vec![(GuestPhysAddr(0x0c00_0000), 0x1000)],
        irqs: vec![(GuestIrq::of::<64>(), Trigger::Level)],
        primecell: true,
        props: vec![],
    };
    assert_eq!(pt.dt, Some(dt));
}

#[test]
fn multi_region_device_dt_keeps_offsets_and_host_irq_order() {
    // host-small /soc/dual@60000: two pages, interrupts 41 (level), 42 (edge);
    // rule-iommu remaps 42 to 50. Routes list remapped ones first, the DT
    // node keeps the host DT order.
    let out = load(SMALL, include_bytes!("fixtures/rule-iommu.dtb"), BUNDLE);
    assert!(out.is_clean(), "{:#?}", out.errors);
    let dual = &out.config.guests[0].passthrough[1];
    let dt = dual.dt.as_ref().unwrap();
    assert_eq!(dt.name, "dual");
    assert_eq!(dt.regs, [(GuestPhysAddr(0x0906_0000), 0x1000), (GuestPhysAddr(0x0906_1000), 0x1000)]);
    assert_eq!(dt.irqs, [(GuestIrq::of::<41>(), Trigger::Level), (GuestIrq::of::<50>(), Trigger::Edge)]);
    assert!(!dt.primecell && dt.props.is_empty());
}

#[test]
fn sub_page_findings_print_in_full() {
    let out = load(QEMU, include_bytes!("fixtures/rule-subpage.dtb"), BUNDLE);
    assert_eq!(
        out.warnings[0].to_string(),
        "/guests/g/blk: passing /virtio_mmio@a003e00 through also exposes /virtio_mmio@a003000, /virtio_mmio@a003200, /virtio_mmio@a003400, /virtio_mmio@a003600, /virtio_mmio@a003800, /virtio_mmio@a003a00, /virtio_mmio@a003c00 (same 4 KiB page) to guest g (hint: stage-2 maps whole 4 KiB pages: the guest can program them although its device tree does not list them, and no other guest can have them; give whole pages to one guest)"
    );
    let out = load(QEMU, include_bytes!("fixtures/rule-pt-alignment.dtb"), BUNDLE);
    assert_eq!(
        out.errors[0].to_string(),
        "/guests/g/virtio: guest-physical-addr 0xc000000 does not keep the offset 0xe00 that host device /virtio_mmio@a003e00 (0xa003e00) has in its 4 KiB page (hint: guest-physical-addr is the guest address of the device itself, and stage 2 maps its whole page, so it must end in the same 12 bits as the host address: use 0xc000e00)"
    );
    let out = load(QEMU, include_bytes!("fixtures/rule-subpage-shared.dtb"), BUNDLE);
    assert_eq!(
        out.errors[0].to_string(),
        "/guests/b/net: its host page 0xa003000-0xa003fff is already passed through to guest a by /guests/a/blk (host device /virtio_mmio@a003e00) (hint: a host page goes to one guest, once, with every device in it (stage 2 maps whole 4 KiB pages): pass the devices of a page through in one node of one guest, or remove one of the two)"
    );
    let out = load(SMALL, include_bytes!("fixtures/rule-subpage-owned.dtb"), BUNDLE);
    assert_eq!(
        out.errors[0].to_string(),
        "/guests/g/tiny: the 4 KiB page of host device /soc/tiny@20400 also holds the hypervisor console UART (/soc/serial@20000), owned by the hypervisor (hint: stage-2 maps whole 4 KiB pages, so a device that shares a page with the GIC, the hypervisor's console UART or an SMMU cannot be passed through)"
    );
}

#[test]
fn intercepted_dma_registers_are_offsets_in_the_trapped_page() {
    let out = load(QEMU, include_bytes!("fixtures/rule-dma-registers.dtb"), BUNDLE);
    let good = out.config.guests.iter().find(|g| g.name == "good").expect("guest good");
    let blk = &good.passthrough[0];
    assert_eq!(blk.dma, DmaProtection::Intercepted { acknowledged: true });
    let i = blk.intercept.as_ref().expect("a trapped page");
    assert_eq!((i.hpa, i.gpa), (HostPhysAddr(0x0a00_3000), GuestPhysAddr(0x0a00_3000)));
    // The transport is the last 0x200 bytes of its page: its neighbours'
    // registers are out of reach.
    assert_eq!(i.window, (0xe00, 0x1000));
    let regs: Vec<_> = i.registers.iter().map(|r| (r.low, r.high, r.length)).collect();
    assert_eq!(regs, [(0xe80, 0xe84, 0x4000), (0xe90, 0xe94, 0x806), (0xea0, 0xea4, 0x2006)]);
    assert_eq!(blk.regions, [page(0x0a00_3000, 0x0a00_3000)]);
    // The RTC cannot master DMA: nothing to intercept.
    let rtc = &good.passthrough[1];
    assert_eq!((rtc.dma, rtc.intercept.as_ref()), (DmaProtection::None, None));
}
