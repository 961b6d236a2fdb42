//! The transparency log's pure core: RFC 9162 Merkle trees and proofs, C2SP
//! tlog-tiles, checkpoints and signed notes.
//!
//! Floor 1: no I/O, no clock, no randomness. Storage is reached through the
//! [`proof::HashReader`] trait (or [`tiles::TileReader`] over a tile fetch
//! function); keys are handed in as seeds.

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod tiles;
pub mod untrusted;

#[cfg(test)]
mod tests;
