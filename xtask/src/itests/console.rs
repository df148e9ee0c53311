//! Integration tests of the hypervisor console: a guest flooding it while the
//! shell is used, and how guest lines and typed escape sequences show.

use super::{boot_with, config, run_session, with_transcript, Env, TIMEOUT};
use crate::qemu::{Machine, Script, Step};
use anyhow::Result;

/// Commands typed in the stress test.
const STRESS_COMMANDS: usize = 100;

/// Guest lines that must come through while the commands are typed.
const MIN_GUEST_LINES: usize = 50;

/// The text after the number in every line of the probe's `print` test.
const PRINT_TEXT: &str = "abcdefghijklmnopqrstuvwxyz0123456789 end";

/// Under -icount (one vCPU at a time), a guest on pCPU 1 prints line after
/// line (sleeping 1 us between them) while the shell on pCPU 0 is given 100
/// commands, one at a time: each must be answered, and every guest line
/// must reach the console whole, the prompt drawn again after it. The old
/// console held one lock across whole UART writes, and its receive
/// interrupt on pCPU 0 spun on that lock while pCPU 1, holding it, did not
/// get to run: the shell hung within the first few commands.
pub fn console_stress(env: &Env) -> Result<()> {
    let machine = Machine { icount: true, ..Machine::default() };
    let boot = boot_with(env, Some(&config("console-stress.dts")), None)?;
    let mut steps = vec![
        Step::Expect("[printer] PROBE printer print 1 ".into()),
        Step::Expect("[printer] PROBE printer print 100 ".into()),
    ];
    for i in 0..STRESS_COMMANDS {
        let (command, answer) = if i % 2 == 0 {
            ("version", "ferrovisor 0.1.0 (aarch64 EL2)")
        } else {
            ("guest list", "printer          running")
        };
        steps.push(Step::Send(format!("{command}\r")));
        steps.push(Step::Expect(answer.into()));
    }
    // The guest keeps printing after the last answer: its lines must come
    // through, with the prompt shown again after them.
    steps.push(Step::Expect(format!("{PRINT_TEXT}\r\nferrovisor> ")));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let script = Script { steps, forbid: vec![], expect_exit: true, timeout: TIMEOUT, expect_panic: false };
    let text = run_session(&machine, &boot, script)?;
    let (whole, broken) = print_lines(&text);
    // The first 100 lines came before the first command.
    let during = whole.saturating_sub(100);
    with_transcript(
        match broken.first() {
            Some(line) => Err(anyhow::anyhow!("{} broken guest line(s), first: {line:?}", broken.len())),
            None if during < MIN_GUEST_LINES => Err(anyhow::anyhow!(
                "only {during} guest lines while the shell was used, want {MIN_GUEST_LINES}"
            )),
            None => Ok(()),
        },
        &text,
    )?;
    println!("    {STRESS_COMMANDS} commands answered; {during} whole guest lines meanwhile, none broken");
    Ok(())
}

/// How guest lines and typed input show: escape sequences a guest prints
/// are removed and control bytes shown as `\xNN`; a guest that stops or
/// restarts mid-line gets that line shown on its own; typed escape
/// sequences (arrow keys) never reach the command line; a command given
/// too many arguments says so with its usage.
pub fn console_lines(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let boot = boot_with(env, Some(&config("console-lines.dts")), None)?;
    let steps = vec![
        Step::ExpectAll(vec![
            "[tail-off] PROBE tail-off escapes: PASS bold bell\\x07 tab\tend\r\n".into(),
            "[tail-off] PROBE tail-off unfinished\r\n".into(),
            "guest tail-off: powered off".into(),
        ]),
        // tail-reset resets after its unfinished line, again and again: the
        // line shows on its own before the next boot's first line.
        Step::Expect("[tail-reset] PROBE tail-reset unfinished\r\n".into()),
        Step::Expect("[tail-reset] PROBE tail-reset START".into()),
        Step::Expect("[tail-reset] PROBE tail-reset unfinished\r\n".into()),
        // Up, down (application mode), Delete, Ctrl-left, Alt-x: ignored.
        Step::Send("ve\x1b[A\x1bOBrs\x1b[3~io\x1b[1;5D\x1bxn\r".into()),
        Step::Expect("ferrovisor 0.1.0 (aarch64 EL2)".into()),
        Step::Send("version now\r".into()),
        Step::Expect("'version' takes 0 arguments, 1 given; usage: version".into()),
        Step::Send("guest info tail-off extra\r".into()),
        Step::Expect("'guest info' takes 1 argument, 2 given; usage: guest info NAME".into()),
        Step::Send("guest start tail-off\r".into()),
        Step::Expect("[tail-off] PROBE tail-off START".into()),
        Step::Expect("[tail-off] PROBE tail-off unfinished\r\n".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let text = super::session(&machine, &boot, steps, true)?;
    with_transcript(
        if text.contains("unfinishedPROBE") || text.contains("unfinished[") {
            Err(anyhow::anyhow!("an unfinished guest line was glued to the next output"))
        } else {
            Ok(())
        },
        &text,
    )
}

/// Counts the probe's `print` lines in `text`: whole ones, and the broken
/// ones (anything but `[printer] PROBE printer print <i> <PRINT_TEXT>` from
/// the tag to the end of the line; a prompt redrawn before the tag is fine).
fn print_lines(text: &str) -> (usize, Vec<String>) {
    let tag = "[printer] PROBE printer print ";
    let mut whole = 0;
    let mut broken = Vec::new();
    for line in text.lines() {
        let Some(at) = line.find(tag) else { continue };
        let rest = line[at + tag.len()..].trim_end_matches('\r');
        let ok = rest.split_once(' ').is_some_and(|(n, body)| n.parse::<u64>().is_ok() && body == PRINT_TEXT);
        if ok {
            whole += 1;
        } else {
            broken.push(line.to_string());
        }
    }
    (whole, broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_whole_print_lines_from_broken_ones() {
        let text = format!(
            "[printer] PROBE printer print 1 {PRINT_TEXT}\r\n\
             ferrovisor> ver\r\x1b[K[printer] PROBE printer print 2 {PRINT_TEXT}\r\n\
             [printer] PROBE printer print 3 abcdefferrovisor 0.1.0\r\n\
             [printer] PROBE printer print 4 [printer] PROBE printer print 5 {PRINT_TEXT}\r\n\
             unrelated\r\n"
        );
        let (whole, broken) = print_lines(&text);
        assert_eq!(whole, 2);
        assert_eq!(broken.len(), 2);
    }
}
