//! Digests of workspace trees that name exactly their content: a build's
//! declared output and the materialised source, read beneath the workspace
//! without following a symlink, bounded.

use std::path::Path;

use cairn_evidence::{Digest, Sha256Hasher};

use super::stages::HOME_DIR;
use crate::EngineError;

/// Bounds on what the engine reads of a workspace: the tree of a build output or
/// a source checkout (entries, depth, path length) and the bytes it hashes.
const WORKSPACE_LIMITS: cairn_fs::WalkLimits = cairn_fs::WalkLimits {
    max_entries: 1_000_000,
    max_depth: 128,
    max_path_len: 4096,
};
/// The most bytes hashed from one workspace tree (the same as an image layer).
const MAX_TREE_BYTES: u64 = 16 << 30;

/// SHA-256 of the declared output `rel` beneath the workspace: a regular file's
/// bytes, or [`tree_digest`] of a directory. Resolved without following any
/// symlink (not even as the output itself); anything but a regular file or a
/// directory is refused without being opened (see `cairn_fs`).
pub(super) fn artifact_digest(workspace: &cairn_fs::Dir, rel: &str) -> Result<Digest, EngineError> {
    match workspace.open_beneath(rel)? {
        cairn_fs::Node::Dir(dir) => tree_digest(&dir),
        cairn_fs::Node::File(mut file) => {
            let mut hasher = Sha256Hasher::new();
            let mut budget = MAX_TREE_BYTES;
            hash_file(&mut file, &mut hasher, &mut budget)?;
            Ok(hasher.finish())
        }
    }
}

/// Hashes an opened regular file, at most `budget` bytes in all (what is left is
/// handed back).
fn hash_file(
    file: &mut cairn_fs::File,
    hasher: &mut Sha256Hasher,
    budget: &mut u64,
) -> Result<(), EngineError> {
    use std::io::Read;
    let too_large = |path: &Path| cairn_fs::FsError::Limit {
        path: path.to_path_buf(),
        what: "bytes hashed in one workspace tree",
        max: MAX_TREE_BYTES,
    };
    if file.meta().len > *budget {
        return Err(too_large(file.path()).into());
    }
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(EngineError::io("read", file.path()))?;
        if n == 0 {
            return Ok(());
        }
        *budget = budget
            .checked_sub(n as u64)
            .ok_or_else(|| too_large(file.path()))?;
        hasher.update(&buf[..n]);
    }
}

/// A digest of a directory tree that names exactly its content: for every entry in
/// byte order of its relative path, `d <path>`, `f <exec 0|1> <sha256> <path>` or
/// `l <target> <path>`, each line ending in `\n`. Symlinks are never followed;
/// a FIFO, socket or device anywhere is refused (never opened); cairn's `.home`
/// (the steps' HOME) is left out; the walk and the bytes hashed are bounded.
pub(super) fn tree_digest(root: &cairn_fs::Dir) -> Result<Digest, EngineError> {
    let mut tree = Sha256Hasher::new();
    let mut budget = MAX_TREE_BYTES;
    for entry in cairn_fs::walk(root, WORKSPACE_LIMITS, &[HOME_DIR])? {
        match entry.meta.kind {
            cairn_fs::Kind::Dir => tree.update(b"d "),
            cairn_fs::Kind::Symlink => {
                let target = root.read_link_beneath(entry.rel_path())?;
                tree.update(b"l ");
                tree.update(target.as_os_str().as_encoded_bytes());
                tree.update(b" ");
            }
            cairn_fs::Kind::File => {
                let mut file = root.file_beneath(entry.rel_path())?;
                let mut hasher = Sha256Hasher::new();
                hash_file(&mut file, &mut hasher, &mut budget)?;
                let exec = if file.meta().mode & 0o111 != 0 {
                    "1"
                } else {
                    "0"
                };
                tree.update(format!("f {exec} {} ", hasher.finish().hex()).as_bytes());
            }
            other => {
                return Err(cairn_fs::FsError::Special {
                    path: root.path().join(entry.rel_path()),
                    kind: other.name(),
                }
                .into());
            }
        }
        tree.update(&entry.rel);
        tree.update(b"\n");
    }
    Ok(tree.finish())
}

/// Files (anything not a directory) and their bytes, as `lstat` sees them.
pub(super) fn tree_size(root: &cairn_fs::Dir) -> Result<(u64, u64), EngineError> {
    let (mut files, mut bytes) = (0, 0);
    for entry in cairn_fs::walk(root, WORKSPACE_LIMITS, &[])? {
        if !entry.meta.is_dir() {
            files += 1;
            bytes += entry.meta.len;
        }
    }
    Ok((files, bytes))
}
