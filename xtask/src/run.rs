//! `cargo xtask run`: build and boot a config with the console on this
//! terminal.

use crate::qemu::{self, Boot, Machine};
use crate::{build, setup};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Options of `cargo xtask run`.
#[derive(Args)]
pub struct RunArgs {
    /// The config to boot (default: configs/qemu-virt/default.dts).
    #[arg(long, value_name = "FILE.dts")]
    pub config: Option<PathBuf>,
    /// Shell commands to run at boot, separated by ';' (e.g. "guest list; halt").
    #[arg(long, value_name = "CMDS")]
    pub bootcmd: Option<String>,
    /// Extra hypervisor boot arguments (e.g. ferrovisor.loglevel=debug).
    #[arg(long, value_name = "ARGS")]
    pub bootargs: Option<String>,
    /// The board: CPU model, CPU count, RAM, RTC start, SMMU.
    #[command(flatten)]
    pub board: crate::board::BoardArgs,
    /// Count instructions deterministically: QEMU -icount shift=0,sleep=off
    /// (one instruction per nanosecond of virtual time; the clock does not
    /// wait for the host while every CPU sleeps, so idle time passes at once).
    #[arg(long)]
    pub icount: bool,
    /// Power the board off, and end QEMU, once every guest has stopped
    /// (after at least one ran): for scripted runs (hypervisor boot argument
    /// ferrovisor.halt-when-idle).
    #[arg(long)]
    pub halt_when_idle: bool,
    /// Attach this raw disk image as a virtio-blk device on virt's last
    /// virtio-mmio transport (for configs/qemu-virt/virtio-blk.dts).
    #[arg(long, value_name = "FILE")]
    pub disk: Option<PathBuf>,
    /// Attach this raw disk image as a PCIe NVMe controller at 00:03.0
    /// (for configs/qemu-virt/nvme.dts; needs --smmu).
    #[arg(long, value_name = "FILE")]
    pub nvme: Option<PathBuf>,
    /// Pass one more argument to QEMU (repeatable), e.g. --qemu=-d --qemu=guest_errors,
    /// or --qemu=-monitor --qemu=telnet:127.0.0.1:4444,server,nowait to reach the QEMU
    /// monitor from another terminal (`telnet 127.0.0.1 4444`).
    #[arg(long = "qemu", value_name = "ARG", allow_hyphen_values = true)]
    pub qemu_args: Vec<String>,
}

/// `cargo xtask run`.
pub fn run(args: RunArgs) -> Result<()> {
    let machine = Machine { icount: args.icount, ..args.board.machine()? };
    setup::ensure_all()?;
    let config = args.config.clone().unwrap_or_else(crate::default_config);
    let built = build::build_all(&config)?;
    let mut bootargs = qemu::hypervisor_bootargs(args.bootcmd.as_deref(), args.bootargs.as_deref())?;
    if args.halt_when_idle {
        bootargs = format!("ferrovisor.halt-when-idle {bootargs}").trim().to_string();
    }
    let mut extra = args.qemu_args.clone();
    if let Some(disk) = &args.disk {
        extra.extend(qemu::disk_option("--disk", disk, qemu::virtio_disk)?);
    }
    if let Some(disk) = &args.nvme {
        extra.extend(qemu::disk_option("--nvme", disk, qemu::nvme_disk)?);
    }
    let boot = Boot { image: built.image, bundle: Some(built.bundle), bootargs, extra };
    let mut cmd = qemu::command(&machine, &boot);
    cmd.arg("-nographic");
    setup::step(format!("booting {} (quit QEMU: Ctrl-A then X; or type `halt`)", qemu::display(&config)));
    let status = cmd.status().context("starting qemu-system-aarch64")?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}
