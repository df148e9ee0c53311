//! Where things are: the repository root and the build output folders.

use std::path::PathBuf;

/// The workspace root (the parent of xtask/).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The folder for xtask's outputs: target/ferrovisor.
pub fn out() -> PathBuf {
    root().join("target").join("ferrovisor")
}

/// Where built or downloaded guest images live (bundle names resolve here).
pub fn images() -> PathBuf {
    out().join("images")
}
