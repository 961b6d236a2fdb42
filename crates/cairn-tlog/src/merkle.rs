//! RFC 9162 Merkle tree hashing and proof verification (§2.1).
//!
//! Hashes are SHA-256 (through `aws-lc-rs`). Leaves and interior nodes are
//! domain-separated by a one-byte prefix (§2.1.1), so a leaf can never be
//! passed off as a node.

use aws_lc_rs::digest::{self, SHA256};

/// A SHA-256 hash: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// Why a proof did not verify, or could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below the tree size {tree_size}")]
    IndexOutOfRange { index: u64, tree_size: u64 },
    #[error("the proof has {got} hashes; a proof for this position needs {want}")]
    WrongProofLength { got: usize, want: usize },
    #[error("the proof leads to a root that is not the expected one")]
    RootMismatch,
    #[error("the old tree size {old_size} is larger than the new size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    EmptyOldTree,
    #[error("the trees have the same size, so the proof must be empty and the roots equal")]
    EqualSizesMismatch,
    #[error("a hash in the proof is {len} bytes long, not 32")]
    BadHashLength { len: usize },
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = digest::Context::new(&SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The hash of a leaf: SHA-256(0x00 || data) (RFC 9162 §2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// The hash of an interior node: SHA-256(0x01 || left || right) (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// MTH(D[n]), the Merkle tree hash of a list of leaf hashes (RFC 9162 §2.1.1).
///
/// Computed bottom-up with a stack of perfect subtrees, so it needs
/// O(log n) memory beyond the input and no recursion.
pub fn root_from_leaves(leaf_hashes: &[Hash]) -> Hash {
    let mut stack: Vec<(u32, Hash)> = Vec::new();
    for leaf in leaf_hashes {
        let mut level = 0u32;
        let mut hash = *leaf;
        while let Some(&(top_level, top)) = stack.last() {
            if top_level != level {
                break;
            }
            stack.pop();
            hash = node_hash(&top, &hash);
            level += 1;
        }
        stack.push((level, hash));
    }
    fold_right(stack.iter().map(|(_, h)| *h)).unwrap_or_else(empty_root)
}

/// Combines perfect subtree roots, largest (leftmost) first, into one root:
/// each subtree is the left child of the hash of everything to its right.
pub(crate) fn fold_right(hashes: impl DoubleEndedIterator<Item = Hash>) -> Option<Hash> {
    let mut acc: Option<Hash> = None;
    for h in hashes.rev() {
        acc = Some(match acc {
            None => h,
            Some(right) => node_hash(&h, &right),
        });
    }
    acc
}

/// The number of hashes in an inclusion proof for `index` in a tree of `size`
/// (the inner part, below the largest complete subtree boundary, plus the
/// border part of the right edge).
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = (index >> inner).count_ones();
    (inner + border) as usize
}

/// The root that an inclusion proof leads to (RFC 9162 §2.1.3.2, steps 1–4
/// without the final comparison with a known root).
pub fn root_from_inclusion_proof(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, tree_size });
    }
    let want = inclusion_proof_len(index, tree_size);
    if proof.len() != want {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    // §2.1.3.2: fn = leaf_index, sn = tree_size - 1, r = hash.
    let mut fnode = index;
    let mut snode = tree_size - 1;
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongProofLength {
                got: proof.len(),
                want,
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    Ok(r)
}

/// Verifies that `leaf` is at `index` in the tree of `tree_size` with `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf, index, tree_size, proof)?;
    if &computed == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies that the tree of `new_size` with `new_root` extends the tree of
/// `old_size` with `old_root` (RFC 9162 §2.1.4.2).
///
/// Edge cases follow the reference implementation (transparency-dev/merkle):
/// equal sizes need an empty proof and equal roots (and for size 0 the root of
/// the empty tree); a proof from the empty tree to a larger one is rejected
/// as meaningless.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == new_size {
        let empty_ok = old_size != 0 || *old_root == empty_root();
        if !proof.is_empty() || old_root != new_root || !empty_ok {
            return Err(ProofError::EqualSizesMismatch);
        }
        return Ok(());
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    // Step 1: if `first` is an exact power of two, prepend `first_hash`.
    // Rather than build a new vector we track the "seed" separately.
    let mut fnode = old_size - 1;
    let mut snode = new_size - 1;
    // Step 3: shift both right while LSB(fn) is set.
    let shift = fnode.trailing_ones();
    fnode >>= shift;
    snode >>= shift;
    let (seed, rest) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => {
                return Err(ProofError::WrongProofLength { got: 0, want: 1 });
            }
        }
    };
    let want = consistency_proof_len(old_size, new_size);
    if proof.len() != want {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    // Step 4: fr = sr = first hash of the path.
    let mut fr = seed;
    let mut sr = seed;
    // Step 5.
    for c in rest {
        if snode == 0 {
            return Err(ProofError::WrongProofLength {
                got: proof.len(),
                want,
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 6.
    if snode != 0 {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The number of hashes in a consistency proof between two sizes,
/// `0 < old_size < new_size`.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    // The common prefix of (old-1) and (new-1) in the tree decides the split.
    let level = old_size.trailing_zeros();
    let index = (old_size - 1) >> level;
    let end = (new_size - 1) >> level;
    let inner = 64 - (index ^ end).leading_zeros();
    let border = (index >> inner).count_ones();
    // When old_size is a power of two (index == 0 after the shift) the old
    // root is the seed and is not sent.
    let seed = usize::from(index != 0);
    seed + (inner + border) as usize
}
