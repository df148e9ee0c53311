//! PCIe functions in the config: what an accepted `pci-function` becomes
//! (stream ID, INTx route, the guest's virtual host bridge).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ferrovisor_config::{DmaProtection, Trigger, DEFAULT_ECAM, DEFAULT_WINDOW};
use ferrovisor_pci::{Bdf, Pin};
use ferrovisor_types::GuestPhysAddr;
use support::load;

const QEMU_SMMU: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3-smmuv3.dtb");
const RULE: &[u8] = include_bytes!("fixtures/rule-pci.dtb");

#[test]
fn accepted_functions_have_stream_intx_and_a_virtual_bridge() {
    let out = load(QEMU_SMMU, RULE, &[]);
    let a = out.config.guests.iter().find(|g| g.name == "a").unwrap();
    let pci = a.pci.as_ref().unwrap();
    assert_eq!(pci.ecam, GuestPhysAddr(DEFAULT_ECAM));
    assert_eq!(pci.window, (GuestPhysAddr(DEFAULT_WINDOW.0), DEFAULT_WINDOW.1));
    let [edu, nvme] = a.passthrough.as_slice() else { panic!("{:?}", a.passthrough) };
    let f = edu.pci.unwrap();
    assert_eq!((f.bdf, f.pin), (Bdf::new(0, 2, 0).unwrap(), Some(Pin::A)));
    assert_eq!(edu.dma, DmaProtection::Iommu);
    assert_eq!(edu.streams, [0x10]);
    assert!(edu.regions.is_empty(), "BARs are placed at boot");
    let route = |pt: &ferrovisor_config::PassthroughConfig| {
        pt.irqs.iter().map(|r| (r.host.raw(), r.guest.raw(), r.trigger)).collect::<Vec<_>>()
    };
    assert_eq!(route(edu), [(37, 37, Trigger::Level)]);
    assert_eq!(route(nvme), [(38, 60, Trigger::Level)]);
    assert_eq!(nvme.streams, [0x18]);
    // A guest without functions has no bridge.
    let d = out.config.guests.iter().find(|g| g.name == "d").unwrap();
    assert!(d.pci.is_none());
    // Heap: the DMA context maps the RAM again (+1 for its descriptor),
    // two tables per function for the BARs placed at boot.
    let ram: Vec<_> = a.memory.iter().map(|m| (m.gpa, m.host, m.size)).collect();
    let context = ferrovisor_stage2::tables_for(&ram) as u64 + 1;
    assert_eq!(ferrovisor_config::dma_tables(a), context + 4);
    assert_eq!(ferrovisor_config::dma_tables(d), 0);
    assert!(ferrovisor_config::heap_estimate(a) > ferrovisor_config::heap_estimate(d));
}
