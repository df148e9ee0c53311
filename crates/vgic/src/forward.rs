//! One guest's forwarded interrupts: which host interrupt becomes which
//! guest interrupt. Built once from the validated config when the guest is
//! built, and the only place the hypervisor looks the mapping up: the exit
//! fast path ([`ForwardTable::guest_of`]), the slow path for an interrupt
//! taken while another guest or nobody ran, the vGIC's hardware links
//! ([`ForwardTable::link`]) and the shell's `passthrough list`.

use crate::{Vgic, VgicError};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardTable {
    /// Guest INTID by host INTID (index); 0: not forwarded to this guest.
    by_host: Vec<u16>,
    /// The forwards, in config order.
    forwards: Vec<Forward>,
}

impl ForwardTable {
    /// A table with no forwarded interrupt.
    pub const fn empty() -> Self {
        Self { by_host: Vec::new(), forwards: Vec::new() }
    }

    /// The table for `forwards`: SPIs on both sides, each host interrupt
    /// and each guest interrupt at most once (the validator's rules, checked
    /// again here because the fast path relies on them).
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
        let mut by_host = vec![0u16; len];
        for f in &forwards {
            // SPIs are below 1020: both fit.
            if let (Some(slot), Ok(guest)) =
                (by_host.get_mut(f.host.raw() as usize), u16::try_from(f.guest.raw()))
            {
                *slot = guest;
            }
        }
        Ok(Self { by_host, forwards })
    }

    /// The guest interrupt host interrupt `host` is forwarded to, if this
    /// guest's.
    #[inline(always)]
    pub fn guest_of(&self, host: HostIrq) -> Option<GuestIrq> {
        match self.by_host.get(host.raw() as usize) {
            Some(&g) if g != 0 => GuestIrq::new(u32::from(g)),
            _ => None,
        }
    }

    /// The forwards, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Forward> + '_ {
        self.forwards.iter()
    }

    /// Whether no interrupt is forwarded.
    pub fn is_empty(&self) -> bool {
        self.forwards.is_empty()
    }

    /// Backs each guest interrupt by its host interrupt in `vgic` (HW=1
    /// list registers: the guest's deactivation deactivates the host's).
    pub fn link(&self, vgic: &mut Vgic) -> Result<(), VgicError> {
        for f in &self.forwards {
            vgic.link_hw(f.guest, VcpuId::of::<0>(), f.host)?;
        }
        Ok(())
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
        // A guest interrupt beyond the vGIC's SPIs is refused, not ignored.
        let beyond = ForwardTable::new([fwd(40, 200)]).unwrap();
        assert!(beyond.link(&mut vgic).is_err());
    }
}
