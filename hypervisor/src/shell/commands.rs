//! The shell's commands: one table entry each, with its usage and help.

use crate::core::{boot, cpus, footprint, guests, heap, irq, power, ticks};
use crate::println;
use ferrovisor_types::HostIrq;

struct Command {
    /// The words that select the command, e.g. `["guest", "list"]`.
    words: &'static [&'static str],
    usage: &'static str,
    help: &'static str,
    run: fn(&[&str]),
}

const COMMANDS: &[Command] = &[
    Command {
        words: &["help"],
        usage: "help",
        help: "list the commands",
        run: help,
    },
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
        words: &["guest", "list"],
        usage: "guest list",
        help: "list the configured guests",
        run: guest_list,
    },
    Command {
        words: &["halt"],
        usage: "halt",
        help: "power the machine off (PSCI SYSTEM_OFF)",
        run: halt,
    },
];

/// Runs the command named by `argv`, or explains what went wrong.
pub fn run(argv: &[&str]) {
    let Some(first) = argv.first() else { return };
    let found = COMMANDS
        .iter()
        .filter(|c| argv.len() >= c.words.len() && c.words.iter().zip(argv).all(|(a, b)| a == b))
        .max_by_key(|c| c.words.len());
    match found {
        Some(c) => (c.run)(&argv[c.words.len()..]),
        None => {
            let group: alloc::vec::Vec<&str> = COMMANDS
                .iter()
                .filter(|c| c.words[0] == *first)
                .map(|c| c.usage)
                .collect();
            if group.is_empty() {
                println!("unknown command '{first}'; type 'help' for the list");
            } else {
                println!("usage: {}", group.join(" | "));
            }
        }
    }
}

fn help(_: &[&str]) {
    for c in COMMANDS {
        println!("  {:<16} {}", c.usage, c.help);
    }
}

fn version(_: &[&str]) {
    let fp = footprint::measure();
    println!("ferrovisor {} (aarch64 EL2)", boot::VERSION);
    println!(
        "image {} bytes; hypervisor memory {} bytes; heap in use {} bytes",
        fp.image,
        fp.total,
        heap::used()
    );
}

fn cpus_cmd(_: &[&str]) {
    println!("  cpu  mpidr       state    ticks     ipis");
    for i in 0..cpus::count() {
        println!(
            "  {:<4} {:#010x}  {:<8} {:<9} {}",
            i,
            cpus::mpidr_of(i),
            if cpus::is_online(i) {
                "online"
            } else {
                "offline"
            },
            ticks::count(i),
            cpus::kicks(i)
        );
    }
    println!(
        "  spurious interrupts: {}; IPIs taken in all: {}",
        irq::spurious(),
        irq::count(HostIrq(irq::SGI_KICK))
    );
}

fn guest_list(_: &[&str]) {
    guests::with(|valid, rejected, global| {
        if valid.is_empty() && rejected.is_empty() {
            println!("no guests configured");
        }
        for g in valid {
            println!(
                "  {:<16} {:<10} vcpus {} memory {} MiB, {} pass-through device(s)",
                g.config.name,
                g.state.name(),
                g.config.vcpus,
                g.config.memory.iter().map(|m| m.size).sum::<u64>() >> 20,
                g.config.passthrough.len()
            );
            for pt in &g.config.passthrough {
                println!("      device {}", pt.name);
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

fn halt(_: &[&str]) {
    println!("ferrovisor: halting (PSCI SYSTEM_OFF)");
    power::halt();
}
