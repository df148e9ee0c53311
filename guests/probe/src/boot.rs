//! Entry code: the arm64 Image header, the EL check, stacks, FP, the EL1 MMU
//! and the exception vectors.
//!
//! The boot CPU enters at `_start` with the DTB address in x0; other CPUs
//! enter at `probe_secondary_entry` through PSCI CPU_ON with their CPU index
//! (the CPU_ON context id, 1..MAX_CPUS) in x0. All enter at EL1 with the MMU
//! off. Each masks interrupts, checks the EL and the load address, takes its
//! stack, enables FP/SIMD, switches the MMU on with the constant identity map
//! below and installs the vectors; then the boot CPU zeroes .bss and calls
//! `primary_main(dtb)`, a secondary calls `secondary_main(index)`.
//!
//! Nothing touches memory through a data access before the MMU is on, except
//! the console writes of the two fatal messages (wrong EL, wrong address),
//! which are plain assembly.

use core::arch::global_asm;

/// The most CPUs the probe runs on (the boot CPU and seven others).
pub const MAX_CPUS: usize = 8;
/// Bytes of stack per CPU.
pub const STACK_SIZE: usize = 16 * 1024;
/// Where the image must be loaded (RAM base + text_offset): 0x40080000, or
/// what build.rs made of `FERROVISOR_PROBE_RAM`.
pub const LINK_ADDRESS: u64 = hex(env!("PROBE_LINK_ADDRESS"));

/// `0x...` at compile time (build.rs writes it).
const fn hex(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut value = 0u64;
    let mut i = 2;
    while i < bytes.len() {
        let d = match bytes[i] {
            b @ b'0'..=b'9' => b - b'0',
            b @ b'a'..=b'f' => b - b'a' + 10,
            // build.rs writes hex; anything else fails the load check.
            _ => return 0,
        };
        value = value * 16 + d as u64;
        i += 1;
    }
    value
}
/// The Image header's text_offset: RAM starts this far below the image.
pub const TEXT_OFFSET: u64 = 0x8_0000;

/// MAIR_EL1: attribute 0 = Device-nGnRE, attribute 1 = Normal WB RW-allocate.
const MAIR_EL1: u64 = 0x04 | (0xff << 8);

/// TCR_EL1: T0SZ=25 (39-bit VA, walks start at level 1), inner/outer WB-WA,
/// inner shareable, 4 KiB granule; EPD1 (no TTBR1 walks, TG1=4K, T1SZ=25);
/// IPS 40-bit.
const TCR_EL1: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (25 << 16) | (1 << 23) | (2 << 30) | (2 << 32);

/// SCTLR_EL1: RES1 bits (29, 28, 23, 22, 20, 11), M, C, SA, I. Little endian,
/// no WXN, no alignment checks.
const SCTLR_EL1: u64 = 0x30D0_0800 | 1 | (1 << 2) | (1 << 3) | (1 << 12);

const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
const INNER_SHAREABLE: u64 = 3 << 8;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const GIB: u64 = 1 << 30;

/// Descriptor `index` of the level-1 table: 1 GiB blocks, identity mapped.
/// Block 0 (devices on QEMU virt, including the PL011) and blocks 256..511
/// are Device-nGnRE and never executable; blocks 1..=255 are normal memory.
const fn block(index: usize) -> u64 {
    let addr = index as u64 * GIB;
    if index >= 1 && index <= 255 {
        addr | BLOCK | AF | INNER_SHAREABLE | ATTR_NORMAL | UXN
    } else {
        addr | BLOCK | AF | ATTR_DEVICE | PXN | UXN
    }
}

/// A translation table: 512 descriptors, 4 KiB aligned.
#[repr(C, align(4096))]
pub struct Table([u64; 512]);

const fn build_table() -> Table {
    let mut entries = [0u64; 512];
    let mut i = 0;
    while i < 512 {
        entries[i] = block(i);
        i += 1;
    }
    Table(entries)
}

/// The level-1 table loaded into TTBR0_EL1 by the boot code.
#[unsafe(no_mangle)]
pub static PROBE_TABLE: Table = build_table();

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    /* arm64 Image header (Documentation/arch/arm64/booting.rst). */
    b       primary_entry
    .word   0
    .quad   {text_offset}               /* text_offset */
    .quad   __image_end - _start        /* image_size, including .bss and stacks */
    .quad   0x2                         /* flags: little endian, 4K pages, 2M-aligned base */
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .word   0

primary_entry:
    mov     x19, x0                     /* DTB */
    mov     x20, #0                     /* the boot CPU is index 0 */
    b       common_entry

    .global probe_secondary_entry
probe_secondary_entry:
    mov     x19, #0
    mov     x20, x0                     /* CPU index: the CPU_ON context id */
    cbz     x20, park                   /* index 0 is the boot CPU's */
    cmp     x20, #{max_cpus}
    b.hs    park

common_entry:
    msr     daifset, #0xf
    mrs     x21, CurrentEL
    ubfx    x21, x21, #2, #2
    cmp     x21, #1
    b.eq    1f
    adrp    x0, probe_msg_el
    add     x0, x0, :lo12:probe_msg_el
    bl      early_puts
    add     x0, x21, #48             /* '0' + EL */
    bl      early_putc
    adrp    x0, probe_msg_el_end
    add     x0, x0, :lo12:probe_msg_el_end
    bl      early_puts
    b       park

1:  /* Run where we were linked, or absolute addresses are wrong. */
    adr     x1, _start
    ldr     x2, ={link}
    cmp     x1, x2
    b.eq    2f
    adrp    x0, probe_msg_addr
    add     x0, x0, :lo12:probe_msg_addr
    bl      early_puts
    b       park

2:  msr     spsel, #1
    /* sp = probe_stacks + (index + 1) * STACK_SIZE */
    adrp    x1, probe_stacks
    add     x1, x1, :lo12:probe_stacks
    add     x2, x20, #1
    mov     x3, #{stack_size}
    madd    x1, x2, x3, x1
    mov     sp, x1

    /* FP/SIMD: CPACR_EL1.FPEN = 0b11, before any Rust code. */
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb

    /* EL1 stage-1 MMU with the constant identity map. */
    ldr     x1, ={mair}
    msr     mair_el1, x1
    ldr     x1, ={tcr}
    msr     tcr_el1, x1
    adrp    x1, {table}
    add     x1, x1, :lo12:{table}
    msr     ttbr0_el1, x1
    msr     ttbr1_el1, xzr
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    ldr     x1, ={sctlr}
    msr     sctlr_el1, x1
    isb

    adrp    x1, probe_vectors
    add     x1, x1, :lo12:probe_vectors
    msr     vbar_el1, x1
    msr     tpidr_el1, x20
    isb

    cbnz    x20, 4f
    /* Boot CPU: zero .bss, then primary_main(dtb). */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
3:  cmp     x1, x2
    b.hs    5f
    stp     xzr, xzr, [x1], #16
    b       3b
5:  mov     x0, x19
    bl      {primary_main}
    b       park

4:  mov     x0, x20
    bl      {secondary_main}

    .global probe_park
probe_park:
park:
    wfe
    b       park

/* early_puts(x0 = NUL-terminated string), MMU off or on; clobbers x0, x2-x5. */
early_puts:
    mov     x4, x30
6:  ldrb    w2, [x0], #1
    cbz     w2, 7f
    mov     x3, x0
    mov     x0, x2
    bl      early_putc
    mov     x0, x3
    b       6b
7:  ret     x4

/* early_putc(x0 = byte); clobbers x2, x5. */
early_putc:
    mov     x2, #{uart}
8:  ldr     w5, [x2, #0x18]
    tbnz    w5, #5, 8b
    str     w0, [x2]
    ret
    .ltorg

    .section .rodata.probe_boot, "a"
probe_msg_el:
    .asciz  "PROBE probe FATAL entered at EL"
probe_msg_el_end:
    .asciz  ", the probe needs EL1\r\n"
probe_msg_addr:
    .asciz  "PROBE probe FATAL not loaded at its link address (0x40080000 for probe.bin, 0x50080000 for probe-hi.bin)\r\n"

    .section .stacks, "aw", %nobits
    .balign 4096
probe_stacks:
    .space  {stacks_size}
    "#,
    text_offset = const TEXT_OFFSET,
    max_cpus = const MAX_CPUS,
    link = const LINK_ADDRESS,
    stack_size = const STACK_SIZE,
    stacks_size = const STACK_SIZE * MAX_CPUS,
    mair = const MAIR_EL1,
    tcr = const TCR_EL1,
    sctlr = const SCTLR_EL1,
    table = sym PROBE_TABLE,
    uart = const crate::console::UART_BASE,
    primary_main = sym crate::primary_main,
    secondary_main = sym crate::secondary_main,
);

/// The exception frame: x0..x30, ELR, SPSR, ESR, FAR and padding, saved on
/// the current stack by the vectors (offsets shared with the assembly below).
#[repr(C)]
pub struct TrapFrame {
    /// General-purpose registers x0..x30.
    pub x: [u64; 31],
    /// Where to return (ELR_EL1).
    pub elr: u64,
    /// Saved PSTATE (SPSR_EL1).
    pub spsr: u64,
    /// Exception syndrome (ESR_EL1).
    pub esr: u64,
    /// Fault address (FAR_EL1).
    pub far: u64,
    _pad: u64,
}

const FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();
const _: () = assert!(FRAME_SIZE == 288);
const _: () = assert!(core::mem::offset_of!(TrapFrame, elr) == 248);
const _: () = assert!(core::mem::offset_of!(TrapFrame, far) == 272);

global_asm!(
    r#"
    .macro probe_ventry kind
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       probe_exception_entry
    .endm

    /* IRQ entry: save x0/x1, then at once stamp CNTVCT_EL0 (isb; mrs). */
    .macro probe_virq kind
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    isb
    mrs     x0, cntvct_el0
    adrp    x1, {irq_cntvct}
    str     x0, [x1, :lo12:{irq_cntvct}]
    mov     x1, #\kind
    b       probe_exception_entry
    .endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global probe_vectors
probe_vectors:
    probe_ventry 0
    probe_ventry 1
    probe_ventry 2
    probe_ventry 3
    probe_ventry 4
    probe_virq 5
    probe_ventry 6
    probe_ventry 7
    probe_ventry 8
    probe_ventry 9
    probe_ventry 10
    probe_ventry 11
    probe_ventry 12
    probe_ventry 13
    probe_ventry 14
    probe_ventry 15

probe_exception_entry:
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
    mrs     x2, elr_el1
    stp     x30, x2, [sp, #240]
    mrs     x2, spsr_el1
    mrs     x3, esr_el1
    stp     x2, x3, [sp, #256]
    mrs     x2, far_el1
    str     x2, [sp, #272]
    mov     x0, sp
    bl      {handler}
    ldp     x30, x2, [sp, #240]
    msr     elr_el1, x2
    ldr     x2, [sp, #256]
    msr     spsr_el1, x2
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
"#,
    frame = const FRAME_SIZE,
    handler = sym crate::exception::handle_exception,
    irq_cntvct = sym crate::irq::PROBE_IRQ_CNTVCT,
);

unsafe extern "C" {
    /// The secondary CPU entry point above, for PSCI CPU_ON.
    safe fn probe_secondary_entry();
    /// First byte of the image (the Image header).
    static __image_start: u8;
    /// One past the last byte of the image, including .bss and stacks.
    static __image_end: u8;
}

/// Physical (= virtual) address of the secondary entry point.
pub fn secondary_entry_addr() -> u64 {
    probe_secondary_entry as *const () as usize as u64
}

/// The image's physical range (start, end), including .bss and stacks.
pub fn image_range() -> (u64, u64) {
    ((&raw const __image_start) as u64, (&raw const __image_end) as u64)
}
