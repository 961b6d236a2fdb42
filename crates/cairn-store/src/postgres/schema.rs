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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use cairn_testkit::pg::PgServer;

    /// A client on a database left at `version` by an older cairn.
    fn at_version(server: &PgServer, version: usize) -> (cairn_testkit::pg::PgDatabase, Client) {
        let db = server.database();
        let mut client = Client::connect(db.url(), postgres::NoTls).unwrap();
        client
            .batch_execute(
                "CREATE TABLE cairn_schema (id BIGINT NOT NULL PRIMARY KEY CHECK (id = 1), \
                 version BIGINT NOT NULL)",
            )
            .unwrap();
        for m in &MIGRATIONS[..version] {
            client.batch_execute(m.postgres).unwrap();
        }
        client
            .execute(
                "INSERT INTO cairn_schema (id, version) VALUES (1, $1)",
                &[&i64::try_from(version).unwrap()],
            )
            .unwrap();
        (db, client)
    }

    /// A version 7 database gains the server's tables and columns; its runs
    /// read as the CLI's (not for workers), its identities do not expire, its
    /// rows are kept, and it adopts the log once (it holds data).
    #[test]
    fn a_version_7_database_is_upgraded_in_place() {
        let server = PgServer::start();
        let (db, mut client) = at_version(&server, 7);
        client
            .batch_execute(
                "INSERT INTO workloads (name, repo, created_at_ms, updated_at_ms) \
                 VALUES ('app', 'r', 1, 1); \
                 INSERT INTO runs (workload, commit_id, status, created_at_ms) \
                 VALUES ('app', 'c', 'queued', 2); \
                 INSERT INTO identities (name, kind, token_sha256, created_at_ms) \
                 VALUES ('alice', 'user', 'h', 3);",
            )
            .unwrap();
        migrate(&mut client, db.url()).unwrap();
        assert_eq!(version(&mut client).unwrap(), SCHEMA_VERSION);
        let row = client
            .query_one("SELECT trigger, for_worker FROM runs", &[])
            .unwrap();
        let (trigger, for_worker): (String, i64) = (row.get(0), row.get(1));
        assert_eq!((trigger.as_str(), for_worker), ("cli", 0));
        let expires: Option<i64> = client
            .query_one("SELECT expires_at_ms FROM identities", &[])
            .unwrap()
            .get(0);
        assert_eq!(expires, None);
        let (count, sized): (i64, i64) = {
            let r = client
                .query_one("SELECT count(*), count(size) FROM log_mark", &[])
                .unwrap();
            (r.get(0), r.get(1))
        };
        assert_eq!((count, sized), (1, 0));
        let kept: i64 = client
            .query_one("SELECT count(*) FROM workloads", &[])
            .unwrap()
            .get(0);
        assert_eq!(kept, 1);
    }

    /// A version 14 database's advisories are back-filled with their match
    /// form (the record without `details`, `references`, `related`,
    /// `credits`); a record PostgreSQL cannot read as JSON (not JSON, a NUL
    /// escape) keeps none and does not stop the migration. The record stays.
    #[test]
    fn a_version_14_database_gets_its_advisories_match_forms() {
        let server = PgServer::start();
        let (db, mut client) = at_version(&server, 14);
        let record = r#"{"id":"A-1","modified":"m","details":"long text","related":["X"],"references":[{"type":"WEB","url":"https://x"}],"credits":[{"name":"n"}],"summary":"s \u00e9","aliases":["CVE-1"],"affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}],"ecosystem_specific":{"urgency":"low"}}],"database_specific":{"informational":"unsound"}}"#;
        let insert =
            "INSERT INTO advisories (id, modified, withdrawn, json) VALUES ($1, 'm', 0, $2)";
        for (id, json) in [
            ("A-1", record.as_bytes()),
            ("A-2", b"not json".as_slice()),
            ("A-3", br#"{"id":"A-3","summary":"\u0000"}"#.as_slice()),
        ] {
            client.execute(insert, &[&id, &json]).unwrap();
        }
        migrate(&mut client, db.url()).unwrap();
        assert_eq!(version(&mut client).unwrap(), SCHEMA_VERSION);
        let mut read = |id: &str| -> (Vec<u8>, Option<Vec<u8>>) {
            let r = client
                .query_one(
                    "SELECT json, match_form FROM advisories WHERE id = $1",
                    &[&id],
                )
                .unwrap();
            (r.get(0), r.get(1))
        };
        let (json, form) = read("A-1");
        assert_eq!(json, record.as_bytes());
        let form: serde_json::Value = serde_json::from_slice(&form.unwrap()).unwrap();
        let mut expect: serde_json::Value = serde_json::from_str(record).unwrap();
        for key in ["details", "related", "references", "credits"] {
            expect.as_object_mut().unwrap().remove(key);
        }
        assert_eq!(form, expect);
        assert_eq!(read("A-2"), (b"not json".to_vec(), None));
        assert_eq!(read("A-3").1, None);
    }

    /// A version 18 database's compiled forms (version 1, which this cairn no
    /// longer reads) are dropped for the next import's back-fill; its rows
    /// stay.
    #[test]
    fn a_version_18_databases_compiled_forms_are_dropped_for_the_back_fill() {
        let server = PgServer::start();
        let (db, mut client) = at_version(&server, 18);
        client
            .batch_execute(
                "INSERT INTO advisories (id, modified, withdrawn, json) \
                 VALUES ('A-1', 'm1', 0, '\\x7b7d'::bytea); \
                 INSERT INTO advisory_packages (ecosystem, name, id, compiled, modified) \
                 VALUES ('npm', 'a', 'A-1', '\\x01000000'::bytea, 'm1'), \
                        ('npm', 'b', 'A-1', NULL, 'm1');",
            )
            .unwrap();
        migrate(&mut client, db.url()).unwrap();
        assert_eq!(version(&mut client).unwrap(), SCHEMA_VERSION);
        let rows: Vec<(String, Option<Vec<u8>>, String)> = client
            .query(
                "SELECT name, compiled, modified FROM advisory_packages ORDER BY name",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(
            rows,
            [
                ("a".to_owned(), None, "m1".to_owned()),
                ("b".to_owned(), None, "m1".to_owned())
            ]
        );
    }

    /// An empty version 8 database is new to the log (no mark row).
    #[test]
    fn an_empty_version_8_database_is_new_to_the_log() {
        let server = PgServer::start();
        let (db, mut client) = at_version(&server, 8);
        migrate(&mut client, db.url()).unwrap();
        let n: i64 = client
            .query_one("SELECT count(*) FROM log_mark", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
    }
}
