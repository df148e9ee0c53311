//! DMA isolation through the SMMU with QEMU's edu PCI device
//! (configs/qemu-virt/dma.dts): a guest's device DMAs within the guest's
//! own RAM through its SMMU context; aimed at another guest's RAM it is
//! blocked, logged and stopped, and the other guest's page is unchanged.

use super::{boot_with, config, session, Env};
use crate::qemu::{Machine, Step};
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
