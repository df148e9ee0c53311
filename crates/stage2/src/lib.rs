//! Stage-2 translation tables for guests: map, unmap, translate, with block mappings.
#![no_std]
#![forbid(unsafe_code)]
