//! Guest consoles on the one hypervisor console.
//!
//! Each guest's vUART output is shown as whole lines tagged with the guest's
//! name (escape sequences removed, other control bytes shown as `\xNN`;
//! an unfinished line is shown when the guest stops or restarts). `console
//! attach NAME` gives one guest the keyboard: its output is then passed
//! through untouched, so prompts without a newline show, and typed bytes go
//! to its vUART. Ctrl-] (0x1d) detaches back to the shell.

use super::Vm;
use crate::core::console::{self as hyp_console, PROMPT};
use alloc::string::String;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The byte that detaches the console from a guest: Ctrl-].
pub const DETACH_KEY: u8 = 0x1d;

/// 0 when the shell has the console, else 1 + the attached VM's id.
static ATTACHED: AtomicUsize = AtomicUsize::new(0);

/// The VM id the console is attached to, if any.
pub fn attached() -> Option<usize> {
    ATTACHED.load(Ordering::Acquire).checked_sub(1)
}

/// Gives the console to `vm`.
pub fn attach(vm: &Vm) {
    ATTACHED.store(vm.id + 1, Ordering::Release);
}

/// Gives the console back to the shell.
pub fn detach() {
    ATTACHED.store(0, Ordering::Release);
}

/// A guest stopped: its unfinished output line is shown, and the console
/// goes back to the shell (with a fresh prompt) if it was attached to it.
pub fn detach_stopped(vm: &Vm) {
    if let Some(vuart) = &vm.vuart {
        let mut lines = String::new();
        vuart.tagger.lock().flush(&mut |line: &str| push_line(&mut lines, line));
        show(&lines);
    }
    if ATTACHED.compare_exchange(vm.id + 1, 0, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        hyp_console::write_fmt(format_args!("\n[console detached: guest {} stopped]\n", vm.name));
        hyp_console::edit(PROMPT.as_bytes(), Some(PROMPT));
    }
}

/// Shows bytes a guest wrote to its vUART: raw to the attached guest,
/// else as whole tagged lines. Lines are collected under the guest's
/// tagger lock and printed after it is let go.
pub fn guest_output(vm: &Vm, bytes: &[u8]) {
    if attached() == Some(vm.id) {
        hyp_console::write_bytes(bytes);
        return;
    }
    let Some(vuart) = &vm.vuart else { return };
    let mut lines = String::new();
    {
        let mut tagger = vuart.tagger.lock();
        let out = &mut |line: &str| push_line(&mut lines, line);
        tagger.run(vm.epoch.load(Ordering::Acquire), out);
        tagger.push_all(bytes, out);
    }
    show(&lines);
}

fn push_line(lines: &mut String, line: &str) {
    lines.push_str(line);
    lines.push('\n');
}

/// Prints each line as its own unit.
fn show(lines: &str) {
    for line in lines.split_inclusive('\n') {
        hyp_console::write_str(line);
    }
}

/// Feeds one typed byte to the attached guest; returns false if it was the
/// detach key (the caller then gives the console back to the shell).
pub fn input(vm: &Vm, byte: u8) -> bool {
    if byte == DETACH_KEY {
        return false;
    }
    if let Some(vuart) = &vm.vuart {
        let mut input = vuart.input.lock();
        if input.len() < super::devices::vuart::INPUT_BACKLOG {
            input.push_back(byte);
        }
        drop(input);
        vuart.feed(vm);
    }
    true
}
