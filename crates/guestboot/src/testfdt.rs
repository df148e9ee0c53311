//! A minimal flattened-device-tree reader for tests: walks the structure
//! block and records every node path with its properties.

use alloc::string::String;
use alloc::vec::Vec;

const FDT_MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// The properties of one node: `(name, raw value)`.
pub type Props = Vec<(String, Vec<u8>)>;

/// A parsed blob: nodes in document order, each with its properties.
pub struct Tree {
    pub nodes: Vec<(String, Props)>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn cstr(b: &[u8], at: usize) -> String {
    let end = b[at..].iter().position(|&c| c == 0).unwrap() + at;
    String::from(core::str::from_utf8(&b[at..end]).unwrap())
}

impl Tree {
    /// Parses `blob`, panicking on anything malformed (it is a test helper).
    pub fn parse(blob: &[u8]) -> Self {
        assert_eq!(be32(blob, 0), FDT_MAGIC);
        assert_eq!(be32(blob, 4) as usize, blob.len());
        let off_struct = be32(blob, 8) as usize;
        let off_strings = be32(blob, 12) as usize;
        assert_eq!(be32(blob, 20), 17, "version");
        let mut nodes: Vec<(String, Props)> = Vec::new();
        let mut stack: Vec<String> = Vec::new();
        let mut pos = off_struct;
        loop {
            let token = be32(blob, pos);
            pos += 4;
            match token {
                BEGIN_NODE => {
                    let name = cstr(blob, pos);
                    pos = (pos + name.len() + 1 + 3) & !3;
                    let path = match stack.last() {
                        None => String::from("/"),
                        Some(p) if p == "/" => alloc::format!("/{name}"),
                        Some(p) => alloc::format!("{p}/{name}"),
                    };
                    assert!(nodes.iter().all(|(p, _)| *p != path), "duplicate {path}");
                    nodes.push((path.clone(), Vec::new()));
                    stack.push(path);
                }
                END_NODE => {
                    stack.pop().unwrap();
                }
                PROP => {
                    let len = be32(blob, pos) as usize;
                    let nameoff = be32(blob, pos + 4) as usize;
                    let value = blob[pos + 8..pos + 8 + len].to_vec();
                    pos = (pos + 8 + len + 3) & !3;
                    let name = cstr(blob, off_strings + nameoff);
                    let path = stack.last().unwrap();
                    let node = nodes.iter_mut().find(|(p, _)| p == path).unwrap();
                    node.1.push((name, value));
                }
                NOP => {}
                END => break,
                t => panic!("bad token {t:#x} at {pos:#x}"),
            }
        }
        assert!(stack.is_empty());
        Tree { nodes }
    }

    /// Whether the node exists.
    pub fn has(&self, path: &str) -> bool {
        self.nodes.iter().any(|(p, _)| p == path)
    }

    /// The raw value of a property.
    pub fn prop(&self, path: &str, name: &str) -> Option<&[u8]> {
        let (_, props) = self.nodes.iter().find(|(p, _)| p == path)?;
        props.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// A property as big-endian 32-bit cells.
    pub fn u32s(&self, path: &str, name: &str) -> Vec<u32> {
        let v = self.prop(path, name).unwrap_or_else(|| panic!("{path}:{name}"));
        assert_eq!(v.len() % 4, 0);
        v.chunks(4).map(|c| be32(c, 0)).collect()
    }

    /// A property as 64-bit values (pairs of cells).
    pub fn u64s(&self, path: &str, name: &str) -> Vec<u64> {
        let v = self.prop(path, name).unwrap_or_else(|| panic!("{path}:{name}"));
        assert_eq!(v.len() % 8, 0);
        v.chunks(8).map(|c| u64::from_be_bytes(c.try_into().unwrap())).collect()
    }

    /// A property as a string list.
    pub fn strs(&self, path: &str, name: &str) -> Vec<String> {
        let v = self.prop(path, name).unwrap_or_else(|| panic!("{path}:{name}"));
        assert_eq!(v.last(), Some(&0));
        v[..v.len() - 1].split(|&c| c == 0).map(|s| String::from(core::str::from_utf8(s).unwrap())).collect()
    }

    /// A property as one string.
    pub fn str(&self, path: &str, name: &str) -> String {
        let mut list = self.strs(path, name);
        assert_eq!(list.len(), 1, "{path}:{name} is a list");
        list.remove(0)
    }
}
