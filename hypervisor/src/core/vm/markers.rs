//! Exit markers for the profiler: in the profiling build only
//! (`FERROVISOR_PROFILE_MARKERS=1`, which `cargo xtask profile` sets), every
//! counted exit calls one empty out-of-line function per exit reason,
//! `ferrovisor_profile_exit_<reason>`. The profiler's QEMU plugin knows their
//! addresses (from the ELF) and adds up each exit's hypervisor instructions
//! under the reason of the marker it ran. The benchmarked build has none of
//! this (a call and a return per exit).

use super::ExitReason;

macro_rules! markers {
    ($($reason:ident => $name:ident),* $(,)?) => {
        $(
            #[doc = concat!("Marks an exit counted as `", stringify!($reason), "`.")]
            #[inline(never)]
            pub fn $name() {
                // Distinct bodies, so that no two markers are folded into one.
                core::hint::black_box(ExitReason::$reason as u8);
            }
        )*

        /// Calls the marker of `reason`.
        #[inline(always)]
        pub fn exit(reason: ExitReason) {
            match reason {
                $(ExitReason::$reason => $name(),)*
            }
        }
    };
}

markers! {
    Irq => exit_irq,
    Forwarded => exit_fwd,
    Maintenance => exit_maint,
    Mmio => exit_mmio,
    Fault => exit_fault,
    Hvc => exit_hvc,
    Smc => exit_smc,
    Wfx => exit_wfx,
    SysReg => exit_sysreg,
    Other => exit_other,
}
