//! Entering and leaving a guest: the vCPU register file, the world switch,
//! and the EL1 / FP / stage-2 state that changes with the running vCPU.
//!
//! `run` saves the hypervisor's callee-saved registers on the EL2 stack,
//! leaves the register file, the vCPU and its two fast-path entries just
//! below them, loads
//! the guest's registers and ERETs. Any exception from EL1/EL0 lands in the
//! lower-EL vectors (`vectors.rs`). For a synchronous exception or an IRQ,
//! `guest_sync_fast` / `guest_irq_fast` first save only the registers a call clobbers and
//! call the vCPU's exit fast path ([`GuestCpu`], `core::vm::fast`) through
//! the entries [`run`] left on the stack; it handles the frequent,
//! self-contained exits (hypercall queries, forwarded and timer interrupts
//! that go straight into a free list register) and resumes the guest. Every
//! other exit stores the rest of the guest registers and the syndrome into
//! the context and returns from `enter` with the vector number. So each
//! full guest exit is an ordinary function return into safe Rust.
//!
//! The hypervisor is built soft-float, so guest FP/SIMD registers survive
//! exits untouched and are switched only when another vCPU is loaded.

use super::sysreg;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    Readable, Writeable, AFSR0_EL1, AFSR1_EL1, AMAIR_EL1, CNTKCTL_EL1, CNTVOFF_EL2, CNTV_CTL_EL0,
    CNTV_CVAL_EL0, CONTEXTIDR_EL1, CPACR_EL1, CSSELR_EL1, ELR_EL1, ESR_EL1, FAR_EL1, HCR_EL2, MAIR_EL1,
    MDCR_EL2, MDSCR_EL1, MIDR_EL1, PAR_EL1, SCTLR_EL1, SPSR_EL1, SP_EL0, SP_EL1, TCR_EL1, TPIDRRO_EL0,
    TPIDR_EL0, TPIDR_EL1, TTBR0_EL1, TTBR1_EL1, VBAR_EL1, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2,
};
use core::arch::{asm, global_asm};

/// Guest general registers and exit syndrome, shared with the assembly
/// (offsets: x[n] at 8n, pc 248, pstate 256, esr 264, far 272, hpfar 280).
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct VcpuRegs {
    /// x0..x30.
    pub x: [u64; 31],
    /// Guest PC (ELR_EL2).
    pub pc: u64,
    /// Guest PSTATE (SPSR_EL2).
    pub pstate: u64,
    /// ESR_EL2 of the last exit.
    pub esr: u64,
    /// FAR_EL2 of the last exit.
    pub far: u64,
    /// HPFAR_EL2 of the last exit.
    pub hpfar: u64,
}

const _: () = assert!(core::mem::offset_of!(VcpuRegs, pc) == 248);
const _: () = assert!(core::mem::offset_of!(VcpuRegs, hpfar) == 280);

impl VcpuRegs {
    /// Whether the exit fast path has guest register `n` in this struct
    /// (it saves x0-x18 and x30; x19-x29 are stored by the full exit
    /// only); 31 (XZR) needs no register.
    #[inline(always)]
    pub const fn saved_on_fast_path(n: u8) -> bool {
        n <= 18 || n >= 30
    }

    /// Register `n` as an instruction operand sees it (31 = XZR).
    pub fn get(&self, n: u8) -> u64 {
        self.x.get(n as usize).copied().unwrap_or(0)
    }

    /// Sets register `n` (writes to 31 = XZR are discarded).
    pub fn set(&mut self, n: u8, value: u64) {
        if let Some(r) = self.x.get_mut(n as usize) {
            *r = value;
        }
    }
}

/// PSTATE for a vCPU entering at EL1h with D, A, I and F masked.
pub const PSTATE_EL1H_MASKED: u64 = 0x3c5;

/// Which vector a guest exit came through (the lower-EL entries 8..=15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitVector {
    /// A synchronous exception: decode ESR.
    Sync,
    /// A physical IRQ arrived while the guest ran.
    Irq,
    /// A physical FIQ (not used by the hypervisor).
    Fiq,
    /// An SError.
    SError,
}

impl ExitVector {
    fn from_raw(kind: u64) -> Self {
        match kind & 3 {
            0 => ExitVector::Sync,
            1 => ExitVector::Irq,
            2 => ExitVector::Fiq,
            _ => ExitVector::SError,
        }
    }
}

global_asm!(
    r#"
    /* x2..x17 from / to the register file at x0 (offsets 16..136). */
    .macro guest_load_x2_x17
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    .endm

    /* From a lower-EL vector (guest x0/x1 pushed, vector number in x1):
       store the registers a call may clobber (x0-x18, x30) in the register
       file, pop x0/x1, leave x0 = register file, sp at the context slot. */
    .macro guest_save_volatile
    ldr     x0, [sp, #16]
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    str     x18, [x0, #144]
    str     x30, [x0, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0, #0]
    .endm

    .section .text.guest, "ax"
    .global guest_enter
guest_enter:
    stp     x29, x30, [sp, #-16]!
    stp     x27, x28, [sp, #-16]!
    stp     x25, x26, [sp, #-16]!
    stp     x23, x24, [sp, #-16]!
    stp     x21, x22, [sp, #-16]!
    stp     x19, x20, [sp, #-16]!
    /* For the exit paths, at sp: register file, fast-path sync entry,
       owner, fast-path IRQ entry (so that each entry loads owner and
       function with one ldp). */
    stp     x1, x3, [sp, #-16]!
    stp     x0, x2, [sp, #-16]!
    ldp     x4, x5, [x0, #248]
    msr     elr_el2, x4
    msr     spsr_el2, x5
    guest_load_x2_x17
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret
    dsb     nsh
    isb

    /* Synchronous exceptions and IRQs from the guest, from the lower-EL
       vectors. Save only what a call may clobber and call the fast path
       that `run` left in the context slot, fast_sync(owner) or
       fast_irq(owner), which preserves x19-x29 like any function. It
       returns 0: the exit is handled, resume the guest; or the vector
       number: take the full exit. The IRQ entry falls through to the
       resume. */
    .global guest_sync_fast
guest_sync_fast:
    guest_save_volatile
    ldp     x2, x0, [sp, #8]
    blr     x2
    b       2f

    .global guest_irq_fast
guest_irq_fast:
    guest_save_volatile
    ldp     x0, x2, [sp, #16]
    blr     x2
2:  cbnz    x0, 1f
    ldr     x0, [sp]
    guest_load_x2_x17
    ldr     x18, [x0, #144]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret
    dsb     nsh
    isb

    /* Every other exception from the guest (FIQ, SError): the full exit. */
    .global guest_exit
guest_exit:
    guest_save_volatile
    mov     x0, x1

    /* The full exit, x0 = vector number: store x19-x29 and the syndrome,
       return it from guest_enter. */
1:  ldr     x1, [sp]
    str     x19, [x1, #152]
    stp     x20, x21, [x1, #160]
    stp     x22, x23, [x1, #176]
    stp     x24, x25, [x1, #192]
    stp     x26, x27, [x1, #208]
    stp     x28, x29, [x1, #224]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [x1, #248]
    mrs     x2, esr_el2
    mrs     x3, far_el2
    stp     x2, x3, [x1, #264]
    mrs     x2, hpfar_el2
    str     x2, [x1, #280]
    add     sp, sp, #32
    ldp     x19, x20, [sp], #16
    ldp     x21, x22, [sp], #16
    ldp     x23, x24, [sp], #16
    ldp     x25, x26, [sp], #16
    ldp     x27, x28, [sp], #16
    ldp     x29, x30, [sp], #16
    ret
    "#
);

unsafe extern "C" {
    fn guest_enter(
        regs: *mut VcpuRegs,
        owner: *mut core::ffi::c_void,
        sync: *const (),
        irq: *const (),
    ) -> u64;
}

/// What the exit fast path decided, as the assembly takes it: 0 resumes
/// the guest, anything else is the vector number of the full exit.
/// [`GuestCpu::fast_sync`] answers `Resume` or `FullSync`,
/// [`GuestCpu::fast_irq`] `Resume` or `FullIrq` (the value passes through
/// unchanged, so a fast path ending in a call returns by a tail call).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastExit {
    /// The exit is handled: resume the guest at once.
    Resume = 0,
    /// Take the full exit for a synchronous exception ([`run`] returns
    /// [`ExitVector::Sync`]).
    FullSync = 8,
    /// Take the full exit for an IRQ ([`run`] returns [`ExitVector::Irq`]).
    FullIrq = 9,
}

/// The vCPU the world switch runs (core's `Vcpu`): its register file and
/// its exit fast path. The fast path runs between the guest's exit and its
/// resumption, with only the registers a call clobbers saved in
/// [`GuestCpu::regs`] (x0..x18, x30; x19..x29 are still the guest's, kept
/// by the calling convention; pc, pstate and the syndrome are not stored).
pub trait GuestCpu {
    /// The register file `run` loads and the exits store.
    fn regs(&mut self) -> &mut VcpuRegs;
    /// A synchronous exception from the guest (ESR_EL2 holds its syndrome).
    fn fast_sync(&mut self) -> FastExit;
    /// An IRQ taken while the guest ran (not yet acknowledged).
    fn fast_irq(&mut self) -> FastExit;
}

/// The assembly's call into the fast path for a synchronous exception.
extern "C" fn fast_sync<G: GuestCpu>(owner: *mut G) -> u64 {
    // SAFETY: the assembly passes on the `owner` that `run` put in the
    // context slot: the `&mut G` that `run` holds until `guest_enter`
    // returns, used by nobody else meanwhile (this CPU is in the guest's
    // exit, and the register file is not touched by the assembly while
    // this call runs).
    let guest = unsafe { &mut *owner };
    guest.fast_sync() as u64
}

/// The assembly's call into the fast path for an IRQ.
extern "C" fn fast_irq<G: GuestCpu>(owner: *mut G) -> u64 {
    // SAFETY: as in `fast_sync`.
    let guest = unsafe { &mut *owner };
    guest.fast_irq() as u64
}

/// Runs the loaded vCPU `guest` until it takes a full exit; returns
/// through which vector. Exits that its fast path handles
/// ([`GuestCpu::fast_sync`], [`GuestCpu::fast_irq`]) resume the guest
/// without returning here.
///
/// The caller must have loaded this vCPU's EL1, FP and stage-2 state
/// (`load_el1`, `load_fp`, `load_stage2`) on this CPU, with IRQs masked.
pub fn run<G: GuestCpu>(guest: &mut G) -> ExitVector {
    let owner: *mut G = guest;
    // SAFETY: `owner` comes from a live `&mut G`, borrowed for this whole
    // call; the register file is part of it.
    let regs: *mut VcpuRegs = unsafe { (*owner).regs() };
    // SAFETY: `guest_enter` saves and restores every callee-saved register
    // and the stack pointer; it reads and writes only `*regs` (inside
    // `*owner`, exclusively ours for this call) and hands `owner` to
    // `fast_sync::<G>` / `fast_irq::<G>`, which take it back as the `&mut G`
    // it is; the assembly does not touch `*regs` while they run. The guest
    // runs under its own stage-2 tables (loaded by the caller), so it
    // cannot reach hypervisor memory, and every exception from it returns
    // here through the full exit (`guest_sync_fast`, `guest_irq_fast`,
    // `guest_exit`) or resumes the guest from the fast path.
    let kind =
        unsafe { guest_enter(regs, owner.cast(), fast_sync::<G> as *const (), fast_irq::<G> as *const ()) };
    ExitVector::from_raw(kind)
}

macro_rules! el1_regs {
    ($($field:ident: $reg:ident),* $(,)?) => {
        /// The EL1 system registers that belong to a vCPU.
        #[repr(C)]
        #[derive(Clone, Debug, Default)]
        pub struct El1Regs {
            $(
                #[doc = concat!("`", stringify!($reg), "`")]
                pub $field: u64,
            )*
        }

        /// Saves the running vCPU's EL1 system registers.
        pub fn save_el1(r: &mut El1Regs) {
            $( r.$field = $reg.get(); )*
        }

        /// Loads a vCPU's EL1 system registers for the next `run`. EL1
        /// registers only affect EL1/EL0 execution, which is the guest's.
        pub fn load_el1(r: &El1Regs) {
            $( $reg.set(r.$field); )*
            barrier::isb(barrier::SY);
        }
    };
}

el1_regs! {
    sctlr: SCTLR_EL1, cpacr: CPACR_EL1, ttbr0: TTBR0_EL1, ttbr1: TTBR1_EL1,
    tcr: TCR_EL1, esr: ESR_EL1, afsr0: AFSR0_EL1, afsr1: AFSR1_EL1,
    far: FAR_EL1, mair: MAIR_EL1, amair: AMAIR_EL1, vbar: VBAR_EL1,
    contextidr: CONTEXTIDR_EL1, tpidr_el0: TPIDR_EL0, tpidrro_el0: TPIDRRO_EL0,
    tpidr_el1: TPIDR_EL1, cntkctl: CNTKCTL_EL1, par: PAR_EL1, sp_el0: SP_EL0,
    sp_el1: SP_EL1, elr_el1: ELR_EL1, spsr_el1: SPSR_EL1, csselr: CSSELR_EL1,
    mdscr: MDSCR_EL1, cntv_ctl: CNTV_CTL_EL0, cntv_cval: CNTV_CVAL_EL0,
}

/// EL1 register values of a vCPU at reset (MMU and caches off).
pub fn el1_reset() -> El1Regs {
    El1Regs { sctlr: 0x30d0_0800, ..El1Regs::default() }
}

/// A vCPU's FP/SIMD registers.
#[repr(C, align(16))]
#[derive(Clone, Debug, Default)]
pub struct FpRegs {
    /// q0..q31.
    pub q: [u128; 32],
    /// FPCR.
    pub fpcr: u64,
    /// FPSR.
    pub fpsr: u64,
}

/// Saves the FP/SIMD registers (the hypervisor itself never uses them).
pub fn save_fp(f: &mut FpRegs) {
    let p = f as *mut FpRegs;
    // SAFETY: stores 512 + 16 bytes into `*f`, which is exclusively borrowed
    // and 16-byte aligned; CPTR_EL2 does not trap FP at EL2.
    unsafe {
        asm!(
            ".arch_extension fp", ".arch_extension simd",
            "stp q0, q1, [{p}, #0]", "stp q2, q3, [{p}, #32]", "stp q4, q5, [{p}, #64]",
            "stp q6, q7, [{p}, #96]", "stp q8, q9, [{p}, #128]", "stp q10, q11, [{p}, #160]",
            "stp q12, q13, [{p}, #192]", "stp q14, q15, [{p}, #224]", "stp q16, q17, [{p}, #256]",
            "stp q18, q19, [{p}, #288]", "stp q20, q21, [{p}, #320]", "stp q22, q23, [{p}, #352]",
            "stp q24, q25, [{p}, #384]", "stp q26, q27, [{p}, #416]", "stp q28, q29, [{p}, #448]",
            "stp q30, q31, [{p}, #480]",
            "mrs {t}, fpcr", "str {t}, [{p}, #512]", "mrs {t}, fpsr", "str {t}, [{p}, #520]",
            p = in(reg) p, t = out(reg) _, options(nostack),
        )
    };
}

/// Loads a vCPU's FP/SIMD registers.
pub fn load_fp(f: &FpRegs) {
    let p = f as *const FpRegs;
    // SAFETY: reads from `*f`, a valid aligned FpRegs; the registers written
    // are the guest's (the hypervisor never uses them).
    unsafe {
        asm!(
            ".arch_extension fp", ".arch_extension simd",
            "ldp q0, q1, [{p}, #0]", "ldp q2, q3, [{p}, #32]", "ldp q4, q5, [{p}, #64]",
            "ldp q6, q7, [{p}, #96]", "ldp q8, q9, [{p}, #128]", "ldp q10, q11, [{p}, #160]",
            "ldp q12, q13, [{p}, #192]", "ldp q14, q15, [{p}, #224]", "ldp q16, q17, [{p}, #256]",
            "ldp q18, q19, [{p}, #288]", "ldp q20, q21, [{p}, #320]", "ldp q22, q23, [{p}, #352]",
            "ldp q24, q25, [{p}, #384]", "ldp q26, q27, [{p}, #416]", "ldp q28, q29, [{p}, #448]",
            "ldp q30, q31, [{p}, #480]",
            "ldr {t}, [{p}, #512]", "msr fpcr, {t}", "ldr {t}, [{p}, #520]", "msr fpsr, {t}",
            p = in(reg) p, t = out(reg) _, options(nostack, readonly),
        )
    };
}

/// HCR_EL2 while a guest runs: stage 2 on, physical IRQ/FIQ/SError to EL2,
/// WFI, SMC and ID register reads trapped, TLBI and barriers broadcast inner shareable,
/// AArch64 EL1. A vCPU alone on its pCPU runs without [`HCR_TWI`].
pub const HCR_GUEST: u64 = (1 << 0) // VM
    | (1 << 1) // SWIO
    | (1 << 3) | (1 << 4) | (1 << 5) // FMO IMO AMO
    | (1 << 9) // FB
    | (1 << 10) // BSU = inner shareable
    | HCR_TWI
    | (1 << 18) // TID3: ID registers, to hide features whose state is not switched
    | (1 << 19) // TSC
    | (1 << 31); // RW

/// HCR_EL2.TWI: the guest's WFI traps. Without it, WFI sleeps on the pCPU
/// itself and ends on a virtual interrupt (list registers) or a physical one
/// (taken to EL2): right for a vCPU that has its pCPU to itself.
pub const HCR_TWI: u64 = 1 << 13;

/// MDCR_EL2 for guests: PMU and debug register accesses trap to EL2.
pub const MDCR_GUEST: u64 = (1 << 5) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11);

/// Loads the guest's stage-2 translation (VTCR, VTTBR) and identity
/// registers for the vCPU, and turns guest mode on with `hcr` (normally
/// [`HCR_GUEST`]).
pub fn load_stage2(vtcr: u64, vttbr: u64, vmpidr: u64, cntvoff: u64, hcr: u64) {
    // These EL2 registers only affect how EL1/EL0 (the guest) is
    // translated and identified; the hypervisor's own EL2 translation is
    // separate (TTBR0_EL2).
    VTCR_EL2.set(vtcr);
    VTTBR_EL2.set(vttbr);
    VMPIDR_EL2.set(vmpidr);
    sysreg::write_vpidr_el2(MIDR_EL1.get());
    CNTVOFF_EL2.set(cntvoff);
    HCR_EL2.set(hcr);
    MDCR_EL2.set(MDCR_GUEST);
    barrier::isb(barrier::SY);
}

/// Invalidates every stage-1 and stage-2 TLB entry of the VMID in `vttbr`,
/// on all CPUs (inner shareable). Needed after unmapping or before a VMID
/// is reused.
pub fn flush_guest_tlb(vtcr: u64, vttbr: u64) {
    // SAFETY: TLB maintenance has no effect on memory contents; VTTBR is
    // switched only for the duration of the invalidation, with IRQs masked
    // by the caller's context (EL2 exception handling or boot).
    unsafe {
        asm!(
            "mrs {old}, vttbr_el2",
            "msr vtcr_el2, {vtcr}",
            "msr vttbr_el2, {vttbr}",
            "isb",
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            "msr vttbr_el2, {old}",
            "isb",
            old = out(reg) _, vtcr = in(reg) vtcr, vttbr = in(reg) vttbr,
            options(nostack),
        )
    };
}

/// Makes page-table updates visible to the table walker before use.
pub fn publish_tables() {
    barrier::dsb(barrier::ISHST);
}

/// VBAR_EL1 of the loaded vCPU.
pub fn read_vbar_el1() -> u64 {
    VBAR_EL1.get()
}

/// Sets the loaded vCPU's exception registers for an injected exception
/// (EL1 exception registers belong to the loaded guest vCPU).
pub fn write_exception_regs(elr: u64, spsr: u64, esr: u64, far: Option<u64>) {
    ELR_EL1.set(elr);
    SPSR_EL1.set(spsr);
    ESR_EL1.set(esr);
    if let Some(far) = far {
        FAR_EL1.set(far);
    }
}
