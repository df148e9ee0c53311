//! `mem`: write and verify a pattern over 4 MiB of RAM after the image.
//!
//! The region starts at the first 1 MiB boundary after the image (including
//! .bss and stacks), moved past the DTB if they would overlap, and must end
//! within the first 16 MiB of RAM (RAM base = image start - text_offset), so
//! a 16 MiB guest works, and within the DT's `/memory` range if there is one.

use super::{report, Env};
use crate::boot;
use core::ptr;

const SIZE: u64 = 4 << 20;
const ALIGN: u64 = 1 << 20;
const RAM_LIMIT: u64 = 16 << 20;

fn align_up(v: u64) -> u64 {
    v.div_ceil(ALIGN) * ALIGN
}

/// The pattern word for the `i`th u64 (a splitmix64 step).
fn pattern(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs the test.
pub fn run(env: &Env, test: &str) -> bool {
    let (image_start, image_end) = boot::image_range();
    let mut ram_end = image_start - boot::TEXT_OFFSET + RAM_LIMIT;
    if let Some((_, end)) = env.ram {
        ram_end = ram_end.min(end);
    }
    let mut base = align_up(image_end);
    if let Some((dtb_start, dtb_end)) = env.dtb {
        if base < dtb_end && dtb_start < base + SIZE {
            base = align_up(dtb_end);
        }
    }
    if base + SIZE > ram_end {
        return report!(test, false, "no room for {SIZE:#x} bytes between the image/DTB and {ram_end:#x}");
    }
    let words = SIZE / 8;
    let region = base as *mut u64;
    for i in 0..words {
        // SAFETY: [base, base + SIZE) is RAM (within the first 16 MiB, which
        // every config gives the probe) that holds neither the image, its
        // stacks nor the DTB; nothing else uses it.
        unsafe { ptr::write_volatile(region.add(i as usize), pattern(i)) };
    }
    let mut checksum = 0u64;
    for i in 0..words {
        // SAFETY: as above.
        let v = unsafe { ptr::read_volatile(region.add(i as usize)) };
        if v != pattern(i) {
            return report!(
                test,
                false,
                "mismatch at {:#x}: read {v:#x} expected {:#x}",
                base + 8 * i,
                pattern(i)
            );
        }
        checksum = checksum.rotate_left(1) ^ v;
    }
    report!(test, true, "base={base:#x} size={SIZE:#x} checksum={checksum:#x}")
}
