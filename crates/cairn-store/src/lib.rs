//! Durable state behind one trait: workloads, runs, stages and step logs.
//!
//! [`Store`] is the only way the engine, the CLI and the server touch state. It is
//! synchronous (call it from `spawn_blocking` in async code) and object-safe, so
//! backends are interchangeable: [`SqliteStore`] now, PostgreSQL later, and every
//! backend must pass the same [`conformance`] suite.
//!
//! The store never reads the clock: every timestamp (`*_ms`, unix milliseconds) is
//! passed in by the caller, which keeps tests deterministic.
//!
//! State transitions are checked here, not trusted to callers:
//!
//! ```text
//! run:   queued -> running -> succeeded | failed | interrupted   (final: never changes again)
//!        queued -> succeeded | failed | interrupted              (ended before it started)
//! stage: pending -> running -> passed | failed | skipped | interrupted
//!        pending -> skipped                                      (when its run ends)
//! ```
//!
//! A run in a final state has no `pending` or `running` stage left: finishing or
//! interrupting a run settles them (`pending` -> `skipped`, `running` -> `interrupted`).

pub mod conformance;
mod error;
mod sqlite;

pub use error::StoreError;
pub use sqlite::SqliteStore;

use cairn_model::{
    BaseRecord, EvidenceRecord, ImageRecord, LogLine, NewEvidence, NewRun, RunId, RunRecord,
    RunStatus, StageId, StageKind, StageRecord, StageStatus,
};
use cairn_model::{
    ChangeRecord, DeploymentRecord, DeploymentStatus, IdentityRecord, RoleBinding, SessionRecord,
};
use cairn_model::{DeliveryRecord, NewDelivery, WorkloadRecord};

/// Which runs [`Store::runs`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this workload.
    pub workload: Option<String>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// At most this many runs (the newest ones); `0` returns none.
    pub limit: usize,
}

impl RunFilter {
    /// The limit of [`RunFilter::default`].
    pub const DEFAULT_LIMIT: usize = 100;
}

impl Default for RunFilter {
    /// All workloads and statuses, the newest [`RunFilter::DEFAULT_LIMIT`] runs.
    fn default() -> Self {
        RunFilter {
            workload: None,
            status: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// The largest change record JSON [`Store::add_change`] keeps.
pub const MAX_CHANGE_JSON_BYTES: usize = 1 << 20;

/// The largest bundle [`Store::add_evidence`] keeps.
pub const MAX_EVIDENCE_BYTES: usize = 16 << 20;

/// The largest OSV record [`Store::put_advisories`] keeps.
pub const MAX_ADVISORY_BYTES: usize = 16 << 20;

/// An OSV advisory to keep. The store does not read the JSON: the caller hands in
/// the id, the `modified` time and the packages the record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAdvisory {
    pub id: String,
    /// The record's `modified` time, in a form whose byte order is time order
    /// (the CLI writes RFC 3339 UTC with nine fractional digits).
    pub modified: String,
    /// A withdrawn record is kept but indexed under no package.
    pub withdrawn: bool,
    /// (OSV ecosystem, normalised package name) pairs the record is found by.
    pub packages: Vec<(String, String)>,
    /// The OSV JSON record as it was read.
    pub json: Vec<u8>,
}

/// What [`Store::put_advisories`] did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvisoryPut {
    /// No record had this id.
    New,
    /// The stored record was older; it was replaced.
    Updated,
    /// The stored record was as new or newer; it was kept.
    Unchanged,
}

/// A kept OSV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAdvisory {
    pub id: String,
    pub modified: String,
    pub withdrawn: bool,
    pub json: Vec<u8>,
}

/// The largest SBOM document [`Store::add_sbom`] keeps.
pub const MAX_SBOM_BYTES: usize = 64 << 20;

/// The most components one stored SBOM may index.
pub const MAX_SBOM_COMPONENTS: usize = 200_000;

/// An SBOM to keep, with the components it is found by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSbom {
    /// What the SBOM describes (a tree's or an image's name).
    pub subject_name: String,
    /// The artifact's digest, `<algorithm>:<hex>`.
    pub subject_digest: String,
    /// The workload it belongs to, once deployments exist.
    pub workload: Option<String>,
    /// The environment it runs in, once deployments exist.
    pub environment: Option<String>,
    pub created_at_ms: i64,
    /// The document's format (`cyclonedx`, `spdx`).
    pub format: String,
    /// The document as it was written.
    pub document: Vec<u8>,
    /// (OSV ecosystem, normalised name, version, purl) of each component.
    pub components: Vec<(String, String, String, String)>,
}

/// A stored SBOM that contains a package, from [`Store::where_package`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageHit {
    pub sbom_id: i64,
    pub subject_name: String,
    pub subject_digest: String,
    pub workload: Option<String>,
    pub environment: Option<String>,
    pub ecosystem: String,
    pub name: String,
    pub version: String,
    pub purl: String,
}

/// A component of a stored SBOM, from [`Store::components_for_packages`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoredComponent {
    pub sbom_id: i64,
    pub ecosystem: String,
    /// The normalised name, as the SBOM was indexed.
    pub name: String,
    pub version: String,
    pub purl: String,
}

/// Where a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingState {
    /// The advisory matches the component.
    Open,
    /// It matches, but a VEX statement says the artifact is not affected.
    Suppressed,
    /// It no longer matches (the record changed or was withdrawn).
    Fixed,
}

impl FindingState {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingState::Open => "open",
            FindingState::Suppressed => "suppressed",
            FindingState::Fixed => "fixed",
        }
    }

    /// The state named `name` (as [`FindingState::as_str`] writes it).
    pub fn parse(name: &str) -> Option<FindingState> {
        Some(match name {
            "open" => FindingState::Open,
            "suppressed" => FindingState::Suppressed,
            "fixed" => FindingState::Fixed,
            _ => return None,
        })
    }
}

/// A finding's identity: one advisory against one component of one stored SBOM.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FindingKey {
    pub advisory_id: String,
    pub sbom_id: i64,
    pub ecosystem: String,
    /// The normalised name, as the SBOM was indexed.
    pub name: String,
    pub version: String,
}

/// A match the caller computed, for [`Store::record_matches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFinding {
    pub key: FindingKey,
    pub purl: String,
    /// `vulnerability`, or the informational kind (`unmaintained`, `unsound`, …).
    pub kind: String,
    /// The qualitative severity (`low` … `critical`), when the record gives one.
    pub severity: Option<String>,
}

/// A kept finding, with the artifact it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFinding {
    pub key: FindingKey,
    pub purl: String,
    pub kind: String,
    pub severity: Option<String>,
    pub state: FindingState,
    /// When it was first recorded (a fixed finding that matches again keeps it).
    pub first_seen_ms: i64,
    /// The last re-match that found it.
    pub last_seen_ms: i64,
    /// When it stopped matching, while [`FindingState::Fixed`].
    pub fixed_at_ms: Option<i64>,
    pub subject_name: String,
    pub subject_digest: String,
    pub workload: Option<String>,
    pub environment: Option<String>,
}

/// What one re-match covered: the findings of components of these packages, and
/// the findings of these advisories (whatever their package), in every stored SBOM
/// or only in `sbom`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchScope {
    /// (OSV ecosystem, normalised name) pairs whose components were re-matched
    /// against every advisory that names them.
    pub packages: Vec<(String, String)>,
    /// Advisories that were re-evaluated (new, changed or withdrawn records).
    pub advisories: Vec<String>,
    /// Only this SBOM (a newly stored one), or every SBOM when `None`.
    pub sbom: Option<i64>,
}

/// What [`Store::record_matches`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchOutcome {
    /// The re-match's id in [`Store::rematches`].
    pub rematch_id: i64,
    /// Stored components in the scope's packages: those that were re-matched.
    pub components: u64,
    /// Findings that are new, or match again after they were fixed.
    pub opened: Vec<StoredFinding>,
    /// Findings that were open or suppressed and still are.
    pub still_open: u64,
    /// Findings in the scope that no longer match: now fixed.
    pub fixed: Vec<StoredFinding>,
}

/// One re-match as logged by [`Store::record_matches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RematchRecord {
    pub id: i64,
    pub at_ms: i64,
    pub packages: u64,
    pub advisories: u64,
    pub sbom: Option<i64>,
    pub components: u64,
    pub opened: u64,
    pub still_open: u64,
    pub fixed: u64,
}

/// Which findings [`Store::findings`] returns; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    pub sbom: Option<i64>,
    pub advisory: Option<String>,
    pub state: Option<FindingState>,
    /// Only the findings of SBOMs about this artifact digest.
    pub subject_digest: Option<String>,
}

/// The size of a stage's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogStats {
    /// Number of lines (the next line's seq).
    pub lines: u64,
    /// Sum of the lines' byte lengths (line ends are not stored).
    pub bytes: u64,
}

/// What [`Store::accept_delivery`] did.
// Returned once per delivery and matched at once: boxing the run buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryAccepted {
    /// The (forge, delivery) was seen before: nothing was written.
    Replay,
    /// The delivery was recorded, with the run it created, if one was asked for.
    Accepted {
        run: Option<(RunRecord, Vec<StageRecord>)>,
    },
}

/// Finished stages (started and finished) of one kind that ended in one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageDurationStat {
    pub kind: StageKind,
    pub status: StageStatus,
    pub count: u64,
    /// The sum of their durations (finished minus started).
    pub sum_ms: i64,
}

/// The audit log as the store last checked it, from [`Store::log_mark`]. The
/// store and the log are a pair: the engine compares this with the log on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogMark {
    /// The store has never been paired with a log: it is new (or was emptied).
    New,
    /// The store holds data from before the mark existed: it takes the log as
    /// it finds it, once.
    Adopt,
    /// The log had `size` entries with root `root` (hex) when last checked.
    Seen { size: u64, root: String, at_ms: i64 },
}

/// Durable state of cairn. Every method is one transaction: it happens entirely or
/// not at all, and once it returns `Ok` the change survives a crash or power loss.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Records a workload (its name and repository), or updates its repository.
    fn upsert_workload(&self, name: &str, repo: &str, now_ms: i64) -> Result<(), StoreError>;

    /// Creates a `queued` run of a known workload with its stages `pending`, in the
    /// order given. Returns what was stored.
    fn create_run(&self, run: &NewRun) -> Result<(RunRecord, Vec<StageRecord>), StoreError>;

    /// `queued` -> `running`; records who runs it (`owner`) and when it started.
    fn start_run(&self, run: RunId, owner: &str, now_ms: i64) -> Result<(), StoreError>;

    /// `pending` -> `running`; the stage's run must be `running`.
    fn start_stage(&self, stage: StageId, now_ms: i64) -> Result<(), StoreError>;

    /// `running` -> `status`, which must be a final stage status (`passed`, `failed`,
    /// `skipped`, `interrupted`).
    fn finish_stage(
        &self,
        stage: StageId,
        status: StageStatus,
        exit_code: Option<i32>,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Moves a `queued` or `running` run to the final `status`. Stages still `pending`
    /// become `skipped`; a stage still `running` becomes `interrupted` (the caller
    /// should have finished it; the run's end settles it rather than leave it running).
    fn finish_run(
        &self,
        run: RunId,
        status: RunStatus,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// If the run is not final: `running` stages -> `interrupted`, `pending` stages ->
    /// `skipped`, the run -> `interrupted` with `reason`. Returns whether anything
    /// changed (`false` for a run already final), so it is safe to call repeatedly.
    fn interrupt_run(&self, run: RunId, reason: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// Appends lines to a stage's log in one transaction. The first line's seq must be
    /// the stage's next seq and the following ones must continue without gaps;
    /// otherwise nothing is stored ([`StoreError::LogSequence`]). Refused once the run
    /// is final.
    fn append_logs(&self, stage: StageId, lines: &[LogLine]) -> Result<(), StoreError>;

    /// Runs matching `filter`, newest first (by creation time, then id).
    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError>;

    /// One run, or `None` if there is none with this id.
    fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError>;

    /// A run's stages in chain order.
    fn stages(&self, run: RunId) -> Result<Vec<StageRecord>, StoreError>;

    /// Up to `limit` lines of a stage's log with seq greater than `after_seq` (from
    /// the start if `None`), ascending.
    fn logs(
        &self,
        stage: StageId,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError>;

    /// The last `n` lines of a stage's log, ascending.
    fn log_tail(&self, stage: StageId, n: usize) -> Result<Vec<LogLine>, StoreError>;

    /// How many lines and bytes a stage's log holds.
    fn log_stats(&self, stage: StageId) -> Result<LogStats, StoreError>;

    /// Keeps a signed bundle about an artifact; returns its id. The run and stage,
    /// when given, must exist (and the stage must be the run's). Bundles larger than
    /// [`MAX_EVIDENCE_BYTES`] are refused.
    fn add_evidence(&self, evidence: &NewEvidence) -> Result<i64, StoreError>;

    /// The evidence a run produced, oldest first.
    fn evidence_for_run(&self, run: RunId) -> Result<Vec<EvidenceRecord>, StoreError>;

    /// The evidence about one artifact (`<algorithm>:<hex>`), oldest first.
    fn evidence_for_subject(&self, digest: &str) -> Result<Vec<EvidenceRecord>, StoreError>;

    /// Keeps OSV records, all in one transaction: a record whose id is new is
    /// inserted, one whose `modified` is later than the stored one replaces it (and
    /// its package index), any other is left as it was. Returns what happened to
    /// each, in order (an id given twice in a batch is compared with its first copy).
    /// A record larger than [`MAX_ADVISORY_BYTES`] refuses the whole batch.
    fn put_advisories(&self, advisories: &[NewAdvisory]) -> Result<Vec<AdvisoryPut>, StoreError>;

    /// The records (not withdrawn) indexed under any of these (ecosystem, name)
    /// pairs, each once, by id.
    fn advisories_for_packages(
        &self,
        packages: &[(String, String)],
    ) -> Result<Vec<StoredAdvisory>, StoreError>;

    /// The record with this id, withdrawn or not.
    fn advisory(&self, id: &str) -> Result<Option<StoredAdvisory>, StoreError>;

    /// How many records are kept, withdrawn ones included.
    fn advisory_count(&self) -> Result<u64, StoreError>;

    /// Every kept record's (id, modified, withdrawn), by id: the advisory
    /// database's state, which a gate decision names.
    fn advisory_versions(&self) -> Result<Vec<(String, String, bool)>, StoreError>;

    /// Keeps one SBOM and indexes its components; returns its id.
    fn add_sbom(&self, sbom: &NewSbom) -> Result<i64, StoreError> {
        let ids = self.add_sboms(std::slice::from_ref(sbom))?;
        ids.first().copied().ok_or(StoreError::Corrupt {
            what: "stored SBOM ids",
            value: "none".to_owned(),
        })
    }

    /// Keeps SBOMs, all in one transaction; returns their ids in order. A document
    /// larger than [`MAX_SBOM_BYTES`] or with more than [`MAX_SBOM_COMPONENTS`]
    /// components refuses the whole batch.
    fn add_sboms(&self, sboms: &[NewSbom]) -> Result<Vec<i64>, StoreError>;

    /// Every stored component named `name` (in `ecosystem`, or in any), with the SBOM
    /// it is in, each (SBOM, ecosystem, name, version, purl) once, by SBOM id then
    /// version. Versions are not compared here: ranges are the caller's.
    fn where_package(
        &self,
        ecosystem: Option<&str>,
        name: &str,
    ) -> Result<Vec<PackageHit>, StoreError>;

    /// Every stored component of these (ecosystem, normalised name) packages (in
    /// SBOM `sbom` only, when given), each (SBOM, ecosystem, name, version, purl)
    /// once, ordered.
    fn components_for_packages(
        &self,
        packages: &[(String, String)],
        sbom: Option<i64>,
    ) -> Result<Vec<StoredComponent>, StoreError>;

    /// Records a re-match, in one transaction. `found` is every match the caller
    /// computed for the components in `scope`; each must be of a stored component
    /// in the scope's packages (and SBOM), else nothing is stored
    /// ([`StoreError::NotFound`] for a component that is not stored,
    /// [`StoreError::OutOfScope`] for one outside the scope). A match not stored
    /// yet (or stored as fixed) is opened with `now_ms`; one stored as open or
    /// suppressed keeps its state and first-seen time; a stored open or suppressed
    /// finding in the scope (by package, or by advisory) that is not in `found` is
    /// fixed. The re-match is logged for [`Store::rematches`].
    fn record_matches(
        &self,
        scope: &MatchScope,
        found: &[NewFinding],
        now_ms: i64,
    ) -> Result<MatchOutcome, StoreError>;

    /// Kept findings matching `filter`, by SBOM id, advisory, ecosystem, name, version.
    fn findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>, StoreError>;

    /// The last `limit` re-matches, newest first.
    fn rematches(&self, limit: usize) -> Result<Vec<RematchRecord>, StoreError>;

    /// Adds an entry to the base-image catalog (a name's newest entry is current).
    fn add_base(&self, base: &BaseRecord) -> Result<i64, StoreError>;

    /// Every catalog entry named `name`, newest first.
    fn base_history(&self, name: &str) -> Result<Vec<BaseRecord>, StoreError>;

    /// The current entry of every catalog name, by name.
    fn bases(&self) -> Result<Vec<BaseRecord>, StoreError>;

    /// Records an image cairn built or rebased ([`StoreError::NotFound`] for an
    /// unknown run).
    fn add_image(&self, image: &ImageRecord) -> Result<i64, StoreError>;

    /// Recorded images, newest first, of `workload` and/or with `digest` (each
    /// filter optional), at most `limit`.
    fn images(
        &self,
        workload: Option<&str>,
        digest: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ImageRecord>, StoreError>;

    /// Adds an identity. [`StoreError::Exists`] when its name (or its token's
    /// hash) is taken; [`StoreError::Invalid`] for an empty name or a hash that is
    /// not 64 lowercase hex digits.
    fn add_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError>;

    /// Adds the first identity and its binding in one transaction, only while the
    /// store has no identity at all (revoked ones count): returns `false`, having
    /// written nothing, when one exists. This is the bootstrap: two processes
    /// racing for it cannot both win.
    fn add_first_identity(
        &self,
        identity: &IdentityRecord,
        binding: &RoleBinding,
    ) -> Result<bool, StoreError>;

    /// The identity named `name`, revoked or not.
    fn identity(&self, name: &str) -> Result<Option<IdentityRecord>, StoreError>;

    /// The identity whose token hashes to `token_sha256`, unless it is revoked.
    fn identity_by_token(&self, token_sha256: &str) -> Result<Option<IdentityRecord>, StoreError>;

    /// Every identity, revoked ones included, by name.
    fn identities(&self) -> Result<Vec<IdentityRecord>, StoreError>;

    /// Revokes an identity: its token stops authenticating. Returns `false` when
    /// there is no such identity or it was already revoked (nothing changes).
    fn revoke_identity(&self, name: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// How many identities exist, revoked ones included.
    fn identity_count(&self) -> Result<u64, StoreError>;

    /// Binds a role ([`StoreError::NotFound`] for an unknown identity,
    /// [`StoreError::Invalid`] for a revoked one, an empty name, or an environment
    /// without a workload). Adding a binding that exists is a no-op. The role's
    /// name is not checked here: the caller knows the roles.
    fn add_binding(&self, binding: &RoleBinding) -> Result<(), StoreError>;

    /// Removes a binding; `false` when there was none.
    fn remove_binding(&self, binding: &RoleBinding) -> Result<bool, StoreError>;

    /// Every binding (of revoked identities too), by identity, role, workload,
    /// environment (organisation-wide first).
    fn bindings(&self) -> Result<Vec<RoleBinding>, StoreError>;

    /// Records a deployment (an intent, `deploying`, or an outcome); returns its
    /// id. A token is unique.
    fn add_deployment(&self, deployment: &DeploymentRecord) -> Result<i64, StoreError>;

    /// Gives the deployment with `token` its status (an outcome) and reason (and,
    /// when given, its final `detail`); `false` when no deployment has that token.
    fn set_deployment_status(
        &self,
        token: &str,
        status: DeploymentStatus,
        reason: Option<&str>,
        detail: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// What runs (or should run) in `environment` of `workload`: its newest
    /// deployment that reached it (`deployed` or `not-running`).
    fn current_deployment(
        &self,
        workload: &str,
        environment: &str,
    ) -> Result<Option<DeploymentRecord>, StoreError>;

    /// Deployments, newest first, of `workload` and/or to `environment` (each
    /// filter optional), at most `limit`.
    fn deployments(
        &self,
        workload: Option<&str>,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeploymentRecord>, StoreError>;

    /// Whether `digest` was ever deployed to `environment` of `workload`.
    fn was_deployed(
        &self,
        workload: &str,
        environment: &str,
        digest: &str,
    ) -> Result<bool, StoreError>;

    /// Keeps a change record; returns its id. JSON larger than
    /// [`MAX_CHANGE_JSON_BYTES`] is refused.
    fn add_change(&self, change: &ChangeRecord) -> Result<i64, StoreError>;

    /// Change records with their ids, newest first, of `workload` (or all), at most
    /// `limit`.
    fn changes(
        &self,
        workload: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(i64, ChangeRecord)>, StoreError>;

    /// The newest change record of `kind` with its id (one indexed row).
    fn last_change_of_kind(&self, kind: &str) -> Result<Option<(i64, ChangeRecord)>, StoreError>;

    // ---- the server (schema v8) ------------------------------------------------------

    /// Every workload, by name.
    fn workloads(&self) -> Result<Vec<WorkloadRecord>, StoreError>;

    /// The workload named `name`.
    fn workload(&self, name: &str) -> Result<Option<WorkloadRecord>, StoreError>;

    /// Sets (or, with `None`, clears) the forge repository webhooks find `workload`
    /// by. [`StoreError::NotFound`] for an unknown workload, [`StoreError::InUse`]
    /// when another workload has it, [`StoreError::Invalid`] for an empty one.
    fn set_forge_repository(
        &self,
        workload: &str,
        forge_repository: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// The workload whose forge repository is exactly `forge_repository`.
    fn workload_by_forge_repository(
        &self,
        forge_repository: &str,
    ) -> Result<Option<WorkloadRecord>, StoreError>;

    /// Takes the oldest `queued` run for workers (by creation time, then id): it
    /// becomes `running`, owned by `owner`, started at `now_ms`, and is returned as
    /// stored. `None` when the queue is empty. Two claims never take the same run.
    fn claim_queued_run(&self, owner: &str, now_ms: i64) -> Result<Option<RunRecord>, StoreError>;

    /// How many `queued` runs wait for workers.
    fn queued_count(&self) -> Result<u64, StoreError>;

    /// Records a webhook delivery and, when `run` is given, creates that run as
    /// [`Store::create_run`] does, in one transaction. A (forge, delivery) seen
    /// before is a [`DeliveryAccepted::Replay`] and writes nothing.
    fn accept_delivery(
        &self,
        delivery: &NewDelivery,
        run: Option<&NewRun>,
    ) -> Result<DeliveryAccepted, StoreError>;

    /// The last `limit` deliveries, newest first (by receipt time, then arrival).
    fn deliveries(&self, limit: usize) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Keeps a browser session. [`StoreError::NotFound`] for an unknown identity,
    /// [`StoreError::Exists`] for a token hash already kept,
    /// [`StoreError::Invalid`] for a hash that is not 64 lowercase hex digits.
    fn add_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// The session whose token hashes to `token_sha256`, expired or not (the
    /// caller checks the expiry).
    fn session(&self, token_sha256: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Removes a session; `false` when there was none.
    fn remove_session(&self, token_sha256: &str) -> Result<bool, StoreError>;

    /// Removes the sessions that expired at or before `now_ms`; returns how many.
    fn prune_sessions(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Maps `login` on `forge` to `identity` (replacing its mapping, if any).
    /// [`StoreError::NotFound`] for an unknown identity.
    fn link_forge_account(
        &self,
        forge: &str,
        login: &str,
        identity: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// The identity `login` on `forge` is mapped to.
    fn forge_account(&self, forge: &str, login: &str) -> Result<Option<String>, StoreError>;

    /// How many runs are in each status: every status, in [`RunStatus::ALL`]
    /// order, zero included.
    fn run_counts(&self) -> Result<Vec<(RunStatus, u64)>, StoreError>;

    /// Count and summed duration of finished stages (started and finished), per
    /// (kind, status) that has any, ordered by kind then status name.
    fn stage_durations(&self) -> Result<Vec<StageDurationStat>, StoreError>;

    // ---- the store's view of the audit log (schema v9) -----------------------------

    /// The audit log as the store last checked it.
    fn log_mark(&self) -> Result<LogMark, StoreError>;

    /// Records that the log had `size` entries with root `root` (hex). The mark
    /// only moves forward: a smaller size than the one kept is ignored (another
    /// process checked a longer log meanwhile).
    fn set_log_mark(&self, size: u64, root: &str, at_ms: i64) -> Result<(), StoreError>;
}
