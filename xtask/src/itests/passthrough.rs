//! Passed-through devices and their interrupts: the PL031 RTC (also
//! remapped), virtio-blk, isolation of a device from other guests, exit
//! counts, and interrupts with a descheduled or oversubscribed vCPU.

use super::*;

/// Guest commands that fire an RTC alarm and print the RTC interrupt count.
pub(crate) const RTC_ALARM: (&str, &str) = (
    "echo +2 > /sys/class/rtc/rtc0/wakealarm; sleep 3; awk '/rtc-pl031/ {print \"RTCIRQ\", $2+$3, $(NF-2)}' /proc/interrupts",
    "RTCIRQ ",
);

/// Reads `RTCIRQ <count> <guest intid>` from the transcript.
pub fn rtc_irqs(text: &str) -> Option<(u64, u32)> {
    let line = text.lines().rev().find(|l| l.trim_start().starts_with("RTCIRQ "))?;
    let mut w = line.split_whitespace().skip(1);
    Some((leading_number(w.next()?)?, leading_number(w.next()?)?))
}

/// The RTC's start date for the RTC tests: fixed, so that no test depends on
/// the calendar or the time zone of the machine it runs on. A single-digit
/// day on purpose (`hwclock` pads it: "Jan  5").
pub(crate) const RTC_BASE: &str = "2026-01-05T12:00:00";

/// What `hwclock` shows for [`RTC_BASE`], whitespace collapsed.
pub(crate) const RTC_BASE_SHOWN: (&str, &str) = ("Jan 5 12:", "2026");

/// `text` with every run of white space turned into one space.
/// The last output line starting with `key` (`HW=` and the like, from
/// `echo HW=$(hwclock -r -u)`), checked to show the date QEMU's RTC started
/// at (`-rtc base=`).
pub(crate) fn rtc_date<'t>(text: &'t str, key: &str) -> Result<&'t str> {
    let (day, year) = RTC_BASE_SHOWN;
    let line = text.lines().rev().find(|l| l.trim_start().starts_with(key)).unwrap_or("");
    let shown = collapse_spaces(line);
    with_transcript(
        if shown.contains(day) && shown.contains(year) {
            Ok(line)
        } else {
            Err(anyhow::anyhow!("hwclock said '{line}', the RTC started at {RTC_BASE} (-rtc base=)"))
        },
        text,
    )
}

pub(crate) fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn rtc_test(env: &Env, cfg: &str, guest_intid: u32, guest_addr: &str) -> Result<()> {
    let mut boot = boot_with(env, Some(&config(cfg)), None)?;
    boot.extra = vec!["-rtc".into(), format!("base={RTC_BASE}")];
    let mut steps = vec![Step::Expect(linux_ready("linux0"))];
    steps.extend(linux_commands(
        "linux0",
        &[
            ("echo RTCDEV=$(ls /sys/bus/amba/devices | grep pl031)", &format!("RTCDEV={guest_addr}.pl031")),
            ("echo HW=$(hwclock -r -u)", "HW="),
            RTC_ALARM,
        ],
    ));
    steps.push(Step::Send("passthrough list\r".into()));
    steps.push(Step::Expect(format!("irq   host 34 -> guest {guest_intid} (Level), forwarded")));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session(&boot, steps)?;
    let (hw, count) = rtc_checks(&text, guest_intid)?;
    println!("    hwclock: {hw}; RTC alarm interrupts in the guest: {count} (INTID {guest_intid})");
    Ok(())
}

/// The Linux RTC checks of a transcript: `HW=` shows the RTC's start date,
/// and the alarm interrupt arrived (`RTCIRQ`) on `guest_intid`. Returns the
/// `hwclock` line and the interrupt count.
fn rtc_checks(text: &str, guest_intid: u32) -> Result<(String, u64)> {
    let hw = rtc_date(text, "HW=")?.trim().to_string();
    let (count, intid) = with_transcript(rtc_irqs(text).context("no RTCIRQ line"), text)?;
    with_transcript(
        if count >= 1 && intid == guest_intid {
            Ok((hw, count))
        } else {
            Err(anyhow::anyhow!("RTC interrupts: {count} on INTID {intid}; want >= 1 on {guest_intid}"))
        },
        text,
    )
}

pub(crate) fn linux_rtc(env: &Env) -> Result<()> {
    rtc_test(env, "default.dts", 34, "9010000")
}

pub(crate) fn linux_rtc_remap(env: &Env) -> Result<()> {
    rtc_test(env, "rtc-remap.dts", 64, "c000000")
}

/// The marker a disk test writes at sector 100 of its disk.
const DISK_MARKER: &str = "FERROVISOR-WROTE-THIS";

/// A 4 MiB test disk with a known pattern under target/ferrovisor, and
/// its sha256 as `sha256sum` prints it.
pub(crate) fn test_disk(name: &str) -> Result<(std::path::PathBuf, String)> {
    use std::io::Write;
    let disk = paths::out().join(name);
    let data: Vec<u8> =
        (0..4u32 * 1024 * 1024).map(|i| (i.wrapping_mul(7).wrapping_add(13) % 251) as u8).collect();
    std::fs::File::create(&disk).and_then(|mut f| f.write_all(&data)).context("writing the test disk")?;
    let out = std::process::Command::new("sha256sum").arg(&disk).output().context("running sha256sum")?;
    let sum = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string();
    anyhow::ensure!(sum.len() == 64, "sha256sum printed no digest");
    Ok((disk, sum))
}

/// The guest commands that check a test disk seen as `dev` (`/dev/vda`):
/// its sha256, then a write of [`DISK_MARKER`] at sector 100, synced.
pub(crate) fn disk_checks(dev: &str, sum: &str) -> [(String, String); 2] {
    [
        (format!("sha256sum {dev}"), format!("{sum}  {dev}")),
        (
            format!(
                "echo {DISK_MARKER} | dd of={dev} bs=512 seek=100 conv=notrunc && sync && echo W=$((1+1))"
            ),
            "W=2".into(),
        ),
    ]
}

/// Whether the guest's write of [`DISK_MARKER`] landed in the image file.
pub(crate) fn check_disk_write(disk: &std::path::Path, text: &str) -> Result<()> {
    let after = std::fs::read(disk).context("reading the test disk back")?;
    let at = 100 * 512;
    with_transcript(
        if after.get(at..at + DISK_MARKER.len()) == Some(DISK_MARKER.as_bytes()) {
            Ok(())
        } else {
            Err(anyhow::anyhow!("the guest's write is not in the disk image at offset {at}"))
        },
        text,
    )
}

pub(crate) fn virtio_blk(env: &Env) -> Result<()> {
    let (disk, sum) = test_disk("test-disk.img")?;
    let mut boot = boot_with(env, Some(&config("virtio-blk.dts")), None)?;
    boot.extra = qemu::virtio_disk(&disk);
    let mut steps = vec![
        Step::Expect(
            "DMA-capable host device /virtio_mmio@a003e00 with only its DMA address registers checked".into(),
        ),
        Step::Expect(linux_ready("linux1")),
    ];
    let [sha, write] = disk_checks("/dev/vda", &sum);
    steps.extend(linux_commands(
        "linux1",
        &[
            ("modprobe virtio_mmio && modprobe virtio_blk && sleep 1 && echo VDA=$(cat /sys/block/vda/size)", "VDA=8192"),
            (&sha.0, &sha.1),
            (&write.0, &write.1),
        ],
    ));
    steps.push(Step::Send("passthrough list\r".into()));
    steps.push(Step::Expect(
        "dma: intercepted (3 address register(s) checked, 0 write(s) refused; addresses it reads from memory: identity, acknowledged (UNPROTECTED))".into(),
    ));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session(&boot, steps)?;
    check_disk_write(&disk, &text)?;
    println!("    sha256 {sum} read back by the guest; its write landed in the image");
    Ok(())
}

pub(crate) fn passthrough_isolation(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("passthrough-isolation.dts")), None)?;
    let mut steps = vec![
        Step::Expect("guest probe1 vcpu0: read from 0x9010000 at pc".into()),
        Step::Expect("[probe1] PROBE probe1 read=0x09010000: PASS aborted".into()),
        Step::Expect("[probe1] PROBE probe1 write=0x09010004: PASS aborted".into()),
        Step::Expect(linux_ready("linux0")),
    ];
    steps.extend(linux_commands("linux0", &[RTC_ALARM]));
    steps.push(Step::Send("vcpu list\r".into()));
    steps.push(Step::Expect("probe1           0".into()));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session(&boot, steps)?;
    let (count, _) = with_transcript(rtc_irqs(&text).context("no RTCIRQ line"), &text)?;
    // The probe's forwarded-interrupt exit counter (column "fwd") stays 0.
    let fwd = text
        .lines()
        .rev()
        .filter(|l| l.trim_start().starts_with("probe1 "))
        .find_map(|l| l.split_whitespace().nth(5))
        .unwrap_or("?")
        .to_string();
    with_transcript(
        if count >= 1 && fwd == "0" {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "owner saw {count} RTC interrupts (want >= 1); probe1 forwarded exits {fwd} (want 0)"
            ))
        },
        &text,
    )
}

/// `passthrough-assign`: the RTC moves from a running probe guest to a
/// stopped Linux guest that lists it on standby (configs/qemu-virt/assign.dts).
/// The probe's next access aborts; Linux, started after the move, finds the
/// device at its own address, reads the clock and takes its interrupt.
pub(crate) fn passthrough_assign(env: &Env) -> Result<()> {
    let mut boot = boot_with(env, Some(&config("assign.dts")), None)?;
    boot.extra = vec!["-rtc".into(), format!("base={RTC_BASE}")];
    let dev = "/pl031@9010000";
    let mut steps = vec![
        Step::Expect("guest second: not started (manual-start)".into()),
        Step::Expect("[first] PROBE first rtcirq: PASS".into()),
        Step::Send(format!("passthrough assign {dev} first\r")),
        Step::Expect(format!("guest first has {dev} already")),
        Step::Send(format!("passthrough assign {dev} second\r")),
        Step::ExpectAll(vec![
            "guest first: /guests/first/rtc reset (Pl031)".into(),
            "guest first: /guests/first/rtc taken away (unmapped, interrupts off)".into(),
            format!("{dev}: moved from guest first to guest second"),
        ]),
        // The probe's sleep ends: its read of the RTC now aborts.
        Step::ExpectAll(vec![
            "guest first vcpu0: read from 0x9010000".into(),
            "[first] PROBE first read=0x09010000: PASS aborted".into(),
        ]),
        Step::Send("passthrough list\r".into()),
        Step::Expect(format!("{dev} -> guest first (rtc): standby, guest second has it")),
        Step::Send("guest start second\r".into()),
        Step::Expect(linux_ready("second")),
    ];
    steps.extend(linux_commands(
        "second",
        &[
            ("echo RTCDEV=$(ls /sys/bus/amba/devices | grep pl031)", "RTCDEV=c000000.pl031"),
            ("echo HW=$(hwclock -r -u)", "HW="),
            RTC_ALARM,
        ],
    ));
    steps.extend([
        Step::Send(format!("passthrough assign {dev} first\r")),
        Step::Expect("guest first is running: stop it first".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ]);
    let text = linux_session(&boot, steps)?;
    let (hw, count) = rtc_checks(&text, 64)?;
    println!("    moved RTC: hwclock in second {hw}; its alarm interrupts {count} (INTID 64)");
    Ok(())
}

pub(crate) fn exits(env: &Env) -> Result<()> {
    let mut boot = boot_with(env, Some(&config("exits.dts")), None)?;
    boot.extra = vec!["-rtc".into(), "base=2020-01-01T00:00:00,clock=vm".into()];
    let steps = vec![
        Step::Expect("[exits] PROBE exits mmioread: PASS addr=0x9010000 n=10000".into()),
        Step::Expect("exits_dabt=0".into()),
        Step::Expect("[exits] PROBE exits irqexits: PASS n=3 irqs=3".into()),
        Step::Expect("d_fwd=3 d_maint=0".into()),
        Step::Expect(probe_done("exits", 2)),
        Step::Send("vcpu list\r".into()),
        Step::Expect("exits            0".into()),
        // The host view: the RTC's SPI taken exactly three times.
        Step::Send("interrupts\r".into()),
        Step::Expect("intid  taken".into()),
        Step::Expect("  34     3\r".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let text = session(&Machine::default(), &boot, steps, true)?;
    let line = text.lines().find(|l| l.contains("irqexits: PASS")).unwrap_or("");
    println!("    {}", line.trim());
    Ok(())
}

pub(crate) fn level_desched(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("level-desched.dts")), None)?;
    // The probe checks it all (PASS needs 3 interrupts, each one finding
    // the owner descheduled and each hold descheduled midway, on a pCPU
    // shared by 2 vCPUs); the line must say so too.
    let steps = vec![
        Step::Expect("[owner] PROBE owner rtcirq: PASS n=3 irqs=3".into()),
        Step::Expect("desched_wait=3 desched_held=3 pcpu_vcpus=2".into()),
        Step::Expect(probe_done("owner", 1)),
        Step::Send("passthrough list\r".into()),
        Step::Expect("owner".into()),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    let text = session(&Machine::default(), &boot, steps, true)?;
    let line = text.lines().find(|l| l.contains("owner rtcirq: PASS")).unwrap_or("");
    println!("    {}", line.trim());
    Ok(())
}

pub(crate) fn oversubscribed(env: &Env) -> Result<()> {
    let machine = Machine::default();
    let boot = boot_with(env, Some(&config("oversubscribed.dts")), None)?;
    let mut steps = expect(&["DONE pass=2 fail=0", "DONE pass=2 fail=0", "DONE pass=2 fail=0"]);
    steps.push(Step::Send("vcpu list\r".into()));
    steps.push(Step::Expect("busy-c           1".into()));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = session(&machine, &boot, steps, true)?;
    let wants: Vec<String> = ["busy-a", "busy-b", "busy-c"].iter().map(|n| probe_done(n, 2)).collect();
    require_all(&text, &wants)?;
    let pcpus: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("busy-"))
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|w| w.parse::<usize>().is_ok()))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    with_transcript(
        if pcpus.len() == 4 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("vCPUs should spread over 4 pCPUs, saw {pcpus:?}"))
        },
        &text,
    )
}
