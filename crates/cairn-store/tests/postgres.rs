//! The PostgreSQL store on a real PostgreSQL server (Debian's, started by
//! `cairn_testkit::pg` with `initdb` and `pg_ctl` on a unix socket): the shared
//! conformance suite, one database per case, then what only a server shows
//! (schema versions, processes sharing one database, a server that goes away).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Barrier};

use cairn_model::{NewRun, NewStage, RunStatus, StageKind, Trigger};
use cairn_store::prelude::*;
use cairn_store::{PostgresStore, StoreError};
use cairn_testkit::pg::{PgDatabase, PgServer};

/// A store on a database of its own; the database is dropped, then the server
/// let go, after the store.
struct PgStore {
    store: Option<PostgresStore>,
    _db: PgDatabase,
    _server: PgServer,
}

impl AsRef<dyn Store> for PgStore {
    fn as_ref(&self) -> &(dyn Store + 'static) {
        self.store.as_ref().unwrap()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Close the store's connections before its database is dropped.
        drop(self.store.take());
    }
}

fn pg_store() -> PgStore {
    let server = PgServer::start();
    let db = server.database();
    let store = PostgresStore::open(db.url()).unwrap();
    PgStore {
        store: Some(store),
        _db: db,
        _server: server,
    }
}

mod conformance_postgres {
    cairn_store::conformance_tests!(super::pg_store());
}

/// A run of `app` with two stages, made by `cairn run`.
fn new_run(created_at_ms: i64) -> NewRun {
    NewRun {
        workload: "app".to_owned(),
        commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        git_ref: None,
        created_at_ms,
        stages: ["source", "build"]
            .into_iter()
            .map(|name| NewStage {
                name: name.to_owned(),
                kind: StageKind::Command,
                command: Some(format!("make {name}")),
            })
            .collect(),
        trigger: Trigger::Cli,
    }
}

/// A database written by a newer cairn is refused on open with both versions
/// named, and is left as it was.
#[test]
fn a_newer_schema_is_refused_with_both_versions_named() {
    let server = PgServer::start();
    let db = server.database();
    drop(PostgresStore::open(db.url()).unwrap());
    let newer = PostgresStore::SCHEMA_VERSION + 1;
    let mut client = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    client
        .execute("UPDATE cairn_schema SET version = $1", &[&newer])
        .unwrap();
    let err = PostgresStore::open(db.url()).unwrap_err();
    let message = err.to_string();
    println!("{message}");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, known, .. }
            if found == newer && known == PostgresStore::SCHEMA_VERSION),
        "{err:?}"
    );
    assert!(message.contains("upgrade cairn"), "{message}");
    let kept: i64 = client
        .query_one("SELECT version FROM cairn_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(kept, newer);
}

/// Opening an up-to-date database again migrates nothing and keeps the data;
/// several processes' stores opening one new database at once migrate it once.
#[test]
fn stores_opening_one_new_database_at_once_migrate_it_once() {
    let server = PgServer::start();
    let db = server.database();
    let url = db.url().to_owned();
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PostgresStore::open(&url).map(|_| ())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let store = PostgresStore::open(&url).unwrap();
    store.upsert_workload("app", "r", 1).unwrap();
    drop(store);
    let store = PostgresStore::open(&url).unwrap();
    assert_eq!(store.workloads().unwrap().len(), 1);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let version: i64 = client
        .query_one("SELECT version FROM cairn_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, PostgresStore::SCHEMA_VERSION);
}

/// Many writers at once in separate stores (as separate processes would be):
/// every run is claimed exactly once, since writes are serialised as in SQLite.
#[test]
fn concurrent_claims_take_each_queued_run_once() {
    let server = PgServer::start();
    let db = server.database();
    let url = db.url().to_owned();
    let store = PostgresStore::open(&url).unwrap();
    store.upsert_workload("app", "r", 1).unwrap();
    let mut made = Vec::new();
    for i in 0..40 {
        let run = NewRun {
            trigger: Trigger::Api {
                actor: "alice".to_owned(),
            },
            ..new_run(i)
        };
        made.push(store.create_run(&run).unwrap().0.id);
    }
    let claimed: Vec<_> = (0..4)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let store = PostgresStore::open(&url).unwrap();
                let mut mine = Vec::new();
                while let Some(run) = store.claim_queued_run(&format!("worker-{w}"), 100).unwrap() {
                    mine.push(run.id);
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<_> = claimed
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    made.sort();
    assert_eq!(all, made);
    for id in made {
        assert_eq!(store.run(id).unwrap().unwrap().status, RunStatus::Running);
    }
}

/// A server that is not there is a clear error naming the target, never the
/// password in the URL.
#[test]
fn an_unreachable_server_is_named_without_its_password() {
    let dir = tempfile::TempDir::new().unwrap();
    let url = format!(
        "postgres://cairn:s3cret@{}/nothing?connect_timeout=2",
        dir.path().display().to_string().replace('/', "%2F")
    );
    let err = PostgresStore::open(&url).unwrap_err();
    let message = format!("{err}: {:?}", std::error::Error::source(&err));
    println!("{message}");
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(message.contains("cannot connect"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    assert!(!format!("{err:?}").contains("s3cret"));
}

/// A connection the server ended (a restart, an administrator) is made again on
/// its next use, and that use succeeds: the store goes on.
#[test]
fn a_broken_connection_is_made_again() {
    let server = PgServer::start();
    let db = server.database();
    let store = PostgresStore::open(db.url()).unwrap();
    store.upsert_workload("app", "r", 1).unwrap();
    let mut admin = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name()],
        )
        .unwrap();
    // The next calls (reads and writes) go on, on a new connection: a
    // connection found ended at BEGIN, before any work, is made again.
    assert_eq!(store.workloads().unwrap().len(), 1);
    store.upsert_workload("second", "r", 2).unwrap();
    assert_eq!(store.workloads().unwrap().len(), 2);
}

/// `cairn_store::open` picks the backend from the URL: `postgres://` is this
/// store, `sqlite://DIR` the SQLite one; an unknown scheme is refused naming
/// only the scheme.
#[test]
fn open_picks_the_backend_from_the_url() {
    let server = PgServer::start();
    let db = server.database();
    let store = cairn_store::open(db.url()).unwrap();
    store.upsert_workload("app", "r", 1).unwrap();
    assert!(format!("{store:?}").contains("PostgresStore"), "{store:?}");
    let dir = tempfile::TempDir::new().unwrap();
    let sqlite = cairn_store::open(&format!("sqlite://{}", dir.path().display())).unwrap();
    assert!(format!("{sqlite:?}").contains("SqliteStore"), "{sqlite:?}");
    assert!(dir.path().join("cairn.db").is_file());
    for bad in ["mysql://root:s3cret@db/x", "sqlite://", "/var/lib/cairn"] {
        let err = cairn_store::open(bad).unwrap_err();
        let message = err.to_string();
        println!("{bad}: {message}");
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}

/// A small tmpfs, unmounted when dropped (the test runs as root).
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Bytes that do not compress (PostgreSQL compresses large values).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

/// The server's disk full (SQLSTATE 53100, here a database in a tablespace on a
/// full tmpfs): the write is refused as a full disk (the CLI's exit 2 with its
/// message, the server's 507), nothing of it is kept, reads go on, and once
/// space is back the same store writes again.
#[test]
fn the_servers_full_disk_is_named_nothing_is_written_and_reads_go_on() {
    use std::io::Write;
    let server = PgServer::start();
    let db = server.database();
    let tmp = tempfile::TempDir::new().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let uid = std::process::Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    let uid = String::from_utf8(uid.stdout).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("size=4m,mode=0700,uid={}", uid.trim()))
        .arg("tmpfs")
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success());
    let _mounted = Tmpfs(mnt.clone());
    // The database's tables go to a tablespace on the tmpfs; it lives as long as
    // the mount (dropped, with the database, before it is unmounted).
    let space = format!("tiny_{}", db.name());
    let admin_url = db.url().rsplit_once('/').unwrap().0.to_owned() + "/postgres";
    let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "CREATE TABLESPACE {space} LOCATION '{}'",
            mnt.display()
        ))
        .unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET default_tablespace = {space}",
            db.name()
        ))
        .unwrap();
    struct DropSpace(postgres::Client, String, String);
    impl Drop for DropSpace {
        fn drop(&mut self) {
            let _ = self
                .0
                .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.2));
            let _ = self
                .0
                .batch_execute(&format!("DROP TABLESPACE IF EXISTS {}", self.1));
        }
    }
    let _space = DropSpace(admin, space, db.name().to_owned());

    let store = PostgresStore::open(db.url()).unwrap();
    store.upsert_workload("app", "r", 1).unwrap();
    let filler = mnt.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let avail = nix_free(&mnt);
        f.write_all(&vec![
            0u8;
            usize::try_from(avail.saturating_sub(300 << 10))
                .unwrap()
        ])
        .unwrap();
        f.sync_all().unwrap();
    }
    let big: Vec<cairn_store::NewAdvisory> = (0..100)
        .map(|i| cairn_store::NewAdvisory {
            id: format!("A-{i}"),
            modified: "2024".into(),
            withdrawn: false,
            packages: vec![("crates.io".into(), format!("p{i}"))],
            json: noise(20_000, i),
            match_form: None,
            compiled: Vec::new(),
        })
        .collect();
    let err = store.put_advisories(&big).unwrap_err();
    let text = err.to_string();
    println!("{text}");
    assert!(err.is_disk_full(), "{err:?}");
    assert_eq!(err.kind(), cairn_model::ErrorKind::DiskFull);
    assert!(
        text.contains("disk is full") && text.contains("nothing was written"),
        "{text}"
    );
    // Nothing of the batch is kept; reads go on.
    assert_eq!(store.advisory_count().unwrap(), 0);
    assert_eq!(store.workloads().unwrap().len(), 1);
    // Space is back: the same store writes.
    std::fs::remove_file(&filler).unwrap();
    store.put_advisories(&big[..5]).unwrap();
    assert_eq!(store.advisory_count().unwrap(), 5);
    drop(store);
}

/// Free bytes on the file system holding `dir`.
fn nix_free(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Text with a NUL byte (PostgreSQL keeps none) is the caller's invalid value,
/// refused with nothing written, not the store failing.
#[test]
fn text_with_a_nul_byte_is_refused_as_invalid() {
    let store = pg_store();
    let store = store.as_ref();
    let err = store.upsert_workload("a\0b", "r", 1).unwrap_err();
    println!("{err}");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert_eq!(err.kind(), cairn_model::ErrorKind::Invalid);
    assert!(store.workloads().unwrap().is_empty());
}

/// The two backends' schemas cannot drift: after every migration, SQLite and
/// PostgreSQL have the same tables with the same columns (name and whether
/// they may be NULL) and the same indexes. PostgreSQL adds only its version
/// table and `webhook_deliveries.seq` (SQLite's rowid).
#[test]
fn both_backends_have_the_same_tables_columns_and_indexes() {
    use std::collections::BTreeSet;
    let dir = tempfile::TempDir::new().unwrap();
    drop(cairn_store::SqliteStore::open(dir.path()).unwrap());
    let sqlite = rusqlite::Connection::open(dir.path().join("cairn.db")).unwrap();
    let mut lite = BTreeSet::new();
    let mut lite_indexes = BTreeSet::new();
    {
        let mut tables = sqlite
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap();
        let names: Vec<String> = tables
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for table in names {
            let mut cols = sqlite
                .prepare("SELECT name, \"notnull\", pk FROM pragma_table_info(?1)")
                .unwrap();
            for col in cols
                .query_map([&table], |r| {
                    let name: String = r.get(0)?;
                    let not_null: bool = r.get::<_, i64>(1)? != 0 || r.get::<_, i64>(2)? != 0;
                    Ok((name, not_null))
                })
                .unwrap()
            {
                let (name, not_null) = col.unwrap();
                lite.insert((table.clone(), name, not_null));
            }
        }
        let mut indexes = sqlite
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' \
                 AND name NOT LIKE 'sqlite_autoindex_%'",
            )
            .unwrap();
        for name in indexes.query_map([], |r| r.get::<_, String>(0)).unwrap() {
            lite_indexes.insert(name.unwrap());
        }
    }

    let server = PgServer::start();
    let db = server.database();
    drop(PostgresStore::open(db.url()).unwrap());
    let mut client = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    let mut pg = BTreeSet::new();
    for row in client
        .query(
            "SELECT table_name::text, column_name::text, is_nullable = 'NO' \
             FROM information_schema.columns WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
    {
        let (table, column, not_null): (String, String, bool) =
            (row.get(0), row.get(1), row.get(2));
        if table == "cairn_schema" || (table == "webhook_deliveries" && column == "seq") {
            continue;
        }
        pg.insert((table, column, not_null));
    }
    let pg_indexes: BTreeSet<String> = client
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
             AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        lite.symmetric_difference(&pg).collect::<Vec<_>>(),
        Vec::<&(String, String, bool)>::new(),
        "columns differ"
    );
    assert_eq!(lite_indexes, pg_indexes, "indexes differ");
    println!(
        "{} columns and {} indexes alike",
        pg.len(),
        pg_indexes.len()
    );
}

/// Big batches go in whole and in order: an SBOM of 20 000 components and a
/// log batch of 10 000 lines (sent a chunk per statement, not a row each).
#[test]
fn big_batches_are_kept_whole_and_in_order() {
    use cairn_model::{LogLine, LogStream};
    let fixture = pg_store();
    let store = fixture.as_ref();
    let components: Vec<(String, String, String, String)> = (0..20_000)
        .map(|i| {
            (
                "npm".to_owned(),
                format!("pkg-{}", i % 5_000),
                format!("1.0.{i}"),
                format!("pkg:npm/pkg-{}@1.0.{i}", i % 5_000),
            )
        })
        .collect();
    let sbom = cairn_store::NewSbom {
        subject_name: "app".to_owned(),
        subject_digest: "sha256:big".to_owned(),
        workload: None,
        environment: None,
        created_at_ms: 1,
        format: "cyclonedx".to_owned(),
        document: b"{}".to_vec(),
        components,
    };
    let ids = store.add_sboms(std::slice::from_ref(&sbom)).unwrap();
    // Stored twice, it is one SBOM (the comparison reads all 20 000 back).
    assert_eq!(store.add_sboms(std::slice::from_ref(&sbom)).unwrap(), ids);
    let hits = store.where_package(Some("npm"), "pkg-42").unwrap();
    assert_eq!(hits.len(), 4);
    assert!(hits.windows(2).all(|w| w[0].version < w[1].version));

    store.upsert_workload("app", "r", 1).unwrap();
    let (run, stages) = store.create_run(&new_run(10)).unwrap();
    store.start_run(run.id, "host:1:2", 20).unwrap();
    store.start_stage(stages[0].id, 21).unwrap();
    let lines: Vec<LogLine> = (0..10_000u64)
        .map(|seq| LogLine {
            seq,
            stream: if seq % 2 == 0 {
                LogStream::Stdout
            } else {
                LogStream::Stderr
            },
            at_ms: 1_000 + i64::try_from(seq).unwrap(),
            text: format!("line {seq}\0\u{1b}[31m").into_bytes(),
        })
        .collect();
    store.append_logs(stages[0].id, &lines).unwrap();
    let stats = store.log_stats(stages[0].id).unwrap();
    assert_eq!(stats.lines, 10_000);
    let back = store.logs(stages[0].id, None, 20_000).unwrap();
    assert_eq!(back, lines);
    assert_eq!(store.log_tail(stages[0].id, 1).unwrap(), lines[9_999..]);
}

/// Leases are judged by the database server's clock: a worker whose clock is
/// far behind (claims and renews at "1970") keeps its live lease, and a
/// process whose clock is far ahead (expires at "2100") cannot end it; once the
/// renewals stop, the server's clock alone ends it.
#[test]
fn leases_are_judged_by_the_database_clock_not_the_workers() {
    let store = pg_store();
    let store = store.as_ref();
    store.upsert_workload("app", "/srv/app", 1).unwrap();
    let mut queued = new_run(2);
    queued.trigger = Trigger::Api {
        actor: "alice".to_owned(),
    };
    let (run, _) = store.create_run(&queued).unwrap();
    let behind = 1_000; // 1970
    let ahead = 4_102_444_800_000; // 2100
    let claimed = store.claim_queued_run("skewed-worker", behind).unwrap();
    assert_eq!(claimed.map(|r| r.id), Some(run.id));
    assert_eq!(store.heartbeat_runs("skewed-worker", behind).unwrap(), 1);
    let expired = store.expire_leases(10_000, "stale", ahead).unwrap();
    assert!(expired.is_empty(), "a clock far ahead ended a live lease");
    std::thread::sleep(std::time::Duration::from_millis(300));
    // No renewal for 300 ms by the server's clock, even judged "in 1970".
    let expired = store.expire_leases(100, "stale", behind).unwrap();
    assert_eq!(expired, vec![run.id]);
    println!("lease judged by the server's clock: run {} expired", run.id);
}

/// Every change to a run committed through one store (another process's, in
/// production) is announced to a listener made by another: the claim, a
/// stage's start, log lines, the end. SQLite has no such channel.
#[test]
fn run_changes_are_announced_to_listeners_on_other_connections() {
    let server = PgServer::start();
    let db = server.database();
    let writer = PostgresStore::open(db.url()).unwrap();
    let reader = PostgresStore::open(db.url()).unwrap();
    let mut changes = reader.run_changes().unwrap().unwrap();
    let quiet = changes.wait(std::time::Duration::from_millis(50)).unwrap();
    assert!(quiet.is_empty(), "{quiet:?}");
    writer.upsert_workload("app", "/srv/app", 1).unwrap();
    let mut queued = new_run(2);
    queued.trigger = Trigger::Api {
        actor: "alice".to_owned(),
    };
    let (run, stages) = writer.create_run(&queued).unwrap();
    let mut heard = |label: &str| {
        let started = std::time::Instant::now();
        let ids = changes.wait(std::time::Duration::from_secs(5)).unwrap();
        println!("{label}: announced {ids:?} after {:?}", started.elapsed());
        assert!(ids.contains(&run.id), "{label}: {ids:?}");
    };
    writer.claim_queued_run("w", 3).unwrap().unwrap();
    heard("claimed");
    writer.start_stage(stages[0].id, 4).unwrap();
    heard("stage started");
    writer
        .append_logs(
            stages[0].id,
            &[cairn_model::LogLine {
                seq: 0,
                stream: cairn_model::LogStream::Stdout,
                at_ms: 5,
                text: b"hello".to_vec(),
            }],
        )
        .unwrap();
    heard("log line");
    writer
        .finish_run(run.id, RunStatus::Succeeded, None, 6)
        .unwrap();
    heard("finished");
    let sqlite = tempfile::tempdir().unwrap();
    let sqlite = cairn_store::SqliteStore::open(sqlite.path()).unwrap();
    assert!(sqlite.run_changes().unwrap().is_none());
}
