//! A checked reader for flattened device trees (DTB).
//!
//! Every offset, length and cell count read from the blob is verified, so a
//! malformed or hostile DTB yields a [`DtbError`], never a panic. The whole
//! tree is read once into a vector of nodes (parent/children by index) with
//! properties borrowed from the blob.
//!
//! Why not the `fdt` crate: `fdt` 0.1.5 unwraps and panics while walking a
//! corrupted structure block, and this crate must survive any input.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const TOKEN_BEGIN_NODE: u32 = 1;
const TOKEN_END_NODE: u32 = 2;
const TOKEN_PROP: u32 = 3;
const TOKEN_NOP: u32 = 4;
const TOKEN_END: u32 = 9;
/// Deeper trees than this are refused (real ones are under 10 levels).
const MAX_DEPTH: usize = 32;

/// A DTB that could not be read: where and what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtbError {
    /// Byte offset in the blob (or in the structure block) of the problem.
    pub offset: usize,
    /// What is wrong.
    pub what: &'static str,
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed DTB at byte {:#x}: {}", self.offset, self.what)
    }
}

/// One property: name and raw big-endian value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prop<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

/// One node of the tree.
#[derive(Clone, Debug)]
pub(crate) struct Node<'a> {
    /// Node name including the unit address, e.g. `pl011@9000000`.
    pub name: &'a str,
    /// Full path, `/` for the root.
    pub path: String,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub props: Vec<Prop<'a>>,
}

impl<'a> Node<'a> {
    /// The value of property `name`, if present.
    pub fn prop(&self, name: &str) -> Option<&'a [u8]> {
        self.props.iter().find(|p| p.name == name).map(|p| p.value)
    }

    /// Whether property `name` exists (empty or not).
    pub fn has(&self, name: &str) -> bool {
        self.props.iter().any(|p| p.name == name)
    }

    /// The node name without its unit address.
    pub fn base_name(&self) -> &'a str {
        self.name.split('@').next().unwrap_or(self.name)
    }

    /// Property `name` as a single string.
    pub fn str_prop(&self, name: &str) -> Option<&'a str> {
        self.prop(name).and_then(as_str)
    }

    /// Property `name` as a string list (empty list if absent or invalid).
    pub fn str_list(&self, name: &str) -> Vec<&'a str> {
        self.prop(name).and_then(as_str_list).unwrap_or_default()
    }

    /// Whether the `compatible` list contains `compat`.
    pub fn is_compatible(&self, compat: &str) -> bool {
        self.str_list("compatible").contains(&compat)
    }

    /// Property `name` as one 32-bit cell.
    pub fn u32_prop(&self, name: &str) -> Option<u32> {
        self.prop(name).and_then(as_u32)
    }
}

/// The parsed tree. Node 0 is the root.
#[derive(Clone, Debug)]
pub(crate) struct Tree<'a> {
    pub nodes: Vec<Node<'a>>,
    /// `(phandle, node index)`, sorted, for lookups in O(log n).
    phandles: Vec<(u32, usize)>,
}

fn be32(data: &[u8], off: usize) -> Option<u32> {
    let bytes = data.get(off..off.checked_add(4)?)?;
    let arr: [u8; 4] = bytes.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

fn align4(x: usize) -> Option<usize> {
    Some(x.checked_add(3)? & !3)
}

fn cstr(data: &[u8], off: usize) -> Option<&str> {
    let rest = data.get(off..)?;
    let len = rest.iter().position(|b| *b == 0)?;
    core::str::from_utf8(rest.get(..len)?).ok()
}

/// A property value as a single NUL-terminated UTF-8 string.
pub(crate) fn as_str(value: &[u8]) -> Option<&str> {
    let (last, body) = value.split_last()?;
    if *last != 0 || body.contains(&0) {
        return None;
    }
    core::str::from_utf8(body).ok()
}

/// A property value as a list of NUL-terminated UTF-8 strings.
pub(crate) fn as_str_list(value: &[u8]) -> Option<Vec<&str>> {
    let (last, body) = value.split_last()?;
    if *last != 0 {
        return None;
    }
    body.split(|b| *b == 0).map(|s| core::str::from_utf8(s).ok()).collect()
}

/// The value as text if it is what dtc makes of `"..."` (one or more
/// NUL-terminated, non-empty strings of printable ASCII), for messages that
/// tell a string from numbers. A 4-byte number whose bytes happen to spell
/// such a string (`<0x61626300>`) reads as one too; no real value does.
pub(crate) fn looks_like_string(value: &[u8]) -> Option<&str> {
    let (last, body) = value.split_last()?;
    if *last != 0 || body.is_empty() {
        return None;
    }
    let printable = |seg: &[u8]| !seg.is_empty() && seg.iter().all(|b| (0x20..0x7f).contains(b));
    if !body.split(|b| *b == 0).all(printable) {
        return None;
    }
    core::str::from_utf8(body).ok()
}

/// A property value as exactly one 32-bit cell.
pub(crate) fn as_u32(value: &[u8]) -> Option<u32> {
    if value.len() != 4 {
        return None;
    }
    be32(value, 0)
}

/// A property value as a list of 32-bit cells (`None` if the length is not a
/// multiple of 4).
pub(crate) fn as_cells(value: &[u8]) -> Option<Vec<u32>> {
    if !value.len().is_multiple_of(4) {
        return None;
    }
    Some(value.chunks_exact(4).filter_map(|c| be32(c, 0)).collect())
}

/// Combines `cells` (0, 1 or 2 of them) into one number.
pub(crate) fn cells_to_u64(cells: &[u32]) -> Option<u64> {
    match cells {
        [] => Some(0),
        [lo] => Some(u64::from(*lo)),
        [hi, lo] => Some((u64::from(*hi) << 32) | u64::from(*lo)),
        _ => None,
    }
}

struct Walker<'a> {
    block: &'a [u8],
    strings: &'a [u8],
    base: usize,
    pos: usize,
}

impl<'a> Walker<'a> {
    fn err(&self, what: &'static str) -> DtbError {
        DtbError { offset: self.base.saturating_add(self.pos), what }
    }

    fn token(&mut self) -> Result<u32, DtbError> {
        let t = be32(self.block, self.pos).ok_or(self.err("structure block ends without FDT_END"))?;
        self.pos = self.pos.saturating_add(4);
        Ok(t)
    }

    fn node_name(&mut self) -> Result<&'a str, DtbError> {
        let name =
            cstr(self.block, self.pos).ok_or(self.err("node name is not a terminated UTF-8 string"))?;
        if name.contains('/') {
            return Err(self.err("node name contains '/'"));
        }
        self.pos =
            self.pos.checked_add(name.len() + 1).and_then(align4).ok_or(self.err("node name overflows"))?;
        Ok(name)
    }

    fn prop(&mut self) -> Result<Prop<'a>, DtbError> {
        let len = self.token()? as usize;
        let name_off = self.token()? as usize;
        let start = self.pos;
        let end = start.checked_add(len).ok_or(self.err("property length overflows"))?;
        let value =
            self.block.get(start..end).ok_or(self.err("property value runs past the structure block"))?;
        let name =
            cstr(self.strings, name_off).ok_or(self.err("property name offset outside the strings block"))?;
        self.pos = align4(end).ok_or(self.err("property length overflows"))?;
        Ok(Prop { name, value })
    }
}

impl<'a> Tree<'a> {
    /// Reads a whole DTB.
    pub fn parse(data: &'a [u8]) -> Result<Tree<'a>, DtbError> {
        let hdr = |off: usize, what| be32(data, off).ok_or(DtbError { offset: off, what });
        if data.len() < HEADER_LEN {
            return Err(DtbError { offset: 0, what: "shorter than a DTB header" });
        }
        if hdr(0, "no magic")? != MAGIC {
            return Err(DtbError { offset: 0, what: "bad magic (not a DTB)" });
        }
        let total = hdr(4, "no totalsize")? as usize;
        let data = data.get(..total).ok_or(DtbError { offset: 4, what: "totalsize larger than the blob" })?;
        let off_struct = hdr(8, "no structure offset")? as usize;
        let off_strings = hdr(12, "no strings offset")? as usize;
        let version = hdr(20, "no version")?;
        let last_comp = hdr(24, "no last compatible version")?;
        if version < 16 || last_comp > 17 {
            return Err(DtbError { offset: 20, what: "unsupported DTB version (need 16 or 17)" });
        }
        let size_strings = hdr(32, "no strings size")? as usize;
        let struct_end = if version >= 17 {
            off_struct.checked_add(hdr(36, "no structure size")? as usize)
        } else {
            Some(total)
        };
        let block = struct_end
            .and_then(|end| data.get(off_struct..end))
            .ok_or(DtbError { offset: 8, what: "structure block outside the blob" })?;
        let strings = off_strings
            .checked_add(size_strings)
            .and_then(|end| data.get(off_strings..end))
            .ok_or(DtbError { offset: 12, what: "strings block outside the blob" })?;
        let mut w = Walker { block, strings, base: off_struct, pos: 0 };
        let mut nodes: Vec<Node<'a>> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        loop {
            match w.token()? {
                TOKEN_NOP => {}
                TOKEN_BEGIN_NODE => {
                    let name = w.node_name()?;
                    let parent = stack.last().copied();
                    if parent.is_none() && !nodes.is_empty() {
                        return Err(w.err("second root node"));
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(w.err("tree too deep"));
                    }
                    let path = match parent.and_then(|p| nodes.get(p)) {
                        None => String::from("/"),
                        Some(p) if p.parent.is_none() => alloc::format!("/{name}"),
                        Some(p) => alloc::format!("{}/{name}", p.path),
                    };
                    let idx = nodes.len();
                    if let Some(p) = parent.and_then(|p| nodes.get_mut(p)) {
                        p.children.push(idx);
                    }
                    nodes.push(Node { name, path, parent, children: Vec::new(), props: Vec::new() });
                    stack.push(idx);
                }
                TOKEN_END_NODE => {
                    if stack.pop().is_none() {
                        return Err(w.err("FDT_END_NODE without a node"));
                    }
                }
                TOKEN_PROP => {
                    let prop = w.prop()?;
                    let node = stack
                        .last()
                        .and_then(|i| nodes.get_mut(*i))
                        .ok_or(w.err("property outside any node"))?;
                    node.props.push(prop);
                }
                TOKEN_END => {
                    if !stack.is_empty() || nodes.is_empty() {
                        return Err(w.err("FDT_END inside a node or before the root"));
                    }
                    let mut phandles: Vec<(u32, usize)> = nodes
                        .iter()
                        .enumerate()
                        .filter_map(|(i, n)| {
                            n.prop("phandle")
                                .or_else(|| n.prop("linux,phandle"))
                                .and_then(as_u32)
                                .map(|p| (p, i))
                        })
                        .collect();
                    phandles.sort_unstable();
                    return Ok(Tree { nodes, phandles });
                }
                _ => return Err(w.err("unknown structure token")),
            }
        }
    }

    /// The root node.
    pub fn root(&self) -> Option<&Node<'a>> {
        self.nodes.first()
    }

    /// The node with exactly this full path.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.path == path)
    }

    /// Node by index.
    pub fn node(&self, idx: usize) -> Option<&Node<'a>> {
        self.nodes.get(idx)
    }

    /// The children of a node.
    pub fn children(&self, idx: usize) -> impl Iterator<Item = (usize, &Node<'a>)> + '_ {
        let list = self.nodes.get(idx).map(|n| n.children.as_slice()).unwrap_or(&[]);
        list.iter().filter_map(move |c| self.nodes.get(*c).map(|n| (*c, n)))
    }

    /// The node carrying `phandle` (or `linux,phandle`) = `handle`.
    pub fn by_phandle(&self, handle: u32) -> Option<usize> {
        let at = self.phandles.partition_point(|(p, _)| *p < handle);
        self.phandles.get(at).filter(|(p, _)| *p == handle).map(|(_, i)| *i)
    }

    /// `#address-cells` of a node (spec default 2).
    pub fn address_cells(&self, idx: usize) -> usize {
        self.node(idx).and_then(|n| n.u32_prop("#address-cells")).map_or(2, |v| v as usize)
    }

    /// `#size-cells` of a node (spec default 1).
    pub fn size_cells(&self, idx: usize) -> usize {
        self.node(idx).and_then(|n| n.u32_prop("#size-cells")).map_or(1, |v| v as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &[u8] = include_bytes!("../tests/fixtures/qemu-virt-gicv3.dtb");

    #[test]
    fn reads_the_qemu_tree() {
        let t = Tree::parse(HOST).unwrap();
        let root = t.root().unwrap();
        assert_eq!(root.path, "/");
        let uart = t.find("/pl011@9000000").unwrap();
        assert!(t.node(uart).unwrap().is_compatible("arm,pl011"));
        assert_eq!(t.node(uart).unwrap().base_name(), "pl011");
        let cpus = t.find("/cpus").unwrap();
        assert_eq!(t.address_cells(cpus), 1);
        assert_eq!(t.size_cells(cpus), 0);
        assert!(t.find("/cpus/cpu@3").is_some());
    }

    #[test]
    fn rejects_garbage() {
        assert!(Tree::parse(&[]).is_err());
        assert!(Tree::parse(&[0u8; 64]).is_err());
        assert!(Tree::parse(&HOST[..HOST.len() / 2]).is_err());
    }

    #[test]
    fn string_helpers() {
        assert_eq!(as_str(b"abc\0"), Some("abc"));
        assert_eq!(as_str(b"a\0b\0"), None);
        assert_eq!(as_str(b""), None);
        assert_eq!(as_str_list(b"a\0b\0"), Some(alloc::vec!["a", "b"]));
        assert_eq!(cells_to_u64(&[1, 2]), Some(0x1_0000_0002));
        assert_eq!(cells_to_u64(&[1, 2, 3]), None);
    }
}
