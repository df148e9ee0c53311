//! QEMU: the board's command line, the host DTB dump, and a console driver
//! that runs a scripted session against expected output with a timeout.

use crate::{paths, setup};
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// QEMU's edu device at slot 2 (INTA = INTID 37), DMA addresses up to 40
/// bits (its default mask, 28 bits, would clamp guest RAM addresses).
pub const EDU_DEVICE: &str = "edu,addr=2,dma_mask=0xffffffffff";

/// The board: QEMU virt with EL2, GICv3 and (optionally) an SMMUv3.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Number of CPUs.
    pub smp: u32,
    /// RAM size as QEMU spells it (`2G`, `512M`).
    pub memory: String,
    /// QEMU's CPU model (`max`, `cortex-a57`, `cortex-a72`, ...).
    pub cpu: String,
    /// Where the RTC starts (`-rtc base=...`), if not the host's clock.
    pub rtc_base: Option<String>,
    /// Whether the CPUs start at EL2 (`virtualization=on`).
    pub virtualization: bool,
    /// Whether an SMMUv3 sits in front of PCIe.
    pub smmu: bool,
    /// QEMU's `edu` PCI device (a DMA engine with an INTx) at 00:02.0,
    /// its DMA addresses 40 bits wide.
    pub edu: bool,
    /// `-icount shift=0`: one instruction per nanosecond of virtual time.
    pub icount: bool,
}

impl Default for Machine {
    fn default() -> Self {
        Self {
            smp: 4,
            memory: "2G".into(),
            cpu: "max".into(),
            rtc_base: None,
            virtualization: true,
            smmu: false,
            edu: false,
            icount: false,
        }
    }
}

impl Machine {
    /// The `-M ... -cpu ... -smp ... -m ...` arguments.
    pub fn args(&self) -> Vec<String> {
        let mut m = String::from("virt,gic-version=3");
        if self.virtualization {
            m.push_str(",virtualization=on");
        }
        if self.smmu {
            m.push_str(",iommu=smmuv3");
        }
        let mut args = vec![
            "-M".into(),
            m,
            "-cpu".into(),
            self.cpu.clone(),
            "-smp".into(),
            self.smp.to_string(),
            "-m".into(),
            self.memory.clone(),
            // virt's default NIC needs a boot ROM (efi-virtio.rom) from a
            // package that is not installed: no NIC unless a test adds one.
            "-nic".into(),
            "none".into(),
        ];
        if self.icount {
            args.extend(["-icount".into(), "shift=0,sleep=off".into()]);
        }
        if self.edu {
            // A PCI device: not in the host DTB (the hypervisor enumerates
            // the bus), so the DTB cache below need not know about it.
            args.extend(["-device".into(), EDU_DEVICE.into()]);
        }
        if let Some(base) = &self.rtc_base {
            args.extend(["-rtc".into(), format!("base={base}")]);
        }
        args
    }

    /// The host DTB QEMU gives this board (cached under target/ferrovisor).
    pub fn host_dtb(&self) -> Result<PathBuf> {
        // Every option that changes the DTB is in the name (the CPU model
        // changes the cpu nodes' compatible).
        let name = format!(
            "host-virt-smp{}-{}-{}{}.dtb",
            self.smp,
            self.memory,
            self.cpu,
            if self.smmu { "-smmuv3" } else { "" }
        );
        let path = paths::out().join(name);
        if path.is_file() {
            return Ok(path);
        }
        std::fs::create_dir_all(paths::out())?;
        let mut args = self.args();
        if let Some(m) = args.get_mut(1) {
            m.push_str(&format!(",dumpdtb={}", path.display()));
        }
        let out = Command::new("qemu-system-aarch64")
            .args(&args)
            .args(["-display", "none"])
            .output()
            .context("running qemu-system-aarch64 to dump the host DTB")?;
        if !path.is_file() {
            bail!("QEMU did not dump the host DTB: {}", String::from_utf8_lossy(&out.stderr).trim_end());
        }
        Ok(path)
    }
}

/// What to boot.
#[derive(Clone, Debug)]
pub struct Boot {
    /// The flat hypervisor image.
    pub image: PathBuf,
    /// The boot bundle, if any.
    pub bundle: Option<PathBuf>,
    /// The hypervisor's boot arguments (`/chosen/bootargs`).
    pub bootargs: String,
    /// Further QEMU arguments (devices, drives, `-rtc`).
    pub extra: Vec<String>,
}

/// The full QEMU command line for `machine` booting `boot`.
pub fn command(machine: &Machine, boot: &Boot) -> Command {
    let mut cmd = Command::new("qemu-system-aarch64");
    cmd.args(machine.args()).arg("-kernel").arg(&boot.image);
    if let Some(bundle) = &boot.bundle {
        cmd.arg("-initrd").arg(bundle);
    }
    if !boot.bootargs.is_empty() {
        cmd.arg("-append").arg(&boot.bootargs);
    }
    cmd.args(&boot.extra);
    cmd
}

/// QEMU arguments that attach a raw disk image as a virtio-blk device; the
/// first one lands on virt's last virtio-mmio transport (0x0a003e00,
/// INTID 79).
pub fn virtio_disk(path: &Path) -> Vec<String> {
    vec![
        // virtio 1.x transports (version 2): their queue addresses are
        // 64-bit register pairs, which `dma-registers` can intercept
        // (QEMU 7.2's default is the legacy version 1 with one QueuePFN).
        "-global".into(),
        "virtio-mmio.force-legacy=false".into(),
        "-drive".into(),
        format!("file={},if=none,format=raw,id=disk0", path.display()),
        "-device".into(),
        "virtio-blk-device,drive=disk0".into(),
    ]
}

/// QEMU arguments that attach `path` (a raw image) as an NVMe controller at
/// PCI 00:03.0 (INTA = INTID 38). A PCI device: the host DTB does not
/// change.
pub fn nvme_disk(path: &Path) -> Vec<String> {
    vec![
        "-drive".into(),
        format!("file={},if=none,format=raw,id=nvme0", path.display()),
        "-device".into(),
        "nvme,serial=ferrovisor0,drive=nvme0,addr=3".into(),
    ]
}

/// The hypervisor's boot arguments of `run` and `profile`: `extra`
/// (`--bootargs`) first, then those that run `bootcmd` (`--bootcmd`).
pub fn hypervisor_bootargs(bootcmd: Option<&str>, extra: Option<&str>) -> Result<String> {
    let bootargs = bootargs_for(bootcmd)?;
    Ok(match extra {
        Some(extra) => format!("{extra} {bootargs}").trim().to_string(),
        None => bootargs,
    })
}

/// The QEMU arguments `attach` makes of the disk image of option `option`
/// (`--disk`, `--nvme`), after checking that the image exists.
pub fn disk_option(option: &str, path: &Path, attach: fn(&Path) -> Vec<String>) -> Result<Vec<String>> {
    if !path.is_file() {
        bail!("{option} {}: no such file", path.display());
    }
    Ok(attach(path))
}

/// Boot arguments that run `bootcmd` in the shell at boot.
pub fn bootargs_for(bootcmd: Option<&str>) -> Result<String> {
    match bootcmd {
        None => Ok(String::new()),
        Some(cmd) if cmd.contains('"') => bail!("--bootcmd may not contain '\"'"),
        Some(cmd) => Ok(format!("ferrovisor.bootcmd=\"{cmd}\"")),
    }
}

/// One step of a console script.
#[derive(Clone, Debug)]
pub enum Step {
    /// Wait until this text appears (after the previous match).
    Expect(String),
    /// Type this text into the console.
    Send(String),
    /// Wait until every one of these appears (after the previous match), in
    /// any order; the cursor moves past the last of them.
    ExpectAll(Vec<String>),
}

/// A scripted console session.
#[derive(Clone, Debug)]
pub struct Script {
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Text whose appearance anywhere fails the session at once.
    pub forbid: Vec<String>,
    /// Whether QEMU must exit on its own after the last step.
    pub expect_exit: bool,
    /// Limit for the whole session.
    pub timeout: Duration,
    /// Whether a hypervisor panic is what the session expects (crash tests);
    /// otherwise `ferrovisor PANIC` anywhere fails it.
    pub expect_panic: bool,
}

/// Markers that always mean failure.
pub const ALWAYS_FORBIDDEN: &[&str] = &["ferrovisor PANIC"];

/// The result of a session: the whole console transcript.
pub struct Transcript {
    /// Everything QEMU printed (stdout and stderr interleaved by arrival).
    pub text: String,
}

/// Why a session failed, with what the console showed.
#[derive(Debug)]
pub struct SessionError {
    /// What went wrong.
    pub reason: String,
    /// Everything the console printed.
    pub transcript: String,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.reason)
    }
}

/// Checks `text` against the forbidden markers; returns the first found.
pub fn forbidden_in<'a>(text: &str, forbid: &'a [String]) -> Option<&'a str> {
    forbid.iter().map(String::as_str).find(|f| text.contains(f))
}

struct Session {
    child: Child,
    rx: mpsc::Receiver<Vec<u8>>,
    text: String,
    /// QEMU's monitor socket, for the CPUs' registers after a timeout.
    monitor: std::path::PathBuf,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.monitor);
    }
}

/// A measurement session: boots `boot` on `machine`, drives `steps` within
/// `timeout` (QEMU must exit after the last; no text is forbidden) and
/// returns the console text, or an error naming `what` with the reason and
/// the transcript.
pub fn run_steps(
    machine: &Machine,
    boot: &Boot,
    steps: Vec<Step>,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<String> {
    let script = Script { steps, forbid: vec![], expect_exit: true, timeout, expect_panic: false };
    run_script(command(machine, boot), &script)
        .map(|t| t.text)
        .map_err(|e| anyhow::anyhow!("{what}: {}\n{}", e.reason, e.transcript))
}

/// Runs QEMU with `cmd` and drives `script` on its console.
pub fn run_script(mut cmd: Command, script: &Script) -> Result<Transcript, SessionError> {
    let fail = |reason: String, text: &str| SessionError { reason, transcript: text.to_string() };
    // The monitor listens on a socket of its own, read only after a
    // timeout (where every CPU is: a hung hypervisor shows its PCs).
    static SESSIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let monitor = std::env::temp_dir().join(format!("ferrovisor-monitor-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&monitor);
    let monitor_arg = format!("unix:{},server,nowait", monitor.display());
    cmd.args(["-display", "none", "-monitor", &monitor_arg, "-serial", "stdio", "-no-reboot"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(format!("could not start QEMU: {e}"), ""))?;
    let (tx, rx) = mpsc::channel();
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || pump(stream, tx));
    }
    drop(tx);
    let mut s = Session { child, rx, text: String::new(), monitor };
    let mut forbid: Vec<String> = script.forbid.clone();
    if !script.expect_panic {
        forbid.extend(ALWAYS_FORBIDDEN.iter().map(|s| s.to_string()));
    }
    let deadline = Instant::now() + script.timeout;
    let mut cursor = 0;
    // How far the transcript has been searched for the current step's texts,
    // and for the forbidden ones.
    let mut searched: usize = 0;
    let mut checked: usize = 0;
    let mut closed = false;
    for step in &script.steps {
        match step {
            Step::Send(text) => {
                let stdin =
                    s.child.stdin.as_mut().ok_or_else(|| fail("QEMU's stdin is closed".into(), &s.text))?;
                stdin
                    .write_all(text.as_bytes())
                    .and_then(|_| stdin.flush())
                    .map_err(|e| fail(format!("typing into the console: {e}"), &s.text))?;
            }
            Step::Expect(_) | Step::ExpectAll(_) => {
                let wants: Vec<&str> = match step {
                    Step::Expect(w) => vec![w.as_str()],
                    Step::ExpectAll(ws) => ws.iter().map(String::as_str).collect(),
                    Step::Send(_) => vec![],
                };
                let mut found: Vec<Option<usize>> = vec![None; wants.len()];
                loop {
                    // Only text that arrived since the last look is searched (with
                    // an overlap for a match that straddles it): a chatty guest
                    // must not make each chunk cost a scan of the whole transcript.
                    for (w, f) in wants.iter().zip(found.iter_mut()).filter(|(_, f)| f.is_none()) {
                        let from = char_floor(&s.text, searched.saturating_sub(w.len())).max(cursor);
                        *f = s.text[from..].find(w).map(|p| from + p + w.len());
                    }
                    if found.iter().all(Option::is_some) {
                        cursor = found.iter().flatten().copied().max().unwrap_or(cursor);
                        searched = cursor;
                        break;
                    }
                    let want = wants.iter().zip(&found).find(|(_, f)| f.is_none()).map_or("", |(w, _)| *w);
                    let overlap = forbid.iter().map(String::len).max().unwrap_or(0);
                    if let Some(bad) =
                        forbidden_in(&s.text[char_floor(&s.text, checked.saturating_sub(overlap))..], &forbid)
                    {
                        return Err(fail(format!("console showed '{bad}'"), &s.text));
                    }
                    searched = s.text.len();
                    checked = s.text.len();
                    if closed {
                        return Err(fail(format!("QEMU exited before '{want}' appeared"), &s.text));
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        diagnose(&mut s);
                        return Err(fail(
                            format!("timed out after {:?} waiting for '{want}'", script.timeout),
                            &s.text,
                        ));
                    }
                    match s.rx.recv_timeout(deadline - now) {
                        Ok(chunk) => {
                            s.text.push_str(&String::from_utf8_lossy(&chunk));
                            // Take whatever else arrived too before searching again.
                            while let Ok(more) = s.rx.try_recv() {
                                s.text.push_str(&String::from_utf8_lossy(&more));
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => closed = true,
                    }
                }
            }
        }
    }
    if script.expect_exit {
        loop {
            match s.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) => {}
                Err(e) => return Err(fail(format!("waiting for QEMU: {e}"), &s.text)),
            }
            if Instant::now() >= deadline {
                return Err(fail(format!("QEMU did not exit within {:?}", script.timeout), &s.text));
            }
            match s.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(chunk) => s.text.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        while let Ok(chunk) = s.rx.recv_timeout(Duration::from_millis(200)) {
            s.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    if let Some(bad) = forbidden_in(&s.text, &forbid) {
        return Err(fail(format!("console showed '{bad}'"), &s.text));
    }
    Ok(Transcript { text: std::mem::take(&mut s.text) })
}

/// The largest char boundary of `text` at or below `at`.
fn char_floor(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// After a timeout: detach the console from any guest and ask the
/// hypervisor shell for its view (vCPU states and exits, pass-through
/// counters), appended to the transcript.
fn diagnose(s: &mut Session) {
    s.text.push_str("\n----- diagnostics after the timeout -----\n");
    if let Some(stdin) = s.child.stdin.as_mut() {
        let _ = stdin.write_all(b"\x1d\rvcpu list\rpassthrough list\rcpus\r").and_then(|_| stdin.flush());
    }
    let end = Instant::now() + Duration::from_secs(3);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match s.rx.recv_timeout(left) {
            Ok(chunk) => s.text.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => break,
        }
    }
    s.text.push_str("\n----- where the CPUs are (QEMU monitor) -----\n");
    s.text.push_str(&cpu_states(&s.monitor));
}

/// Each CPU's PC, exception level and PSTATE from QEMU's monitor
/// (`info registers -a`), or why they could not be read.
fn cpu_states(socket: &Path) -> String {
    use std::os::unix::net::UnixStream;
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => return format!("monitor unreachable: {e}\n"),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = stream.write_all(b"info registers -a\n");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) if !out.is_empty() => break,
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&out);
    let lines: Vec<&str> =
        text.lines().filter(|l| l.contains("CPU#") || l.contains("PC=") || l.contains("PSTATE=")).collect();
    if lines.is_empty() {
        return "no register dump from the monitor\n".into();
    }
    lines.join("\n") + "\n"
}

fn pump(mut stream: Box<dyn Read + Send>, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Checks that QEMU is there before a test needs it.
pub fn require() -> Result<()> {
    if !setup::have("qemu-system-aarch64") {
        bail!("qemu-system-aarch64 is missing (package qemu-system-arm); `cargo xtask test` installs it when run as root");
    }
    Ok(())
}

/// A path shown relative to the workspace root.
pub fn display(path: &Path) -> String {
    path.strip_prefix(paths::root()).unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_args_name_the_board() {
        let m = Machine { smmu: true, icount: true, ..Machine::default() };
        let args = m.args().join(" ");
        assert_eq!(
            args,
            "-M virt,gic-version=3,virtualization=on,iommu=smmuv3 -cpu max -smp 4 -m 2G -nic none -icount shift=0,sleep=off"
        );
    }

    #[test]
    fn bootcmd_is_quoted_and_checked() {
        assert_eq!(
            bootargs_for(Some("guest list; halt")).unwrap(),
            "ferrovisor.bootcmd=\"guest list; halt\""
        );
        assert!(bootargs_for(Some("echo \"x\"")).is_err());
        assert_eq!(bootargs_for(None).unwrap(), "");
        assert_eq!(
            hypervisor_bootargs(Some("halt"), Some("ferrovisor.loglevel=debug")).unwrap(),
            "ferrovisor.loglevel=debug ferrovisor.bootcmd=\"halt\""
        );
        assert_eq!(hypervisor_bootargs(None, Some("x")).unwrap(), "x");
        let missing = disk_option("--nvme", Path::new("/nonexistent.img"), nvme_disk).unwrap_err();
        assert_eq!(missing.to_string(), "--nvme /nonexistent.img: no such file");
    }

    #[test]
    fn panic_marker_fails_a_session() {
        let forbid: Vec<String> = ALWAYS_FORBIDDEN.iter().map(|s| s.to_string()).collect();
        let text = "boot\n!!! ferrovisor PANIC on cpu0: oops at src/x.rs:1\n";
        assert_eq!(forbidden_in(text, &forbid), Some("ferrovisor PANIC"));
        assert_eq!(forbidden_in("all good", &forbid), None);
    }
}
