//! The host GICv3: distributor, redistributors and the system-register CPU
//! interface, driven through the `arm-gic` crate.
//!
//! One lock guards the distributor and redistributor registers. The CPU
//! interface (acknowledge, end of interrupt, SGIs) is per CPU and lock-free.

use crate::arch::aarch64::{mmu, sysreg};
use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{GicCpuInterface, GicV3, SgiTarget, SgiTargetGroup};
use arm_gic::{IntId, InterruptGroup, Trigger, UniqueMmioPointer};
use core::ptr::NonNull;
use ferrovisor_config::GicInfo;
use ferrovisor_sync::Mutex;
use ferrovisor_types::HostIrq;

/// Why the GIC could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicError {
    /// The DT gave a distributor or redistributor frame outside the EL2
    /// map's device memory.
    BadAddress,
    /// The driver refused (e.g. the redistributor frames could not be sized).
    Driver,
    /// The GIC was used before `init`.
    NotInitialised,
    /// `init` was called twice.
    AlreadyInitialised,
    /// The DT gave no redistributor region.
    NoRedistributor,
}

struct Gic(GicV3<'static>);

// SAFETY: the driver holds raw pointers to the GIC's MMIO frames, which are
// device memory reachable from every CPU; all access goes through `GIC`'s lock.
unsafe impl Send for Gic {}

static GIC: Mutex<Option<Gic>> = Mutex::new(None);

/// The driver's ID type for a host INTID.
fn intid(irq: HostIrq) -> IntId {
    match irq.raw() {
        raw @ 0..=15 => IntId::sgi(raw),
        raw @ 16..=31 => IntId::ppi(raw - 16),
        raw => IntId::spi(raw - 32),
    }
}

/// Takes over the host DT's GICv3 (`gic`: its distributor and first
/// redistributor region), configures every interrupt as group 1,
/// disabled, and enables the boot CPU's redistributor (frame index
/// `boot_cpu`) and CPU interface. A second call is refused.
#[inline(never)]
pub fn init(gic: &GicInfo, cpu_count: usize, boot_cpu: usize) -> Result<(), GicError> {
    let redist = gic.redist.first().ok_or(GicError::NoRedistributor)?;
    for frame in [&gic.dist, redist] {
        if !mmu::is_device_memory(frame.base.raw(), frame.size) {
            return Err(GicError::BadAddress);
        }
    }
    let mut slot = GIC.lock();
    if slot.is_some() {
        return Err(GicError::AlreadyInitialised);
    }
    let dist = NonNull::new(gic.dist.base.raw() as *mut Gicd).ok_or(GicError::BadAddress)?;
    let redist = NonNull::new(redist.base.raw() as *mut GicrSgi).ok_or(GicError::BadAddress)?;
    // SAFETY: both are the register frames the host DT gives for its GICv3
    // (the host DT is trusted: it describes the board), checked above to lie
    // in the EL2 map's device memory. This is the only driver instance: the
    // GIC is reached only through this module, the slot was empty (checked
    // under its lock) and is filled before the lock is let go, and the
    // config validator never gives GIC frames to a guest.
    let mut driver = unsafe { GicV3::new(UniqueMmioPointer::new(dist), redist, cpu_count) }
        .map_err(|_| GicError::Driver)?;
    driver.setup(boot_cpu);
    GicCpuInterface::set_priority_mask(0xff);
    split_eoi();
    *slot = Some(Gic(driver));
    Ok(())
}

/// Wakes this CPU's redistributor and enables its CPU interface.
pub fn init_cpu(cpu: usize) -> Result<(), GicError> {
    let mut guard = GIC.lock();
    let gic = guard.as_mut().ok_or(GicError::NotInitialised)?;
    gic.0.init_cpu(cpu);
    GicCpuInterface::enable_group1(true);
    GicCpuInterface::set_priority_mask(0xff);
    split_eoi();
    Ok(())
}

/// ICC_CTLR_EL1.EOImode = 1: an EOI only drops the running priority and
/// deactivation is a separate step (ICC_DIR_EL1), so that a forwarded
/// interrupt can stay active until the guest deactivates it (LR HW bit).
fn split_eoi() {
    sysreg::write_icc_ctlr_el1(2);
}

/// Enables `irq` with `priority` on one CPU: for SGIs and PPIs `cpu` is the
/// index of its redistributor frame; an SPI is routed to affinity `mpidr`.
pub fn enable(irq: HostIrq, cpu: usize, mpidr: u64, priority: u8, edge: bool) -> Result<(), GicError> {
    let mut guard = GIC.lock();
    let gic = guard.as_mut().ok_or(GicError::NotInitialised)?;
    let id = intid(irq);
    let trigger = if edge { Trigger::Edge } else { Trigger::Level };
    if !id.is_sgi() {
        gic.0.set_trigger(id, Some(cpu), trigger).map_err(|_| GicError::Driver)?;
    }
    if id.is_spi() {
        gic.0.distributor().set_routing(id, Some(mpidr)).map_err(|_| GicError::Driver)?;
    }
    gic.0.set_interrupt_priority(id, Some(cpu), priority).map_err(|_| GicError::Driver)?;
    gic.0.enable_interrupt(id, Some(cpu), true).map_err(|_| GicError::Driver)
}

/// Acknowledges the highest-priority pending interrupt on this CPU.
pub fn acknowledge() -> Option<HostIrq> {
    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1)
        .and_then(|id| HostIrq::new(id.into()))
}

/// Sends the SGI that `ICC_SGI1R_EL1` value `value` describes
/// (`ferrovisor_vgic::inject::sgi1r_value`), after the memory writes before
/// it: the kick IPIs, whose receiver reads what the sender wrote.
#[inline(always)]
pub fn send_sgi_value(value: u64) {
    sysreg::write_icc_sgi1r_el1(value);
}

/// Drops the running priority of an interrupt acknowledged on this CPU
/// (ICC_EOIR1_EL1); with the split EOI mode it stays active until
/// [`deactivate`]. Written directly: it is on every exit's path.
#[inline(always)]
pub fn priority_drop(irq: HostIrq) {
    sysreg::write_icc_eoir1_el1(u64::from(irq.raw()));
}

/// Deactivates an interrupt (ICC_DIR_EL1).
pub fn deactivate(irq: HostIrq) {
    sysreg::write_icc_dir_el1(u64::from(irq.raw()));
}

/// Enables or disables `irq` (an SPI) at the distributor.
pub fn set_enabled(irq: HostIrq, enable: bool) -> Result<(), GicError> {
    let mut guard = GIC.lock();
    let gic = guard.as_mut().ok_or(GicError::NotInitialised)?;
    gic.0.enable_interrupt(intid(irq), None, enable).map_err(|_| GicError::Driver)
}

/// Routes SPI `irq` to the CPU with affinity `mpidr`.
pub fn route(irq: HostIrq, mpidr: u64) -> Result<(), GicError> {
    let mut guard = GIC.lock();
    let gic = guard.as_mut().ok_or(GicError::NotInitialised)?;
    gic.0.distributor().set_routing(intid(irq), Some(mpidr)).map_err(|_| GicError::Driver)
}

/// Configures SPI `irq` (trigger, priority, route) and leaves it disabled.
pub fn configure_spi(irq: HostIrq, edge: bool, priority: u8, mpidr: u64) -> Result<(), GicError> {
    let mut guard = GIC.lock();
    let gic = guard.as_mut().ok_or(GicError::NotInitialised)?;
    let id = intid(irq);
    if !id.is_spi() {
        return Err(GicError::Driver);
    }
    gic.0.enable_interrupt(id, None, false).map_err(|_| GicError::Driver)?;
    let trigger = if edge { Trigger::Edge } else { Trigger::Level };
    gic.0.set_trigger(id, None, trigger).map_err(|_| GicError::Driver)?;
    gic.0.set_interrupt_priority(id, None, priority).map_err(|_| GicError::Driver)?;
    gic.0.distributor().set_routing(id, Some(mpidr)).map_err(|_| GicError::Driver)
}

/// Sends SGI `sgi` (0..=15) to the CPU with affinity `mpidr`.
pub fn send_sgi(sgi: u32, mpidr: u64) -> Result<(), GicError> {
    let target = SgiTarget::List {
        affinity3: ((mpidr >> 32) & 0xff) as u8,
        affinity2: ((mpidr >> 16) & 0xff) as u8,
        affinity1: ((mpidr >> 8) & 0xff) as u8,
        target_list: 1 << (mpidr & 0xf),
    };
    GicCpuInterface::send_sgi(IntId::sgi(sgi), target, SgiTargetGroup::CurrentGroup1)
        .map_err(|_| GicError::Driver)
}
