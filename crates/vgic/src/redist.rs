//! The redistributors (GICR_*): RD_base (control, identification, wake-up)
//! and SGI_base (SGI/PPI configuration) of every vCPU.

use crate::dist::{id_reg, IIDR_VALUE};
use crate::effects::Effects;
use crate::mmio::Width;
use crate::regs::{BitReg, IPRIORITYR};
use crate::Vgic;

/// Offset of the SGI_base frame inside one redistributor.
const SGI_BASE: u64 = 0x1_0000;
const WAKER: u64 = 0x0014;
const WAKER_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const TYPER_LAST: u64 = 1 << 4;

impl Vgic {
    pub(crate) fn redist_width(off: u64) -> Width {
        match off {
            // RD_base: CTLR, IIDR, TYPER, STATUSR, WAKER, MPAMIDR, PARTIDR.
            0x0000..=0x0007 => Width::Word,
            0x0008..=0x000f => Width::Dword,
            0x0010..=0x001f => Width::Word,
            // SETLPIR, CLRLPIR, PROPBASER, PENDBASER, INVLPIR, INVALLR.
            0x0040..=0x004f | 0x0070..=0x007f | 0x00a0..=0x00a7 | 0x00b0..=0x00b7 => Width::Dword,
            0x00c0..=0x00c3 => Width::Word,
            0xffd0..=0xffff => Width::Word,
            // SGI_base: register 0 of each bit array, priorities, ICFGR0/1,
            // IGRPMODR0, NSACR.
            o if o >= SGI_BASE => match o - SGI_BASE {
                s @ 0x080..=0x3ff if s % 0x80 < 4 => Width::Word,
                0x400..=0x41f => Width::Byte,
                0xc00..=0xc07 | 0xd00..=0xd03 | 0xe00..=0xe03 => Width::Word,
                _ => Width::Reserved,
            },
            _ => Width::Reserved,
        }
    }

    pub(crate) fn redist_read32(&self, r: usize, off: u64) -> u32 {
        match off {
            0x0004 => IIDR_VALUE,
            WAKER => {
                let asleep = self.banks.get(r).is_some_and(|b| b.sleep);
                if asleep {
                    WAKER_SLEEP | WAKER_CHILDREN_ASLEEP
                } else {
                    0
                }
            }
            0xffd0..=0xffff => id_reg(off),
            o if o >= SGI_BASE => match o - SGI_BASE {
                s @ 0x080..=0x3ff => match BitReg::at(s) {
                    Some((kind, 0)) => self.bits_read(kind, 0, r),
                    _ => 0,
                },
                0xc00 => self.cfg_read(0, r),
                0xc04 => self.cfg_read(16, r),
                _ => 0,
            },
            _ => 0,
        }
    }

    pub(crate) fn redist_write32(&mut self, caller: usize, r: usize, off: u64, v: u32, fx: &mut Effects) {
        match off {
            WAKER => {
                if let Some(b) = self.banks.get_mut(r) {
                    b.sleep = v & WAKER_SLEEP != 0;
                }
            }
            o if o >= SGI_BASE => match o - SGI_BASE {
                s @ 0x080..=0x3ff => {
                    if let Some((kind, 0)) = BitReg::at(s) {
                        self.bits_write(kind, 0, r, v, Some(caller), fx);
                    }
                }
                0xc04 => self.cfg_write(16, r, v, fx),
                _ => {}
            },
            _ => {}
        }
    }

    pub(crate) fn redist_read64(&self, r: usize, off: u64) -> u64 {
        if off != 0x0008 {
            return 0;
        }
        // GICR_TYPER: affinity = vMPIDR (Aff0 = vCPU index), processor
        // number, Last on the final redistributor; no LPIs, no VLPIs.
        let last = if r + 1 == self.cfg.vcpus { TYPER_LAST } else { 0 };
        ((r as u64) << 32) | ((r as u64 & 0xffff) << 8) | last
    }

    pub(crate) fn redist_read8(&self, r: usize, off: u64) -> u8 {
        match off.checked_sub(SGI_BASE + IPRIORITYR) {
            Some(i @ 0..=31) => self.prio_read(i as u32, r),
            _ => 0,
        }
    }

    pub(crate) fn redist_write8(&mut self, r: usize, off: u64, v: u8, fx: &mut Effects) {
        if let Some(i @ 0..=31) = off.checked_sub(SGI_BASE + IPRIORITYR) {
            self.prio_write(i as u32, r, v, fx);
        }
    }
}
