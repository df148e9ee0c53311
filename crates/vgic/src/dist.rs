//! The distributor frame (GICD_*): global control, SPI configuration and
//! routing. SGI/PPI slots of the per-interrupt arrays are RAZ/WI (affinity
//! routing is always on: they live in the redistributors).

use crate::effects::{Effect, Effects};
use crate::mmio::Width;
use crate::regs::{BitReg, ICFGR, IPRIORITYR};
use crate::{Vgic, NO_TARGET};
use ferrovisor_types::VcpuId;

/// `GICD_IROUTER.IRM`: 1-of-N routing.
pub(crate) const IROUTER_IRM: u64 = 1 << 31;
/// Writable bits of `GICD_IROUTER`: Aff3, IRM, Aff2, Aff1, Aff0.
const IROUTER_MASK: u64 = 0xff_80ff_ffff;

const CTLR: u64 = 0x0000;
const TYPER: u64 = 0x0004;
const IIDR: u64 = 0x0008;
const IROUTER: u64 = 0x6000;
const CTLR_GRP0: u32 = 1 << 0;
const CTLR_GRP1: u32 = 1 << 1;
const CTLR_ARE: u32 = 1 << 4;
const CTLR_DS: u32 = 1 << 6;

/// `GICD_IIDR` / `GICR_IIDR`: implementer Arm (0x43b), product 0x46 ('F'),
/// revision 0; matches none of Linux's errata quirks.
pub(crate) const IIDR_VALUE: u32 = 0x4600_043b;

/// The CoreSight ID registers shared by both frames (`PIDR2.ArchRev` = 3).
pub(crate) fn id_reg(off: u64) -> u32 {
    match off {
        0xffe8 => 0x30,
        0xfff0 => 0x0d,
        0xfff4 => 0xf0,
        0xfff8 => 0x05,
        0xfffc => 0xb1,
        _ => 0,
    }
}

impl Vgic {
    pub(crate) fn dist_width(off: u64) -> Width {
        match off {
            0x0000..=0x0013 | 0x0040..=0x005f => Width::Word,
            0x0080..=0x03ff => Width::Word,
            0x0400..=0x0bff => Width::Byte,
            0x0c00..=0x0f03 => Width::Word,
            0x0f10..=0x0f2f => Width::Byte,
            0x6000..=0x7fff => Width::Dword,
            0xffd0..=0xffff => Width::Word,
            _ => Width::Reserved,
        }
    }

    fn typer(&self) -> u32 {
        let it_lines = (32 + self.cfg.spis).div_ceil(32).saturating_sub(1) & 0x1f;
        let cpus = (self.cfg.vcpus.clamp(1, 8) - 1) as u32;
        // IDbits = 9 (10 INTID bits); no LPIs, MBIs, security, A3V, RSS.
        it_lines | (cpus << 5) | (9 << 19)
    }

    pub(crate) fn dist_read32(&self, off: u64) -> u32 {
        match off {
            CTLR => {
                CTLR_ARE
                    | CTLR_DS
                    | if self.grp0 { CTLR_GRP0 } else { 0 }
                    | if self.grp1 { CTLR_GRP1 } else { 0 }
            }
            TYPER => self.typer(),
            IIDR => IIDR_VALUE,
            0x080..=0x3ff => match BitReg::at(off) {
                Some((kind, n)) if n > 0 => self.bits_read(kind, 32 * n, 0),
                _ => 0,
            },
            0xc00..=0xcff => {
                let n = ((off - ICFGR) / 4) as u32;
                if n < 2 {
                    0
                } else {
                    self.cfg_read(16 * n, 0)
                }
            }
            0xffd0..=0xffff => id_reg(off),
            _ => 0,
        }
    }

    pub(crate) fn dist_write32(&mut self, caller: usize, off: u64, v: u32, fx: &mut Effects) {
        match off {
            CTLR => {
                let (g0, g1) = (v & CTLR_GRP0 != 0, v & CTLR_GRP1 != 0);
                if (g0, g1) != (self.grp0, self.grp1) {
                    self.grp0 = g0;
                    self.grp1 = g1;
                    self.mark_all();
                    for vcpu in (0..self.cfg.vcpus).filter(|&t| t != caller) {
                        fx.kick(vcpu);
                    }
                }
            }
            0x080..=0x3ff => {
                if let Some((kind, n)) = BitReg::at(off).filter(|&(_, n)| n > 0) {
                    self.bits_write(kind, 32 * n, 0, v, Some(caller), fx);
                }
            }
            0xc00..=0xcff => {
                let n = ((off - ICFGR) / 4) as u32;
                if n >= 2 {
                    self.cfg_write(16 * n, 0, v, fx);
                }
            }
            _ => {}
        }
    }

    pub(crate) fn dist_read8(&self, off: u64) -> u8 {
        match off {
            0x400..=0x7ff => match (off - IPRIORITYR) as u32 {
                intid @ 32.. => self.prio_read(intid, 0),
                _ => 0,
            },
            _ => 0,
        }
    }

    pub(crate) fn dist_write8(&mut self, off: u64, v: u8, fx: &mut Effects) {
        if let 0x400..=0x7ff = off {
            let intid = (off - IPRIORITYR) as u32;
            if intid >= 32 {
                self.prio_write(intid, 0, v, fx);
            }
        }
    }

    /// Index into `routes` of the `GICD_IROUTER` at `off`.
    fn route_index(&self, off: u64) -> Option<usize> {
        let n = off.checked_sub(IROUTER)? / 8;
        let i = usize::try_from(n.checked_sub(32)?).ok()?;
        (i < self.routes.len()).then_some(i)
    }

    pub(crate) fn dist_read64(&self, off: u64) -> u64 {
        self.route_index(off).and_then(|i| self.routes.get(i)).copied().unwrap_or(0)
    }

    pub(crate) fn dist_write64(&mut self, caller: usize, off: u64, v: u64, fx: &mut Effects) {
        let Some(i) = self.route_index(off) else { return };
        let raw = v & IROUTER_MASK;
        let target = self.route_target(raw);
        let decoded = target.and_then(|t| u8::try_from(t).ok()).unwrap_or(NO_TARGET);
        let (Some(route), Some(irq)) = (self.routes.get_mut(i), self.spis.get_mut(i)) else { return };
        (*route, irq.target) = (raw, decoded);
        let intid = 32 + i as u32;
        self.mark(intid, 0);
        let Some(irq) = self.irq(intid, 0) else { return };
        if let (Some(pintid), Some(vcpu)) = (irq.hw, target.and_then(VcpuId::new)) {
            fx.push(Effect::HwRoute { pintid, vcpu });
        }
        // The vCPU holding it in an LR must give it back; the new target
        // may now have it deliverable.
        if let Some(owner) = irq.lr.map(|s| s.vcpu).filter(|&o| o != caller) {
            fx.kick(owner);
        }
        if let Some(t) = target.filter(|&t| t != caller) {
            if irq.lr.is_none() && (irq.active() || self.deliverable(irq, intid, t)) {
                fx.kick(t);
            }
        }
    }
}
