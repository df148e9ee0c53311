//! Per-interrupt register arrays shared by the distributor (SPIs) and the
//! redistributors' SGI_base frames (SGIs and PPIs).

use crate::effects::{Effect, Effects};
use crate::irq::PRIORITY_MASK;
use crate::Vgic;

/// One-bit-per-interrupt register arrays, at the same offsets in GICD and
/// in GICR SGI_base.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BitReg {
    /// `IGROUPR`.
    Group,
    /// `ISENABLER`.
    SetEnable,
    /// `ICENABLER`.
    ClearEnable,
    /// `ISPENDR`.
    SetPending,
    /// `ICPENDR`.
    ClearPending,
    /// `ISACTIVER`.
    SetActive,
    /// `ICACTIVER`.
    ClearActive,
}

impl BitReg {
    /// The array at `off` (0x080..0x400) and the index of the 32-bit
    /// register inside it.
    pub fn at(off: u64) -> Option<(Self, u32)> {
        let kind = match off {
            0x080..=0x0ff => Self::Group,
            0x100..=0x17f => Self::SetEnable,
            0x180..=0x1ff => Self::ClearEnable,
            0x200..=0x27f => Self::SetPending,
            0x280..=0x2ff => Self::ClearPending,
            0x300..=0x37f => Self::SetActive,
            0x380..=0x3ff => Self::ClearActive,
            _ => return None,
        };
        Some((kind, ((off & 0x7f) / 4) as u32))
    }
}

/// Where per-interrupt arrays start (`IPRIORITYR`, `ICFGR`).
pub(crate) const IPRIORITYR: u64 = 0x400;
/// `ICFGR` array.
pub(crate) const ICFGR: u64 = 0xc00;

impl Vgic {
    /// Reads the 32 bits of `kind` for INTIDs `first..first + 32` (bank
    /// `bank` for SGIs/PPIs). Missing interrupts read as 0.
    pub(crate) fn bits_read(&self, kind: BitReg, first: u32, bank: usize) -> u32 {
        (0..32u32).fold(0, |acc, i| {
            let Some(irq) = self.irq(first + i, bank) else { return acc };
            let bit = match kind {
                BitReg::Group => irq.group1(),
                BitReg::SetEnable | BitReg::ClearEnable => irq.enabled(),
                BitReg::SetPending | BitReg::ClearPending => irq.pending_view(),
                BitReg::SetActive | BitReg::ClearActive => irq.active_view(),
            };
            acc | (u32::from(bit) << i)
        })
    }

    /// Writes `value` to the 32 bits of `kind` for INTIDs `first..first+32`.
    pub(crate) fn bits_write(
        &mut self,
        kind: BitReg,
        first: u32,
        bank: usize,
        value: u32,
        caller: Option<usize>,
        fx: &mut Effects,
    ) {
        for i in 0..32u32 {
            let bit = value & (1 << i) != 0;
            if kind != BitReg::Group && !bit {
                continue;
            }
            let intid = first + i;
            let Some(irq) = self.irq_mut(intid, bank) else { continue };
            match kind {
                BitReg::Group => irq.set_group1(bit),
                BitReg::SetEnable | BitReg::ClearEnable => {
                    let enable = kind == BitReg::SetEnable;
                    irq.set_enabled(enable);
                    if let Some(pintid) = irq.hw {
                        fx.push(Effect::HwEnable { pintid, enable });
                    }
                }
                BitReg::SetPending => irq.set_latch(true),
                BitReg::ClearPending => {
                    let had = irq.latch() || irq.lr.is_some_and(|s| s.pending() && s.hw());
                    let active = irq.active() || irq.lr.is_some_and(|s| s.active());
                    irq.set_latch(false);
                    if let Some(s) = irq.lr.as_mut() {
                        s.set_clear_pending(true);
                        s.set_pending(false);
                    }
                    if irq.hw_active() && had && !active {
                        irq.set_hw_active(false);
                        if let Some(pintid) = irq.hw {
                            fx.push(Effect::HwDeactivate { pintid });
                        }
                    }
                }
                BitReg::SetActive => irq.set_active(true),
                BitReg::ClearActive => {
                    irq.set_active(false);
                    if let Some(s) = irq.lr.as_mut() {
                        let hw_loaded = s.hw() && s.active();
                        s.set_clear_active(true);
                        s.set_active(false);
                        if hw_loaded {
                            irq.set_hw_active(false);
                            if let Some(pintid) = irq.hw {
                                fx.push(Effect::HwDeactivate { pintid });
                            }
                        }
                    }
                }
            }
            self.notify(intid, bank, caller, fx);
        }
    }

    /// Priority byte of INTID `intid` (0 if it does not exist).
    pub(crate) fn prio_read(&self, intid: u32, bank: usize) -> u8 {
        self.irq(intid, bank).map_or(0, |irq| irq.priority)
    }

    /// Sets the priority of INTID `intid` (5 bits kept).
    pub(crate) fn prio_write(&mut self, intid: u32, bank: usize, value: u8, fx: &mut Effects) {
        let Some(irq) = self.irq_mut(intid, bank) else { return };
        irq.priority = value & PRIORITY_MASK;
        if let Some(pintid) = irq.hw {
            fx.push(Effect::HwPriority { pintid, priority: irq.priority });
        }
        self.mark(intid, bank);
    }

    /// `ICFGR` word for INTIDs `first..first + 16`: bit `2i + 1` set for
    /// edge-triggered.
    pub(crate) fn cfg_read(&self, first: u32, bank: usize) -> u32 {
        (0..16u32).fold(0, |acc, i| match self.irq(first + i, bank) {
            Some(irq) if irq.edge() => acc | (2 << (2 * i)),
            _ => acc,
        })
    }

    /// Writes an `ICFGR` word for INTIDs `first..first + 16`; SGIs keep
    /// their edge configuration.
    pub(crate) fn cfg_write(&mut self, first: u32, bank: usize, value: u32, fx: &mut Effects) {
        for i in 0..16u32 {
            let intid = first + i;
            if intid < 16 {
                continue;
            }
            let edge = value & (2 << (2 * i)) != 0;
            let Some(irq) = self.irq_mut(intid, bank) else { continue };
            if irq.edge() == edge {
                continue;
            }
            irq.set_edge(edge);
            if let Some(pintid) = irq.hw {
                fx.push(Effect::HwConfig { pintid, edge });
            }
            // A level line starts or stops counting as pending.
            self.mark(intid, bank);
        }
    }
}
