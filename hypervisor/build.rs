//! Passes the linker script when building the EL2 image, and turns on the
//! exit markers for `cargo xtask profile` (`FERROVISOR_PROFILE_MARKERS=1`).
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64") && target.contains("-none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
        println!("cargo:rerun-if-changed={dir}/linker.ld");
    }
    println!("cargo::rustc-check-cfg=cfg(ferrovisor_profile_markers)");
    println!("cargo:rerun-if-env-changed=FERROVISOR_PROFILE_MARKERS");
    if std::env::var("FERROVISOR_PROFILE_MARKERS").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-cfg=ferrovisor_profile_markers");
    }
}
