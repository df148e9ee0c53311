//! The management shell on the hypervisor console.
//!
//! Boot commands (`ferrovisor.bootcmd="a; b"`) run first, echoed after the
//! prompt as if typed; then the shell reads lines from the console. The shell
//! runs on the boot CPU and sleeps in WFI between keystrokes.

mod commands;

use crate::arch::aarch64::cpu;
use crate::core::console;
use ferrovisor_cmdline::line::{Event, LineEditor};
use ferrovisor_cmdline::words;

/// The prompt.
pub const PROMPT: &str = "ferrovisor> ";

/// Runs the boot commands, then the interactive shell, forever.
pub fn run(bootcmd: Option<&str>) -> ! {
    crate::println!("Type 'help' for commands.");
    if let Some(script) = bootcmd {
        for command in words::commands(script) {
            crate::println!("{PROMPT}{command}");
            execute(command);
        }
    }
    let mut editor = LineEditor::new();
    crate::print!("{PROMPT}");
    loop {
        cpu::irq_disable();
        let byte = console::read_byte();
        if byte.is_none() {
            cpu::wait_for_interrupt();
        }
        cpu::irq_enable();
        let Some(byte) = byte else { continue };
        match editor.feed(byte) {
            Event::Echo(bytes) => console::write_bytes(&bytes),
            Event::Line(line) => {
                crate::println!();
                execute(&line);
                crate::print!("{PROMPT}");
            }
            Event::Cancel => {
                crate::println!("^C");
                crate::print!("{PROMPT}");
            }
        }
    }
}

/// Runs one command line (which may hold several `;`-separated commands).
pub fn execute(line: &str) {
    for command in words::commands(line) {
        let argv = words::words(command);
        let argv: alloc::vec::Vec<&str> = argv.iter().map(|s| s.as_str()).collect();
        commands::run(&argv);
    }
}
