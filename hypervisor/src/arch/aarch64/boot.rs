//! Entry code: the arm64 Image header, the EL check, stacks, EL2 MMU on.
//!
//! The boot CPU enters at `_start` with the host DTB in x0 (QEMU treats the
//! flat image as an arm64 Image because of the header). Secondary CPUs enter at
//! `secondary_entry` through PSCI CPU_ON with their CPU index in x0. Both run
//! `el2_setup` (traps, MMU, vectors) and then jump into Rust with a stack:
//! `primary_main(dtb)` or `secondary_main(cpu)`.
//!
//! Invariants: nothing here touches memory through the MMU before it is on,
//! except the stack of a CPU that is not at EL2 (to print why and power off).

use super::mmu;
use core::arch::global_asm;

/// The most CPUs the hypervisor supports; later ones stay powered off.
pub const MAX_CPUS: usize = 8;
/// Bytes of stack per CPU.
pub const STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(4096))]
struct Stacks([[u8; STACK_SIZE]; MAX_CPUS]);

#[unsafe(link_section = ".stacks")]
#[used]
static mut STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS]);

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    /* arm64 Image header (Documentation/arch/arm64/booting.rst). */
    b       primary_entry
    .word   0
    .quad   0x80000                     /* text_offset */
    .quad   __image_end - _start        /* image_size, including NOLOAD parts */
    .quad   0x2                         /* flags: little endian, 4K pages */
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .word   0

primary_entry:
    mov     x19, x0                     /* host DTB */
    mov     x20, #0                     /* boot CPU is index 0 */
    b       common_entry

    .global secondary_entry
secondary_entry:
    mov     x19, #0
    mov     x20, x0                     /* CPU index from CPU_ON context_id */

common_entry:
    msr     daifset, #0xf
    /* stack: STACKS + (index + 1) * STACK_SIZE */
    adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    add     x2, x20, #1
    mov     x3, #{stack_size}
    madd    x1, x2, x3, x1
    mov     sp, x1

    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.eq    1f
    mov     x0, x1
    bl      {not_el2}                   /* prints and powers off; never returns */
2:  wfe
    b       2b

1:  /* Run where we were linked, or nothing works. */
    adr     x1, _start
    ldr     x2, =_start
    cmp     x1, x2
    b.eq    3f
    mov     x0, x1
    bl      {wrong_address}
4:  wfe
    b       4b

3:  /* EL2 controls: AArch64 EL1, no traps of FP/SIMD, EL2 physical timer. */
    ldr     x1, =((1 << 31) | (1 << 5) | (1 << 4) | (1 << 3))
    msr     hcr_el2, x1                 /* HCR_EL2: RW, AMO, IMO, FMO */
    mov     x1, #0x33ff                 /* CPTR_EL2: RES1 bits, TFP=0 */
    msr     cptr_el2, x1
    mov     x1, #3                      /* CNTHCTL_EL2: EL1 may read counters/timer */
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr

    /* EL2 stage-1 MMU with the static identity map. */
    ldr     x1, ={mair}
    msr     mair_el2, x1
    ldr     x1, ={tcr}
    msr     tcr_el2, x1
    adrp    x1, {tables}
    add     x1, x1, :lo12:{tables}
    msr     ttbr0_el2, x1
    dsb     sy
    tlbi    alle2
    dsb     sy
    isb
    ldr     x1, ={sctlr}
    msr     sctlr_el2, x1
    isb

    adrp    x1, {vectors}
    add     x1, x1, :lo12:{vectors}
    msr     vbar_el2, x1
    msr     tpidr_el2, x20
    isb

    cbnz    x20, 5f
    /* Boot CPU: zero .bss, then primary_main(dtb). */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
6:  cmp     x1, x2
    b.hs    7f
    stp     xzr, xzr, [x1], #16
    b       6b
7:  mov     x0, x19
    bl      {primary_main}
    b       8f

5:  mov     x0, x20
    bl      {secondary_main}
8:  wfe
    b       8b
    .ltorg
    "#,
    stacks = sym STACKS,
    stack_size = const STACK_SIZE,
    not_el2 = sym crate::core::boot::not_el2,
    wrong_address = sym crate::core::boot::wrong_address,
    primary_main = sym crate::core::boot::primary_main,
    secondary_main = sym crate::core::boot::secondary_main,
    mair = const mmu::MAIR_EL2,
    tcr = const mmu::TCR_EL2,
    sctlr = const mmu::SCTLR_EL2,
    tables = sym mmu::EL2_TABLES,
    vectors = sym super::vectors::EL2_VECTORS,
);

unsafe extern "C" {
    /// The secondary CPU entry point above, for PSCI CPU_ON.
    pub safe fn secondary_entry();
}

/// Physical address of the secondary entry (identity mapped).
pub fn secondary_entry_addr() -> u64 {
    secondary_entry as *const () as usize as u64
}
