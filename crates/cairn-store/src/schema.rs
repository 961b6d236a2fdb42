//! The schema's versions, one list for every backend.
//!
//! Entry `i` of [`MIGRATIONS`] brings a database from version `i` to version
//! `i + 1`, with its SQL in each backend's dialect (SQLite now; PostgreSQL adds
//! its column beside it, version for version, so the two cannot drift). A
//! backend records the version it reached (SQLite in `PRAGMA user_version`) and
//! runs each entry it lacks in one transaction with the bump of that version;
//! on open it refuses, before writing anything, a database whose version is newer
//! than [`SCHEMA_VERSION`] ([`refuse_newer`]): two versions of cairn against one
//! database never both write it.
//!
//! Rules: append an entry, never edit one that shipped; keep migrations additive.

use std::path::Path;

use crate::StoreError;

/// One version of the schema: the SQL that brings a database from the version
/// before to `version`, per backend.
#[derive(Debug)]
pub(crate) struct Migration {
    pub(crate) version: u32,
    /// SQLite's dialect (`STRICT` tables, `WITHOUT ROWID`, `AUTOINCREMENT`).
    pub(crate) sqlite: &'static str,
}

/// The schema, as every backend's migrations: entry `i` brings a database from
/// version `i` to `i + 1` (its `version`). Append, never edit one that shipped.
pub(crate) const MIGRATIONS: &[Migration] = &[
    // Version 1: workloads, runs, stages, step logs.
    Migration {
        version: 1,
        sqlite: r#"
CREATE TABLE workloads (
    name          TEXT    NOT NULL PRIMARY KEY,
    repo          TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    workload       TEXT    NOT NULL REFERENCES workloads (name),
    commit_id      TEXT    NOT NULL,
    git_ref        TEXT,
    status         TEXT    NOT NULL,
    reason         TEXT,
    owner          TEXT,
    created_at_ms  INTEGER NOT NULL,
    started_at_ms  INTEGER,
    finished_at_ms INTEGER
) STRICT;

-- `runs` lists newest first, optionally by workload or by status; the rowid (id)
-- is the tie-break and is part of every index.
CREATE INDEX runs_by_created  ON runs (created_at_ms);
CREATE INDEX runs_by_workload ON runs (workload, created_at_ms);
CREATE INDEX runs_by_status   ON runs (status, created_at_ms);

CREATE TABLE stages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    name           TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    command        TEXT,
    status         TEXT    NOT NULL,
    exit_code      INTEGER,
    reason         TEXT,
    started_at_ms  INTEGER,
    finished_at_ms INTEGER,
    -- The log's size, kept with every append: the next seq and `log_stats`.
    log_lines      INTEGER NOT NULL DEFAULT 0,
    log_bytes      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (run_id, position)
) STRICT;

-- Clustered by (stage, seq): paging, tailing and following a log are range scans.
CREATE TABLE log_lines (
    stage_id INTEGER NOT NULL REFERENCES stages (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    stream   TEXT    NOT NULL,
    at_ms    INTEGER NOT NULL,
    bytes    BLOB    NOT NULL,
    PRIMARY KEY (stage_id, seq)
) STRICT, WITHOUT ROWID;
"#,
    },
    // Version 2: evidence (signed bundles) by run and by subject digest.
    Migration {
        version: 2,
        sqlite: r#"
CREATE TABLE evidence (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         INTEGER REFERENCES runs (id) ON DELETE CASCADE,
    stage_id       INTEGER REFERENCES stages (id) ON DELETE CASCADE,
    predicate_type TEXT    NOT NULL,
    subject_name   TEXT    NOT NULL,
    subject_digest TEXT    NOT NULL,
    bundle         BLOB    NOT NULL,
    created_at_ms  INTEGER NOT NULL
) STRICT;

CREATE INDEX evidence_by_run     ON evidence (run_id, id);
CREATE INDEX evidence_by_subject ON evidence (subject_digest, id);
"#,
    },
    // Version 3: OSV advisories and the (ecosystem, name) index that finds them.
    Migration {
        version: 3,
        sqlite: r#"
CREATE TABLE advisories (
    id        TEXT    NOT NULL PRIMARY KEY,
    modified  TEXT    NOT NULL,
    withdrawn INTEGER NOT NULL,
    json      BLOB    NOT NULL
) STRICT;

-- A withdrawn record has no rows here: it is kept, never matched.
CREATE TABLE advisory_packages (
    ecosystem TEXT NOT NULL,
    name      TEXT NOT NULL,
    id        TEXT NOT NULL REFERENCES advisories (id) ON DELETE CASCADE,
    PRIMARY KEY (ecosystem, name, id)
) STRICT, WITHOUT ROWID;

CREATE INDEX advisory_packages_by_id ON advisory_packages (id);
"#,
    },
    // Version 4: stored SBOMs and the index of their components ("where is X").
    Migration {
        version: 4,
        sqlite: r#"
CREATE TABLE sboms (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_name   TEXT    NOT NULL,
    subject_digest TEXT    NOT NULL,
    workload       TEXT,
    environment    TEXT,
    created_at_ms  INTEGER NOT NULL,
    format         TEXT    NOT NULL,
    document       BLOB    NOT NULL
) STRICT;

CREATE INDEX sboms_by_subject ON sboms (subject_digest, id);

CREATE TABLE sbom_components (
    sbom_id   INTEGER NOT NULL REFERENCES sboms (id) ON DELETE CASCADE,
    ecosystem TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    version   TEXT    NOT NULL,
    purl      TEXT    NOT NULL
) STRICT;

-- "Where is X": by (ecosystem, name[, version]), or by name in any ecosystem; the
-- second covers the lookup, so a popular package's rows are read in one range scan.
CREATE INDEX sbom_components_by_package ON sbom_components (ecosystem, name, version);
CREATE INDEX sbom_components_by_name    ON sbom_components (name, ecosystem, version, purl, sbom_id);
CREATE INDEX sbom_components_by_sbom    ON sbom_components (sbom_id);
"#,
    },
    // Version 5: findings (an advisory against a component of a stored SBOM) with their
    // state and times, the log of re-matches, and the "where" index in SBOM order.
    Migration {
        version: 5,
        sqlite: r#"
CREATE TABLE findings (
    advisory_id   TEXT    NOT NULL,
    sbom_id       INTEGER NOT NULL REFERENCES sboms (id) ON DELETE CASCADE,
    ecosystem     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    purl          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    severity      TEXT,
    state         TEXT    NOT NULL CHECK (state IN ('open', 'suppressed', 'fixed')),
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    fixed_at_ms   INTEGER,
    PRIMARY KEY (advisory_id, sbom_id, ecosystem, name, version)
) STRICT, WITHOUT ROWID;

-- A re-match reads the findings of the packages (and advisories, by the primary
-- key) it covers; listings go by SBOM.
CREATE INDEX findings_by_package ON findings (ecosystem, name, sbom_id);
CREATE INDEX findings_by_sbom    ON findings (sbom_id, advisory_id);

-- "Where is X" for a name in most SBOMs returns ~10k rows: read them in the
-- order they are returned (by SBOM), from an index that covers the component
-- columns, so the query needs neither a sort nor a DISTINCT pass.
DROP INDEX sbom_components_by_name;
CREATE INDEX sbom_components_by_name_sbom
    ON sbom_components (name, sbom_id, ecosystem, version, purl);

CREATE TABLE rematches (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    packages   INTEGER NOT NULL,
    advisories INTEGER NOT NULL,
    sbom_id    INTEGER,
    components INTEGER NOT NULL,
    opened     INTEGER NOT NULL,
    still_open INTEGER NOT NULL,
    fixed      INTEGER NOT NULL
) STRICT;
"#,
    },
    // Version 6: the base-image catalog (every admission kept; the newest entry of a name
    // is the current one) and the images cairn built or rebased.
    Migration {
        version: 6,
        sqlite: r#"
CREATE TABLE bases (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    digest          TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    imported_at_ms  INTEGER NOT NULL,
    packages        INTEGER NOT NULL,
    vulnerabilities INTEGER NOT NULL
) STRICT;
CREATE INDEX bases_by_name ON bases (name, id);

CREATE TABLE images (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    digest        TEXT    NOT NULL,
    workload      TEXT    NOT NULL,
    run_id        INTEGER REFERENCES runs (id),
    commit_id     TEXT    NOT NULL,
    base_name     TEXT    NOT NULL,
    base_digest   TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    rebased_from  TEXT
) STRICT;
CREATE INDEX images_by_digest   ON images (digest, id);
CREATE INDEX images_by_workload ON images (workload, id);
"#,
    },
    // Version 7: identities (a token's SHA-256, never the token), their role bindings,
    // deployments (the newest of a workload's environment runs there) and change records.
    Migration {
        version: 7,
        sqlite: r#"
CREATE TABLE identities (
    name          TEXT    NOT NULL PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind IN ('user', 'service-account')),
    token_sha256  TEXT    NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
) STRICT;

-- An organisation-wide binding has neither workload nor environment; an
-- environment binding has both. The unique index makes a binding a set member
-- (NULLs would be distinct in a plain UNIQUE constraint).
CREATE TABLE role_bindings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    identity    TEXT    NOT NULL REFERENCES identities (name),
    role        TEXT    NOT NULL,
    workload    TEXT,
    environment TEXT,
    CHECK (environment IS NULL OR workload IS NOT NULL)
) STRICT;
CREATE UNIQUE INDEX role_bindings_unique
    ON role_bindings (identity, role, ifnull(workload, ''), ifnull(environment, ''));

CREATE TABLE deployments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    workload        TEXT    NOT NULL,
    environment     TEXT    NOT NULL,
    digest          TEXT    NOT NULL,
    previous_digest TEXT,
    kind            TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    detail          TEXT    NOT NULL,
    log_index       INTEGER NOT NULL,
    deployed_at_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX deployments_by_environment ON deployments (workload, environment, id);
CREATE INDEX deployments_by_digest      ON deployments (workload, environment, digest);
CREATE INDEX deployments_by_env_only    ON deployments (environment, id);

CREATE TABLE changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    workload    TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    from_digest TEXT,
    to_digest   TEXT    NOT NULL,
    log_index   INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    json        TEXT    NOT NULL
) STRICT;
CREATE INDEX changes_by_workload ON changes (workload, id);
"#,
    },
    // Version 8: the server. A workload's forge repository (webhooks find it by that),
    // what triggered a run and whether the server's workers run it, webhook deliveries
    // (each accepted once), browser sessions, identities that expire, and forge logins
    // mapped to identities.
    Migration {
        version: 8,
        sqlite: r#"
ALTER TABLE workloads ADD COLUMN forge_repository TEXT;
CREATE UNIQUE INDEX workloads_by_forge_repository
    ON workloads (forge_repository) WHERE forge_repository IS NOT NULL;

-- Rows of older versions were made by `cairn run`: the CLI's, not for workers.
ALTER TABLE runs ADD COLUMN trigger    TEXT    NOT NULL DEFAULT 'cli';
ALTER TABLE runs ADD COLUMN for_worker INTEGER NOT NULL DEFAULT 0;
-- The workers' queue, oldest first: only the runs in it are indexed.
CREATE INDEX runs_worker_queue ON runs (created_at_ms, id)
    WHERE for_worker = 1 AND status = 'queued';

CREATE TABLE webhook_deliveries (
    forge          TEXT    NOT NULL,
    delivery       TEXT    NOT NULL,
    event          TEXT    NOT NULL,
    received_at_ms INTEGER NOT NULL,
    outcome        TEXT    NOT NULL,
    run_id         INTEGER REFERENCES runs (id),
    PRIMARY KEY (forge, delivery)
) STRICT;
CREATE INDEX webhook_deliveries_by_received ON webhook_deliveries (received_at_ms);

CREATE TABLE sessions (
    token_sha256  TEXT    NOT NULL PRIMARY KEY,
    identity      TEXT    NOT NULL REFERENCES identities (name),
    csrf          TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);

ALTER TABLE identities ADD COLUMN expires_at_ms INTEGER;

CREATE TABLE forge_accounts (
    forge         TEXT    NOT NULL,
    login         TEXT    NOT NULL,
    identity      TEXT    NOT NULL REFERENCES identities (name),
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (forge, login)
) STRICT, WITHOUT ROWID;
"#,
    },
    // Version 9: the audit log as the store last checked it (size and root), so a store
    // that is new, older or newer than its log is found on open. A store that already
    // holds data when it gains the table predates the mark: it takes the log as it finds
    // it, once (`size` NULL); a new store gets no row.
    Migration {
        version: 9,
        sqlite: r#"
CREATE TABLE log_mark (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    size  INTEGER CHECK (size IS NULL OR size >= 0),
    root  TEXT,
    at_ms INTEGER NOT NULL
) STRICT;
INSERT INTO log_mark (id, size, root, at_ms)
SELECT 1, NULL, NULL, 0
WHERE EXISTS (SELECT 1 FROM runs) OR EXISTS (SELECT 1 FROM identities)
   OR EXISTS (SELECT 1 FROM evidence) OR EXISTS (SELECT 1 FROM changes)
   OR EXISTS (SELECT 1 FROM deployments) OR EXISTS (SELECT 1 FROM bases)
   OR EXISTS (SELECT 1 FROM advisories) OR EXISTS (SELECT 1 FROM workloads)
   OR EXISTS (SELECT 1 FROM sboms) OR EXISTS (SELECT 1 FROM images);
"#,
    },
    // Version 10: deployments as intent and outcome. A deployment is recorded `deploying`
    // (with a random token the deploy target identifies it by) before anything starts,
    // then `deployed`, `failed`, `superseded` or `not-running` with a reason. Older rows
    // were all deployed.
    Migration {
        version: 10,
        sqlite: r#"
ALTER TABLE deployments ADD COLUMN status TEXT NOT NULL DEFAULT 'deployed'
    CHECK (status IN ('deploying', 'deployed', 'failed', 'superseded', 'not-running'));
ALTER TABLE deployments ADD COLUMN token TEXT;
ALTER TABLE deployments ADD COLUMN reason TEXT;
CREATE UNIQUE INDEX deployments_by_token ON deployments (token);
"#,
    },
    // Version 11: a catalog entry keeps how cairn made it (the recipe, JSON) and its OS
    // packages (`name=version`, one a line), so it can be made again and compared. Older
    // entries have neither.
    Migration {
        version: 11,
        sqlite: r#"
ALTER TABLE bases ADD COLUMN recipe TEXT;
ALTER TABLE bases ADD COLUMN package_list TEXT NOT NULL DEFAULT '';
"#,
    },
    // Version 12: change records by kind, so the last one of a kind (the last
    // policy change) is one indexed row, however many changes came after it.
    Migration {
        version: 12,
        sqlite: r#"
CREATE INDEX changes_by_kind ON changes (kind, id);
"#,
    },
];

/// The schema version this cairn writes (the last entry of the migration list).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Refuses a database at schema version `found` when it is newer than this cairn
/// knows (written by a newer cairn), before anything touches it.
pub(crate) fn refuse_newer(found: i64, path: &Path) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entry `i` is version `i + 1`: none skipped, none twice, none out of order.
    #[test]
    fn versions_count_up_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(i64::from(m.version), i as i64 + 1, "{m:?}");
            assert!(
                !m.sqlite.trim().is_empty(),
                "version {} has no SQL",
                m.version
            );
        }
        assert_eq!(SCHEMA_VERSION, MIGRATIONS.len() as i64);
    }

    /// Older and equal versions pass; a newer one is refused, naming both
    /// versions and what to do.
    #[test]
    fn a_newer_version_is_refused_with_both_versions_named() {
        let path = Path::new("/data/cairn.db");
        for ok in [0, 1, SCHEMA_VERSION] {
            assert!(refuse_newer(ok, path).is_ok(), "{ok}");
        }
        let err = refuse_newer(SCHEMA_VERSION + 1, path).unwrap_err();
        let message = err.to_string();
        println!("{message}");
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, known, .. }
                if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
            "{err:?}"
        );
        assert!(
            message.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
            "{message}"
        );
        assert!(message.contains("upgrade cairn"), "{message}");
    }
}
