//! One guest's forwarded interrupts: which host interrupt becomes which
//! guest interrupt. Built once from the validated config when the guest is
//! built, and the only place the hypervisor looks the mapping up: the exit
//! fast path ([`ForwardTable::guest_of`]), the slow path for an interrupt
//! taken while another guest or nobody ran, the vGIC's hardware links
//! ([`ForwardTable::link`]) and the shell's `passthrough list`.

use crate::{Vgic, VgicError};
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU16, Ordering};
use ferrovisor_types::{GuestIrq, HostIrq, IntidClass, VcpuId};

/// One forwarded interrupt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Forward {
    /// The host interrupt (an SPI of the device).
    pub host: HostIrq,
    /// The interrupt the guest sees (an SPI).
    pub guest: GuestIrq,
    /// Edge-triggered (else level-sensitive), as the host DT says.
    pub edge: bool,
    /// The pass-through it belongs to (index in the guest's config).
    pub device: usize,
}

/// Why a [`ForwardTable`] could not be built.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ForwardError {
    /// A host interrupt that is not an SPI.
    HostNotSpi(HostIrq),
    /// A guest interrupt that is not an SPI.
    GuestNotSpi(GuestIrq),
    /// The same host interrupt forwarded twice.
    HostTwice(HostIrq),
    /// Two host interrupts forwarded to the same guest interrupt.
    GuestTwice(GuestIrq),
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardError::HostNotSpi(h) => write!(f, "{h} is not a shared peripheral interrupt"),
            ForwardError::GuestNotSpi(g) => write!(f, "{g} is not a shared peripheral interrupt"),
            ForwardError::HostTwice(h) => write!(f, "{h} is forwarded twice"),
            ForwardError::GuestTwice(g) => write!(f, "two host interrupts are forwarded to {g}"),
        }
    }
}

/// A guest's forwarded interrupts, looked up by host interrupt in one
/// indexed load.
///
/// A device's interrupts can be switched off and on again
/// ([`ForwardTable::set_device`]): a device listed for the guest but given
/// to another one (`standby`, `passthrough assign`) stays in the table, off.
/// Switching happens only while none of the guest's vCPUs runs (the guest
/// is stopped, or paused for a hand-over), so the fast path's relaxed load
/// sees a settled value: entering the guest is ordered after the switch by
/// the guest's state change.
#[derive(Debug, Default)]
pub struct ForwardTable {
    /// Guest INTID by host INTID (index); 0: not forwarded to this guest
    /// (now).
    by_host: Vec<AtomicU16>,
    /// The forwards, in config order, switched on or off.
    forwards: Vec<Forward>,
}

impl PartialEq for ForwardTable {
    fn eq(&self, other: &Self) -> bool {
        self.forwards == other.forwards && self.on().eq(other.on())
    }
}

impl Eq for ForwardTable {}

impl ForwardTable {
    /// A table with no forwarded interrupt.
    pub const fn empty() -> Self {
        Self { by_host: Vec::new(), forwards: Vec::new() }
    }

    /// The table for `forwards`, every one on: SPIs on both sides, each
    /// host interrupt and each guest interrupt at most once (the
    /// validator's rules, checked again here because the fast path relies
    /// on them).
    pub fn new(forwards: impl IntoIterator<Item = Forward>) -> Result<Self, ForwardError> {
        let forwards: Vec<Forward> = forwards.into_iter().collect();
        for (i, f) in forwards.iter().enumerate() {
            if f.host.class() != IntidClass::Spi {
                return Err(ForwardError::HostNotSpi(f.host));
            }
            if f.guest.class() != IntidClass::Spi {
                return Err(ForwardError::GuestNotSpi(f.guest));
            }
            let earlier = forwards.get(..i).unwrap_or(&[]);
            if earlier.iter().any(|e| e.host == f.host) {
                return Err(ForwardError::HostTwice(f.host));
            }
            if earlier.iter().any(|e| e.guest == f.guest) {
                return Err(ForwardError::GuestTwice(f.guest));
            }
        }
        let len = forwards.iter().map(|f| f.host.raw() as usize + 1).max().unwrap_or(0);
        let table = Self { by_host: (0..len).map(|_| AtomicU16::new(0)).collect(), forwards };
        for f in &table.forwards {
            table.switch(f, true);
        }
        Ok(table)
    }

    fn switch(&self, f: &Forward, on: bool) {
        // SPIs are below 1020: both fit.
        if let (Some(slot), Ok(guest)) =
            (self.by_host.get(f.host.raw() as usize), u16::try_from(f.guest.raw()))
        {
            slot.store(if on { guest } else { 0 }, Ordering::Release);
        }
    }

    /// Switches the interrupts of pass-through `device` on (forwarded to
    /// this guest) or off (not this guest's now). Only while none of the
    /// guest's vCPUs runs (see the type's notes).
    pub fn set_device(&self, device: usize, on: bool) {
        for f in self.forwards.iter().filter(|f| f.device == device) {
            self.switch(f, on);
        }
    }

    /// Whether `f` is forwarded to this guest now.
    pub fn is_on(&self, f: &Forward) -> bool {
        self.guest_of(f.host) == Some(f.guest)
    }

    /// The guest interrupt host interrupt `host` is forwarded to, if it is
    /// this guest's now.
    #[inline(always)]
    pub fn guest_of(&self, host: HostIrq) -> Option<GuestIrq> {
        match self.by_host.get(host.raw() as usize).map(|g| g.load(Ordering::Relaxed)) {
            Some(g) if g != 0 => GuestIrq::new(u32::from(g)),
            _ => None,
        }
    }

    /// Every forward of the guest's config, on or off, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Forward> + '_ {
        self.forwards.iter()
    }

    /// The forwards that are on, in config order.
    pub fn on(&self) -> impl Iterator<Item = &Forward> + '_ {
        self.forwards.iter().filter(|f| self.is_on(f))
    }

    /// Whether no interrupt is forwarded.
    pub fn is_empty(&self) -> bool {
        self.forwards.is_empty()
    }

    /// Backs each guest interrupt that is on by its host interrupt in
    /// `vgic` (HW=1 list registers: the guest's deactivation deactivates
    /// the host's).
    pub fn link(&self, vgic: &mut Vgic) -> Result<(), VgicError> {
        for f in self.on() {
            vgic.link_hw(f.guest, VcpuId::of::<0>(), f.host)?;
        }
        Ok(())
    }

    /// Removes the hardware links of pass-through `device`'s interrupts
    /// from `vgic` (the device left the guest): the guest's enables and
    /// deactivations no longer reach the host interrupts.
    pub fn unlink_device(&self, device: usize, vgic: &mut Vgic) {
        for f in self.forwards.iter().filter(|f| f.device == device) {
            vgic.unlink_hw(f.guest, VcpuId::of::<0>());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VgicConfig;
    use ferrovisor_types::GuestPhysAddr;

    fn fwd(host: u32, guest: u32) -> Forward {
        Forward {
            host: HostIrq::new(host).unwrap(),
            guest: GuestIrq::new(guest).unwrap(),
            edge: false,
            device: 0,
        }
    }

    #[test]
    fn looks_up_exactly_the_forwarded_interrupts() {
        let t = ForwardTable::new([fwd(40, 33), fwd(79, 100)]).unwrap();
        assert_eq!(t.guest_of(HostIrq::of::<40>()), Some(GuestIrq::of::<33>()));
        assert_eq!(t.guest_of(HostIrq::of::<79>()), Some(GuestIrq::of::<100>()));
        for other in [0, 27, 32, 41, 78, 80, 1019] {
            assert_eq!(t.guest_of(HostIrq::new(other).unwrap()), None, "{other}");
        }
        assert_eq!(t.iter().count(), 2);
        assert!(ForwardTable::empty().guest_of(HostIrq::of::<40>()).is_none());
    }

    #[test]
    fn refuses_what_the_fast_path_could_not_handle() {
        assert_eq!(ForwardTable::new([fwd(27, 33)]), Err(ForwardError::HostNotSpi(HostIrq::of::<27>())));
        assert_eq!(ForwardTable::new([fwd(40, 16)]), Err(ForwardError::GuestNotSpi(GuestIrq::of::<16>())));
        assert_eq!(
            ForwardTable::new([fwd(40, 33), fwd(40, 34)]),
            Err(ForwardError::HostTwice(HostIrq::of::<40>()))
        );
        assert_eq!(
            ForwardTable::new([fwd(40, 33), fwd(41, 33)]),
            Err(ForwardError::GuestTwice(GuestIrq::of::<33>()))
        );
    }

    #[test]
    fn links_every_guest_interrupt_to_its_host_interrupt() {
        let cfg = VgicConfig {
            vcpus: 1,
            spis: 64,
            dist_base: GuestPhysAddr(0x0800_0000),
            redist_base: GuestPhysAddr(0x080a_0000),
        };
        let mut vgic = Vgic::new(cfg).unwrap();
        ForwardTable::new([fwd(40, 33), fwd(79, 95)]).unwrap().link(&mut vgic).unwrap();
        assert_eq!(
            vgic.irq_info(GuestIrq::new(33).unwrap(), VcpuId::of::<0>()).unwrap().hw,
            HostIrq::new(40)
        );
        assert_eq!(
            vgic.irq_info(GuestIrq::new(95).unwrap(), VcpuId::of::<0>()).unwrap().hw,
            HostIrq::new(79)
        );
        assert_eq!(vgic.irq_info(GuestIrq::new(34).unwrap(), VcpuId::of::<0>()).unwrap().hw, None);
        // A device switched off is neither looked up nor linked.
        let t = ForwardTable::new([fwd(40, 33), Forward { device: 1, ..fwd(79, 95) }]).unwrap();
        t.set_device(1, false);
        assert_eq!(t.guest_of(HostIrq::of::<79>()), None);
        assert_eq!(t.on().count(), 1);
        assert_eq!(t.iter().count(), 2);
        t.unlink_device(1, &mut vgic);
        assert_eq!(vgic.irq_info(GuestIrq::new(95).unwrap(), VcpuId::of::<0>()).unwrap().hw, None);
        let mut fresh = Vgic::new(cfg).unwrap();
        t.link(&mut fresh).unwrap();
        assert_eq!(fresh.irq_info(GuestIrq::new(95).unwrap(), VcpuId::of::<0>()).unwrap().hw, None);
        assert_eq!(
            fresh.irq_info(GuestIrq::new(33).unwrap(), VcpuId::of::<0>()).unwrap().hw,
            HostIrq::new(40)
        );
        // And on again.
        t.set_device(1, true);
        assert_eq!(t.guest_of(HostIrq::of::<79>()), Some(GuestIrq::of::<95>()));
        assert!(t.is_on(&Forward { device: 1, ..fwd(79, 95) }));
        // A guest interrupt beyond the vGIC's SPIs is refused, not ignored.
        let beyond = ForwardTable::new([fwd(40, 200)]).unwrap();
        assert!(beyond.link(&mut vgic).is_err());
    }
}
