//! HostPlatform::parse and the host device functions on the two QEMU virt
//! DTBs and on a small synthetic host (aliases, ranges, HVC, initrd).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferrovisor_config::{
    host_device, host_devices, HostDtError, HostIrqSpec, HostPlatform, PciWindow, PsciMethod, Trigger,
};
use ferrovisor_pci::{Bdf, Pin};
use ferrovisor_types::{HostIrq, HostRegion, Mpidr};

const PLAIN: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3.dtb");
const SMMU: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3-smmuv3.dtb");

fn check_common(p: &HostPlatform) {
    assert_eq!(p.cpus, [Mpidr(0), Mpidr(1), Mpidr(2), Mpidr(3)]);
    assert_eq!(p.memory, [HostRegion::new(0x4000_0000, 0x8000_0000)]);
    assert_eq!(p.gic.version, 3);
    assert_eq!(p.gic.dist, HostRegion::new(0x0800_0000, 0x1_0000));
    assert_eq!(p.gic.redist, [HostRegion::new(0x080a_0000, 0xf6_0000)]);
    assert_eq!(p.gic.its, Some(HostRegion::new(0x0808_0000, 0x2_0000)));
    assert_eq!(p.gic.path, "/intc@8000000");
    let console = p.console.as_ref().unwrap();
    assert_eq!(console.path, "/pl011@9000000");
    assert_eq!(console.region, HostRegion::new(0x0900_0000, 0x1000));
    assert_eq!(console.irq, Some(HostIrq::of::<33>()));
    let t = p.timer;
    assert_eq!([t.secure_phys, t.phys, t.virt, t.hyp_phys].map(|i| i.raw()), [29, 30, 27, 26]);
    assert_eq!(p.psci, Some(PsciMethod::Smc));
    assert_eq!(p.initrd, None);
}

#[test]
fn qemu_virt_gicv3() {
    let p = HostPlatform::parse(PLAIN).unwrap();
    check_common(&p);
    assert!(p.smmus.is_empty());
    let rtc = p.device("/pl031@9010000").unwrap();
    assert_eq!(rtc.regions, [HostRegion::new(0x0901_0000, 0x1000)]);
    assert_eq!(rtc.irqs, [HostIrqSpec { irq: HostIrq::of::<34>(), trigger: Trigger::Level }]);
    assert!(!rtc.dma);
    let virtio = p.device("/virtio_mmio@a000000").unwrap();
    assert!(virtio.dma);
    assert_eq!(virtio.irqs[0].trigger, Trigger::Edge);
    assert_eq!(virtio.irqs[0].irq, HostIrq::of::<48>());
    assert!(p.device("/fw-cfg@9020000").unwrap().dma);
    assert!(p.device("/memory@40000000").is_none());
    assert!(p.device("/cpus/cpu@0").is_none());
    let owned: Vec<_> = p.hypervisor_owned().into_iter().map(|(path, _, why)| (path, why)).collect();
    assert!(owned.contains(&("/intc@8000000/its@8080000".into(), "GIC ITS")));
    assert!(owned.contains(&("/pl011@9000000".into(), "hypervisor console UART")));
}

#[test]
fn qemu_virt_gicv3_smmuv3() {
    let p = HostPlatform::parse(SMMU).unwrap();
    check_common(&p);
    assert_eq!(p.smmus.len(), 1);
    assert_eq!(p.smmus[0].regions, [HostRegion::new(0x0905_0000, 0x2_0000)]);
    // Its interrupts by name: SPIs 74 to 77.
    let named = |n| p.smmus[0].irq_named(n).map(|i| i.raw());
    assert_eq!(
        (named("eventq"), named("priq"), named("cmdq-sync"), named("gerror")),
        (Some(106), Some(107), Some(108), Some(109))
    );
    assert_eq!(named("nonesuch"), None);
    let pcie = p.device("/pcie@10000000").unwrap();
    assert_eq!(pcie.iommu.as_ref().unwrap().smmu, "/smmuv3@9050000");
    assert!(p.hypervisor_owned().iter().any(|(path, _, why)| path == "/smmuv3@9050000" && *why == "SMMU"));
}

#[test]
fn qemu_virt_pcie_host_bridge() {
    let p = HostPlatform::parse(SMMU).unwrap();
    let pci = p.pci.as_ref().unwrap();
    assert_eq!(pci.path, "/pcie@10000000");
    assert_eq!(pci.ecam, HostRegion::new(0x40_1000_0000, 0x1000_0000));
    assert_eq!(pci.buses, (0, 255));
    assert_eq!(pci.mem32, Some(PciWindow { cpu: 0x1000_0000, pci: 0x1000_0000, size: 0x2eff_0000 }));
    assert_eq!(pci.mem64, Some(PciWindow { cpu: 0x80_0000_0000, pci: 0x80_0000_0000, size: 0x80_0000_0000 }));
    // Slot s, pin p: SPI 3 + (s + p - 1) mod 4, level.
    let intx = |d, pin| pci.intx(Bdf::new(0, d, 0).unwrap(), pin).map(|s| (s.irq.raw(), s.trigger));
    assert_eq!(intx(2, Pin::A), Some((37, Trigger::Level)));
    assert_eq!(intx(3, Pin::A), Some((38, Trigger::Level)));
    assert_eq!(intx(3, Pin::B), Some((35, Trigger::Level)));
    // Stream ID = requester ID (iommu-map <0 &smmu 0 0x10000>).
    assert_eq!(pci.stream(Bdf::new(0, 2, 0).unwrap()), Some(("/smmuv3@9050000", 0x10)));
    assert_eq!(pci.stream(Bdf::new(1, 0, 0).unwrap()), Some(("/smmuv3@9050000", 0x100)));
    assert!(p.hypervisor_owned().iter().any(|(path, r, _)| path == "/pcie@10000000" && *r == pci.ecam));
    // Without an SMMU the bridge has no stream IDs.
    let plain = HostPlatform::parse(PLAIN).unwrap();
    assert_eq!(plain.pci.as_ref().unwrap().stream(Bdf::new(0, 2, 0).unwrap()), None);
}

#[test]
fn device_lookup_functions() {
    assert_eq!(host_device(PLAIN, "/pl061@9030000").unwrap().irqs[0].irq, HostIrq::of::<39>());
    assert!(matches!(host_device(PLAIN, "/nope"), Err(HostDtError::NotFound { .. })));
    assert!(matches!(host_device(PLAIN, "/timer"), Err(HostDtError::NotADevice { .. })));
    let all = host_devices(PLAIN).unwrap();
    assert!(all.iter().any(|d| d.path == "/flash@0" && d.regions.len() == 2));
    assert!(!all.iter().any(|d| d.path.starts_with("/cpus")));
}

#[test]
fn errors_name_the_problem() {
    let e = HostPlatform::parse(b"not a dtb").unwrap_err();
    assert!(e.to_string().contains("malformed DTB"), "{e}");
}

#[test]
fn small_host_aliases_ranges_and_chosen() {
    let p = HostPlatform::parse(include_bytes!("fixtures/host-small.dtb")).unwrap();
    assert_eq!(p.cpus, [Mpidr(0), Mpidr(0x100)]);
    assert_eq!(p.memory, [HostRegion::new(0x4000_0000, 0x4000_0000)]);
    assert_eq!(
        p.gic.redist,
        [HostRegion::new(0x080a_0000, 0x10_0000), HostRegion::new(0x081a_0000, 0x10_0000)]
    );
    assert_eq!(p.gic.its, None);
    // stdout-path = "serial0:115200n8", an alias; reg translated through /soc ranges.
    let console = p.console.as_ref().unwrap();
    assert_eq!(console.path, "/soc/serial@20000");
    assert_eq!(console.region, HostRegion::new(0x0902_0000, 0x100));
    assert_eq!(console.irq, Some(HostIrq::of::<37>()));
    // A sub-page device in the console's page.
    let tiny = p.device("/soc/tiny@20400").unwrap();
    assert_eq!(tiny.regions, [HostRegion::new(0x0902_0400, 0x100)]);
    assert_eq!(p.psci, Some(PsciMethod::Hvc));
    assert_eq!(p.bootargs.as_deref(), Some("hello"));
    assert_eq!(p.initrd, Some(HostRegion::new(0x4800_0000, 0x10_0000)));
    assert_eq!(p.smmus.len(), 1);
    let master = p.device("/soc/master@80000").unwrap();
    assert!(master.dma);
    let link = master.iommu.as_ref().unwrap();
    assert_eq!((link.smmu.as_str(), link.stream_ids.as_slice()), ("/iommu@9400000", [(0x42, 1)].as_slice()));
    // The I2C child has no CPU address: not a device.
    assert!(p.device("/i2c@9100000/eeprom@50").is_none());
    assert!(p.device("/i2c@9100000").is_some());
    let dual = p.device("/soc/dual@60000").unwrap();
    assert_eq!(dual.regions, [HostRegion::new(0x0906_0000, 0x1000), HostRegion::new(0x0906_1000, 0x1000)]);
    assert_eq!(
        dual.irqs.iter().map(|s| (s.irq.raw(), s.trigger)).collect::<Vec<_>>(),
        [(41, Trigger::Level), (42, Trigger::Edge)]
    );
}
