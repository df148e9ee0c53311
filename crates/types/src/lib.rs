//! Typed addresses, sizes and interrupt numbers shared by every ferrovisor crate.
//!
//! A host physical address is never a guest physical address, and a host
//! interrupt is never a guest interrupt: each has its own type, so that the
//! compiler refuses to mix them. Conversions between them happen only where a
//! mapping is known (stage-2 tables, the interrupt routing table).
#![no_std]
#![forbid(unsafe_code)]

pub mod platform;

use core::fmt;

macro_rules! addr_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw address value.
            pub const fn raw(self) -> u64 {
                self.0
            }

            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }

            /// The address `offset` bytes further on, or `None` on overflow.
            pub const fn checked_add(self, offset: u64) -> Option<Self> {
                match self.0.checked_add(offset) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{:#x}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

addr_type!(
    /// A physical address on the host (what the hypervisor's MMU and the
    /// devices see).
    HostPhysAddr,
    "HPA:"
);
addr_type!(
    /// A physical address as one guest sees it (input of its stage-2 tables).
    GuestPhysAddr,
    "GPA:"
);

macro_rules! irq_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        pub struct $name(u32);

        impl $name {
            /// The largest INTID this type holds: the last SPI.
            pub const LAST: u32 = 1019;

            /// INTID `raw` if it names an interrupt (an SGI, PPI or SPI,
            /// `0..=1019`); None for the special INTIDs (1020..=1023, e.g.
            /// 1023, "spurious") and anything beyond.
            pub const fn new(raw: u32) -> Option<Self> {
                if raw <= Self::LAST {
                    Some(Self(raw))
                } else {
                    None
                }
            }

            /// INTID `RAW`, checked when the program is compiled (for
            /// constants: `HostIrq::of::<27>()`).
            pub const fn of<const RAW: u32>() -> Self {
                const { assert!(RAW <= 1019, "not an SGI, PPI or SPI") };
                Self(RAW)
            }

            /// The raw GIC interrupt ID.
            pub const fn raw(self) -> u32 {
                self.0
            }

            /// The class of this interrupt ID in the GICv3 numbering.
            pub const fn class(self) -> IntidClass {
                IntidClass::of(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

irq_type!(
    /// A physical GIC interrupt ID (INTID) on the host.
    HostIrq,
    "host-intid "
);
irq_type!(
    /// A virtual GIC interrupt ID as one guest sees it.
    GuestIrq,
    "guest-intid "
);

/// The ranges of the GICv3 interrupt ID space.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IntidClass {
    /// Software-generated interrupts, 0..=15.
    Sgi,
    /// Private peripheral interrupts, 16..=31.
    Ppi,
    /// Shared peripheral interrupts, 32..=1019.
    Spi,
    /// Special interrupt IDs, 1020..=1023.
    Special,
    /// Extended or LPI range, or otherwise reserved (1024 and above).
    Other,
}

impl IntidClass {
    /// Classifies a raw INTID.
    pub const fn of(intid: u32) -> Self {
        match intid {
            0..=15 => IntidClass::Sgi,
            16..=31 => IntidClass::Ppi,
            32..=1019 => IntidClass::Spi,
            1020..=1023 => IntidClass::Special,
            _ => IntidClass::Other,
        }
    }
}

/// A half-open physical address range `[base, base + size)` on the host.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HostRegion {
    /// First byte of the range.
    pub base: HostPhysAddr,
    /// Length in bytes.
    pub size: u64,
}

impl HostRegion {
    /// Creates a region.
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base: HostPhysAddr(base), size }
    }

    /// One past the last byte, saturating at `u64::MAX`.
    pub const fn end(&self) -> u64 {
        self.base.0.saturating_add(self.size)
    }

    /// Whether two regions share at least one byte.
    pub const fn overlaps(&self, other: &HostRegion) -> bool {
        self.base.0 < other.end() && other.base.0 < self.end()
    }

    /// Whether `addr` lies inside the region.
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.base.0 && addr < self.end()
    }
}

/// A hardware CPU identity: the affinity fields of MPIDR_EL1 (Aff3..Aff0).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Mpidr(pub u64);

macro_rules! index_type {
    ($(#[$doc:meta])* $name:ident, $limit:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
        pub struct $name(u8);

        impl $name {
            /// How many indices the type can hold (`0..LIMIT`).
            pub const LIMIT: usize = $limit;

            /// Index `index`, if below [`Self::LIMIT`].
            pub const fn new(index: usize) -> Option<Self> {
                if index < Self::LIMIT {
                    // LIMIT fits in u8.
                    Some(Self(index as u8))
                } else {
                    None
                }
            }

            /// Index `N`, checked when the program is compiled.
            pub const fn of<const N: usize>() -> Self {
                const { assert!(N < $limit, concat!("index beyond ", $what)) };
                Self(N as u8)
            }

            /// The index, for tables.
            pub const fn index(self) -> usize {
                self.0 as usize
            }

            /// The index as a one-bit mask (bit `index`).
            pub const fn bit(self) -> u32 {
                1 << self.0
            }

            /// Every index below `count` (and below the limit), in order.
            pub fn all(count: usize) -> impl Iterator<Item = Self> {
                (0..count.min(Self::LIMIT)).map(|i| Self(i as u8))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

index_type!(
    /// Index of a physical CPU as the hypervisor numbers them (0 = boot
    /// CPU, then host DT order).
    PcpuId,
    8,
    "the physical CPUs the hypervisor serves"
);
index_type!(
    /// Index of a virtual CPU inside its guest; also Aff0 of its virtual
    /// MPIDR, so at most 16 (no affinity range selectors needed).
    VcpuId,
    16,
    "the 16 vCPUs a guest's vGIC can address"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_overlap_only_when_they_share_bytes() {
        let a = HostRegion::new(0x1000, 0x1000);
        assert!(a.overlaps(&HostRegion::new(0x1fff, 1)));
        assert!(!a.overlaps(&HostRegion::new(0x2000, 0x1000)));
        assert!(!a.overlaps(&HostRegion::new(0x0, 0x1000)));
        assert!(a.contains(0x1fff) && !a.contains(0x2000));
    }

    #[test]
    fn intid_classes() {
        assert_eq!(HostIrq::of::<15>().class(), IntidClass::Sgi);
        assert_eq!(GuestIrq::of::<27>().class(), IntidClass::Ppi);
        assert_eq!(HostIrq::of::<34>().class(), IntidClass::Spi);
        assert_eq!(IntidClass::of(1023), IntidClass::Special);
        assert_eq!(IntidClass::of(8192), IntidClass::Other);
    }

    #[test]
    fn interrupt_ids_are_checked() {
        assert_eq!(HostIrq::new(1019).map(HostIrq::raw), Some(1019));
        assert_eq!(HostIrq::new(1020), None, "special INTIDs are no interrupt");
        assert_eq!(HostIrq::new(1023), None, "spurious");
        assert_eq!(GuestIrq::new(u32::MAX), None);
        assert_eq!(GuestIrq::new(0).map(GuestIrq::raw), Some(0));
    }

    #[test]
    fn cpu_indices_are_checked() {
        assert_eq!(VcpuId::new(15).map(VcpuId::index), Some(15));
        assert_eq!(VcpuId::new(16), None);
        assert_eq!(PcpuId::new(PcpuId::LIMIT), None);
        assert_eq!(VcpuId::of::<3>().bit(), 8);
        assert_eq!(VcpuId::all(40).count(), VcpuId::LIMIT);
        let mut two = PcpuId::all(2).map(PcpuId::index);
        assert_eq!((two.next(), two.next(), two.next()), (Some(0), Some(1), None));
    }

    #[test]
    fn alignment_and_overflow() {
        assert!(GuestPhysAddr(0x4000_0000).is_aligned(0x20_0000));
        assert!(!HostPhysAddr(0x4000_0800).is_aligned(0x1000));
        assert_eq!(HostPhysAddr(u64::MAX).checked_add(1), None);
        assert_eq!(HostRegion::new(u64::MAX - 1, 16).end(), u64::MAX);
    }
}
