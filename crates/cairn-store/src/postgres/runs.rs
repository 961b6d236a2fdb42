//! [`RunStore`] on PostgreSQL (the same rules as `sqlite/runs.rs`): workloads, runs, stages, step logs, the workers' queue
//! and the numbers behind the metrics.

use cairn_model::run::UnknownName;
use cairn_model::{
    LogLine, LogStream, NewRun, RunId, RunRecord, RunStatus, StageId, StageKind, StageRecord,
    StageStatus, Trigger, WorkloadRecord,
};
use postgres::Row;

use super::evidence::{check_evidence_size, insert_evidence};
use super::{PostgresStore, Tx, count, len_u64, parse_name, sql_limit};
use crate::sqlite::text::{check_len, check_nonempty};
use crate::{
    EndedStage, LogStats, RunEnd, RunFilter, RunStore, StageBoundary, StageDurationStat, StoreError,
};

// ---- reading rows ------------------------------------------------------------------

const RUN_COLUMNS: &str = "id, workload, commit_id, git_ref, status, reason, \
                           created_at_ms, started_at_ms, finished_at_ms, owner, trigger";

const STAGE_COLUMNS: &str = "id, run_id, position, name, kind, command, status, exit_code, \
                             reason, started_at_ms, finished_at_ms";

const LOG_COLUMNS: &str = "seq, stream, at_ms, bytes";

/// A run row as stored, before its names are checked.
struct RawRun {
    id: i64,
    workload: String,
    commit: String,
    git_ref: Option<String>,
    status: String,
    reason: Option<String>,
    created_at_ms: i64,
    started_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
    owner: Option<String>,
    trigger: String,
}

impl RawRun {
    fn from_row(row: &Row) -> Result<Self, postgres::Error> {
        Ok(RawRun {
            id: row.try_get(0)?,
            workload: row.try_get(1)?,
            commit: row.try_get(2)?,
            git_ref: row.try_get(3)?,
            status: row.try_get(4)?,
            reason: row.try_get(5)?,
            created_at_ms: row.try_get(6)?,
            started_at_ms: row.try_get(7)?,
            finished_at_ms: row.try_get(8)?,
            owner: row.try_get(9)?,
            trigger: row.try_get(10)?,
        })
    }

    fn into_record(self) -> Result<RunRecord, StoreError> {
        Ok(RunRecord {
            id: RunId(self.id),
            workload: self.workload,
            commit: self.commit,
            git_ref: self.git_ref,
            status: parse_name(self.status)?,
            reason: self.reason,
            created_at_ms: self.created_at_ms,
            started_at_ms: self.started_at_ms,
            finished_at_ms: self.finished_at_ms,
            owner: self.owner,
            trigger: Trigger::parse(&self.trigger)
                .map_err(|UnknownName { what, value }| StoreError::Corrupt { what, value })?,
        })
    }
}

/// A stage row as stored, before its names and numbers are checked.
struct RawStage {
    id: i64,
    run: i64,
    position: i64,
    name: String,
    kind: String,
    command: Option<String>,
    status: String,
    exit_code: Option<i64>,
    reason: Option<String>,
    started_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
}

impl RawStage {
    fn from_row(row: &Row) -> Result<Self, postgres::Error> {
        Ok(RawStage {
            id: row.try_get(0)?,
            run: row.try_get(1)?,
            position: row.try_get(2)?,
            name: row.try_get(3)?,
            kind: row.try_get(4)?,
            command: row.try_get(5)?,
            status: row.try_get(6)?,
            exit_code: row.try_get(7)?,
            reason: row.try_get(8)?,
            started_at_ms: row.try_get(9)?,
            finished_at_ms: row.try_get(10)?,
        })
    }

    fn into_record(self) -> Result<StageRecord, StoreError> {
        let exit_code = match self.exit_code {
            None => None,
            Some(code) => Some(i32::try_from(code).map_err(|_| StoreError::Corrupt {
                what: "stage exit code",
                value: code.to_string(),
            })?),
        };
        Ok(StageRecord {
            id: StageId(self.id),
            run: RunId(self.run),
            index: u32::try_from(self.position).map_err(|_| StoreError::Corrupt {
                what: "stage position",
                value: self.position.to_string(),
            })?,
            name: self.name,
            kind: parse_name::<StageKind>(self.kind)?,
            command: self.command,
            status: parse_name(self.status)?,
            exit_code,
            reason: self.reason,
            started_at_ms: self.started_at_ms,
            finished_at_ms: self.finished_at_ms,
        })
    }
}

/// A log row as stored.
struct RawLine {
    seq: i64,
    stream: String,
    at_ms: i64,
    bytes: Vec<u8>,
}

impl RawLine {
    fn from_row(row: &Row) -> Result<Self, postgres::Error> {
        Ok(RawLine {
            seq: row.try_get(0)?,
            stream: row.try_get(1)?,
            at_ms: row.try_get(2)?,
            bytes: row.try_get(3)?,
        })
    }

    fn into_line(self) -> Result<LogLine, StoreError> {
        Ok(LogLine {
            seq: count("log line seq", self.seq)?,
            stream: parse_name::<LogStream>(self.stream)?,
            at_ms: self.at_ms,
            text: self.bytes,
        })
    }
}

pub(super) fn run_status(
    tx: &mut Tx<'_>,
    run: RunId,
    what: &'static str,
) -> Result<RunStatus, StoreError> {
    let status: Option<String> = tx.opt(
        what,
        "SELECT status FROM runs WHERE id = $1",
        &[&run.0],
        |row| row.try_get(0),
    )?;
    match status {
        Some(status) => parse_name(status),
        None => Err(not_found_run(run)),
    }
}

/// A stage's run, the run's status and the stage's status, the run's and the
/// stage's rows locked until the transaction ends (the writes of a run's
/// progress take turns on them, see [`super::Lock::Run`]). Both are locked: a
/// writer that waited for another then reads the rows as that one left them
/// (PostgreSQL reads a locked row again at its newest, an unlocked one as the
/// statement's snapshot had it).
fn stage_state(
    tx: &mut Tx<'_>,
    stage: StageId,
    what: &'static str,
) -> Result<(RunId, RunStatus, StageStatus), StoreError> {
    let row: Option<(i64, String, String)> = tx.opt(
        what,
        "SELECT s.run_id, r.status, s.status FROM stages s JOIN runs r ON r.id = s.run_id \
         WHERE s.id = $1 FOR UPDATE OF s, r",
        &[&stage.0],
        |row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)),
    )?;
    match row {
        Some((run, run_status, stage_status)) => Ok((
            RunId(run),
            parse_name(run_status)?,
            parse_name(stage_status)?,
        )),
        None => Err(not_found_stage(stage)),
    }
}

/// Fails with `NotFound` unless the stage exists.
fn require_stage(tx: &mut Tx<'_>, stage: StageId, what: &'static str) -> Result<(), StoreError> {
    let found = tx.opt(
        what,
        "SELECT 1 FROM stages WHERE id = $1",
        &[&stage.0],
        |_| Ok(()),
    )?;
    found.ok_or_else(|| not_found_stage(stage))
}

fn not_found_run(run: RunId) -> StoreError {
    StoreError::NotFound {
        what: "run",
        id: run.0.to_string(),
    }
}

pub(super) fn not_found_stage(stage: StageId) -> StoreError {
    StoreError::NotFound {
        what: "stage",
        id: stage.0.to_string(),
    }
}

fn query_lines(
    tx: &mut Tx<'_>,
    sql: &str,
    params: super::Params<'_>,
    what: &'static str,
) -> Result<Vec<LogLine>, StoreError> {
    let raw = tx.all(what, sql, params, RawLine::from_row)?;
    raw.into_iter().map(RawLine::into_line).collect()
}

/// Rows sent in one statement when many are inserted at once (log lines, an
/// SBOM's components): `unnest` of one array per column.
pub(super) const BATCH: usize = 4096;

/// The longest trigger text a run keeps.
const MAX_TRIGGER_BYTES: usize = 4096;

/// Inserts a `queued` run of a known workload and its `pending` stages: the body of
/// [`RunStore::create_run`], shared with [`crate::ServerStore::accept_delivery`].
pub(super) fn insert_run(
    tx: &mut Tx<'_>,
    run: &NewRun,
    what: &'static str,
) -> Result<(RunRecord, Vec<StageRecord>), StoreError> {
    // A trigger is stored as text: it must read back as itself.
    let trigger = run.trigger.as_text();
    if trigger.len() > MAX_TRIGGER_BYTES {
        return Err(StoreError::TooLarge {
            what: "a run's trigger",
            size: trigger.len(),
            limit: MAX_TRIGGER_BYTES,
        });
    }
    if Trigger::parse(&trigger).as_ref() != Ok(&run.trigger) {
        return Err(StoreError::Invalid {
            what: "run trigger",
            why: format!("`{trigger}` has an empty name, or an actor or forge with a `:`"),
        });
    }
    let workload_known = tx
        .opt(
            what,
            "SELECT 1 FROM workloads WHERE name = $1",
            &[&run.workload],
            |_| Ok(()),
        )?
        .is_some();
    if !workload_known {
        return Err(StoreError::NotFound {
            what: "workload",
            id: run.workload.clone(),
        });
    }
    let run_id = RunId(tx.one(
        what,
        "INSERT INTO runs (workload, commit_id, git_ref, status, created_at_ms, trigger, \
         for_worker) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[
            &run.workload,
            &run.commit,
            &run.git_ref,
            &RunStatus::Queued.as_str(),
            &run.created_at_ms,
            &trigger,
            &i64::from(run.trigger.for_worker()),
        ],
        |r| r.try_get(0),
    )?);

    let mut stages = Vec::with_capacity(run.stages.len());
    for (index, stage) in (0u32..).zip(&run.stages) {
        let id: i64 = tx.one(
            what,
            "INSERT INTO stages (run_id, position, name, kind, command, status) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &run_id.0,
                &i64::from(index),
                &stage.name,
                &stage.kind.as_str(),
                &stage.command,
                &StageStatus::Pending.as_str(),
            ],
            |r| r.try_get(0),
        )?;
        stages.push(StageRecord {
            id: StageId(id),
            run: run_id,
            index,
            name: stage.name.clone(),
            kind: stage.kind,
            command: stage.command.clone(),
            status: StageStatus::Pending,
            exit_code: None,
            reason: None,
            started_at_ms: None,
            finished_at_ms: None,
        });
    }
    let record = RunRecord {
        id: run_id,
        workload: run.workload.clone(),
        commit: run.commit.clone(),
        git_ref: run.git_ref.clone(),
        status: RunStatus::Queued,
        reason: None,
        created_at_ms: run.created_at_ms,
        started_at_ms: None,
        finished_at_ms: None,
        owner: None,
        trigger: run.trigger.clone(),
    };
    Ok((record, stages))
}

/// The channel PostgreSQL's `NOTIFY` announces a changed run on (its id as
/// the payload), delivered when the writing transaction commits; see
/// [`RunStore::run_changes`].
pub(super) const RUN_CHANNEL: &str = "cairn_runs";

/// A connection of its own that `LISTEN`s on [`RUN_CHANNEL`].
struct Listener {
    client: postgres::Client,
}

impl crate::RunChanges for Listener {
    fn wait(&mut self, timeout: std::time::Duration) -> Result<Vec<RunId>, StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        let what = "waiting for run changes";
        let pg = |e| StoreError::postgres(what, e);
        let mut notifications = self.client.notifications();
        let mut out = Vec::new();
        let first = notifications.timeout_iter(timeout).next().map_err(pg)?;
        let rest: Vec<postgres::Notification> = notifications.iter().collect().map_err(pg)?;
        drop(notifications);
        for n in first.into_iter().chain(rest) {
            // Only cairn writes the channel; anything else is ignored.
            if let Ok(id) = n.payload().parse::<i64>() {
                out.push(RunId(id));
            }
        }
        if out.is_empty() && self.client.is_closed() {
            return Err(StoreError::Invalid {
                what: "PostgreSQL listener",
                why: "the connection closed".to_owned(),
            });
        }
        Ok(out)
    }
}

/// Announces that `run` changed (a status, a stage, log lines) to whoever
/// listens, once the transaction commits.
fn notify(tx: &mut Tx<'_>, run: i64, what: &'static str) -> Result<(), StoreError> {
    tx.exec(
        what,
        "SELECT pg_notify($1, $2)",
        &[&RUN_CHANNEL, &run.to_string()],
    )?;
    Ok(())
}

/// The reason given to a stage that was still running when its run finished.
const ENDED_WHILE_RUNNING: &str = "the run finished while this stage was running";

/// Ends a run: its pending stages are skipped, the run gets its final status.
fn settle_run(
    tx: &mut Tx<'_>,
    run: RunId,
    status: RunStatus,
    reason: Option<&str>,
    now_ms: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    tx.exec(
        what,
        "UPDATE stages SET status = $1 WHERE run_id = $2 AND status = $3",
        &[
            &StageStatus::Skipped.as_str(),
            &run.0,
            &StageStatus::Pending.as_str(),
        ],
    )?;
    tx.exec(
        what,
        "UPDATE runs SET status = $1, reason = $2, finished_at_ms = $3 WHERE id = $4",
        &[&status.as_str(), &reason, &now_ms, &run.0],
    )?;
    notify(tx, run.0, what)
}

// ---- workloads -------------------------------------------------------------------------

const WORKLOAD_COLUMNS: &str = "name, repo, forge_repository, created_at_ms, updated_at_ms";

fn workload_row(r: &Row) -> Result<WorkloadRecord, postgres::Error> {
    Ok(WorkloadRecord {
        name: r.try_get(0)?,
        repo: r.try_get(1)?,
        forge_repository: r.try_get(2)?,
        created_at_ms: r.try_get(3)?,
        updated_at_ms: r.try_get(4)?,
    })
}

fn one_workload(
    tx: &mut Tx<'_>,
    filter: &str,
    value: &str,
    what: &'static str,
) -> Result<Option<WorkloadRecord>, StoreError> {
    tx.opt(
        what,
        &format!("SELECT {WORKLOAD_COLUMNS} FROM workloads WHERE {filter}"),
        &[&value],
        workload_row,
    )
}

pub(super) fn workloads(tx: &mut Tx<'_>) -> Result<Vec<WorkloadRecord>, StoreError> {
    tx.all(
        "listing workloads",
        &format!("SELECT {WORKLOAD_COLUMNS} FROM workloads ORDER BY name"),
        &[],
        workload_row,
    )
}

pub(super) fn workload(tx: &mut Tx<'_>, name: &str) -> Result<Option<WorkloadRecord>, StoreError> {
    one_workload(tx, "name = $1", name, "reading a workload")
}

pub(super) fn workload_by_forge_repository(
    tx: &mut Tx<'_>,
    forge_repository: &str,
) -> Result<Option<WorkloadRecord>, StoreError> {
    one_workload(
        tx,
        "forge_repository = $1",
        forge_repository,
        "finding a workload by forge repository",
    )
}

pub(super) fn set_forge_repository(
    tx: &mut Tx<'_>,
    workload: &str,
    forge_repository: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let what = "setting a workload's forge repository";
    if let Some(repository) = forge_repository {
        check_len("a forge repository", &[repository])?;
        check_nonempty("forge repository", "repository name", repository)?;
    }
    if self::workload(tx, workload)?.is_none() {
        return Err(StoreError::NotFound {
            what: "workload",
            id: workload.to_owned(),
        });
    }
    if let Some(repository) = forge_repository
        && let Some(holder) = workload_by_forge_repository(tx, repository)?
        && holder.name != workload
    {
        return Err(StoreError::InUse {
            what: "forge repository",
            id: repository.to_owned(),
            holder: holder.name,
        });
    }
    tx.exec(
        what,
        "UPDATE workloads SET forge_repository = $2, updated_at_ms = $3 WHERE name = $1",
        &[&workload, &forge_repository, &now_ms],
    )?;
    Ok(())
}

// ---- the workers' queue ----------------------------------------------------------------

/// The queue's condition, spelled as in the partial index `runs_worker_queue` so
/// the planner uses it.
const QUEUED_FOR_WORKERS: &str = "for_worker = 1 AND status = 'queued'";

pub(super) fn claim_queued_run(
    tx: &mut Tx<'_>,
    owner: &str,
    now_ms: i64,
) -> Result<Option<RunRecord>, StoreError> {
    let what = "claiming a queued run";
    debug_assert_eq!(RunStatus::Queued.as_str(), "queued");
    check_len("a run's owner", &[owner])?;
    let oldest: Option<i64> = tx.opt(
        what,
        &format!(
            "SELECT id FROM runs WHERE {QUEUED_FOR_WORKERS} ORDER BY created_at_ms, id LIMIT 1 \
             FOR UPDATE SKIP LOCKED"
        ),
        &[],
        |r| r.try_get(0),
    )?;
    let Some(id) = oldest else {
        return Ok(None);
    };
    let raw = tx.one(
        what,
        &format!(
            "UPDATE runs SET status = $1, owner = $2, started_at_ms = $3, \
             lease_at_ms = {DB_NOW_MS} WHERE id = $4 RETURNING {RUN_COLUMNS}"
        ),
        &[&RunStatus::Running.as_str(), &owner, &now_ms, &id],
        RawRun::from_row,
    )?;
    notify(tx, id, what)?;
    raw.into_record().map(Some)
}

/// The database server's clock in unix milliseconds: leases are judged by it,
/// so a worker's skewed clock cannot keep a dead lease alive or end a live one.
pub(super) const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// `run`'s `running` stages -> `interrupted` with `reason` (a run that ends,
/// whether interrupted or finished, leaves no stage running).
fn interrupt_running_stages(
    tx: &mut Tx<'_>,
    run: RunId,
    reason: &str,
    now_ms: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    tx.exec(
        what,
        "UPDATE stages SET status = $1, reason = $2, finished_at_ms = $3 \
         WHERE run_id = $4 AND status = $5",
        &[
            &StageStatus::Interrupted.as_str(),
            &reason,
            &now_ms,
            &run.0,
            &StageStatus::Running.as_str(),
        ],
    )?;
    Ok(())
}

/// If `run` is not final: its `running` stages -> `interrupted`, the run ->
/// `interrupted` with `reason` (pending stages skipped); whether it changed.
fn interrupt(
    tx: &mut Tx<'_>,
    run: RunId,
    reason: &str,
    now_ms: i64,
    what: &'static str,
) -> Result<bool, StoreError> {
    let current = run_status(tx, run, what)?;
    if current.is_final() {
        return Ok(false);
    }
    interrupt_running_stages(tx, run, reason, now_ms, what)?;
    settle_run(tx, run, RunStatus::Interrupted, Some(reason), now_ms, what)?;
    Ok(true)
}

pub(super) fn queued_count(tx: &mut Tx<'_>) -> Result<u64, StoreError> {
    let n: i64 = tx.one(
        "counting queued runs",
        &format!("SELECT count(*) FROM runs WHERE {QUEUED_FOR_WORKERS}"),
        &[],
        |r| r.try_get(0),
    )?;
    count("queued run count", n)
}

// ---- metrics ---------------------------------------------------------------------------

pub(super) fn run_counts(tx: &mut Tx<'_>) -> Result<Vec<(RunStatus, u64)>, StoreError> {
    let rows = tx.all(
        "counting runs by status",
        "SELECT status, count(*) FROM runs GROUP BY status",
        &[],
        |r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)),
    )?;
    let mut counts: Vec<(RunStatus, u64)> = RunStatus::ALL.iter().map(|s| (*s, 0)).collect();
    for (status, n) in rows {
        let status: RunStatus = parse_name(status)?;
        let n = count("run count", n)?;
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
            slot.1 = n;
        }
    }
    Ok(counts)
}

pub(super) fn stage_durations(tx: &mut Tx<'_>) -> Result<Vec<StageDurationStat>, StoreError> {
    // `sum` of a bigint is a numeric: back to bigint (a sum past it is an error,
    // as SQLite's integer overflow is).
    let rows = tx.all(
        "summing stage durations",
        "SELECT kind, status, count(*), sum(finished_at_ms - started_at_ms)::bigint \
         FROM stages WHERE started_at_ms IS NOT NULL AND finished_at_ms IS NOT NULL \
         GROUP BY kind, status ORDER BY kind, status",
        &[],
        |r| {
            Ok((
                r.try_get::<_, String>(0)?,
                r.try_get::<_, String>(1)?,
                r.try_get::<_, i64>(2)?,
                r.try_get::<_, i64>(3)?,
            ))
        },
    )?;
    rows.into_iter()
        .map(|(kind, status, n, sum_ms)| {
            Ok(StageDurationStat {
                kind: parse_name::<StageKind>(kind)?,
                status: parse_name::<StageStatus>(status)?,
                count: count("stage count", n)?,
                sum_ms,
            })
        })
        .collect()
}

impl RunStore for PostgresStore {
    fn upsert_workload(&self, name: &str, repo: &str, now_ms: i64) -> Result<(), StoreError> {
        let what = "recording a workload";
        self.write(what, |tx| upsert_workload(tx, name, repo, now_ms, what))
    }

    fn workloads(&self) -> Result<Vec<WorkloadRecord>, StoreError> {
        self.read("listing workloads", workloads)
    }

    fn workload(&self, name: &str) -> Result<Option<WorkloadRecord>, StoreError> {
        self.read("reading a workload", |tx| workload(tx, name))
    }

    fn set_forge_repository(
        &self,
        workload: &str,
        forge_repository: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.write("setting a workload's forge repository", |tx| {
            set_forge_repository(tx, workload, forge_repository, now_ms)
        })
    }

    fn workload_by_forge_repository(
        &self,
        forge_repository: &str,
    ) -> Result<Option<WorkloadRecord>, StoreError> {
        self.read("finding a workload by forge repository", |tx| {
            workload_by_forge_repository(tx, forge_repository)
        })
    }

    fn create_run(&self, run: &NewRun) -> Result<(RunRecord, Vec<StageRecord>), StoreError> {
        let what = "creating a run";
        self.write(what, |tx| insert_run(tx, run, what))
    }

    fn start_run(&self, run: RunId, owner: &str, now_ms: i64) -> Result<(), StoreError> {
        let what = "starting a run";
        self.write(what, |tx| {
            start_run_in(tx, run, owner, now_ms, what)?;
            notify(tx, run.0, what)
        })
    }

    fn start_stage(&self, stage: StageId, now_ms: i64) -> Result<(), StoreError> {
        let what = "starting a stage";
        self.write_run(what, |tx| {
            let run = start_in(tx, stage, now_ms, what)?;
            notify(tx, run.0, what)
        })
    }

    fn finish_stage(
        &self,
        stage: StageId,
        status: StageStatus,
        exit_code: Option<i32>,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let what = "finishing a stage";
        self.write_run(what, |tx| {
            let run = end_in(tx, stage, status, exit_code, reason, now_ms, what)?;
            notify(tx, run.0, what)
        })
    }

    fn finish_run(
        &self,
        run: RunId,
        status: RunStatus,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let what = "finishing a run";
        self.write(what, |tx| {
            finish_run_in(tx, run, status, reason, now_ms, what)
        })
    }

    fn create_started_run(
        &self,
        repo: &str,
        run: &NewRun,
        owner: &str,
        now_ms: i64,
    ) -> Result<(RunRecord, Vec<StageRecord>), StoreError> {
        let what = "creating and starting a run";
        self.write(what, |tx| {
            upsert_workload(tx, &run.workload, repo, now_ms, what)?;
            let (record, _) = insert_run(tx, run, what)?;
            start_run_in(tx, record.id, owner, now_ms, what)?;
            let started = started_with_first_stage(tx, record.id, now_ms, what)?;
            notify(tx, record.id.0, what)?;
            Ok(started)
        })
    }

    fn claim_started_run(
        &self,
        owner: &str,
        now_ms: i64,
    ) -> Result<Option<(RunRecord, Vec<StageRecord>)>, StoreError> {
        let what = "claiming a queued run";
        // As `claim_queued_run`: `FOR UPDATE SKIP LOCKED` hands each claimer
        // another queued run; it notifies for the run.
        self.write_run(what, |tx| {
            let Some(run) = claim_queued_run(tx, owner, now_ms)? else {
                return Ok(None);
            };
            started_with_first_stage(tx, run.id, now_ms, what).map(Some)
        })
    }

    fn end_run(
        &self,
        ended: Option<&EndedStage<'_>>,
        end: &RunEnd<'_>,
    ) -> Result<Vec<i64>, StoreError> {
        let what = "ending a run";
        self.write(what, |tx| {
            let ids = match ended {
                Some(ended) => {
                    let (run, ids) = ended_in(tx, ended, what)?;
                    if run != end.run {
                        return Err(crate::runs::ended_of_another_run(ended.stage));
                    }
                    ids
                }
                None => Vec::new(),
            };
            // It notifies for the run.
            finish_run_in(tx, end.run, end.status, end.reason, end.finished_ms, what)?;
            Ok(ids)
        })
    }

    fn interrupt_run(&self, run: RunId, reason: &str, now_ms: i64) -> Result<bool, StoreError> {
        let what = "interrupting a run";
        self.write(what, |tx| interrupt(tx, run, reason, now_ms, what))
    }

    fn run_changes(&self) -> Result<Option<Box<dyn crate::RunChanges>>, StoreError> {
        let mut conn = self.connect()?;
        conn.client
            .batch_execute(&format!("LISTEN {RUN_CHANNEL}"))
            .map_err(|e| StoreError::postgres("listening for run changes", e))?;
        Ok(Some(Box::new(Listener {
            client: conn.client,
        })))
    }

    fn heartbeat_runs(&self, owner: &str, _now_ms: i64) -> Result<u64, StoreError> {
        let what = "renewing run leases";
        self.write(what, |tx| {
            tx.exec(
                what,
                &format!(
                    "UPDATE runs SET lease_at_ms = {DB_NOW_MS} \
                     WHERE owner = $1 AND status = 'running' AND lease_at_ms IS NOT NULL"
                ),
                &[&owner],
            )
        })
    }

    fn expire_leases(
        &self,
        stale_ms: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Vec<RunId>, StoreError> {
        let what = "expiring stale run leases";
        self.write(what, |tx| {
            let ids: Vec<i64> = tx.all(
                what,
                &format!(
                    "SELECT id FROM runs WHERE status = 'running' \
                     AND lease_at_ms IS NOT NULL AND lease_at_ms < {DB_NOW_MS} - $1 ORDER BY id"
                ),
                &[&stale_ms.max(0)],
                |r| r.try_get(0),
            )?;
            let mut out = Vec::new();
            for id in ids {
                if interrupt(tx, RunId(id), reason, now_ms, what)? {
                    out.push(RunId(id));
                }
            }
            Ok(out)
        })
    }

    fn requeue_expired_leases(
        &self,
        stale_ms: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Vec<(RunId, RunId)>, StoreError> {
        let what = "requeueing runs whose worker was lost";
        self.write(what, |tx| {
            let ids: Vec<i64> = tx.all(
                what,
                &format!(
                    "SELECT id FROM runs WHERE status = 'running' AND requeue_of IS NULL \
                     AND lease_at_ms IS NOT NULL AND lease_at_ms < {DB_NOW_MS} - $1 ORDER BY id"
                ),
                &[&stale_ms.max(0)],
                |r| r.try_get(0),
            )?;
            let mut out = Vec::new();
            for id in ids {
                let copy: i64 = tx.one(
                    what,
                    "INSERT INTO runs (workload, commit_id, git_ref, status, created_at_ms, \
                     trigger, for_worker, requeue_of) \
                     SELECT workload, commit_id, git_ref, $1, created_at_ms, trigger, for_worker, id \
                     FROM runs WHERE id = $2 RETURNING id",
                    &[&RunStatus::Queued.as_str(), &id],
                    |r| r.try_get(0),
                )?;
                tx.exec(
                    what,
                    "INSERT INTO stages (run_id, position, name, kind, command, status) \
                     SELECT $1, position, name, kind, command, $2 FROM stages \
                     WHERE run_id = $3 ORDER BY position",
                    &[&copy, &StageStatus::Pending.as_str(), &id],
                )?;
                let why = format!("{reason}; requeued once as run {copy}");
                if !interrupt(tx, RunId(id), &why, now_ms, what)? {
                    return Err(StoreError::Invalid {
                        what: "run",
                        why: format!("run {id} ended while being requeued"),
                    });
                }
                notify(tx, copy, what)?;
                out.push((RunId(id), RunId(copy)));
            }
            Ok(out)
        })
    }

    fn append_logs(&self, stage: StageId, lines: &[LogLine]) -> Result<(), StoreError> {
        let what = "appending log lines";
        // The run's and the stage's rows locked (see `append_in`): appends to
        // one run take turns, and see the count the previous one left.
        self.write_run(what, |tx| {
            let run = append_in(tx, stage, lines, what)?;
            if lines.is_empty() {
                return Ok(());
            }
            notify(tx, run.0, what)
        })
    }

    fn stage_boundary(&self, boundary: &StageBoundary<'_>) -> Result<Vec<i64>, StoreError> {
        let what = "recording a stage boundary";
        self.write(what, |tx| stage_boundary(tx, boundary, what))
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let what = "listing runs";
        let workload = filter.workload.as_deref();
        let status = filter.status.map(RunStatus::as_str);
        let prefix = filter.commit_prefix.clone();
        let prefix_len = prefix
            .as_ref()
            .map(|p| i32::try_from(p.chars().count()).unwrap_or(i32::MAX));
        let kind = filter.trigger.map(|k| k.stored_kind().to_owned());
        let kind_colon = kind.as_ref().map(|k| format!("{k}:"));
        let kind_len = kind_colon
            .as_ref()
            .map(|k| i32::try_from(k.len()).unwrap_or(i32::MAX));
        let after_at = filter.after.map(|a| a.created_at_ms);
        let after_id = filter.after.map(|a| a.id.0);
        let limit = sql_limit(filter.limit);
        let mut conditions = Vec::new();
        let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::new();
        if let Some(workload) = &workload {
            args.push(workload);
            conditions.push(format!("workload = ${}", args.len()));
        }
        if let Some(status) = &status {
            args.push(status);
            conditions.push(format!("status = ${}", args.len()));
        }
        if let (Some(prefix), Some(len)) = (&prefix, &prefix_len) {
            args.push(len);
            args.push(prefix);
            conditions.push(format!(
                "substr(commit_id, 1, ${}) = ${}",
                args.len() - 1,
                args.len()
            ));
        }
        if let (Some(kind), Some(colon), Some(len)) = (&kind, &kind_colon, &kind_len) {
            args.push(kind);
            args.push(len);
            args.push(colon);
            conditions.push(format!(
                "(trigger = ${} OR substr(trigger, 1, ${}) = ${})",
                args.len() - 2,
                args.len() - 1,
                args.len()
            ));
        }
        if let (Some(at), Some(id)) = (&after_at, &after_id) {
            args.push(at);
            args.push(id);
            conditions.push(format!(
                "(created_at_ms < ${0} OR (created_at_ms = ${0} AND id < ${1}))",
                args.len() - 1,
                args.len()
            ));
        }
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        args.push(&limit);
        sql.push_str(&format!(
            " ORDER BY created_at_ms DESC, id DESC LIMIT ${}",
            args.len()
        ));

        self.read(what, |tx| {
            let raw = tx.all(what, &sql, &args, RawRun::from_row)?;
            raw.into_iter().map(RawRun::into_record).collect()
        })
    }

    fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let what = "reading a run";
        self.read(what, |tx| {
            tx.opt(
                what,
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"),
                &[&id.0],
                RawRun::from_row,
            )?
            .map(RawRun::into_record)
            .transpose()
        })
    }

    fn stages(&self, run: RunId) -> Result<Vec<StageRecord>, StoreError> {
        let what = "reading stages";
        self.snapshot(what, |tx| {
            run_status(tx, run, what)?;
            let raw = tx.all(
                what,
                &format!("SELECT {STAGE_COLUMNS} FROM stages WHERE run_id = $1 ORDER BY position"),
                &[&run.0],
                RawStage::from_row,
            )?;
            raw.into_iter().map(RawStage::into_record).collect()
        })
    }

    fn logs(
        &self,
        stage: StageId,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        let what = "reading log lines";
        self.snapshot(what, |tx| {
            require_stage(tx, stage, what)?;
            let from = match after_seq {
                None => 0,
                // Past the last representable seq there is nothing.
                Some(after) => match after.checked_add(1).map(i64::try_from) {
                    Some(Ok(from)) => from,
                    _ => return Ok(Vec::new()),
                },
            };
            query_lines(
                tx,
                &format!(
                    "SELECT {LOG_COLUMNS} FROM log_lines WHERE stage_id = $1 AND seq >= $2 \
                     ORDER BY seq LIMIT $3"
                ),
                &[&stage.0, &from, &sql_limit(limit)],
                what,
            )
        })
    }

    fn log_tail(&self, stage: StageId, n: usize) -> Result<Vec<LogLine>, StoreError> {
        let what = "reading the end of a log";
        self.snapshot(what, |tx| {
            require_stage(tx, stage, what)?;
            let mut lines = query_lines(
                tx,
                &format!(
                    "SELECT {LOG_COLUMNS} FROM log_lines WHERE stage_id = $1 \
                     ORDER BY seq DESC LIMIT $2"
                ),
                &[&stage.0, &sql_limit(n)],
                what,
            )?;
            lines.reverse();
            Ok(lines)
        })
    }

    fn log_stats(&self, stage: StageId) -> Result<LogStats, StoreError> {
        let what = "reading log statistics";
        self.read(what, |tx| {
            let row: Option<(i64, i64)> = tx.opt(
                what,
                "SELECT log_lines, log_bytes FROM stages WHERE id = $1",
                &[&stage.0],
                |row| Ok((row.try_get(0)?, row.try_get(1)?)),
            )?;
            let (lines, bytes) = row.ok_or_else(|| not_found_stage(stage))?;
            Ok(LogStats {
                lines: count("stage log line count", lines)?,
                bytes: count("stage log byte count", bytes)?,
            })
        })
    }

    fn claim_queued_run(&self, owner: &str, now_ms: i64) -> Result<Option<RunRecord>, StoreError> {
        // Beside other claims and other runs' progress: `FOR UPDATE SKIP
        // LOCKED` hands each claimer another queued run.
        self.write_run("claiming a queued run", |tx| {
            claim_queued_run(tx, owner, now_ms)
        })
    }

    fn queued_count(&self) -> Result<u64, StoreError> {
        self.read("counting queued runs", queued_count)
    }

    fn run_counts(&self) -> Result<Vec<(RunStatus, u64)>, StoreError> {
        self.read("counting runs by status", run_counts)
    }

    fn stage_durations(&self) -> Result<Vec<StageDurationStat>, StoreError> {
        self.read("summing stage durations", stage_durations)
    }
}

// ---- a stage boundary ---------------------------------------------------------------

/// [`RunStore::stage_boundary`] in `tx`: the ended stage's last log lines, its
/// end and its evidence, then the next stage's start, each by the function its
/// own method uses (`append_in`, `end_in`, `insert_evidence`, `start_in`), with
/// one notification for the run. A refusal anywhere rolls back all of it.
fn stage_boundary(
    tx: &mut Tx<'_>,
    boundary: &StageBoundary<'_>,
    what: &'static str,
) -> Result<Vec<i64>, StoreError> {
    let (mut run, ids) = match &boundary.ended {
        Some(ended) => {
            let (run, ids) = ended_in(tx, ended, what)?;
            (Some(run), ids)
        }
        None => (None, Vec::new()),
    };
    if let Some((next, started_ms)) = boundary.next {
        let next_run = start_in(tx, next, started_ms, what)?;
        if run.is_some_and(|run| run != next_run) {
            return Err(crate::runs::next_of_another_run(next));
        }
        run = Some(next_run);
    }
    if let Some(run) = run {
        notify(tx, run.0, what)?;
    }
    Ok(ids)
}

/// An ended stage in `tx` (a boundary's, and a run's last): its last log
/// lines, its end and its evidence filed under its run, by `append_in`,
/// `end_in` and `insert_evidence`; returns the run and the evidence ids.
fn ended_in(
    tx: &mut Tx<'_>,
    ended: &EndedStage<'_>,
    what: &'static str,
) -> Result<(RunId, Vec<i64>), StoreError> {
    // Every bundle's size before anything is written.
    for e in ended.evidence {
        check_evidence_size(e)?;
    }
    let run = append_in(tx, ended.stage, ended.log, what)?;
    end_in(
        tx,
        ended.stage,
        ended.status,
        ended.exit_code,
        ended.reason,
        ended.finished_ms,
        what,
    )?;
    let mut ids = Vec::with_capacity(ended.evidence.len());
    for e in ended.evidence {
        if e.run != Some(run) {
            return Err(crate::runs::evidence_of_another_run());
        }
        ids.push(insert_evidence(tx, e, what)?);
    }
    Ok((run, ids))
}

/// Records a workload or updates its repository (the body of
/// [`RunStore::upsert_workload`]).
fn upsert_workload(
    tx: &mut Tx<'_>,
    name: &str,
    repo: &str,
    now_ms: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    tx.exec(
        what,
        "INSERT INTO workloads (name, repo, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $3) \
         ON CONFLICT (name) DO UPDATE SET repo = excluded.repo, \
         updated_at_ms = excluded.updated_at_ms",
        &[&name, &repo, &now_ms],
    )?;
    Ok(())
}

/// `queued` -> `running`, owned by `owner` (the body of [`RunStore::start_run`]).
fn start_run_in(
    tx: &mut Tx<'_>,
    run: RunId,
    owner: &str,
    now_ms: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    let status = run_status(tx, run, what)?;
    if status != RunStatus::Queued {
        return Err(StoreError::InvalidTransition {
            what: "run",
            id: run.0,
            from: status.as_str(),
            to: RunStatus::Running.as_str(),
        });
    }
    tx.exec(
        what,
        "UPDATE runs SET status = $1, owner = $2, started_at_ms = $3 WHERE id = $4",
        &[&RunStatus::Running.as_str(), &owner, &now_ms, &run.0],
    )?;
    Ok(())
}

/// A running run's first stage started at `now_ms` by `start_in` (none when
/// it has no stages); the run and its stages as stored.
fn started_with_first_stage(
    tx: &mut Tx<'_>,
    run: RunId,
    now_ms: i64,
    what: &'static str,
) -> Result<(RunRecord, Vec<StageRecord>), StoreError> {
    let first: Option<i64> = tx.opt(
        what,
        "SELECT id FROM stages WHERE run_id = $1 ORDER BY position LIMIT 1",
        &[&run.0],
        |r| r.try_get(0),
    )?;
    if let Some(first) = first {
        start_in(tx, StageId(first), now_ms, what)?;
    }
    let record = tx
        .one(
            what,
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"),
            &[&run.0],
            RawRun::from_row,
        )?
        .into_record()?;
    let stages = tx
        .all(
            what,
            &format!("SELECT {STAGE_COLUMNS} FROM stages WHERE run_id = $1 ORDER BY position"),
            &[&run.0],
            RawStage::from_row,
        )?
        .into_iter()
        .map(RawStage::into_record)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((record, stages))
}

/// A queued or running run -> the final `status`: a stage still running is
/// interrupted, pending ones skipped, and the run's change notified (the body
/// of [`RunStore::finish_run`]).
fn finish_run_in(
    tx: &mut Tx<'_>,
    run: RunId,
    status: RunStatus,
    reason: Option<&str>,
    now_ms: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    let current = run_status(tx, run, what)?;
    if current.is_final() || !status.is_final() {
        return Err(StoreError::InvalidTransition {
            what: "run",
            id: run.0,
            from: current.as_str(),
            to: status.as_str(),
        });
    }
    interrupt_running_stages(tx, run, ENDED_WHILE_RUNNING, now_ms, what)?;
    settle_run(tx, run, status, reason, now_ms, what)
}

/// Starts a pending stage of a running run in `tx` (`start_stage`, and a
/// boundary's next stage); returns its run.
fn start_in(
    tx: &mut Tx<'_>,
    stage: StageId,
    now_ms: i64,
    what: &'static str,
) -> Result<RunId, StoreError> {
    let (run, run_status, status) = stage_state(tx, stage, what)?;
    if status != StageStatus::Pending {
        return Err(StoreError::InvalidTransition {
            what: "stage",
            id: stage.0,
            from: status.as_str(),
            to: StageStatus::Running.as_str(),
        });
    }
    if run_status != RunStatus::Running {
        return Err(StoreError::RunNotActive {
            run: run.0,
            status: run_status.as_str(),
            action: "start a stage",
        });
    }
    tx.exec(
        what,
        "UPDATE stages SET status = $1, started_at_ms = $2 WHERE id = $3",
        &[&StageStatus::Running.as_str(), &now_ms, &stage.0],
    )?;
    Ok(run)
}

/// Ends a running stage in `tx` with a final status (`finish_stage`, and a
/// boundary's ended stage); returns its run.
fn end_in(
    tx: &mut Tx<'_>,
    stage: StageId,
    status: StageStatus,
    exit_code: Option<i32>,
    reason: Option<&str>,
    now_ms: i64,
    what: &'static str,
) -> Result<RunId, StoreError> {
    let (run, run_status, current) = stage_state(tx, stage, what)?;
    let target_final = !matches!(status, StageStatus::Pending | StageStatus::Running);
    if current != StageStatus::Running || !target_final {
        return Err(StoreError::InvalidTransition {
            what: "stage",
            id: stage.0,
            from: current.as_str(),
            to: status.as_str(),
        });
    }
    // Unreachable through this API (a final run has no running stage), but
    // the database may have been edited: a final run stays as it is.
    if run_status.is_final() {
        return Err(StoreError::RunNotActive {
            run: run.0,
            status: run_status.as_str(),
            action: "finish a stage",
        });
    }
    tx.exec(
        what,
        "UPDATE stages SET status = $1, exit_code = $2, reason = $3, \
         finished_at_ms = $4 WHERE id = $5",
        &[
            &status.as_str(),
            &exit_code.map(i64::from),
            &reason,
            &now_ms,
            &stage.0,
        ],
    )?;
    Ok(run)
}

/// Appends a batch of log lines to a stage of an active run in `tx`
/// (`append_logs`, and a boundary's last lines), the run's and the stage's
/// rows locked; the whole batch's sequence is checked before any line is
/// written, and an empty batch writes nothing. Returns the stage's run.
fn append_in(
    tx: &mut Tx<'_>,
    stage: StageId,
    lines: &[LogLine],
    what: &'static str,
) -> Result<RunId, StoreError> {
    let row: Option<(i64, String, i64, i64)> = tx.opt(
        what,
        "SELECT s.run_id, r.status, s.log_lines, s.log_bytes \
         FROM stages s JOIN runs r ON r.id = s.run_id WHERE s.id = $1 \
         FOR UPDATE OF s, r",
        &[&stage.0],
        |row| {
            Ok((
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            ))
        },
    )?;
    let Some((run, run_status, stored_lines, stored_bytes)) = row else {
        return Err(not_found_stage(stage));
    };
    let run_status: RunStatus = parse_name(run_status)?;
    if run_status.is_final() {
        return Err(StoreError::RunNotActive {
            run,
            status: run_status.as_str(),
            action: "append log lines",
        });
    }
    let first = count("stage log line count", stored_lines)?;
    let mut bytes = count("stage log byte count", stored_bytes)?;
    for (expected, line) in (first..).zip(lines) {
        if line.seq != expected {
            return Err(StoreError::LogSequence {
                stage: stage.0,
                expected,
                found: line.seq,
            });
        }
    }
    if lines.is_empty() {
        return Ok(RunId(run));
    }
    // A batch at a time (one statement per chunk, not per line).
    for chunk in lines.chunks(BATCH) {
        let seqs: Vec<i64> = chunk.iter().map(|l| sql_limit(l.seq)).collect();
        let streams: Vec<&str> = chunk.iter().map(|l| l.stream.as_str()).collect();
        let ats: Vec<i64> = chunk.iter().map(|l| l.at_ms).collect();
        let texts: Vec<&[u8]> = chunk.iter().map(|l| l.text.as_slice()).collect();
        tx.exec(
            what,
            "INSERT INTO log_lines (stage_id, seq, stream, at_ms, bytes) \
             SELECT $1, l.seq, l.stream, l.at_ms, l.bytes \
             FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bytea[]) \
             AS l (seq, stream, at_ms, bytes)",
            &[&stage.0, &seqs, &streams, &ats, &texts],
        )?;
    }
    for line in lines {
        bytes = bytes.saturating_add(len_u64(line.text.len()));
    }
    let total = first.saturating_add(len_u64(lines.len()));
    tx.exec(
        what,
        "UPDATE stages SET log_lines = $1, log_bytes = $2 WHERE id = $3",
        &[&sql_limit(total), &sql_limit(bytes), &stage.0],
    )?;
    Ok(RunId(run))
}
