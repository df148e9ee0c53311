//! `linux-scmi`: a stock Debian Linux guest drives the clock, power domain
//! and reset of its passed-through PL031 RTC through the hypervisor's SCMI
//! platform (configs/qemu-virt/scmi.dts). Its SCMI driver must probe, power
//! the domain and enable the clock before using the RTC; unbinding the RTC
//! driver powers the domain off (the device is unmapped from the guest),
//! binding it again powers it on and the RTC works.

use super::*;

/// The guest's command to (un)bind its RTC driver.
fn rtc_driver(what: &str) -> String {
    format!("echo 9010000.pl031 > /sys/bus/amba/drivers/rtc-pl031/{what}")
}

pub(super) fn linux_scmi(env: &Env) -> Result<()> {
    let mut boot = boot_with(env, Some(&config("scmi.dts")), None)?;
    boot.extra = vec!["-rtc".into(), format!("base={RTC_BASE}")];
    let attach = || {
        vec![Step::Send("console attach linux0\r".into()), Step::Expect("[console attached to linux0".into())]
    };
    let mut steps = vec![
        // Linux's SCMI core found the platform.
        Step::Expect("SCMI Protocol v2.0 'ferrovisor:qemu-virt'".into()),
        Step::Expect(linux_ready("linux0")),
    ];
    steps.extend(attach());
    steps.push(Step::Send("echo HW=$(hwclock -r -u)\r".into()));
    steps.push(Step::Expect("HW=".into()));
    // Back to the shell: the domain is on and the clock runs.
    steps.push(Step::Send("\x1d".into()));
    steps.push(Step::Expect("[console detached]".into()));
    steps.push(Step::Send("passthrough list\r".into()));
    steps.push(Step::ExpectAll(vec![
        "scmi  power domain rtc: on".into(),
        "scmi  clock apb-pclk: running".into(),
    ]));
    steps.extend(attach());
    steps.push(Step::Send(format!("{}; sleep 2; echo UNBOUND=$((1+1))\r", rtc_driver("unbind"))));
    steps.push(Step::ExpectAll(vec![
        "guest linux0: /guests/linux0/rtc powered off (unmapped)".into(),
        "UNBOUND=2".into(),
    ]));
    // Bound again, the RTC may get a new number (rtc1).
    steps.push(Step::Send(format!(
        "{}; sleep 1; echo HW2=$(hwclock -r -u -f /dev/$(ls /sys/class/rtc | head -1))\r",
        rtc_driver("bind")
    )));
    steps.push(Step::ExpectAll(vec![
        "guest linux0: /guests/linux0/rtc powered on (mapped)".into(),
        "HW2=".into(),
    ]));
    steps.push(Step::Send("poweroff -f\r".into()));
    steps.push(Step::Expect("guest linux0: powered off (PSCI SYSTEM_OFF".into()));
    steps.push(Step::Expect("[console detached: guest linux0 stopped]".into()));
    // A stopped guest's domain is off again.
    steps.push(Step::Send("passthrough list\r".into()));
    steps.push(Step::ExpectAll(vec![
        "scmi  power domain rtc: off".into(),
        "scmi  clock apb-pclk: stopped".into(),
    ]));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session(&boot, steps)?;
    for key in ["HW=", "HW2="] {
        rtc_date(&text, key)?;
    }
    println!("    SCMI probed; the RTC's domain went off on unbind and on again on bind; hwclock read it both times");
    Ok(())
}

/// `scmi-probe`: the probe as an SCMI agent (configs/qemu-virt/scmi-probe.dts).
pub(super) fn scmi_probe(env: &Env) -> Result<()> {
    let boot = boot_with(env, Some(&config("scmi-probe.dts")), None)?;
    let steps = vec![
        Step::ExpectAll(vec![
            "guest agent: /guests/agent/rtc powered on (mapped)".into(),
            "guest agent: /guests/agent/rtc powered off (unmapped)".into(),
            "guest agent vcpu0: read from 0x9010000".into(),
            "guest agent: SCMI protocol 0x11 message 0x4 refused (status -4)".into(),
            "guest agent: SCMI call with no valid request in its channel".into(),
            "guest agent: /guests/agent/rtc reset (Pl031)".into(),
            "[agent] PROBE agent scmi=0x09fff000:0x09010000: PASS".into(),
            probe_done("agent", 1),
        ]),
        Step::Send("halt\r".into()),
        Step::Expect("ferrovisor: halting".into()),
    ];
    session(&qemu::Machine::default(), &boot, steps, true)?;
    Ok(())
}

/// Stop-and-restart cycles of `linux-restarts`.
const CYCLES: usize = 20;

/// `linux-restarts`: a Linux guest whose RTC sits in an SCMI power domain,
/// stopped and started again 20 times (configs/qemu-virt/scmi.dts): every
/// new instance powers the device on and reads the RTC, every stop resets
/// it and powers its domain off.
pub(super) fn linux_restarts(env: &Env) -> Result<()> {
    let mut boot = boot_with(env, Some(&config("scmi.dts")), None)?;
    boot.extra = vec!["-rtc".into(), format!("base={RTC_BASE}")];
    let mut steps = Vec::new();
    for cycle in 1..=CYCLES {
        steps.push(Step::Expect(linux_ready("linux0")));
        steps.push(Step::Send("console attach linux0\r".into()));
        steps.push(Step::Expect("[console attached to linux0".into()));
        steps.push(Step::Send(format!("echo CYCLE{cycle}=$(hwclock -r -u)\r")));
        steps.push(Step::Expect(format!("CYCLE{cycle}=")));
        steps.push(Step::Send("poweroff -f\r".into()));
        steps.push(Step::ExpectAll(vec![
            "guest linux0: /guests/linux0/rtc reset (Pl031)".into(),
            "guest linux0: /guests/linux0/rtc powered off (unmapped)".into(),
            "[console detached: guest linux0 stopped]".into(),
        ]));
        if cycle < CYCLES {
            steps.push(Step::Send("guest start linux0\r".into()));
            steps.push(Step::Expect("guest linux0: started".into()));
        }
    }
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session(&boot, steps)?;
    for cycle in 1..=CYCLES {
        rtc_date(&text, &format!("CYCLE{cycle}=")).with_context(|| format!("instance {cycle}"))?;
    }
    println!("    {CYCLES} instances: each read the RTC; each stop reset it and powered its domain off");
    Ok(())
}
