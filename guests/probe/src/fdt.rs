//! A tiny, checked flattened device tree reader: just enough for
//! `/chosen/bootargs` and the CPUs under `/cpus`.
//!
//! Every offset and length is checked; a malformed blob makes the queries
//! return nothing (the probe then runs with empty bootargs) and never panics.

/// FDT header magic.
const MAGIC: u32 = 0xd00d_feed;
/// The largest blob accepted.
pub const MAX_SIZE: usize = 4 << 20;
const HEADER_SIZE: usize = 40;

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// The most CPUs whose MPIDR is remembered (all are counted).
pub const MAX_CPUS_LISTED: usize = 32;

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

/// A validated blob.
#[derive(Clone, Copy)]
pub struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
}

/// The total size a blob declares in its header, if `header` (its first 40
/// bytes) looks like one.
pub fn total_size(header: &[u8]) -> Option<usize> {
    if be32(header, 0)? != MAGIC {
        return None;
    }
    let size = be32(header, 4)? as usize;
    (HEADER_SIZE..=MAX_SIZE).contains(&size).then_some(size)
}

impl<'a> Fdt<'a> {
    /// Checks the header of `blob` (the whole `totalsize` bytes).
    pub fn new(blob: &'a [u8]) -> Option<Self> {
        let size = total_size(blob)?;
        let blob = blob.get(..size)?;
        let off_struct = be32(blob, 8)? as usize;
        let off_strings = be32(blob, 12)? as usize;
        let version = be32(blob, 20)?;
        let last_compatible = be32(blob, 24)?;
        if version < 16 || last_compatible > 17 {
            return None;
        }
        let size_strings = be32(blob, 32)? as usize;
        let size_struct =
            if version >= 17 { be32(blob, 36)? as usize } else { size.checked_sub(off_struct)? };
        let structs = blob.get(off_struct..off_struct.checked_add(size_struct)?)?;
        let strings = blob.get(off_strings..off_strings.checked_add(size_strings)?)?;
        Some(Self { structs, strings })
    }

    fn tokens(&self) -> Tokens<'a> {
        Tokens { fdt: *self, pos: 0, failed: false }
    }

    /// The value of property `prop` of the node at `path` (node names from
    /// the root; a name matches with or without its `@unit-address`).
    pub fn property(&self, path: &[&str], prop: &str) -> Option<&'a [u8]> {
        let mut tokens = self.tokens();
        let mut depth = 0usize; // 1 = inside the root node
        let mut matched = 0usize; // path components matched by open nodes
        while let Some(token) = tokens.next() {
            match token {
                Token::Begin(name) => {
                    depth += 1;
                    if depth >= 2 && matched == depth - 2 {
                        if let Some(want) = path.get(depth - 2) {
                            if name_matches(name, want) {
                                matched = depth - 1;
                            }
                        }
                    }
                }
                Token::End => {
                    if depth == 0 {
                        return None;
                    }
                    if depth >= 2 && matched == depth - 1 {
                        matched = depth - 2;
                    }
                    depth -= 1;
                }
                Token::Prop(name, value) => {
                    if depth == path.len() + 1 && matched == path.len() && name == prop.as_bytes() {
                        return Some(value);
                    }
                }
            }
        }
        None
    }

    /// The string property `prop` at `path`, without its NUL; None if it is
    /// missing or not UTF-8.
    pub fn string(&self, path: &[&str], prop: &str) -> Option<&'a str> {
        let value = self.property(path, prop)?;
        let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
        core::str::from_utf8(value.get(..end)?).ok()
    }

    /// The `/memory` range (from any `memory` node under the root) that
    /// contains `addr`, as (start, end).
    pub fn memory_containing(&self, addr: u64) -> Option<(u64, u64)> {
        let mut tokens = self.tokens();
        let mut depth = 0usize;
        let (mut address_cells, mut size_cells) = (2usize, 1usize);
        let mut in_memory = false;
        while let Some(token) = tokens.next() {
            match token {
                Token::Begin(name) => {
                    depth += 1;
                    in_memory = depth == 2 && name_matches(name, "memory");
                }
                Token::End => {
                    depth = depth.checked_sub(1)?;
                    in_memory = false;
                }
                Token::Prop(name, value) => {
                    if depth == 1 && name == b"#address-cells" {
                        address_cells = be32(value, 0)? as usize;
                    } else if depth == 1 && name == b"#size-cells" {
                        size_cells = be32(value, 0)? as usize;
                    } else if depth == 2 && in_memory && name == b"reg" {
                        let entry = 4 * (address_cells + size_cells);
                        if !(1..=2).contains(&address_cells) || !(1..=2).contains(&size_cells) {
                            return None;
                        }
                        for chunk in value.chunks_exact(entry) {
                            let start = cells(chunk, address_cells)?;
                            let size = cells(chunk.get(4 * address_cells..)?, size_cells)?;
                            let end = start.checked_add(size)?;
                            if (start..end).contains(&addr) {
                                return Some((start, end));
                            }
                        }
                    }
                }
            }
        }
        None
    }

    /// The CPUs under `/cpus` (nodes with `device_type = "cpu"`), in DT order.
    pub fn cpus(&self) -> Option<Cpus> {
        let mut cpus = Cpus { count: 0, mpidr: [0; MAX_CPUS_LISTED] };
        let mut tokens = self.tokens();
        let mut depth = 0usize;
        let mut in_cpus = false;
        let mut address_cells = 2usize;
        let mut is_cpu = false;
        let mut reg: Option<u64> = None;
        while let Some(token) = tokens.next() {
            match token {
                Token::Begin(name) => {
                    depth += 1;
                    if depth == 2 && name == b"cpus" {
                        in_cpus = true;
                    } else if depth == 3 && in_cpus {
                        is_cpu = false;
                        reg = None;
                    }
                }
                Token::End => {
                    if depth == 3 && in_cpus && is_cpu {
                        if let Some(slot) = cpus.mpidr.get_mut(cpus.count) {
                            *slot = reg.unwrap_or(u64::MAX);
                        }
                        cpus.count += 1;
                    } else if depth == 2 {
                        in_cpus = false;
                    } else if depth == 0 {
                        return None;
                    }
                    depth -= 1;
                }
                Token::Prop(name, value) if in_cpus => {
                    if depth == 2 && name == b"#address-cells" {
                        address_cells = be32(value, 0)? as usize;
                    } else if depth == 3 && name == b"device_type" {
                        is_cpu = value.strip_suffix(&[0]).unwrap_or(value) == b"cpu";
                    } else if depth == 3 && name == b"reg" {
                        reg = cells(value, address_cells);
                    }
                }
                Token::Prop(..) => {}
            }
        }
        (!tokens.failed).then_some(cpus)
    }
}

/// The CPUs listed in the DT.
#[derive(Clone, Copy, Debug)]
pub struct Cpus {
    /// How many CPU nodes there are.
    pub count: usize,
    /// The `reg` (MPIDR affinity) of the first [`MAX_CPUS_LISTED`]; u64::MAX
    /// if a node has no usable `reg`.
    pub mpidr: [u64; MAX_CPUS_LISTED],
}

impl Cpus {
    /// No CPUs (no usable DT).
    pub const NONE: Cpus = Cpus { count: 0, mpidr: [0; MAX_CPUS_LISTED] };

    /// The remembered MPIDRs.
    pub fn listed(&self) -> &[u64] {
        self.mpidr.get(..self.count.min(MAX_CPUS_LISTED)).unwrap_or(&[])
    }
}

/// A 1- or 2-cell big-endian number at the start of `bytes`.
fn cells(bytes: &[u8], n: usize) -> Option<u64> {
    match n {
        1 => be32(bytes, 0).map(u64::from),
        2 => Some((u64::from(be32(bytes, 0)?) << 32) | u64::from(be32(bytes, 4)?)),
        _ => None,
    }
}

fn name_matches(name: &[u8], want: &str) -> bool {
    let want = want.as_bytes();
    match name.strip_prefix(want) {
        Some(rest) => rest.is_empty() || rest.first() == Some(&b'@'),
        None => false,
    }
}

enum Token<'a> {
    Begin(&'a [u8]),
    End,
    Prop(&'a [u8], &'a [u8]),
}

struct Tokens<'a> {
    fdt: Fdt<'a>,
    pos: usize,
    failed: bool,
}

impl<'a> Tokens<'a> {
    fn next(&mut self) -> Option<Token<'a>> {
        if self.failed {
            return None;
        }
        let token = self.step();
        if token.is_none() {
            self.failed = true;
        }
        token.flatten()
    }

    /// Some(None) at FDT_END, None on a malformed blob.
    fn step(&mut self) -> Option<Option<Token<'a>>> {
        let s = self.fdt.structs;
        loop {
            let tag = be32(s, self.pos)?;
            self.pos = self.pos.checked_add(4)?;
            match tag {
                BEGIN_NODE => {
                    let rest = s.get(self.pos..)?;
                    let len = rest.iter().position(|&b| b == 0)?;
                    let name = rest.get(..len)?;
                    self.pos = align4(self.pos.checked_add(len + 1)?)?;
                    return Some(Some(Token::Begin(name)));
                }
                END_NODE => return Some(Some(Token::End)),
                PROP => {
                    let len = be32(s, self.pos)? as usize;
                    let name_off = be32(s, self.pos + 4)? as usize;
                    let start = self.pos.checked_add(8)?;
                    let value = s.get(start..start.checked_add(len)?)?;
                    self.pos = align4(start + len)?;
                    let names = self.fdt.strings.get(name_off..)?;
                    let name = names.get(..names.iter().position(|&b| b == 0)?)?;
                    return Some(Some(Token::Prop(name, value)));
                }
                NOP => continue,
                END => {
                    // Stay at END: later calls return None without failing.
                    self.pos -= 4;
                    return Some(None);
                }
                _ => return None,
            }
        }
    }
}

fn align4(v: usize) -> Option<usize> {
    Some(v.checked_add(3)? & !3)
}
