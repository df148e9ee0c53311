//! The boot sequence, from the first Rust instruction to the shell.
//!
//! Boot CPU: heap, console, host DT, log level, GIC, timer, secondary CPUs,
//! IPI check, guest config, banner, shell. Secondary CPUs: GIC CPU interface,
//! timer, idle.

use crate::arch::aarch64::psci::Conduit;
use crate::arch::aarch64::{cpu, timer};
use crate::core::{console, cpus, footprint, guests, heap, host, logger, memory, panic, power, ticks, vm};
use crate::platform::gicv3;
use alloc::string::String;
use ferrovisor_cmdline::bootargs;
use ferrovisor_config::{HostPlatform, PsciMethod};
use ferrovisor_types::HostRegion;
use log::LevelFilter;

/// The version the banner and `version` print.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the boot arguments asked for.
pub struct BootOptions {
    /// Shell commands to run before the prompt (`ferrovisor.bootcmd=`).
    pub bootcmd: Option<String>,
    /// A deliberate crash after boot, to check the failure paths
    /// (`ferrovisor.crashtest=panic|fault`).
    pub crashtest: Option<String>,
    /// A guest whose build is made to fail at its very end, after it took
    /// everything, to check that a failed build leaves nothing behind
    /// (`ferrovisor.fail-build=NAME`, for tests).
    pub fail_build: Option<String>,
}

/// A CPU entered below or above EL2: say so and power off.
pub extern "C" fn not_el2(current_el: u64) -> ! {
    console::early_write(format_args!(
        "\nferrovisor: entered at EL{current_el}, but a hypervisor must start at EL2.\n\
         ferrovisor: on QEMU use `-M virt,virtualization=on`; on hardware, have the boot \
         loader enter the image at EL2. Powering off.\n"
    ));
    let conduit = if current_el == 1 { Conduit::Hvc } else { Conduit::Smc };
    power::set_conduit(conduit);
    power::halt()
}

/// The image was loaded somewhere other than its link address.
pub extern "C" fn wrong_address(actual: u64) -> ! {
    console::early_write(format_args!(
        "\nferrovisor: loaded at {actual:#x}, but linked to run at 0x40080000; \
         load the flat image (arm64 Image header, text_offset 0x80000) at RAM base + 0x80000.\n"
    ));
    power::halt()
}

/// Boot CPU entry from `arch::aarch64::boot`, with the host DTB address.
pub extern "C" fn primary_main(dtb_addr: usize) -> ! {
    ticks::mark_boot();
    heap::init();
    console::init();
    logger::init(LevelFilter::Info);

    let dtb = match host::dtb_from_boot(dtb_addr) {
        Ok(d) => d,
        Err(e) => panic::fatal_boot(format_args!("no usable host DTB at x0={dtb_addr:#x}: {e}")),
    };
    let platform = match HostPlatform::parse(dtb) {
        Ok(p) => host::set_platform(p),
        Err(e) => panic::fatal_boot(format_args!("host DTB: {e}")),
    };
    let options = apply_bootargs(platform);
    if let Some(uart) = &platform.console {
        if uart.region.base.raw() as usize != console::EARLY_UART {
            console::use_host_uart(uart);
        }
    }
    power::set_conduit(match platform.psci {
        Some(PsciMethod::Hvc) => Conduit::Hvc,
        _ => Conduit::Smc,
    });

    let mpidrs: alloc::vec::Vec<u64> = platform.cpus.iter().map(|m| m.0).collect();
    let plan = cpus::plan(&mpidrs);
    if !plan.boot_found {
        log::warn!("boot CPU mpidr {:#x} is not in the host DT's /cpus", cpu::mpidr());
    }
    if plan.ignored > 0 {
        log::warn!("{} CPUs beyond the supported {} are left off", plan.ignored, cpus::count());
    }

    let gic = &platform.gic;
    let gic_result = gicv3::init(gic, platform.cpus.len().max(1), cpus::gicr_index(0));
    if let Err(e) = gic_result {
        panic::fatal_boot(format_args!("{}: GICv3 setup failed: {e:?}", gic.path));
    }
    cpus::init_boot_cpu(platform.timer.hyp_phys);
    cpu::irq_enable();

    let failed = cpus::start_secondaries();
    let online = cpus::wait_online(5);
    let answered = cpus::ipi_check();
    if failed > 0 || online < cpus::count() {
        log::warn!("only {online} of {} CPUs came online", cpus::count());
    }

    let bundle = match host::bundle_bytes(platform) {
        Ok(b) => b,
        Err(e) => {
            log::error!("boot bundle named by /chosen/linux,initrd-start is unusable: {e}");
            None
        }
    };
    if let Some(b) = bundle {
        host::set_bundle(b);
    }
    let reserved = init_memory(platform, dtb, bundle);
    let smmu = crate::core::iommu::init(platform);
    let pci = crate::core::pci::init(platform);
    heap::note_boot_use();
    let boot_use = heap::boot_use() as u64;
    if boot_use > ferrovisor_config::BOOT_HEAP {
        log::warn!(
            "the hypervisor used {boot_use} bytes of heap to boot, more than the {} the validator assumes: guests get less heap than `cargo xtask validate` planned",
            ferrovisor_config::BOOT_HEAP
        );
    }
    let hyp = ferrovisor_config::Hypervisor {
        reserved,
        guest_heap: ferrovisor_config::Hypervisor::guest_heap_for(heap::HEAP_SIZE as u64, boot_use),
    };
    let configs = guests::load(dtb, bundle, &hyp);
    let configs = guests::complete_pci(configs);
    guests::create_vms(configs, options.fail_build.as_deref());
    banner(platform, online, answered, smmu.as_deref(), pci.as_deref());

    if let Some(uart) = &platform.console {
        if let Some(irq) = uart.irq {
            crate::core::irq::register(irq, |_| {
                console::on_rx_interrupt();
                crate::core::irq::Outcome::Done
            });
            let enabled = gicv3::enable(irq, cpus::gicr_index(0), cpus::mpidr_of(0), 0xa0, false);
            if enabled.is_err() {
                log::error!("{}: console input interrupt {irq} could not be enabled", uart.path);
            }
            console::enable_rx_interrupt();
            // Bytes typed before the interrupt was on are taken now.
            console::on_rx_interrupt();
        }
    }
    if let Some(kind) = options.crashtest.as_deref() {
        crashtest(kind);
    }
    start_guests();
    crate::shell::start(options.bootcmd.as_deref());
    crate::core::sched::run(Some(boot_cpu_housekeeping))
}

/// What the boot CPU does between guest time slices.
fn boot_cpu_housekeeping() {
    crate::shell::poll();
    vm::control::service_requests();
}

/// Hands host RAM to the guest allocator, minus the hypervisor (from the
/// start of RAM to its end: QEMU's boot stub sits below the image), the host
/// DTB and the boot bundle; returns those reservations, which the validator
/// keeps guests' memory clear of.
fn init_memory(
    platform: &HostPlatform,
    dtb: &[u8],
    bundle: Option<&[u8]>,
) -> alloc::vec::Vec<(HostRegion, String)> {
    let fp = footprint::measure();
    let ram_base = platform.memory.iter().map(|m| m.base.raw()).filter(|&b| b <= fp.base as u64).max();
    let hyp_start = ram_base.unwrap_or(fp.base as u64);
    let hyp = HostRegion::new(hyp_start, (fp.base + fp.total) as u64 - hyp_start);
    let page = |addr: usize, len: usize| {
        let start = addr as u64 & !0xfff;
        HostRegion::new(start, ((addr + len) as u64).next_multiple_of(0x1000) - start)
    };
    let mut reserved: alloc::vec::Vec<(HostRegion, String)> = alloc::vec![
        (hyp, String::from("hypervisor")),
        (page(dtb.as_ptr() as usize, dtb.len()), String::from("host DTB")),
    ];
    if let Some(b) = bundle {
        reserved.push((page(b.as_ptr() as usize, b.len()), String::from("boot bundle")));
    }
    let named: alloc::vec::Vec<(HostRegion, &str)> = reserved.iter().map(|(r, o)| (*r, o.as_str())).collect();
    memory::init(&platform.memory, &named);
    reserved
}

/// Starts every guest that has a kernel image, but those marked
/// `manual-start`.
fn start_guests() {
    for g in vm::all() {
        match &g.unbootable {
            Some(why) => log::info!("guest {}: not started: {why}", g.name),
            None if g.config.manual_start => {
                log::info!("guest {}: not started (manual-start): 'guest start {}' starts it", g.name, g.name)
            }
            None => {
                if let Err(e) = vm::control::start(&g) {
                    log::error!("{e}");
                }
            }
        }
    }
}

fn apply_bootargs(platform: &HostPlatform) -> BootOptions {
    let args = bootargs::parse(platform.bootargs.as_deref().unwrap_or(""));
    if let Some(level) = bootargs::get(&args, "ferrovisor.loglevel") {
        match logger::parse_level(level) {
            Some(l) => log::set_max_level(l),
            None => log::warn!(
                "ferrovisor.loglevel={level} is not a level (use off, error, warn, info, debug or trace)"
            ),
        }
    }
    vm::control::set_halt_when_idle(bootargs::has(&args, "ferrovisor.halt-when-idle"));
    BootOptions {
        bootcmd: bootargs::get(&args, "ferrovisor.bootcmd").map(String::from),
        crashtest: bootargs::get(&args, "ferrovisor.crashtest").map(String::from),
        fail_build: bootargs::get(&args, "ferrovisor.fail-build").map(String::from),
    }
}

/// The boot banner: what runs, on what, with which guests.
fn banner(platform: &HostPlatform, online: usize, answered: usize, smmu: Option<&str>, pci: Option<&str>) {
    let fp = footprint::measure();
    let ram: u64 = platform.memory.iter().map(|m| m.size).sum();
    let kib = |n: usize| n.div_ceil(1024);
    crate::println!();
    crate::println!("ferrovisor {VERSION} - ARMv8-A EL2 hypervisor");
    crate::println!("  cpus:      {online} online of {} (ipi answered by {answered})", cpus::count());
    crate::println!("  memory:    {} MiB host RAM in {} region(s)", ram >> 20, platform.memory.len());
    crate::println!(
        "  gic:       GICv{} dist {} redist {}",
        platform.gic.version,
        platform.gic.dist.base,
        platform.gic.redist.first().map_or(ferrovisor_types::HostPhysAddr(0), |r| r.base)
    );
    crate::println!(
        "  timer:     {} Hz, hypervisor tick {} Hz on {}",
        timer::frequency(),
        ticks::TICK_HZ,
        platform.timer.hyp_phys
    );
    if let Some(uart) = &platform.console {
        crate::println!("  console:   {} ({})", uart.path, uart.region.base);
    }
    if let Some(smmu) = smmu {
        crate::println!("  smmu:      {smmu}");
    }
    if let Some(pci) = pci {
        crate::println!("  pci:       {pci}");
    }
    crate::println!(
        "  boot:      {} counter ticks since reset ({} us)",
        timer::now(),
        timer::now().saturating_mul(1_000_000) / timer::frequency().max(1)
    );
    crate::println!(
        "  footprint: image {} KiB, hypervisor memory {} KiB (bss {} KiB, stacks {} KiB, heap {} KiB) at {:#x}",
        kib(fp.image),
        kib(fp.total),
        kib(fp.bss),
        kib(fp.stacks),
        kib(fp.heap),
        fp.base
    );
    let valid = vm::all();
    guests::with(|rejected, global| {
        crate::println!(
            "  guests:    {} configured, {} rejected{}",
            valid.len() + rejected.len(),
            rejected.len(),
            if global.is_empty() { "" } else { " (config errors, see above)" }
        );
        for g in &valid {
            crate::println!("    {g}");
        }
        for r in rejected {
            crate::println!("    {:<16} rejected   {} error(s)", r.name, r.errors.len());
        }
    });
    crate::println!();
}

/// Crashes on purpose, so that tests see the panic and fault reports.
fn crashtest(kind: &str) {
    log::warn!("ferrovisor.crashtest={kind}: crashing on purpose");
    match kind {
        // The one deliberate panic: it exercises the panic handler.
        #[allow(clippy::panic)]
        "panic" => panic!("crash test requested by ferrovisor.crashtest=panic"),
        "fault" => crate::arch::aarch64::cpu::touch_unmapped(),
        _ => log::error!("ferrovisor.crashtest={kind} is unknown (use panic or fault); ignored"),
    }
}

/// Secondary CPU entry from `arch::aarch64::boot`.
pub extern "C" fn secondary_main(index: usize) -> ! {
    cpus::secondary_start(index);
    crate::core::sched::run(None)
}
