//! The board options `run` and `validate` share (`--cpu`, `--smp`,
//! `--memory`, `--rtc-base`, `--smmu`), checked before QEMU runs, and the
//! [`Machine`] they describe.

use crate::qemu::Machine;
use anyhow::{bail, Result};
use clap::Args;

/// Most CPUs the hypervisor brings up (its per-CPU stacks).
const MAX_SMP: u32 = 8;

/// The QEMU 7.2 CPU models with AArch64 and EL2 that the hypervisor boots
/// on; QEMU's 32-bit models (cortex-a15, ...) would hang silently.
pub const CPU_MODELS: &[&str] =
    &["max", "cortex-a35", "cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "neoverse-n1", "a64fx"];

/// QEMU virt as the options describe it.
#[derive(Args, Clone, Debug)]
pub struct BoardArgs {
    /// QEMU CPU model: max, cortex-a35, cortex-a53, cortex-a57, cortex-a72,
    /// cortex-a76, neoverse-n1 or a64fx (64-bit, with EL2).
    #[arg(long, value_name = "MODEL", default_value = "max")]
    pub cpu: String,
    /// Number of physical CPUs, 1 to 8.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub smp: u32,
    /// Host RAM, as QEMU spells it: 512M, 2G, ... (at least 256M).
    #[arg(long, value_name = "SIZE", default_value = "2G")]
    pub memory: String,
    /// Start the RTC at this UTC date and time (QEMU -rtc base=...), e.g.
    /// 2026-01-05T12:00:00 or 2026-01-05; default: the host's clock.
    #[arg(long, value_name = "DATE")]
    pub rtc_base: Option<String>,
    /// Put an SMMUv3 in front of PCIe (QEMU iommu=smmuv3).
    #[arg(long)]
    pub smmu: bool,
    /// Add QEMU's edu PCI device (a DMA engine) at 00:02.0, for
    /// pci-function = "00:02.0" (configs/qemu-virt/dma.dts; needs --smmu).
    #[arg(long)]
    pub edu: bool,
}

/// `512M` -> bytes; `None` for anything QEMU would not take as a size.
fn size_bytes(text: &str) -> Option<u64> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = digits.parse().ok()?;
    let shift = match unit {
        "" | "M" | "m" => 20,
        "G" | "g" => 30,
        "K" | "k" => 10,
        "T" | "t" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// Whether `text` is a date QEMU's `-rtc base=` takes: `YYYY-MM-DD`, or
/// that with `THH:MM:SS`.
fn rtc_date(text: &str) -> bool {
    let shape = |s: &str, pattern: &str| {
        s.len() == pattern.len()
            && s.chars().zip(pattern.chars()).all(|(c, p)| if p == 'd' { c.is_ascii_digit() } else { c == p })
    };
    shape(text, "dddd-dd-dd") || shape(text, "dddd-dd-ddTdd:dd:dd")
}

impl BoardArgs {
    /// The machine, or a clear error for a value QEMU or the hypervisor
    /// would refuse.
    pub fn machine(&self) -> Result<Machine> {
        if !(1..=MAX_SMP).contains(&self.smp) {
            bail!("--smp {}: the hypervisor runs on 1 to {MAX_SMP} CPUs", self.smp);
        }
        match size_bytes(&self.memory) {
            Some(b) if b >= 256 << 20 => {}
            Some(_) => bail!("--memory {}: give the board at least 256M (the hypervisor, the boot bundle and the guests live in it)", self.memory),
            None => bail!("--memory {}: not a size; write it as QEMU does, e.g. 512M or 2G", self.memory),
        }
        if !CPU_MODELS.contains(&self.cpu.as_str()) {
            bail!(
                "--cpu {}: not a 64-bit CPU model with EL2 that the hypervisor boots on; use one of {}",
                self.cpu,
                CPU_MODELS.join(", ")
            );
        }
        if let Some(base) = &self.rtc_base {
            if !rtc_date(base) {
                bail!("--rtc-base {base}: write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC), e.g. 2026-01-05T12:00:00");
            }
        }
        Ok(Machine {
            smp: self.smp,
            memory: self.memory.clone(),
            cpu: self.cpu.clone(),
            rtc_base: self.rtc_base.clone(),
            smmu: self.smmu,
            edu: self.edu,
            ..Machine::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> BoardArgs {
        BoardArgs { cpu: "max".into(), smp: 4, memory: "2G".into(), rtc_base: None, smmu: false, edu: false }
    }

    #[test]
    fn good_options_make_the_machine() {
        let m = BoardArgs {
            cpu: "cortex-a72".into(),
            smp: 2,
            memory: "1G".into(),
            rtc_base: Some("2026-01-05T12:00:00".into()),
            smmu: true,
            edu: true,
        }
        .machine()
        .unwrap();
        let line = m.args().join(" ");
        assert!(line.contains("-cpu cortex-a72 -smp 2 -m 1G"), "{line}");
        assert!(line.contains("-rtc base=2026-01-05T12:00:00"), "{line}");
        assert!(line.contains("iommu=smmuv3"), "{line}");
        assert!(line.contains("-device edu,addr=2,dma_mask=0xffffffffff"), "{line}");
    }

    #[test]
    fn bad_options_are_refused_before_qemu_runs() {
        let cases: [(BoardArgs, &str); 7] = [
            (BoardArgs { smp: 0, ..args() }, "--smp 0"),
            (BoardArgs { smp: 9, ..args() }, "--smp 9"),
            (BoardArgs { memory: "12Q".into(), ..args() }, "not a size"),
            (BoardArgs { memory: "64M".into(), ..args() }, "at least 256M"),
            (BoardArgs { cpu: "max,pauth=off".into(), ..args() }, "not a 64-bit CPU model"),
            (BoardArgs { cpu: "cortex-a15".into(), ..args() }, "use one of max, cortex-a35"),
            (BoardArgs { rtc_base: Some("5 Jan 2026".into()), ..args() }, "YYYY-MM-DD"),
        ];
        for (a, want) in cases {
            let e = a.machine().unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert_eq!(size_bytes("512M"), Some(512 << 20));
        assert_eq!(size_bytes("2"), Some(2 << 20));
        assert!(rtc_date("2026-01-05"));
    }
}
