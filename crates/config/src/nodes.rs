//! Readers for the nodes inside a guest (memory, emulated UART,
//! pass-through) and the property helpers shared with `parse`: each checks
//! the allowed properties and their sizes and reports with the node path.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use ferrovisor_types::{GuestIrq, GuestPhysAddr};

use crate::dt::{as_cells, as_str, cells_to_u64, looks_like_string, Node, Tree};
use crate::error::{Report, Who};
use crate::model::{MemoryRegion, VuartConfig};
use crate::parse::{PtSource, RawGuest, RawPassthrough};

const MEMORY_PROPS: &[&str] = &["guest-physical-addr", "size", "identity"];
const VUART_PROPS: &[&str] = &["compatible", "guest-physical-addr", "interrupts"];
const PT_PROPS: &[&str] = &[
    "compatible",
    "host-device",
    "host-physical-addr",
    "size",
    "guest-physical-addr",
    "interrupt-map",
    "dma-unprotected-ack",
    "scmi-power-domain",
    "scmi-reset",
    "standby",
    "pci-function",
    "intx",
    "dma-registers",
];
/// Properties dtc may add anywhere.
pub(crate) const ALWAYS_ALLOWED: &[&str] = &["phandle", "linux,phandle"];
/// Context for reading one node of one guest.
pub(crate) struct Ctx<'r, 'n, 'a> {
    pub report: &'r mut Report,
    pub who: Who<'n>,
    pub node: &'n Node<'a>,
}

impl Ctx<'_, '_, '_> {
    pub(crate) fn error(&mut self, message: String, hint: &str) {
        self.report.error(self.who, &self.node.path, message, hint);
    }

    /// Reports a string where numbers belong; returns true if it was one.
    fn string_for_numbers(&mut self, name: &str, value: &[u8], want: &str, example: &str) -> bool {
        let Some(text) = looks_like_string(value) else { return false };
        let msg = format!(
            "property \"{name}\" is a string (\"{}\"), but must be {want}",
            text.replace('\0', "\", \"")
        );
        self.error(msg, &format!("numbers go in angle brackets: write {example}"));
        true
    }

    /// Counts one more node of a kind a guest has at most `limit` of;
    /// returns true (reporting once, on the first node past it) if this one
    /// is past the limit and must not be read.
    pub(crate) fn over_limit(
        &mut self,
        count: &mut usize,
        limit: usize,
        what: &str,
        guest: &str,
        hint: &str,
    ) -> bool {
        *count += 1;
        if *count == limit + 1 {
            self.error(format!("more than {limit} {what} in guest {guest}"), hint);
        }
        *count > limit
    }

    pub(crate) fn check_props(&mut self, allowed: &[&str]) {
        let node = self.node;
        for p in &node.props {
            if !allowed.contains(&p.name) && !ALWAYS_ALLOWED.contains(&p.name) {
                let hint = format!("allowed properties here: {}", allowed.join(", "));
                self.error(format!("unknown property \"{}\"", p.name), &hint);
            }
        }
    }

    pub(crate) fn required<T>(&mut self, name: &str, value: Option<T>, example: &str) -> Option<T> {
        if value.is_none() && !self.node.has(name) {
            self.error(format!("missing required property \"{name}\""), &format!("add {example}"));
        }
        value
    }

    pub(crate) fn u64_prop(&mut self, name: &str) -> Option<u64> {
        let v = self.node.prop(name)?;
        let example = format!("{name} = <0x0 0x10000000>;");
        if self.string_for_numbers(name, v, "2 cells <high low>", &example) {
            return None;
        }
        if v.len() != 8 {
            let msg =
                format!("property \"{name}\" must be 2 cells <high low> (8 bytes), found {} bytes", v.len());
            self.error(msg, &format!("write {name} = <0x0 0x10000000>;"));
            return None;
        }
        as_cells(v).and_then(|c| cells_to_u64(&c))
    }

    pub(crate) fn u32_prop(&mut self, name: &str, example: &str) -> Option<u32> {
        let v = self.node.prop(name)?;
        if self.string_for_numbers(name, v, "one 32-bit cell", example) {
            return None;
        }
        let n = crate::dt::as_u32(v);
        if n.is_none() {
            let msg = format!("property \"{name}\" must be one 32-bit cell, found {} bytes", v.len());
            self.error(msg, &format!("write {example}"));
        }
        n
    }

    pub(crate) fn cell_list(&mut self, name: &str, example: &str) -> Option<Vec<u32>> {
        let v = self.node.prop(name)?;
        if self.string_for_numbers(name, v, "a list of 32-bit cells", example) {
            return None;
        }
        match as_cells(v) {
            Some(c) if !c.is_empty() => Some(c),
            _ => {
                let msg = format!("property \"{name}\" must be a non-empty list of 32-bit cells");
                self.error(msg, &format!("write {example}"));
                None
            }
        }
    }

    pub(crate) fn string(&mut self, name: &str) -> Option<String> {
        let v = self.node.prop(name)?;
        match as_str(v) {
            Some(s) if !s.is_empty() => Some(s.to_string()),
            _ if !v.is_empty() && v.len() % 4 == 0 && looks_like_string(v).is_none() => {
                let cells = v.len() / 4;
                let msg = format!(
                    "property \"{name}\" holds numbers ({cells} cell{}), but must be one non-empty string",
                    if cells == 1 { "" } else { "s" }
                );
                self.error(msg, &format!("strings go in double quotes: write {name} = \"...\";"));
                None
            }
            _ => {
                let msg = format!("property \"{name}\" must be one non-empty string");
                self.error(msg, &format!("write {name} = \"...\";"));
                None
            }
        }
    }

    pub(crate) fn flag(&mut self, name: &str) -> bool {
        match self.node.prop(name) {
            None => false,
            Some([]) => true,
            Some(_) => {
                self.error(
                    format!("property \"{name}\" is a flag and takes no value"),
                    &format!("write {name};"),
                );
                true
            }
        }
    }

    pub(crate) fn no_children(&mut self, tree: &Tree<'_>, idx: usize) {
        for (_, child) in tree.children(idx) {
            let msg = format!("unknown node \"{}\"", child.name);
            self.report.error(
                self.who,
                &child.path,
                msg,
                "memory, UART and pass-through nodes have no child nodes",
            );
        }
    }
}

pub(crate) fn parse_memory(c: &mut Ctx<'_, '_, '_>) -> Option<MemoryRegion> {
    c.check_props(MEMORY_PROPS);
    let gpa = c.u64_prop("guest-physical-addr");
    let gpa = c.required("guest-physical-addr", gpa, "guest-physical-addr = <0x0 0x40000000>;");
    let size = c.u64_prop("size");
    let size = c.required("size", size, "size = <0x0 0x10000000>;");
    let identity = c.flag("identity");
    Some(MemoryRegion {
        gpa: GuestPhysAddr(gpa?),
        size: size?,
        identity,
        host: ferrovisor_types::HostPhysAddr(0),
        path: c.node.path.clone(),
    })
}

pub(crate) fn parse_vuart(c: &mut Ctx<'_, '_, '_>, g: &mut RawGuest) {
    c.check_props(VUART_PROPS);
    let gpa = c.u64_prop("guest-physical-addr");
    let gpa = c.required("guest-physical-addr", gpa, "guest-physical-addr = <0x0 0x09000000>;");
    let irq = c.u32_prop("interrupts", "interrupts = <33>;");
    let irq = c.required("interrupts", irq, "interrupts = <33>; (the guest INTID)");
    if let Some(first) = &g.vuart {
        let msg = format!("a guest has at most one emulated UART, and {} is already one", first.path);
        c.error(msg, "remove one of the two UART nodes");
        return;
    }
    if let (Some(gpa), Some(irq)) = (gpa, irq) {
        match GuestIrq::new(irq) {
            Some(irq) => {
                g.vuart = Some(VuartConfig { gpa: GuestPhysAddr(gpa), irq, path: c.node.path.clone() })
            }
            None => c.error(
                format!("guest INTID {irq} is not a shared peripheral interrupt"),
                crate::validate::SPI_HINT,
            ),
        }
    }
}

pub(crate) fn parse_passthrough(c: &mut Ctx<'_, '_, '_>) -> Option<RawPassthrough> {
    c.check_props(PT_PROPS);
    let device = c.string("host-device");
    let hpa = c.u64_prop("host-physical-addr");
    let size = c.u64_prop("size");
    let gpa = c.u64_prop("guest-physical-addr");
    let dma_ack = c.flag("dma-unprotected-ack");
    let scmi_power = c.string("scmi-power-domain");
    let scmi_reset = c.string("scmi-reset");
    let standby = c.flag("standby");
    let mut irq_map = Vec::new();
    if let Some(cells) = c.cell_list("interrupt-map", "interrupt-map = <34 34>;") {
        if cells.len() % 2 != 0 {
            let msg = "property \"interrupt-map\" must hold pairs <host-intid guest-intid>".to_string();
            c.error(msg, "write interrupt-map = <34 40>; (host INTID 34 appears as guest INTID 40)");
        }
        irq_map = cells.chunks_exact(2).filter_map(|p| Some((*p.first()?, *p.get(1)?))).collect();
    }
    let mut dma_registers = Vec::new();
    let example = "dma-registers = <0x80 0x84 0x1000>; (low half, high half, bytes the device reads or writes from the address)";
    if let Some(cells) = c.cell_list("dma-registers", example) {
        if cells.is_empty() || cells.len() % 3 != 0 {
            let msg =
                "property \"dma-registers\" must hold triples <low-offset high-offset length>".to_string();
            c.error(msg, &format!("write {example}"));
        }
        dma_registers =
            cells.chunks_exact(3).filter_map(|t| Some([*t.first()?, *t.get(1)?, *t.get(2)?])).collect();
    }
    let source = pt_source(c, device, hpa, size, standby)?;
    Some(RawPassthrough {
        name: c.node.name.to_string(),
        path: c.node.path.clone(),
        source,
        gpa,
        irq_map,
        dma_ack,
        scmi_power,
        scmi_reset,
        standby,
        dma_registers,
    })
}

/// `pci-window = <base-hi base-lo size-hi size-lo>`.
pub(crate) fn window_prop(c: &mut Ctx<'_, '_, '_>, name: &str) -> Option<(u64, u64)> {
    let example = "pci-window = <0x0 0x10000000 0x0 0x10000000>;";
    match c.cell_list(name, example)?.as_slice() {
        [b_hi, b_lo, s_hi, s_lo] => {
            Some((u64::from(*b_hi) << 32 | u64::from(*b_lo), u64::from(*s_hi) << 32 | u64::from(*s_lo)))
        }
        _ => {
            let msg = format!("property \"{name}\" must be 4 cells: 2 for the base, 2 for the size");
            c.error(msg, &format!("write {example}"));
            None
        }
    }
}

/// Which of the three forms a pass-through node is, with its checks.
fn pt_source(
    c: &mut Ctx<'_, '_, '_>,
    device: Option<String>,
    hpa: Option<u64>,
    size: Option<u64>,
    standby: bool,
) -> Option<PtSource> {
    let has = |n: &str| c.node.has(n);
    let forms = [has("host-device"), has("host-physical-addr"), has("pci-function")];
    if forms.iter().filter(|&&f| f).count() > 1 {
        let msg = "host-device, host-physical-addr and pci-function are mutually exclusive".to_string();
        c.error(msg, "use host-device for a host DT device, host-physical-addr + size for a raw region, or pci-function for a PCIe function");
        return None;
    }
    if has("intx") && !has("pci-function") {
        c.error(
            "property \"intx\" is only for a PCIe function".to_string(),
            "remove intx, or add pci-function = \"00:02.0\";",
        );
    }
    match forms {
        [true, _, _] => {
            if has("size") {
                let msg =
                    "property \"size\" is only for a raw region: a host device's size comes from its reg"
                        .to_string();
                c.error(msg, "remove size, or use host-physical-addr instead of host-device");
            }
            Some(PtSource::Device(device?))
        }
        [_, true, _] => {
            if standby {
                let msg = "standby is only for a host device: a raw region cannot be moved between guests"
                    .to_string();
                c.error(msg, "pass the device through with host-device = \"/...\"; to make it movable, or remove standby");
            }
            let size = c.required("size", size, "size = <0x0 0x1000>; (raw regions need a size)");
            Some(PtSource::Raw { hpa: hpa?, size: size? })
        }
        [_, _, true] => crate::pcifn::parse_source(c),
        _ => {
            let msg = "missing host-device, host-physical-addr or pci-function".to_string();
            c.error(
                msg,
                "add host-device = \"/pl031@9010000\"; or host-physical-addr = <...>; size = <...>; or pci-function = \"00:02.0\";",
            );
            None
        }
    }
}
