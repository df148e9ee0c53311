//! Register-level behaviour: what Linux reads at probe, the state its init
//! sequence leaves, ID registers, RAZ/WI areas and malformed accesses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ferrovisor_types::GuestPhysAddr;
use ferrovisor_vgic::{Effect, Effects, Vgic, VgicConfig, VgicError};

#[test]
fn probe_reads_what_linux_expects() {
    let mut g = vgic(4, 64);
    // GICD_PIDR2.ArchRev = 3 and GICR_PIDR2 likewise.
    assert_eq!(r32(&mut g, gicd(0xffe8)) & 0xf0, 0x30);
    assert_eq!(g.mmio_read(vc(0), gicr(2, 0xffe8), 4) & 0xf0, 0x30);
    let cidr: Vec<u32> = (0..4).map(|i| r32(&mut g, gicd(0xfff0 + 4 * i))).collect();
    assert_eq!(cidr, [0x0d, 0xf0, 0x05, 0xb1]);
    let typer = r32(&mut g, gicd(4));
    assert_eq!(typer & 0x1f, 2, "ITLinesNumber: 96 INTIDs");
    assert_eq!((typer >> 5) & 7, 3, "CPUNumber");
    assert_eq!((typer >> 19) & 0x1f, 9, "IDbits: 10 bits");
    assert_eq!(typer & (1 << 17 | 1 << 16 | 1 << 10 | 1 << 24 | 1 << 8 | 1 << 26), 0);
    assert_eq!(r32(&mut g, gicd(0xc)), 0, "TYPER2");
    assert_eq!(r32(&mut g, gicd(8)), g.mmio_read(vc(0), gicr(1, 4), 4) as u32, "IIDRs agree");
    // GICD_CTLR: ARE and DS read as one, groups off, RWP clear.
    assert_eq!(r32(&mut g, gicd(0)), 0x50);
}

#[test]
fn itlines_follow_the_spi_count() {
    for (spis, lines, it) in [(0, 0, 0), (1, 32, 1), (32, 32, 1), (33, 64, 2), (988, 988, 31)] {
        let mut g = vgic(1, spis);
        assert_eq!(g.spis(), lines);
        assert_eq!(r32(&mut g, gicd(4)) & 0x1f, it);
    }
    assert_eq!(
        Vgic::new(VgicConfig {
            vcpus: 1,
            spis: 989,
            dist_base: GuestPhysAddr(0),
            redist_base: GuestPhysAddr(0x10000)
        })
        .err(),
        Some(VgicError::BadSpiCount(989))
    );
}

#[test]
fn config_is_validated() {
    let cfg =
        VgicConfig { vcpus: 2, spis: 32, dist_base: GuestPhysAddr(DIST), redist_base: GuestPhysAddr(REDIST) };
    assert!(Vgic::new(cfg).is_ok());
    assert_eq!(Vgic::new(VgicConfig { vcpus: 0, ..cfg }).err(), Some(VgicError::BadVcpuCount(0)));
    assert_eq!(Vgic::new(VgicConfig { vcpus: 17, ..cfg }).err(), Some(VgicError::BadVcpuCount(17)));
    let odd = GuestPhysAddr(DIST + 0x1000);
    assert_eq!(Vgic::new(VgicConfig { dist_base: odd, ..cfg }).err(), Some(VgicError::BadAddress(odd)));
    let top = GuestPhysAddr(u64::MAX - 0xffff);
    assert_eq!(Vgic::new(VgicConfig { redist_base: top, ..cfg }).err(), Some(VgicError::BadAddress(top)));
    let overlap = VgicConfig { redist_base: GuestPhysAddr(DIST), ..cfg };
    assert_eq!(Vgic::new(overlap).err(), Some(VgicError::Overlap));
    let g = Vgic::new(cfg).unwrap();
    assert_eq!(g.dist_range(), (GuestPhysAddr(DIST), 0x10000));
    assert_eq!(g.redist_range(), (GuestPhysAddr(REDIST), 0x40000));
}

#[test]
fn redistributors_enumerate_like_linux_walks_them() {
    let mut g = vgic(3, 32);
    let mut found = Vec::new();
    let mut base = 0u64;
    loop {
        let a = GuestPhysAddr(REDIST + base);
        assert_eq!(g.mmio_read(vc(0), GuestPhysAddr(a.0 + 0xffe8), 4) & 0xf0, 0x30);
        let typer = g.mmio_read(vc(0), GuestPhysAddr(a.0 + 8), 8);
        // The 32-bit halves agree with the 64-bit read.
        let lo = g.mmio_read(vc(0), GuestPhysAddr(a.0 + 8), 4);
        let hi = g.mmio_read(vc(0), GuestPhysAddr(a.0 + 12), 4);
        assert_eq!(lo | (hi << 32), typer);
        assert_eq!(typer & 0xef, 0, "no LPIs, VLPIs, DirectLPI, PPInum 0");
        found.push(((typer >> 32) as usize, ((typer >> 8) & 0xffff) as usize));
        if typer & 0x10 != 0 {
            break;
        }
        base += 0x20000;
        assert!(found.len() <= 3, "Last bit missing");
    }
    assert_eq!(found, [(0, 0), (1, 1), (2, 2)]);
}

#[test]
fn linux_init_leaves_the_expected_state() {
    let mut g = vgic(2, 64);
    linux_init(&mut g);
    assert_eq!(g.groups_enabled(), (true, true));
    assert_eq!(r32(&mut g, gicd(0)), 0x53);
    for intid in 32..96 {
        let i = g.irq_info(gi(intid), vc(0)).unwrap();
        assert!(i.group1 && !i.enabled && !i.edge && !i.pending && !i.active);
        assert_eq!(i.priority, 0xa0);
        assert_eq!(i.target, Some(vc(0)));
    }
    for v in 0..2 {
        assert_eq!(g.mmio_read(vc(v), gicr(v, 0x14), 4), 0, "awake");
        assert_eq!(g.mmio_read(vc(v), sgi(v, 0x100), 4), 0xffff, "SGIs enabled, PPIs disabled");
        assert_eq!(g.mmio_read(vc(v), sgi(v, 0xc00), 4), 0xaaaa_aaaa, "SGIs are edge");
        assert_eq!(g.mmio_read(vc(v), sgi(v, 0xc04), 4), 0, "PPIs level");
        assert_eq!(g.mmio_read(vc(v), sgi(v, 0x80), 4), 0xffff_ffff);
        assert_eq!(g.mmio_read(vc(v), sgi(v, 0x41c), 4), 0xa0a0_a0a0);
    }
    assert_eq!(g.bad_accesses(), 0);
}

#[test]
fn waker_sleep_is_mirrored_by_children_asleep() {
    let mut g = vgic(1, 0);
    assert_eq!(g.mmio_read(vc(0), gicr(0, 0x14), 4), 6, "reset asleep");
    w32(&mut g, 0, gicr(0, 0x14), 0);
    assert_eq!(g.mmio_read(vc(0), gicr(0, 0x14), 4), 0);
    w32(&mut g, 0, gicr(0, 0x14), 2);
    assert_eq!(g.mmio_read(vc(0), gicr(0, 0x14), 4), 6);
}

#[test]
fn sgi_and_ppi_slots_of_the_distributor_are_raz_wi() {
    let mut g = vgic(1, 32);
    w32(&mut g, 0, gicd(0x100), !0);
    w32(&mut g, 0, gicd(0x400), 0x8080_8080);
    w32(&mut g, 0, gicd(0xc04), 0xffff_ffff);
    assert_eq!(r32(&mut g, gicd(0x100)), 0);
    assert_eq!(r32(&mut g, gicd(0x400)), 0);
    assert_eq!(r32(&mut g, gicd(0xc04)), 0);
    assert_eq!(g.mmio_read(vc(0), sgi(0, 0x100), 4), 0, "the redistributor was not touched");
    // GICv2-only and security registers: RAZ/WI.
    for off in [0x800, 0xd04, 0xe08, 0xf00, 0xf10, 0x40, 0x10] {
        w32(&mut g, 0, gicd(off), !0);
        assert_eq!(r32(&mut g, gicd(off)), 0, "offset {off:#x}");
    }
    assert_eq!(g.bad_accesses(), 0);
}

#[test]
fn priorities_keep_five_bits_and_are_byte_accessible() {
    let mut g = vgic(2, 32);
    let mut fx = Effects::new();
    g.mmio_write(vc(0), gicd(0x420 + 1), 1, 0xff, &mut fx);
    assert_eq!(g.mmio_read(vc(0), gicd(0x420 + 1), 1), 0xf8);
    assert_eq!(g.irq_info(gi(33), vc(0)).unwrap().priority, 0xf8);
    g.mmio_write(vc(0), gicd(0x422), 2, 0x1234, &mut fx);
    assert_eq!(r32(&mut g, gicd(0x420)), 0x1030_f800);
    g.mmio_write(vc(1), sgi(1, 0x41b), 1, 0x47, &mut fx);
    assert_eq!(g.irq_info(gi(27), vc(1)).unwrap().priority, 0x40);
    assert_eq!(g.irq_info(gi(27), vc(0)).unwrap().priority, 0, "banked per vCPU");
    assert!(fx.is_empty());
}

#[test]
fn irouter_is_64_bit_with_32_bit_halves() {
    let mut g = vgic(4, 32);
    let a = gicd(0x6000 + 8 * 40);
    w64(&mut g, 0, a, 0xffff_ffff_ffff_ff03);
    assert_eq!(g.mmio_read(vc(0), a, 8), 0xff_80ff_ff03, "RES0 bits dropped");
    assert_eq!(g.irq_info(gi(40), vc(0)).unwrap().target, Some(vc(0)), "IRM=1 picks vCPU 0");
    w64(&mut g, 0, a, 2);
    assert_eq!(g.irq_info(gi(40), vc(0)).unwrap().target, Some(vc(2)));
    w32(&mut g, 0, GuestPhysAddr(a.0 + 4), 0x1);
    assert_eq!(g.mmio_read(vc(0), a, 8), 0x1_0000_0002);
    assert_eq!(g.irq_info(gi(40), vc(0)).unwrap().target, None, "Aff3=1 matches no vCPU");
    w32(&mut g, 0, GuestPhysAddr(a.0 + 4), 0);
    w32(&mut g, 0, a, 3);
    assert_eq!(g.mmio_read(vc(0), GuestPhysAddr(a.0 + 4), 4), 0);
    assert_eq!(g.irq_info(gi(40), vc(0)).unwrap().target, Some(vc(3)));
    w64(&mut g, 0, a, 4);
    assert_eq!(g.irq_info(gi(40), vc(0)).unwrap().target, None, "no vCPU 4");
    // IROUTER of SGIs/PPIs and beyond the SPIs: RAZ/WI.
    w64(&mut g, 0, gicd(0x6000 + 8 * 5), 1);
    assert_eq!(g.mmio_read(vc(0), gicd(0x6000 + 8 * 5), 8), 0);
    w64(&mut g, 0, gicd(0x6000 + 8 * 64), 1);
    assert_eq!(g.mmio_read(vc(0), gicd(0x6000 + 8 * 64), 8), 0);
}

#[test]
fn malformed_accesses_are_ignored_and_counted() {
    let mut g = vgic(2, 32);
    let mut fx = Effects::new();
    let cases: [(usize, u64, u8); 9] = [
        (0, DIST + 2, 4),         // misaligned
        (0, DIST + 0x100, 1),     // byte access to a word register
        (0, DIST + 0x100, 8),     // doubleword to a word register
        (0, DIST + 0x400, 8),     // doubleword to priorities
        (0, DIST + 0x6100, 2),    // halfword to IROUTER
        (0, DIST, 3),             // odd size
        (0, REDIST + 0x40000, 4), // past the last redistributor
        (5, DIST, 4),             // no such vCPU
        (0, 0x10, 4),             // nowhere
    ];
    for (i, &(v, a, s)) in cases.iter().enumerate() {
        assert_eq!(g.mmio_read(vc(v), GuestPhysAddr(a), s), 0);
        g.mmio_write(vc(v), GuestPhysAddr(a), s, u64::MAX, &mut fx);
        assert_eq!(g.bad_accesses(), 2 * (i as u64 + 1), "case {i}");
    }
    assert!(fx.is_empty());
    assert_eq!(r32(&mut g, gicd(0)), 0x50, "nothing changed");
}

#[test]
fn group_registers_are_writable() {
    let mut g = vgic(1, 32);
    w32(&mut g, 0, gicd(0x84), 0x0000_ffff);
    assert_eq!(r32(&mut g, gicd(0x84)), 0xffff);
    assert!(!g.irq_info(gi(63), vc(0)).unwrap().group1);
    // IGRPMODR and NSACR: RAZ/WI in both frames.
    w32(&mut g, 0, gicd(0xd04), !0);
    w32(&mut g, 0, sgi(0, 0xd00), !0);
    w32(&mut g, 0, sgi(0, 0xe00), !0);
    assert_eq!(r32(&mut g, gicd(0xd04)) | r32(&mut g, sgi(0, 0xd00)) | r32(&mut g, sgi(0, 0xe00)), 0);
}

#[test]
fn sgi_config_is_read_only_but_ppi_and_spi_config_is_not() {
    let mut g = vgic(1, 32);
    w32(&mut g, 0, sgi(0, 0xc00), 0);
    assert_eq!(r32(&mut g, sgi(0, 0xc00)), 0xaaaa_aaaa);
    w32(&mut g, 0, sgi(0, 0xc04), 0xffff_ffff);
    assert_eq!(r32(&mut g, sgi(0, 0xc04)), 0xaaaa_aaaa, "RES0 bits dropped");
    w32(&mut g, 0, gicd(0xc08), 0x0000_0008);
    assert!(g.irq_info(gi(33), vc(0)).unwrap().edge);
    assert!(!g.irq_info(gi(32), vc(0)).unwrap().edge);
}

#[test]
fn redistributor_lpi_registers_are_raz_wi() {
    let mut g = vgic(1, 0);
    for off in [0x0, 0x10, 0x70, 0x78, 0xc0] {
        let mut fx = Effects::new();
        g.mmio_write(vc(0), gicr(0, off), if (0x70..0xc0).contains(&off) { 8 } else { 4 }, !0, &mut fx);
        assert_eq!(g.mmio_read(vc(0), gicr(0, off), 4), 0, "offset {off:#x}");
    }
    assert_eq!(g.bad_accesses(), 0);
}

#[test]
fn ctlr_enable_kicks_the_other_vcpus() {
    let mut g = vgic(3, 0);
    let fx = w32(&mut g, 1, gicd(0), 0x2);
    assert_eq!(fx, [Effect::Kick { vcpu: vc(0) }, Effect::Kick { vcpu: vc(2) }]);
    assert!(w32(&mut g, 1, gicd(0), 0x2).is_empty(), "no change, no kick");
}
