//! Per-guest PSCI policy: what each call does to the calling guest's vCPUs.

use crate::{fid, ret, Call, MIGRATE_INFO_NO_TRUSTED_OS, MPIDR_AFFINITY_MASK};
use crate::{PSCI_VERSION_1_1, SMCCC_VERSION_1_1};
use ferrovisor_types::VcpuId;

/// Power state of one vCPU, as the hypervisor tracks it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VcpuPower {
    /// Not running; CPU_ON may start it.
    Off,
    /// CPU_ON accepted, the vCPU has not started running yet.
    OnPending,
    /// Running (or suspended in CPU_SUSPEND / WFI).
    On,
}

/// The hypervisor's view of the calling guest's vCPUs, `0..vcpu_count()`.
pub trait GuestCpus {
    /// Number of vCPUs of the guest.
    fn vcpu_count(&self) -> usize;
    /// Current power state of vCPU `vcpu`.
    fn power(&self, vcpu: VcpuId) -> VcpuPower;
    /// The MPIDR the guest sees for vCPU `vcpu` (usually [`crate::vmpidr`]).
    fn mpidr(&self, vcpu: VcpuId) -> u64;
    /// Whether `entry` is an address the guest may start executing at
    /// (inside the guest's RAM).
    fn entry_valid(&self, entry: u64) -> bool;
}

/// What the hypervisor must do to complete a call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// Write x0..x3 (x0 = result) and resume the caller after the call.
    Return([u64; 4]),
    /// Start vCPU `vcpu` at `entry` with x0 = `context` (and the reset state
    /// PSCI prescribes: EL1h, DAIF masked, MMU and caches off), mark it
    /// [`VcpuPower::OnPending`] until it runs, and return SUCCESS (0) to the
    /// caller.
    StartVcpu {
        /// The vCPU to start.
        vcpu: VcpuId,
        /// Its entry point.
        entry: u64,
        /// Its x0.
        context: u64,
    },
    /// CPU_OFF: the caller's vCPU powers off and the call does not return.
    /// If it was the guest's last running vCPU, the hypervisor may treat the
    /// guest as stopped.
    StopCaller,
    /// CPU_SUSPEND: wait as for WFI, then return SUCCESS (0) to the caller.
    Suspend,
    /// SYSTEM_OFF: stop the calling guest (not the machine).
    SystemOff,
    /// SYSTEM_RESET or a warm SYSTEM_RESET2: reset the calling guest.
    SystemReset,
}

/// Return `code` in x0, zero in x1..x3.
const fn reply(code: i64) -> Action {
    Action::Return([code as u64, 0, 0, 0])
}

/// Return the non-negative value `value` in x0, zero in x1..x3.
const fn reply_value(value: u64) -> Action {
    Action::Return([value, 0, 0, 0])
}

/// The index of the guest vCPU whose MPIDR affinity fields (Aff3..Aff0)
/// equal those of `target`; bit 31, U, MT and the other non-affinity bits of
/// both sides are ignored.
pub fn vcpu_by_mpidr(target: u64, guest: &impl GuestCpus) -> Option<VcpuId> {
    let want = target & MPIDR_AFFINITY_MASK;
    VcpuId::all(guest.vcpu_count()).find(|&v| guest.mpidr(v) & MPIDR_AFFINITY_MASK == want)
}

/// The power state of `vcpu`, knowing that the caller itself is running.
fn power_of(vcpu: VcpuId, caller: VcpuId, guest: &impl GuestCpus) -> VcpuPower {
    if vcpu == caller {
        VcpuPower::On
    } else {
        guest.power(vcpu)
    }
}

/// Decides what `call`, made by vCPU `caller` of `guest`, does.
///
/// * PSCI_VERSION: 1.1. SMCCC_VERSION: 1.1.
/// * PSCI_FEATURES: 0 for every function in [`fid::IMPLEMENTED`]
///   (including SMCCC_VERSION; for CPU_SUSPEND, 0 also means the original
///   power_state format without OS-initiated mode), NOT_SUPPORTED otherwise.
/// * SMCCC_ARCH_FEATURES: NOT_SUPPORTED for every function, including
///   SMCCC_ARCH_WORKAROUND_1/2/3. The guest then never issues those calls and
///   relies on its own mitigations or reports itself vulnerable. This is
///   safe under QEMU's TCG, which does not execute speculatively, so the
///   Spectre variants the workarounds address cannot occur; on real
///   hardware the calls would have to be forwarded to firmware.
/// * CPU_ON: INVALID_PARAMETERS if no vCPU of the guest has the target's
///   affinity; ALREADY_ON if it is on (the caller always is); ON_PENDING if
///   a start is pending; INVALID_ADDRESS if `entry` is not 4-byte aligned or
///   not accepted by [`GuestCpus::entry_valid`]; otherwise
///   [`Action::StartVcpu`].
/// * AFFINITY_INFO: INVALID_PARAMETERS unless `lowest_level` is 0 and the
///   target is a vCPU of the guest; otherwise 0 (on), 1 (off) or 2 (on
///   pending).
/// * CPU_OFF: [`Action::StopCaller`]. CPU_SUSPEND: every power state is
///   treated as standby ([`Action::Suspend`]); returning SUCCESS without
///   having entered a powerdown state is allowed by PSCI.
/// * MIGRATE_INFO_TYPE: 2 (no Trusted OS needing migration).
/// * SYSTEM_OFF / SYSTEM_RESET: [`Action::SystemOff`] / [`Action::SystemReset`].
/// * SYSTEM_RESET2: the architectural warm reset (type 0) is a
///   [`Action::SystemReset`]; other architectural types are
///   INVALID_PARAMETERS; vendor types (bit 31 set) are NOT_SUPPORTED.
/// * Anything else: NOT_SUPPORTED.
pub fn handle(call: &Call, caller: VcpuId, guest: &impl GuestCpus) -> Action {
    match *call {
        Call::Version => reply_value(PSCI_VERSION_1_1),
        Call::SmcccVersion => reply_value(SMCCC_VERSION_1_1),
        Call::Features { fid } => {
            if fid::IMPLEMENTED.contains(&fid) {
                reply(ret::SUCCESS)
            } else {
                reply(ret::NOT_SUPPORTED)
            }
        }
        Call::SmcccArchFeatures { .. } => reply(ret::NOT_SUPPORTED),
        Call::CpuOn { target, entry, context } => cpu_on(target, entry, context, caller, guest),
        Call::AffinityInfo { target, lowest_level } => {
            if lowest_level != 0 {
                return reply(ret::INVALID_PARAMETERS);
            }
            match vcpu_by_mpidr(target, guest) {
                None => reply(ret::INVALID_PARAMETERS),
                Some(v) => reply_value(match power_of(v, caller, guest) {
                    VcpuPower::On => 0,
                    VcpuPower::Off => 1,
                    VcpuPower::OnPending => 2,
                }),
            }
        }
        Call::CpuOff => Action::StopCaller,
        Call::CpuSuspend { .. } => Action::Suspend,
        Call::MigrateInfoType => reply_value(MIGRATE_INFO_NO_TRUSTED_OS),
        Call::SystemOff => Action::SystemOff,
        Call::SystemReset => Action::SystemReset,
        Call::SystemReset2 { reset_type, .. } => {
            if reset_type == 0 {
                Action::SystemReset
            } else if reset_type & (1 << 31) != 0 {
                reply(ret::NOT_SUPPORTED)
            } else {
                reply(ret::INVALID_PARAMETERS)
            }
        }
        Call::Unknown { .. } => reply(ret::NOT_SUPPORTED),
    }
}

/// CPU_ON policy; see [`handle`].
fn cpu_on(target: u64, entry: u64, context: u64, caller: VcpuId, guest: &impl GuestCpus) -> Action {
    let Some(vcpu) = vcpu_by_mpidr(target, guest) else {
        return reply(ret::INVALID_PARAMETERS);
    };
    match power_of(vcpu, caller, guest) {
        VcpuPower::On => reply(ret::ALREADY_ON),
        VcpuPower::OnPending => reply(ret::ON_PENDING),
        VcpuPower::Off if entry & 3 != 0 || !guest.entry_valid(entry) => reply(ret::INVALID_ADDRESS),
        VcpuPower::Off => Action::StartVcpu { vcpu, entry, context },
    }
}
