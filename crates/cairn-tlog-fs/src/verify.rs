//! Verifying a log directory from scratch: recompute every leaf hash from
//! the entry bundles, every tile from the level below, and the root, and
//! compare with what is stored and with the checkpoint — including every
//! older partial tile and bundle still on disk (the tile server serves them
//! all, so each must be a prefix of the tile it grew into).

use std::path::Path;

use cairn_tlog::checkpoint::{self, Checkpoint};
use cairn_tlog::merkle::{self, Hash};
use cairn_tlog::note::Verifier;
use cairn_tlog::tiles::{self, TILE_WIDTH};

use crate::log::{LogError, ReadError, read_bundle, read_tile};

/// One thing wrong with a log directory.
#[derive(Debug)]
pub enum Problem {
    /// A tile or bundle the checkpoint needs is missing or malformed.
    Unreadable(ReadError),
    /// A stored tile differs from the one recomputed from the entries.
    TileMismatch { path: String },
    /// The recomputed root differs from the checkpoint's.
    RootMismatch { computed: Hash, checkpoint: Hash },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unreadable(e) => {
                write!(f, "{e}")?;
                if let Some(source) = std::error::Error::source(e) {
                    write!(f, ": {source}")?;
                }
                Ok(())
            }
            Problem::TileMismatch { path } => {
                write!(f, "{path} does not match the entries it is computed from")
            }
            Problem::RootMismatch { .. } => {
                write!(f, "the entries do not hash to the checkpoint's root")
            }
        }
    }
}

/// The result of [`verify`]: the checkpoint checked and what is wrong (a
/// finding, not an error: `problems` empty means the log is intact).
#[derive(Debug)]
pub struct VerifyReport {
    pub checkpoint: Checkpoint,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the log in `dir` against its `checkpoint` file, whose
/// signature must verify with one of `verifiers` under `origin`.
pub fn verify(dir: &Path, origin: &str, verifiers: &[Verifier]) -> Result<VerifyReport, LogError> {
    let path = dir.join("checkpoint");
    let signed = std::fs::read(&path).map_err(|source| ReadError::Io { path, source })?;
    let opened = checkpoint::open(&signed, origin, verifiers)?;
    Ok(verify_against(dir, &opened.checkpoint))
}

/// Verifies that the tiles and bundles in `dir` for `checkpoint.size` are
/// intact and hash to `checkpoint.root` (the checkpoint may be an older
/// one the caller kept and verified).
pub fn verify_against(dir: &Path, checkpoint: &Checkpoint) -> VerifyReport {
    let size = checkpoint.size;
    let mut problems = Vec::new();
    // Level 0 from the entry bundles.
    let mut level_hashes: Vec<Hash> = Vec::new();
    let bundles = size.div_ceil(TILE_WIDTH);
    for index in 0..bundles {
        let width = tiles::tile_width(0, index, size).unwrap_or(0);
        match read_bundle(dir, index, width) {
            Ok(entries) => {
                // Older partial bundles are served too: each must be a prefix.
                for older in older_partials(dir, &tiles::entries_path(index, 1), width) {
                    match read_bundle(dir, index, older) {
                        Ok(stored) if stored[..] == entries[..older as usize] => {}
                        Ok(_) => problems.push(Problem::TileMismatch {
                            path: tiles::entries_path(index, older),
                        }),
                        Err(e) => problems.push(Problem::Unreadable(e)),
                    }
                }
                level_hashes.extend(entries.iter().map(|e| merkle::leaf_hash(e)));
            }
            Err(e) => {
                problems.push(Problem::Unreadable(e));
                return VerifyReport {
                    checkpoint: checkpoint.clone(),
                    problems,
                };
            }
        }
    }
    let root = merkle::root_from_leaves(&level_hashes);
    if root != checkpoint.root {
        problems.push(Problem::RootMismatch {
            computed: root,
            checkpoint: checkpoint.root,
        });
    }
    // Every stored tile against the recomputed hashes, level by level.
    let mut level: u8 = 0;
    while !level_hashes.is_empty() {
        let mut above = Vec::new();
        for (index, chunk) in level_hashes.chunks(TILE_WIDTH as usize).enumerate() {
            let index = index as u64;
            let width = chunk.len() as u64;
            match read_tile(dir, level, index, width) {
                Ok(stored) if stored == chunk => {}
                Ok(_) => problems.push(Problem::TileMismatch {
                    path: tiles::tile_path(level, index, width),
                }),
                Err(e) => problems.push(Problem::Unreadable(e)),
            }
            // Every older partial tile still served must be a prefix of it.
            for older in older_partials(dir, &tiles::tile_path(level, index, 1), width) {
                match read_tile(dir, level, index, older) {
                    Ok(stored) if stored[..] == chunk[..older as usize] => {}
                    Ok(_) => problems.push(Problem::TileMismatch {
                        path: tiles::tile_path(level, index, older),
                    }),
                    Err(e) => problems.push(Problem::Unreadable(e)),
                }
            }
            if width == TILE_WIDTH {
                above.push(merkle::root_from_leaves(chunk));
            }
        }
        level_hashes = above;
        level += 1;
    }
    VerifyReport {
        checkpoint: checkpoint.clone(),
        problems,
    }
}

/// The widths below `width` of the partial tiles stored in the `.p/`
/// directory that `partial_of_one` (the tile's path at width 1) is in, as the
/// tile server would serve them (canonical names only), in order.
fn older_partials(dir: &Path, partial_of_one: &str, width: u64) -> Vec<u64> {
    let path = dir.join(partial_of_one);
    let Some(parent) = path.parent() else {
        return Vec::new();
    };
    let Ok(listing) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut widths: Vec<u64> = listing
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let w: u64 = name.parse().ok()?;
            (w.to_string() == name && w > 0 && w < width.min(TILE_WIDTH)).then_some(w)
        })
        .collect();
    widths.sort_unstable();
    widths
}
