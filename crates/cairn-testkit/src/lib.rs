//! Test support shared by cairn's crates (a dev-dependency only): where the
//! external conformance material is (`../shared/conformance`, see its README).

use std::path::{Path, PathBuf};

/// The conformance folder: `$CAIRN_CONFORMANCE_DIR`, or `../shared/conformance`
/// beside the workspace. A relative `CAIRN_CONFORMANCE_DIR` (CI's
/// `../shared/conformance`) is taken from the working directory, else from the
/// workspace root, since tests run in their crate's folder. Panics when the folder
/// is missing: a conformance test never passes by skipping.
pub fn conformance_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = match std::env::var_os("CAIRN_CONFORMANCE_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_relative() && !d.is_dir() {
                workspace.join(d)
            } else {
                d
            }
        }
        None => workspace.join("../shared/conformance"),
    };
    assert!(
        dir.join("README.md").is_file(),
        "conformance material not found at {} (set CAIRN_CONFORMANCE_DIR)",
        dir.display()
    );
    dir
}

/// `part` inside the conformance folder; panics when it is missing.
pub fn conformance(part: &str) -> PathBuf {
    let path = conformance_dir().join(part);
    assert!(
        path.exists(),
        "conformance material missing: {}",
        path.display()
    );
    path
}
