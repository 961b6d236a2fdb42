//! Images as cairn records them: the base-image catalog and the images built by
//! runs (their manifest digests are what gets tested, signed and deployed).

use crate::RunId;

/// One entry of the base-image catalog: a base that passed the catalog's gate.
/// A name may have several entries over time; the newest is the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRecord {
    pub name: String,
    /// The manifest digest, `sha256:…`.
    pub digest: String,
    /// Where it came from: `rootfs:PATH`, `oci:DIR[:REF]` or a registry reference.
    pub source: String,
    pub imported_at_ms: i64,
    /// Components in its SBOM (OS packages and any lockfiles).
    pub packages: u64,
    /// Known vulnerabilities found when it entered the catalog.
    pub vulnerabilities: u64,
}

/// An image built (or rebased) by cairn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The manifest digest, `sha256:…`.
    pub digest: String,
    pub workload: String,
    /// The run that built it (none for a rebase made outside a run).
    pub run: Option<RunId>,
    pub commit: String,
    pub base_name: String,
    pub base_digest: String,
    pub created_at_ms: i64,
    /// For a rebase: the image it was rebased from.
    pub rebased_from: Option<String>,
}
