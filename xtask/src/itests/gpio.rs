//! `linux-gpio`: QEMU virt's PL061 GPIO controller and PL031 RTC passed
//! through to a stock Debian Linux guest (configs/qemu-virt/gpio-rtc.dts).
//! The guest's device tree must describe the PL061 as the GPIO and interrupt
//! controller it is, Linux's pl061 driver must bind it, and the RTC must keep
//! working beside it.

use super::*;

/// The guest node of the PL061 as Linux shows it.
const NODE: &str = "/proc/device-tree/pl061@9030000";

/// The properties of the PL061's guest node (`ls` order; `name` is Linux's
/// own): the host node's gpio-controller and #gpio-cells copied, the
/// arm,pl061 binding's interrupt-controller and #interrupt-cells added,
/// clocks pointing at the guest's apb-pclk, no host phandle.
const PROPS: &str = "#gpio-cells #interrupt-cells clock-names clocks compatible gpio-controller interrupt-controller interrupts name reg";

/// The value after `KEY=` on the last output line that starts with it.
fn value<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let prefix = format!("{key}=");
    let line = text.lines().rev().find(|l| l.trim_start().starts_with(&prefix))?;
    Some(line.trim_start()[prefix.len()..].trim_end())
}

pub(super) fn linux_gpio(env: &Env) -> Result<()> {
    let mut boot = boot_with(env, Some(&config("gpio-rtc.dts")), None)?;
    boot.extra = vec!["-rtc".into(), format!("base={RTC_BASE}")];
    let cells = |key: &str, prop: &str| format!("echo {key}=$(od -An -tx1 '{NODE}/{prop}' | tr -d ' ')");
    let props = format!("echo DTPROPS=$(ls {NODE})");
    let (gpio_cells, irq_cells) = (cells("GPIOCELLS", "#gpio-cells"), cells("IRQCELLS", "#interrupt-cells"));
    let mut steps = vec![Step::Expect(linux_ready("linux0"))];
    steps.extend(linux_commands(
        "linux0",
        &[
            (&props, "DTPROPS="),
            (&gpio_cells, "GPIOCELLS="),
            (&irq_cells, "IRQCELLS="),
            ("echo BOUND=$(ls /sys/bus/amba/drivers/pl061_gpio | grep pl061)", "BOUND="),
            (
                "echo CHIP=$(cat /sys/class/gpio/gpiochip*/label) $(cat /sys/class/gpio/gpiochip*/ngpio)",
                "CHIP=",
            ),
            ("echo HW=$(hwclock -r -u)", "HW="),
            RTC_ALARM,
        ],
    ));
    steps.push(Step::Send("passthrough list\r".into()));
    steps.push(Step::Expect("irq   host 34 -> guest 34 (Level)".into()));
    steps.push(Step::Expect("irq   host 39 -> guest 39 (Level)".into()));
    steps.push(Step::Send("halt\r".into()));
    steps.push(Step::Expect("ferrovisor: halting".into()));
    let text = linux_session(&boot, steps)?;
    let (day, year) = RTC_BASE_SHOWN;
    let checks = (|| {
        let got = |key| value(&text, key).unwrap_or("(nothing)");
        ensure!(got("DTPROPS") == PROPS, "{NODE} has properties '{}', want '{PROPS}'", got("DTPROPS"));
        ensure!(got("GPIOCELLS") == "00000002", "#gpio-cells is {}, want 00000002", got("GPIOCELLS"));
        ensure!(got("IRQCELLS") == "00000002", "#interrupt-cells is {}, want 00000002", got("IRQCELLS"));
        ensure!(got("BOUND") == "9030000.pl061", "pl061_gpio bound '{}', want 9030000.pl061", got("BOUND"));
        ensure!(
            got("CHIP") == "9030000.pl061 8",
            "gpiochip (label ngpio) '{}', want '9030000.pl061 8'",
            got("CHIP")
        );
        let hw = collapse_spaces(got("HW"));
        ensure!(hw.contains(day) && hw.contains(year), "hwclock said '{hw}', the RTC started at {RTC_BASE}");
        let (count, intid) = rtc_irqs(&text).context("no RTCIRQ line")?;
        ensure!(count >= 1 && intid == 34, "RTC interrupts: {count} on INTID {intid}; want >= 1 on 34");
        Ok(())
    })();
    with_transcript(checks, &text)?;
    println!("    {NODE}: {PROPS}; pl061_gpio bound 9030000.pl061; hwclock and RTC alarm work");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_value_of_a_key() {
        let text = "echo X=$(ls)\r\nX=a b\r\nguest# \nX=c d \r\n";
        assert_eq!(value(text, "X"), Some("c d"));
        assert_eq!(value(text, "Y"), None);
    }
}
