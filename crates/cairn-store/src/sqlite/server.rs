//! What the server keeps (schema v8): workloads with their forge repository, the
//! workers' run queue, webhook deliveries (each accepted once), browser sessions,
//! forge logins mapped to identities, and the numbers behind its metrics.
//!
//! A session keeps the SHA-256 of its token, never the token. A delivery is
//! recorded with the run it created in one transaction, so a replayed delivery can
//! never create a second run.

use cairn_model::{
    DeliveryRecord, NewDelivery, NewRun, RunId, RunRecord, RunStatus, SessionRecord, StageKind,
    StageStatus, WorkloadRecord,
};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::text::{check_len, check_nonempty};
use super::{RUN_COLUMNS, RawRun, count, insert_run, parse_name};
use crate::{DeliveryAccepted, StageDurationStat, StoreError};

/// Fails with `NotFound` unless the identity exists (revoked or not).
fn require_identity(
    tx: &Transaction<'_>,
    name: &str,
    what: &'static str,
) -> Result<(), StoreError> {
    let found = tx
        .query_row("SELECT 1 FROM identities WHERE name = ?1", [name], |_| {
            Ok(())
        })
        .optional()
        .map_err(StoreError::sqlite(what))?;
    found.ok_or_else(|| StoreError::NotFound {
        what: "identity",
        id: name.to_owned(),
    })
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
    tx: &Transaction<'_>,
    filter: &str,
    value: &str,
    what: &'static str,
) -> Result<Option<WorkloadRecord>, StoreError> {
    tx.query_row(
        &format!("SELECT {WORKLOAD_COLUMNS} FROM workloads WHERE {filter}"),
        [value],
        workload_row,
    )
    .optional()
    .map_err(StoreError::sqlite(what))
}

pub(super) fn workloads(tx: &Transaction<'_>) -> Result<Vec<WorkloadRecord>, StoreError> {
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
    tx: &Transaction<'_>,
    name: &str,
) -> Result<Option<WorkloadRecord>, StoreError> {
    one_workload(tx, "name = ?1", name, "reading a workload")
}

pub(super) fn workload_by_forge_repository(
    tx: &Transaction<'_>,
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
    let oldest: Option<i64> = tx
        .query_row(
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
        "UPDATE runs SET status = ?1, owner = ?2, started_at_ms = ?3 WHERE id = ?4",
        params![RunStatus::Running.as_str(), owner, now_ms, id],
    )
    .map_err(StoreError::sqlite(what))?;
    let raw = tx
        .query_row(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
            [id],
            RawRun::from_row,
        )
        .map_err(StoreError::sqlite(what))?;
    raw.into_record().map(Some)
}

pub(super) fn queued_count(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let n: i64 = tx
        .query_row(
            &format!("SELECT count(*) FROM runs WHERE {QUEUED_FOR_WORKERS}"),
            [],
            |r| r.get(0),
        )
        .map_err(StoreError::sqlite("counting queued runs"))?;
    count("queued run count", n)
}

// ---- webhook deliveries ----------------------------------------------------------------

pub(super) fn accept_delivery(
    tx: &Transaction<'_>,
    d: &NewDelivery,
    run: Option<&NewRun>,
) -> Result<DeliveryAccepted, StoreError> {
    let what = "accepting a webhook delivery";
    check_len(
        "a webhook delivery's field",
        &[&d.forge, &d.delivery, &d.event, &d.outcome],
    )?;
    check_nonempty("webhook delivery", "forge", &d.forge)?;
    check_nonempty("webhook delivery", "delivery id", &d.delivery)?;
    let seen = tx
        .query_row(
            "SELECT 1 FROM webhook_deliveries WHERE forge = ?1 AND delivery = ?2",
            params![d.forge, d.delivery],
            |_| Ok(()),
        )
        .optional()
        .map_err(StoreError::sqlite(what))?;
    if seen.is_some() {
        return Ok(DeliveryAccepted::Replay);
    }
    let created = run.map(|run| insert_run(tx, run, what)).transpose()?;
    tx.execute(
        "INSERT INTO webhook_deliveries (forge, delivery, event, received_at_ms, outcome, \
         run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            d.forge,
            d.delivery,
            d.event,
            d.received_at_ms,
            d.outcome,
            created.as_ref().map(|(r, _)| r.id.0)
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(DeliveryAccepted::Accepted { run: created })
}

pub(super) fn deliveries(
    tx: &Transaction<'_>,
    limit: i64,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let what = "listing webhook deliveries";
    let mut stmt = tx
        .prepare_cached(
            "SELECT forge, delivery, event, received_at_ms, outcome, run_id \
             FROM webhook_deliveries ORDER BY received_at_ms DESC, rowid DESC LIMIT ?1",
        )
        .map_err(StoreError::sqlite(what))?;
    stmt.query_map([limit], |r| {
        Ok(DeliveryRecord {
            forge: r.get(0)?,
            delivery: r.get(1)?,
            event: r.get(2)?,
            received_at_ms: r.get(3)?,
            outcome: r.get(4)?,
            run: r.get::<_, Option<i64>>(5)?.map(RunId),
        })
    })
    .map_err(StoreError::sqlite(what))?
    .collect::<Result<Vec<_>, _>>()
    .map_err(StoreError::sqlite(what))
}

// ---- sessions --------------------------------------------------------------------------

pub(super) fn add_session(tx: &Transaction<'_>, s: &SessionRecord) -> Result<(), StoreError> {
    let what = "adding a session";
    check_len(
        "a session's field",
        &[&s.token_sha256, &s.identity, &s.csrf],
    )?;
    let hex = s.token_sha256.as_bytes();
    if hex.len() != 64 || !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(StoreError::Invalid {
            what: "session",
            why: "the token hash is not 64 lowercase hex digits (a SHA-256)".to_owned(),
        });
    }
    check_nonempty("session", "CSRF token", &s.csrf)?;
    require_identity(tx, &s.identity, what)?;
    if session(tx, &s.token_sha256)?.is_some() {
        return Err(StoreError::Exists {
            what: "session of identity",
            id: s.identity.clone(),
        });
    }
    tx.execute(
        "INSERT INTO sessions (token_sha256, identity, csrf, created_at_ms, expires_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            s.token_sha256,
            s.identity,
            s.csrf,
            s.created_at_ms,
            s.expires_at_ms
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
}

pub(super) fn session(
    tx: &Transaction<'_>,
    token_sha256: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    tx.query_row(
        "SELECT token_sha256, identity, csrf, created_at_ms, expires_at_ms FROM sessions \
         WHERE token_sha256 = ?1",
        [token_sha256],
        |r| {
            Ok(SessionRecord {
                token_sha256: r.get(0)?,
                identity: r.get(1)?,
                csrf: r.get(2)?,
                created_at_ms: r.get(3)?,
                expires_at_ms: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(StoreError::sqlite("reading a session"))
}

pub(super) fn remove_session(tx: &Transaction<'_>, token_sha256: &str) -> Result<bool, StoreError> {
    let removed = tx
        .execute(
            "DELETE FROM sessions WHERE token_sha256 = ?1",
            [token_sha256],
        )
        .map_err(StoreError::sqlite("removing a session"))?;
    Ok(removed > 0)
}

pub(super) fn prune_sessions(tx: &Transaction<'_>, now_ms: i64) -> Result<u64, StoreError> {
    let removed = tx
        .execute("DELETE FROM sessions WHERE expires_at_ms <= ?1", [now_ms])
        .map_err(StoreError::sqlite("pruning expired sessions"))?;
    Ok(super::len_u64(removed))
}

// ---- forge accounts --------------------------------------------------------------------

pub(super) fn link_forge_account(
    tx: &Transaction<'_>,
    forge: &str,
    login: &str,
    identity: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let what = "linking a forge account";
    check_len("a forge account's field", &[forge, login, identity])?;
    check_nonempty("forge account", "forge", forge)?;
    check_nonempty("forge account", "login", login)?;
    require_identity(tx, identity, what)?;
    tx.execute(
        "INSERT INTO forge_accounts (forge, login, identity, created_at_ms) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (forge, login) DO UPDATE SET identity = excluded.identity, \
         created_at_ms = excluded.created_at_ms",
        params![forge, login, identity, now_ms],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
}

pub(super) fn forge_account(
    tx: &Transaction<'_>,
    forge: &str,
    login: &str,
) -> Result<Option<String>, StoreError> {
    tx.query_row(
        "SELECT identity FROM forge_accounts WHERE forge = ?1 AND login = ?2",
        params![forge, login],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite("reading a forge account"))
}

// ---- metrics ---------------------------------------------------------------------------

pub(super) fn run_counts(tx: &Transaction<'_>) -> Result<Vec<(RunStatus, u64)>, StoreError> {
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

pub(super) fn stage_durations(tx: &Transaction<'_>) -> Result<Vec<StageDurationStat>, StoreError> {
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
