//! `log` backend: timestamped lines on the hypervisor console.
//!
//! Format: `[   1.234567] cpu0 INFO  message`. The level comes from the boot
//! argument `ferrovisor.loglevel=` (error, warn, info, debug, trace).

use crate::arch::aarch64::{cpu, timer};
use log::{LevelFilter, Log, Metadata, Record};

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let (secs, micros) = super::ticks::uptime(timer::now(), timer::frequency());
        crate::println!("[{secs:4}.{micros:06}] cpu{} {:<5} {}", cpu::index(), record.level(), record.args());
    }

    fn flush(&self) {}
}

/// Parses a level name; `None` for an unknown one.
pub fn parse_level(name: &str) -> Option<LevelFilter> {
    Some(match name {
        "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return None,
    })
}

/// Installs the console logger at `level`.
pub fn init(level: LevelFilter) {
    // A second call fails harmlessly; the first logger stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
