//! fvbench: a tiny benchmark for the Linux guest, timed with the virtual
//! counter (CNTVCT_EL0, readable at EL0 under Linux).
//!
//! ```text
//! fvbench cpu [N]               N (36) million rounds of xorshift64 + a 64-bit hash mix
//! fvbench mem [MiB] [passes]    over a MiB (32) buffer, passes (20) times: a strided
//!                               write and read (one u64 per 64-byte line), a sequential sum
//! fvbench ping OUT IN [N] [LABEL]  N (5000) round trips of one byte: written to the FIFO
//!                               OUT, answered on the FIFO IN by `fvbench pong`; prints
//!                               `FVBENCH ping-LABEL ...` (LABEL: `run`)
//! fvbench pong IN OUT [N]       the other side: N times, reads a byte from IN and writes
//!                               it back to OUT; prints nothing
//! fvbench rtc [N]               N (2000) reads of the RTC's time through
//!                               /sys/class/rtc/rtc0/time (open, read, close: the
//!                               driver's read_time, what `hwclock` does per call)
//! ```
//!
//! `ping` and `pong` pinned to two CPUs (`taskset`) measure a cross-CPU
//! wake-up in each direction per round trip: two inter-processor
//! interrupts in a guest.
//!
//! Each run prints exactly one line on stdout:
//! `FVBENCH <cmd> ticks=<cntvct delta> freq=<cntfrq> result=<hex> cpu=<n>`,
//! `cpu` being the CPU it ended on (`/proc/self/stat`; `?` if unknown).
//! `ticks / freq` is the time in seconds; `result` depends only on the
//! arguments, so it checks that the work was done (and done right). Under
//! QEMU `-icount shift=0` the counter counts guest instructions (62.5 MHz,
//! 16 instructions per tick), so `ticks` repeats from run to run up to the
//! noise of interrupts and exceptions taken meanwhile (docs/images.md).
//!
//! Built for aarch64-unknown-linux-musl (static) by `cargo xtask images`; on
//! other architectures it compiles with a stub counter (nanoseconds from
//! `std::time::Instant`) so that host-wide `cargo clippy` and `cargo test`
//! work.

use std::hint::black_box;
use std::process::ExitCode;

/// Default `cpu` size, in million rounds: about 14 instructions a round, so
/// about 0.5 s under QEMU `-icount shift=0` (docs/images.md).
const CPU_DEFAULT_MILLIONS: u64 = 36;
/// Default `mem` buffer size in MiB.
const MEM_DEFAULT_MIB: usize = 32;
/// Default `mem` pass count: about 24 ms a pass over 32 MiB under QEMU
/// `-icount shift=0`, so about 0.5 s.
const MEM_DEFAULT_PASSES: u32 = 20;
/// A cache line: the stride of the strided loops.
const LINE_BYTES: usize = 64;
/// u64 words per cache line.
const LINE_WORDS: usize = LINE_BYTES / 8;

const USAGE: &str = "usage: fvbench cpu [MILLION_ROUNDS] | fvbench mem [MiB] [PASSES] | fvbench ping OUT IN [N] [LABEL] | fvbench pong IN OUT [N] | fvbench rtc [N]";
/// Default reads of `rtc`.
const RTC_DEFAULT: u64 = 2000;
/// The RTC time `rtc` reads (the PL031's driver, rtc-pl031).
const RTC_TIME: &str = "/sys/class/rtc/rtc0/time";
/// Default round trips of `ping` and `pong`.
const PING_DEFAULT: u64 = 5000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) if line.is_empty() => ExitCode::SUCCESS,
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("fvbench: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command in `args` (argv without argv[0]); the output line.
fn run(args: &[String]) -> Result<String, String> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let rest = &args[args.len().min(1)..];
    let mut name = cmd.to_string();
    let (ticks, result) = match cmd {
        "ping" | "pong" => {
            let [first, second] = [rest.first(), rest.get(1)];
            let (Some(first), Some(second)) = (first, second) else {
                return Err(format!("{cmd} needs two FIFOs"));
            };
            let [n] = parse_args(rest.get(2..3).unwrap_or(&[]), [PING_DEFAULT])?;
            if cmd == "pong" {
                pong(first, second, n)?;
                return Ok(String::new());
            }
            name = format!("ping-{}", rest.get(3).map_or("run", String::as_str));
            let (out, inp) = open_pair(first, second, true)?;
            timed(|| ping(out, inp, n))
        }
        "cpu" => {
            let [millions] = parse_args(rest, [CPU_DEFAULT_MILLIONS])?;
            let rounds = millions.checked_mul(1_000_000).ok_or("too many rounds")?;
            timed(|| cpu(rounds))
        }
        "mem" => {
            let [mib, passes] = parse_args(rest, [MEM_DEFAULT_MIB as u64, u64::from(MEM_DEFAULT_PASSES)])?;
            let mib = usize::try_from(mib).map_err(|_| "buffer too large")?;
            let passes = u32::try_from(passes).map_err(|_| "too many passes")?;
            if mib == 0 {
                return Err("the buffer must be at least 1 MiB".into());
            }
            let words = mib.checked_mul(1 << 20).ok_or("buffer too large")? / 8;
            let mut buf = vec![0u64; words];
            // Touch every page first: the timed loops see no page faults.
            for (i, w) in buf.iter_mut().enumerate() {
                *w = i as u64;
            }
            black_box(&mut buf);
            timed(|| mem(&mut buf, passes))
        }
        "rtc" => {
            let [n] = parse_args(rest, [RTC_DEFAULT])?;
            // One read first: a missing RTC is an error, not a fast run.
            std::fs::read(RTC_TIME).map_err(|e| format!("{RTC_TIME}: {e}"))?;
            timed(|| rtc(n))
        }
        "" => return Err("no command".into()),
        other => return Err(format!("unknown command {other:?}")),
    };
    let cpu = current_cpu().map_or_else(|| "?".to_string(), |c| c.to_string());
    Ok(format!("FVBENCH {name} ticks={ticks} freq={} result={result:016x} cpu={cpu}", counter::freq()))
}

/// Opens the FIFO pair in the order both sides use (the first FIFO, then
/// the second, so neither waits for the other forever): `ping` writes the
/// first and reads the second, `pong` the other way round.
fn open_pair(first: &str, second: &str, ping: bool) -> Result<(std::fs::File, std::fs::File), String> {
    use std::fs::OpenOptions;
    let open = |path: &str, write: bool| {
        OpenOptions::new().read(!write).write(write).open(path).map_err(|e| format!("{path}: {e}"))
    };
    let a = open(first, ping)?;
    let b = open(second, !ping)?;
    Ok(if ping { (a, b) } else { (b, a) })
}

/// `n` round trips of one byte; the number completed.
fn ping(mut out: std::fs::File, mut inp: std::fs::File, n: u64) -> u64 {
    use std::io::{Read, Write};
    let mut byte = [0u8; 1];
    for i in 0..n {
        byte[0] = i as u8;
        if out.write_all(&byte).is_err() || inp.read_exact(&mut byte).is_err() {
            return i;
        }
    }
    n
}

/// Answers `n` bytes of `ping`.
fn pong(first: &str, second: &str, n: u64) -> Result<(), String> {
    use std::io::{Read, Write};
    let (mut out, mut inp) = open_pair(first, second, false)?;
    let mut byte = [0u8; 1];
    for _ in 0..n {
        inp.read_exact(&mut byte).map_err(|e| format!("{first}: {e}"))?;
        out.write_all(&byte).map_err(|e| format!("{second}: {e}"))?;
    }
    Ok(())
}

/// The CPU this process last ran on: field 39 of `/proc/self/stat`.
fn current_cpu() -> Option<u32> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_from_stat(&stat)
}

/// Field 39 (`processor`) of a `/proc/<pid>/stat` line. The second field
/// (the command) is in parentheses and may hold spaces, so fields are
/// counted after its closing parenthesis (which is field 2).
fn cpu_from_stat(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(39 - 3)?.parse().ok()
}

/// Up to `N` unsigned numbers, each defaulting to `defaults[i]`.
fn parse_args<const N: usize>(args: &[String], defaults: [u64; N]) -> Result<[u64; N], String> {
    if args.len() > N {
        return Err(format!("too many arguments: {}", args.join(" ")));
    }
    let mut out = defaults;
    for (slot, arg) in out.iter_mut().zip(args) {
        *slot = arg.parse().map_err(|_| format!("not a number: {arg:?}"))?;
    }
    Ok(out)
}

/// Runs `f` between two counter reads: (tick delta, f's result).
fn timed(f: impl FnOnce() -> u64) -> (u64, u64) {
    let start = counter::now();
    let result = black_box(f());
    let end = counter::now();
    (end.wrapping_sub(start), result)
}

/// One xorshift64 step (Marsaglia's 13/7/17).
fn xorshift64(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The splitmix64/murmur3 finaliser: a 64-bit integer hash.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The CPU workload: `rounds` rounds of a serial dependency chain
/// (xorshift64, hash mix, rotate-xor accumulate). Integer ALU only, no
/// memory traffic besides the stack.
/// `n` reads of the RTC's time; the result is the bytes read (always
/// "HH:MM:SS\n", 9 each: it does not depend on the time read).
fn rtc(n: u64) -> u64 {
    (0..n).map(|_| std::fs::read(RTC_TIME).map_or(0, |b| b.len() as u64)).sum()
}

fn cpu(rounds: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut acc = 0u64;
    for i in 0..rounds {
        x = xorshift64(x);
        acc = acc.rotate_left(5) ^ mix64(x ^ i);
    }
    acc ^ x
}

/// The memory workload over `buf`, `passes` times: a strided write (one u64
/// per 64-byte line), a strided read of those words, and a sequential u64
/// sum of the whole buffer. Returns a checksum of everything read.
fn mem(buf: &mut [u64], passes: u32) -> u64 {
    let mut check = 0u64;
    for pass in 0..u64::from(passes) {
        let seed = mix64(pass + 1);
        for (line, w) in buf.iter_mut().step_by(LINE_WORDS).enumerate() {
            *w = seed ^ line as u64;
        }
        black_box(&mut *buf);
        let strided = buf.iter().step_by(LINE_WORDS).fold(0u64, |a, &w| a.rotate_left(1) ^ w);
        black_box(&mut *buf);
        let sequential = buf.iter().fold(0u64, |a, &w| a.wrapping_add(w));
        check = mix64(check ^ strided).wrapping_add(sequential);
    }
    check
}

/// The virtual counter: CNTVCT_EL0 and CNTFRQ_EL0.
#[cfg(target_arch = "aarch64")]
mod counter {
    use std::arch::asm;

    /// CNTVCT_EL0, after an ISB so it is not read early.
    pub fn now() -> u64 {
        let v: u64;
        // SAFETY: reads a system register that Linux lets EL0 read
        // (CNTKCTL_EL1.EL0VCTEN); no memory is touched.
        unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }

    /// CNTFRQ_EL0: the counter's frequency in Hz.
    pub fn freq() -> u64 {
        let v: u64;
        // SAFETY: CNTFRQ_EL0 is readable at EL0 whenever a counter is;
        // no memory is touched.
        unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }
}

/// A stub counter for host builds: nanoseconds since the first read.
#[cfg(not(target_arch = "aarch64"))]
mod counter {
    use std::sync::OnceLock;
    use std::time::Instant;

    static START: OnceLock<Instant> = OnceLock::new();

    /// Nanoseconds since the first call.
    pub fn now() -> u64 {
        let start = START.get_or_init(Instant::now);
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The stub counter's frequency: 1 GHz.
    pub fn freq() -> u64 {
        1_000_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_field_39_of_stat() {
        let mut fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        fields[39 - 3] = "1".into();
        let line = format!("4242 (fv bench) {}", fields.join(" "));
        assert_eq!(cpu_from_stat(&line), Some(1));
        assert_eq!(cpu_from_stat("4242 (x) R 1"), None);
        assert_eq!(cpu_from_stat("garbage"), None);
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_arguments_with_defaults() {
        assert_eq!(parse_args(&args(""), [8, 4]), Ok([8, 4]));
        assert_eq!(parse_args(&args("16"), [8, 4]), Ok([16, 4]));
        assert_eq!(parse_args(&args("16 2"), [8, 4]), Ok([16, 2]));
        assert!(parse_args(&args("1 2 3"), [8, 4]).is_err());
        assert!(parse_args(&args("x"), [8]).is_err());
    }

    #[test]
    fn workloads_are_deterministic() {
        assert_eq!(xorshift64(1), 0x4082_2041);
        assert_eq!(cpu(1000), cpu(1000));
        assert_ne!(cpu(1000), cpu(1001));
        let mut a: Vec<u64> = (0..4096).collect();
        let mut b = a.clone();
        assert_eq!(mem(&mut a, 3), mem(&mut b, 3));
        assert_ne!(mem(&mut a, 2), mem(&mut b, 3));
    }

    #[test]
    fn prints_one_line() {
        let line = run(&args("cpu 1"));
        let line = line.as_deref().unwrap_or("");
        assert!(line.starts_with("FVBENCH cpu ticks="), "{line}");
        assert!(line.contains(" freq=1000000000 result="), "{line}");
        let result = line.split_whitespace().find_map(|w| w.strip_prefix("result="));
        assert_eq!(result.map(str::len), Some(16), "{line}");
        assert!(line.split_whitespace().any(|w| w.starts_with("cpu=")), "{line}");
        assert!(run(&args("mem 1 1")).is_ok_and(|l| l.starts_with("FVBENCH mem ")));
        assert!(run(&args("mem 0")).is_err());
        assert!(run(&args("disk")).is_err() && run(&[]).is_err());
    }
}
