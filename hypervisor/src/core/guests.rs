//! The guest configuration at boot: read from the bundle, validated, and
//! turned into VMs ([`create_vms`]). Guests the validator (or VM
//! construction) refuses are kept as "rejected" with their messages, so the
//! shell can show why.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use ferrovisor_bundle::{Bundle, CONFIG_FILE};
use ferrovisor_config::{GuestConfig, Hypervisor, LoadOutcome};
use ferrovisor_sync::Mutex;

use crate::core::vm::error::{Failure, VmBuildError};

/// A guest that could not be set up, with the messages that explain why.
pub struct Rejected {
    /// The guest's name (the config node name).
    pub name: String,
    /// One line per error, as `cargo xtask validate` prints them.
    pub errors: Vec<String>,
}

struct Registry {
    rejected: Vec<Rejected>,
    /// Errors that concern no single guest (bundle, config DTB).
    global_errors: Vec<String>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { rejected: Vec::new(), global_errors: Vec::new() });

/// Reads the config from the bundle, validates it against the host DT and
/// what the hypervisor occupies (`hyp`: its RAM placement and the heap it
/// has for guests), logs every error and warning, and returns the valid
/// guests, their RAM planned.
pub fn load(host_dtb: &[u8], bundle: Option<&[u8]>, hyp: &Hypervisor) -> Vec<GuestConfig> {
    let Some(bytes) = bundle else {
        log::warn!("no boot bundle (QEMU -initrd): no guests are configured");
        return Vec::new();
    };
    let bundle = match Bundle::parse(bytes) {
        Ok(b) => b,
        Err(e) => {
            global_error(e.to_string());
            return Vec::new();
        }
    };
    let Some(config_dtb) = bundle.get(CONFIG_FILE) else {
        global_error(alloc::format!("boot bundle has no {CONFIG_FILE}: no guests are configured"));
        return Vec::new();
    };
    let names = bundle.names();
    let mut outcome: LoadOutcome = ferrovisor_config::load(host_dtb, config_dtb, &names, hyp);
    ferrovisor_guestboot::reject_unfit(&mut outcome, &|name| bundle.get(name));
    for w in &outcome.warnings {
        log::warn!("config warning: {w}");
    }
    for e in &outcome.errors {
        log::error!("config error: {e}");
        match &e.guest {
            Some(name) => reject(name, e.to_string()),
            None => REGISTRY.lock().global_errors.push(e.to_string()),
        }
    }
    for name in &outcome.rejected {
        let mut reg = REGISTRY.lock();
        if !reg.rejected.iter().any(|r| &r.name == name) {
            let why = alloc::format!("{name}: rejected; its errors are past the {} findings a report keeps (fix the ones shown first)", ferrovisor_config::MAX_FINDINGS);
            reg.rejected.push(Rejected { name: name.clone(), errors: alloc::vec![why] });
        }
    }
    outcome.config.guests
}

/// Places the BARs of each guest's PCIe functions (`core::pci::complete`);
/// a guest whose functions cannot all be given is rejected, with a line
/// naming its config node.
pub fn complete_pci(
    configs: alloc::vec::Vec<ferrovisor_config::GuestConfig>,
) -> alloc::vec::Vec<ferrovisor_config::GuestConfig> {
    let mut kept = alloc::vec::Vec::new();
    for mut config in configs {
        match crate::core::pci::complete(&mut config) {
            Ok(()) => kept.push(config),
            Err(r) => {
                let line = alloc::format!("{}: {} (hint: {})", r.path, r.message, r.hint);
                log::error!("guest {} cannot be built: {line}", config.name);
                reject(&config.name, line);
            }
        }
    }
    kept
}

fn global_error(message: String) {
    log::error!("config error: {message}");
    REGISTRY.lock().global_errors.push(message);
}

/// Records that guest `name` cannot run, and why.
pub fn reject(name: &str, message: String) {
    let mut reg = REGISTRY.lock();
    match reg.rejected.iter_mut().find(|r| r.name == name) {
        Some(r) => r.errors.push(message),
        None => reg.rejected.push(Rejected { name: name.into(), errors: alloc::vec![message] }),
    }
}

/// Runs `f` over the rejected guests and the config-wide errors.
pub fn with<R>(f: impl FnOnce(&[Rejected], &[String]) -> R) -> R {
    let reg = REGISTRY.lock();
    f(&reg.rejected, &reg.global_errors)
}

/// Builds a VM for each valid guest config and queues its vCPUs. A guest
/// whose build fails is rejected with a one-line error (path, message,
/// hint) and leaves nothing behind: its RAM, stage-2 tables and interrupt
/// routes are given back. VM ids are config positions among the valid
/// guests, so a failed guest's id is simply never registered.
pub fn create_vms(configs: alloc::vec::Vec<ferrovisor_config::GuestConfig>, fail_build: Option<&str>) {
    crate::core::vm::scmi::init(&configs);
    for (id, config) in configs.into_iter().enumerate() {
        let name = config.name.clone();
        let estimate = ferrovisor_config::heap_estimate(&config);
        let heap_before = crate::core::heap::used();
        let built = crate::core::vm::build::create(id, config).and_then(|vm| {
            if let Err(e) = crate::core::passthrough::register(&vm) {
                crate::core::passthrough::unregister(&vm);
                return Err(e);
            }
            if fail_build == Some(name.as_str()) {
                crate::core::passthrough::unregister(&vm);
                let path = vm.config.path.clone();
                return Err(VmBuildError::new(&vm.config, &path, Failure::Injected));
            }
            Ok(vm)
        });
        match built {
            Ok(vm) => {
                for id in ferrovisor_types::VcpuId::all(vm.vcpus.len()) {
                    if let Some(vcpu) = crate::core::vm::vcpu::Vcpu::new(vm.clone(), id) {
                        crate::core::sched::enqueue(alloc::boxed::Box::new(vcpu));
                    }
                }
                let cost = crate::core::heap::used().saturating_sub(heap_before) as u64;
                log::debug!(
                    "guest {name}: built with {cost} bytes of heap (validator's estimate {estimate})"
                );
                if cost > estimate {
                    log::warn!("guest {name}: its build took {cost} bytes of heap, more than the {estimate} the validator planned (heap estimate exceeded: please report)");
                }
                crate::core::vm::register(vm);
            }
            Err(e) => {
                // Everything the build took is dropped by now; only the
                // message is left. Check that the heap is back where it was.
                let mut line = alloc::format!("{e}");
                drop(e);
                line.shrink_to_fit();
                let message = line.len().next_power_of_two().max(core::mem::size_of::<usize>());
                let left = crate::core::heap::used().saturating_sub(heap_before).saturating_sub(message);
                log::error!("guest {name} cannot be built: {line}");
                if left == 0 {
                    log::info!("guest {name}: its failed build left nothing behind (host RAM, heap and interrupt routes given back)");
                } else {
                    log::warn!("guest {name}: its failed build left {left} bytes of heap behind (leaked: please report)");
                }
                reject(&name, line);
            }
        }
    }
}
