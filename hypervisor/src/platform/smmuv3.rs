//! The SMMUv3 driver (QEMU virt's `iommu=smmuv3`, in front of PCIe): the
//! stream table, the command queue and the event queue, in hypervisor heap
//! memory the SMMU reads and writes directly (identity-mapped, coherent:
//! the host DT says `dma-coherent`). The formats are `ferrovisor_smmu`'s;
//! this file only moves them in and out of the device.
//!
//! At boot every stream is left invalid (`ste::unassigned`): a DMA from any
//! device behind the SMMU aborts and is recorded as an event with its
//! stream ID, until a guest is given the device. Streams beyond the table
//! (IDs of 256 and more: PCIe buses other than 0) abort too
//! (`C_BAD_STREAMID`). While the SMMU is disabled (before and during
//! setup) its global bypass is set to abort.

use alloc::boxed::Box;
use ferrovisor_smmu::cmd::Command;
use ferrovisor_smmu::event::{self, Event};
use ferrovisor_smmu::queue::{self, Queue};
use ferrovisor_smmu::regs::{self, Features};
use ferrovisor_smmu::ste::{self, Ste};
use ferrovisor_types::HostRegion;

use super::mmio::MmioWindow;
use crate::arch::aarch64::{mmu, timer};
use aarch64_cpu::asm::barrier;

/// log2 of the stream table's entries: PCIe bus 0 (requester IDs 0..=255).
pub const STREAM_LOG2: u32 = 8;
const STREAMS: usize = 1 << STREAM_LOG2;
/// log2 of the command queue's entries (256 x 16 bytes: one page).
const CMDQ_LOG2: u32 = 8;
/// log2 of the event queue's entries (128 x 32 bytes: one page).
const EVENTQ_LOG2: u32 = 7;

/// The linear stream table (16 KiB, aligned to its size).
#[repr(C, align(16384))]
struct StreamTable([Ste; STREAMS]);
/// The command queue (aligned to its size).
#[repr(C, align(4096))]
struct CommandQueue([[u64; 2]; 1 << CMDQ_LOG2]);
/// The event queue (aligned to its size).
#[repr(C, align(4096))]
struct EventQueue([[u64; 4]; 1 << EVENTQ_LOG2]);

/// Why the SMMU could not be set up.
#[derive(Debug)]
pub enum SmmuError {
    /// Its registers are not where the hypervisor can reach them.
    NotMapped(HostRegion),
    /// Its features do not allow ferrovisor's use.
    Unusable(&'static str),
    /// It did not acknowledge a control register write in time.
    NoAck(&'static str),
    /// Its queues are smaller than the driver's.
    SmallQueues,
    /// A command failed (the reason from CMDQ_CONS.ERR).
    Command(&'static str),
}

impl core::fmt::Display for SmmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SmmuError::NotMapped(r) => {
                write!(f, "registers {}+{:#x} are outside the hypervisor's device map", r.base, r.size)
            }
            SmmuError::Unusable(why) => write!(f, "unusable: {why}"),
            SmmuError::NoAck(what) => write!(f, "{what} was not acknowledged within 10 ms"),
            SmmuError::SmallQueues => {
                write!(f, "its command or event queue is smaller than the driver needs")
            }
            SmmuError::Command(why) => write!(f, "command queue error: {why}"),
        }
    }
}

/// One SMMUv3, set up and enabled.
pub struct Smmu {
    regs: MmioWindow,
    /// What its ID registers say.
    pub features: Features,
    streams: Box<StreamTable>,
    cmdq: Box<CommandQueue>,
    cmd_prod: u32,
    events: Box<EventQueue>,
}

/// Waits up to 10 ms for `done`.
fn wait(mut done: impl FnMut() -> bool) -> bool {
    let deadline = timer::now() + timer::frequency() / 100;
    while !done() {
        if timer::now() > deadline {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

impl Smmu {
    /// Sets up the SMMU whose registers are `region` and enables it with
    /// every stream aborting.
    pub fn init(region: HostRegion) -> Result<Self, SmmuError> {
        let size = regs::WINDOW as u64;
        if region.size < size || !mmu::is_device_memory(region.base.raw(), size) {
            return Err(SmmuError::NotMapped(region));
        }
        // SAFETY: the window lies in the EL2 device map (checked above) and
        // the host DT gives it to the SMMU, which only this driver uses.
        let regs = unsafe { MmioWindow::new(region.base.raw() as usize, regs::WINDOW) };
        let features = Features::decode(
            regs.read_pure(regs::IDR0),
            regs.read_pure(regs::IDR1),
            regs.read_pure(regs::IDR5),
        );
        if let Some(why) = features.unusable() {
            return Err(SmmuError::Unusable(why));
        }
        if features.cmdq_log2 < CMDQ_LOG2 || features.eventq_log2 < EVENTQ_LOG2 {
            return Err(SmmuError::SmallQueues);
        }
        let mut smmu = Smmu {
            regs,
            features,
            streams: Box::new(StreamTable([ste::unassigned(); STREAMS])),
            cmdq: Box::new(CommandQueue([[0; 2]; 1 << CMDQ_LOG2])),
            cmd_prod: 0,
            events: Box::new(EventQueue([[0; 4]; 1 << EVENTQ_LOG2])),
        };
        smmu.enable()?;
        Ok(smmu)
    }

    fn write64(&self, offset: usize, value: u64) {
        self.regs.write(offset, value as u32);
        self.regs.write(offset + 4, (value >> 32) as u32);
    }

    fn set_cr0(&self, value: u32, what: &'static str) -> Result<(), SmmuError> {
        self.regs.write(regs::CR0, value);
        if wait(|| self.regs.read_pure(regs::CR0ACK) == value) {
            Ok(())
        } else {
            Err(SmmuError::NoAck(what))
        }
    }

    fn enable(&mut self) -> Result<(), SmmuError> {
        // Abort while disabled, then disable.
        self.regs.write(regs::GBPA, regs::GBPA_ABORT | regs::GBPA_UPDATE);
        if !wait(|| self.regs.read_pure(regs::GBPA) & regs::GBPA_UPDATE == 0) {
            return Err(SmmuError::NoAck("GBPA"));
        }
        self.set_cr0(0, "disabling (CR0)")?;
        self.regs.write(regs::CR1, regs::CR1_WB_INNER_SHAREABLE);
        self.regs.write(regs::CR2, 1 << 1); // RECINVSID: report bad stream IDs
        let phys = |p: *const u8| p as u64; // the heap is identity-mapped
        self.write64(regs::STRTAB_BASE, queue::strtab_base(phys(self.streams.0.as_ptr().cast())));
        self.regs.write(regs::STRTAB_BASE_CFG, queue::strtab_linear(STREAM_LOG2));
        let (cmdq, evtq) = (Queue::new(CMDQ_LOG2), Queue::new(EVENTQ_LOG2));
        self.write64(regs::CMDQ_BASE, cmdq.base(phys(self.cmdq.0.as_ptr().cast())));
        self.regs.write(regs::CMDQ_PROD, 0);
        self.regs.write(regs::CMDQ_CONS, 0);
        self.write64(regs::EVENTQ_BASE, evtq.base(phys(self.events.0.as_ptr().cast())));
        self.regs.write(regs::EVENTQ_PROD, 0);
        self.regs.write(regs::EVENTQ_CONS, 0);
        // The tables and queues are written before the SMMU may read them.
        barrier::dsb(barrier::ISHST);
        self.set_cr0(regs::CR0_CMDQEN, "the command queue (CR0.CMDQEN)")?;
        self.run(&[Command::CfgiAll, Command::TlbiAll])?;
        self.regs.write(regs::IRQ_CTRL, regs::IRQ_EVENTQ | regs::IRQ_GERROR);
        if !wait(|| self.regs.read_pure(regs::IRQ_CTRLACK) == regs::IRQ_EVENTQ | regs::IRQ_GERROR) {
            return Err(SmmuError::NoAck("IRQ_CTRL"));
        }
        let on = regs::CR0_CMDQEN | regs::CR0_EVENTQEN | regs::CR0_SMMUEN;
        self.set_cr0(on, "enabling (CR0.SMMUEN)")
    }

    /// Issues `commands` and a `CMD_SYNC`, and waits until the SMMU has
    /// consumed them all.
    pub fn run(&mut self, commands: &[Command]) -> Result<(), SmmuError> {
        let q = Queue::new(CMDQ_LOG2);
        for c in commands.iter().chain(core::iter::once(&Command::Sync)) {
            let prod = self.cmd_prod;
            if !wait(|| !q.is_full(prod, self.regs.read_pure(regs::CMDQ_CONS))) {
                return Err(SmmuError::NoAck("a full command queue"));
            }
            if let Some(slot) = self.cmdq.0.get_mut(q.index(prod)) {
                *slot = c.encode();
            }
            self.cmd_prod = q.next(prod);
        }
        let (sync, prod) = (q.ptr(self.cmd_prod.wrapping_sub(1)), self.cmd_prod);
        barrier::dsb(barrier::ISHST);
        self.regs.write(regs::CMDQ_PROD, prod);
        let done = wait(|| {
            let cons = self.regs.read_pure(regs::CMDQ_CONS);
            q.consumed(sync, prod, cons) || cons >> 24 & 0x7f != 0
        });
        let cons = self.regs.read_pure(regs::CMDQ_CONS);
        if cons >> 24 & 0x7f != 0 {
            return Err(SmmuError::Command(regs::cmdq_error(cons)));
        }
        if done {
            Ok(())
        } else {
            Err(SmmuError::NoAck("CMD_SYNC"))
        }
    }

    /// Takes every event the SMMU recorded, oldest first, and whether some
    /// were lost to a full queue.
    pub fn take_events(&mut self, mut each: impl FnMut(Event)) -> bool {
        let q = Queue::new(EVENTQ_LOG2);
        let prod_reg = self.regs.read_with_effects(regs::EVENTQ_PROD);
        let cons_reg = self.regs.read_pure(regs::EVENTQ_CONS);
        let mut cons = q.ptr(cons_reg);
        while !q.is_empty(prod_reg, cons) {
            if let Some(rec) = self.events.0.get(q.index(cons)) {
                each(Event::decode(*rec));
            }
            cons = q.next(cons);
        }
        // An overflow flag that differs from ours: acknowledge it.
        let overflow = (prod_reg ^ cons_reg) & (1 << 31);
        self.regs.write(regs::EVENTQ_CONS, cons | (prod_reg & (1 << 31)));
        overflow != 0
    }

    /// Global errors now active (GERROR bits that differ from GERRORN),
    /// acknowledged.
    pub fn take_global_errors(&mut self) -> u32 {
        let active = self.regs.read_pure(regs::GERROR) ^ self.regs.read_pure(regs::GERRORN);
        self.regs.write(regs::GERRORN, self.regs.read_pure(regs::GERROR));
        active
    }

    /// Points stream `sid` at `ste` (a guest's context, abort, or
    /// unassigned) and makes the SMMU forget what it cached of the old
    /// entry and its context descriptor.
    pub fn set_stream(&mut self, sid: u32, ste: Ste) -> Result<(), SmmuError> {
        let slot = usize::try_from(sid).ok().and_then(|i| self.streams.0.get_mut(i));
        let Some(slot) = slot else { return Err(SmmuError::Unusable("stream ID beyond the stream table")) };
        // Word 0 (valid bit, config) last: the SMMU never sees a valid
        // entry with stale words (a running stream has its entry
        // invalidated below in any case).
        for (dst, src) in slot.iter_mut().zip(ste.iter()).skip(1) {
            *dst = *src;
        }
        barrier::dsb(barrier::ISHST);
        if let (Some(dst), Some(src)) = (slot.first_mut(), ste.first()) {
            *dst = *src;
        }
        self.run(&[Command::CfgiSte { sid }, Command::CfgiCd { sid }])
    }

    /// Drops the TLB entries `tlbi` names (a guest's DMA context going away
    /// or changing: by its ASID at stage 1, its VMID at stage 2).
    pub fn invalidate_tlb(&mut self, tlbi: Command) -> Result<(), SmmuError> {
        self.run(&[tlbi])
    }

    /// Number of streams the table covers.
    pub fn streams(&self) -> usize {
        STREAMS
    }
}

/// The name of event `e`'s type, for logs.
pub fn event_name(e: &Event) -> &'static str {
    event::name(e.code)
}
