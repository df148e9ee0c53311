//! Per-interrupt state of the virtual distributor and redistributors.

use ferrovisor_types::HostIrq;

/// Boolean state packed into one byte, read and written through named
/// accessors: the injection fast path tests several flags with one load
/// and one compare ([`Irq::quiet_and_enabled`]).
macro_rules! flags {
    ($ty:ident { $($(#[$doc:meta])* $get:ident, $set:ident = $bit:expr;)* }) => {
        impl $ty {
            $(
                $(#[$doc])*
                #[inline(always)]
                pub const fn $get(&self) -> bool {
                    self.bits & $bit != 0
                }
                #[inline(always)]
                pub fn $set(&mut self, on: bool) {
                    if on {
                        self.bits |= $bit;
                    } else {
                        self.bits &= !$bit;
                    }
                }
            )*
        }
    };
}

/// Where an interrupt sits while a list register of vCPU `vcpu` holds it.
///
/// The list register is authoritative for the pending and active state
/// while the interrupt is loaded; `pending` and `active` are the last values
/// seen (by a flush or a sync), and `clear_*` are requests the next flush
/// applies to the list register.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct LrSlot {
    /// The vCPU whose list registers hold the interrupt.
    pub vcpu: usize,
    bits: u8,
}

flags!(LrSlot {
    /// Last known LR pending bit.
    pending, set_pending = 1 << 0;
    /// Last known LR active bit.
    active, set_active = 1 << 1;
    /// The LR was written with HW=1 (physical deactivation on EOI).
    hw, set_hw = 1 << 2;
    /// Level-sensitive interrupt: the LR pending bit came from the software
    /// latch (GICx_ISPENDR), not only from the line.
    latched, set_latched = 1 << 3;
    /// The guest wrote GICx_ICPENDR: clear the LR pending bit.
    clear_pending, set_clear_pending = 1 << 4;
    /// The guest wrote GICx_ICACTIVER: clear the LR active bit.
    clear_active, set_clear_active = 1 << 5;
    /// Scratch flag of a reconcile pass: an LR holding it was found.
    seen, set_seen = 1 << 6;
});

impl LrSlot {
    /// A slot of `vcpu` with no flag set.
    pub const fn new(vcpu: usize) -> Self {
        Self { vcpu, bits: 0 }
    }
}

/// State of one SGI, PPI or SPI.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Irq {
    bits: u8,
    /// Priority, low 3 bits always 0.
    pub priority: u8,
    /// SPIs: the vCPU `GICD_IROUTER` designates, decoded when the guest
    /// writes it (`NO_TARGET`: none), so injection needs no decoding.
    /// Unused for SGIs and PPIs (their bank's vCPU is the target).
    pub target: u8,
    /// Physical INTID backing this interrupt.
    pub hw: Option<HostIrq>,
    /// The list register holding it, if any.
    pub lr: Option<LrSlot>,
}

const ENABLED: u8 = 1 << 0;
const LATCH: u8 = 1 << 1;
const LINE: u8 = 1 << 2;
const ACTIVE: u8 = 1 << 3;
const GROUP1: u8 = 1 << 4;
const EDGE: u8 = 1 << 5;
const HW_ACTIVE: u8 = 1 << 6;
const HW_REFIRED: u8 = 1 << 7;

flags!(Irq {
    /// GICx_ISENABLER state.
    enabled, set_enabled = ENABLED;
    /// Pending state not (yet) transferred to a list register: the edge
    /// latch, or the software pending bit of a level-sensitive interrupt.
    latch, set_latch = LATCH;
    /// Input line level (level-sensitive emulated devices).
    line, set_line = LINE;
    /// Active state held outside any list register (set by GICx_ISACTIVER).
    active, set_active = ACTIVE;
    /// Group 1 (`true`) or group 0.
    group1, set_group1 = GROUP1;
    /// Edge-triggered (`true`) or level-sensitive.
    edge, set_edge = EDGE;
    /// The physical INTID fired and was left active by the hypervisor: the
    /// guest's deactivation (through an LR with HW=1) must reach it.
    hw_active, set_hw_active = HW_ACTIVE;
    /// The physical INTID fired again while the model still counts it in a
    /// list register with HW=1: that LR's completion (the guest's
    /// deactivation, which is what let the physical interrupt fire again)
    /// must not forget this new activation.
    hw_refired, set_hw_refired = HW_REFIRED;
});

/// Implemented priority bits (5, like most hardware): the low 3 read as 0.
pub(crate) const PRIORITY_MASK: u8 = 0xf8;

impl Irq {
    /// Reset state of INTID `intid`.
    pub const fn reset(intid: u32) -> Self {
        let edge = if intid < 16 { EDGE } else { 0 };
        Self { bits: GROUP1 | edge, priority: 0, target: 0, hw: None, lr: None }
    }

    /// Enabled, in no list register, and nothing pending or active about it
    /// (no latch, line low, not active, no physical activation behind it):
    /// what an interrupt must be for a fresh edge to go straight into a
    /// list register. One load and one compare.
    #[inline(always)]
    pub const fn quiet_and_enabled(&self) -> bool {
        self.bits & (ENABLED | LATCH | LINE | ACTIVE | HW_ACTIVE) == ENABLED && self.lr.is_none()
    }

    /// Enabled, with no state outside its list register (not pending
    /// again, no line, not active outside it, no HW activation).
    pub const fn in_lr_and_enabled(&self) -> bool {
        self.bits & (ENABLED | LATCH | LINE | ACTIVE | HW_ACTIVE) == ENABLED && self.lr.is_some()
    }

    /// Level-sensitive with a software-modelled line (HW-linked interrupts
    /// keep their level at the physical GIC, so the model treats them as
    /// edges: one injection per physical activation).
    pub const fn level_sw(&self) -> bool {
        !self.edge() && self.hw.is_none()
    }

    /// It left its list register, completed by the guest (`hw`: that LR
    /// had HW=1, so the physical activation is over too, unless the
    /// physical interrupt fired again meanwhile).
    pub(crate) fn leave_lr(&mut self, hw: bool) {
        if hw {
            let refired = self.hw_refired();
            self.set_hw_active(refired);
            self.set_hw_refired(false);
        }
        self.lr = None;
    }

    /// Pending outside any list register.
    pub const fn pending(&self) -> bool {
        self.latch() || (self.level_sw() && self.line())
    }

    /// Pending as the guest reads it (GICx_ISPENDR).
    pub fn pending_view(&self) -> bool {
        self.pending() || self.lr.is_some_and(|s| s.pending())
    }

    /// Active as the guest reads it (GICx_ISACTIVER).
    pub fn active_view(&self) -> bool {
        self.active() || self.lr.is_some_and(|s| s.active())
    }
}
