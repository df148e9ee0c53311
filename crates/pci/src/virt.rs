//! A guest's virtual host bridge: the configuration space the guest sees
//! through its emulated ECAM window (bus 0). It shows only the guest's
//! functions, at their guest addresses:
//!
//! - identity, class, header and subsystem registers read through (the
//!   multi-function bit says whether the guest has other functions of the
//!   device);
//! - BARs are emulated: they read as the guest address the hypervisor
//!   mapped, sizing (all-ones, read back) works, any other write leaves the
//!   BAR where it is; the expansion ROM reads 0;
//! - the command register takes memory decoding, bus mastering, parity,
//!   SERR and INTx disable from the guest (written through to the host);
//!   I/O decoding reads 0;
//! - the capability list is the host's without MSI and MSI-X (the guest
//!   gets INTx only), relinked; kept capabilities read and write through,
//!   removed ones read 0; extended configuration space reads 0;
//! - the interrupt line byte is the guest's own; the pin reads through;
//! - any other header register reads through and ignores writes.

use crate::header::{
    Bar, BarKind, FunctionId, BAR0, CAP_PTR, CLASS, COMMAND, COMMAND_BUS_MASTER, COMMAND_INTX_DISABLE,
    COMMAND_MEMORY, COMMAND_PARITY, COMMAND_SERR, EXTENDED, HEADER, HEADER_END, ID, INTERRUPT, ROM,
    STATUS_CAP_LIST, SUBSYSTEM,
};
use crate::{Bdf, ConfigSpace, Pin};
use alloc::vec::Vec;

/// Command bits a guest controls.
pub const GUEST_COMMAND: u32 =
    COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_PARITY | COMMAND_SERR | COMMAND_INTX_DISABLE;

/// Capability IDs hidden from guests.
const MSI: u8 = 0x05;
const MSIX: u8 = 0x11;

/// A BAR as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualBar {
    /// The host BAR (slot, kind, size).
    pub bar: Bar,
    /// Where the guest finds it (stage 2 maps it there).
    pub guest_address: u64,
}

/// One capability of the host's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cap {
    offset: u8,
    id: u8,
    /// Bytes it covers (hidden ones: exactly; kept ones: up to the next).
    len: u8,
}

/// A function of a guest's virtual host bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualFunction {
    /// The host function behind it.
    pub host: Bdf,
    /// Its address on the guest's bus 0.
    pub guest: Bdf,
    /// Its identity.
    pub id: FunctionId,
    /// Its memory BARs.
    pub bars: Vec<VirtualBar>,
    /// Its INTx pin.
    pub pin: Option<Pin>,
    /// BAR slots whose last write was the sizing pattern.
    sizing: [bool; 6],
    interrupt_line: u8,
    /// The host's capabilities, read on first use.
    caps: Option<Vec<Cap>>,
}

impl VirtualFunction {
    /// Host function `host` shown at `guest`.
    pub fn new(host: Bdf, guest: Bdf, id: FunctionId, bars: Vec<VirtualBar>, pin: Option<Pin>) -> Self {
        Self { host, guest, id, bars, pin, sizing: [false; 6], interrupt_line: 0, caps: None }
    }

    fn caps(&mut self, host: &impl ConfigSpace) -> &[Cap] {
        let h = self.host;
        self.caps.get_or_insert_with(|| read_caps(host, h))
    }

    /// The BAR register in slot `slot` as the guest reads it.
    fn bar_reg(&self, slot: usize) -> u32 {
        for vb in &self.bars {
            let i = usize::from(vb.bar.index);
            let mask = !(vb.bar.size.max(16) - 1);
            let value = if self.sizing.get(slot).copied().unwrap_or(false) { mask } else { vb.guest_address };
            if i == slot {
                return value as u32 & !0xf | vb.bar.type_bits();
            }
            if vb.bar.kind == BarKind::Mem64 && i + 1 == slot {
                return (value >> 32) as u32;
            }
        }
        0
    }
}

fn read_caps(host: &impl ConfigSpace, bdf: Bdf) -> Vec<Cap> {
    let mut caps: Vec<Cap> = Vec::new();
    if host.read32(bdf, COMMAND) & STATUS_CAP_LIST == 0 {
        return caps;
    }
    let mut ptr = (host.read32(bdf, CAP_PTR) & 0xfc) as u8;
    // At most 48 capabilities fit in 0x40..0x100: a longer chain loops.
    for _ in 0..48 {
        if u16::from(ptr) < HEADER_END || caps.iter().any(|c| c.offset == ptr) {
            break;
        }
        let header = host.read32(bdf, u16::from(ptr));
        let id = header as u8;
        let len = match id {
            MSI => {
                let control = header >> 16;
                let wide = if control & (1 << 7) != 0 { 4 } else { 0 };
                let masking = if control & (1 << 8) != 0 { 10 } else { 0 };
                (10 + wide + masking + 3) & !3
            }
            MSIX => 12,
            _ => 4,
        };
        caps.push(Cap { offset: ptr, id, len });
        ptr = ((header >> 8) & 0xfc) as u8;
    }
    // A kept capability covers the bytes up to the next one (or the end).
    let mut starts: Vec<u16> = caps.iter().map(|c| u16::from(c.offset)).collect();
    starts.sort_unstable();
    for c in caps.iter_mut().filter(|c| c.id != MSI && c.id != MSIX) {
        let next = starts.iter().copied().find(|&s| s > u16::from(c.offset)).unwrap_or(EXTENDED);
        c.len = (next - u16::from(c.offset)).min(255) as u8;
    }
    caps
}

fn hidden(c: &Cap) -> bool {
    c.id == MSI || c.id == MSIX
}

/// The guest's view of the host's capability list: offsets of the kept
/// capabilities in chain order.
fn kept(caps: &[Cap]) -> impl Iterator<Item = &Cap> {
    caps.iter().filter(|c| !hidden(c))
}

/// The 32-bit register at `reg` (4-aligned) of `f` as the guest reads it.
fn read_reg(f: &mut VirtualFunction, others: bool, host: &impl ConfigSpace, reg: u16) -> u32 {
    let h = f.host;
    match reg {
        ID | CLASS | SUBSYSTEM => host.read32(h, reg),
        COMMAND => {
            let value = host.read32(h, COMMAND);
            let list = kept(f.caps(host)).next().is_some();
            let status = (value & 0xffff_0000 & !STATUS_CAP_LIST) | if list { STATUS_CAP_LIST } else { 0 };
            status | (value & GUEST_COMMAND)
        }
        HEADER => {
            let value = host.read32(h, HEADER) & !(0x80 << 16);
            value | if others { 0x80 << 16 } else { 0 }
        }
        0x10..=0x27 => f.bar_reg(usize::from((reg - BAR0) / 4)),
        CAP_PTR => kept(f.caps(host)).next().map_or(0, |c| u32::from(c.offset)),
        INTERRUPT => (host.read32(h, INTERRUPT) & !0xff) | u32::from(f.interrupt_line),
        0x28 | ROM | 0x38 => 0,
        r if r >= EXTENDED => 0,
        r => {
            let caps = f.caps(host);
            match caps.iter().find(|c| r >= u16::from(c.offset) && r < u16::from(c.offset) + u16::from(c.len))
            {
                Some(c) if hidden(c) => 0,
                Some(c) if r == u16::from(c.offset) => {
                    // The header: relink past removed capabilities.
                    let pos = caps.iter().position(|x| x.offset == c.offset).unwrap_or(0);
                    let next = caps.iter().skip(pos + 1).find(|x| !hidden(x)).map_or(0, |x| x.offset);
                    (host.read32(h, r) & !0xff00) | u32::from(next) << 8
                }
                _ => host.read32(h, r),
            }
        }
    }
}

/// A guest's virtual host bridge (bus 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VirtualBridge {
    functions: Vec<VirtualFunction>,
}

/// Whether a `size`-byte access at `reg` is one the bridge answers.
fn aligned(reg: u16, size: u8) -> bool {
    matches!(size, 1 | 2 | 4) && reg.is_multiple_of(u16::from(size))
}

fn size_mask(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

impl VirtualBridge {
    /// A bridge showing `functions`.
    pub fn new(functions: Vec<VirtualFunction>) -> Self {
        Self { functions }
    }

    /// The functions it shows.
    pub fn functions(&self) -> &[VirtualFunction] {
        &self.functions
    }

    /// Splits an ECAM offset into the function's index and the register.
    fn decode(&self, offset: u32, size: u8) -> Option<(usize, u16)> {
        if offset >= 1 << 20 {
            return None;
        }
        let bdf = Bdf::new(0, (offset >> 15) as u8 & 0x1f, (offset >> 12) as u8 & 7)?;
        let reg = (offset & 0xfff) as u16;
        if !aligned(reg, size) {
            return None;
        }
        Some((self.functions.iter().position(|f| f.guest == bdf)?, reg))
    }

    fn others(&self, index: usize) -> bool {
        let Some(f) = self.functions.get(index) else { return false };
        self.functions.iter().enumerate().any(|(i, o)| i != index && o.guest.device() == f.guest.device())
    }

    /// A guest read of `size` bytes (1, 2 or 4) at byte `offset` of the
    /// ECAM window. Absent functions and odd accesses read all-ones.
    pub fn read(&mut self, host: &mut impl ConfigSpace, offset: u32, size: u8) -> u32 {
        let Some((i, reg)) = self.decode(offset, size) else { return size_mask(size) };
        let others = self.others(i);
        let Some(f) = self.functions.get_mut(i) else { return size_mask(size) };
        let word = read_reg(f, others, host, reg & !3);
        (word >> (8 * u32::from(reg & 3))) & size_mask(size)
    }

    /// A guest write of the low `size` bytes of `value` at byte `offset`.
    pub fn write(&mut self, host: &mut impl ConfigSpace, offset: u32, size: u8, value: u32) {
        let Some((i, reg)) = self.decode(offset, size) else { return };
        let others = self.others(i);
        let Some(f) = self.functions.get_mut(i) else { return };
        let dword = reg & !3;
        let shift = 8 * u32::from(reg & 3);
        let mask = size_mask(size) << shift;
        let merge = |old: u32| (old & !mask) | ((value << shift) & mask);
        let h = f.host;
        match dword {
            COMMAND if mask & 0xffff != 0 => {
                let guest = merge(read_reg(f, others, host, COMMAND)) & GUEST_COMMAND;
                let current = host.read32(h, COMMAND) & 0xffff;
                // Zeros in the status half leave its write-1-to-clear bits.
                host.write32(h, COMMAND, (current & !GUEST_COMMAND) | guest);
            }
            0x10..=0x27 => {
                let slot = usize::from((dword - BAR0) / 4);
                let new = merge(f.bar_reg(slot));
                if let Some(s) = f.sizing.get_mut(slot) {
                    // All-ones (the type bits are read-only) starts sizing;
                    // anything else shows the BAR where it is.
                    *s = new | 0xf == u32::MAX;
                }
            }
            INTERRUPT if mask & 0xff != 0 => f.interrupt_line = merge(u32::from(f.interrupt_line)) as u8,
            r if (HEADER_END..EXTENDED).contains(&r) => {
                let caps = f.caps(host);
                let cap = caps
                    .iter()
                    .find(|c| r >= u16::from(c.offset) && r < u16::from(c.offset) + u16::from(c.len));
                if cap.is_some_and(|c| !hidden(c)) {
                    let old = host.read32(h, r);
                    host.write32(h, r, merge(old));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
