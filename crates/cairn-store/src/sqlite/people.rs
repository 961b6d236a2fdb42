//! Identities, role bindings, deployments and change records (schema v7; identity
//! expiry since v8).
//!
//! An identity keeps the SHA-256 of its token, never the token. Bindings are a
//! set: adding one twice is a no-op. Deployments and change records are
//! append-only; the newest deployment of a (workload, environment) is current.

use cairn_model::{
    ChangeRecord, DeploymentRecord, DeploymentStatus, IdentityKind, IdentityRecord, RoleBinding,
};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::text::{check_len, check_nonempty};
use crate::{MAX_CHANGE_JSON_BYTES, StoreError};

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

// ---- identities ------------------------------------------------------------------------

fn check_identity(i: &IdentityRecord) -> Result<(), StoreError> {
    let what = "identity";
    check_len("an identity's name", &[&i.name])?;
    check_nonempty(what, "name", &i.name)?;
    let hex = i.token_sha256.as_bytes();
    if hex.len() != 64 || !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(StoreError::Invalid {
            what,
            why: "the token hash is not 64 lowercase hex digits (a SHA-256)".to_owned(),
        });
    }
    Ok(())
}

fn insert_identity(tx: &Transaction<'_>, i: &IdentityRecord) -> Result<(), StoreError> {
    let what = "adding an identity";
    check_identity(i)?;
    let name_taken: Option<String> = tx
        .query_row(
            "SELECT name FROM identities WHERE name = ?1",
            [&i.name],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::sqlite(what))?;
    if name_taken.is_some() {
        return Err(StoreError::Exists {
            what: "identity",
            id: i.name.clone(),
        });
    }
    let token_taken: Option<String> = tx
        .query_row(
            "SELECT name FROM identities WHERE token_sha256 = ?1",
            [&i.token_sha256],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::sqlite(what))?;
    if token_taken.is_some() {
        // Name the new identity, not the holder of the token.
        return Err(StoreError::Exists {
            what: "token of identity",
            id: i.name.clone(),
        });
    }
    tx.execute(
        "INSERT INTO identities (name, kind, token_sha256, created_at_ms, revoked_at_ms, \
         expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            i.name,
            i.kind.as_str(),
            i.token_sha256,
            i.created_at_ms,
            i.revoked_at_ms,
            i.expires_at_ms
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
}

pub(super) fn add_identity(tx: &Transaction<'_>, i: &IdentityRecord) -> Result<(), StoreError> {
    insert_identity(tx, i)
}

pub(super) fn add_first_identity(
    tx: &Transaction<'_>,
    i: &IdentityRecord,
    b: &RoleBinding,
) -> Result<bool, StoreError> {
    if b.identity != i.name {
        return Err(StoreError::Invalid {
            what: "bootstrap binding",
            why: format!(
                "the binding is for `{}`, not the new identity `{}`",
                b.identity, i.name
            ),
        });
    }
    if identity_count(tx)? > 0 {
        return Ok(false);
    }
    insert_identity(tx, i)?;
    add_binding(tx, b)?;
    Ok(true)
}

const IDENTITY_COLUMNS: &str =
    "name, kind, token_sha256, created_at_ms, revoked_at_ms, expires_at_ms";

struct RawIdentity {
    name: String,
    kind: String,
    token_sha256: String,
    created_at_ms: i64,
    revoked_at_ms: Option<i64>,
    expires_at_ms: Option<i64>,
}

fn raw_identity(r: &Row<'_>) -> rusqlite::Result<RawIdentity> {
    Ok(RawIdentity {
        name: r.get(0)?,
        kind: r.get(1)?,
        token_sha256: r.get(2)?,
        created_at_ms: r.get(3)?,
        revoked_at_ms: r.get(4)?,
        expires_at_ms: r.get(5)?,
    })
}

impl RawIdentity {
    fn into_record(self) -> Result<IdentityRecord, StoreError> {
        let kind = IdentityKind::parse(&self.kind).ok_or(StoreError::Corrupt {
            what: "identity kind",
            value: self.kind,
        })?;
        Ok(IdentityRecord {
            name: self.name,
            kind,
            token_sha256: self.token_sha256,
            created_at_ms: self.created_at_ms,
            revoked_at_ms: self.revoked_at_ms,
            expires_at_ms: self.expires_at_ms,
        })
    }
}

fn one_identity(
    tx: &Transaction<'_>,
    filter: &str,
    value: &str,
    what: &'static str,
) -> Result<Option<IdentityRecord>, StoreError> {
    let raw = tx
        .query_row(
            &format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE {filter}"),
            [value],
            raw_identity,
        )
        .optional()
        .map_err(StoreError::sqlite(what))?;
    raw.map(RawIdentity::into_record).transpose()
}

pub(super) fn identity(
    tx: &Transaction<'_>,
    name: &str,
) -> Result<Option<IdentityRecord>, StoreError> {
    one_identity(tx, "name = ?1", name, "reading an identity")
}

pub(super) fn identity_by_token(
    tx: &Transaction<'_>,
    token_sha256: &str,
) -> Result<Option<IdentityRecord>, StoreError> {
    one_identity(
        tx,
        "token_sha256 = ?1 AND revoked_at_ms IS NULL",
        token_sha256,
        "finding an identity by token",
    )
}

pub(super) fn identities(tx: &Transaction<'_>) -> Result<Vec<IdentityRecord>, StoreError> {
    let what = "listing identities";
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities ORDER BY name"
        ))
        .map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map([], raw_identity)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    rows.into_iter().map(RawIdentity::into_record).collect()
}

pub(super) fn revoke_identity(
    tx: &Transaction<'_>,
    name: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = tx
        .execute(
            "UPDATE identities SET revoked_at_ms = ?2 WHERE name = ?1 AND revoked_at_ms IS NULL",
            params![name, now_ms],
        )
        .map_err(StoreError::sqlite("revoking an identity"))?;
    Ok(changed > 0)
}

pub(super) fn identity_count(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let what = "counting identities";
    let n: i64 = tx
        .query_row("SELECT count(*) FROM identities", [], |r| r.get(0))
        .map_err(StoreError::sqlite(what))?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt {
        what: "identity count",
        value: n.to_string(),
    })
}

// ---- bindings --------------------------------------------------------------------------

fn check_binding(b: &RoleBinding) -> Result<(), StoreError> {
    let what = "role binding";
    check_len(
        "a role binding's field",
        &[
            &b.identity,
            &b.role,
            b.workload.as_deref().unwrap_or(""),
            b.environment.as_deref().unwrap_or(""),
        ],
    )?;
    check_nonempty(what, "identity", &b.identity)?;
    check_nonempty(what, "role", &b.role)?;
    if let Some(w) = &b.workload {
        check_nonempty(what, "workload", w)?;
    }
    if let Some(e) = &b.environment {
        check_nonempty(what, "environment", e)?;
        if b.workload.is_none() {
            return Err(StoreError::Invalid {
                what,
                why: format!("environment `{e}` needs a workload"),
            });
        }
    }
    Ok(())
}

pub(super) fn add_binding(tx: &Transaction<'_>, b: &RoleBinding) -> Result<(), StoreError> {
    let what = "binding a role";
    check_binding(b)?;
    let revoked: Option<Option<i64>> = tx
        .query_row(
            "SELECT revoked_at_ms FROM identities WHERE name = ?1",
            [&b.identity],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::sqlite(what))?;
    match revoked {
        None => {
            return Err(StoreError::NotFound {
                what: "identity",
                id: b.identity.clone(),
            });
        }
        Some(Some(_)) => {
            return Err(StoreError::Invalid {
                what: "role binding",
                why: format!("identity `{}` is revoked", b.identity),
            });
        }
        Some(None) => {}
    }
    tx.execute(
        "INSERT INTO role_bindings (identity, role, workload, environment) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        params![b.identity, b.role, b.workload, b.environment],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
}

pub(super) fn remove_binding(tx: &Transaction<'_>, b: &RoleBinding) -> Result<bool, StoreError> {
    let changed = tx
        .execute(
            "DELETE FROM role_bindings WHERE identity = ?1 AND role = ?2 \
             AND workload IS ?3 AND environment IS ?4",
            params![b.identity, b.role, b.workload, b.environment],
        )
        .map_err(StoreError::sqlite("removing a role binding"))?;
    Ok(changed > 0)
}

pub(super) fn bindings(tx: &Transaction<'_>) -> Result<Vec<RoleBinding>, StoreError> {
    let what = "listing role bindings";
    let mut stmt = tx
        .prepare_cached(
            "SELECT identity, role, workload, environment FROM role_bindings \
             ORDER BY identity, role, ifnull(workload, ''), ifnull(environment, '')",
        )
        .map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(RoleBinding {
                identity: r.get(0)?,
                role: r.get(1)?,
                workload: r.get(2)?,
                environment: r.get(3)?,
            })
        })
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    Ok(rows)
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
    tx: &Transaction<'_>,
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
    tx: &Transaction<'_>,
    workload: &str,
    environment: &str,
    digest: &str,
) -> Result<bool, StoreError> {
    let found: Option<i64> = tx
        .query_row(
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

pub(super) fn changes(
    tx: &Transaction<'_>,
    workload: Option<&str>,
    limit: i64,
) -> Result<Vec<(i64, ChangeRecord)>, StoreError> {
    let what = "listing change records";
    let mut stmt = tx
        .prepare_cached(
            "SELECT id, kind, workload, environment, actor, from_digest, to_digest, log_index, \
             at_ms, json FROM changes WHERE (?1 IS NULL OR workload = ?1) \
             ORDER BY id DESC LIMIT ?2",
        )
        .map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map(params![workload, limit], |r| {
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
        })
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    rows.into_iter()
        .map(|(id, index, mut c)| {
            c.log_index = from_sql_index(index)?;
            Ok((id, c))
        })
        .collect()
}

/// The newest deployment of (`workload`, `environment`) that reached it (deployed,
/// or deployed and found not running): what runs, or should run, there.
pub(super) fn current_deployment(
    tx: &Transaction<'_>,
    workload: &str,
    environment: &str,
) -> Result<Option<DeploymentRecord>, StoreError> {
    let what = "reading the current deployment";
    let row = tx
        .query_row(
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
