//! The shell's commands: one table entry each, with its usage and help.

use crate::core::vm::{self, control, VmState, EXIT_NAMES};
use crate::core::{boot, cpus, footprint, guests, heap, irq, memory, power, ticks};
use crate::println;
use core::sync::atomic::Ordering;
use ferrovisor_types::HostIrq;

struct Command {
    /// The words that select the command, e.g. `["guest", "list"]`.
    words: &'static [&'static str],
    /// The words, then one placeholder per argument the command takes.
    usage: &'static str,
    help: &'static str,
    run: fn(&[&str]),
}

const COMMANDS: &[Command] = &[
    Command { words: &["help"], usage: "help", help: "list the commands", run: help },
    Command {
        words: &["version"],
        usage: "version",
        help: "show the hypervisor version and footprint",
        run: version,
    },
    Command {
        words: &["cpus"],
        usage: "cpus",
        help: "show the physical CPUs: state, ticks, IPIs",
        run: cpus_cmd,
    },
    Command {
        words: &["interrupts"],
        usage: "interrupts",
        help: "show how often each physical interrupt was taken (all CPUs)",
        run: interrupts_cmd,
    },
    Command {
        words: &["memory"],
        usage: "memory",
        help: "show host RAM: who holds what (hypervisor, boot blobs, guests), and what is free",
        run: memory_cmd,
    },
    Command {
        words: &["guest", "list"],
        usage: "guest list",
        help: "list the guests: state, vCPUs, memory, devices, stuck vCPUs",
        run: guest_list,
    },
    Command {
        words: &["guest", "info"],
        usage: "guest info NAME",
        help: "show a guest's VMID, RAM and stage-2 mappings",
        run: guest_info,
    },
    Command {
        words: &["guest", "start"],
        usage: "guest start NAME",
        help: "boot a stopped guest from its images",
        run: guest_start,
    },
    Command { words: &["guest", "stop"], usage: "guest stop NAME", help: "stop a guest", run: guest_stop },
    Command {
        words: &["guest", "reset"],
        usage: "guest reset NAME",
        help: "restart a guest from its images",
        run: guest_reset,
    },
    Command {
        words: &["guest", "pause"],
        usage: "guest pause NAME",
        help: "hold a guest's vCPUs",
        run: guest_pause,
    },
    Command {
        words: &["guest", "resume"],
        usage: "guest resume NAME",
        help: "continue a paused guest",
        run: guest_resume,
    },
    Command {
        words: &["passthrough", "list"],
        usage: "passthrough list",
        help: "list passed-through devices: owner, regions, interrupts with counts, DMA protection",
        run: passthrough_list,
    },
    Command {
        words: &["passthrough", "assign"],
        usage: "passthrough assign DEVICE GUEST",
        help: "move a host device (its host DT path) to a stopped guest that lists it; the guest that had it loses it at once",
        run: passthrough_assign,
    },
    Command {
        words: &["vcpu", "list"],
        usage: "vcpu list",
        help: "list the vCPUs: pCPU, state, exits by reason, times scheduled in, faults, stuck",
        run: vcpu_list,
    },
    Command {
        words: &["console", "attach"],
        usage: "console attach NAME",
        help: "type into a guest's console (Ctrl-] comes back)",
        run: console_attach,
    },
    Command { words: &["halt"], usage: "halt", help: "power the machine off (PSCI SYSTEM_OFF)", run: halt },
];

/// Runs the command named by `argv`, or explains what went wrong (an
/// unknown command, or more arguments than its usage shows).
pub fn run(argv: &[&str]) {
    let Some(first) = argv.first() else { return };
    let found = COMMANDS
        .iter()
        .filter(|c| argv.len() >= c.words.len() && c.words.iter().zip(argv).all(|(a, b)| a == b))
        .max_by_key(|c| c.words.len());
    match found {
        Some(c) => {
            let args = argv.get(c.words.len()..).unwrap_or(&[]);
            let takes = c.usage.split_whitespace().count().saturating_sub(c.words.len());
            if args.len() > takes {
                println!(
                    "'{}' takes {} argument{}, {} given; usage: {}",
                    c.words.join(" "),
                    takes,
                    if takes == 1 { "" } else { "s" },
                    args.len(),
                    c.usage
                );
            } else {
                (c.run)(args);
            }
        }
        None => {
            let group: alloc::vec::Vec<&str> =
                COMMANDS.iter().filter(|c| c.words[0] == *first).map(|c| c.usage).collect();
            if group.is_empty() {
                println!("unknown command '{first}'; type 'help' for the list");
            } else {
                println!("usage: {}", group.join(" | "));
            }
        }
    }
}

fn memory_cmd(_: &[&str]) {
    let held = memory::reservations();
    for (region, owner) in &held {
        println!(
            "  {:#012x}-{:#012x} {:>8} KiB  {owner}",
            region.base.raw(),
            region.end() - 1,
            region.size >> 10
        );
    }
    let total: u64 = held.iter().map(|(r, _)| r.size).sum();
    println!(
        "  held {} KiB in {} range(s); free {} KiB; heap in use {} of {} KiB ({} KiB before the guests were built)",
        total >> 10,
        held.len(),
        memory::free_bytes() >> 10,
        heap::used() >> 10,
        heap::HEAP_SIZE >> 10,
        heap::boot_use().div_ceil(1024)
    );
}

fn help(_: &[&str]) {
    for c in COMMANDS {
        println!("  {:<20} {}", c.usage, c.help);
    }
}

fn version(_: &[&str]) {
    let fp = footprint::measure();
    println!("ferrovisor {} (aarch64 EL2)", boot::VERSION);
    println!(
        "image {} bytes; hypervisor memory {} bytes; heap in use {} bytes; host RAM free {} MiB",
        fp.image,
        fp.total,
        heap::used(),
        memory::free_bytes() >> 20
    );
}

fn cpus_cmd(_: &[&str]) {
    println!("  cpu  mpidr       state    ticks     ipis");
    for i in 0..cpus::count() {
        println!(
            "  {:<4} {:#010x}  {:<8} {:<9} {}",
            i,
            cpus::mpidr_of(i),
            if cpus::is_online(i) { "online" } else { "offline" },
            ticks::count(i),
            cpus::kicks(i)
        );
    }
    println!("  spurious interrupts: {}; IPIs taken in all: {}", irq::spurious(), irq::count(irq::SGI_KICK));
}

fn interrupts_cmd(_: &[&str]) {
    println!("  intid  taken");
    for i in (0..irq::MAX_HANDLED as u32).filter_map(HostIrq::new) {
        let n = irq::count(i);
        if n != 0 {
            println!("  {:<6} {n}", i.raw());
        }
    }
    println!("  spurious: {}", irq::spurious());
}

fn guest_list(_: &[&str]) {
    let vms = vm::all();
    guests::with(|rejected, global| {
        if vms.is_empty() && rejected.is_empty() {
            println!("no guests configured");
        }
        for g in &vms {
            println!("  {g}");
            for (index, pt) in g.config.passthrough.iter().enumerate() {
                let standby = if g.has_device(index) { "" } else { " (standby)" };
                println!("      device {}{standby}", pt.name);
            }
            for (i, v) in g.vcpus.iter().enumerate() {
                if let Some(stuck) = stuck(g, v) {
                    println!("      vcpu{i} stuck: faulting, {stuck}");
                }
            }
            if let Some(why) = &g.unbootable {
                println!("      cannot start: {why}");
            }
        }
        for r in rejected {
            println!("  {:<16} rejected", r.name);
            for e in &r.errors {
                println!("      {e}");
            }
        }
        for e in global {
            println!("  config error: {e}");
        }
    });
}

/// The guest named by the first argument, or a message.
fn named(args: &[&str], usage: &str) -> Option<alloc::sync::Arc<vm::Vm>> {
    let Some(name) = args.first() else {
        println!("usage: {usage}");
        return None;
    };
    let found = vm::by_name(name);
    if found.is_none() {
        let rejected = guests::with(|r, _| r.iter().any(|r| r.name == *name));
        if rejected {
            println!("guest {name} was rejected by the config validator (see 'guest list')");
        } else {
            println!("no guest called '{name}' (see 'guest list')");
        }
    }
    found
}

fn report(result: Result<(), control::ControlError>) {
    if let Err(e) = result {
        println!("{e}");
    }
}

fn guest_info(args: &[&str]) {
    let Some(g) = named(args, "guest info NAME") else { return };
    println!("guest {} ({}), VMID {}, {} vCPU(s)", g.name, g.state().name(), g.vmid, g.vcpus.len());
    let mem = g.memory.lock();
    for slab in &mem.ram {
        let host = slab.host.region();
        println!(
            "  ram    guest {:#012x}..{:#012x} <- host {:#012x}{}",
            slab.gpa.raw(),
            slab.gpa.raw() + host.size,
            host.base.raw(),
            if slab.identity { " (identity)" } else { "" }
        );
    }
    println!("  stage-2 tables: {} page(s) of 4 KiB", mem.stage2.table_count());
    for m in mem.stage2.mappings() {
        println!("  map    {m}");
    }
    if let Some(v) = &g.vuart {
        println!("  vuart  pl011 at guest {:#x} (emulated)", v.gpa.raw());
    }
}

fn guest_start(args: &[&str]) {
    if let Some(g) = named(args, "guest start NAME") {
        if g.state() != VmState::Stopped {
            println!("guest {} is {}; use 'guest reset {}' to restart it", g.name, g.state().name(), g.name);
            return;
        }
        report(control::start(&g));
    }
}

fn guest_stop(args: &[&str]) {
    if let Some(g) = named(args, "guest stop NAME") {
        report(control::stop(&g));
    }
}

fn guest_reset(args: &[&str]) {
    if let Some(g) = named(args, "guest reset NAME") {
        report(control::start(&g));
    }
}

fn guest_pause(args: &[&str]) {
    if let Some(g) = named(args, "guest pause NAME") {
        report(control::pause(&g));
    }
}

fn guest_resume(args: &[&str]) {
    if let Some(g) = named(args, "guest resume NAME") {
        report(control::resume(&g));
    }
}

/// How `passthrough list` names a pass-through's device.
fn device_name(pt: &ferrovisor_config::PassthroughConfig) -> alloc::string::String {
    match (&pt.host_device, pt.pci) {
        (Some(path), _) => path.clone(),
        (None, Some(f)) => alloc::format!("pci {}", f.bdf),
        (None, None) => alloc::string::String::from("raw region"),
    }
}

fn passthrough_list(_: &[&str]) {
    use ferrovisor_config::DmaProtection;
    let mut any = false;
    for g in vm::all() {
        for (index, pt) in g.config.passthrough.iter().enumerate() {
            any = true;
            if !g.has_device(index) {
                let device = device_name(pt);
                let holder = vm::assign::holder(&device)
                    .map_or(alloc::string::String::from("nobody has it"), |(o, _)| {
                        alloc::format!("guest {} has it", o.name)
                    });
                println!("  {device} -> guest {} ({}): standby, {holder}", g.name, pt.name);
                continue;
            }
            let dma = match pt.dma {
                DmaProtection::None => alloc::string::String::from("dma: not a bus master"),
                DmaProtection::Iommu => {
                    let streams: alloc::vec::Vec<alloc::string::String> = pt
                        .streams
                        .iter()
                        .map(|&sid| alloc::format!("{sid:#x} {}", crate::core::iommu::state(sid, g.id)))
                        .collect();
                    let ctx = g.dma.as_ref().map_or(alloc::string::String::new(), |c| {
                        alloc::format!("; context {}, {} table(s)", c.describe(), c.table_count())
                    });
                    alloc::format!("dma: smmu (stream {}{ctx})", streams.join(", "))
                }
                DmaProtection::UnprotectedAcknowledged => alloc::string::String::from(
                    "dma: identity, acknowledged (UNPROTECTED: it can reach all host memory)",
                ),
                DmaProtection::Intercepted { acknowledged } => {
                    let pairs = pt.intercept.as_ref().map_or(0, |i| i.registers.len());
                    let refused =
                        g.dma_traps.iter().find(|(i, _)| *i == index).map_or(0, |(_, t)| t.refused());
                    let rest = if acknowledged {
                        "; addresses it reads from memory: identity, acknowledged (UNPROTECTED)"
                    } else {
                        ""
                    };
                    alloc::format!("dma: intercepted ({pairs} address register(s) checked, {refused} write(s) refused{rest})")
                }
            };
            println!("  {} -> guest {} ({}); {}", device_name(pt), g.name, pt.name, dma);
            for r in &pt.regions {
                let trapped = pt
                    .intercept
                    .as_ref()
                    .filter(|i| i.hpa.raw().checked_sub(r.hpa.raw()).is_some_and(|o| o < r.size));
                let how = match trapped {
                    Some(i) => alloc::format!("device memory; its page {:#x} traps", i.hpa.raw()),
                    None => alloc::string::String::from("device memory, no trap"),
                };
                println!(
                    "      mmio  host {:#x} -> guest {:#x}, {:#x} bytes ({how})",
                    r.hpa.raw(),
                    r.gpa.raw(),
                    r.size
                );
            }
            if let Some(i) = &pt.intercept {
                println!(
                    "      trap  host {:#x} -> guest {:#x}, 0x1000 bytes (its DMA address registers: every access traps)",
                    i.hpa.raw(),
                    i.gpa.raw()
                );
            }
            for f in g.forwards.iter().filter(|f| f.device == index) {
                println!(
                    "      irq   host {} -> guest {} ({}), forwarded {} time(s)",
                    f.host.raw(),
                    f.guest.raw(),
                    if f.edge { "Edge" } else { "Level" },
                    crate::core::passthrough::count(f.host)
                );
            }
            for line in vm::scmi::describe(pt) {
                println!("      scmi  {line}");
            }
        }
    }
    if !any {
        println!("no pass-through devices configured");
    }
    let (events, lost) = crate::core::iommu::counts();
    if events + lost > 0 {
        println!("  smmu: {events} blocked DMA or configuration event(s) reported, {lost} overflow(s)");
    }
}

fn passthrough_assign(args: &[&str]) {
    let (Some(device), Some(_)) = (args.first(), args.get(1)) else {
        println!("usage: passthrough assign DEVICE GUEST (DEVICE: a host DT path, e.g. /pl031@9010000)");
        return;
    };
    let Some(g) = named(args.get(1..).unwrap_or(&[]), "passthrough assign DEVICE GUEST") else { return };
    match vm::assign::assign(device, &g) {
        Ok(done) => println!("{done}"),
        Err(e) => println!("{e}"),
    }
}

fn vcpu_list(_: &[&str]) {
    println!("  guest            vcpu pcpu state      exits: {}  loads faults", EXIT_NAMES.join(" "));
    for g in vm::all() {
        for (i, v) in g.vcpus.iter().enumerate() {
            let power = match *v.power.lock() {
                ferrovisor_psci::VcpuPower::On => "on",
                ferrovisor_psci::VcpuPower::OnPending => "starting",
                ferrovisor_psci::VcpuPower::Off => "off",
            };
            let counts: alloc::vec::Vec<alloc::string::String> =
                v.exits.iter().map(|c| alloc::format!("{}", c.load(Ordering::Relaxed))).collect();
            let loads = v.loads.load(Ordering::Relaxed);
            let faults = v.faults.count();
            println!(
                "  {:<16} {:<4} {:<4} {:<10} {}  {loads} {faults}",
                g.name,
                i,
                v.pcpu,
                power,
                counts.join(" ")
            );
            if let Some(stuck) = stuck(&g, v) {
                println!("      stuck: faulting, {stuck}");
            }
        }
    }
}

/// Whether vCPU `v` of `g` keeps re-taking the same fault (only a running
/// or paused guest can be stuck).
fn stuck(g: &vm::Vm, v: &vm::VcpuShared) -> Option<vm::faults::Stuck> {
    if g.state() == VmState::Stopped {
        return None;
    }
    v.faults.stuck(vm::faults::progress(v))
}

fn console_attach(args: &[&str]) {
    if let Some(g) = named(args, "console attach NAME") {
        if g.vuart.is_none() {
            println!("guest {} has no emulated UART", g.name);
            return;
        }
        println!("[console attached to {}; press Ctrl-] to come back]", g.name);
        vm::console::attach(&g);
    }
}

fn halt(_: &[&str]) {
    println!("ferrovisor: halting (PSCI SYSTEM_OFF)");
    crate::core::console::flush();
    power::halt();
}
