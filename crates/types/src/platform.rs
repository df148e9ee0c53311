//! Numbers of the virtual platform every guest sees (QEMU virt's GICv3,
//! timers and PL011), defined once for the crates that model, describe or
//! emulate them (vgic, guestboot, vdev, config) and the hypervisor.

/// Size of the GICv3 distributor frame.
pub const GICD_SIZE: u64 = 0x1_0000;
/// Distance between two vCPUs' redistributors (RD_base + SGI_base frames).
pub const GICR_STRIDE: u64 = 0x2_0000;
/// The architected timer PPIs (INTIDs), in the order of the `arm,armv8-timer`
/// binding: secure physical, non-secure physical, virtual, hypervisor
/// physical.
pub const TIMER_PPIS: [u32; 4] = [29, 30, VTIMER_INTID, 26];
/// The virtual timer's PPI, which guests use.
pub const VTIMER_INTID: u32 = 27;
/// The GICv3 maintenance interrupt's PPI.
pub const MAINTENANCE_INTID: u32 = 25;
/// Size of a PL011 register window (emulated or passed through).
pub const PL011_WINDOW: u64 = 0x1000;
