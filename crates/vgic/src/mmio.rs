//! Decoding of guest MMIO accesses: which frame, which register width,
//! and the byte/half/word/doubleword splitting.

use crate::effects::Effects;
use crate::{Vgic, DIST_SIZE, REDIST_STRIDE};
use ferrovisor_types::{GuestPhysAddr, VcpuId};

/// Access widths a register accepts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Width {
    /// Byte-accessible (priorities): 1, 2 or 4 bytes, split into bytes.
    Byte,
    /// 32-bit only.
    Word,
    /// 64-bit register: 8 bytes, or 4 bytes for either half.
    Dword,
    /// Reserved space: RAZ/WI at any aligned size.
    Reserved,
}

/// Which frame an access hits; offsets are relative to the distributor or
/// to the redistributor of the vCPU (RD_base at 0, SGI_base at 0x10000).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Frame {
    Dist,
    Redist(usize),
}

impl Vgic {
    fn locate(&self, addr: GuestPhysAddr) -> Option<(Frame, u64)> {
        let a = addr.raw();
        let dist = a.checked_sub(self.cfg.dist_base.raw()).filter(|&o| o < DIST_SIZE);
        if let Some(off) = dist {
            return Some((Frame::Dist, off));
        }
        let off = a.checked_sub(self.cfg.redist_base.raw())?;
        let vcpu = usize::try_from(off / REDIST_STRIDE).ok()?;
        (vcpu < self.cfg.vcpus).then_some((Frame::Redist(vcpu), off % REDIST_STRIDE))
    }

    /// Validates an access; `None` (and counted) if malformed.
    fn decode(&mut self, vcpu: usize, addr: GuestPhysAddr, size: u8) -> Option<(Frame, u64, Width)> {
        let good_size = matches!(size, 1 | 2 | 4 | 8) && addr.raw().is_multiple_of(u64::from(size));
        let found = if good_size && vcpu < self.cfg.vcpus { self.locate(addr) } else { None };
        let Some((frame, off)) = found else {
            self.count_bad();
            return None;
        };
        let width = match frame {
            Frame::Dist => Self::dist_width(off),
            Frame::Redist(_) => Self::redist_width(off),
        };
        let ok = match width {
            Width::Byte => size <= 4,
            Width::Word => size == 4,
            Width::Dword => size >= 4,
            Width::Reserved => true,
        };
        if !ok {
            self.count_bad();
            return None;
        }
        Some((frame, off, width))
    }

    /// An emulated load of `size` bytes (1, 2, 4 or 8) at `addr` by vCPU
    /// `vcpu`; returns the value (zero-extended). Malformed accesses read 0
    /// and are counted in [`Vgic::bad_accesses`].
    pub fn mmio_read(&mut self, vcpu: VcpuId, addr: GuestPhysAddr, size: u8) -> u64 {
        let vcpu = vcpu.index();
        let Some((frame, off, width)) = self.decode(vcpu, addr, size) else { return 0 };
        match width {
            Width::Reserved => 0,
            Width::Byte => (0..u64::from(size))
                .fold(0, |acc, i| acc | (u64::from(self.read8(frame, off + i)) << (8 * i))),
            Width::Word => u64::from(self.read32(frame, off)),
            Width::Dword => {
                let v = self.read64(frame, off & !7);
                if size == 8 {
                    v
                } else {
                    (v >> ((off & 4) * 8)) & 0xffff_ffff
                }
            }
        }
    }

    /// An emulated store of the low `size` bytes of `value` at `addr` by
    /// vCPU `vcpu`. Effects the hypervisor must apply are pushed to `fx`.
    /// Malformed accesses are ignored and counted.
    pub fn mmio_write(&mut self, vcpu: VcpuId, addr: GuestPhysAddr, size: u8, value: u64, fx: &mut Effects) {
        let vcpu = vcpu.index();
        let Some((frame, off, width)) = self.decode(vcpu, addr, size) else { return };
        match width {
            Width::Reserved => {}
            Width::Byte => {
                for i in 0..u64::from(size) {
                    self.write8(frame, off + i, (value >> (8 * i)) as u8, fx);
                }
            }
            Width::Word => self.write32(vcpu, frame, off, value as u32, fx),
            Width::Dword => {
                let v = if size == 8 {
                    value
                } else {
                    let shift = (off & 4) * 8;
                    let cur = self.read64(frame, off & !7);
                    (cur & !(0xffff_ffff << shift)) | ((value & 0xffff_ffff) << shift)
                };
                self.write64(vcpu, frame, off & !7, v, fx);
            }
        }
    }

    fn read8(&self, frame: Frame, off: u64) -> u8 {
        match frame {
            Frame::Dist => self.dist_read8(off),
            Frame::Redist(r) => self.redist_read8(r, off),
        }
    }

    fn read32(&self, frame: Frame, off: u64) -> u32 {
        match frame {
            Frame::Dist => self.dist_read32(off),
            Frame::Redist(r) => self.redist_read32(r, off),
        }
    }

    fn read64(&self, frame: Frame, off: u64) -> u64 {
        match frame {
            Frame::Dist => self.dist_read64(off),
            Frame::Redist(r) => self.redist_read64(r, off),
        }
    }

    fn write8(&mut self, frame: Frame, off: u64, v: u8, fx: &mut Effects) {
        match frame {
            Frame::Dist => self.dist_write8(off, v, fx),
            Frame::Redist(r) => self.redist_write8(r, off, v, fx),
        }
    }

    fn write32(&mut self, caller: usize, frame: Frame, off: u64, v: u32, fx: &mut Effects) {
        match frame {
            Frame::Dist => self.dist_write32(caller, off, v, fx),
            Frame::Redist(r) => self.redist_write32(caller, r, off, v, fx),
        }
    }

    fn write64(&mut self, caller: usize, frame: Frame, off: u64, v: u64, fx: &mut Effects) {
        match frame {
            Frame::Dist => self.dist_write64(caller, off, v, fx),
            // No writable 64-bit redistributor register (no LPIs).
            Frame::Redist(_) => {}
        }
    }
}
