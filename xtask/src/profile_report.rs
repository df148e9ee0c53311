//! The pure part of `cargo xtask profile`: reading the plugin's report,
//! symbolising hypervisor addresses from the ELF, reading the exit counters
//! from the shell's `vcpu list`, and printing the summary.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;

/// The plugin's report format (tools/profile-plugin/src/count.rs).
pub const HEADER: &str = "# ferrovisor-profile 1";

/// Instructions of one pCPU by where they ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// In the hypervisor image.
    pub hyp: u64,
    /// Guest, upper-half virtual addresses (a Linux kernel).
    pub kernel: u64,
    /// Guest, lower-half virtual addresses (Linux user space; all of a
    /// bare-metal guest such as the probe).
    pub low: u64,
}

/// One executed hypervisor block: pCPU, address, instructions, executions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// The pCPU (QEMU's vCPU index).
    pub cpu: usize,
    /// Its first instruction's address.
    pub addr: u64,
    /// Its instruction count.
    pub insns: u64,
    /// How often it ran.
    pub execs: u64,
}

/// The plugin's report.
#[derive(Debug, Default)]
pub struct Profile {
    /// The hypervisor range it was given.
    pub hyp: (u64, u64),
    /// Per pCPU.
    pub cpus: BTreeMap<usize, Split>,
    /// Executed hypervisor blocks.
    pub blocks: Vec<Block>,
    /// Per exit reason (the profiling build's markers, then `unmarked`):
    /// exits and their hypervisor instructions.
    pub exits: Vec<ExitCost>,
}

/// The hypervisor instructions of the exits of one reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitCost {
    /// The reason, as the shell names it (`unmarked`: no marker ran).
    pub reason: String,
    /// Exits.
    pub exits: u64,
    /// Hypervisor instructions in them, from the exception entry to the
    /// return to the guest.
    pub insns: u64,
}

fn num(word: Option<&str>) -> Result<u64> {
    let w = word.context("missing number")?;
    Ok(match w.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16)?,
        None => w.parse()?,
    })
}

/// Parses the plugin's report.
pub fn parse(text: &str) -> Result<Profile> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        bail!("not a profile report (first line is not '{HEADER}')");
    }
    let mut p = Profile::default();
    for (i, line) in lines.enumerate() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("profile report line {}: '{line}'", i + 2);
        match w.as_slice() {
            ["hyp", a, b] => p.hyp = (num(Some(a)).with_context(bad)?, num(Some(b)).with_context(bad)?),
            ["vcpu", v, "hyp", h, "kernel", k, "low", l] => {
                let split = Split {
                    hyp: num(Some(h)).with_context(bad)?,
                    kernel: num(Some(k)).with_context(bad)?,
                    low: num(Some(l)).with_context(bad)?,
                };
                p.cpus.insert(num(Some(v)).with_context(bad)? as usize, split);
            }
            ["tb", v, a, n, e] => p.blocks.push(Block {
                cpu: num(Some(v)).with_context(bad)? as usize,
                addr: num(Some(a)).with_context(bad)?,
                insns: num(Some(n)).with_context(bad)?,
                execs: num(Some(e)).with_context(bad)?,
            }),
            ["exit", reason, n, insns] => p.exits.push(ExitCost {
                reason: reason.to_string(),
                exits: num(Some(n)).with_context(bad)?,
                insns: num(Some(insns)).with_context(bad)?,
            }),
            ["dropped", n] => {
                bail!("{n} instructions ran on a vCPU index the plugin does not count (over 16 CPUs)")
            }
            _ => bail!("{}: unknown line", bad()),
        }
    }
    Ok(p)
}

/// The hypervisor's code symbols, sorted by address.
pub struct Symbols(Vec<(u64, String)>);

impl Symbols {
    /// Symbols from (address, name) pairs in any order.
    #[cfg(test)]
    pub fn new(mut syms: Vec<(u64, String)>) -> Self {
        syms.sort();
        Self(syms)
    }

    /// Reads the code symbols of an ELF: every named symbol in an
    /// executable section (functions, and the assembly's labels), mapping
    /// symbols such as `$x` left out; where several share an address, a
    /// sized one (a function) wins.
    pub fn from_elf(elf: &[u8]) -> Result<Self> {
        use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
        let file = object::File::parse(elf).context("parsing the hypervisor ELF")?;
        let code: Vec<_> =
            file.sections().filter(|s| s.kind() == SectionKind::Text).map(|s| s.index()).collect();
        let mut syms: Vec<(u64, u64, String)> = file
            .symbols()
            .filter(|s| !matches!(s.kind(), SymbolKind::Section | SymbolKind::File))
            .filter(|s| s.section_index().is_some_and(|i| code.contains(&i)))
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
            .filter(|(_, _, n)| !n.is_empty() && !n.starts_with('$'))
            .collect();
        // Sized symbols (functions) before unsized labels at the same address.
        syms.sort_by_key(|(a, size, _)| (*a, *size == 0));
        syms.dedup_by_key(|(a, _, _)| *a);
        Ok(Self(syms.into_iter().map(|(a, _, n)| (a, demangle(&n))).collect()))
    }

    /// The function containing `addr` (the nearest symbol at or below it).
    pub fn lookup(&self, addr: u64) -> Option<&str> {
        let i = self.0.partition_point(|(a, _)| *a <= addr);
        self.0.get(i.checked_sub(1)?).map(|(_, n)| n.as_str())
    }
}

/// A symbol's name as Rust spells it, without the hash (legacy and v0
/// manglings); other names come back as they are.
pub fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// One hypervisor function's instructions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotFn {
    /// Its demangled name.
    pub name: String,
    /// Its instructions per pCPU.
    pub per_cpu: BTreeMap<usize, u64>,
    /// Its instructions on all pCPUs.
    pub total: u64,
}

/// Exits per pCPU and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exits {
    /// The reasons, as the shell names them.
    pub reasons: Vec<String>,
    /// Exits per pCPU, one count per reason.
    pub per_cpu: BTreeMap<usize, Vec<u64>>,
}

/// Hypervisor instructions per function, per pCPU and in total, hottest
/// first.
pub fn hot_functions(p: &Profile, syms: &Symbols) -> Vec<HotFn> {
    let mut by_fn: BTreeMap<&str, BTreeMap<usize, u64>> = BTreeMap::new();
    for b in &p.blocks {
        for i in 0..b.insns {
            let name = syms.lookup(b.addr + 4 * i).unwrap_or("(no symbol)");
            *by_fn.entry(name).or_default().entry(b.cpu).or_default() += b.execs;
        }
    }
    let mut v: Vec<_> = by_fn
        .into_iter()
        .map(|(n, per_cpu)| HotFn { name: n.to_string(), total: per_cpu.values().sum(), per_cpu })
        .collect();
    v.sort_by(|a, b| b.total.cmp(&a.total).then(a.name.cmp(&b.name)));
    v
}

/// Hypervisor instructions spent waiting for a lock another pCPU holds:
/// those in the `ferrovisor_sync` locks' out-of-line waiting functions
/// (`Mutex::lock_contended`, `RwLock::read_contended`/`write_contended`),
/// which hold every waiting instruction of the hypervisor's locks.
pub fn spinning(hot: &[HotFn]) -> u64 {
    hot.iter()
        .filter(|h| ferrovisor_sync::CONTENDED_FNS.iter().any(|f| h.name.ends_with(f)))
        .map(|h| h.total)
        .sum()
}

/// Exits per pCPU and reason from the shell's `vcpu list` (the header line
/// names the reasons); the vCPUs a pCPU ran are added up.
pub fn exits(transcript: &str) -> Result<Exits> {
    let mut lines = transcript.lines().skip_while(|l| !(l.contains("exits:") && l.contains("pcpu")));
    let header = lines.next().context("no `vcpu list` table in the console output")?;
    let reasons: Vec<String> = header
        .split("exits:")
        .nth(1)
        .and_then(|r| r.split("loads").next())
        .context("no exit reasons in the `vcpu list` header")?
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut per: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    // Rows: guest vcpu pcpu state counts... loads faults.
    for l in lines.take_while(|l| l.starts_with("  ")) {
        let w: Vec<&str> = l.split_whitespace().collect();
        let Some(counts) = w.get(4..4 + reasons.len()) else { continue };
        let (Some(Ok(pcpu)), Ok(counts)) = (
            w.get(2).map(|s| s.parse::<usize>()),
            counts.iter().map(|c| c.parse::<u64>()).collect::<Result<Vec<_>, _>>(),
        ) else {
            continue;
        };
        let sum = per.entry(pcpu).or_insert_with(|| vec![0; reasons.len()]);
        sum.iter_mut().zip(counts).for_each(|(s, c)| *s += c);
    }
    Ok(Exits { reasons, per_cpu: per })
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The summary `cargo xtask profile` prints: the split per pCPU, the `top`
/// hottest hypervisor functions, and the exits with hypervisor
/// instructions per exit.
pub fn render(p: &Profile, hot: &[HotFn], exits: Option<&Exits>, top: usize) -> String {
    let mut out = String::from("instructions per pCPU (guest kernel = upper-half VAs; guest low = lower-half VAs: Linux user space, or all of a bare-metal guest)\n");
    out.push_str(&format!(
        "{:>5} {:>14} {:>14} {:>14} {:>7}\n",
        "pCPU", "hypervisor", "guest kernel", "guest low", "hyp %"
    ));
    let mut total = Split::default();
    for (cpu, s) in &p.cpus {
        out.push_str(&format!(
            "{cpu:>5} {:>14} {:>14} {:>14} {:>6.1}%\n",
            s.hyp,
            s.kernel,
            s.low,
            pct(s.hyp, s.hyp + s.kernel + s.low)
        ));
        total = Split { hyp: total.hyp + s.hyp, kernel: total.kernel + s.kernel, low: total.low + s.low };
    }
    out.push_str(&format!(
        "{:>5} {:>14} {:>14} {:>14} {:>6.1}%\n",
        "all",
        total.hyp,
        total.kernel,
        total.low,
        pct(total.hyp, total.hyp + total.kernel + total.low)
    ));
    out.push_str("\nhottest hypervisor functions (instructions; share of all hypervisor instructions)\n");
    for HotFn { name, per_cpu, total: n } in hot.iter().take(top) {
        let cpus: Vec<String> = per_cpu.iter().map(|(c, n)| format!("cpu{c} {n}")).collect();
        out.push_str(&format!("{n:>12} {:>5.1}%  {name}  [{}]\n", pct(*n, total.hyp), cpus.join(", ")));
    }
    let spin = spinning(hot);
    out.push_str(&format!(
        "\nspinning (waiting for a lock another pCPU holds): {spin} instructions, {:.2} % of the hypervisor's\n",
        pct(spin, total.hyp)
    ));
    if !p.exits.is_empty() {
        out.push_str("\nhypervisor instructions per exit, by reason (from the exception entry to the guest's next instruction; all pCPUs)\n");
        out.push_str(&format!("{:>8} {:>10} {:>14} {:>10}\n", "reason", "exits", "instructions", "per exit"));
        for e in p.exits.iter().filter(|e| e.exits > 0) {
            out.push_str(&format!(
                "{:>8} {:>10} {:>14} {:>10.0}\n",
                e.reason,
                e.exits,
                e.insns,
                e.insns as f64 / e.exits as f64
            ));
        }
    }
    if let Some(Exits { reasons, per_cpu: per }) = exits {
        out.push_str("\nexits per pCPU (shell `vcpu list` before halt) and hypervisor instructions per exit (all reasons together)\n");
        out.push_str(&format!(
            "{:>5} {} {:>8} {:>10}\n",
            "pCPU",
            reasons.iter().map(|r| format!("{r:>7}")).collect::<String>(),
            "exits",
            "hyp/exit"
        ));
        for (cpu, counts) in per {
            let n: u64 = counts.iter().sum();
            let hyp = p.cpus.get(cpu).map_or(0, |s| s.hyp);
            let each = if n == 0 { "-".to_string() } else { format!("{:.0}", hyp as f64 / n as f64) };
            out.push_str(&format!(
                "{cpu:>5} {} {n:>8} {each:>10}\n",
                counts.iter().map(|c| format!("{c:>7}")).collect::<String>()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "# ferrovisor-profile 1\nhyp 0x1000 0x2000\n\
        vcpu 0 hyp 100 kernel 0 low 6\nvcpu 1 hyp 50 kernel 30 low 20\n\
        tb 0 0x1000 2 10\ntb 1 0x1004 3 10\ntb 0 0x1100 4 20\n";

    #[test]
    fn parses_the_plugins_report() {
        let p = parse(REPORT).unwrap();
        assert_eq!(p.hyp, (0x1000, 0x2000));
        assert_eq!(p.cpus[&1], Split { hyp: 50, kernel: 30, low: 20 });
        assert_eq!(p.blocks[2], Block { cpu: 0, addr: 0x1100, insns: 4, execs: 20 });
        assert!(parse("hyp 1 2\n").is_err());
        assert!(parse(&format!("{HEADER}\nvcpu x hyp 1 kernel 2 low 3\n")).is_err());
        assert!(parse(&format!("{HEADER}\ndropped 5\n")).is_err());
        let p = parse(&format!("{HEADER}\nexit hvc 3 120\nexit unmarked 0 0\n")).unwrap();
        assert_eq!(p.exits[0], ExitCost { reason: "hvc".into(), exits: 3, insns: 120 });
        let text = render(&p, &[], None, 1);
        assert!(text.contains("     hvc          3            120         40"), "{text}");
        assert!(!text.contains("unmarked"), "{text}");
    }

    #[test]
    fn instructions_go_to_the_function_that_holds_them() {
        let p = parse(REPORT).unwrap();
        let syms = Symbols::new(vec![(0x1100, "b".into()), (0x1000, "a".into()), (0x1008, "c".into())]);
        assert_eq!(syms.lookup(0xfff), None);
        assert_eq!(syms.lookup(0x1007), Some("a"));
        let hot = hot_functions(&p, &syms);
        // b: 4 insns x 20; a: 2x10 (cpu0) + 0x1004 (cpu1) 1x10; c: 0x1008,0x100c on cpu1 2x10.
        let names: Vec<(&str, u64)> = hot.iter().map(|h| (h.name.as_str(), h.total)).collect();
        assert_eq!(names, vec![("b", 80), ("a", 30), ("c", 20)]);
        assert_eq!(hot[1].per_cpu.get(&1), Some(&10));
        // Hypervisor instructions counted per block agree with the totals.
        let text = render(&p, &hot, None, 2);
        assert!(text.contains("   80  53.3%  b  [cpu0 80]"), "{text}");
        assert!(!text.contains("  c  "), "{text}");
        assert!(text.contains("  all            150             30             26"), "{text}");
        assert!(text.contains("spinning (waiting for a lock another pCPU holds): 0 instructions"), "{text}");
        let waiting = HotFn {
            name: "ferrovisor_sync::mutex::Mutex<T>::lock_contended".into(),
            per_cpu: BTreeMap::new(),
            total: 15,
        };
        assert_eq!(spinning(&[waiting.clone(), hot[0].clone()]), 15);
        assert!(render(&p, &[waiting], None, 1).contains(": 15 instructions, 10.00 %"));
    }

    #[test]
    fn demangles_legacy_rust_names() {
        assert_eq!(
            demangle("_ZN10ferrovisor4core2vm4exit5smccc17hfd43d8c05654bd98E"),
            "ferrovisor::core::vm::exit::smccc"
        );
        assert_eq!(
            demangle(
                "_ZN58_$LT$ferrovisor_trap..Exit$u20$as$u20$core..fmt..Debug$GT$3fmt17ha5fab32dd2eaf6ffE"
            ),
            "<ferrovisor_trap::Exit as core::fmt::Debug>::fmt"
        );
        assert_eq!(
            demangle("_RNvNtNtCs3g5Gb6bJpu0_4core3str8converts9from_utf8"),
            "core::str::converts::from_utf8"
        );
        assert_eq!(demangle("guest_exit"), "guest_exit");
    }

    #[test]
    fn exits_add_up_per_pcpu() {
        let text = "ferrovisor> vcpu list\n\
            \x20 guest            vcpu pcpu state      exits: irq fwd mmio hvc  loads faults\n\
            \x20 bench            0    1 off        0 3 3115 1011  1 0\n\
            \x20 two              0    1 on         1 1 1 1  1 0\n\
            \x20 two              1    2 on         5 0 0 0  1 0\n\
            ferrovisor> halt\n";
        let e = exits(text).unwrap();
        assert_eq!(e.reasons, ["irq", "fwd", "mmio", "hvc"]);
        assert_eq!(e.per_cpu[&1], vec![1, 4, 3116, 1012]);
        assert_eq!(e.per_cpu[&2], vec![5, 0, 0, 0]);
        assert!(exits("no table").is_err());
        let p = parse(REPORT).unwrap();
        let text = render(&p, &[], Some(&e), 5);
        // pCPU 1: 50 hypervisor instructions over 4133 exits.
        assert!(text.contains("    1       1      4   3116   1012     4133          0"), "{text}");
    }
}
