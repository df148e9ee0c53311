//! The QEMU integration tests: each boots the hypervisor on QEMU virt, drives
//! its console, and checks what it prints. This file holds the registry
//! ([`TESTS`]) and the session helpers; the tests live by area in
//! `itests/`: boot and shell (`boot`), probe guests and lifecycle
//! (`guests`), Linux guests (`linux`), pass-through and interrupts
//! (`passthrough`), GPIO (`gpio`), SCMI (`scmi`), faults (`faults`), memory
//! and limits (`memory`), the console (`console`).

mod console;

use crate::qemu::{self, Boot, Machine, Script, Step};
use crate::{bundle, paths, validate};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod boot;
mod dma;
mod faults;
mod gpio;
mod guests;
mod linux;
mod memory;
mod passthrough;
mod scmi;

// Helpers and tests of one area that others use too (the registry below,
// the Linux helpers, probe_done, the RTC constants).
pub(crate) use boot::*;
pub(crate) use guests::*;
pub(crate) use linux::*;
pub(crate) use passthrough::*;

/// What every test gets: the built hypervisor image.
pub struct Env {
    /// The flat hypervisor image.
    pub image: PathBuf,
}

/// One integration test.
pub struct Test {
    /// Its name, for filtering and reports.
    pub name: &'static str,
    /// What it checks, in one line.
    pub about: &'static str,
    /// The test itself.
    pub run: fn(&Env) -> Result<()>,
}

/// All integration tests, in the order they run.
pub const TESTS: &[Test] = &[
    Test {
        name: "boot-banner",
        about: "4 CPUs online, IPIs answered, default guests listed, halt exits QEMU",
        run: boot_banner,
    },
    Test { name: "footprint", about: "image <= 1 MiB, hypervisor memory <= 16 MiB", run: footprint },
    Test {
        name: "bad-config-rejected",
        about: "a guest with config errors is rejected with validate's messages; the others stay",
        run: bad_config,
    },
    Test {
        name: "validate-command",
        about: "`cargo xtask validate` passes default.dts and fails bad-guest.dts with its messages, and checks against the board its options describe",
        run: validate_command,
    },
    Test {
        name: "shell-input",
        about: "commands typed on the console run (UART receive interrupt)",
        run: shell_input,
    },
    Test {
        name: "idle-masked-timer",
        about: "under -icount sleep=off, the shell answers after a guest powers off with its timer expired and masked",
        run: idle_masked_timer,
    },
    Test {
        name: "console-stress",
        about: "under -icount, a guest prints without pause while the shell answers 100 commands; its lines stay whole",
        run: console::console_stress,
    },
    Test {
        name: "console-lines",
        about: "guest escape sequences removed, control bytes shown as \\xNN, unfinished lines shown alone; typed escapes and extra arguments refused",
        run: console::console_lines,
    },
    Test { name: "no-bundle", about: "booting without a bundle warns and reaches the shell", run: no_bundle },
    Test {
        name: "two-probes",
        about: "two 2-vCPU probe guests run at once on 4 pCPUs, print, start their 2nd vCPU, power off alone",
        run: two_probes,
    },
    Test {
        name: "isolation",
        about:
            "reads of another guest's RAM and of hypervisor memory abort in the guest; everyone carries on",
        run: isolation,
    },
    Test {
        name: "guest-lifecycle",
        about: "shell stop, start, reset, pause and resume of a probe guest",
        run: guest_lifecycle,
    },
    Test {
        name: "console-attach",
        about: "typing goes to an attached guest's vUART; Ctrl-] returns to the shell",
        run: console_attach,
    },
    Test {
        name: "linux-smp",
        about: "Debian Linux with 2 vCPUs boots to a shell: nproc, timer interrupts on both CPUs, clean dmesg, poweroff",
        run: linux_smp,
    },
    Test { name: "two-linux", about: "two Linux guests boot at once on 4 pCPUs and power off alone", run: two_linux },
    Test { name: "linux-and-probe", about: "a Linux guest and a probe guest run side by side", run: linux_and_probe },
    Test {
        name: "linux-rtc",
        about: "the host PL031 passed through: hwclock reads the date QEMU gave the RTC (fixed -rtc base), an alarm's interrupt reaches Linux",
        run: linux_rtc,
    },
    Test {
        name: "linux-rtc-remap",
        about: "the same RTC at guest address 0x0c000000 and guest INTID 64",
        run: linux_rtc_remap,
    },
    Test {
        name: "linux-gpio",
        about: "the host PL061 and PL031 passed through: the guest DT's gpio node is a GPIO and interrupt controller, Linux's pl061 driver binds it, hwclock reads the RTC",
        run: gpio::linux_gpio,
    },
    Test {
        name: "linux-scmi",
        about: "the PL031's clock, power domain and reset through the hypervisor's SCMI platform: Linux's SCMI driver probes, powers the domain on before use; unbinding the RTC driver powers it off (device unmapped), binding again works",
        run: scmi::linux_scmi,
    },
    Test {
        name: "linux-restarts",
        about: "a Linux guest with its RTC in an SCMI power domain stopped and started 20 times: every instance reads the RTC, every stop resets it and powers it off",
        run: scmi::linux_restarts,
    },
    Test {
        name: "scmi-probe",
        about: "a probe guest as SCMI agent: its domain on (device reads), off (accesses abort), another domain NOT_FOUND, a malformed request refused",
        run: scmi::scmi_probe,
    },
    Test {
        name: "virtio-blk",
        about: "a virtio-blk disk passed to an identity-mapped Linux, its queue address registers intercepted: its data reads back (sha256), writes persist, no address refused",
        run: virtio_blk,
    },
    Test {
        name: "passthrough-isolation",
        about: "a guest that does not own the RTC aborts on its registers; the RTC's interrupts reach only the owner",
        run: passthrough_isolation,
    },
    Test {
        name: "passthrough-assign",
        about: "passthrough assign moves the RTC from a running probe (its next read aborts) to a stopped Linux guest, which has it at its next start (own address and INTID: hwclock, alarm interrupt)",
        run: passthrough_assign,
    },
    Test {
        name: "dma-isolation",
        about: "edu behind the SMMU: DMA in the guest's own RAM works (data, interrupt); aimed at another guest's page it is blocked, logged and stopped, the page unchanged",
        run: dma::dma_isolation,
    },
    Test {
        name: "dma-intercept",
        about: "a virtio-blk device's queue address registers intercepted: its used ring aimed at another guest's page is refused and logged, the request completes in the guest's own ring, the page unchanged",
        run: dma::dma_intercept,
    },
    Test {
        name: "linux-nvme",
        about: "stock Linux drives a passed-through PCIe NVMe controller on its virtual ECAM bridge, behind the SMMU, RAM not identity mapped: sha256 of the disk reads back, a write lands in the image",
        run: dma::linux_nvme,
    },
    Test {
        name: "exits",
        about: "10,000 reads of a passed-through register cost no exits; a forwarded interrupt costs one exit, none on EOI",
        run: exits,
    },
    Test {
        name: "level-desched",
        about: "a level passed-through interrupt is neither lost nor stuck while its vCPU is descheduled",
        run: level_desched,
    },
    Test { name: "oversubscribed", about: "6 vCPUs on 4 pCPUs all complete", run: oversubscribed },
    Test {
        name: "fault-reports",
        about: "denied reads, writes, fetches and hvc #1 logged with guest, vCPU, PC, address; rate limit with suppression counts; RAZ/WI debug notes take no budget at info; stuck once, then free; vcpu list counts",
        run: faults::fault_reports,
    },
    Test {
        name: "fault-levels",
        about: "at log level debug the RAZ/WI notes show, share the rate limit, and every note and fault is accounted for",
        run: faults::fault_levels,
    },
    Test {
        name: "fault-stuck",
        about: "a vCPU re-taking one fault forever is reported stuck once; guest list and vcpu list say so until it stops",
        run: faults::fault_stuck,
    },
    Test {
        name: "crash-reports",
        about:
            "a panic and an EL2 fault each print an epitaph (message, location or registers) and power off",
        run: crash_reports,
    },
    Test {
        name: "not-at-el2",
        about: "entered at EL1, the hypervisor says why and powers off",
        run: not_at_el2,
    },
    Test {
        name: "failed-build",
        about: "a guest whose build fails late leaves no RAM, heap or route behind; the guests after it get their interrupts and console input",
        run: memory::failed_build,
    },
    Test {
        name: "placement",
        about: "validate's placement of the hypervisor, bundle and host DTB is where the booted hypervisor says they are",
        run: memory::placement,
    },
    Test {
        name: "config-limits",
        about: "a guest INTID beyond the vGIC, identity memory over the bundle, a heap-hungry config: validate and the boot reject the same guests",
        run: memory::config_limits,
    },
    Test {
        name: "huge-configs",
        about: "300 guests, or one guest with 3,000 memory nodes: refused within the documented limits, the hypervisor stays up",
        run: memory::huge_configs,
    },
    Test {
        name: "halt-when-idle",
        about: "with ferrovisor.halt-when-idle the board powers off by itself once every guest has stopped",
        run: memory::halt_when_idle,
    },
    Test {
        name: "profile",
        about: "`cargo xtask profile` on the bench probe: hypervisor and guest instructions split apart, the exit path counted once per exit at least",
        run: crate::profile::itest,
    },
];

const TIMEOUT: Duration = Duration::from_secs(90);

pub(crate) fn config(name: &str) -> PathBuf {
    paths::root().join("configs/qemu-virt").join(name)
}

pub(crate) fn boot_with(env: &Env, config: Option<&Path>, bootcmd: Option<&str>) -> Result<Boot> {
    let bundle = match config {
        Some(c) => Some(bundle::make(c)?),
        None => None,
    };
    Ok(Boot { image: env.image.clone(), bundle, bootargs: qemu::bootargs_for(bootcmd)?, extra: vec![] })
}

fn expect(items: &[&str]) -> Vec<Step> {
    items.iter().map(|s| Step::Expect(s.to_string())).collect()
}

pub(crate) fn session(machine: &Machine, boot: &Boot, steps: Vec<Step>, expect_exit: bool) -> Result<String> {
    run_session(
        machine,
        boot,
        Script { steps, forbid: vec![], expect_exit, timeout: TIMEOUT, expect_panic: false },
    )
}

fn run_session(machine: &Machine, boot: &Boot, script: Script) -> Result<String> {
    match qemu::run_script(qemu::command(machine, boot), &script) {
        Ok(t) => Ok(t.text),
        Err(e) => Err(anyhow::anyhow!(
            "{}\n----- console transcript -----\n{}\n----- end of transcript -----",
            e.reason,
            e.transcript
        )),
    }
}

pub(crate) fn with_transcript<T>(result: Result<T>, transcript: &str) -> Result<T> {
    result.with_context(|| {
        format!("\n----- console transcript -----\n{transcript}\n----- end of transcript -----")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_footprint_numbers() {
        let text = "  footprint: image 120 KiB, hypervisor memory 4812 KiB (bss 3 KiB)\n";
        assert_eq!(kib_after(text, "image "), Some(120));
        assert_eq!(kib_after(text, "hypervisor memory "), Some(4812));
        assert_eq!(kib_after("nothing", "image "), None);
    }

    #[test]
    fn counts_online_cpu_rows() {
        let text = "  cpus:      4 online of 4\n  cpu  mpidr  state\n  0    0x00000000  online   3  0\n  1    0x00000001  offline  0  0\n";
        assert_eq!(cpu_rows_online(text), 1);
    }

    #[test]
    fn reads_counts_with_the_next_command_echoed_behind() {
        assert_eq!(rtc_irqs("RTCIRQ 1 34poweroff -f\n"), Some((1, 34)));
        assert_eq!(rtc_irqs("RTCIRQ x 34\n"), None);
        assert_eq!(timer_counts("TIMERS 12 7echo\n"), Some((12, 7)));
    }

    #[test]
    fn reads_timer_counts() {
        assert_eq!(timer_counts("x\nTIMERS 120 77\r\nguest# "), Some((120, 77)));
        assert_eq!(timer_counts("awk '/arch_timer/ {print \"TIMERS\", $2}'"), None);
    }

    #[test]
    fn test_names_are_unique() {
        let mut names: Vec<_> = TESTS.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TESTS.len());
    }
}
