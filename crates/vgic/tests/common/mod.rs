//! Helpers shared by the integration tests: a guest layout like QEMU virt,
//! register accessors and a tiny model of what the guest does to its LRs.
#![allow(dead_code)]

use ferrovisor_types::{GuestIrq, GuestPhysAddr, HostIrq, VcpuId};
use ferrovisor_vgic::lr::{LR_ACTIVE, LR_PENDING};
use ferrovisor_vgic::{Effect, Effects, Vgic, VgicConfig};

/// Guest INTID `n` (tests name interrupts by number).
pub fn gi(n: u32) -> GuestIrq {
    GuestIrq::new(n).expect("a GIC interrupt ID")
}

/// vCPU `n`.
pub fn vc(n: usize) -> VcpuId {
    VcpuId::new(n).expect("a vCPU index")
}

/// Host INTID `n`.
pub fn hi(n: u32) -> HostIrq {
    HostIrq::new(n).expect("a GIC interrupt ID")
}

/// Distributor base (QEMU virt).
pub const DIST: u64 = 0x0800_0000;
/// First redistributor (QEMU virt).
pub const REDIST: u64 = 0x080a_0000;

/// A vGIC with `vcpus` vCPUs and `spis` SPIs at the QEMU virt addresses.
pub fn vgic(vcpus: usize, spis: u32) -> Vgic {
    Vgic::new(VgicConfig { vcpus, spis, dist_base: GuestPhysAddr(DIST), redist_base: GuestPhysAddr(REDIST) })
        .unwrap()
}

/// Address of distributor register `off`.
pub fn gicd(off: u64) -> GuestPhysAddr {
    GuestPhysAddr(DIST + off)
}

/// Address of RD_base register `off` of vCPU `v`.
pub fn gicr(v: usize, off: u64) -> GuestPhysAddr {
    GuestPhysAddr(REDIST + 0x2_0000 * v as u64 + off)
}

/// Address of SGI_base register `off` of vCPU `v`.
pub fn sgi(v: usize, off: u64) -> GuestPhysAddr {
    gicr(v, 0x1_0000 + off)
}

/// 32-bit read by vCPU 0.
pub fn r32(g: &mut Vgic, a: GuestPhysAddr) -> u32 {
    g.mmio_read(vc(0), a, 4) as u32
}

/// 32-bit write by vCPU `v`; returns the effects.
pub fn w32(g: &mut Vgic, v: usize, a: GuestPhysAddr, val: u32) -> Vec<Effect> {
    let mut fx = Effects::new();
    g.mmio_write(vc(v), a, 4, u64::from(val), &mut fx);
    fx.drain().collect()
}

/// 64-bit write by vCPU `v`; returns the effects.
pub fn w64(g: &mut Vgic, v: usize, a: GuestPhysAddr, val: u64) -> Vec<Effect> {
    let mut fx = Effects::new();
    g.mmio_write(vc(v), a, 8, val, &mut fx);
    fx.drain().collect()
}

/// What Linux's irq-gic-v3 driver does at boot: distributor init by the
/// boot CPU, then per-CPU redistributor init on every vCPU.
pub fn linux_init(g: &mut Vgic) {
    let vcpus = g.vcpus();
    let lines = 32 + g.spis();
    w32(g, 0, gicd(0), 0);
    for i in (32..lines).step_by(32) {
        w32(g, 0, gicd(0x80 + u64::from(i / 8)), !0);
    }
    for i in (32..lines).step_by(16) {
        w32(g, 0, gicd(0xc00 + u64::from(i / 4)), 0);
    }
    for i in (32..lines).step_by(4) {
        w32(g, 0, gicd(0x400 + u64::from(i)), 0xa0a0_a0a0);
    }
    for i in (32..lines).step_by(32) {
        w32(g, 0, gicd(0x380 + u64::from(i / 8)), !0);
        w32(g, 0, gicd(0x180 + u64::from(i / 8)), !0);
    }
    w32(g, 0, gicd(0), 0x13);
    for i in 32..lines {
        w64(g, 0, gicd(0x6000 + 8 * u64::from(i)), 0);
    }
    for v in 0..vcpus {
        let waker = g.mmio_read(vc(v), gicr(v, 0x14), 4) as u32;
        w32(g, v, gicr(v, 0x14), waker & !2);
        assert_eq!(g.mmio_read(vc(v), gicr(v, 0x14), 4) & 4, 0, "ChildrenAsleep must clear");
        w32(g, v, sgi(v, 0x80), !0);
        w32(g, v, sgi(v, 0x380), !0);
        w32(g, v, sgi(v, 0x180), 0xffff_0000);
        w32(g, v, sgi(v, 0x100), 0x0000_ffff);
        for i in 0..8 {
            w32(g, v, sgi(v, 0x400 + 4 * i), 0xa0a0_a0a0);
        }
        w32(g, v, sgi(v, 0xc04), 0);
    }
}

/// An empty bank of `n` list registers.
pub fn lrs(n: usize) -> Vec<u64> {
    vec![0; n]
}

/// The guest acknowledges the LR (pending -> active).
pub fn ack(lr: &mut u64) {
    if *lr & (LR_PENDING | LR_ACTIVE) == LR_PENDING {
        *lr = (*lr & !LR_PENDING) | LR_ACTIVE;
    }
}

/// The guest deactivates the LR (active -> invalid, pending+active -> pending).
pub fn eoi(lr: &mut u64) {
    *lr &= !LR_ACTIVE;
}

/// The guest acknowledges then deactivates every pending LR.
pub fn handle_all(lrs: &mut [u64]) {
    for lr in lrs.iter_mut() {
        ack(lr);
        eoi(lr);
    }
}

/// The vINTIDs of the valid LRs, in LR order.
pub fn loaded(lrs: &[u64]) -> Vec<u32> {
    lrs.iter().filter(|&&l| l >> 62 != 0).map(|&l| l as u32).collect()
}

/// The state bits (63:62) of the LR holding `intid`, if any.
pub fn state_of(lrs: &[u64], intid: u32) -> Option<u64> {
    lrs.iter().find(|&&l| l >> 62 != 0 && l as u32 == intid).map(|&l| l >> 62)
}
