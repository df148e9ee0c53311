//! `virtioring=BASE,TARGET`: a virtio-blk device (virtio-mmio version 2 at
//! BASE) set up with one queue in the probe's own RAM, whose used ring (the
//! ring the device writes) the probe then tries to move to TARGET, outside
//! its RAM, before it reads sector 0.
//!
//! Under ferrovisor with `dma-registers` on the device, the move is refused
//! (the register reads back the old address) and the device completes the
//! request into the probe's own used ring: PASS. Natively the device writes
//! its used ring at TARGET and the probe's own ring stays empty: FAIL.
//!
//! Registers (virtio 1.x, 4.2.2): 0x00 magic, 0x04 version, 0x08 device
//! ID, 0x10/0x14 device features/select, 0x20/0x24 driver features/select,
//! 0x30 queue select, 0x34 queue size max, 0x38 queue size, 0x44 queue
//! ready, 0x50 queue notify, 0x60/0x64 interrupt status/acknowledge, 0x70
//! status, 0x80/0x84 descriptor table, 0x90/0x94 driver (available) ring,
//! 0xa0/0xa4 device (used) ring.

use super::{parse_u64, report};
use crate::cpu;
use core::ptr::{read_volatile, write_volatile};

const MAGIC: u32 = 0x7472_6976;
const BLOCK: u32 = 2;
const QUEUE: u16 = 8;
const TIMEOUT_MS: u64 = 2000;
/// The first bytes of the test disk the itests attach (pattern
/// `(i * 7 + 13) % 251`).
const DISK_HEAD: [u8; 4] = [13, 20, 27, 34];

/// Status bits.
const ACKNOWLEDGE: u32 = 1;
const DRIVER: u32 = 2;
const DRIVER_OK: u32 = 4;
const FEATURES_OK: u32 = 8;

#[repr(C, align(4096))]
struct Rings {
    desc: [[u8; 16]; QUEUE as usize],
    /// flags, idx, ring[QUEUE], used_event.
    avail: [u16; 3 + QUEUE as usize],
}

#[repr(C, align(4096))]
struct Used([u8; 4096]);

#[repr(C, align(4096))]
struct Buffers {
    header: [u8; 16],
    status: [u8; 16],
    data: [u8; 512],
}

static mut RINGS: Rings = Rings { desc: [[0; 16]; QUEUE as usize], avail: [0; 3 + QUEUE as usize] };
static mut USED: Used = Used([0; 4096]);
static mut BUFFERS: Buffers = Buffers { header: [0; 16], status: [0xff; 16], data: [0; 512] };

fn rd(addr: u64) -> u32 {
    // SAFETY: a register of the virtio-mmio device the test was given.
    unsafe { read_volatile(addr as *const u32) }
}
fn wr(addr: u64, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { write_volatile(addr as *mut u32, v) }
}
fn wr_addr(base: u64, low: u64, address: u64) {
    wr(base + low, address as u32);
    wr(base + low + 4, (address >> 32) as u32);
}

fn descriptor(slot: &mut [u8; 16], addr: u64, len: u32, flags: u16, next: u16) {
    slot[..8].copy_from_slice(&addr.to_le_bytes());
    slot[8..12].copy_from_slice(&len.to_le_bytes());
    slot[12..14].copy_from_slice(&flags.to_le_bytes());
    slot[14..16].copy_from_slice(&next.to_le_bytes());
}

fn used_idx(used: *const Used) -> u16 {
    // SAFETY: the used ring's idx (bytes 2..4), read while the device may
    // write it.
    unsafe { read_volatile((used as *const u8).add(2).cast::<u16>()) }
}

/// `virtioring=BASE,TARGET`.
pub fn run(test: &str, arg: &str) -> bool {
    let parsed = arg.split_once(',').and_then(|(b, t)| Some((parse_u64(b)?, parse_u64(t)?)));
    let Some((base, target)) = parsed else { return report!(test, false, "want virtioring=BASE,TARGET") };
    if rd(base) != MAGIC || rd(base + 4) != 2 || rd(base + 8) != BLOCK {
        return report!(
            test,
            false,
            "no virtio-mmio version 2 block device at {base:#x} (magic {:#x} version {} id {}; QEMU: -global virtio-mmio.force-legacy=false)",
            rd(base),
            rd(base + 4),
            rd(base + 8)
        );
    }
    wr(base + 0x70, 0);
    wr(base + 0x70, ACKNOWLEDGE | DRIVER);
    wr(base + 0x14, 1);
    if rd(base + 0x10) & 1 == 0 {
        return report!(test, false, "the device does not offer VIRTIO_F_VERSION_1");
    }
    wr(base + 0x24, 1);
    wr(base + 0x20, 1);
    wr(base + 0x24, 0);
    wr(base + 0x20, 0);
    wr(base + 0x70, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    if rd(base + 0x70) & FEATURES_OK == 0 {
        return report!(test, false, "the device refused the features");
    }
    wr(base + 0x30, 0);
    if rd(base + 0x34) < u32::from(QUEUE) {
        return report!(test, false, "queue 0 holds fewer than {QUEUE} entries");
    }
    wr(base + 0x38, u32::from(QUEUE));
    let (rings, used, bufs) = (&raw mut RINGS, &raw mut USED, &raw mut BUFFERS);
    // SAFETY: this test's statics, used by one CPU; the device reads and
    // writes them only after the notify below.
    let (rings, bufs) = unsafe { (&mut *rings, &mut *bufs) };
    let own_used = used as u64;
    wr_addr(base, 0x80, rings.desc.as_ptr() as u64);
    wr_addr(base, 0x90, rings.avail.as_ptr() as u64);
    wr_addr(base, 0xa0, own_used);
    // The attack: the device's used ring at TARGET.
    wr_addr(base, 0xa0, target);
    let readback = u64::from(rd(base + 0xa0)) | u64::from(rd(base + 0xa4)) << 32;
    wr(base + 0x44, 1);
    wr(base + 0x70, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    // A read of sector 0: header (type 0 = IN, sector 0), data, status.
    bufs.header = [0; 16];
    bufs.data = [0; 512];
    bufs.status = [0xff; 16];
    let [d0, d1, d2, ..] = &mut rings.desc;
    descriptor(d0, bufs.header.as_ptr() as u64, 16, 1, 1);
    descriptor(d1, bufs.data.as_ptr() as u64, 512, 1 | 2, 2);
    descriptor(d2, bufs.status.as_ptr() as u64, 1, 2, 0);
    // SAFETY: avail.ring[0] and avail.idx of this test's ring, which the
    // device reads after the notify.
    unsafe {
        write_volatile(&raw mut rings.avail[2], 0);
        cpu::dsb();
        write_volatile(&raw mut rings.avail[1], 1);
    }
    cpu::dsb();
    wr(base + 0x50, 0);
    let deadline = cpu::deadline_ms(TIMEOUT_MS);
    while used_idx(used) == 0 && !cpu::expired(deadline) {
        core::hint::spin_loop();
    }
    let done = used_idx(used) == 1;
    // SAFETY: the device has finished with the status and data buffers (or
    // never used them); the indices are in bounds.
    let status = unsafe { read_volatile(bufs.status.as_ptr()) };
    let head: [u8; 4] = core::array::from_fn(|i| {
        // SAFETY: as above, i < 4 < 512.
        unsafe { read_volatile(bufs.data.as_ptr().add(i)) }
    });
    wr(base + 0x64, rd(base + 0x60));
    wr(base + 0x70, 0);
    report!(
        test,
        done && readback == own_used && status == 0 && head == DISK_HEAD,
        "target={target:#x} readback={} own_ring={} status={status} data={}",
        if readback == own_used {
            "own"
        } else if readback == target {
            "target"
        } else {
            "other"
        },
        if done { "used" } else { "empty" },
        if head == DISK_HEAD { "ok" } else { "differs" }
    )
}
