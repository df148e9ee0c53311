//! The plugin's pure part: its arguments, how a translation block is
//! classified, the counters, and the report it writes at exit.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Most vCPUs counted (QEMU virt's pCPUs, from the hypervisor's view);
/// executions on a higher index are counted in [`Counters::dropped`].
pub const MAX_VCPUS: usize = 16;

/// The first line of the report file, with its format version.
pub const HEADER: &str = "# ferrovisor-profile 1";

/// Where an executed translation block belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Inside the hypervisor image, executed at its own (identity) mapping.
    Hyp = 0,
    /// Upper-half virtual address (TTBR1): a Linux guest's kernel.
    Kernel = 1,
    /// Lower-half virtual address: a Linux guest's user space, and all of
    /// a bare-metal guest that runs at its IPAs (the probe guest).
    Low = 2,
}

/// The plugin's arguments: `hyp=START-END` (hex, end exclusive),
/// `out=FILE`, and any number of `mark=ADDR:NAME` (hex address of an exit
/// marker function in the hypervisor, and the exit reason it marks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The hypervisor image's address range.
    pub hyp: (u64, u64),
    /// Where the report goes at exit.
    pub out: String,
    /// Exit marker functions: entry address and exit reason.
    pub marks: Vec<(u64, String)>,
}

fn hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

/// Parses the plugin's `key=value` arguments.
pub fn parse_options<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Options, String> {
    let (mut hyp, mut out, mut marks) = (None, None, Vec::new());
    for arg in args {
        match arg.split_once('=') {
            Some(("mark", m)) => match m.split_once(':') {
                Some((a, name)) if hex(a).is_some() && !name.is_empty() => {
                    marks.push((hex(a).unwrap_or(0), name.to_string()))
                }
                _ => return Err(format!("mark={m}: want ADDR:NAME (ADDR in hex)")),
            },
            Some(("hyp", range)) => {
                let (a, b) = range.split_once('-').ok_or(format!("hyp={range}: want START-END in hex"))?;
                let (a, b) = (hex(a), hex(b));
                match (a, b) {
                    (Some(a), Some(b)) if a < b => hyp = Some((a, b)),
                    _ => return Err(format!("hyp={range}: want START-END in hex, START < END")),
                }
            }
            Some(("out", path)) if !path.is_empty() => out = Some(path.to_string()),
            _ => {
                return Err(format!(
                    "unknown argument '{arg}' (takes hyp=START-END, out=FILE and mark=ADDR:NAME)"
                ))
            }
        }
    }
    Ok(Options {
        hyp: hyp.ok_or("missing hyp=START-END (the hypervisor image's range)")?,
        out: out.ok_or("missing out=FILE (where the report goes)")?,
        marks,
    })
}

/// Classifies a translation block from its first instruction's virtual
/// address and host address minus virtual address (`delta`): a block in
/// the hypervisor's range is the hypervisor's only if its delta is the
/// hypervisor's (`hyp_delta`, learnt from the first block in the range,
/// which is the hypervisor's entry with the MMU off), because a guest may
/// run at the same virtual addresses (the probe guest is linked where the
/// hypervisor is) but its code sits elsewhere in host RAM.
pub fn classify(vaddr: u64, delta: Option<u64>, hyp: (u64, u64), hyp_delta: Option<u64>) -> Class {
    if (hyp.0..hyp.1).contains(&vaddr) && delta.is_some() && delta == hyp_delta {
        Class::Hyp
    } else if vaddr >> 63 == 1 {
        Class::Kernel
    } else {
        Class::Low
    }
}

/// Instructions executed per vCPU and class.
pub struct Counters {
    per_vcpu: [[AtomicU64; 3]; MAX_VCPUS],
    /// Executions on a vCPU index at or above [`MAX_VCPUS`].
    pub dropped: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self { per_vcpu: std::array::from_fn(|_| Default::default()), dropped: AtomicU64::new(0) }
    }
}

impl Counters {
    /// Counts `n` instructions of `class` on `vcpu`.
    pub fn add(&self, vcpu: usize, class: Class, n: u64) {
        match self.per_vcpu.get(vcpu) {
            Some(c) => c[class as usize].fetch_add(n, Ordering::Relaxed),
            None => self.dropped.fetch_add(n, Ordering::Relaxed),
        };
    }

    /// Instructions of `class` on `vcpu`.
    pub fn get(&self, vcpu: usize, class: Class) -> u64 {
        self.per_vcpu.get(vcpu).map_or(0, |c| c[class as usize].load(Ordering::Relaxed))
    }
}

/// Hypervisor instructions per exit, by exit reason.
///
/// An *exit* here is what a pCPU runs in the hypervisor between two stretches
/// of guest code: it opens at the first hypervisor block after a guest block
/// and closes at the next guest block. The hypervisor's profiling build calls
/// one marker function per exit reason as it counts the exit; the exit's
/// instructions go to the reason of the last marker it ran (index
/// `marks.len()`, "unmarked", if none). Hypervisor code before a vCPU first
/// ran guest code (boot) belongs to no exit, and neither does QEMU's boot
/// stub, which runs before the hypervisor.
pub struct Exits {
    /// The vCPU has run hypervisor code (so guest code after it is a
    /// guest's, not QEMU's boot stub, which runs first).
    started: [AtomicBool; MAX_VCPUS],
    open: [AtomicBool; MAX_VCPUS],
    insns: [AtomicU64; MAX_VCPUS],
    reason: [AtomicUsize; MAX_VCPUS],
    /// Per reason (the marks, then "unmarked"): exits closed, instructions.
    totals: Vec<[AtomicU64; 2]>,
}

impl Exits {
    /// No exit seen yet, for `marks` reasons (plus "unmarked").
    pub fn new(marks: usize) -> Self {
        Self {
            started: std::array::from_fn(|_| AtomicBool::new(false)),
            open: std::array::from_fn(|_| AtomicBool::new(false)),
            insns: std::array::from_fn(|_| AtomicU64::new(0)),
            reason: std::array::from_fn(|_| AtomicUsize::new(marks)),
            totals: (0..=marks).map(|_| Default::default()).collect(),
        }
    }

    /// `vcpu` ran a hypervisor block of `n` instructions; `mark`: it is
    /// the entry of the marker of reason `mark`.
    pub fn hyp(&self, vcpu: usize, n: u64, mark: Option<usize>) {
        let (Some(open), Some(insns), Some(reason)) =
            (self.open.get(vcpu), self.insns.get(vcpu), self.reason.get(vcpu))
        else {
            return;
        };
        if open.load(Ordering::Relaxed) {
            insns.fetch_add(n, Ordering::Relaxed);
            if let Some(m) = mark {
                reason.store(m, Ordering::Relaxed);
            }
        } else if let Some(s) = self.started.get(vcpu) {
            s.store(true, Ordering::Relaxed);
        }
    }

    /// `vcpu` ran a guest block: the exit in progress (if any) closes.
    pub fn guest(&self, vcpu: usize) {
        let (Some(open), Some(insns), Some(reason)) =
            (self.open.get(vcpu), self.insns.get(vcpu), self.reason.get(vcpu))
        else {
            return;
        };
        let n = insns.swap(0, Ordering::Relaxed);
        let unmarked = self.totals.len() - 1;
        let r = reason.swap(unmarked, Ordering::Relaxed);
        if n > 0 {
            if let Some([exits, total]) = self.totals.get(r) {
                exits.fetch_add(1, Ordering::Relaxed);
                total.fetch_add(n, Ordering::Relaxed);
            }
        }
        if self.started.get(vcpu).is_some_and(|s| s.load(Ordering::Relaxed)) {
            open.store(true, Ordering::Relaxed);
        }
    }

    /// Exits closed and their instructions, for reason index `r`.
    pub fn total(&self, r: usize) -> (u64, u64) {
        self.totals.get(r).map_or((0, 0), |[e, n]| (e.load(Ordering::Relaxed), n.load(Ordering::Relaxed)))
    }
}

/// One translated block inside the hypervisor: its start, instruction
/// count, and executions per vCPU.
pub struct HypBlock {
    /// Virtual (= physical) address of its first instruction.
    pub vaddr: u64,
    /// Its instructions (4 bytes each).
    pub insns: u64,
    /// Times executed, per vCPU.
    pub execs: [AtomicU64; MAX_VCPUS],
}

impl HypBlock {
    /// A block not executed yet.
    pub fn new(vaddr: u64, insns: u64) -> Self {
        Self { vaddr, insns, execs: std::array::from_fn(|_| Default::default()) }
    }
}

/// The report: the range, per-vCPU totals, the exits per reason as
/// `exit NAME EXITS INSNS` (with marks), then every executed hypervisor
/// block as `tb VCPU VADDR INSNS EXECS` (a block translated more than once
/// appears once per translation; the reader adds them up).
pub fn report(
    opts: &Options,
    counters: &Counters,
    exits: &Exits,
    blocks: &[std::sync::Arc<HypBlock>],
) -> String {
    let mut out = format!("{HEADER}\nhyp {:#x} {:#x}\n", opts.hyp.0, opts.hyp.1);
    for v in 0..MAX_VCPUS {
        let [h, k, l] = [Class::Hyp, Class::Kernel, Class::Low].map(|c| counters.get(v, c));
        if h + k + l > 0 {
            let _ = writeln!(out, "vcpu {v} hyp {h} kernel {k} low {l}");
        }
    }
    let dropped = counters.dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        let _ = writeln!(out, "dropped {dropped}");
    }
    if !opts.marks.is_empty() {
        let names = opts.marks.iter().map(|(_, n)| n.as_str()).chain(["unmarked"]);
        for (r, name) in names.enumerate() {
            let (n, insns) = exits.total(r);
            let _ = writeln!(out, "exit {name} {n} {insns}");
        }
    }
    for b in blocks {
        for (v, e) in b.execs.iter().enumerate() {
            let e = e.load(Ordering::Relaxed);
            if e > 0 {
                let _ = writeln!(out, "tb {v} {:#x} {} {e}", b.vaddr, b.insns);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn options_parse_and_reject() {
        let o = parse_options(["hyp=0x40080000-0x40100000", "out=/tmp/p", "mark=0x40081000:hvc"]).unwrap();
        assert_eq!(
            o,
            Options {
                hyp: (0x4008_0000, 0x4010_0000),
                out: "/tmp/p".into(),
                marks: vec![(0x4008_1000, "hvc".into())]
            }
        );
        assert!(parse_options(["hyp=1-2", "out=x", "mark=zz:hvc"]).is_err());
        assert!(parse_options(["hyp=1-2", "out=x", "mark=0x10"]).is_err());
        assert!(parse_options(["hyp=0x2-0x1", "out=x"]).is_err());
        assert!(parse_options(["out=x"]).is_err());
        assert!(parse_options(["hyp=1-2"]).is_err());
        assert!(parse_options(["hyp=1-2", "out=x", "bogus=1"]).is_err());
    }

    #[test]
    fn same_address_different_host_ram_is_a_guest() {
        let hyp = (0x4008_0000, 0x4010_0000);
        assert_eq!(classify(0x4008_1000, Some(7), hyp, Some(7)), Class::Hyp);
        // The probe guest linked at the hypervisor's address.
        assert_eq!(classify(0x4008_1000, Some(9), hyp, Some(7)), Class::Low);
        assert_eq!(classify(0x4008_1000, None, hyp, Some(7)), Class::Low);
        assert_eq!(classify(0xffff_8000_1000_0000, Some(1), hyp, Some(7)), Class::Kernel);
        assert_eq!(classify(0x40_0000, Some(1), hyp, Some(7)), Class::Low);
        assert_eq!(classify(0x4010_0000, Some(7), hyp, Some(7)), Class::Low);
    }

    #[test]
    fn report_lists_counts_and_blocks() {
        let opts = Options { hyp: (0x1000, 0x2000), out: String::new(), marks: vec![] };
        let c = Counters::default();
        c.add(1, Class::Hyp, 5);
        c.add(1, Class::Kernel, 7);
        c.add(MAX_VCPUS, Class::Low, 3);
        let b = Arc::new(HypBlock::new(0x1010, 5));
        b.execs[1].fetch_add(2, Ordering::Relaxed);
        let text = report(&opts, &c, &Exits::new(0), &[b]);
        assert_eq!(
            text,
            "# ferrovisor-profile 1\nhyp 0x1000 0x2000\nvcpu 1 hyp 5 kernel 7 low 0\ndropped 3\ntb 1 0x1010 5 2\n"
        );
    }

    #[test]
    fn exits_go_to_their_last_marker() {
        let e = Exits::new(2);
        // QEMU's boot stub, then the hypervisor's boot: no exit.
        e.guest(0);
        e.hyp(0, 100, Some(0));
        e.guest(0);
        // An exit marked 1 (10 + 5 instructions), then one with no marker.
        e.hyp(0, 10, None);
        e.hyp(0, 5, Some(1));
        e.guest(0);
        e.guest(0);
        e.hyp(0, 7, None);
        e.guest(0);
        // Another vCPU's exit marked 0, then 1: the last one wins.
        e.hyp(1, 50, None);
        e.guest(1);
        e.hyp(1, 3, Some(0));
        e.hyp(1, 4, Some(1));
        e.guest(1);
        assert_eq!(e.total(0), (0, 0));
        assert_eq!(e.total(1), (2, 22));
        assert_eq!(e.total(2), (1, 7));
        let opts = Options { hyp: (0, 1), out: String::new(), marks: vec![(1, "a".into()), (2, "b".into())] };
        let text = report(&opts, &Counters::default(), &e, &[]);
        assert!(text.contains("exit a 0 0\nexit b 2 22\nexit unmarked 1 7\n"), "{text}");
    }
}
