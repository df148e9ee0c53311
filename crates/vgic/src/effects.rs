//! Side effects of a vGIC operation that the hypervisor must carry out.

use alloc::vec::Vec;
use ferrovisor_types::{HostIrq, VcpuId};

/// One thing the hypervisor must do after a vGIC call returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Effect {
    /// An interrupt became deliverable to (or its list-register state must be
    /// refreshed on) vCPU `vcpu`: if that vCPU is running, IPI its pCPU so it
    /// exits and goes through [`crate::Vgic::sync_lrs`] /
    /// [`crate::Vgic::flush_lrs`]; if it sleeps in WFI, wake it.
    Kick {
        /// The vCPU to kick.
        vcpu: VcpuId,
    },
    /// The guest enabled (`enable`) or disabled a HW-linked interrupt: mirror
    /// it on the physical GIC for `pintid`.
    HwEnable {
        /// Physical INTID.
        pintid: HostIrq,
        /// New enable state.
        enable: bool,
    },
    /// The guest changed the priority of a HW-linked interrupt (already
    /// masked to the 5 implemented bits).
    HwPriority {
        /// Physical INTID.
        pintid: HostIrq,
        /// New priority.
        priority: u8,
    },
    /// A HW-linked SPI is now routed to vCPU `vcpu`: route the physical SPI
    /// to the pCPU that runs it.
    HwRoute {
        /// Physical INTID.
        pintid: HostIrq,
        /// Target vCPU.
        vcpu: VcpuId,
    },
    /// The guest changed the trigger mode of a HW-linked interrupt. The
    /// hypervisor may refuse to mirror it (the physical trigger mode is a
    /// property of the board); the virtual configuration changes regardless.
    HwConfig {
        /// Physical INTID.
        pintid: HostIrq,
        /// `true` for edge-triggered, `false` for level-sensitive.
        edge: bool,
    },
    /// The guest discarded (GICx_ICPENDR / GICx_ICACTIVER) the state of a
    /// HW-linked interrupt whose physical INTID the hypervisor left active:
    /// the guest will never deactivate it through a list register, so the
    /// hypervisor must deactivate `pintid` itself (GICD_ICACTIVER or
    /// GICR_ICACTIVER0 on the physical GIC; harmless if already inactive).
    HwDeactivate {
        /// Physical INTID.
        pintid: HostIrq,
    },
}

/// Effects kept inline before the list spills to the heap: enough for every
/// common operation (an injection, an SGI, one register write), so the hot
/// paths never allocate.
const INLINE: usize = 4;

/// A small list of [`Effect`]s that the caller drains after each call.
///
/// Kicks are de-duplicated; the other effects keep their order. The first
/// [`INLINE`] effects live in the value itself, the rest (a write touching
/// many HW-linked interrupts at once) in a vector.
#[derive(Clone, Debug)]
pub struct Effects {
    head: [Effect; INLINE],
    len: usize,
    rest: Vec<Effect>,
}

impl Default for Effects {
    fn default() -> Self {
        Self::new()
    }
}

impl Effects {
    /// An empty list.
    pub const fn new() -> Self {
        Self { head: [Effect::Kick { vcpu: VcpuId::of::<0>() }; INLINE], len: 0, rest: Vec::new() }
    }

    /// Appends `e` (a [`Effect::Kick`] already in the list is not repeated).
    pub fn push(&mut self, e: Effect) {
        if matches!(e, Effect::Kick { .. }) && self.contains(&e) {
            return;
        }
        match self.head.get_mut(self.len) {
            Some(slot) => {
                *slot = e;
                self.len += 1;
            }
            None => self.rest.push(e),
        }
    }

    /// Kicks vCPU `vcpu` (an index the vGIC checked).
    pub(crate) fn kick(&mut self, vcpu: usize) {
        if let Some(vcpu) = VcpuId::new(vcpu) {
            self.push(Effect::Kick { vcpu });
        }
    }

    /// The effects collected so far, oldest first, as a vector.
    pub fn to_vec(&self) -> Vec<Effect> {
        self.iter().copied().collect()
    }

    /// Iterates over the effects, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Effect> + '_ {
        self.head.iter().take(self.len).chain(self.rest.iter())
    }

    /// Removes and yields every effect, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = Effect> + '_ {
        let n = core::mem::take(&mut self.len);
        self.head.iter().take(n).copied().chain(self.rest.drain(..))
    }

    /// Forgets every effect.
    pub fn clear(&mut self) {
        self.len = 0;
        self.rest.clear();
    }

    /// Number of effects.
    pub fn len(&self) -> usize {
        self.len + self.rest.len()
    }

    /// Whether there is no effect.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `e` is in the list.
    pub fn contains(&self, e: &Effect) -> bool {
        self.iter().any(|x| x == e)
    }
}

impl PartialEq for Effects {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
