//! The trapped register page of a pass-through whose DMA address registers
//! are intercepted (`dma-registers`, docs/security.md "Intercepted DMA
//! address registers"). Stage 2 leaves this one page of the device
//! unmapped; every guest access to it lands here. Accesses to other
//! registers (and to neighbours in the page) go to the device unchanged;
//! a write to a DMA address register reaches the device only as the host
//! address of a range of the guest's RAM ([`DmaGate`]), and one outside
//! is refused and logged.

use super::{Caller, Emulated};
use crate::platform::mmio::{self, MmioWindow};
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use ferrovisor_config::DmaIntercept;
use ferrovisor_sync::Mutex;
use ferrovisor_vdev::{DmaGate, GateRead, GateWrite};

/// Size of the trapped window.
pub const PAGE: u64 = 0x1000;

/// Refusals logged per device before the rest are only counted.
const LOGGED_REFUSALS: u64 = 8;

/// One device's trapped DMA register page.
pub struct DmaRegisterTrap {
    /// The gate, and the device page it guards.
    gate: Mutex<(DmaGate, MmioWindow)>,
    /// The pass-through's config node (for the log).
    path: String,
    refused: AtomicU64,
    /// The last address refused (each half of a pair refuses it once:
    /// logged once).
    last_refused: AtomicU64,
}

impl DmaRegisterTrap {
    /// The trap for `intercept` of pass-through `path`; `None` if the page
    /// is not in the EL2 device map.
    pub fn new(intercept: &DmaIntercept, path: &str) -> Option<Self> {
        // The validator gives the page to this pass-through alone (its
        // cross-guest page checks), and the guest's build makes one trap.
        let regs = mmio::passthrough_page(intercept.hpa.raw())?;
        Some(Self {
            gate: Mutex::new((DmaGate::new(intercept.registers.clone(), intercept.window), regs)),
            path: path.into(),
            refused: AtomicU64::new(0),
            last_refused: AtomicU64::new(0),
        })
    }

    /// Forgets what the guest wrote (it starts again).
    pub fn reset(&self) {
        self.gate.lock().0.reset();
    }

    /// Writes refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Counts a refused write, and logs the first few.
    fn log_refusal(&self, at: &Caller<'_>, what: core::fmt::Arguments<'_>) {
        let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= LOGGED_REFUSALS {
            let more = if n == LOGGED_REFUSALS {
                "; further refusals are only counted (passthrough list)"
            } else {
                ""
            };
            log::warn!("dma: guest {} {what}{more}", at.vm.name);
        }
    }
}

impl Emulated for Arc<DmaRegisterTrap> {
    fn read(&self, _: &Caller<'_>, offset: u64, size: u8) -> u64 {
        let state = self.gate.lock();
        let (gate, regs) = &*state;
        match gate.read(offset, size) {
            GateRead::Value(v) => v,
            GateRead::Outside => 0,
            GateRead::Through => usize::try_from(offset).map_or(0, |o| regs.read_sized(o, size)),
        }
    }

    fn write(&self, at: &Caller<'_>, offset: u64, size: u8, value: u64) {
        let mut state = self.gate.lock();
        let (gate, regs) = &mut *state;
        match gate.write(offset, size, value, |a, l| at.vm.host_range(a, l)) {
            GateWrite::Through => {
                if let Ok(o) = usize::try_from(offset) {
                    regs.write_sized(o, size, value);
                }
            }
            GateWrite::Commit { low, high } => {
                self.last_refused.store(0, Ordering::Relaxed);
                for (o, v) in [low, high] {
                    if let Ok(o) = usize::try_from(o) {
                        regs.write(o, v);
                    }
                }
            }
            GateWrite::Cleared | GateWrite::Outside => {}
            GateWrite::Refused { register, address } => {
                let low = gate.registers().get(register).map_or(0, |r| r.low);
                if self.last_refused.swap(address, Ordering::Relaxed) == address {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                self.log_refusal(
                    at,
                    format_args!(
                        "wrote DMA address {address:#x} to register {low:#x} of {}, outside its RAM: refused",
                        self.path
                    ),
                );
            }
            GateWrite::Malformed { register } => {
                let low = gate.registers().get(register).map_or(0, |r| r.low);
                self.log_refusal(at, format_args!(
                    "wrote {size} byte(s) at offset {offset:#x} of {}, part of DMA register {low:#x}: refused",
                    self.path
                ));
            }
        }
    }
}
