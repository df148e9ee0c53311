//! The SCMI platform the hypervisor plays for its guests (docs/passthrough.md,
//! "Clocks, power and resets"): one platform model for the board
//! ([`ferrovisor_scmi::platform::Platform`]), one agent per guest that has
//! pass-through devices with clocks, power domains or resets, and what the
//! model's events do to those devices.
//!
//! A call is an SMC or HVC with function id [`ferrovisor_config::scmi::SMC_ID`]
//! from a guest with a channel: the request is copied out of the channel
//! page, answered through the guest's view (only its own resources), the
//! response written back and the channel marked free, all before the call
//! returns 0. Then the events are carried out:
//!
//! * a power domain off: every device in it is unmapped from its guest's
//!   stage 2 (its accesses abort) and its interrupts are disabled on the
//!   physical GIC; on: mapped again, interrupts as the guest's vGIC has
//!   them enabled. Devices with a power domain start unmapped (the domain
//!   starts off).
//! * a reset (pulse or assertion): every device on the line is put back
//!   into a quiet state where the hypervisor knows how
//!   ([`reset_device`]) and its interrupt state is dropped.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use ferrovisor_config::scmi::GuestScmi;
use ferrovisor_config::{GuestConfig, PassthroughConfig};
use ferrovisor_scmi::platform::{Event, Platform};
use ferrovisor_scmi::{AgentView, MsgHeader, Rates, Resource};
use ferrovisor_stage2::MemAttrs;
use ferrovisor_sync::Mutex;
use ferrovisor_types::VcpuId;

use super::devices::scmi::ScmiChannel;
use super::Vm;
use crate::arch::aarch64::guest;
use crate::platform::gicv3;

/// The board's clock, power and reset controller, for every guest.
static PLATFORM: Mutex<Option<Platform>> = Mutex::new(None);

/// A guest's SCMI agent: its channel and what it may see.
pub struct Agent {
    /// The shared-memory page (also on the guest's MMIO bus).
    pub channel: Arc<ScmiChannel>,
    /// Its resources by agent-local id, mapped to platform ids.
    pub view: AgentView,
}

/// Fills the platform model from every accepted guest's config, before any
/// guest is built: power domains and reset lines owned by the guest that
/// has their device at boot (VM id = position among the accepted guests;
/// nobody if every listing is `standby`), clocks shared by name.
pub fn init(configs: &[GuestConfig]) {
    let mut p = Platform::new();
    for (id, g) in configs.iter().enumerate() {
        for pt in &g.passthrough {
            let owner = (!pt.standby).then_some(id);
            if let Some(name) = &pt.scmi.power {
                match p.power_named(name) {
                    None => {
                        p.add_power(name, owner);
                    }
                    Some(d) if owner.is_some() => p.set_owner(Some(d), None, owner),
                    Some(_) => {}
                }
            }
            if let Some(name) = &pt.scmi.reset {
                match p.reset_named(name) {
                    None => {
                        p.add_reset(name, owner);
                    }
                    Some(r) if owner.is_some() => p.set_owner(None, Some(r), owner),
                    Some(_) => {}
                }
            }
            for c in &pt.scmi.clocks {
                if p.clock_named(&c.name).is_none() {
                    let rate = u64::from(c.rate.unwrap_or(0));
                    p.add_clock(&c.name, Rates::Discrete(alloc::vec![rate]), rate);
                }
            }
        }
    }
    *PLATFORM.lock() = Some(p);
}

/// The agent of guest `config`, if its devices have SCMI resources.
pub fn agent_for(config: &GuestConfig) -> Option<Agent> {
    let ids = GuestScmi::of(config);
    if ids.is_empty() || config.scmi_channel.is_none() {
        return None;
    }
    let guard = PLATFORM.lock();
    let p = guard.as_ref()?;
    let res = |name: &str, id: Option<u32>| id.map(|platform_id| Resource { name: name.into(), platform_id });
    let view = AgentView {
        name: config.name.clone(),
        power: ids.power.iter().filter_map(|n| res(n, p.power_named(n))).collect(),
        resets: ids.resets.iter().filter_map(|n| res(n, p.reset_named(n))).collect(),
        // The guest DT keeps its fixed `apb-pclk` clock (the vUART's): an
        // SCMI clock's name differs from every clock name it has.
        clocks: ids.clocks.iter().filter_map(|c| res(&clock_name(&c.name), p.clock_named(&c.name))).collect(),
    };
    Some(Agent { channel: Arc::new(ScmiChannel::new()), view })
}

/// The name a guest sees for platform clock `name`: `scmi-` first (the
/// guest DT has a fixed clock called `apb-pclk`), at most 15 bytes.
fn clock_name(name: &str) -> String {
    let mut n = alloc::format!("scmi-{name}");
    n.truncate(ferrovisor_config::scmi::MAX_NAME);
    n
}

/// Whether a pass-through's registers are mapped when its guest starts: not
/// if it sits in a power domain (domains start off).
pub fn mapped_at_start(pt: &PassthroughConfig) -> bool {
    pt.scmi.power.is_none()
}

/// An SCMI call (SMC/HVC with the SCMI function id) from `vm`; false if the
/// guest has no SCMI channel (the caller answers NOT_SUPPORTED).
pub fn call(vm: &Vm) -> bool {
    let Some(agent) = &vm.scmi else { return false };
    let events = {
        let mut guard = PLATFORM.lock();
        let Some(platform) = guard.as_mut() else { return false };
        agent.channel.with(|page| match ferrovisor_scmi::smt::take_request(page) {
            Ok(req) => {
                let resp = ferrovisor_scmi::handle(
                    &agent.view,
                    &mut platform.agent(vm.id),
                    req.header,
                    &req.payload,
                );
                note(vm, req.header, resp.status());
                ferrovisor_scmi::smt::put_response(page, resp.header, &resp.payload);
            }
            Err(e) => {
                log::warn!("guest {}: SCMI call with no valid request in its channel ({e:?})", vm.name);
                ferrovisor_scmi::smt::put_error(page);
            }
        });
        platform.take_events()
    };
    apply(&events);
    true
}

/// Logs a refused command (debug level for the rest).
fn note(vm: &Vm, h: MsgHeader, status: u32) {
    if status == ferrovisor_scmi::Status::Success.raw() {
        log::debug!("guest {}: SCMI protocol {:#x} message {:#x}: done", vm.name, h.protocol, h.message);
    } else {
        log::info!(
            "guest {}: SCMI protocol {:#x} message {:#x} refused (status {})",
            vm.name,
            h.protocol,
            h.message,
            status as i32
        );
    }
}

/// The guest stopped or restarts: its agent's clock votes are dropped and
/// its power domains switched off (its devices unmapped), and its channel
/// is freed.
pub fn release(vm: &Vm) {
    let events = {
        let mut guard = PLATFORM.lock();
        let Some(p) = guard.as_mut() else { return };
        p.release(vm.id);
        p.take_events()
    };
    apply(&events);
    if let Some(agent) = &vm.scmi {
        agent.channel.reset();
    }
}

/// Carries out the platform's events on the devices.
fn apply(events: &[Event]) {
    for e in events {
        match *e {
            Event::Power { domain, on } => {
                let name =
                    PLATFORM.lock().as_ref().and_then(|p| p.power_domain(domain).map(|d| d.name.clone()));
                let Some(name) = name else { continue };
                for vm in super::all() {
                    for (index, pt) in vm.devices() {
                        if pt.scmi.power.as_deref() == Some(name.as_str()) {
                            power(&vm, index, pt, on);
                        }
                    }
                }
            }
            // A pulse or an assertion puts the devices on the line back
            // into their reset state; a release has nothing to undo.
            Event::Reset { line, hold: None | Some(true) } => {
                let name = PLATFORM.lock().as_ref().and_then(|p| p.reset_line(line).map(|r| r.name.clone()));
                let Some(name) = name else { continue };
                for vm in super::all() {
                    for (index, pt) in vm.devices() {
                        if pt.scmi.reset.as_deref() == Some(name.as_str()) {
                            reset_device(&vm, index, pt);
                        }
                    }
                }
            }
            Event::Reset { hold: Some(false), .. } => {}
        }
    }
}

/// Maps or unmaps pass-through `pt` (entry `index`) of `vm`, and its
/// interrupts with it.
fn power(vm: &Vm, index: usize, pt: &PassthroughConfig, on: bool) {
    set_mapped(vm, index, pt, on);
    log::info!(
        "guest {}: {} powered {}",
        vm.name,
        pt.path,
        if on { "on (mapped)" } else { "off (unmapped)" }
    );
}

/// Maps (`on`) or unmaps pass-through `pt`'s registers in `vm`'s stage 2,
/// and enables (as the guest's vGIC has them) or disables its interrupts.
pub(super) fn set_mapped(vm: &Vm, index: usize, pt: &PassthroughConfig, on: bool) {
    {
        let mut mem = vm.memory.lock();
        for r in &pt.regions {
            let done = if on {
                mem.stage2.map(r.gpa, r.hpa, r.size, MemAttrs::Device).map(|_| ())
            } else {
                mem.stage2.unmap(r.gpa, r.size).map(|_| ())
            };
            if let Err(e) = done {
                log::error!(
                    "guest {}: {}: cannot {} {}: {e}",
                    vm.name,
                    pt.path,
                    if on { "map" } else { "unmap" },
                    r.gpa
                );
            }
        }
        // The page of intercepted DMA address registers stays trapped;
        // what the guest wrote there before is forgotten.
        if let (true, Some(i)) = (on, &pt.intercept) {
            if let Err(e) = mem.stage2.unmap(i.gpa, crate::core::vm::devices::dmaregs::PAGE) {
                log::error!("guest {}: {}: cannot trap {}: {e}", vm.name, pt.path, i.gpa);
            }
            vm.dma_traps.iter().filter(|(d, _)| *d == index).for_each(|(_, t)| t.reset());
        }
    }
    guest::publish_tables();
    guest::flush_guest_tlb(ferrovisor_stage2::VTCR_EL2, vm.vttbr);
    for f in vm.forwards.iter().filter(|f| f.device == index) {
        let enabled =
            on && vm.vgic.inspect(|g| g.irq_info(f.guest, VcpuId::of::<0>()).is_some_and(|i| i.enabled));
        let _ = gicv3::set_enabled(f.host, enabled);
    }
}

/// Puts pass-through `pt` (entry `index`) of `vm` back into a quiet state
/// where the hypervisor knows how (`platform::devreset`: virtio-mmio reset,
/// PL031/PL061 interrupts masked and cleared), and drops its interrupts'
/// state: deactivated on the physical GIC, neither pending nor active in
/// the guest's vGIC.
pub fn reset_device(vm: &Vm, index: usize, pt: &PassthroughConfig) {
    let (Some(dt), Some(region)) = (&pt.dt, pt.regions.first()) else { return };
    let Some(&(gpa, size)) = dt.regs.first() else { return };
    let base = region.hpa.raw().wrapping_add(gpa.raw().wrapping_sub(region.gpa.raw()));
    let what = crate::platform::devreset::reset(&dt.compatible, base, size);
    let dist = vm.vgic_config().dist_base.raw();
    for f in vm.forwards.iter().filter(|f| f.device == index) {
        gicv3::deactivate(f.host);
        let (word, bit) = (u64::from(f.guest.raw() / 32) * 4, 1u64 << (f.guest.raw() % 32));
        // GICD_ICPENDR<n> and GICD_ICACTIVER<n>, as the guest would write them.
        for reg in [0x280u64, 0x380] {
            let addr = ferrovisor_types::GuestPhysAddr(dist + reg + word);
            vm.vgic_update(|g, fx| g.mmio_write(VcpuId::of::<0>(), addr, 4, bit, fx));
        }
    }
    log::info!("guest {}: {} reset ({what:?})", vm.name, pt.path);
}

/// Quiesces every pass-through of a stopping guest before anything else
/// could reuse what it touched: its devices reset (a DMA master's DMA
/// stops with it), then its power domains off and clock votes dropped
/// ([`release`]), then every device unmapped. The caller has masked and
/// deactivated its interrupts.
pub fn quiesce(vm: &Vm) {
    for (index, pt) in vm.devices() {
        reset_device(vm, index, pt);
    }
    release(vm);
    // Devices outside a power domain leave the stopped guest's stage 2 too.
    for (index, pt) in vm.devices() {
        if mapped_at_start(pt) {
            set_mapped(vm, index, pt, false);
        }
    }
}

/// A guest starts: its devices outside a power domain are mapped again
/// (those in one wait for the guest to power it on).
pub fn map_at_start(vm: &Vm) {
    for (index, pt) in vm.devices() {
        if mapped_at_start(pt) {
            set_mapped(vm, index, pt, true);
        }
    }
}

/// A device changes hands (`passthrough assign`): its power domain and
/// reset line go to guest `to` (a VM id; None: nobody), the domain switched
/// off on the way (the model queues that; no guest has the device while
/// this runs, so nothing is mapped or unmapped by it).
pub fn hand_over(pt: &PassthroughConfig, to: Option<usize>) {
    let events = {
        let mut guard = PLATFORM.lock();
        let Some(p) = guard.as_mut() else { return };
        let domain = pt.scmi.power.as_deref().and_then(|n| p.power_named(n));
        let line = pt.scmi.reset.as_deref().and_then(|n| p.reset_named(n));
        p.set_owner(domain, line, to);
        p.take_events()
    };
    apply(&events);
}

/// What the shell shows of the SCMI resources of a pass-through.
pub fn describe(pt: &PassthroughConfig) -> Vec<String> {
    let guard = PLATFORM.lock();
    let Some(p) = guard.as_ref() else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(d) = pt.scmi.power.as_deref().and_then(|n| p.power_named(n)).and_then(|i| p.power_domain(i)) {
        out.push(alloc::format!("power domain {}: {}", d.name, if d.on { "on" } else { "off" }));
    }
    for c in pt.scmi.clocks.iter().filter_map(|c| p.clock_named(&c.name).and_then(|i| p.clock(i))) {
        out.push(alloc::format!(
            "clock {}: {} at {} Hz, started {} time(s)",
            c.name,
            if c.running() { "running" } else { "stopped" },
            c.rate,
            c.starts
        ));
    }
    if let Some(r) = pt.scmi.reset.as_deref().and_then(|n| p.reset_named(n)).and_then(|i| p.reset_line(i)) {
        out.push(alloc::format!(
            "reset {}: {}, {} reset(s)",
            r.name,
            if r.asserted { "asserted" } else { "released" },
            r.resets
        ));
    }
    out
}
