//! `read=ADDR` / `write=ADDR`: one 32-bit access that the caller expects to
//! be aborted (memory of another guest or of the hypervisor). From the
//! probe's point of view an abort is a PASS and a completed access a FAIL.

use super::{parse_u64, report};
use crate::exception::{try_read32, try_write32};

/// The value `write=` stores ("PROB").
const WRITE_VALUE: u32 = 0x5052_4f42;

/// Runs `read=`/`write=` on `addr` (the text after `=`).
pub fn run(test: &str, addr: &str, write: bool) -> bool {
    let Some(addr) = parse_u64(addr) else {
        return report!(test, false, "bad address");
    };
    if !addr.is_multiple_of(4) {
        return report!(test, false, "address not 4-byte aligned");
    }
    if write {
        match try_write32(addr, WRITE_VALUE) {
            Ok(()) => report!(test, false, "write completed value {WRITE_VALUE:#x}"),
            Err(a) => report!(test, true, "aborted esr={:#x} far={:#x}", a.esr, a.far),
        }
    } else {
        match try_read32(addr) {
            Ok(v) => report!(test, false, "read value {v:#x}"),
            Err(a) => report!(test, true, "aborted esr={:#x} far={:#x}", a.esr, a.far),
        }
    }
}
