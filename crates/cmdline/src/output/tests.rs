//! The output path under threads standing in for CPUs: whole lines, order,
//! no hang on a stuck UART, no deadlock when the drainer's own CPU writes.

extern crate std;

use super::*;
use alloc::string::String;
use alloc::vec::Vec;
use std::cell::Cell;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

std::thread_local! {
    static CPU: Cell<usize> = const { Cell::new(0) };
    static MASKED: Cell<bool> = const { Cell::new(false) };
    /// Runs when this thread unmasks "IRQs" (each ring lock released).
    static HOOK: Cell<Option<fn()>> = const { Cell::new(None) };
}

struct Test;

impl Machine for Test {
    fn cpu() -> usize {
        CPU.with(Cell::get)
    }
    fn irq_save() -> bool {
        MASKED.with(|m| m.replace(true))
    }
    fn irq_restore(was_masked: bool) {
        MASKED.with(|m| m.set(was_masked));
        if let Some(hook) = HOOK.with(|h| h.take()) {
            hook();
        }
    }
    fn now() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_micros() as u64
    }
    fn relax() {
        std::thread::yield_now();
    }
    fn wake() {}
    fn spin_hint() {
        std::thread::yield_now();
    }
}

/// A UART that collects what it is sent; it can refuse everything, and can
/// call back into the output path on a byte (an interrupt handler that
/// logs while its CPU drains).
#[derive(Default)]
struct Sink {
    out: Mutex<Vec<u8>>,
    stuck: AtomicBool,
    /// A slow UART: every 3rd try finds the FIFO full.
    slow: bool,
    tick: AtomicUsize,
}

impl Port for Sink {
    fn try_put(&self, byte: u8) -> bool {
        if self.stuck.load(Ordering::SeqCst) {
            return false;
        }
        if self.slow && self.tick.fetch_add(1, Ordering::Relaxed).is_multiple_of(3) {
            return false;
        }
        self.out.lock().unwrap().push(byte);
        true
    }
}

fn text(sink: &Sink) -> String {
    String::from_utf8(sink.out.lock().unwrap().clone()).unwrap()
}

#[test]
fn lines_from_many_cpus_stay_whole_and_in_order() {
    static OUT: Output<Test, 256> = Output::new();
    OUT.set_stall_ticks(5_000_000);
    let sink = Arc::new(Sink { slow: true, ..Sink::default() });
    let threads: Vec<_> = (0..4)
        .map(|cpu| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                CPU.with(|c| c.set(cpu));
                for i in 0..500 {
                    OUT.format(&*sink, format_args!("cpu{cpu} line {i} {}\n", "x".repeat(i % 40)));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert!(OUT.is_empty(), "the last drainer looks again after letting go: nothing is left behind");
    let all = text(&sink);
    assert!(!all.contains("dropped"), "a progressing drainer never drops");
    let mut next = [0usize; 4];
    for line in all.split_terminator("\r\n") {
        let (cpu, rest) = line.strip_prefix("cpu").unwrap().split_once(" line ").unwrap();
        let cpu: usize = cpu.parse().unwrap();
        let (i, xs) = rest.split_once(' ').unwrap();
        let i: usize = i.parse().unwrap();
        assert_eq!(i, next[cpu], "cpu{cpu}'s lines in order: {line:?}");
        assert_eq!(xs, "x".repeat(i % 40));
        next[cpu] += 1;
    }
    assert_eq!(next, [500; 4]);
}

#[test]
fn a_stuck_uart_drops_output_and_says_so_later() {
    static OUT: Output<Test, 128> = Output::new();
    OUT.set_stall_ticks(2_000);
    let sink = Arc::new(Sink::default());
    sink.stuck.store(true, Ordering::SeqCst);
    let threads: Vec<_> = (0..3)
        .map(|cpu| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                CPU.with(|c| c.set(cpu));
                for i in 0..50 {
                    OUT.format(&*sink, format_args!("cpu{cpu} {i} lost\n"));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    sink.stuck.store(false, Ordering::SeqCst);
    OUT.format(&*sink, format_args!("back\n"));
    let all = text(&sink);
    let tail = all.rsplit("[console: ").next().unwrap();
    assert!(tail.ends_with(" bytes of output dropped]\r\nback\r\n"), "{all:?}");
    // Everything sent is whole lines.
    for line in all.split_terminator("\r\n") {
        assert!(line.ends_with("lost") || line.starts_with("[console: ") || line == "back", "{line:?}");
    }
}

/// A UART whose first byte runs an "interrupt handler" that writes
/// `lines` lines through the same output path on the same CPU.
struct Reentrant {
    out: &'static Output<Test, 128>,
    sink: Sink,
    lines: usize,
    fired: AtomicBool,
}

impl Port for Reentrant {
    fn try_put(&self, byte: u8) -> bool {
        if !self.fired.swap(true, Ordering::SeqCst) {
            for i in 0..self.lines {
                self.out.format(self, format_args!("irq {i}\n"));
            }
        }
        self.sink.try_put(byte)
    }
}

#[test]
fn the_drainers_own_cpu_can_write_without_deadlock() {
    static OUT: Output<Test, 128> = Output::new();
    OUT.set_stall_ticks(u64::MAX);
    // Room: the nested lines are queued and sent by the outer drain.
    let port = Reentrant { out: &OUT, sink: Sink::default(), lines: 3, fired: AtomicBool::new(false) };
    OUT.format(&port, format_args!("outer\n"));
    assert_eq!(text(&port.sink), "outer\r\nirq 0\r\nirq 1\r\nirq 2\r\n");
    // No room: the nested writer cannot wait for itself; it drops and counts.
    let port = Reentrant { out: &OUT, sink: Sink::default(), lines: 40, fired: AtomicBool::new(false) };
    OUT.format(&port, format_args!("outer\n"));
    OUT.format(&port, format_args!("after\n"));
    let all = text(&port.sink);
    assert!(all.starts_with("outer\r\nirq 0\r\n"), "{all:?}");
    assert!(all.contains(" bytes of output dropped]\r\nafter\r\n"), "{all:?}");
}

#[test]
fn shell_line_is_redrawn_after_other_output() {
    static OUT: Output<Test, 256> = Output::new();
    let sink = Sink::default();
    OUT.edit(&sink, b"ferrovisor> ", Some(b"ferrovisor> "));
    OUT.edit(&sink, b"gu", Some(b"ferrovisor> gu"));
    OUT.format(&sink, format_args!("[probe0] hello\n"));
    OUT.edit(&sink, b"\r\n", None);
    OUT.format(&sink, format_args!("answer\n"));
    assert_eq!(text(&sink), "ferrovisor> gu\r\x1b[K[probe0] hello\r\nferrovisor> gu\r\nanswer\r\n");
}

#[test]
fn long_text_is_cut_into_chunks_without_splitting_crlf() {
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    let long = "a".repeat(CHUNK - 1) + "\n" + &"b".repeat(10);
    format_chunks(format_args!("{long}\n"), &mut |p| pieces.push(p.to_vec()));
    assert_eq!(pieces.len(), 2);
    assert_eq!(pieces[0].len(), CHUNK - 1);
    assert_eq!(&pieces[1][..2], b"\r\n");
    assert!(pieces[1].ends_with(b"bbb\r\n"));
}

#[test]
fn emergency_sends_queued_output_first() {
    static OUT: Output<Test, 128> = Output::new();
    OUT.set_stall_ticks(1_000);
    let sink = Sink::default();
    sink.stuck.store(true, Ordering::SeqCst);
    OUT.format(&sink, format_args!("queued\n"));
    sink.stuck.store(false, Ordering::SeqCst);
    OUT.emergency(&sink, format_args!("PANIC\n"));
    assert_eq!(text(&sink), "queued\r\nPANIC\r\n");
}

#[test]
fn a_writer_that_finds_a_drainer_at_work_is_not_left_behind() {
    static OUT: Output<Test, 128> = Output::new();
    static SINK: OnceLock<Sink> = OnceLock::new();
    static OTHER: Mutex<Option<std::thread::JoinHandle<()>>> = Mutex::new(None);
    OUT.set_stall_ticks(5_000_000);
    let sink = SINK.get_or_init(Sink::default);
    // When the drainer has sent its own line (its last look at the ring),
    // another CPU queues a line and finds the flag taken.
    static EMPTY_SEEN: AtomicUsize = AtomicUsize::new(0);
    fn other_cpu_writes() {
        let last_look = OUT.drainer.load(Ordering::SeqCst) == 1
            && OUT.is_empty()
            && EMPTY_SEEN.fetch_add(1, Ordering::SeqCst) == 0;
        if !last_look {
            HOOK.with(|h| h.set(Some(other_cpu_writes)));
            return;
        }
        let before = OUT.with_ring(|r| r.total());
        *OTHER.lock().unwrap() = Some(std::thread::spawn(|| {
            CPU.with(|c| c.set(1));
            OUT.format(SINK.get().unwrap(), format_args!("late\n"));
        }));
        while OUT.with_ring(|r| r.total()) == before {
            std::thread::yield_now();
        }
    }
    HOOK.with(|h| h.set(Some(other_cpu_writes)));
    OUT.format(sink, format_args!("first\n"));
    HOOK.with(|h| h.set(None));
    OTHER.lock().unwrap().take().unwrap().join().unwrap();
    assert_eq!(text(sink), "first\r\nlate\r\n");
    assert!(OUT.is_empty());
}

#[test]
fn a_flooding_cpu_does_not_keep_another_draining() {
    static OUT: Output<Test, 4096> = Output::new();
    OUT.set_stall_ticks(5_000_000);
    let sink = Arc::new(Sink::default());
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (sink, stop) = (sink.clone(), stop.clone());
        std::thread::spawn(move || {
            CPU.with(|c| c.set(1));
            while !stop.load(Ordering::SeqCst) {
                OUT.format(&*sink, format_args!("[guest] flood flood flood flood\n"));
            }
        })
    };
    // The shell's CPU prints 200 short lines while the flood goes on: each
    // call returns after sending at most what was queued before its line.
    for i in 0..200 {
        OUT.format(&*sink, format_args!("shell {i}\n"));
    }
    stop.store(true, Ordering::SeqCst);
    flood.join().unwrap();
    let all = text(&sink);
    assert_eq!(all.matches("shell ").count(), 200);
    assert!(all
        .split_terminator("\r\n")
        .all(|l| l.starts_with("shell ") || l == "[guest] flood flood flood flood"));
}
