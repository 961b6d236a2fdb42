//! Signed bundles (evidence) about artifacts, by run and by subject digest.

use cairn_model::{EvidenceRecord, NewEvidence, RunId};

use crate::StoreError;

/// The largest bundle [`EvidenceStore::add_evidence`] keeps.
pub const MAX_EVIDENCE_BYTES: usize = 16 << 20;

/// Signed bundles about artifacts.
///
/// Every method is one transaction (see [`Store`](crate::Store)).
pub trait EvidenceStore {
    /// Keeps a signed bundle about an artifact; returns its id. The run and stage,
    /// when given, must exist (and the stage must be the run's). Bundles larger than
    /// [`MAX_EVIDENCE_BYTES`] are refused.
    fn add_evidence(&self, evidence: &NewEvidence) -> Result<i64, StoreError>;

    /// The evidence a run produced, oldest first.
    fn evidence_for_run(&self, run: RunId) -> Result<Vec<EvidenceRecord>, StoreError>;

    /// The evidence about one artifact (`<algorithm>:<hex>`), oldest first.
    fn evidence_for_subject(&self, digest: &str) -> Result<Vec<EvidenceRecord>, StoreError>;
}
