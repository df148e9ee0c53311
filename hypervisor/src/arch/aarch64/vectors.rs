//! EL2 exception vectors: save a trap frame, hand it to safe Rust, restore.
//!
//! The EL2 vectors (taken while the hypervisor itself runs) save x0..x30,
//! ELR, SPSR, ESR and FAR into a [`TrapFrame`] on the current stack and call
//! [`handle_exception`] with the vector's index. IRQs go to the interrupt
//! dispatcher; any other exception is a hypervisor bug: it dumps the frame on
//! the console and stops the machine.
//!
//! The lower-EL vectors (8..=15) are a guest exit. Synchronous exceptions
//! and IRQs from an AArch64 guest (8, 9) jump to `guest_sync_fast` and
//! `guest_irq_fast` (guest.rs), which try the exit fast path first; the
//! others to
//! `guest_exit`. Both end, unless the fast path resumed the guest, by
//! storing the guest's registers in its vCPU context and returning from
//! `guest::run`. A guest never reaches `handle_exception`.

use core::arch::global_asm;
use core::fmt;

/// Registers saved on exception entry. The layout is shared with the assembly
/// below (offsets in bytes: x[n] at 8n, elr 248, spsr 256, esr 264, far 272).
#[repr(C)]
pub struct TrapFrame {
    /// General-purpose registers x0..x30.
    pub x: [u64; 31],
    /// Exception link register: where to return.
    pub elr: u64,
    /// Saved program status.
    pub spsr: u64,
    /// Exception syndrome.
    pub esr: u64,
    /// Fault address.
    pub far: u64,
    _pad: u64,
}

const FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();
const _: () = assert!(FRAME_SIZE == 288);
const _: () = assert!(core::mem::offset_of!(TrapFrame, elr) == 248);
const _: () = assert!(core::mem::offset_of!(TrapFrame, far) == 272);

/// Which of the 16 vectors was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VectorKind(pub u64);

impl VectorKind {
    /// Synchronous, IRQ, FIQ or SError.
    pub fn class(self) -> &'static str {
        ["sync", "irq", "fiq", "serror"][(self.0 & 3) as usize]
    }
    /// Where the exception came from.
    pub fn origin(self) -> &'static str {
        ["EL2 with SP_EL0", "EL2", "lower EL (AArch64)", "lower EL (AArch32)"][((self.0 >> 2) & 3) as usize]
    }
    /// Whether this is an IRQ.
    pub fn is_irq(self) -> bool {
        self.0 & 3 == 1
    }
}

/// A short name for the exception class in `esr`.
pub fn ec_name(esr: u64) -> &'static str {
    match (esr >> 26) & 0x3f {
        0x00 => "unknown reason",
        0x01 => "WFI/WFE",
        0x07 => "FP/SIMD access",
        0x0e => "illegal execution state",
        0x16 => "HVC",
        0x17 => "SMC",
        0x18 => "system register access",
        0x20 => "instruction abort, lower EL",
        0x21 => "instruction abort, same EL",
        0x22 => "PC alignment fault",
        0x24 => "data abort, lower EL",
        0x25 => "data abort, same EL",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x3c => "BRK",
        _ => "other",
    }
}

impl fmt::Display for TrapFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  ESR {:#018x} (EC {:#04x}: {})  ELR {:#018x}  FAR {:#018x}  SPSR {:#010x}",
            self.esr,
            (self.esr >> 26) & 0x3f,
            ec_name(self.esr),
            self.elr,
            self.far,
            self.spsr
        )?;
        for row in 0..8 {
            for col in 0..4 {
                let n = row * 4 + col;
                if n < 31 {
                    write!(f, "  x{:<2} {:#018x}", n, self.x[n])?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

extern "C" fn handle_exception(frame: &mut TrapFrame, kind: u64) {
    let kind = VectorKind(kind);
    if kind.is_irq() {
        let _ = crate::core::irq::dispatch();
        return;
    }
    crate::core::panic::fatal_exception(kind, frame);
}

macro_rules! vector_table {
    () => {
        r#"
    .macro ventry kind
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       exception_entry
    .endm

    /* Exceptions from a guest: only possible inside guest::run. */
    .macro ventry_guest kind, to
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mov     x1, #\kind
    b       \to
    .endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global EL2_VECTORS
EL2_VECTORS:
    ventry 0
    ventry 1
    ventry 2
    ventry 3
    ventry 4
    ventry 5
    ventry 6
    ventry 7
    ventry_guest 8, guest_sync_fast
    ventry_guest 9, guest_irq_fast
    ventry_guest 10, guest_exit
    ventry_guest 11, guest_exit
    ventry_guest 12, guest_exit
    ventry_guest 13, guest_exit
    ventry_guest 14, guest_exit
    ventry_guest 15, guest_exit

exception_entry:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el2
    stp     x30, x2, [sp, #240]
    mrs     x2, spsr_el2
    mrs     x3, esr_el2
    stp     x2, x3, [sp, #256]
    mrs     x2, far_el2
    str     x2, [sp, #272]
    mov     x0, sp
    bl      {handler}
    ldp     x30, x2, [sp, #240]
    msr     elr_el2, x2
    ldr     x2, [sp, #256]
    msr     spsr_el2, x2
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame}
    eret
"#
    };
}

global_asm!(vector_table!(), frame = const FRAME_SIZE, handler = sym handle_exception);

unsafe extern "C" {
    /// The vector table above; only its address is used (VBAR_EL2).
    pub static EL2_VECTORS: [u8; 0x800];
}
