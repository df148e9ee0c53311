//! The guest configuration at boot: read from the bundle, validated, and
//! turned into VMs. Guests the validator (or VM construction) refuses are
//! kept as "rejected" with their messages, so the shell can show why.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use ferrovisor_bundle::{Bundle, CONFIG_FILE};
use ferrovisor_config::{GuestConfig, Hypervisor, LoadOutcome};
use spin::Mutex;

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
