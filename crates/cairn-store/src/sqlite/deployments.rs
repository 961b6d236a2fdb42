//! [`DeploymentStore`] on SQLite: deployments (intent and outcome; the newest of a
//! (workload, environment) that reached it is current) and change records, both
//! append-only (schema v7; intents since v10; the newest of a kind by the
//! `changes_by_kind` index since v12).

use cairn_model::{ChangeRecord, DeploymentRecord, DeploymentStatus};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::text::{check_len, check_nonempty};
use super::{SqliteStore, sql_limit};
use crate::{DeploymentStore, MAX_CHANGE_JSON_BYTES, StoreError};

fn to_sql_index(what: &'static str, index: u64) -> Result<i64, StoreError> {
    i64::try_from(index).map_err(|_| StoreError::Invalid {
        what,
        why: format!("log index {index} is out of range"),
    })
}

fn from_sql_index(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what: "log index",
        value: value.to_string(),
    })
}

// ---- deployments -----------------------------------------------------------------------

pub(super) fn add_deployment(
    tx: &Transaction<'_>,
    d: &DeploymentRecord,
) -> Result<i64, StoreError> {
    let what = "recording a deployment";
    check_len(
        "a deployment's field",
        &[
            &d.workload,
            &d.environment,
            &d.digest,
            d.previous_digest.as_deref().unwrap_or(""),
            &d.kind,
            &d.actor,
            &d.target,
            &d.detail,
            d.token.as_deref().unwrap_or(""),
            d.reason.as_deref().unwrap_or(""),
        ],
    )?;
    for (field, value) in [
        ("workload", &d.workload),
        ("environment", &d.environment),
        ("digest", &d.digest),
        ("kind", &d.kind),
        ("actor", &d.actor),
        ("target", &d.target),
    ] {
        check_nonempty("deployment", field, value)?;
    }
    let log_index = to_sql_index("deployment", d.log_index)?;
    tx.execute(
        "INSERT INTO deployments (workload, environment, digest, previous_digest, kind, actor, \
         target, detail, log_index, deployed_at_ms, status, token, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            d.workload,
            d.environment,
            d.digest,
            d.previous_digest,
            d.kind,
            d.actor,
            d.target,
            d.detail,
            log_index,
            d.deployed_at_ms,
            d.status.as_str(),
            d.token,
            d.reason
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(tx.last_insert_rowid())
}

const DEPLOYMENT_COLUMNS: &str = "workload, environment, digest, previous_digest, kind, actor, \
                                  target, detail, log_index, deployed_at_ms, status, token, reason";

fn deployment_row(r: &Row<'_>) -> rusqlite::Result<(DeploymentRecord, i64)> {
    Ok((
        DeploymentRecord {
            workload: r.get(0)?,
            environment: r.get(1)?,
            digest: r.get(2)?,
            previous_digest: r.get(3)?,
            kind: r.get(4)?,
            actor: r.get(5)?,
            target: r.get(6)?,
            detail: r.get(7)?,
            log_index: 0,
            deployed_at_ms: r.get(9)?,
            status: {
                let text: String = r.get(10)?;
                DeploymentStatus::parse(&text).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        10,
                        rusqlite::types::Type::Text,
                        format!("unknown deployment status `{text}`").into(),
                    )
                })?
            },
            token: r.get(11)?,
            reason: r.get(12)?,
        },
        r.get(8)?,
    ))
}

fn with_index((mut d, index): (DeploymentRecord, i64)) -> Result<DeploymentRecord, StoreError> {
    d.log_index = from_sql_index(index)?;
    Ok(d)
}

pub(super) fn deployments(
    tx: &rusqlite::Connection,
    workload: Option<&str>,
    environment: Option<&str>,
    limit: i64,
) -> Result<Vec<DeploymentRecord>, StoreError> {
    let what = "listing deployments";
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments \
             WHERE (?1 IS NULL OR workload = ?1) AND (?2 IS NULL OR environment = ?2) \
             ORDER BY id DESC LIMIT ?3"
        ))
        .map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map(params![workload, environment, limit], deployment_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    rows.into_iter().map(with_index).collect()
}

pub(super) fn was_deployed(
    tx: &rusqlite::Connection,
    workload: &str,
    environment: &str,
    digest: &str,
) -> Result<bool, StoreError> {
    let found: Option<i64> = super::cached_row(
        tx,
        "SELECT 1 FROM deployments WHERE workload = ?1 AND environment = ?2 AND digest = ?3 \
             AND status IN ('deployed', 'superseded', 'not-running') LIMIT 1",
        params![workload, environment, digest],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite("looking up a deployment"))?;
    Ok(found.is_some())
}

// ---- change records --------------------------------------------------------------------

pub(super) fn add_change(tx: &Transaction<'_>, c: &ChangeRecord) -> Result<i64, StoreError> {
    let what = "recording a change";
    if c.json.len() > MAX_CHANGE_JSON_BYTES {
        return Err(StoreError::TooLarge {
            what: "a change record's JSON",
            size: c.json.len(),
            limit: MAX_CHANGE_JSON_BYTES,
        });
    }
    check_len(
        "a change record's field",
        &[
            &c.kind,
            &c.workload,
            &c.environment,
            &c.actor,
            c.from_digest.as_deref().unwrap_or(""),
            &c.to_digest,
        ],
    )?;
    for (field, value) in [
        ("kind", &c.kind),
        ("workload", &c.workload),
        ("actor", &c.actor),
    ] {
        check_nonempty("change record", field, value)?;
    }
    let log_index = to_sql_index("change record", c.log_index)?;
    tx.execute(
        "INSERT INTO changes (kind, workload, environment, actor, from_digest, to_digest, \
         log_index, at_ms, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            c.kind,
            c.workload,
            c.environment,
            c.actor,
            c.from_digest,
            c.to_digest,
            log_index,
            c.at_ms,
            c.json
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(tx.last_insert_rowid())
}

/// A change record's row: `(id, log index as stored, record)`; the index is
/// checked by [`with_log_index`].
fn change_row(r: &Row<'_>) -> rusqlite::Result<(i64, i64, ChangeRecord)> {
    Ok((
        r.get::<_, i64>(0)?,
        r.get::<_, i64>(7)?,
        ChangeRecord {
            kind: r.get(1)?,
            workload: r.get(2)?,
            environment: r.get(3)?,
            actor: r.get(4)?,
            from_digest: r.get(5)?,
            to_digest: r.get(6)?,
            log_index: 0,
            at_ms: r.get(8)?,
            json: r.get(9)?,
        },
    ))
}

/// The columns [`change_row`] reads, in its order.
const CHANGE_COLUMNS: &str =
    "id, kind, workload, environment, actor, from_digest, to_digest, log_index, at_ms, json";

fn with_log_index(
    (id, index, mut c): (i64, i64, ChangeRecord),
) -> Result<(i64, ChangeRecord), StoreError> {
    c.log_index = from_sql_index(index)?;
    Ok((id, c))
}

pub(super) fn changes(
    tx: &rusqlite::Connection,
    workload: Option<&str>,
    limit: i64,
) -> Result<Vec<(i64, ChangeRecord)>, StoreError> {
    let what = "listing change records";
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE (?1 IS NULL OR workload = ?1) \
             ORDER BY id DESC LIMIT ?2"
        ))
        .map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map(params![workload, limit], change_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    rows.into_iter().map(with_log_index).collect()
}

/// The newest deployment of (`workload`, `environment`) that reached it (deployed,
/// or deployed and found not running): what runs, or should run, there.
pub(super) fn current_deployment(
    tx: &rusqlite::Connection,
    workload: &str,
    environment: &str,
) -> Result<Option<DeploymentRecord>, StoreError> {
    let what = "reading the current deployment";
    let row = super::cached_row(
        tx,
        &format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments \
                 WHERE workload = ?1 AND environment = ?2 \
                 AND status IN ('deployed', 'not-running') ORDER BY id DESC LIMIT 1"
        ),
        params![workload, environment],
        deployment_row,
    )
    .optional()
    .map_err(StoreError::sqlite(what))?;
    row.map(with_index).transpose()
}

/// Sets the status (and reason) of the deployment with `token`; `false` when
/// there is none.
pub(super) fn set_deployment_status(
    tx: &Transaction<'_>,
    token: &str,
    status: DeploymentStatus,
    reason: Option<&str>,
    detail: Option<&str>,
) -> Result<bool, StoreError> {
    check_len(
        "a deployment's field",
        &[token, reason.unwrap_or(""), detail.unwrap_or("")],
    )?;
    let changed = tx
        .execute(
            "UPDATE deployments SET status = ?2, reason = ?3, detail = coalesce(?4, detail) \
             WHERE token = ?1",
            params![token, status.as_str(), reason, detail],
        )
        .map_err(StoreError::sqlite("recording a deployment's outcome"))?;
    Ok(changed > 0)
}

/// The newest change record of one kind, by the `changes_by_kind` index: one
/// row read, however many changes are newer.
pub(super) fn last_change_of_kind(
    tx: &rusqlite::Connection,
    kind: &str,
) -> Result<Option<(i64, ChangeRecord)>, StoreError> {
    let what = "reading the last change record of a kind";
    let row = tx
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE kind = ?1 ORDER BY id DESC LIMIT 1"
        ))
        .map_err(StoreError::sqlite(what))?
        .query_row(params![kind], change_row)
        .optional()
        .map_err(StoreError::sqlite(what))?;
    row.map(with_log_index).transpose()
}

impl DeploymentStore for SqliteStore {
    fn add_deployment(&self, deployment: &DeploymentRecord) -> Result<i64, StoreError> {
        self.write("recording a deployment", |tx| {
            add_deployment(tx, deployment)
        })
    }

    fn set_deployment_status(
        &self,
        token: &str,
        status: DeploymentStatus,
        reason: Option<&str>,
        detail: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.write("recording a deployment's outcome", |tx| {
            set_deployment_status(tx, token, status, reason, detail)
        })
    }

    fn current_deployment(
        &self,
        workload: &str,
        environment: &str,
    ) -> Result<Option<DeploymentRecord>, StoreError> {
        self.read("reading the current deployment", |tx| {
            current_deployment(tx, workload, environment)
        })
    }

    fn deployments(
        &self,
        workload: Option<&str>,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeploymentRecord>, StoreError> {
        self.read("listing deployments", |tx| {
            deployments(tx, workload, environment, sql_limit(limit))
        })
    }

    fn was_deployed(
        &self,
        workload: &str,
        environment: &str,
        digest: &str,
    ) -> Result<bool, StoreError> {
        self.read("looking up a deployment", |tx| {
            was_deployed(tx, workload, environment, digest)
        })
    }

    fn add_change(&self, change: &ChangeRecord) -> Result<i64, StoreError> {
        self.write("recording a change", |tx| add_change(tx, change))
    }

    fn changes(
        &self,
        workload: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(i64, ChangeRecord)>, StoreError> {
        self.read("listing change records", |tx| {
            changes(tx, workload, sql_limit(limit))
        })
    }
    fn last_change_of_kind(&self, kind: &str) -> Result<Option<(i64, ChangeRecord)>, StoreError> {
        self.read("reading the last change record of a kind", |tx| {
            last_change_of_kind(tx, kind)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn the_newest_change_of_a_kind_is_found_by_the_index() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut conn = conn;
        crate::sqlite::schema::migrate(&mut conn, std::path::Path::new(":memory:")).unwrap();
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM changes WHERE kind = 'x' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("changes_by_kind"), "{plan}");
    }
}
