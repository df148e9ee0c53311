//! A minimal GICv3 driver at EL1 for QEMU virt's fixed addresses.
//!
//! Distributor at 0x0800_0000, redistributors from 0x080A_0000 with a stride
//! of 0x2_0000 (GICv3, no VLPI frames). The hypervisor shows every guest its
//! virtual GIC at the host GIC's addresses (`docs/guests.md`), so the same
//! addresses work natively and under ferrovisor. Single security state
//! (GICD_CTLR.DS = 1, QEMU's default and the vGIC's): everything is group 1,
//! affinity routing on, the system-register CPU interface, EOImode 0.
//!
//! [`init`] sets up the distributor and the boot CPU's redistributor and CPU
//! interface; a secondary that takes interrupts (the `sgiping` test's) sets
//! up its own with [`init_cpu`]. Every wait for the GIC is bounded (100 ms
//! of the generic counter).

use crate::cpu;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Distributor base.
pub const GICD_BASE: u64 = 0x0800_0000;
/// First redistributor.
pub const GICR_BASE: u64 = 0x080A_0000;
/// Distance between two redistributors (RD_base + SGI_base frames).
pub const GICR_STRIDE: u64 = 0x2_0000;
/// The most redistributors walked (QEMU virt's first region holds 123).
const MAX_REDISTS: u64 = 123;

const GICD_CTLR: u64 = 0x0000;
const GICD_IGROUPR: u64 = 0x0080;
const GICD_ISENABLER: u64 = 0x0100;
const GICD_ICENABLER: u64 = 0x0180;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ICFGR: u64 = 0x0c00;
const GICD_IROUTER: u64 = 0x6000;
/// GICD_CTLR: RWP (bit 31), ARE (bit 4 with DS=1), EnableGrp1 (bit 1).
const CTLR_RWP: u32 = 1 << 31;
const CTLR_ARE: u32 = 1 << 4;
const CTLR_GRP1: u32 = 1 << 1;

const GICR_CTLR: u64 = 0x0000;
const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;
const GICR_CTLR_RWP: u32 = 1 << 3;
const TYPER_LAST: u64 = 1 << 4;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// SGI_base frame, relative to RD_base.
const SGI_BASE: u64 = 0x1_0000;

/// Priority given to every enabled interrupt (PMR is 0xff, so all pass).
pub const PRIORITY: u8 = 0xa0;
/// The highest INTID that is not special (1020..1023 are).
pub const MAX_INTID: u32 = 1019;
const WAIT_MS: u64 = 100;

static READY: AtomicBool = AtomicBool::new(false);
/// RD_base of the boot CPU's redistributor.
static RD_BASE: AtomicU64 = AtomicU64::new(0);

// The accessors are single plain `ldr`/`str` instructions (base register,
// no offset, no writeback): under ferrovisor the GIC frames trap, and the
// hypervisor can only emulate accesses whose syndrome is valid (ISV=1),
// which a compiler-chosen pre-indexed or pair access would not give.

fn read32(addr: u64) -> u32 {
    let v: u32;
    // SAFETY: `addr` is a GIC register (distributor or redistributor) in the
    // device block of the identity map; reading it has no side effect.
    unsafe { asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack, readonly)) };
    v
}

fn write32(addr: u64, v: u32) {
    // SAFETY: `addr` is a GIC register in the identity map's device block;
    // the caller programs the GIC, which only the probe's boot CPU uses.
    unsafe { asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack)) };
}

fn read64(addr: u64) -> u64 {
    let v: u64;
    // SAFETY: as in `read32`, for a 64-bit register (GICR_TYPER).
    unsafe { asm!("ldr {v}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack, readonly)) };
    v
}

fn write64(addr: u64, v: u64) {
    // SAFETY: as in `write32`, for a 64-bit register (GICD_IROUTER<n>).
    unsafe { asm!("str {v}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack)) };
}

fn write8(addr: u64, v: u8) {
    // SAFETY: as in `write32`, for a byte-accessible register (IPRIORITYR).
    unsafe { asm!("strb {v:w}, [{a}]", a = in(reg) addr, v = in(reg) u32::from(v), options(nostack)) };
}

/// Waits until `read32(addr) & mask == 0`; false after [`WAIT_MS`].
fn wait_clear(addr: u64, mask: u32) -> bool {
    let deadline = cpu::deadline_ms(WAIT_MS);
    while read32(addr) & mask != 0 {
        if cpu::expired(deadline) {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// This CPU's affinity packed as in GICR_TYPER[63:32] (Aff3.Aff2.Aff1.Aff0).
fn packed_affinity() -> u64 {
    let m = cpu::mpidr();
    ((m >> 32) & 0xff) << 24 | (m & 0xff_ffff)
}

/// Finds this CPU's redistributor: walks the frames until GICR_TYPER's
/// affinity matches MPIDR or the Last bit is set.
fn find_redist() -> Option<u64> {
    let me = packed_affinity();
    for i in 0..MAX_REDISTS {
        let rd = GICR_BASE + i * GICR_STRIDE;
        let typer = read64(rd + GICR_TYPER);
        if typer >> 32 == me {
            return Some(rd);
        }
        if typer & TYPER_LAST != 0 {
            break;
        }
    }
    None
}

/// Sets up the distributor, this CPU's redistributor and CPU interface
/// (once; later calls return at once). IRQs stay masked in PSTATE.
pub fn init() -> Result<(), &'static str> {
    if READY.load(Ordering::SeqCst) {
        return Ok(());
    }
    // ARE first (with the groups disabled), then EnableGrp1.
    write32(GICD_BASE + GICD_CTLR, CTLR_ARE);
    if !wait_clear(GICD_BASE + GICD_CTLR, CTLR_RWP) {
        return Err("GICD_CTLR.RWP stuck");
    }
    write32(GICD_BASE + GICD_CTLR, CTLR_ARE | CTLR_GRP1);
    if !wait_clear(GICD_BASE + GICD_CTLR, CTLR_RWP) {
        return Err("GICD_CTLR.RWP stuck");
    }
    let rd = init_cpu()?;
    RD_BASE.store(rd, Ordering::SeqCst);
    READY.store(true, Ordering::SeqCst);
    Ok(())
}

/// Wakes the calling CPU's redistributor and sets up its CPU interface;
/// returns its RD_base. IRQs stay masked in PSTATE. The distributor must
/// be set up already ([`init`], on the boot CPU).
pub fn init_cpu() -> Result<u64, &'static str> {
    let rd = find_redist().ok_or("no redistributor for this CPU")?;
    let waker = read32(rd + GICR_WAKER);
    write32(rd + GICR_WAKER, waker & !WAKER_PROCESSOR_SLEEP);
    if !wait_clear(rd + GICR_WAKER, WAKER_CHILDREN_ASLEEP) {
        return Err("GICR_WAKER.ChildrenAsleep stuck");
    }
    // SAFETY: programs this CPU's GIC CPU interface: system-register access
    // on, every priority unmasked, no preemption grouping, EOImode 0 (EOIR
    // both drops priority and deactivates), group 1 on. IRQs stay masked in
    // PSTATE, so nothing is taken until a test unmasks them.
    unsafe {
        asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #1",
            "msr icc_sre_el1, {t}",
            "isb",
            "mrs {t}, icc_ctlr_el1",
            "bic {t}, {t}, #2",
            "msr icc_ctlr_el1, {t}",
            "mov {t}, #0xff",
            "msr icc_pmr_el1, {t}",
            "msr icc_bpr1_el1, xzr",
            "mov {t}, #1",
            "msr icc_igrpen1_el1, {t}",
            "isb",
            t = out(reg) _,
            options(nostack),
        );
    }
    Ok(rd)
}

/// RD_base of this CPU, once [`init`] succeeded.
fn rd_base() -> Option<u64> {
    READY.load(Ordering::SeqCst).then(|| RD_BASE.load(Ordering::SeqCst))
}

/// Enables SPI `intid` (32..=1019): group 1, priority [`PRIORITY`], edge or
/// level, routed to this CPU.
pub fn enable_spi(intid: u32, edge: bool) -> Result<(), &'static str> {
    if !(32..=MAX_INTID).contains(&intid) {
        return Err("not an SPI");
    }
    if !READY.load(Ordering::SeqCst) {
        return Err("GIC not initialized");
    }
    let (word, bit) = (u64::from(intid / 32) * 4, 1u32 << (intid % 32));
    write32(GICD_BASE + GICD_ICENABLER + word, bit);
    if !wait_clear(GICD_BASE + GICD_CTLR, CTLR_RWP) {
        return Err("GICD_CTLR.RWP stuck");
    }
    let group = read32(GICD_BASE + GICD_IGROUPR + word);
    write32(GICD_BASE + GICD_IGROUPR + word, group | bit);
    write8(GICD_BASE + GICD_IPRIORITYR + u64::from(intid), PRIORITY);
    let cfg_addr = GICD_BASE + GICD_ICFGR + u64::from(intid / 16) * 4;
    let cfg_bit = 2u32 << (2 * (intid % 16));
    let cfg = read32(cfg_addr);
    write32(cfg_addr, if edge { cfg | cfg_bit } else { cfg & !cfg_bit });
    write64(GICD_BASE + GICD_IROUTER + 8 * u64::from(intid), cpu::mpidr() & 0xff_00ff_ffff);
    write32(GICD_BASE + GICD_ISENABLER + word, bit);
    Ok(())
}

/// Disables SPI `intid` (and waits for the distributor to apply it).
pub fn disable_spi(intid: u32) {
    if (32..=MAX_INTID).contains(&intid) && READY.load(Ordering::SeqCst) {
        write32(GICD_BASE + GICD_ICENABLER + u64::from(intid / 32) * 4, 1 << (intid % 32));
        wait_clear(GICD_BASE + GICD_CTLR, CTLR_RWP);
    }
}

/// Enables SGI or PPI `intid` (0..=31) on the boot CPU's redistributor:
/// group 1, priority [`PRIORITY`], a PPI's trigger mode left as it is.
pub fn enable_local(intid: u32) -> Result<(), &'static str> {
    enable_private(rd_base().ok_or("GIC not initialized")?, intid)
}

/// Enables SGI or PPI `intid` (0..=31) on the redistributor at `rd` (the
/// calling CPU's, from [`init_cpu`]): group 1, priority [`PRIORITY`].
pub fn enable_private(rd: u64, intid: u32) -> Result<(), &'static str> {
    if intid > 31 {
        return Err("not an SGI or PPI");
    }
    let sgi = rd + SGI_BASE;
    let bit = 1u32 << intid;
    let group = read32(sgi + GICD_IGROUPR);
    write32(sgi + GICD_IGROUPR, group | bit);
    write8(sgi + GICD_IPRIORITYR + u64::from(intid), PRIORITY);
    write32(sgi + GICD_ISENABLER, bit);
    if wait_clear(rd + GICR_CTLR, GICR_CTLR_RWP) {
        Ok(())
    } else {
        Err("GICR_CTLR.RWP stuck")
    }
}

/// Sends group-1 SGI `intid` (0..=15) to the CPU with affinity `mpidr`
/// (`ICC_SGI1R_EL1`; under ferrovisor the write traps).
pub fn send_sgi(intid: u32, mpidr: u64) {
    let aff0 = mpidr & 0xff;
    let value = (1u64 << (aff0 & 0xf))
        | ((mpidr >> 8) & 0xff) << 16
        | u64::from(intid & 0xf) << 24
        | ((mpidr >> 16) & 0xff) << 32
        | (aff0 >> 4) << 44
        | ((mpidr >> 32) & 0xff) << 48;
    // SAFETY: sending an SGI only makes an interrupt pending at the target;
    // the ISB makes the write take effect before what follows.
    unsafe { asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) value, options(nomem, nostack)) };
}

/// Acknowledges the highest-priority pending group-1 interrupt: ICC_IAR1_EL1
/// (the INTID in bits 23:0; 1023 = none).
pub fn ack() -> u64 {
    let v: u64;
    // SAFETY: reading IAR1 activates the interrupt it returns; the IRQ
    // handler, the only caller, ends it with `eoi`.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) v, options(nomem, nostack)) };
    v
}

/// Ends an interrupt returned by [`ack`] (EOImode 0: priority drop and
/// deactivation).
pub fn eoi(iar: u64) {
    // SAFETY: writes back exactly what IAR1 returned, ending that interrupt.
    unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) iar, options(nomem, nostack)) };
}
