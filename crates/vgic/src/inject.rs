//! Interrupt sources: SGIs from `ICC_SGI1R_EL1`, device lines and edges,
//! HW links, and the kicks they cause.

use crate::effects::Effects;
use crate::{Vgic, VgicError};
use ferrovisor_types::{GuestIrq, HostIrq, VcpuId};

/// `ICC_SGI1R_EL1.IRM`: every PE but the writer.
const SGI1R_IRM: u64 = 1 << 40;

/// The SGI and the target vCPUs (bit per vCPU) of a write of `value` to
/// `ICC_SGI1R_EL1` by vCPU `sender` of a guest with `vcpus` vCPUs.
///
/// Targets: with IRM (bit 40) every vCPU but the writer; otherwise the vCPUs
/// whose Aff0 is `RS * 16 + n` for each bit `n` of TargetList `[15:0]`, when
/// Aff3 `[55:48]`, Aff2 `[39:32]` and Aff1 `[23:16]` are 0.
pub fn sgi1r_targets(value: u64, sender: usize, vcpus: usize) -> (u32, u32) {
    let intid = ((value >> 24) & 0xf) as u32;
    let all = if vcpus >= 32 { u32::MAX } else { (1u32 << vcpus) - 1 };
    let targets: u32 = if value & SGI1R_IRM != 0 {
        all & !(1u32.checked_shl(sender as u32).unwrap_or(0))
    } else if value & 0x00ff_00ff_00ff_0000 != 0 || (value >> 44) & 0xf != 0 {
        // Affinity 1..3 non-zero, or a range selector past Aff0 15: no
        // vCPU has such an MPIDR.
        0
    } else {
        (value & 0xffff) as u32 & all
    };
    (intid, targets)
}

/// The `ICC_SGI1R_EL1` value that sends SGI `intid` (0..=15) to the one
/// PE with affinity `mpidr` (Aff3 `[39:32]`, Aff2 `[23:16]`, Aff1
/// `[15:8]`, Aff0 `[7:0]`, as in MPIDR_EL1): the inverse of
/// [`sgi1r_targets`]. The hypervisor computes its kick IPIs' values once
/// with it.
pub const fn sgi1r_value(intid: u32, mpidr: u64) -> u64 {
    let aff0 = mpidr & 0xff;
    (1 << (aff0 & 0xf))
        | ((mpidr >> 8) & 0xff) << 16
        | ((intid & 0xf) as u64) << 24
        | ((mpidr >> 16) & 0xff) << 32
        | (aff0 >> 4) << 44
        | ((mpidr >> 32) & 0xff) << 48
}

impl Vgic {
    /// Records INTID `intid` (bank `bank`) as a candidate after a change
    /// ([`Vgic::mark`]) and pushes the kick it needs: the vCPU holding it in
    /// an LR (to refresh the LR), or else its target if it is now
    /// deliverable or active. `caller` (the vCPU whose access caused the
    /// change, which flushes before re-entering) is not kicked.
    pub(crate) fn notify(&mut self, intid: u32, bank: usize, caller: Option<usize>, fx: &mut Effects) {
        self.mark(intid, bank);
        let Some(irq) = self.irq(intid, bank) else { return };
        let who = match irq.lr {
            Some(s) => Some(s.vcpu),
            None => self.target(intid, bank).filter(|&t| irq.active() || self.deliverable(irq, intid, t)),
        };
        if let Some(vcpu) = who.filter(|&v| Some(v) != caller) {
            fx.kick(vcpu);
        }
    }

    /// A write of `value` to `ICC_SGI1R_EL1` by vCPU `vcpu`: makes the SGI
    /// pending on every target vCPU where it is configured as group 1.
    ///
    /// Targets: with IRM (bit 40) every vCPU but the writer; otherwise the
    /// vCPUs whose Aff0 is `RS * 16 + n` for each bit `n` of TargetList
    /// `[15:0]`, when Aff3 `[55:48]`, Aff2 `[39:32]` and Aff1 `[23:16]` are 0.
    pub fn write_sgi1r(&mut self, vcpu: VcpuId, value: u64, fx: &mut Effects) {
        let vcpu = vcpu.index();
        if vcpu >= self.cfg.vcpus {
            self.count_bad();
            return;
        }
        let (intid, targets) = sgi1r_targets(value, vcpu, self.cfg.vcpus);
        for t in (0..self.cfg.vcpus).filter(|t| targets & (1 << t) != 0) {
            let Some(irq) = self.irq_mut(intid, t) else { continue };
            if irq.group1() {
                irq.set_latch(true);
                self.notify(intid, t, Some(vcpu), fx);
            }
        }
    }

    /// The SGIs in `sgis` (bit n: SGI n) sent to vCPU `vcpu` through its
    /// mailbox ([`crate::SharedVgic::post_sgi1r`]), taken by `vcpu` itself:
    /// each one configured as group 1 becomes pending there, as
    /// [`Vgic::write_sgi1r`] would have made it.
    pub fn receive_sgis(&mut self, vcpu: VcpuId, sgis: u16, fx: &mut Effects) {
        let vcpu = vcpu.index();
        if vcpu >= self.cfg.vcpus {
            self.count_bad();
            return;
        }
        for intid in (0..16u32).filter(|i| sgis & (1 << i) != 0) {
            let Some(irq) = self.irq_mut(intid, vcpu) else { continue };
            if irq.group1() {
                irq.set_latch(true);
                self.notify(intid, vcpu, Some(vcpu), fx);
            }
        }
    }

    /// Drives the input line of INTID `intid` (`vcpu_for_private` picks the
    /// bank for PPIs/SGIs) to `level`. A level-sensitive interrupt is
    /// pending while the line is high; an edge-triggered one latches the
    /// rising edge. Unknown INTIDs are counted and ignored.
    pub fn set_level(&mut self, intid: GuestIrq, vcpu_for_private: VcpuId, level: bool, fx: &mut Effects) {
        let (intid, vcpu_for_private) = (intid.raw(), vcpu_for_private.index());
        let Some(irq) = self.irq_mut(intid, vcpu_for_private) else {
            self.count_bad();
            return;
        };
        if irq.line() == level {
            return;
        }
        irq.set_line(level);
        if level && irq.edge() {
            irq.set_latch(true);
        }
        self.notify(intid, vcpu_for_private, None, fx);
    }

    /// Latches an edge on INTID `intid` (`vcpu_for_private` picks the bank
    /// for PPIs/SGIs): it becomes pending until delivered.
    ///
    /// For an interrupt linked by [`Vgic::link_hw`], this is how the
    /// hypervisor forwards the physical interrupt: it acknowledged it,
    /// dropped its priority and left it active; the LR will carry HW=1 so
    /// the guest's deactivation deactivates it.
    pub fn raise_edge(&mut self, intid: GuestIrq, vcpu_for_private: VcpuId, fx: &mut Effects) {
        let (intid, vcpu_for_private) = (intid.raw(), vcpu_for_private.index());
        let Some(irq) = self.irq_mut(intid, vcpu_for_private) else {
            self.count_bad();
            return;
        };
        irq.set_latch(true);
        if irq.hw.is_some() {
            if irq.lr.is_some_and(|s| s.hw()) {
                irq.set_hw_refired(true);
            } else {
                irq.set_hw_active(true);
            }
        }
        self.notify(intid, vcpu_for_private, None, fx);
    }

    /// Backs INTID `intid` (a PPI of vCPU `vcpu_for_private`, or an SPI) by
    /// the physical INTID `pintid` (16..=1019): e.g. the virtual timer PPI
    /// 27 of each vCPU by the host's PPI 27, or a passed-through SPI. From
    /// then on the guest's enable, priority, routing and trigger changes
    /// produce `Hw*` effects. Linking again replaces the link.
    pub fn link_hw(
        &mut self,
        intid: GuestIrq,
        vcpu_for_private: VcpuId,
        pintid: HostIrq,
    ) -> Result<(), VgicError> {
        let (intid, vcpu_for_private) = (intid.raw(), vcpu_for_private.index());
        if pintid.raw() < 16 {
            return Err(VgicError::BadPintid(pintid));
        }
        match self.irq_mut(intid, vcpu_for_private) {
            Some(irq) if intid >= 16 => {
                irq.hw = Some(pintid);
                // A level line no longer counts (or counts again below).
                self.mark(intid, vcpu_for_private);
                Ok(())
            }
            _ => Err(VgicError::BadIntid(intid)),
        }
    }

    /// Removes the physical link of INTID `intid`, returning it.
    pub fn unlink_hw(&mut self, intid: GuestIrq, vcpu_for_private: VcpuId) -> Option<HostIrq> {
        let (intid, vcpu_for_private) = (intid.raw(), vcpu_for_private.index());
        let irq = self.irq_mut(intid, vcpu_for_private)?;
        irq.set_hw_active(false);
        irq.set_hw_refired(false);
        let pintid = irq.hw.take();
        self.mark(intid, vcpu_for_private);
        pintid
    }
}

#[cfg(test)]
mod tests {
    use super::{sgi1r_targets, sgi1r_value};

    #[test]
    fn a_kick_value_reaches_exactly_its_pe() {
        for aff0 in 0..16u64 {
            for intid in [0u32, 1, 15] {
                let v = sgi1r_value(intid, aff0);
                assert_eq!(sgi1r_targets(v, 99, 32), (intid, 1 << aff0), "aff0={aff0}");
            }
        }
        // Aff0 16 and up: the range selector (RS, bits 47:44).
        assert_eq!(sgi1r_value(0, 17) >> 44 & 0xf, 1);
        assert_eq!(sgi1r_value(0, 17) & 0xffff, 1 << 1);
        // Higher affinity levels land in their fields (no vCPU has them).
        let v = sgi1r_value(3, 0x01_0002_0305);
        assert_eq!(v & 0xffff, 1 << 5);
        assert_eq!((v >> 16) & 0xff, 3);
        assert_eq!((v >> 32) & 0xff, 2);
        assert_eq!((v >> 48) & 0xff, 1);
        assert_eq!((v >> 24) & 0xf, 3);
        assert_eq!(sgi1r_targets(v, 0, 32).1, 0);
    }
}
