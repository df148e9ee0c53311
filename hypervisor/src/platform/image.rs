//! The hypervisor image as linked: section bounds from the linker script.
//!
//! `linker.ld` defines the symbols; only their addresses are used here,
//! never their contents.

unsafe extern "C" {
    static __image_start: u8;
    static __image_file_end: u8;
    static __bss_end: u8;
    static __image_end: u8;
}

/// Physical addresses of the running image's parts (identity-mapped).
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// First byte of the image (code).
    pub start: usize,
    /// End of the file part (code, read-only data, data).
    pub file_end: usize,
    /// End of zero-initialised data.
    pub bss_end: usize,
    /// End of everything the hypervisor keeps (stacks and heap included).
    pub end: usize,
}

/// The running image's layout.
pub fn layout() -> Layout {
    // Taking the address of an extern static reads nothing: safe.
    Layout {
        start: (&raw const __image_start) as usize,
        file_end: (&raw const __image_file_end) as usize,
        bss_end: (&raw const __bss_end) as usize,
        end: (&raw const __image_end) as usize,
    }
}
