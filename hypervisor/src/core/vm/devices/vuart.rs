//! The emulated PL011 of a guest: the register model
//! ([`ferrovisor_vdev::pl011::Pl011`]) on the MMIO bus, its interrupt line
//! driven into the vGIC, its output assembled into tagged console lines
//! and its input fed from the console.

use super::{Caller, Emulated};
use crate::core::vm::{console, Vm};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use ferrovisor_sync::Mutex;
use ferrovisor_types::{GuestIrq, GuestPhysAddr, VcpuId};
use ferrovisor_vdev::bus::MmioDevice;
use ferrovisor_vdev::pl011::Pl011;
use ferrovisor_vdev::tagged::LineTagger;

/// Most typed bytes held for a guest whose UART FIFO is full.
pub const INPUT_BACKLOG: usize = 4096;

/// The emulated PL011 of a guest and the line buffer of its output.
pub struct Vuart {
    /// Guest-physical base (4 KiB window).
    pub gpa: GuestPhysAddr,
    /// The guest interrupt it raises.
    pub irq: GuestIrq,
    /// The register model.
    pub dev: Mutex<Pl011>,
    /// Output assembled into tagged console lines.
    pub tagger: Mutex<LineTagger>,
    /// Typed bytes waiting for room in the UART's receive FIFO.
    pub input: Mutex<VecDeque<u8>>,
    /// The interrupt line as last driven into the vGIC.
    level: AtomicBool,
}

impl Vuart {
    /// A UART at `gpa` raising `irq`, for guest `name`'s console lines.
    pub fn new(gpa: GuestPhysAddr, irq: GuestIrq, name: &str) -> Self {
        Self {
            gpa,
            irq,
            dev: Mutex::new(Pl011::new()),
            tagger: Mutex::new(LineTagger::new(name)),
            input: Mutex::new(VecDeque::new()),
            level: AtomicBool::new(false),
        }
    }

    /// Moves waiting input into the receive FIFO while it has room, and
    /// drives the interrupt line.
    pub fn feed(&self, vm: &Vm) {
        {
            let mut input = self.input.lock();
            if !input.is_empty() {
                let mut dev = self.dev.lock();
                while dev.rx_space() > 0 {
                    match input.pop_front() {
                        Some(b) => {
                            dev.push_rx(b);
                        }
                        None => break,
                    }
                }
            }
        }
        self.sync_irq(vm);
    }

    /// Drives the interrupt line into the vGIC from the UART model.
    fn sync_irq(&self, vm: &Vm) {
        let level = self.dev.lock().irq_level();
        if self.level.swap(level, Ordering::AcqRel) == level {
            return;
        }
        vm.vgic_update(|vgic, fx| vgic.set_level(self.irq, VcpuId::of::<0>(), level, fx));
    }
}

/// The UART's registers on the bus.
pub struct VuartRegs(pub Arc<Vuart>);

impl Emulated for VuartRegs {
    fn read(&self, at: &Caller<'_>, offset: u64, size: u8) -> u64 {
        let value = self.0.dev.lock().read(offset, size);
        // A read may have emptied the receive FIFO: refill it, and follow
        // the interrupt line.
        self.0.feed(at.vm);
        value
    }

    fn write(&self, at: &Caller<'_>, offset: u64, size: u8, value: u64) {
        let mut out = Vec::new();
        {
            let mut dev = self.0.dev.lock();
            dev.write(offset, size, value);
            dev.drain_tx(&mut out);
        }
        self.0.feed(at.vm);
        if !out.is_empty() {
            console::guest_output(at.vm, &out);
        }
    }
}
