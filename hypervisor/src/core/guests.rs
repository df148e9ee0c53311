//! The guests the config describes: loaded from the boot bundle at boot,
//! validated, and kept with their state. Guests with config errors are kept
//! as "rejected" with their messages, so the shell can show why.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use ferrovisor_bundle::{Bundle, CONFIG_FILE};
use ferrovisor_config::{GuestConfig, LoadOutcome};
use spin::Mutex;

/// A guest's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestState {
    /// Validated and ready to be started.
    Configured,
}

impl GuestState {
    /// The state's name as the shell prints it.
    pub fn name(self) -> &'static str {
        match self {
            GuestState::Configured => "configured",
        }
    }
}

/// A valid guest.
pub struct Guest {
    /// Its validated configuration.
    pub config: GuestConfig,
    /// Where it is in its life.
    pub state: GuestState,
}

/// A guest the validator refused, with the messages that explain why.
pub struct Rejected {
    /// The guest's name (the config node name).
    pub name: String,
    /// One line per error, as `cargo xtask validate` prints them.
    pub errors: Vec<String>,
}

struct Registry {
    guests: Vec<Guest>,
    rejected: Vec<Rejected>,
    /// Errors that concern no single guest (bundle, config DTB).
    global_errors: Vec<String>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    guests: Vec::new(),
    rejected: Vec::new(),
    global_errors: Vec::new(),
});

/// Reads the config from the bundle, validates it against the host DT, logs
/// every error and warning, and records the result.
pub fn load(host_dtb: &[u8], bundle: Option<&[u8]>) {
    let Some(bytes) = bundle else {
        log::warn!("no boot bundle (QEMU -initrd): no guests are configured");
        return;
    };
    let bundle = match Bundle::parse(bytes) {
        Ok(b) => b,
        Err(e) => return global_error(e.to_string()),
    };
    let Some(config_dtb) = bundle.get(CONFIG_FILE) else {
        return global_error(alloc::format!(
            "boot bundle has no {CONFIG_FILE}: no guests are configured"
        ));
    };
    let names = bundle.names();
    let outcome: LoadOutcome = ferrovisor_config::load(host_dtb, config_dtb, &names);
    for w in &outcome.warnings {
        log::warn!("config warning: {w}");
    }
    let mut reg = REGISTRY.lock();
    for e in &outcome.errors {
        log::error!("config error: {e}");
        match &e.guest {
            Some(name) => match reg.rejected.iter_mut().find(|r| &r.name == name) {
                Some(r) => r.errors.push(e.to_string()),
                None => reg.rejected.push(Rejected {
                    name: name.clone(),
                    errors: alloc::vec![e.to_string()],
                }),
            },
            None => reg.global_errors.push(e.to_string()),
        }
    }
    for config in outcome.config.guests {
        reg.guests.push(Guest {
            config,
            state: GuestState::Configured,
        });
    }
}

fn global_error(message: String) {
    log::error!("config error: {message}");
    REGISTRY.lock().global_errors.push(message);
}

/// Runs `f` over the registry's valid and rejected guests.
pub fn with<R>(f: impl FnOnce(&[Guest], &[Rejected], &[String]) -> R) -> R {
    let reg = REGISTRY.lock();
    f(&reg.guests, &reg.rejected, &reg.global_errors)
}
