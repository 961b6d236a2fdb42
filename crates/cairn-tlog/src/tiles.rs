//! The C2SP tlog-tiles layout (<https://c2sp.org/tlog-tiles>): which tile
//! holds which hash, tile and entry-bundle paths, and entry bundles.
//!
//! Tiles have height 8 and width 256: a tile at level `L` holds up to 256
//! consecutive hashes of tree level `8·L` (level 0 holds leaf hashes). A tile
//! that is not yet full is a partial tile of width `W`, served at
//! `<path>.p/<W>` (tlog-tiles §Merkle Tree).

use crate::merkle::{self, Hash};
use crate::proof::{HashReader, NodeId};

/// Tree levels per tile (tlog-tiles §Merkle Tree).
pub const TILE_HEIGHT: u32 = 8;
/// Hashes (or entries) per full tile (tlog-tiles §Merkle Tree).
pub const TILE_WIDTH: u64 = 256;
/// The largest entry an entry bundle can hold (a big-endian uint16 length).
pub const MAX_ENTRY_BYTES: usize = u16::MAX as usize;

/// Why a tile or bundle was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("a tile of width {width} must be {want} bytes, got {got}")]
    TileSize { width: u64, want: usize, got: usize },
    #[error("an entry of {0} bytes does not fit an entry bundle (max 65535)")]
    EntryTooLarge(usize),
    #[error("the entry bundle is truncated or has trailing bytes")]
    MalformedBundle,
    #[error("the entry bundle holds {got} entries, expected {want}")]
    BundleCount { got: usize, want: u64 },
    #[error("`{0}` is not a tile path")]
    BadPath(String),
}

/// The `<N>` path element: the index in decimal, zero-padded to a multiple
/// of three digits, split in groups of three, all but the last prefixed with
/// `x` (tlog-tiles §Merkle Tree): 1234067 → `x001/x234/067`.
pub fn encode_index(n: u64) -> String {
    let digits = n.to_string();
    let pad = (3 - digits.len() % 3) % 3;
    let padded = format!("{}{}", "0".repeat(pad), digits);
    let groups: Vec<&str> = padded
        .as_bytes()
        .chunks(3)
        .map(|c| std::str::from_utf8(c).unwrap_or("000"))
        .collect();
    let last = groups.len() - 1;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if i < last {
                format!("x{g}")
            } else {
                (*g).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn suffix(width: u64) -> String {
    if width < TILE_WIDTH {
        format!(".p/{width}")
    } else {
        String::new()
    }
}

/// The path of a hash tile: `tile/<L>/<N>[.p/<W>]`.
pub fn tile_path(level: u8, index: u64, width: u64) -> String {
    format!("tile/{level}/{}{}", encode_index(index), suffix(width))
}

/// The path of an entry bundle: `tile/entries/<N>[.p/<W>]`.
pub fn entries_path(index: u64, width: u64) -> String {
    format!("tile/entries/{}{}", encode_index(index), suffix(width))
}

/// A tile named by a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilePath {
    Hashes { level: u8, index: u64, width: u64 },
    Entries { index: u64, width: u64 },
}

/// Parses a tile or entry-bundle path, strictly (canonical form only).
pub fn parse_path(path: &str) -> Result<TilePath, TileError> {
    let bad = || TileError::BadPath(path.to_owned());
    let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
    let (level, rest) = rest.split_once('/').ok_or_else(bad)?;
    let (index_part, width) = match rest.split_once(".p/") {
        Some((i, w)) => {
            let w = crate::checkpoint::parse_decimal(w).ok_or_else(bad)?;
            if w == 0 || w >= TILE_WIDTH {
                return Err(bad());
            }
            (i, w)
        }
        None => (rest, TILE_WIDTH),
    };
    let mut index: u64 = 0;
    let groups: Vec<&str> = index_part.split('/').collect();
    for (i, g) in groups.iter().enumerate() {
        let digits = if i + 1 < groups.len() {
            g.strip_prefix('x').ok_or_else(bad)?
        } else {
            g
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let d: u64 = digits.parse().map_err(|_| bad())?;
        index = index
            .checked_mul(1000)
            .and_then(|x| x.checked_add(d))
            .ok_or_else(bad)?;
    }
    if encode_index(index) != index_part {
        return Err(bad());
    }
    if level == "entries" {
        return Ok(TilePath::Entries { index, width });
    }
    let level: u8 = crate::checkpoint::parse_decimal(level)
        .and_then(|l| u8::try_from(l).ok())
        .filter(|l| *l <= 63 / TILE_HEIGHT as u8)
        .ok_or_else(bad)?;
    Ok(TilePath::Hashes {
        level,
        index,
        width,
    })
}

/// The width of tile `index` at tile level `level` in a tree of `tree_size`,
/// or `None` if the tree has no hash in it yet. Entry bundles have the
/// widths of the level-0 tiles.
pub fn tile_width(level: u8, index: u64, tree_size: u64) -> Option<u64> {
    let shift = TILE_HEIGHT * u32::from(level);
    let count = if shift >= 64 { 0 } else { tree_size >> shift };
    let start = index.checked_mul(TILE_WIDTH)?;
    if count <= start {
        return None;
    }
    Some((count - start).min(TILE_WIDTH))
}

/// Where a complete subtree's hash lives: the tile, and the run of
/// level-`8·L` hashes inside it whose perfect-tree root it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInTile {
    pub tile_level: u8,
    pub tile_index: u64,
    /// The first hash of the run, within the tile.
    pub offset: usize,
    /// How many hashes (a power of two, at most 128 unless the node is at
    /// the tile's level boundary, where it is 1).
    pub count: usize,
}

/// Locates node `node` (tree level, index) in the tiles.
pub fn locate(node: NodeId) -> NodeInTile {
    let tile_level = (node.level / TILE_HEIGHT) as u8;
    let r = node.level % TILE_HEIGHT;
    let first = node.index << r;
    NodeInTile {
        tile_level,
        tile_index: first / TILE_WIDTH,
        offset: (first % TILE_WIDTH) as usize,
        count: 1usize << r,
    }
}

/// Parses a hash tile of `width` hashes.
pub fn parse_tile(data: &[u8], width: u64) -> Result<Vec<Hash>, TileError> {
    let want = width as usize * 32;
    if data.len() != want {
        return Err(TileError::TileSize {
            width,
            want,
            got: data.len(),
        });
    }
    Ok(data
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// Serialises hashes as a tile: the concatenated 32-byte hashes.
pub fn encode_tile(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

/// Serialises entries as an entry bundle: each a big-endian uint16 length
/// then the bytes (tlog-tiles §Log Entries).
pub fn encode_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::new();
    for e in entries {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge(e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Parses an entry bundle that must hold exactly `width` entries.
pub fn parse_bundle(data: &[u8], width: u64) -> Result<Vec<Vec<u8>>, TileError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(TileError::MalformedBundle);
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        if rest.len() < len {
            return Err(TileError::MalformedBundle);
        }
        out.push(rest[..len].to_vec());
        rest = &rest[len..];
        if out.len() as u64 > width {
            return Err(TileError::BundleCount {
                got: out.len(),
                want: width,
            });
        }
    }
    if out.len() as u64 != width {
        return Err(TileError::BundleCount {
            got: out.len(),
            want: width,
        });
    }
    Ok(out)
}

/// A [`HashReader`] over tiles for a tree of a fixed size: `fetch(level,
/// index, width)` returns the tile's hashes (e.g. read from `tile_path`).
#[derive(Debug)]
pub struct TileReader<F> {
    tree_size: u64,
    fetch: F,
}

impl<F> TileReader<F> {
    pub fn new(tree_size: u64, fetch: F) -> Self {
        TileReader { tree_size, fetch }
    }
}

/// Why a tile-backed hash read failed.
#[derive(Debug, thiserror::Error)]
pub enum TileReadError<E: std::error::Error + 'static> {
    #[error("node at level {level}, index {index} is not in the tree")]
    NotInTree { level: u32, index: u64 },
    #[error("a tile holds fewer hashes than its width says")]
    ShortTile,
    #[error("cannot read tile")]
    Fetch(#[source] E),
}

impl<F, E> HashReader for TileReader<F>
where
    F: Fn(u8, u64, u64) -> Result<Vec<Hash>, E>,
    E: std::error::Error + 'static,
{
    type Error = TileReadError<E>;

    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        let mut cache: std::collections::HashMap<(u8, u64), Vec<Hash>> =
            std::collections::HashMap::new();
        let mut out = Vec::with_capacity(nodes.len());
        for &node in nodes {
            let loc = locate(node);
            let not_in_tree = || TileReadError::NotInTree {
                level: node.level,
                index: node.index,
            };
            let width = tile_width(loc.tile_level, loc.tile_index, self.tree_size)
                .ok_or_else(not_in_tree)?;
            if (loc.offset + loc.count) as u64 > width {
                return Err(not_in_tree());
            }
            let key = (loc.tile_level, loc.tile_index);
            let tile = match cache.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    (self.fetch)(loc.tile_level, loc.tile_index, width)
                        .map_err(TileReadError::Fetch)?,
                ),
            };
            let run = tile
                .get(loc.offset..loc.offset + loc.count)
                .ok_or(TileReadError::ShortTile)?;
            out.push(merkle::root_from_leaves(run));
        }
        Ok(out)
    }
}
