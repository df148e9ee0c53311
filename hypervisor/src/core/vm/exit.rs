//! Handling a guest exit: decode the syndrome, emulate or refuse, and tell
//! the scheduler whether the vCPU keeps running.
//!
//! Nothing a guest does here can stop the hypervisor: every access the
//! hypervisor does not emulate becomes an exception injected into the guest
//! (and a log line), every unknown call returns NOT_SUPPORTED.

use super::devices::Caller;
use super::faults::{self, Denial};
use super::vcpu::Vcpu;
use super::{control, ExitReason, VmState};
use ferrovisor_hvcall as hvcall;
use ferrovisor_psci::{Action, VcpuPower};
use ferrovisor_trap::{Access, DataAbort, El1Context, Exit, Injection, SysRegAccess};

/// What the scheduler should do with the vCPU after an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Re-enter the guest.
    Resume,
    /// Let other vCPUs on this pCPU run first (WFI, yield).
    Yield,
    /// The vCPU cannot run any more (powered off, guest stopped).
    Stop,
}

/// Handles a synchronous exit.
pub fn handle_sync(vcpu: &mut Vcpu) -> Next {
    faults::poll(vcpu);
    match ferrovisor_trap::decode(vcpu.regs.esr) {
        Exit::DataAbort(da) => data_abort(vcpu, &da),
        // Counted, and answered if a query, by the exit fast path
        // (vm::fast), which sees every HVC #0 first.
        Exit::Hvc { imm: 0 } => smccc(vcpu, false),
        Exit::Smc { imm: 0 } => {
            count(vcpu, ExitReason::Smc);
            vcpu.regs.pc += 4;
            smccc(vcpu, true)
        }
        // SMCCC calls use immediate 0 (SMCCC, "SMC and HVC immediate
        // value"); anything else is not a call the guest may rely on:
        // undefined, at the instruction itself (for HVC, ELR_EL2 points
        // past it). Counted as `other`, like every undefined exit.
        Exit::Hvc { imm } => {
            count(vcpu, ExitReason::Other);
            let pc = vcpu.regs.pc.wrapping_sub(4);
            undefined(vcpu, pc, format_args!("hvc #{imm:#x} (SMCCC calls use hvc #0)"))
        }
        Exit::Smc { imm } => {
            count(vcpu, ExitReason::Other);
            let pc = vcpu.regs.pc;
            undefined(vcpu, pc, format_args!("smc #{imm:#x} (SMCCC calls use smc #0)"))
        }
        Exit::Wfx { .. } => {
            count(vcpu, ExitReason::Wfx);
            vcpu.regs.pc += 4;
            Next::Yield
        }
        Exit::SysReg(access) => {
            count(vcpu, ExitReason::SysReg);
            sysreg(vcpu, &access)
        }
        Exit::InstructionAbort { .. } => {
            count(vcpu, ExitReason::Fault);
            let (pc, far) = (vcpu.regs.pc, vcpu.regs.far);
            let ipa = ferrovisor_trap::fault_ipa(vcpu.regs.hpfar, far).raw();
            faults::denied(
                vcpu,
                pc,
                Denial::Unmapped { access: Access::Fetch, ipa, va: far, syndrome: true },
            );
            let inj = ferrovisor_trap::inject_instruction_abort(&el1_context(vcpu), far);
            apply(vcpu, &inj);
            Next::Resume
        }
        other => {
            count(vcpu, ExitReason::Other);
            let pc = vcpu.regs.pc;
            undefined(vcpu, pc, format_args!("unhandled exit {other:?}"))
        }
    }
}

fn count(vcpu: &Vcpu, reason: ExitReason) {
    vcpu.shared().count(reason);
}

/// Refuses the instruction at `pc` (`what` it was): reports it and makes
/// the guest take an undefined-instruction exception there.
fn undefined(vcpu: &mut Vcpu, pc: u64, what: core::fmt::Arguments<'_>) -> Next {
    faults::denied(vcpu, pc, Denial::Undefined(what));
    let ctx = El1Context { pc, ..el1_context(vcpu) };
    let inj = ferrovisor_trap::inject_undefined(&ctx);
    apply(vcpu, &inj);
    Next::Resume
}

fn el1_context(vcpu: &Vcpu) -> El1Context {
    El1Context {
        pc: vcpu.regs.pc,
        pstate: vcpu.regs.pstate,
        vbar_el1: crate::arch::aarch64::guest::read_vbar_el1(),
    }
}

/// Applies an injected exception to the loaded vCPU.
fn apply(vcpu: &mut Vcpu, inj: &Injection) {
    vcpu.regs.pc = inj.pc;
    vcpu.regs.pstate = inj.pstate;
    crate::arch::aarch64::guest::write_exception_regs(inj.elr_el1, inj.spsr_el1, inj.esr_el1, inj.far_el1);
}

fn data_abort(vcpu: &mut Vcpu, da: &DataAbort) -> Next {
    let ipa = ferrovisor_trap::fault_ipa(vcpu.regs.hpfar, vcpu.regs.far);
    let vm = vcpu.vm.clone();
    if da.isv {
        if let Some((dev, offset)) = vm.mmio.find(ipa) {
            count(vcpu, ExitReason::Mmio);
            let at = Caller { vm: &vm, vcpu: vcpu.id };
            if da.write {
                let value = ferrovisor_trap::write_value(vcpu.regs.get(da.reg), da);
                dev.write(&at, offset, da.size, value);
            } else {
                let raw = dev.read(&at, offset, da.size);
                vcpu.regs.set(da.reg, ferrovisor_trap::read_result(raw, da));
            }
            vcpu.regs.pc += 4;
            return Next::Resume;
        }
    }
    count(vcpu, ExitReason::Fault);
    let (pc, va) = (vcpu.regs.pc, vcpu.regs.far);
    let access = if da.write { Access::Write } else { Access::Read };
    faults::denied(vcpu, pc, Denial::Unmapped { access, ipa: ipa.raw(), va, syndrome: da.isv });
    let inj = ferrovisor_trap::inject_data_abort(&el1_context(vcpu), vcpu.regs.far, da.write);
    apply(vcpu, &inj);
    Next::Resume
}

/// An SMCCC call; `queries`: read-only calls are not answered yet (SMC;
/// the fast path answered those made by HVC).
fn smccc(vcpu: &mut Vcpu, queries: bool) -> Next {
    if queries && answer_query(vcpu) {
        return Next::Resume;
    }
    let vm = vcpu.vm.clone();
    // SCMI (the function id in w0): answered in the guest's channel.
    if vcpu.regs.x[0] as u32 == hvcall::SCMI && super::scmi::call(&vm) {
        vcpu.regs.x[0] = 0;
        return Next::Resume;
    }
    let args = [vcpu.regs.x[0], vcpu.regs.x[1], vcpu.regs.x[2], vcpu.regs.x[3]];
    let call = ferrovisor_psci::decode(&args);
    match ferrovisor_psci::handle(&call, vcpu.id, &*vm) {
        Action::Return(ret) => {
            vcpu.regs.x[..4].copy_from_slice(&ret);
            Next::Resume
        }
        Action::StartVcpu { vcpu: target, entry, context } => {
            if let Some(shared) = vm.vcpus.get(target.index()) {
                *shared.power.lock() = VcpuPower::OnPending;
                *shared.start.lock() = Some((entry, context));
                crate::core::cpus::kick(shared.pcpu);
            }
            vcpu.regs.x[0] = 0;
            Next::Resume
        }
        Action::StopCaller => {
            *vcpu.shared().power.lock() = VcpuPower::Off;
            Next::Stop
        }
        Action::Suspend => {
            vcpu.regs.x[0] = 0;
            Next::Yield
        }
        Action::SystemOff => {
            log::info!("guest {}: powered off (PSCI SYSTEM_OFF from vcpu{})", vm.name, vcpu.index);
            control::stop_from_guest(&vm);
            Next::Stop
        }
        Action::SystemReset => {
            log::info!("guest {}: reset requested (PSCI SYSTEM_RESET from vcpu{})", vm.name, vcpu.index);
            control::request_reset(&vm);
            Next::Stop
        }
    }
}

/// Answers a call that only reads state: ferrovisor's own hypercalls and
/// the PSCI/SMCCC queries. Sets x0..x3 and returns true, or returns false
/// (nothing done) for any other call. Safe on the exit fast path: it
/// changes no vCPU, guest or vGIC state beyond the caller's registers.
pub(super) fn answer_query(vcpu: &mut Vcpu) -> bool {
    let reply = match vcpu.regs.x[0] as u32 {
        hvcall::NOP => [0; 4],
        hvcall::EXITS => {
            let s = vcpu.shared();
            hvcall::Exits {
                total: s.total_exits(),
                data_aborts: s.exits_for(ExitReason::Mmio) + s.exits_for(ExitReason::Fault),
                forwarded: s.exits_for(ExitReason::Forwarded),
                maintenance: s.exits_for(ExitReason::Maintenance),
            }
            .to_regs()
        }
        hvcall::SCHED => {
            let s = vcpu.shared();
            let loads = s.loads.load(core::sync::atomic::Ordering::Relaxed);
            hvcall::Sched { loads, pinned: crate::core::cpus::pinned(s.pcpu) as u64 }.to_regs()
        }
        _ => match psci_query(vcpu) {
            Some(reply) => reply,
            None => return false,
        },
    };
    vcpu.regs.x[..4].copy_from_slice(&reply);
    true
}

/// A PSCI/SMCCC query's answer, or None for a call that is no query (an
/// SCMI call among them). Out of line: ferrovisor's own hypercalls stay
/// short.
#[inline(never)]
fn psci_query(vcpu: &Vcpu) -> Option<[u64; 4]> {
    // An SCMI call changes state: the full exit answers it.
    if vcpu.regs.x[0] as u32 == hvcall::SCMI {
        return None;
    }
    let args = [vcpu.regs.x[0], vcpu.regs.x[1], vcpu.regs.x[2], vcpu.regs.x[3]];
    let call = ferrovisor_psci::decode(&args);
    if !call.is_query() {
        return None;
    }
    match ferrovisor_psci::handle(&call, vcpu.id, &*vcpu.vm) {
        Action::Return(ret) => Some(ret),
        _ => None,
    }
}

/// ICC_SGI1R_EL1: op0=3, op1=0, CRn=12, CRm=11, op2=5.
const ICC_SGI1R_EL1: u32 = ferrovisor_trap::sysreg_key(3, 0, 12, 11, 5);

fn sysreg(vcpu: &mut Vcpu, access: &SysRegAccess) -> Next {
    // SGIs between the guest's own vCPUs.
    if !access.read && access.key() == ICC_SGI1R_EL1 {
        let value = vcpu.regs.get(access.rt);
        vcpu.vm.send_sgi(vcpu.id, value);
        vcpu.regs.pc += 4;
        return Next::Resume;
    }
    // ID registers (op0=3, op1=0, CRn=0, CRm=1..7): the host's values with
    // unswitched features hidden.
    if access.read && access.op0 == 3 && access.op1 == 0 && access.crn == 0 && (1..=7).contains(&access.crm) {
        vcpu.regs.set(access.rt, crate::arch::aarch64::idregs::guest_view(access.crm, access.op2));
        vcpu.regs.pc += 4;
        return Next::Resume;
    }
    // Other trapped registers (PMU, debug, physical timer) read as zero and
    // ignore writes: the guest sees no PMU and no debug, and must use its
    // virtual timer.
    if access.read {
        vcpu.regs.set(access.rt, 0);
    }
    faults::note(
        vcpu,
        log::Level::Debug,
        format_args!(
            "{} of {} emulated as RAZ/WI",
            if access.read { "read" } else { "write" },
            access.name().unwrap_or("a trapped system register")
        ),
    );
    vcpu.regs.pc += 4;
    if vcpu.vm.state() != VmState::Running {
        return Next::Stop;
    }
    Next::Resume
}
