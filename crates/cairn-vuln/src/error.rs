//! The crate's error type: a record could not be read, or a match could not be
//! evaluated. Findings are not errors.

use crate::version::VersionError;

/// Why a record could not be read or a package could not be evaluated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record is larger than [`crate::osv::MAX_RECORD_BYTES`].
    #[error("OSV record is {len} bytes, over the {max}-byte limit")]
    RecordTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not JSON of the OSV shape.
    #[error("OSV record is not valid JSON of the OSV schema")]
    Json(#[source] serde_json::Error),
    /// A field breaks the OSV schema or one of cairn's bounds.
    #[error("OSV record {id:?}: {field}: {reason}")]
    InvalidRecord {
        /// The record's id, when it was read.
        id: Option<String>,
        /// The JSON path of the field.
        field: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// cairn has no version ordering for this ecosystem.
    #[error("no version ordering for ecosystem {ecosystem:?}")]
    UnsupportedEcosystem {
        /// The ecosystem as given.
        ecosystem: String,
    },
    /// A version (installed, or in a range) does not parse.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// The stored compiled match form of this (advisory, package) cannot be
    /// read (`crate::compiled`): the pair is not evaluated.
    #[error(transparent)]
    CompiledForm(#[from] crate::compiled::FormError),
    /// A range of the advisory that names this package cannot be evaluated.
    #[error("advisory {advisory}: range cannot be evaluated: {problem}")]
    RangeNotEvaluable {
        /// The advisory id.
        advisory: String,
        /// The record problem that makes it so.
        problem: crate::osv::RecordProblem,
    },
}
