//! Passes the probe's linker script when building for a bare-metal AArch64
//! target, linked for the guest RAM base in `FERROVISOR_PROBE_RAM` (hex;
//! default 0x40000000, QEMU virt's RAM base): the image sits at that base
//! plus the Image header's text_offset (0x80000). xtask builds a second
//! image, `probe-hi.bin`, for guests whose boot RAM is identity-mapped at
//! 0x50000000.
fn main() -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=FERROVISOR_PROBE_RAM");
    let ram = std::env::var("FERROVISOR_PROBE_RAM").unwrap_or_else(|_| "0x40000000".into());
    let base = u64::from_str_radix(ram.trim_start_matches("0x"), 16)
        .ok()
        .filter(|b| b % 0x20_0000 == 0 && (0x4000_0000..0x8000_0000).contains(b))
        .ok_or_else(|| {
            format!("FERROVISOR_PROBE_RAM={ram}: want a 2 MiB aligned hex address in 0x40000000..0x80000000")
        })?;
    let link = base + 0x8_0000;
    println!("cargo:rustc-env=PROBE_LINK_ADDRESS={link:#x}");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64") && target.contains("-none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        let out = std::env::var("OUT_DIR").unwrap_or_default();
        let script = std::fs::read_to_string(format!("{dir}/linker.ld"))
            .map_err(|e| format!("reading linker.ld: {e}"))?;
        let script = script.replace(". = 0x40080000;", &format!(". = {link:#x};"));
        let path = format!("{out}/linker.ld");
        std::fs::write(&path, script).map_err(|e| format!("writing {path}: {e}"))?;
        println!("cargo:rustc-link-arg-bins=-T{path}");
        println!("cargo:rerun-if-changed={dir}/linker.ld");
    }
    Ok(())
}
