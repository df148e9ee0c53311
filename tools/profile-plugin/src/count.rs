//! The plugin's pure part: its arguments, how a translation block is
//! classified, the counters, and the report it writes at exit.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The plugin's arguments: `hyp=START-END` (hex, end exclusive) and
/// `out=FILE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The hypervisor image's address range.
    pub hyp: (u64, u64),
    /// Where the report goes at exit.
    pub out: String,
}

fn hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

/// Parses the plugin's `key=value` arguments.
pub fn parse_options<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Options, String> {
    let (mut hyp, mut out) = (None, None);
    for arg in args {
        match arg.split_once('=') {
            Some(("hyp", range)) => {
                let (a, b) = range.split_once('-').ok_or(format!("hyp={range}: want START-END in hex"))?;
                let (a, b) = (hex(a), hex(b));
                match (a, b) {
                    (Some(a), Some(b)) if a < b => hyp = Some((a, b)),
                    _ => return Err(format!("hyp={range}: want START-END in hex, START < END")),
                }
            }
            Some(("out", path)) if !path.is_empty() => out = Some(path.to_string()),
            _ => return Err(format!("unknown argument '{arg}' (takes hyp=START-END and out=FILE)")),
        }
    }
    Ok(Options {
        hyp: hyp.ok_or("missing hyp=START-END (the hypervisor image's range)")?,
        out: out.ok_or("missing out=FILE (where the report goes)")?,
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

/// The report: the range, per-vCPU totals, then every executed hypervisor
/// block as `tb VCPU VADDR INSNS EXECS` (a block translated more than once
/// appears once per translation; the reader adds them up).
pub fn report(opts: &Options, counters: &Counters, blocks: &[std::sync::Arc<HypBlock>]) -> String {
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
        let o = parse_options(["hyp=0x40080000-0x40100000", "out=/tmp/p"]).unwrap();
        assert_eq!(o, Options { hyp: (0x4008_0000, 0x4010_0000), out: "/tmp/p".into() });
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
        let opts = Options { hyp: (0x1000, 0x2000), out: String::new() };
        let c = Counters::default();
        c.add(1, Class::Hyp, 5);
        c.add(1, Class::Kernel, 7);
        c.add(MAX_VCPUS, Class::Low, 3);
        let b = Arc::new(HypBlock::new(0x1010, 5));
        b.execs[1].fetch_add(2, Ordering::Relaxed);
        let text = report(&opts, &c, &[b]);
        assert_eq!(
            text,
            "# ferrovisor-profile 1\nhyp 0x1000 0x2000\nvcpu 1 hyp 5 kernel 7 low 0\ndropped 3\ntb 1 0x1010 5 2\n"
        );
    }
}
