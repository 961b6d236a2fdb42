//! Inclusion and consistency proof generation (RFC 9162 §2.1.3.1 and
//! §2.1.4.1) over any source of complete-subtree hashes.

use crate::merkle::{self, Hash, ProofError};

/// A complete (perfect) subtree: the hash of leaves
/// `[index · 2^level, (index + 1) · 2^level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

/// A source of complete-subtree hashes, e.g. tiles on disk or in memory.
pub trait HashReader {
    type Error;
    /// The hashes of `nodes`, in the same order.
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

/// Why a proof could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ProveError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("cannot read tree hashes")]
    Read(#[source] E),
    #[error("the hash source returned {got} hashes for {want} nodes")]
    ShortRead { got: usize, want: usize },
}

/// The complete subtrees that make up leaves `[lo, hi)`, left to right,
/// for a range that starts on a boundary of its size's largest power of two
/// (as every range in RFC 9162's recursive definitions does).
fn decompose(mut lo: u64, hi: u64, out: &mut Vec<NodeId>) {
    while lo < hi {
        let mut level = if lo == 0 { 63 } else { lo.trailing_zeros() };
        while level > 0 && (1u64 << level) > hi - lo {
            level -= 1;
        }
        out.push(NodeId {
            level,
            index: lo >> level,
        });
        lo += 1u64 << level;
    }
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// PATH(m, D[lo:hi]) of §2.1.3.1, as ranges, deepest first.
fn inclusion_ranges(m: u64, lo: u64, hi: u64, out: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        inclusion_ranges(m, lo, lo + k, out);
        out.push((lo + k, hi));
    } else {
        inclusion_ranges(m - k, lo + k, hi, out);
        out.push((lo, lo + k));
    }
}

/// SUBPROOF(m, D[lo:hi], b) of §2.1.4.1, as ranges.
fn consistency_ranges(m: u64, lo: u64, hi: u64, b: bool, out: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if m == n {
        if !b {
            out.push((lo, hi));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        consistency_ranges(m, lo, lo + k, b, out);
        out.push((lo + k, hi));
    } else {
        consistency_ranges(m - k, lo + k, hi, false, out);
        out.push((lo, lo + k));
    }
}

fn hash_ranges<R>(reader: &R, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, ProveError<R::Error>>
where
    R: HashReader,
    R::Error: std::error::Error + 'static,
{
    let mut nodes = Vec::new();
    let mut spans = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges {
        let start = nodes.len();
        decompose(lo, hi, &mut nodes);
        spans.push(start..nodes.len());
    }
    let hashes = reader.read_hashes(&nodes).map_err(ProveError::Read)?;
    if hashes.len() != nodes.len() {
        return Err(ProveError::ShortRead {
            got: hashes.len(),
            want: nodes.len(),
        });
    }
    Ok(spans
        .into_iter()
        .map(|span| {
            merkle::fold_right(hashes[span].iter().copied()).unwrap_or_else(merkle::empty_root)
        })
        .collect())
}

/// The inclusion proof of leaf `index` in the tree of `tree_size`
/// (RFC 9162 §2.1.3.1).
pub fn inclusion_proof<R>(
    reader: &R,
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, ProveError<R::Error>>
where
    R: HashReader,
    R::Error: std::error::Error + 'static,
{
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, tree_size }.into());
    }
    let mut ranges = Vec::new();
    inclusion_ranges(index, 0, tree_size, &mut ranges);
    hash_ranges(reader, &ranges)
}

/// The consistency proof between sizes `old_size ≤ new_size`
/// (RFC 9162 §2.1.4.1). Equal sizes give the empty proof.
pub fn consistency_proof<R>(
    reader: &R,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, ProveError<R::Error>>
where
    R: HashReader,
    R::Error: std::error::Error + 'static,
{
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size }.into());
    }
    if old_size == new_size {
        return Ok(Vec::new());
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree.into());
    }
    let mut ranges = Vec::new();
    consistency_ranges(old_size, 0, new_size, true, &mut ranges);
    hash_ranges(reader, &ranges)
}

/// MTH of the first `tree_size` leaves, from complete-subtree hashes.
pub fn tree_root<R>(reader: &R, tree_size: u64) -> Result<Hash, ProveError<R::Error>>
where
    R: HashReader,
    R::Error: std::error::Error + 'static,
{
    if tree_size == 0 {
        return Ok(merkle::empty_root());
    }
    Ok(hash_ranges(reader, &[(0, tree_size)])?
        .pop()
        .unwrap_or_else(merkle::empty_root))
}

/// A [`HashReader`] over leaf hashes held in memory (tests, small trees).
#[derive(Debug, Clone, Copy)]
pub struct LeafHashes<'a>(pub &'a [Hash]);

/// A node asked of [`LeafHashes`] lies beyond its leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("node at level {level}, index {index} is beyond the leaves")]
pub struct OutOfLeaves {
    pub level: u32,
    pub index: u64,
}

impl HashReader for LeafHashes<'_> {
    type Error = OutOfLeaves;

    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, OutOfLeaves> {
        nodes
            .iter()
            .map(|n| {
                let err = OutOfLeaves {
                    level: n.level,
                    index: n.index,
                };
                let lo = usize::try_from(n.index << n.level).map_err(|_| err)?;
                let hi = lo.checked_add(1usize << n.level).ok_or(err)?;
                let leaves = self.0.get(lo..hi).ok_or(err)?;
                Ok(merkle::root_from_leaves(leaves))
            })
            .collect()
    }
}
