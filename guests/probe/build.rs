//! Passes the probe's linker script when building for a bare-metal AArch64 target.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64") && target.contains("-none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
        println!("cargo:rerun-if-changed={dir}/linker.ld");
    }
}
