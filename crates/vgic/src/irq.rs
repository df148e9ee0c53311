//! Per-interrupt state of the virtual distributor and redistributors.

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
    /// Last known LR pending bit.
    pub pending: bool,
    /// Last known LR active bit.
    pub active: bool,
    /// The LR was written with HW=1 (physical deactivation on EOI).
    pub hw: bool,
    /// Level-sensitive interrupt: the LR pending bit came from the software
    /// latch (GICx_ISPENDR), not only from the line.
    pub from_latch: bool,
    /// The guest wrote GICx_ICPENDR: clear the LR pending bit.
    pub clear_pending: bool,
    /// The guest wrote GICx_ICACTIVER: clear the LR active bit.
    pub clear_active: bool,
    /// Scratch flag of a reconcile pass: an LR holding it was found.
    pub seen: bool,
}

/// State of one SGI, PPI or SPI.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Irq {
    /// GICx_ISENABLER state.
    pub enabled: bool,
    /// Pending state not (yet) transferred to a list register: the edge
    /// latch, or the software pending bit of a level-sensitive interrupt.
    pub latch: bool,
    /// Input line level (level-sensitive emulated devices).
    pub line: bool,
    /// Active state held outside any list register (set by GICx_ISACTIVER).
    pub active: bool,
    /// Group 1 (`true`) or group 0.
    pub group1: bool,
    /// Edge-triggered (`true`) or level-sensitive.
    pub edge: bool,
    /// Priority, low 3 bits always 0.
    pub priority: u8,
    /// Physical INTID backing this interrupt.
    pub hw: Option<u32>,
    /// The physical INTID fired and was left active by the hypervisor: the
    /// guest's deactivation (through an LR with HW=1) must reach it.
    pub hw_active: bool,
    /// The physical INTID fired again while the model still counts it in a
    /// list register with HW=1: that LR's completion (the guest's
    /// deactivation, which is what let the physical interrupt fire again)
    /// must not forget this new activation.
    pub hw_refired: bool,
    /// The list register holding it, if any.
    pub lr: Option<LrSlot>,
}

/// Implemented priority bits (5, like most hardware): the low 3 read as 0.
pub(crate) const PRIORITY_MASK: u8 = 0xf8;

impl Irq {
    /// Reset state of INTID `intid`.
    pub const fn reset(intid: u32) -> Self {
        Self {
            enabled: false,
            latch: false,
            line: false,
            active: false,
            group1: true,
            edge: intid < 16,
            priority: 0,
            hw: None,
            hw_active: false,
            hw_refired: false,
            lr: None,
        }
    }

    /// Level-sensitive with a software-modelled line (HW-linked interrupts
    /// keep their level at the physical GIC, so the model treats them as
    /// edges: one injection per physical activation).
    pub const fn level_sw(&self) -> bool {
        !self.edge && self.hw.is_none()
    }

    /// It left its list register, completed by the guest (`hw`: that LR
    /// had HW=1, so the physical activation is over too, unless the
    /// physical interrupt fired again meanwhile).
    pub(crate) fn leave_lr(&mut self, hw: bool) {
        if hw {
            self.hw_active = core::mem::take(&mut self.hw_refired);
        }
        self.lr = None;
    }

    /// Pending outside any list register.
    pub const fn pending(&self) -> bool {
        self.latch || (self.level_sw() && self.line)
    }

    /// Pending as the guest reads it (GICx_ISPENDR).
    pub fn pending_view(&self) -> bool {
        self.pending() || self.lr.is_some_and(|s| s.pending)
    }

    /// Active as the guest reads it (GICx_ISACTIVER).
    pub fn active_view(&self) -> bool {
        self.active || self.lr.is_some_and(|s| s.active)
    }
}
