//! What the engine observed about one stage of one run: the only input the
//! statement constructors take. Plain data, filled by the engine, never by the step.

use crate::statement::Subject;
use crate::{Digest, EvidenceError};

/// A name and the SHA-256 of its content: a step log, a base image, a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedDigest {
    pub name: String,
    pub sha256: Digest,
}

impl NamedDigest {
    pub fn new(name: impl Into<String>, sha256: Digest) -> Self {
        NamedDigest {
            name: name.into(),
            sha256,
        }
    }
}

/// The facts of one stage of one run, as the engine saw them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The workload's name (its `cairn.toml`).
    pub workload: String,
    /// Where the source came from: a repository URL, or a local path.
    pub repository: String,
    /// The exact commit the run is for (hex object id).
    pub commit: String,
    /// The run's id; becomes `invocationId`.
    pub run_id: String,
    /// The chain's name.
    pub chain: String,
    /// The stage's name and kind (`build`, `unit-tests`, …).
    pub stage: String,
    pub stage_kind: String,
    /// The command the stage ran, if it ran one.
    pub command: Option<String>,
    /// Start and end of the stage, unix milliseconds (the engine's clock).
    pub started_ms: i64,
    pub finished_ms: i64,
    /// The step's exit code; `None` if it was killed or never exited.
    pub exit_code: Option<i32>,
    /// Digests of the step logs (see [`crate::hash_log_lines`]).
    pub logs: Vec<NamedDigest>,
    /// Base images the step built on: reference and manifest digest.
    pub base_images: Vec<NamedDigest>,
    /// Names of the tests that failed, as the engine parsed them from the output.
    pub failed_tests: Vec<String>,
    /// The tests the stage ran, by outcome, from the runner's machine-readable
    /// output (JUnit XML, TAP, libtest lines) as the engine read it; `None` when
    /// the runner left none the engine could read.
    pub tests: Option<cairn_model::test_results::TestReport>,
    /// What the stage is about: the build's outputs, or the tested artifact.
    pub artifacts: Vec<Subject>,
    /// The authenticated identity that queued or ran the run (`None` when no
    /// identity did: a run before the organisation had identities). Signed,
    /// so the gate's four-eyes rule can exclude it from the approvers.
    pub triggered_by: Option<String>,
    /// The commits of the change this run is for (see [`ChangeCommit`]);
    /// signed into the build's provenance. Empty when not known.
    pub change: Vec<ChangeCommit>,
}

/// One commit of the change a run is for: the commits reachable from the
/// run's commit and not from what runs in the last environment of the
/// promotion path (newest first, bounded), with who authored, committed and —
/// when its SSH signature verified against a key registered to a cairn
/// identity — signed it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeCommit {
    pub commit: String,
    /// `Name <email>` as git recorded it (unauthenticated metadata).
    pub author: String,
    pub committer: String,
    /// The cairn identity whose registered key made the commit's verified
    /// signature; `None` when unsigned or not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

impl Observed {
    /// The commit must be a full git object id (40 or 64 lowercase hex digits):
    /// it becomes a `gitCommit` digest, which names exactly one tree.
    pub(crate) fn check_commit(&self) -> Result<(), EvidenceError> {
        let c = self.commit.as_bytes();
        let hex = c
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        if hex && (c.len() == 40 || c.len() == 64) {
            Ok(())
        } else {
            Err(EvidenceError::Invalid {
                what: "observed commit",
                reason: "it is not a full lowercase hex git object id",
            })
        }
    }
}
