//! The schema's migrations ([`crate::schema::MIGRATIONS`], one list for every
//! backend) applied to PostgreSQL, tracked in the one-row table `cairn_schema`.
//!
//! Each version's script runs in its own transaction together with the bump of
//! the version, holding the store's write lock ([`super::WRITE_LOCK`]): several
//! processes opening one new database at once run each script exactly once, and
//! a crash leaves the database at the previous version (PostgreSQL's DDL is
//! transactional). A database newer than this cairn is refused before anything
//! is written to it.

use std::path::PathBuf;

use postgres::Client;

use crate::StoreError;
use crate::schema::{MIGRATIONS, SCHEMA_VERSION, refuse_newer};

/// The database's schema version (`0` for a database cairn never wrote).
pub(crate) fn version(client: &mut Client) -> Result<i64, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('cairn_schema') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    let row = client.query_opt("SELECT version FROM cairn_schema WHERE id = 1", &[])?;
    row.map_or(Ok(0), |r| r.try_get(0))
}

/// Refuses a newer database, then applies the migrations it lacks, each in its
/// own transaction.
pub(crate) fn migrate(client: &mut Client, target: &str) -> Result<(), StoreError> {
    let path = PathBuf::from(target);
    let found =
        version(client).map_err(|e| StoreError::postgres("reading the schema version", e))?;
    refuse_newer(found, &path)?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    for m in MIGRATIONS {
        let version = m.version;
        let err = |source| StoreError::MigratePostgres { version, source };
        let mut tx = client.transaction().map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&super::WRITE_LOCK])
            .map_err(err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS cairn_schema (\
             id BIGINT NOT NULL PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
        )
        .map_err(err)?;
        let current: i64 = tx
            .query_opt("SELECT version FROM cairn_schema WHERE id = 1", &[])
            .and_then(|r| r.map_or(Ok(0), |r| r.try_get(0)))
            .map_err(err)?;
        refuse_newer(current, &path)?;
        if current >= i64::from(version) {
            continue;
        }
        tx.batch_execute(m.postgres).map_err(err)?;
        tx.execute(
            "INSERT INTO cairn_schema (id, version) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            &[&i64::from(version)],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}
