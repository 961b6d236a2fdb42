//! [`AccessStore`] on SQLite: identities (schema v7; expiry since v8), role
//! bindings, browser sessions and forge logins mapped to identities (v8).
//!
//! An identity and a session keep the SHA-256 of their token, never the token.
//! Bindings are a set: adding one twice is a no-op.

use cairn_model::{IdentityKind, IdentityRecord, RoleBinding, SessionRecord};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::SqliteStore;
use super::text::{check_len, check_nonempty};
use crate::{AccessStore, StoreError};

/// Fails with `NotFound` unless the identity exists (revoked or not).
fn require_identity(
    tx: &Transaction<'_>,
    name: &str,
    what: &'static str,
) -> Result<(), StoreError> {
    let found = super::cached_row(
        tx,
        "SELECT 1 FROM identities WHERE name = ?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map_err(StoreError::sqlite(what))?;
    found.ok_or_else(|| StoreError::NotFound {
        what: "identity",
        id: name.to_owned(),
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
    let name_taken: Option<String> = super::cached_row(
        tx,
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
    let token_taken: Option<String> = super::cached_row(
        tx,
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
    tx: &rusqlite::Connection,
    filter: &str,
    value: &str,
    what: &'static str,
) -> Result<Option<IdentityRecord>, StoreError> {
    let raw = super::cached_row(
        tx,
        &format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE {filter}"),
        [value],
        raw_identity,
    )
    .optional()
    .map_err(StoreError::sqlite(what))?;
    raw.map(RawIdentity::into_record).transpose()
}

pub(super) fn identity(
    tx: &rusqlite::Connection,
    name: &str,
) -> Result<Option<IdentityRecord>, StoreError> {
    one_identity(tx, "name = ?1", name, "reading an identity")
}

pub(super) fn identity_by_token(
    tx: &rusqlite::Connection,
    token_sha256: &str,
) -> Result<Option<IdentityRecord>, StoreError> {
    one_identity(
        tx,
        "token_sha256 = ?1 AND revoked_at_ms IS NULL",
        token_sha256,
        "finding an identity by token",
    )
}

pub(super) fn identities(tx: &rusqlite::Connection) -> Result<Vec<IdentityRecord>, StoreError> {
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

pub(super) fn identity_count(tx: &rusqlite::Connection) -> Result<u64, StoreError> {
    let what = "counting identities";
    let n: i64 = super::cached_row(tx, "SELECT count(*) FROM identities", [], |r| r.get(0))
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
    let revoked: Option<Option<i64>> = super::cached_row(
        tx,
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

pub(super) fn bindings(tx: &rusqlite::Connection) -> Result<Vec<RoleBinding>, StoreError> {
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
    tx: &rusqlite::Connection,
    token_sha256: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    super::cached_row(
        tx,
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
    tx: &rusqlite::Connection,
    forge: &str,
    login: &str,
) -> Result<Option<String>, StoreError> {
    super::cached_row(
        tx,
        "SELECT identity FROM forge_accounts WHERE forge = ?1 AND login = ?2",
        params![forge, login],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite("reading a forge account"))
}

impl AccessStore for SqliteStore {
    fn add_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError> {
        self.write("adding an identity", |tx| add_identity(tx, identity))
    }

    fn add_first_identity(
        &self,
        identity: &IdentityRecord,
        binding: &RoleBinding,
    ) -> Result<bool, StoreError> {
        self.write("adding the first identity", |tx| {
            add_first_identity(tx, identity, binding)
        })
    }

    fn identity(&self, name: &str) -> Result<Option<IdentityRecord>, StoreError> {
        self.read("reading an identity", |tx| identity(tx, name))
    }

    fn identity_by_token(&self, token_sha256: &str) -> Result<Option<IdentityRecord>, StoreError> {
        self.read("finding an identity by token", |tx| {
            identity_by_token(tx, token_sha256)
        })
    }

    fn identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        self.read("listing identities", identities)
    }

    fn revoke_identity(&self, name: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.write("revoking an identity", |tx| {
            revoke_identity(tx, name, now_ms)
        })
    }

    fn identity_count(&self) -> Result<u64, StoreError> {
        self.read("counting identities", identity_count)
    }

    fn add_binding(&self, binding: &RoleBinding) -> Result<(), StoreError> {
        self.write("binding a role", |tx| add_binding(tx, binding))
    }

    fn remove_binding(&self, binding: &RoleBinding) -> Result<bool, StoreError> {
        self.write("removing a role binding", |tx| remove_binding(tx, binding))
    }

    fn bindings(&self) -> Result<Vec<RoleBinding>, StoreError> {
        self.read("listing role bindings", bindings)
    }

    fn add_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.write("adding a session", |tx| add_session(tx, session))
    }

    fn session(&self, token_sha256: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.read("reading a session", |tx| session(tx, token_sha256))
    }

    fn remove_session(&self, token_sha256: &str) -> Result<bool, StoreError> {
        self.write("removing a session", |tx| remove_session(tx, token_sha256))
    }

    fn prune_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.write("pruning expired sessions", |tx| prune_sessions(tx, now_ms))
    }

    fn link_forge_account(
        &self,
        forge: &str,
        login: &str,
        identity: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.write("linking a forge account", |tx| {
            link_forge_account(tx, forge, login, identity, now_ms)
        })
    }

    fn forge_account(&self, forge: &str, login: &str) -> Result<Option<String>, StoreError> {
        self.read("reading a forge account", |tx| {
            forge_account(tx, forge, login)
        })
    }
}
