//! DMA isolation through the SMMU with QEMU's edu PCI device
//! (configs/qemu-virt/dma.dts): a guest's device DMAs within the guest's
//! own RAM through its SMMU context; aimed at another guest's RAM it is
//! blocked, logged and stopped, and the other guest's page is unchanged.
//! Interception of a virtio-mmio device's queue address registers
//! (configs/qemu-virt/dma-intercept.dts). And stock Linux driving a passed-through NVMe controller behind the SMMU
//! (configs/qemu-virt/nvme.dts).

use super::linux::{linux_commands, linux_ready, linux_session_on};
use super::passthrough::{check_disk_write, disk_checks, test_disk};
use super::{boot_with, config, session, Env};
use crate::qemu::{self, Machine, Step};
use anyhow::Result;

/// `dma-isolation`.
pub(crate) fn dma_isolation(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("dma.dts")), None)?;
    let machine = Machine { smmu: true, edu: true, ..Machine::default() };
    let steps = vec![
        Step::Expect("pci:       /pcie@10000000".into()),
        Step::Expect("[victim] PROBE victim guard: page 0x60800000 filled".into()),
        // A copy within its own RAM (guest-physical addresses, not
        // identity-mapped) works, and its interrupt arrives.
        Step::Expect("[dma] PROBE dma edu: PASS".into()),
        // Aimed at the victim's page: the SMMU blocks and reports it, the
        // device is stopped (its next DMA, into its own RAM, lands nowhere).
        Step::ExpectAll(vec![
            "smmu: DMA write to 0x60800000 by stream 0x10 (00:02.0) of guest dma blocked: outside its guest's memory".into(),
            "[dma] PROBE dma edudma=0x60800000: PASS target=0x60800000 dma=done contained=yes".into(),
        ]),
        // The victim's page never changed.
        Step::Expect("[victim] PROBE victim guard=0x60800000: PASS page=0x60800000 ms=8000 unchanged".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    session(&machine, &boot, steps, true)?;
    Ok(())
}

/// `linux-nvme`: Linux finds the NVMe controller on its virtual ECAM bridge
/// (probe-only: the BAR stays where the hypervisor put it), reads the whole
/// disk through its in-tree driver (the controller's DMA goes through the
/// guest's SMMU context; no identity RAM, no acknowledgement) and writes a
/// sector that lands in the image file.
pub(crate) fn linux_nvme(env: &Env) -> Result<()> {
    let (disk, sum) = test_disk("test-nvme.img")?;
    let mut boot = boot_with(env, Some(&config("nvme.dts")), None)?;
    boot.extra = qemu::nvme_disk(&disk);
    let machine = Machine { smmu: true, ..Machine::default() };
    let mut steps = vec![
        Step::Expect("pci:       /pcie@10000000 (0x4010000000), bus 0: 00:03.0 1b36:0010".into()),
        Step::Expect(
            "pci-host-generic 3f000000.pcie: ECAM at [mem 0x3f000000-0x3f0fffff] for [bus 00]".into(),
        ),
        Step::Expect("pci 0000:00:03.0: [1b36:0010] type 00 class 0x010802".into()),
        Step::Expect(linux_ready("linux1")),
    ];
    let [sha, write] = disk_checks("/dev/nvme0n1", &sum);
    steps.extend(linux_commands(
        "linux1",
        &[
            // 4 MiB = 8192 sectors; the driver scans namespaces after boot.
            ("sleep 1; echo NVME=$(cat /sys/block/nvme0n1/size)", "NVME=8192"),
            (&sha.0, &sha.1),
            (&write.0, &write.1),
        ],
    ));
    steps.push(Step::Send("passthrough list\r".into()));
    steps.push(Step::Expect("dma: smmu (stream 0x18".into()));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session_on(&machine, &boot, steps)?;
    anyhow::ensure!(!text.contains("smmu: DMA"), "the SMMU reported a fault:\n{text}");
    check_disk_write(&disk, &text)?;
    println!("    sha256 {sum} read back through the SMMU; the guest's write landed in the image");
    Ok(())
}

/// `dma-intercept`: a probe guest with a virtio-blk disk whose queue
/// address registers are intercepted aims the device's used ring at another
/// guest's page; the hypervisor refuses and logs the address, the request
/// completes into the probe's own ring, the other page never changes.
pub(crate) fn dma_intercept(env: &Env) -> Result<()> {
    let (disk, _) = test_disk("test-intercept.img")?;
    let mut boot = boot_with(env, Some(&config("dma-intercept.dts")), None)?;
    boot.extra = qemu::virtio_disk(&disk);
    let steps = vec![
        Step::Expect("[victim] PROBE victim guard: page 0x60800000 filled".into()),
        Step::ExpectAll(vec![
            "dma: guest virt wrote DMA address 0x60800000 to register 0xea0 of /guests/virt/blk, outside its RAM: refused".into(),
            "[virt] PROBE virt virtioring=0x0a003e00,0x60800000: PASS target=0x60800000 readback=own own_ring=used status=0 data=ok".into(),
        ]),
        Step::Expect("[victim] PROBE victim guard=0x60800000: PASS page=0x60800000 ms=6000 unchanged".into()),
        Step::Send("passthrough list\r".into()),
        Step::Expect("dma: intercepted (3 address register(s) checked, 2 write(s) refused; addresses it reads from memory: identity, acknowledged (UNPROTECTED))".into()),
        Step::Expect("trap  host 0xa003000 -> guest 0xa003000, 0x1000 bytes".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    session(&Machine::default(), &boot, steps, true)?;
    Ok(())
}
