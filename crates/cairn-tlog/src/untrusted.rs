//! Proof verification over untrusted byte strings, as they arrive in JSON
//! (Rekor, test vectors): hashes of the wrong length are rejected, never
//! truncated or padded. Semantics follow transparency-dev/merkle's
//! `proof.VerifyInclusion` / `proof.VerifyConsistency`.

use crate::merkle::{self, Hash, ProofError};

/// One 32-byte hash from untrusted bytes.
pub fn hash(bytes: &[u8]) -> Result<Hash, ProofError> {
    bytes
        .try_into()
        .map_err(|_| ProofError::BadHashLength { len: bytes.len() })
}

fn hashes<B: AsRef<[u8]>>(proof: &[B]) -> Result<Vec<Hash>, ProofError> {
    proof.iter().map(|p| hash(p.as_ref())).collect()
}

/// [`merkle::verify_inclusion`] over untrusted bytes.
pub fn verify_inclusion<B: AsRef<[u8]>>(
    leaf: &[u8],
    index: u64,
    tree_size: u64,
    proof: &[B],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, tree_size });
    }
    merkle::verify_inclusion(
        &hash(leaf)?,
        index,
        tree_size,
        &hashes(proof)?,
        &hash(root)?,
    )
}

/// [`merkle::verify_consistency`] over untrusted bytes. For equal non-zero
/// sizes the roots are compared as given (the proof must be empty), like
/// the reference implementation.
pub fn verify_consistency<B: AsRef<[u8]>>(
    old_size: u64,
    new_size: u64,
    old_root: &[u8],
    new_root: &[u8],
    proof: &[B],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == new_size && old_size != 0 {
        if !proof.is_empty() || old_root != new_root {
            return Err(ProofError::EqualSizesMismatch);
        }
        return Ok(());
    }
    merkle::verify_consistency(
        old_size,
        new_size,
        &hash(old_root)?,
        &hash(new_root)?,
        &hashes(proof)?,
    )
}
