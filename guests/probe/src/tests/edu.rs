//! `edu`, `edudma=ADDR` and `guard=MS`: QEMU's `edu` PCI device (a DMA
//! engine and an interrupt) found through the ECAM at `probe.ecam`, and a
//! page of RAM that another guest's DMA must not reach.
//!
//! - `edu`: finds the first 1234:11e8 function on bus 0, gives its BAR0 an
//!   address if it has none (natively: no firmware assigned it), enables
//!   memory decoding and bus mastering, checks the identification and
//!   liveness registers, copies a 2 KiB pattern from RAM into the device
//!   and back into another RAM buffer by DMA (data checked), the second
//!   copy raising the device's INTx (`probe.eduintid`, default 37 = slot 2's
//!   INTA on QEMU virt), which must arrive.
//! - `edudma=ADDR`: an attack: the device DMAs a page of its buffer to ADDR
//!   (outside the probe's RAM), then copies it to the probe's own RAM. PASS
//!   if the second copy did not land either: the SMMU stopped the device
//!   after its first fault (natively both land: FAIL).
//! - `guard=ADDR`: fills the page at ADDR (in the probe's RAM; under
//!   ferrovisor an identity-mapped region, so that ADDR is also its host
//!   address) with a pattern, prints its address, and checks it every 10 ms
//!   for `probe.guardms` ms (default 5000). PASS if it never changed.
//!
//! Registers (QEMU docs/specs/edu.rst): 0x00 identification (0xRRrr00ed),
//! 0x04 liveness (reads back inverted), 0x24 interrupt status, 0x64
//! interrupt acknowledge, 0x80/0x88/0x90 DMA source, destination, count,
//! 0x98 DMA command (1 start, 2 device to RAM, 4 interrupt when done); the
//! device's buffer is at device address 0x40000 (4 KiB). QEMU must run it
//! with `dma_mask` covering guest RAM addresses (`-device
//! edu,dma_mask=0xffffffffff`).

use super::{parse_u64, report, Env};
use crate::{cpu, gic, irq};
use core::ptr::{read_volatile, write_volatile};

const VENDOR_DEVICE: u32 = 0x11e8_1234;
const BUF: u64 = 0x40000;
const PAGE: usize = 4096;
/// Bytes per DMA: QEMU 7.2's edu refuses (with a hardware error that stops
/// QEMU) a transfer that ends exactly at the end of its 4 KiB buffer.
const LEN: usize = 2048;
/// The address BAR0 gets when nobody assigned one (QEMU virt's 32-bit window).
const NATIVE_BAR0: u32 = 0x1000_0000;
const TIMEOUT_MS: u64 = 2000;

#[repr(C, align(4096))]
struct Page([u8; PAGE]);

static mut SRC: Page = Page([0; PAGE]);
static mut DST: Page = Page([0; PAGE]);

fn rd32(addr: u64) -> u32 {
    // SAFETY: an MMIO or RAM address the test found (ECAM, BAR) or owns.
    unsafe { read_volatile(addr as *const u32) }
}
fn wr32(addr: u64, v: u32) {
    // SAFETY: as in `rd32`.
    unsafe { write_volatile(addr as *mut u32, v) }
}
fn wr64(addr: u64, v: u64) {
    // SAFETY: as in `rd32`; edu's DMA registers take 64-bit accesses.
    unsafe { write_volatile(addr as *mut u64, v) }
}
fn rd64(addr: u64) -> u64 {
    // SAFETY: as in `wr64`.
    unsafe { read_volatile(addr as *const u64) }
}

fn page_addr(p: *const Page) -> u64 {
    p as u64
}
fn fill(p: *mut Page, seed: u8) {
    for i in 0..PAGE {
        // SAFETY: `p` is one of this module's pages, used by one CPU.
        unsafe { write_volatile((p as *mut u8).add(i), seed.wrapping_add((i * 7) as u8)) }
    }
}
fn clear(p: *mut Page) {
    for i in 0..PAGE {
        // SAFETY: as in `fill`.
        unsafe { write_volatile((p as *mut u8).add(i), 0) }
    }
}
fn byte(p: *const Page, i: usize) -> u8 {
    // SAFETY: as in `fill`, `i` < PAGE.
    unsafe { read_volatile((p as *const u8).add(i)) }
}

/// The edu function: its ECAM config base and BAR0.
struct Edu {
    cfg: u64,
    bar: u64,
}

fn find(ecam: u64) -> Result<Edu, &'static str> {
    let cfg = (0..32u64)
        .map(|dev| ecam + (dev << 15))
        .find(|&c| rd32(c) == VENDOR_DEVICE)
        .ok_or("no edu (1234:11e8) on bus 0")?;
    let mut bar = rd32(cfg + 0x10) & !0xf;
    if bar == 0 {
        wr32(cfg + 0x10, NATIVE_BAR0);
        bar = rd32(cfg + 0x10) & !0xf;
    }
    if bar == 0 {
        return Err("BAR0 has no address");
    }
    // Memory decoding and bus mastering on.
    wr32(cfg + 0x04, rd32(cfg + 0x04) | 0x6);
    Ok(Edu { cfg, bar: u64::from(bar) })
}

impl Edu {
    /// One DMA of `len` bytes; `to_ram`: device buffer -> `ram`, else
    /// `ram` -> device buffer. Returns whether it completed in time.
    fn dma(&self, ram: u64, to_ram: bool, irq: bool) -> bool {
        let (src, dst) = if to_ram { (BUF, ram) } else { (ram, BUF) };
        wr64(self.bar + 0x80, src);
        wr64(self.bar + 0x88, dst);
        wr64(self.bar + 0x90, LEN as u64);
        wr64(self.bar + 0x98, 1 | if to_ram { 2 } else { 0 } | if irq { 4 } else { 0 });
        let deadline = cpu::deadline_ms(TIMEOUT_MS);
        while rd64(self.bar + 0x98) & 1 != 0 {
            if cpu::expired(deadline) {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    }
}

/// `edu`.
pub fn run(env: &Env, test: &str) -> bool {
    let edu = match find(env.opts.ecam) {
        Ok(e) => e,
        Err(why) => return report!(test, false, "ecam={:#x}: {why}", env.opts.ecam),
    };
    let id = rd32(edu.bar);
    wr32(edu.bar + 4, 0x1234_5678);
    let live = rd32(edu.bar + 4);
    if id & 0xff != 0xed || live != !0x1234_5678 {
        return report!(test, false, "bar0={:#x} id={id:#x} liveness={live:#x}", edu.bar);
    }
    let intid = env.opts.edu_intid;
    if let Err(why) = irq::setup().and_then(|()| gic::enable_spi(intid, false)) {
        return report!(test, false, "interrupt {intid}: {why}");
    }
    irq::set_clear(intid, edu.bar + 0x64, 0x100);
    let before = irq::count(intid);
    let (src, dst) = (&raw mut SRC, &raw mut DST);
    fill(src, 0x5a);
    clear(dst);
    let copied = edu.dma(page_addr(src), false, false) && edu.dma(page_addr(dst), true, true);
    let same = (0..LEN).all(|i| byte(src, i) == byte(dst, i));
    let got_irq = irq::wait(cpu::deadline_ms(TIMEOUT_MS), env.opts.irq_wait, || irq::count(intid) > before);
    irq::set_clear(0, 0, 0);
    gic::disable_spi(intid);
    report!(
        test,
        copied && same && got_irq,
        "cfg={:#x} bar0={:#x} id={id:#x} dma={} data={} intid={intid} irq={}",
        edu.cfg,
        edu.bar,
        if copied { "done" } else { "timeout" },
        if same { "ok" } else { "differs" },
        if got_irq { "yes" } else { "none" },
    )
}

/// `edudma=ADDR`.
pub fn attack(env: &Env, test: &str, arg: &str) -> bool {
    let Some(target) = parse_u64(arg) else { return report!(test, false, "bad address {arg}") };
    let edu = match find(env.opts.ecam) {
        Ok(e) => e,
        Err(why) => return report!(test, false, "ecam={:#x}: {why}", env.opts.ecam),
    };
    let (src, dst) = (&raw mut SRC, &raw mut DST);
    fill(src, 0xa5);
    clear(dst);
    // Load the device's buffer from our own RAM (allowed), aim it at the
    // target (must fault), then at our own RAM again (must be stopped).
    let loaded = edu.dma(page_addr(src), false, false);
    let aimed = edu.dma(target, true, false);
    crate::out!("edudma: aimed at {target:#x}; in 500 ms at own RAM {:#x}", page_addr(dst));
    // The hypervisor stops the device when it takes the SMMU's fault
    // report (an interrupt): give it the time a report takes.
    let pause = cpu::deadline_ms(500);
    while !cpu::expired(pause) {
        core::hint::spin_loop();
    }
    let again = edu.dma(page_addr(dst), true, false);
    let landed = (0..LEN).any(|i| byte(dst, i) != 0);
    report!(
        test,
        loaded && aimed && again && !landed,
        "target={target:#x} dma={} contained={}",
        if loaded && aimed && again { "done" } else { "timeout" },
        if landed { "no" } else { "yes" }
    )
}

/// `guard=ADDR`.
pub fn guard(env: &Env, test: &str, arg: &str) -> bool {
    let Some(addr) = parse_u64(arg).filter(|a| a % PAGE as u64 == 0) else {
        return report!(test, false, "bad page address {arg}");
    };
    let ms = env.opts.guard_ms;
    let page = addr as *mut Page;
    fill(page, 0x3c);
    crate::out!("guard: page {addr:#x} filled");
    let deadline = cpu::deadline_ms(ms);
    let mut changed = None;
    while changed.is_none() && !cpu::expired(deadline) {
        changed = (0..PAGE).find(|&i| byte(page, i) != 0x3cu8.wrapping_add((i * 7) as u8));
        let pause = cpu::deadline_ms(10);
        while !cpu::expired(pause) {
            core::hint::spin_loop();
        }
    }
    match changed {
        None => report!(test, true, "page={addr:#x} ms={ms} unchanged"),
        Some(i) => report!(test, false, "page={addr:#x} byte {i} changed to {:#x}", byte(page, i)),
    }
}
