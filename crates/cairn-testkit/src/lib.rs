//! Test support shared by cairn's crates (a dev-dependency only): where the
//! external conformance material is (`../shared/conformance`, see its README),
//! the pinned root filesystem, and the test harnesses' git and file helpers
//! (one copy, not one per harness).

pub mod http_recorder;
pub mod pg;
pub mod smtp_server;

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

/// A fixed root filesystem whose image digests are pinned in
/// [`PINNED_LAYER_DIGEST`] and [`PINNED_IMAGE_DIGEST`]: `cairn-oci`'s tests and
/// the binary's both import it (as `import_rootfs(…, 0)` / `cairn base import`)
/// and compare, so a dependency change that moves the bytes of a layer (the gzip
/// backend, the tar writer) fails a test instead of silently moving every digest.
/// Contents, modes and a symlink only; mtimes and owners are normalised by the
/// layer writer, so they need not be set here.
pub fn pinned_rootfs(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let write = |rel: &str, bytes: &[u8], mode: u32| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    write(
        "etc/os-release",
        b"ID=cairn-pinned\nVERSION_ID=1\nPRETTY_NAME=\"cairn pinned fixture\"\n",
        0o644,
    );
    write("usr/bin/hello", b"#!/bin/sh\necho hello\n", 0o755);
    // Enough repetitive and varied text that the deflate encoder's choices
    // (matches, block splits) show in the output bytes.
    let text: String = (0..2000)
        .map(|i| format!("line {i} of the pinned fixture: {}\n", i * 7919 % 1013))
        .collect();
    write("usr/share/doc/pinned.txt", text.as_bytes(), 0o644);
    std::os::unix::fs::symlink("usr/bin", dir.join("bin")).expect("symlink");
}

/// The layer digest (compressed blob) of [`pinned_rootfs`] imported at epoch 0.
pub const PINNED_LAYER_DIGEST: &str =
    "sha256:172ac71ffb504f6527ca0257b9f5648636284d3cddc7e5bb8b3e22bc4229c398";
/// The manifest digest of [`pinned_rootfs`] imported at epoch 0.
pub const PINNED_IMAGE_DIGEST: &str =
    "sha256:83820c8540b33f9f20ea6bccd6958017f2218bbd88730b81f049cf8df9a0e7a9";

/// `git ARGS` in `dir` as a test's person would run it: a fixed author and
/// committer, none of the machine's or the user's git configuration; panics
/// with git's stderr when it fails. Returns its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Test Author",
            "-c",
            "user.email=author@example.invalid",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run git: {e}"));
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies the tree `src` into `dst` (which exists): directories and regular
/// files; panics on anything else or any error.
pub fn copy_dir(src: &Path, dst: &Path) {
    let entries = std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let to = dst.join(entry.file_name());
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
        if kind.is_dir() {
            std::fs::create_dir_all(&to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to)
                .unwrap_or_else(|e| panic!("{} → {}: {e}", entry.path().display(), to.display()));
        }
    }
}
