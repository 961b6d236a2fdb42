//! [`RunStore`] on SQLite: workloads, runs, stages, step logs, the workers' queue
//! and the numbers behind the metrics.

use cairn_model::run::UnknownName;
use cairn_model::{
    LogLine, LogStream, NewRun, RunId, RunRecord, RunStatus, StageId, StageKind, StageRecord,
    StageStatus, Trigger, WorkloadRecord,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::text::{check_len, check_nonempty};
use super::{SqliteStore, count, len_u64, parse_name, sql_limit};
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
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawRun {
            id: row.get(0)?,
            workload: row.get(1)?,
            commit: row.get(2)?,
            git_ref: row.get(3)?,
            status: row.get(4)?,
            reason: row.get(5)?,
            created_at_ms: row.get(6)?,
            started_at_ms: row.get(7)?,
            finished_at_ms: row.get(8)?,
            owner: row.get(9)?,
            trigger: row.get(10)?,
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
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawStage {
            id: row.get(0)?,
            run: row.get(1)?,
            position: row.get(2)?,
            name: row.get(3)?,
            kind: row.get(4)?,
            command: row.get(5)?,
            status: row.get(6)?,
            exit_code: row.get(7)?,
            reason: row.get(8)?,
            started_at_ms: row.get(9)?,
            finished_at_ms: row.get(10)?,
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
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawLine {
            seq: row.get(0)?,
            stream: row.get(1)?,
            at_ms: row.get(2)?,
            bytes: row.get(3)?,
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
    tx: &rusqlite::Connection,
    run: RunId,
    what: &'static str,
) -> Result<RunStatus, StoreError> {
    let status: Option<String> = super::cached_row(
        tx,
        "SELECT status FROM runs WHERE id = ?1",
        [run.0],
        |row| row.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite(what))?;
    match status {
        Some(status) => parse_name(status),
        None => Err(not_found_run(run)),
    }
}

/// A stage's run, the run's status and the stage's status.
fn stage_state(
    tx: &rusqlite::Connection,
    stage: StageId,
    what: &'static str,
) -> Result<(RunId, RunStatus, StageStatus), StoreError> {
    let row: Option<(i64, String, String)> = super::cached_row(
        tx,
        "SELECT s.run_id, r.status, s.status FROM stages s JOIN runs r ON r.id = s.run_id \
             WHERE s.id = ?1",
        [stage.0],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )
    .optional()
    .map_err(StoreError::sqlite(what))?;
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
fn require_stage(tx: &Connection, stage: StageId, what: &'static str) -> Result<(), StoreError> {
    let found = super::cached_row(tx, "SELECT 1 FROM stages WHERE id = ?1", [stage.0], |_| {
        Ok(())
    })
    .optional()
    .map_err(StoreError::sqlite(what))?;
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
    tx: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &'static str,
) -> Result<Vec<LogLine>, StoreError> {
    let mut stmt = tx.prepare_cached(sql).map_err(StoreError::sqlite(what))?;
    let raw = stmt
        .query_map(params, RawLine::from_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    raw.into_iter().map(RawLine::into_line).collect()
}

/// The longest trigger text a run keeps.
const MAX_TRIGGER_BYTES: usize = 4096;

/// Inserts a `queued` run of a known workload and its `pending` stages: the body of
/// [`Store::create_run`], shared with [`Store::accept_delivery`].
pub(super) fn insert_run(
    tx: &rusqlite::Connection,
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
    let workload_known = super::cached_row(
        tx,
        "SELECT 1 FROM workloads WHERE name = ?1",
        [&run.workload],
        |_| Ok(()),
    )
    .optional()
    .map_err(StoreError::sqlite(what))?
    .is_some();
    if !workload_known {
        return Err(StoreError::NotFound {
            what: "workload",
            id: run.workload.clone(),
        });
    }
    tx.execute(
        "INSERT INTO runs (workload, commit_id, git_ref, status, created_at_ms, trigger, \
         for_worker) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            run.workload,
            run.commit,
            run.git_ref,
            RunStatus::Queued.as_str(),
            run.created_at_ms,
            trigger,
            run.trigger.for_worker()
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    let run_id = RunId(tx.last_insert_rowid());

    let mut insert = tx
        .prepare_cached(
            "INSERT INTO stages (run_id, position, name, kind, command, status) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(StoreError::sqlite(what))?;
    let mut stages = Vec::with_capacity(run.stages.len());
    for (index, stage) in (0u32..).zip(&run.stages) {
        insert
            .execute(params![
                run_id.0,
                index,
                stage.name,
                stage.kind.as_str(),
                stage.command,
                StageStatus::Pending.as_str()
            ])
            .map_err(StoreError::sqlite(what))?;
        stages.push(StageRecord {
            id: StageId(tx.last_insert_rowid()),
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

/// The reason given to a stage that was still running when its run finished.
const ENDED_WHILE_RUNNING: &str = "the run finished while this stage was running";

/// Ends a run: its pending stages are skipped, the run gets its final status.
fn settle_run(
    tx: &rusqlite::Connection,
    run: RunId,
    status: RunStatus,
    reason: Option<&str>,
    now_ms: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE stages SET status = ?1 WHERE run_id = ?2 AND status = ?3",
        params![
            StageStatus::Skipped.as_str(),
            run.0,
            StageStatus::Pending.as_str()
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    tx.execute(
        "UPDATE runs SET status = ?1, reason = ?2, finished_at_ms = ?3 WHERE id = ?4",
        params![status.as_str(), reason, now_ms, run.0],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
}

// ---- workloads -------------------------------------------------------------------------

const WORKLOAD_COLUMNS: &str = "name, repo, forge_repository, created_at_ms, updated_at_ms";

fn workload_row(r: &Row<'_>) -> rusqlite::Result<WorkloadRecord> {
    Ok(WorkloadRecord {
        name: r.get(0)?,
        repo: r.get(1)?,
        forge_repository: r.get(2)?,
        created_at_ms: r.get(3)?,
        updated_at_ms: r.get(4)?,
    })
}

fn one_workload(
    tx: &rusqlite::Connection,
    filter: &str,
    value: &str,
    what: &'static str,
) -> Result<Option<WorkloadRecord>, StoreError> {
    super::cached_row(
        tx,
        &format!("SELECT {WORKLOAD_COLUMNS} FROM workloads WHERE {filter}"),
        [value],
        workload_row,
    )
    .optional()
    .map_err(StoreError::sqlite(what))
}

pub(super) fn workloads(tx: &rusqlite::Connection) -> Result<Vec<WorkloadRecord>, StoreError> {
    let what = "listing workloads";
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {WORKLOAD_COLUMNS} FROM workloads ORDER BY name"
        ))
        .map_err(StoreError::sqlite(what))?;
    stmt.query_map([], workload_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))
}

pub(super) fn workload(
    tx: &rusqlite::Connection,
    name: &str,
) -> Result<Option<WorkloadRecord>, StoreError> {
    one_workload(tx, "name = ?1", name, "reading a workload")
}

pub(super) fn workload_by_forge_repository(
    tx: &rusqlite::Connection,
    forge_repository: &str,
) -> Result<Option<WorkloadRecord>, StoreError> {
    one_workload(
        tx,
        "forge_repository = ?1",
        forge_repository,
        "finding a workload by forge repository",
    )
}

pub(super) fn set_forge_repository(
    tx: &Transaction<'_>,
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
    tx.execute(
        "UPDATE workloads SET forge_repository = ?2, updated_at_ms = ?3 WHERE name = ?1",
        params![workload, forge_repository, now_ms],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
}

// ---- the workers' queue ----------------------------------------------------------------

/// The queue's condition, spelled as in the partial index `runs_worker_queue` so
/// SQLite uses it (a bound parameter would not match the index).
const QUEUED_FOR_WORKERS: &str = "for_worker = 1 AND status = 'queued'";

pub(super) fn claim_queued_run(
    tx: &Transaction<'_>,
    owner: &str,
    now_ms: i64,
) -> Result<Option<RunRecord>, StoreError> {
    let what = "claiming a queued run";
    debug_assert_eq!(RunStatus::Queued.as_str(), "queued");
    check_len("a run's owner", &[owner])?;
    let oldest: Option<i64> = super::cached_row(
        tx,
        &format!(
            "SELECT id FROM runs WHERE {QUEUED_FOR_WORKERS} \
                 ORDER BY created_at_ms, id LIMIT 1"
        ),
        [],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite(what))?;
    let Some(id) = oldest else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE runs SET status = ?1, owner = ?2, started_at_ms = ?3, lease_at_ms = ?3 \
         WHERE id = ?4",
        params![RunStatus::Running.as_str(), owner, now_ms, id],
    )
    .map_err(StoreError::sqlite(what))?;
    let raw = super::cached_row(
        tx,
        &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
        [id],
        RawRun::from_row,
    )
    .map_err(StoreError::sqlite(what))?;
    raw.into_record().map(Some)
}

/// `run`'s `running` stages -> `interrupted` with `reason` (a run that ends,
/// whether interrupted or finished, leaves no stage running).
fn interrupt_running_stages(
    tx: &rusqlite::Connection,
    run: RunId,
    reason: &str,
    now_ms: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE stages SET status = ?1, reason = ?2, finished_at_ms = ?3 \
         WHERE run_id = ?4 AND status = ?5",
        params![
            StageStatus::Interrupted.as_str(),
            reason,
            now_ms,
            run.0,
            StageStatus::Running.as_str()
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
}

/// If `run` is not final: its `running` stages -> `interrupted`, the run ->
/// `interrupted` with `reason` (pending stages skipped); whether it changed.
fn interrupt(
    tx: &Transaction<'_>,
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

pub(super) fn queued_count(tx: &rusqlite::Connection) -> Result<u64, StoreError> {
    let n: i64 = super::cached_row(
        tx,
        &format!("SELECT count(*) FROM runs WHERE {QUEUED_FOR_WORKERS}"),
        [],
        |r| r.get(0),
    )
    .map_err(StoreError::sqlite("counting queued runs"))?;
    count("queued run count", n)
}

// ---- metrics ---------------------------------------------------------------------------

pub(super) fn run_counts(tx: &rusqlite::Connection) -> Result<Vec<(RunStatus, u64)>, StoreError> {
    let what = "counting runs by status";
    let mut stmt = tx
        .prepare_cached("SELECT status, count(*) FROM runs GROUP BY status")
        .map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
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

pub(super) fn stage_durations(
    tx: &rusqlite::Connection,
) -> Result<Vec<StageDurationStat>, StoreError> {
    let what = "summing stage durations";
    let mut stmt = tx
        .prepare_cached(
            "SELECT kind, status, count(*), sum(finished_at_ms - started_at_ms) FROM stages \
             WHERE started_at_ms IS NOT NULL AND finished_at_ms IS NOT NULL \
             GROUP BY kind, status ORDER BY kind, status",
        )
        .map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
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

/// `pending` -> `running` (the body of [`RunStore::start_stage`]); returns the
/// stage's run.
fn start_stage(
    tx: &Connection,
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
    tx.execute(
        "UPDATE stages SET status = ?1, started_at_ms = ?2 WHERE id = ?3",
        params![StageStatus::Running.as_str(), now_ms, stage.0],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(run)
}

/// `running` -> a final `status` (the body of [`RunStore::finish_stage`]);
/// returns the stage's run.
fn finish_stage(
    tx: &Connection,
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
    tx.execute(
        "UPDATE stages SET status = ?1, exit_code = ?2, reason = ?3, \
         finished_at_ms = ?4 WHERE id = ?5",
        params![status.as_str(), exit_code, reason, now_ms, stage.0],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(run)
}

/// Appends lines to a stage's log (the body of [`RunStore::append_logs`]).
fn append_logs(
    tx: &Connection,
    stage: StageId,
    lines: &[LogLine],
    what: &'static str,
) -> Result<(), StoreError> {
    let row: Option<(i64, String, i64, i64)> = super::cached_row(
        tx,
        "SELECT s.run_id, r.status, s.log_lines, s.log_bytes \
             FROM stages s JOIN runs r ON r.id = s.run_id WHERE s.id = ?1",
        [stage.0],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )
    .optional()
    .map_err(StoreError::sqlite(what))?;
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
    // Check the whole batch before writing any of it.
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
        return Ok(());
    }

    let mut insert = tx
        .prepare_cached(
            "INSERT INTO log_lines (stage_id, seq, stream, at_ms, bytes) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(StoreError::sqlite(what))?;
    for line in lines {
        insert
            .execute(params![
                stage.0,
                sql_limit(line.seq),
                line.stream.as_str(),
                line.at_ms,
                line.text
            ])
            .map_err(StoreError::sqlite(what))?;
        bytes = bytes.saturating_add(len_u64(line.text.len()));
    }
    let total = first.saturating_add(len_u64(lines.len()));
    tx.execute(
        "UPDATE stages SET log_lines = ?1, log_bytes = ?2 WHERE id = ?3",
        params![sql_limit(total), sql_limit(bytes), stage.0],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
}

/// Records a workload or updates its repository (the body of
/// [`RunStore::upsert_workload`]).
fn upsert_workload(
    tx: &Connection,
    name: &str,
    repo: &str,
    now_ms: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO workloads (name, repo, created_at_ms, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT (name) DO UPDATE SET repo = excluded.repo, \
         updated_at_ms = excluded.updated_at_ms",
        params![name, repo, now_ms],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
}

/// `queued` -> `running`, owned by `owner` (the body of [`RunStore::start_run`]).
fn start_run_in(
    tx: &Connection,
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
    tx.execute(
        "UPDATE runs SET status = ?1, owner = ?2, started_at_ms = ?3 WHERE id = ?4",
        params![RunStatus::Running.as_str(), owner, now_ms, run.0],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
}

/// A running run's first stage started at `now_ms` (none when it has no
/// stages); the run and its stages as stored.
fn started_with_first_stage(
    tx: &Connection,
    run: RunId,
    now_ms: i64,
    what: &'static str,
) -> Result<(RunRecord, Vec<StageRecord>), StoreError> {
    let first: Option<i64> = super::cached_row(
        tx,
        "SELECT id FROM stages WHERE run_id = ?1 ORDER BY position LIMIT 1",
        [run.0],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite(what))?;
    if let Some(first) = first {
        start_stage(tx, StageId(first), now_ms, what)?;
    }
    let record = super::cached_row(
        tx,
        &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
        [run.0],
        RawRun::from_row,
    )
    .map_err(StoreError::sqlite(what))?
    .into_record()?;
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {STAGE_COLUMNS} FROM stages WHERE run_id = ?1 ORDER BY position"
        ))
        .map_err(StoreError::sqlite(what))?;
    let stages = stmt
        .query_map([run.0], RawStage::from_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?
        .into_iter()
        .map(RawStage::into_record)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((record, stages))
}

/// A queued or running run -> the final `status`: a stage still running is
/// interrupted, pending ones skipped (the body of [`RunStore::finish_run`]).
fn finish_run_in(
    tx: &Connection,
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

/// Every bundle of an ended stage within the size limit, before anything is written.
fn check_evidence_sizes(ended: &EndedStage<'_>) -> Result<(), StoreError> {
    ended
        .evidence
        .iter()
        .try_for_each(super::evidence::check_size)
}

/// An ended stage in `tx` (a boundary's, and a run's last): its last log
/// lines, its end and its evidence, filed under its run; returns the run and
/// the evidence ids.
fn ended_in(
    tx: &Connection,
    ended: &EndedStage<'_>,
    what: &'static str,
) -> Result<(RunId, Vec<i64>), StoreError> {
    append_logs(tx, ended.stage, ended.log, what)?;
    let run = finish_stage(
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
        ids.push(super::evidence::insert_evidence(tx, e, what)?);
    }
    Ok((run, ids))
}

impl RunStore for SqliteStore {
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
        self.write(what, |tx| start_run_in(tx, run, owner, now_ms, what))
    }

    fn start_stage(&self, stage: StageId, now_ms: i64) -> Result<(), StoreError> {
        let what = "starting a stage";
        self.write(what, |tx| start_stage(tx, stage, now_ms, what).map(drop))
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
        self.write(what, |tx| {
            finish_stage(tx, stage, status, exit_code, reason, now_ms, what).map(drop)
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

    fn interrupt_run(&self, run: RunId, reason: &str, now_ms: i64) -> Result<bool, StoreError> {
        let what = "interrupting a run";
        self.write(what, |tx| interrupt(tx, run, reason, now_ms, what))
    }

    fn run_changes(&self) -> Result<Option<Box<dyn crate::RunChanges>>, StoreError> {
        // One machine: readers poll the database file.
        Ok(None)
    }

    fn heartbeat_runs(&self, owner: &str, now_ms: i64) -> Result<u64, StoreError> {
        let what = "renewing run leases";
        self.write(what, |tx| {
            let n = tx
                .execute(
                    "UPDATE runs SET lease_at_ms = ?1 \
                     WHERE owner = ?2 AND status = 'running' AND lease_at_ms IS NOT NULL",
                    params![now_ms, owner],
                )
                .map_err(StoreError::sqlite(what))?;
            Ok(n as u64)
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
            let ids = stale_running(tx, stale_ms, now_ms, false, what)?;
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
            let ids = stale_running(tx, stale_ms, now_ms, true, what)?;
            let mut out = Vec::new();
            for id in ids {
                tx.execute(
                    "INSERT INTO runs (workload, commit_id, git_ref, status, created_at_ms, \
                     trigger, for_worker, requeue_of) \
                     SELECT workload, commit_id, git_ref, ?1, created_at_ms, trigger, for_worker, id \
                     FROM runs WHERE id = ?2",
                    params![RunStatus::Queued.as_str(), id],
                )
                .map_err(StoreError::sqlite(what))?;
                let copy = tx.last_insert_rowid();
                tx.execute(
                    "INSERT INTO stages (run_id, position, name, kind, command, status) \
                     SELECT ?1, position, name, kind, command, ?2 FROM stages \
                     WHERE run_id = ?3 ORDER BY position",
                    params![copy, StageStatus::Pending.as_str(), id],
                )
                .map_err(StoreError::sqlite(what))?;
                let why = format!("{reason}; requeued once as run {copy}");
                if !interrupt(tx, RunId(id), &why, now_ms, what)? {
                    return Err(StoreError::Invalid {
                        what: "run",
                        why: format!("run {id} ended while being requeued"),
                    });
                }
                out.push((RunId(id), RunId(copy)));
            }
            Ok(out)
        })
    }

    fn append_logs(&self, stage: StageId, lines: &[LogLine]) -> Result<(), StoreError> {
        let what = "appending log lines";
        self.write(what, |tx| append_logs(tx, stage, lines, what))
    }

    fn stage_boundary(&self, boundary: &StageBoundary<'_>) -> Result<Vec<i64>, StoreError> {
        let what = "recording a stage boundary";
        if let Some(ended) = &boundary.ended {
            check_evidence_sizes(ended)?;
        }
        self.write(what, |tx| {
            let (run, ids) = match &boundary.ended {
                Some(ended) => {
                    let (run, ids) = ended_in(tx, ended, what)?;
                    (Some(run), ids)
                }
                None => (None, Vec::new()),
            };
            if let Some((next, started_ms)) = boundary.next {
                let (next_run, _, _) = stage_state(tx, next, what)?;
                if run.is_some_and(|run| run != next_run) {
                    return Err(crate::runs::next_of_another_run(next));
                }
                start_stage(tx, next, started_ms, what)?;
            }
            Ok(ids)
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
            started_with_first_stage(tx, record.id, now_ms, what)
        })
    }

    fn claim_started_run(
        &self,
        owner: &str,
        now_ms: i64,
    ) -> Result<Option<(RunRecord, Vec<StageRecord>)>, StoreError> {
        let what = "claiming a queued run";
        self.write(what, |tx| {
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
        if let Some(ended) = ended {
            check_evidence_sizes(ended)?;
        }
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
            finish_run_in(tx, end.run, end.status, end.reason, end.finished_ms, what)?;
            Ok(ids)
        })
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let what = "listing runs";
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        if let Some(workload) = &filter.workload {
            conditions.push("workload = ?");
            args.push(Value::Text(workload.clone()));
        }
        if let Some(status) = filter.status {
            conditions.push("status = ?");
            args.push(Value::Text(status.as_str().to_owned()));
        }
        if let Some(prefix) = &filter.commit_prefix {
            conditions.push("substr(commit_id, 1, ?) = ?");
            args.push(Value::Integer(
                i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX),
            ));
            args.push(Value::Text(prefix.clone()));
        }
        if let Some(kind) = filter.trigger {
            // `cli`, or `api:…`, `webhook:…`, `push:…`.
            conditions.push("(trigger = ? OR substr(trigger, 1, ?) = ?)");
            let kind = kind.stored_kind();
            args.push(Value::Text(kind.to_owned()));
            args.push(Value::Integer(
                i64::try_from(kind.len() + 1).unwrap_or(i64::MAX),
            ));
            args.push(Value::Text(format!("{kind}:")));
        }
        if let Some(after) = filter.after {
            conditions.push("(created_at_ms < ? OR (created_at_ms = ? AND id < ?))");
            args.push(Value::Integer(after.created_at_ms));
            args.push(Value::Integer(after.created_at_ms));
            args.push(Value::Integer(after.id.0));
        }
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(" ORDER BY created_at_ms DESC, id DESC LIMIT ?");
        args.push(Value::Integer(sql_limit(filter.limit)));

        self.read(what, |tx| {
            let mut stmt = tx.prepare_cached(&sql).map_err(StoreError::sqlite(what))?;
            let raw = stmt
                .query_map(rusqlite::params_from_iter(args), RawRun::from_row)
                .map_err(StoreError::sqlite(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))?;
            raw.into_iter().map(RawRun::into_record).collect()
        })
    }

    fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let what = "reading a run";
        self.read(what, |tx| {
            super::cached_row(
                tx,
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id.0],
                RawRun::from_row,
            )
            .optional()
            .map_err(StoreError::sqlite(what))?
            .map(RawRun::into_record)
            .transpose()
        })
    }

    fn stages(&self, run: RunId) -> Result<Vec<StageRecord>, StoreError> {
        let what = "reading stages";
        self.read(what, |tx| {
            run_status(tx, run, what)?;
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {STAGE_COLUMNS} FROM stages WHERE run_id = ?1 ORDER BY position"
                ))
                .map_err(StoreError::sqlite(what))?;
            let raw = stmt
                .query_map([run.0], RawStage::from_row)
                .map_err(StoreError::sqlite(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))?;
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
        self.read(what, |tx| {
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
                    "SELECT {LOG_COLUMNS} FROM log_lines WHERE stage_id = ?1 AND seq >= ?2 \
                     ORDER BY seq LIMIT ?3"
                ),
                params![stage.0, from, sql_limit(limit)],
                what,
            )
        })
    }

    fn log_tail(&self, stage: StageId, n: usize) -> Result<Vec<LogLine>, StoreError> {
        let what = "reading the end of a log";
        self.read(what, |tx| {
            require_stage(tx, stage, what)?;
            let mut lines = query_lines(
                tx,
                &format!(
                    "SELECT {LOG_COLUMNS} FROM log_lines WHERE stage_id = ?1 \
                     ORDER BY seq DESC LIMIT ?2"
                ),
                params![stage.0, sql_limit(n)],
                what,
            )?;
            lines.reverse();
            Ok(lines)
        })
    }

    fn log_stats(&self, stage: StageId) -> Result<LogStats, StoreError> {
        let what = "reading log statistics";
        self.read(what, |tx| {
            let row: Option<(i64, i64)> = super::cached_row(
                tx,
                "SELECT log_lines, log_bytes FROM stages WHERE id = ?1",
                [stage.0],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(StoreError::sqlite(what))?;
            let (lines, bytes) = row.ok_or_else(|| not_found_stage(stage))?;
            Ok(LogStats {
                lines: count("stage log line count", lines)?,
                bytes: count("stage log byte count", bytes)?,
            })
        })
    }

    fn claim_queued_run(&self, owner: &str, now_ms: i64) -> Result<Option<RunRecord>, StoreError> {
        self.write("claiming a queued run", |tx| {
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

/// The running runs whose lease is older than `stale_ms` at `now_ms`, by id;
/// with `first_attempts_only`, not the copies already requeued once.
fn stale_running(
    tx: &Transaction<'_>,
    stale_ms: i64,
    now_ms: i64,
    first_attempts_only: bool,
    what: &'static str,
) -> Result<Vec<i64>, StoreError> {
    let sql = if first_attempts_only {
        "SELECT id FROM runs WHERE status = 'running' AND requeue_of IS NULL \
         AND lease_at_ms IS NOT NULL AND lease_at_ms < ?1 ORDER BY id"
    } else {
        "SELECT id FROM runs WHERE status = 'running' \
         AND lease_at_ms IS NOT NULL AND lease_at_ms < ?1 ORDER BY id"
    };
    let mut stmt = tx.prepare(sql).map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map([now_ms.saturating_sub(stale_ms.max(0))], |r| r.get(0))
        .map_err(StoreError::sqlite(what))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite(what))
}
