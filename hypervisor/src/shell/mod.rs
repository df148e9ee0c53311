//! The management shell on the hypervisor console.
//!
//! Boot commands (`ferrovisor.bootcmd="a; b"`) run first, echoed after the
//! prompt as if typed. After that the boot CPU's scheduler calls [`poll`]
//! between guest time slices: typed bytes go to the line editor, or to the
//! guest the console is attached to (`console attach NAME`; Ctrl-] detaches).
//! Output from guests and other CPUs that arrives while the prompt is shown
//! is printed above it, and the prompt with the typed text is drawn again.
//!
//! Safe code only, enforced by the compiler (the lint below, which no
//! item inside may relax); raw pointers, assembly and linker symbols sit
//! behind safe APIs in `arch` and `platform`.

#![forbid(unsafe_code)]

mod commands;

use crate::arch::aarch64::cpu;
use crate::core::console;
use crate::core::vm;
use ferrovisor_cmdline::line::{Event, LineEditor};
use ferrovisor_cmdline::words;
use ferrovisor_sync::Mutex;

/// The prompt (kept by the console, which redraws it after other output).
pub use crate::core::console::PROMPT;

static EDITOR: Mutex<Option<LineEditor>> = Mutex::new(None);

/// Runs the boot commands and shows the first prompt.
pub fn start(bootcmd: Option<&str>) {
    crate::println!("Type 'help' for commands.");
    let consoles: alloc::vec::Vec<alloc::string::String> =
        vm::all().iter().filter(|g| g.vuart.is_some()).map(|g| g.name.clone()).collect();
    if !consoles.is_empty() {
        crate::println!(
            "Guest consoles: {}. Type 'console attach NAME' to use one; Ctrl-] comes back here.",
            consoles.join(", ")
        );
    }
    if let Some(script) = bootcmd {
        for command in words::commands(script) {
            crate::println!("{PROMPT}{command}");
            execute(command);
        }
    }
    *EDITOR.lock() = Some(LineEditor::new());
    console::edit(PROMPT.as_bytes(), Some(PROMPT));
}

/// Handles all console input that has arrived (boot CPU only).
///
/// The echo goes out with the line the shell shows after it (prompt and
/// typed text), which the console draws again below any output that
/// interrupts it.
pub fn poll() {
    loop {
        cpu::irq_disable();
        let Some(byte) = console::read_byte() else { return };
        if let Some(id) = vm::console::attached() {
            match vm::by_id(id) {
                Some(guest) if vm::console::input(&guest, byte) => continue,
                _ => {
                    vm::console::detach();
                    crate::println!("\n[console detached]");
                    console::edit(PROMPT.as_bytes(), Some(PROMPT));
                    continue;
                }
            }
        }
        let (event, line) = match EDITOR.lock().as_mut() {
            Some(editor) => {
                let event = editor.feed(byte);
                (event, alloc::format!("{PROMPT}{}", editor.pending()))
            }
            None => return,
        };
        match event {
            Event::Echo(bytes) => console::edit(&bytes, Some(&line)),
            Event::Line(command) => {
                console::edit(b"\r\n", None);
                execute(&command);
                if vm::console::attached().is_none() {
                    console::edit(PROMPT.as_bytes(), Some(PROMPT));
                }
            }
            Event::Cancel => console::edit(alloc::format!("^C\r\n{PROMPT}").as_bytes(), Some(PROMPT)),
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
