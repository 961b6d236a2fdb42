//! Workloads (and the forge repository webhooks find one by), runs, stages and
//! step logs: a run's life from queued to final, the workers' queue, and the
//! numbers behind the metrics.

use cairn_model::{
    LogLine, NewEvidence, NewRun, RunId, RunRecord, RunStatus, StageId, StageKind, StageRecord,
    StageStatus, WorkloadRecord,
};

use std::fmt;

use crate::StoreError;

/// Which runs [`RunStore::runs`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this workload.
    pub workload: Option<String>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs whose commit id starts with this (lowercase hex, compared
    /// as a prefix: no pattern characters).
    pub commit_prefix: Option<String>,
    /// Only runs with this kind of trigger.
    pub trigger: Option<TriggerKind>,
    /// Keyset pagination: only runs listed after this one (older by
    /// creation time, then by id), so a page costs the same however deep.
    pub after: Option<RunCursor>,
    /// At most this many runs (the newest ones); `0` returns none.
    pub limit: usize,
}

/// Where a page of runs ended: the last run's creation time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCursor {
    pub created_at_ms: i64,
    pub id: RunId,
}

impl RunCursor {
    /// A cursor's text form, `<created_at_ms>.<id>` (as [`fmt::Display`] writes it).
    pub fn parse(text: &str) -> Option<RunCursor> {
        let (at, id) = text.split_once('.')?;
        Some(RunCursor {
            created_at_ms: at.parse().ok()?,
            id: RunId(id.parse().ok()?),
        })
    }

    /// The cursor after `run`.
    pub fn of(run: &RunRecord) -> RunCursor {
        RunCursor {
            created_at_ms: run.created_at_ms,
            id: run.id,
        }
    }
}

impl fmt::Display for RunCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at_ms, self.id.0)
    }
}

/// A commit filter as [`RunFilter::commit_prefix`] takes it: a commit id or
/// its prefix, up to 40 hex digits, lowercased; anything else is refused with
/// the rule.
pub fn commit_prefix(text: &str) -> Result<String, &'static str> {
    let c = text.trim().to_ascii_lowercase();
    if c.is_empty() || c.len() > 40 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a commit filter is a commit id or its prefix: 1 to 40 hex digits");
    }
    Ok(c)
}

/// What started a run, as [`RunFilter::trigger`] selects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Cli,
    Api,
    Webhook,
    Push,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 4] = [
        TriggerKind::Cli,
        TriggerKind::Api,
        TriggerKind::Webhook,
        TriggerKind::Push,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Cli => "cli",
            TriggerKind::Api => "api",
            TriggerKind::Webhook => "webhook",
            TriggerKind::Push => "push",
        }
    }

    pub fn parse(text: &str) -> Option<TriggerKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The stored trigger text's first field (`api` of `api:alice`).
    pub(crate) fn stored_kind(self) -> &'static str {
        self.as_str()
    }
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
            commit_prefix: None,
            trigger: None,
            after: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// The size of a stage's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogStats {
    /// Number of lines (the next line's seq).
    pub lines: u64,
    /// Sum of the lines' byte lengths (line ends are not stored).
    pub bytes: u64,
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

/// One boundary between two stages of a run, written by
/// [`RunStore::stage_boundary`] in one transaction: the stage that ended (the
/// last lines of its log, its outcome, the evidence about it) and the stage that
/// starts. A run's stages commit once per boundary, not once per fact.
#[derive(Debug, Clone, Copy)]
pub struct StageBoundary<'a> {
    /// The stage that ended; `None` at the run's first stage.
    pub ended: Option<EndedStage<'a>>,
    /// The stage that starts, and when; `None` after the last stage or a
    /// failed one. It must be a `pending` stage of the same run.
    pub next: Option<(StageId, i64)>,
}

/// A stage that ended, as [`StageBoundary::ended`] records it.
#[derive(Debug, Clone, Copy)]
pub struct EndedStage<'a> {
    pub stage: StageId,
    /// Its log's lines not yet appended: they continue its log's seq without a
    /// gap, as [`RunStore::append_logs`] takes them.
    pub log: &'a [LogLine],
    /// A final stage status, as [`RunStore::finish_stage`] takes it.
    pub status: StageStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<&'a str>,
    pub finished_ms: i64,
    /// Bundles the engine signed (and logged) about this stage and, for a
    /// build, earlier stages of the run, each checked as
    /// [`EvidenceStore::add_evidence`](crate::EvidenceStore::add_evidence) checks it.
    pub evidence: &'a [NewEvidence],
}

/// How a run ends, as [`RunStore::end_run`] records it (with
/// [`RunStore::finish_run`]'s rules).
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    pub run: RunId,
    /// A final run status.
    pub status: RunStatus,
    pub reason: Option<&'a str>,
    pub finished_ms: i64,
}

/// A run's last ended stage that is not a stage of the run it ends.
pub(crate) fn ended_of_another_run(stage: StageId) -> StoreError {
    StoreError::Invalid {
        what: "run end",
        why: format!("stage {} is not a stage of the run that ends", stage.0),
    }
}

/// A boundary's evidence filed under another run (or none).
pub(crate) fn evidence_of_another_run() -> StoreError {
    StoreError::Invalid {
        what: "stage boundary",
        why: "its evidence must be filed under the ended stage's run".to_owned(),
    }
}

/// A boundary whose next stage is not of the ended stage's run.
pub(crate) fn next_of_another_run(next: StageId) -> StoreError {
    StoreError::Invalid {
        what: "stage boundary",
        why: format!("stage {} is not a stage of the ended stage's run", next.0),
    }
}

/// Announcements that runs changed, from any process sharing the store (see
/// [`RunStore::run_changes`]).
pub trait RunChanges: Send {
    /// Waits up to `timeout` for runs to change; returns the ids announced
    /// (none when the time ran out; one id may come more than once). An error
    /// means the listener broke: make a new one, and read what was missed.
    fn wait(&mut self, timeout: std::time::Duration) -> Result<Vec<RunId>, StoreError>;
}

/// Workloads, runs, stages and step logs (see the crate docs for the state machine).
///
/// Every method is one transaction (see [`Store`](crate::Store)).
pub trait RunStore {
    /// Records a workload (its name and repository), or updates its repository.
    fn upsert_workload(&self, name: &str, repo: &str, now_ms: i64) -> Result<(), StoreError>;

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

    /// One stage boundary in one transaction (all of it or nothing): the ended
    /// stage's last log lines appended (as [`RunStore::append_logs`]), the
    /// stage finished (as [`RunStore::finish_stage`]), its evidence kept (as
    /// [`EvidenceStore::add_evidence`](crate::EvidenceStore::add_evidence)), and
    /// the next stage started (as [`RunStore::start_stage`]; it must be a stage
    /// of the ended stage's run). Returns the evidence ids, in order. Nothing of
    /// a boundary is visible, or acknowledged, before it commits; a crash before
    /// it leaves the ended stage `running`, as it was.
    fn stage_boundary(&self, boundary: &StageBoundary<'_>) -> Result<Vec<i64>, StoreError>;

    /// A run started here, in one transaction (its one commit before its
    /// first stage's end): the workload `run.workload` recorded at `repo` (as
    /// [`RunStore::upsert_workload`]), the run created (as
    /// [`RunStore::create_run`]) and started (as [`RunStore::start_run`],
    /// owned by `owner`, at `now_ms`), and its first stage started at `now_ms`
    /// (as [`RunStore::start_stage`]; a run without stages starts none). Returns the run and its stages as stored.
    fn create_started_run(
        &self,
        repo: &str,
        run: &NewRun,
        owner: &str,
        now_ms: i64,
    ) -> Result<(RunRecord, Vec<StageRecord>), StoreError>;

    /// As [`RunStore::claim_queued_run`], with the claimed run's first stage
    /// started at `now_ms` in the same transaction; returns the run and its
    /// stages as stored.
    fn claim_started_run(
        &self,
        owner: &str,
        now_ms: i64,
    ) -> Result<Option<(RunRecord, Vec<StageRecord>)>, StoreError>;

    /// A run's last boundary and its end in one transaction (all of it or
    /// nothing): the ended stage, if any, recorded as
    /// [`RunStore::stage_boundary`] records it (its last log lines, its end,
    /// its evidence; it must be a stage of `end.run`), then the run finished
    /// as [`RunStore::finish_run`] finishes it. Returns the evidence ids, in
    /// order.
    fn end_run(
        &self,
        ended: Option<&EndedStage<'_>>,
        end: &RunEnd<'_>,
    ) -> Result<Vec<i64>, StoreError>;

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

    /// Takes the oldest `queued` run for workers (by creation time, then id): it
    /// becomes `running`, owned by `owner`, started at `now_ms`, leased to
    /// `owner` (see [`RunStore::heartbeat_runs`]), and is returned as stored. `None` when the queue is empty. Two claims never take the same run.
    fn claim_queued_run(&self, owner: &str, now_ms: i64) -> Result<Option<RunRecord>, StoreError>;

    /// Renews the lease of every `running` run `owner` claimed from the queue
    /// ([`RunStore::claim_queued_run`] leases a run to its claimer); returns how
    /// many. A worker calls it while it runs them, well within the stale time
    /// given to [`RunStore::expire_leases`].
    ///
    /// Leases are judged by the database's clock where there is one to share:
    /// PostgreSQL stamps claims and renewals with its own clock and ignores
    /// `now_ms`, so a worker whose clock is skewed can neither keep a dead
    /// lease alive nor expire a live one; SQLite (one machine) uses `now_ms`.
    fn heartbeat_runs(&self, owner: &str, now_ms: i64) -> Result<u64, StoreError>;

    /// Interrupts (as [`RunStore::interrupt_run`], with `reason`) every `running`
    /// run claimed from the queue whose lease was last renewed more than
    /// `stale_ms` ago (by the clock of [`RunStore::heartbeat_runs`]); returns
    /// their ids. Runs without a lease are never touched. Safe to call from
    /// every process at once: each run is interrupted once.
    fn expire_leases(
        &self,
        stale_ms: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Vec<RunId>, StoreError>;

    /// As [`RunStore::expire_leases`], for an installation that requeues a
    /// lost run once (org.toml `[runs] requeue_interrupted`): each stale run
    /// that is not itself a requeue is interrupted with `reason` and "requeued
    /// as run N", and a copy of it (workload, commit, ref, trigger, creation
    /// time, its stages pending) is queued for workers, naming it as the run it
    /// replaces. Returns (lost run, its copy) pairs. A stale copy is left to
    /// [`RunStore::expire_leases`]: a run is requeued at most once. Safe to
    /// call from every process at once: each run is requeued once.
    fn requeue_expired_leases(
        &self,
        stale_ms: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Vec<(RunId, RunId)>, StoreError>;

    /// A listener told of every change to a run (its status, a stage, new log
    /// lines) committed by any process, so that a reader (the server's live
    /// events) need not poll. `None` where the backend has no such channel
    /// (SQLite: one machine, readers poll); PostgreSQL: `LISTEN`/`NOTIFY` on
    /// a connection of the listener's own.
    fn run_changes(&self) -> Result<Option<Box<dyn RunChanges>>, StoreError>;

    /// How many `queued` runs wait for workers.
    fn queued_count(&self) -> Result<u64, StoreError>;

    /// How many runs are in each status: every status, in [`RunStatus::ALL`]
    /// order, zero included.
    fn run_counts(&self) -> Result<Vec<(RunStatus, u64)>, StoreError>;

    /// Count and summed duration of finished stages (started and finished), per
    /// (kind, status) that has any, ordered by kind then status name.
    fn stage_durations(&self) -> Result<Vec<StageDurationStat>, StoreError>;
}
