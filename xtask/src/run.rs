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
    /// Put an SMMUv3 on the board (QEMU iommu=smmuv3).
    #[arg(long)]
    pub smmu: bool,
    /// Count instructions deterministically (QEMU -icount shift=0).
    #[arg(long)]
    pub icount: bool,
    /// Attach this raw disk image as a virtio-blk device on virt's last
    /// virtio-mmio transport (for configs/qemu-virt/virtio-blk.dts).
    #[arg(long, value_name = "FILE")]
    pub disk: Option<PathBuf>,
    /// Pass one more argument to QEMU (repeatable), e.g. --qemu=-rtc --qemu=clock=vm.
    #[arg(long = "qemu", value_name = "ARG", allow_hyphen_values = true)]
    pub qemu_args: Vec<String>,
}

/// `cargo xtask run`.
pub fn run(args: RunArgs) -> Result<()> {
    setup::ensure_all()?;
    let config = args.config.clone().unwrap_or_else(crate::default_config);
    let built = build::build_all(&config)?;
    let machine = Machine { smmu: args.smmu, icount: args.icount, ..Machine::default() };
    let mut bootargs = qemu::bootargs_for(args.bootcmd.as_deref())?;
    if let Some(extra) = &args.bootargs {
        bootargs = format!("{extra} {bootargs}").trim().to_string();
    }
    let mut extra = args.qemu_args.clone();
    if let Some(disk) = &args.disk {
        if !disk.is_file() {
            bail!("--disk {}: no such file", disk.display());
        }
        extra.extend(qemu::virtio_disk(disk));
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
