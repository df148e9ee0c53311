//! Guest boot: kernel image placement and the generated guest device tree.
//!
//! [`image`] reads the arm64 Linux `Image` header, [`plan`] decides where the
//! kernel, initrd and DTB go in guest RAM following the arm64 boot protocol,
//! and [`dtb`] writes the device tree the guest boots with.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

pub mod dtb;
pub mod fit;
pub mod image;
pub mod plan;

#[cfg(test)]
mod testfdt;

pub use dtb::{
    build, DeviceScmi, DtbError, GicLayout, GuestDtb, PassthroughNode, PciDt, PropValue, PtNodeParts, ScmiDt,
    CLK_PHANDLE,
};
pub use fit::{images_fit, reject_unfit, GENERATED_DTB_MAX};
pub use image::{parse_header, ImageHeader};
pub use plan::{plan, Blob, BootPlan, PlanError};
