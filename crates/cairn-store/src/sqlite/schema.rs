//! The schema's migrations ([`crate::schema::MIGRATIONS`], one list for every
//! backend) applied to SQLite, tracked by `PRAGMA user_version`.
//!
//! Each script runs in its own `BEGIN IMMEDIATE` transaction together with the bump of
//! `user_version`, so a crash leaves the database at the previous version. Foreign
//! keys are enforced while migrating (the pragma cannot change inside a transaction);
//! a script that rebuilds a table must keep them satisfied.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;
use crate::schema::MIGRATIONS;
pub(crate) use crate::schema::refuse_newer;

/// The schema version this code writes.
pub(crate) const KNOWN_VERSION: i64 = crate::schema::SCHEMA_VERSION;

/// The database's schema version (`0` for a new, empty database).
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Applies the migrations the database lacks, each in its own transaction. Several
/// processes may open a new data directory at once: the version is read again under
/// the write lock, so each script runs exactly once.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    for m in MIGRATIONS {
        let version = m.version;
        let migrate_err = |source| StoreError::Migrate { version, source };
        if user_version(conn).map_err(migrate_err)? >= i64::from(version) {
            continue;
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(migrate_err)?;
        let current = user_version(&tx).map_err(migrate_err)?;
        refuse_newer(current, path)?;
        if current >= i64::from(version) {
            continue;
        }
        tx.execute_batch(m.sqlite).map_err(migrate_err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate_err)?;
        tx.commit().map_err(migrate_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database left at version 1 by an older cairn gains the evidence table and
    /// keeps its rows.
    #[test]
    fn a_version_1_database_is_upgraded_in_place() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].sqlite).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO workloads (name, repo, created_at_ms, updated_at_ms) VALUES ('app', 'r', 1, 1)",
            [],
        )
        .unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(user_version(&conn).unwrap(), KNOWN_VERSION);
        let kept: i64 = conn
            .query_row("SELECT count(*) FROM workloads", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 1);
        let evidence: i64 = conn
            .query_row("SELECT count(*) FROM evidence", [], |r| r.get(0))
            .unwrap();
        assert_eq!(evidence, 0);
    }

    /// A version 14 database's advisories are back-filled with their match
    /// form: the record without its text (`details`, `references`, `related`,
    /// `credits`), everything matching reads kept; a record SQLite cannot read
    /// as JSON keeps none (matching reads the record itself). The record stays
    /// as it was.
    #[test]
    fn a_version_14_database_gets_its_advisories_match_forms() {
        let mut conn = Connection::open_in_memory().unwrap();
        for script in &MIGRATIONS[..14] {
            conn.execute_batch(script.sqlite).unwrap();
        }
        conn.pragma_update(None, "user_version", 14).unwrap();
        let record = r#"{"id":"A-1","modified":"m","details":"long text","related":["X"],"references":[{"type":"WEB","url":"https://x"}],"credits":[{"name":"n"}],"summary":"s \u00e9","aliases":["CVE-1"],"affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}],"ecosystem_specific":{"urgency":"low"}}],"database_specific":{"informational":"unsound"}}"#;
        let insert =
            "INSERT INTO advisories (id, modified, withdrawn, json) VALUES (?1, 'm', 0, ?2)";
        conn.execute(insert, rusqlite::params!["A-1", record.as_bytes()])
            .unwrap();
        conn.execute(insert, rusqlite::params!["A-2", b"not json".as_slice()])
            .unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(user_version(&conn).unwrap(), KNOWN_VERSION);
        let read = |id: &str| -> (Vec<u8>, Option<Vec<u8>>) {
            conn.query_row(
                "SELECT json, match_form FROM advisories WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        };
        let (json, form) = read("A-1");
        assert_eq!(json, record.as_bytes());
        let form: serde_json::Value = serde_json::from_slice(&form.unwrap()).unwrap();
        let mut expect: serde_json::Value = serde_json::from_str(record).unwrap();
        for key in ["details", "related", "references", "credits"] {
            expect.as_object_mut().unwrap().remove(key);
        }
        assert_eq!(form, expect);
        assert_eq!(form["summary"], "s \u{e9}");
        assert_eq!(read("A-2"), (b"not json".to_vec(), None));
    }

    /// A version 16 database's index rows get their record's `modified` and no
    /// compiled form (matching reads the record for them).
    #[test]
    fn a_version_16_databases_index_rows_get_their_records_modified() {
        let mut conn = Connection::open_in_memory().unwrap();
        for script in &MIGRATIONS[..16] {
            conn.execute_batch(script.sqlite).unwrap();
        }
        conn.pragma_update(None, "user_version", 16).unwrap();
        conn.execute(
            "INSERT INTO advisories (id, modified, withdrawn, json) VALUES ('A-1', 'm1', 0, X'7B7D')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO advisory_packages (ecosystem, name, id) VALUES ('npm', 'a', 'A-1')",
            [],
        )
        .unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        let row: (Option<String>, Option<Vec<u8>>) = conn
            .query_row(
                "SELECT modified, compiled FROM advisory_packages WHERE id = 'A-1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(row, (Some("m1".to_owned()), None));
    }

    /// A version 18 database's compiled forms (version 1, which this cairn
    /// no longer reads) are dropped, so that the back-fill of the next import
    /// compiles them again; its rows and records stay.
    #[test]
    fn a_version_18_databases_compiled_forms_are_dropped_for_the_back_fill() {
        let mut conn = Connection::open_in_memory().unwrap();
        for script in &MIGRATIONS[..18] {
            conn.execute_batch(script.sqlite).unwrap();
        }
        conn.pragma_update(None, "user_version", 18).unwrap();
        conn.execute(
            "INSERT INTO advisories (id, modified, withdrawn, json) VALUES ('A-1', 'm1', 0, X'7B7D')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO advisory_packages (ecosystem, name, id, compiled, modified) \
             VALUES ('npm', 'a', 'A-1', X'01000000', 'm1'), ('npm', 'b', 'A-1', NULL, 'm1')",
            [],
        )
        .unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(user_version(&conn).unwrap(), KNOWN_VERSION);
        let rows: Vec<(String, Option<Vec<u8>>, String)> = conn
            .prepare("SELECT name, compiled, modified FROM advisory_packages ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("a".to_owned(), None, "m1".to_owned()),
                ("b".to_owned(), None, "m1".to_owned())
            ]
        );
        // The back-fill finds them through the partial index.
        let uncompiled: i64 = conn
            .query_row(
                "SELECT count(*) FROM advisory_packages INDEXED BY advisory_packages_uncompiled \
                 WHERE compiled IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(uncompiled, 2);
    }

    /// A database left at version 7 gains the server's tables and columns; its
    /// runs read as the CLI's (not for workers), its identities do not expire.
    #[test]
    fn a_version_7_database_is_upgraded_in_place() {
        let mut conn = Connection::open_in_memory().unwrap();
        for script in &MIGRATIONS[..7] {
            conn.execute_batch(script.sqlite).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        conn.execute_batch(
            "INSERT INTO workloads (name, repo, created_at_ms, updated_at_ms) \
             VALUES ('app', 'r', 1, 1); \
             INSERT INTO runs (workload, commit_id, status, created_at_ms) \
             VALUES ('app', 'c', 'queued', 2); \
             INSERT INTO identities (name, kind, token_sha256, created_at_ms) \
             VALUES ('alice', 'user', 'h', 3);",
        )
        .unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(user_version(&conn).unwrap(), KNOWN_VERSION);
        let (trigger, for_worker): (String, i64) = conn
            .query_row("SELECT trigger, for_worker FROM runs", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(
            cairn_model::Trigger::parse(&trigger),
            Ok(cairn_model::Trigger::Cli)
        );
        assert_eq!(for_worker, 0);
        let (repo, forge): (String, Option<String>) = conn
            .query_row(
                "SELECT repo, forge_repository FROM workloads WHERE name = 'app'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((repo.as_str(), forge), ("r", None));
        let expires: Option<i64> = conn
            .query_row("SELECT expires_at_ms FROM identities", [], |r| r.get(0))
            .unwrap();
        assert_eq!(expires, None);
        for table in ["webhook_deliveries", "sessions", "forge_accounts"] {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0, "{table}");
        }
    }

    /// A version 8 database with data predates the log mark: it adopts the log
    /// once (a row with no size); an empty one is new (no row), so an emptied
    /// store beside a log is told apart from an upgraded one.
    #[test]
    fn a_version_8_database_with_data_adopts_the_log_an_empty_one_is_new() {
        for (data, rows) in [(true, 1), (false, 0)] {
            let mut conn = Connection::open_in_memory().unwrap();
            for script in &MIGRATIONS[..8] {
                conn.execute_batch(script.sqlite).unwrap();
            }
            conn.pragma_update(None, "user_version", 8).unwrap();
            if data {
                conn.execute_batch(
                    "INSERT INTO workloads (name, repo, created_at_ms, updated_at_ms) VALUES ('app', 'r', 1, 1);
                     INSERT INTO runs (workload, commit_id, status, created_at_ms) VALUES ('app', 'c', 'queued', 1);",
                )
                .unwrap();
            }
            migrate(&mut conn, Path::new(":memory:")).unwrap();
            let (count, sized): (i64, i64) = conn
                .query_row("SELECT count(*), count(size) FROM log_mark", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            assert_eq!((count, sized), (rows, 0), "data: {data}");
        }
    }
}
