//! The SQLite store: the shared conformance suite on a file and in memory, then what
//! only a file database can show (durability, permissions, concurrent processes,
//! schema versions, corruption, bulk appends).

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cairn_model::{LogLine, LogStream, NewRun, NewStage, RunStatus, StageKind, StageStatus};
use cairn_store::prelude::*;
use cairn_store::{LogStats, RunFilter, SqliteStore, StoreError};
use tempfile::TempDir;

/// A store on a file in a temp dir that lives as long as the store.
struct FileStore {
    store: SqliteStore,
    _dir: TempDir,
}

impl AsRef<dyn Store> for FileStore {
    fn as_ref(&self) -> &(dyn Store + 'static) {
        &self.store
    }
}

fn file_store() -> FileStore {
    let dir = TempDir::new().unwrap();
    let store = SqliteStore::open(&dir.path().join("data")).unwrap();
    FileStore { store, _dir: dir }
}

fn memory_store() -> Box<dyn Store> {
    Box::new(SqliteStore::open_in_memory().unwrap())
}

mod conformance_file {
    cairn_store::conformance_tests!(super::file_store());
}

mod conformance_memory {
    cairn_store::conformance_tests!(super::memory_store());
}

#[test]
fn run_all_runs_every_case() {
    let made = std::cell::Cell::new(0);
    cairn_store::conformance::run_all(&|| {
        made.set(made.get() + 1);
        memory_store()
    });
    assert_eq!(made.get(), cairn_store::conformance::CASES.len());
    assert!(made.get() >= 20);
}

// ---- helpers -------------------------------------------------------------------------

const COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn new_run(created_at_ms: i64, stages: &[&str]) -> NewRun {
    NewRun {
        workload: "app".to_owned(),
        commit: COMMIT.to_owned(),
        git_ref: None,
        created_at_ms,
        stages: stages
            .iter()
            .map(|name| NewStage {
                name: (*name).to_owned(),
                kind: StageKind::Build,
                command: None,
            })
            .collect(),
        trigger: cairn_model::Trigger::Cli,
    }
}

fn line(seq: u64, text: impl Into<Vec<u8>>) -> LogLine {
    LogLine {
        seq,
        stream: if seq.is_multiple_of(3) {
            LogStream::Stderr
        } else {
            LogStream::Stdout
        },
        at_ms: i64::try_from(seq).unwrap(),
        text: text.into(),
    }
}

/// A snapshot of everything the store holds about all runs.
type Snapshot = Vec<(
    cairn_model::RunRecord,
    Vec<cairn_model::StageRecord>,
    Vec<Vec<LogLine>>,
)>;

fn snapshot(store: &dyn Store) -> Snapshot {
    let filter = RunFilter {
        limit: usize::MAX,
        ..RunFilter::default()
    };
    store
        .runs(&filter)
        .unwrap()
        .into_iter()
        .map(|run| {
            let stages = store.stages(run.id).unwrap();
            let logs = stages
                .iter()
                .map(|s| store.logs(s.id, None, usize::MAX).unwrap())
                .collect();
            (run, stages, logs)
        })
        .collect()
}

/// Some runs in every state, with logs.
fn populate(store: &dyn Store) {
    store
        .upsert_workload("app", "https://git.example.invalid/app.git", 1)
        .unwrap();
    let (done, stages) = store.create_run(&new_run(10, &["a", "b"])).unwrap();
    store.start_run(done.id, "host:1:1", 11).unwrap();
    store.start_stage(stages[0].id, 12).unwrap();
    store
        .append_logs(
            stages[0].id,
            &[line(0, "hello"), line(1, b"\xff\x00".to_vec())],
        )
        .unwrap();
    store
        .finish_stage(stages[0].id, StageStatus::Passed, Some(0), None, 13)
        .unwrap();
    store
        .finish_run(done.id, RunStatus::Succeeded, None, 14)
        .unwrap();

    let (running, stages) = store.create_run(&new_run(20, &["a", "b"])).unwrap();
    store.start_run(running.id, "host:2:2", 21).unwrap();
    store.start_stage(stages[0].id, 22).unwrap();
    store
        .append_logs(stages[0].id, &[line(0, "working")])
        .unwrap();

    store.create_run(&new_run(30, &["a"])).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn raw(data_dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data_dir.join(SqliteStore::FILE_NAME)).unwrap()
}

// ---- the database file ---------------------------------------------------------------

#[test]
fn open_creates_a_private_directory_and_database() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("nested").join(".cairn");
    let store = SqliteStore::open(&data).unwrap();
    populate(&store);

    let db = data.join("cairn.db");
    assert_eq!(store.path(), Some(db.as_path()));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    let wal = data.join("cairn.db-wal");
    assert!(wal.exists(), "no write-ahead log");
    assert_eq!(mode(&wal), 0o600);

    let conn = raw(&data);
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SqliteStore::SCHEMA_VERSION);
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.sort();
    assert_eq!(
        tables,
        [
            "advisories",
            "advisory_packages",
            "bases",
            "changes",
            "deployments",
            "duty_leases",
            "evidence",
            "findings",
            "forge_accounts",
            "identities",
            "images",
            "log_lines",
            "log_mark",
            "rematches",
            "role_bindings",
            "runs",
            "sbom_components",
            "sboms",
            "sessions",
            "stages",
            "webhook_deliveries",
            "workloads"
        ]
    );
}

#[test]
fn open_leaves_an_existing_directory_mode_alone() {
    let tmp = TempDir::new().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
    let store = SqliteStore::open(tmp.path()).unwrap();
    assert!(store.runs(&RunFilter::default()).unwrap().is_empty());
    assert_eq!(mode(tmp.path()), 0o750);
    assert_eq!(mode(&tmp.path().join("cairn.db")), 0o600);
}

#[test]
fn a_data_dir_that_is_a_file_is_an_io_error() {
    let tmp = TempDir::new().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = SqliteStore::open(&file).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn reopening_keeps_everything() {
    let tmp = TempDir::new().unwrap();
    let before = {
        let store = SqliteStore::open(tmp.path()).unwrap();
        populate(&store);
        snapshot(&store)
    };
    assert_eq!(before.len(), 3);
    let store = SqliteStore::open(tmp.path()).unwrap();
    assert_eq!(snapshot(&store), before);
    // And the reopened store carries on where it stopped.
    let running = before[1].1[0].id;
    store.append_logs(running, &[line(1, "more")]).unwrap();
    assert_eq!(store.log_stats(running).unwrap().lines, 2);
}

/// What `Ok` acknowledged is in the files on disk at that moment, without a clean
/// close: copy the database and its write-ahead log while the store is still open
/// (as a crash would leave them) and open the copy.
#[test]
fn acknowledged_writes_are_in_the_files_without_a_clean_close() {
    let tmp = TempDir::new().unwrap();
    let live = tmp.path().join("live");
    let store = SqliteStore::open(&live).unwrap();
    populate(&store);
    let before = snapshot(&store);

    let crashed = tmp.path().join("crashed");
    std::fs::create_dir(&crashed).unwrap();
    for name in ["cairn.db", "cairn.db-wal"] {
        std::fs::copy(live.join(name), crashed.join(name)).unwrap();
    }
    // The shared-memory index is not copied: SQLite rebuilds it from the log.
    assert!(!crashed.join("cairn.db-shm").exists());
    let recovered = SqliteStore::open(&crashed).unwrap();
    assert_eq!(snapshot(&recovered), before);
    drop(store);
}

// ---- several processes on one data directory -----------------------------------------

/// With another connection in the middle of a write transaction, the store still
/// reads at once (WAL), sees only committed data, and sees the write once committed.
#[test]
fn a_reader_is_not_blocked_by_a_writer() {
    let tmp = TempDir::new().unwrap();
    let store = SqliteStore::open(tmp.path()).unwrap();
    populate(&store);

    let mut writer = raw(tmp.path());
    let tx = writer
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    tx.execute(
        "INSERT INTO runs (workload, commit_id, status, created_at_ms) \
         VALUES ('app', 'x', 'queued', 99)",
        [],
    )
    .unwrap();

    let started = Instant::now();
    let during = store.runs(&RunFilter::default()).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the read waited for the writer"
    );
    assert_eq!(during.len(), 3);

    tx.commit().unwrap();
    let after = store.runs(&RunFilter::default()).unwrap();
    assert_eq!(after.len(), 4);
    assert_eq!(after[0].created_at_ms, 99);
}

/// `cairn logs --follow` in one process while `cairn run` appends in another.
#[test]
fn a_follower_sees_every_line_while_another_store_appends() {
    let tmp = TempDir::new().unwrap();
    let writer = SqliteStore::open(tmp.path()).unwrap();
    writer.upsert_workload("app", "repo", 1).unwrap();
    let (run, stages) = writer.create_run(&new_run(1, &["build"])).unwrap();
    writer.start_run(run.id, "me", 2).unwrap();
    writer.start_stage(stages[0].id, 3).unwrap();
    let stage = stages[0].id;

    const BATCHES: u64 = 100;
    const PER_BATCH: u64 = 50;
    let reader = SqliteStore::open(tmp.path()).unwrap();
    let follower = std::thread::spawn(move || {
        let mut seen: Vec<LogLine> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while (seen.len() as u64) < BATCHES * PER_BATCH {
            assert!(
                Instant::now() < deadline,
                "follower stalled at {}",
                seen.len()
            );
            let after = seen.last().map(|l| l.seq);
            let next = reader.logs(stage, after, 1000).unwrap();
            if next.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
            seen.extend(next);
        }
        seen
    });

    for batch in 0..BATCHES {
        let lines: Vec<LogLine> = (batch * PER_BATCH..(batch + 1) * PER_BATCH)
            .map(|seq| line(seq, format!("line {seq}")))
            .collect();
        writer.append_logs(stage, &lines).unwrap();
    }
    let seen = follower.join().unwrap();
    assert_eq!(seen.len() as u64, BATCHES * PER_BATCH);
    for (i, l) in seen.iter().enumerate() {
        assert_eq!(l.seq, i as u64);
        assert_eq!(l.text, format!("line {i}").into_bytes());
    }
}

/// Two stores writing at once both succeed: the second waits (busy timeout) rather
/// than failing.
#[test]
fn concurrent_writers_take_turns() {
    let tmp = TempDir::new().unwrap();
    SqliteStore::open(tmp.path())
        .unwrap()
        .upsert_workload("app", "repo", 1)
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let dir = tmp.path().to_owned();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let store = SqliteStore::open(&dir).unwrap();
                barrier.wait();
                for i in 0..50 {
                    let (run, stages) = store.create_run(&new_run(w * 1000 + i, &["a"])).unwrap();
                    store.start_run(run.id, "me", i).unwrap();
                    store.start_stage(stages[0].id, i).unwrap();
                    store.append_logs(stages[0].id, &[line(0, "x")]).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let store = SqliteStore::open(tmp.path()).unwrap();
    let filter = RunFilter {
        limit: 1000,
        ..RunFilter::default()
    };
    let runs = store.runs(&filter).unwrap();
    assert_eq!(runs.len(), 100);
    assert!(runs.iter().all(|r| r.status == RunStatus::Running));
}

/// Processes starting at once on a new data directory migrate it exactly once.
#[test]
fn concurrent_opens_of_a_new_directory_migrate_once() {
    let tmp = TempDir::new().unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let dir = tmp.path().join("fresh");
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let store = SqliteStore::open(&dir)?;
                store.upsert_workload("app", "repo", 1)
            })
        })
        .collect();
    for o in openers {
        o.join().unwrap().unwrap();
    }
    let version: i64 = raw(&tmp.path().join("fresh"))
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SqliteStore::SCHEMA_VERSION);
}

// ---- schema versions and damage ------------------------------------------------------

/// A database from a newer cairn is refused and left byte for byte as it was, not
/// even switched to WAL.
#[test]
fn a_newer_schema_is_refused_untouched() {
    let tmp = TempDir::new().unwrap();
    drop(SqliteStore::open(tmp.path()).unwrap());
    let newer = SqliteStore::SCHEMA_VERSION + 1;
    {
        let conn = raw(tmp.path());
        let _: String = conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "user_version", newer).unwrap();
    }
    let db = tmp.path().join("cairn.db");
    let bytes_before = std::fs::read(&db).unwrap();

    let err = SqliteStore::open(tmp.path()).unwrap_err();
    match &err {
        StoreError::SchemaTooNew { found, known, path } => {
            assert_eq!(*found, newer);
            assert_eq!(*known, SqliteStore::SCHEMA_VERSION);
            assert_eq!(path, &db);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&newer.to_string()), "{message}");
    assert!(message.contains("upgrade cairn"), "{message}");

    assert_eq!(std::fs::read(&db).unwrap(), bytes_before);
    assert!(!tmp.path().join("cairn.db-wal").exists());
    let conn = raw(tmp.path());
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete");
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let tmp = TempDir::new().unwrap();
    let junk = b"this is not an SQLite database, just some text of sufficient length..".repeat(20);
    std::fs::write(tmp.path().join("cairn.db"), &junk).unwrap();
    let err = SqliteStore::open(tmp.path()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(std::fs::read(tmp.path().join("cairn.db")).unwrap(), junk);
}

/// A status, kind or stream name the code doesn't know reads back as `Corrupt`.
#[test]
fn unknown_names_read_back_as_corrupt() {
    let tmp = TempDir::new().unwrap();
    let store = SqliteStore::open(tmp.path()).unwrap();
    populate(&store);
    let runs = store.runs(&RunFilter::default()).unwrap();
    let (run, other) = (runs[1].id, runs[0].id);
    let stage = store.stages(run).unwrap()[0].id;

    let conn = raw(tmp.path());
    conn.execute("UPDATE runs SET status = 'paused' WHERE id = ?1", [run.0])
        .unwrap();
    conn.execute(
        "UPDATE stages SET kind = 'teleport' WHERE run_id = ?1",
        [other.0],
    )
    .unwrap();
    conn.execute(
        "UPDATE log_lines SET stream = 'stdin' WHERE stage_id = ?1 AND seq = 0",
        [stage.0],
    )
    .unwrap();

    let corrupt = |result: Result<_, StoreError>, what: &str, value: &str| match result {
        Err(StoreError::Corrupt { what: w, value: v }) => {
            assert_eq!((w, v.as_str()), (what, value));
        }
        other => panic!("expected corrupt {what}, got {:?}", other.map(|_: ()| ())),
    };
    corrupt(store.run(run).map(drop), "run status", "paused");
    corrupt(
        store.runs(&RunFilter::default()).map(drop),
        "run status",
        "paused",
    );
    corrupt(store.stages(other).map(drop), "stage kind", "teleport");
    corrupt(store.logs(stage, None, 10).map(drop), "log stream", "stdin");
    corrupt(store.start_stage(stage, 1), "run status", "paused");
    corrupt(store.append_logs(stage, &[]), "run status", "paused");
    conn.execute("UPDATE runs SET trigger = 'cron' WHERE id = ?1", [other.0])
        .unwrap();
    corrupt(store.run(other).map(drop), "run trigger", "cron");
    // What is intact still reads.
    assert_eq!(store.logs(stage, Some(0), 10).unwrap().len(), 0);
    assert_eq!(store.log_stats(stage).unwrap().lines, 1);
}

// ---- bulk ----------------------------------------------------------------------------

/// 100 000 lines in one append is one transaction (one fsync), not 100 000.
#[test]
fn a_hundred_thousand_lines_append_quickly() {
    let tmp = TempDir::new().unwrap();
    let store = SqliteStore::open(tmp.path()).unwrap();
    store.upsert_workload("app", "repo", 1).unwrap();
    let (run, stages) = store.create_run(&new_run(1, &["build"])).unwrap();
    store.start_run(run.id, "me", 2).unwrap();
    store.start_stage(stages[0].id, 3).unwrap();
    let stage = stages[0].id;

    const N: u64 = 100_000;
    let text = b"   Compiling some-crate v1.2.3 (/build/some-crate) \xe2\x9c\x93 \x00\xff";
    let lines: Vec<LogLine> = (0..N).map(|seq| line(seq, text.to_vec())).collect();
    let started = Instant::now();
    store.append_logs(stage, &lines).unwrap();
    let took = started.elapsed();
    eprintln!(
        "appended {N} lines in {took:?} ({:.0} lines/s)",
        N as f64 / took.as_secs_f64()
    );
    // About 0.15-0.2 s (~600k lines/s) on the 2-core dev machine in a debug build; a line-per-transaction
    // store with synchronous=FULL would need 100 000 fsyncs (~13 s at 130 µs each).
    assert!(took < Duration::from_secs(10), "took {took:?}");

    assert_eq!(
        store.log_stats(stage).unwrap(),
        LogStats {
            lines: N,
            bytes: N * text.len() as u64
        }
    );
    let tail = store.log_tail(stage, 2).unwrap();
    assert_eq!(tail, lines[(N - 2) as usize..]);
    let page = store.logs(stage, Some(49_999), 3).unwrap();
    assert_eq!(page, lines[50_000..50_003]);
}

/// Two connections racing for the bootstrap on one database: exactly one first
/// identity, with exactly its binding.
#[test]
fn only_one_bootstrap_wins_a_race() {
    let tmp = TempDir::new().unwrap();
    SqliteStore::open(tmp.path()).unwrap();
    let contenders = 4;
    let barrier = Arc::new(Barrier::new(contenders));
    let racers: Vec<_> = (0..contenders)
        .map(|i| {
            let dir = tmp.path().to_owned();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let store = SqliteStore::open(&dir).unwrap();
                let name = format!("admin{i}");
                let identity = cairn_model::IdentityRecord {
                    name: name.clone(),
                    kind: cairn_model::IdentityKind::User,
                    token_sha256: format!("{i:064x}"),
                    created_at_ms: 1,
                    revoked_at_ms: None,
                    expires_at_ms: None,
                };
                let binding = cairn_model::RoleBinding {
                    identity: name,
                    role: "platform-admin".to_owned(),
                    workload: None,
                    environment: None,
                };
                barrier.wait();
                store.add_first_identity(&identity, &binding).unwrap()
            })
        })
        .collect();
    let won: Vec<bool> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let store = SqliteStore::open(tmp.path()).unwrap();
    let identities = store.identities().unwrap();
    assert_eq!(identities.len(), 1);
    let bindings = store.bindings().unwrap();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].identity, identities[0].name);
}

/// Workers in several processes claiming from one queue: every queued run is
/// taken exactly once, and a CLI run by none.
#[test]
fn concurrent_claims_take_each_run_once() {
    let tmp = TempDir::new().unwrap();
    let store = SqliteStore::open(tmp.path()).unwrap();
    store.upsert_workload("app", "/repo", 1).unwrap();
    let runs = 40;
    for i in 0..runs {
        let trigger = cairn_model::Trigger::Api {
            actor: format!("user{i}"),
        };
        store
            .create_run(&NewRun {
                trigger,
                ..new_run(i, &["a"])
            })
            .unwrap();
    }
    let (cli, _) = store.create_run(&new_run(0, &["a"])).unwrap();
    let workers = 4;
    let barrier = Arc::new(Barrier::new(workers));
    let claimers: Vec<_> = (0..workers)
        .map(|w| {
            let dir = tmp.path().to_owned();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let store = SqliteStore::open(&dir).unwrap();
                barrier.wait();
                let mut claimed = Vec::new();
                while let Some(run) = store.claim_queued_run(&format!("worker{w}"), 100).unwrap() {
                    assert_eq!(run.status, RunStatus::Running);
                    claimed.push(run.id);
                }
                claimed
            })
        })
        .collect();
    let mut claimed: Vec<_> = claimers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    claimed.sort();
    let before = claimed.len();
    claimed.dedup();
    assert_eq!(before, claimed.len(), "a run was claimed twice");
    assert_eq!(claimed.len(), usize::try_from(runs).unwrap());
    assert!(!claimed.contains(&cli.id));
    assert_eq!(store.queued_count().unwrap(), 0);
    assert_eq!(
        store.run(cli.id).unwrap().unwrap().status,
        RunStatus::Queued
    );
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

fn free_bytes(dir: &Path) -> u64 {
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

/// A really full file system: a write is refused as `DiskFull` naming the
/// directory (not SQLite's "disk I/O error"), the failed transaction's WAL
/// frames are given back at once, reads go on, and once space is freed the
/// same store (a server's long-lived one) writes again. A store opened while
/// the disk is full opens read-only: reads work, writes are `DiskFull`.
#[test]
fn a_full_disk_is_named_the_wal_gives_its_space_back_and_reads_go_on() {
    use std::io::Write;
    let tmp = TempDir::new().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success());
    let _mounted = Tmpfs(mnt.clone());
    let data = mnt.join("data");
    let store = SqliteStore::open(&data).unwrap();
    store.upsert_workload("app", "r", 1).unwrap();

    let filler = mnt.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        // Leave room for a few hundred KiB of WAL, then fill the rest with the write.
        let room = free_bytes(&mnt).saturating_sub(400 << 10);
        f.write_all(&vec![0u8; usize::try_from(room).unwrap()])
            .unwrap();
        f.sync_all().unwrap();
    }
    let big: Vec<cairn_store::NewAdvisory> = (0..200)
        .map(|i| cairn_store::NewAdvisory {
            id: format!("A-{i}"),
            modified: "2024".into(),
            withdrawn: false,
            packages: vec![("crates.io".into(), format!("p{i}"))],
            json: vec![b'x'; 20_000],
            match_form: None,
            compiled: Vec::new(),
        })
        .collect();
    let err = store.put_advisories(&big).unwrap_err();
    assert!(err.is_disk_full(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("disk full at {}", data.display())),
        "{text}"
    );
    assert_eq!(store.workloads().unwrap().len(), 1, "reads go on");
    let wal_full = std::fs::metadata(data.join("cairn.db-wal")).map_or(0, |m| m.len());
    // Some space back (the filler shrinks): the next write that succeeds gives
    // the failed transaction's WAL frames back.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(0)
        .unwrap();
    store.upsert_workload("b", "r", 2).unwrap();
    let wal = std::fs::metadata(data.join("cairn.db-wal")).map_or(0, |m| m.len());
    assert!(wal < 64 << 10, "the WAL keeps {wal} bytes (had {wal_full})");
    println!("WAL after the failed write: {wal_full} bytes; after space is back: {wal}");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&filler)
            .unwrap();
        let room = free_bytes(&mnt);
        f.write_all(&vec![0u8; usize::try_from(room).unwrap_or(0)])
            .ok();
    }

    // Completely full: a store opened now is read-only.
    drop(store);
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&filler)
            .unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
        while f.write_all(&[0u8]).is_ok() {}
    }
    let reader = SqliteStore::open(&data).unwrap();
    assert_eq!(reader.read_only_because_full(), Some(data.as_path()));
    assert_eq!(reader.workloads().unwrap().len(), 2);
    let err = reader.upsert_workload("c", "r", 3).unwrap_err();
    assert!(err.is_disk_full(), "{err:?}");
    drop(reader);

    // Space back: the store opens writable and writes (a batch that fits).
    std::fs::remove_file(&filler).unwrap();
    let store = SqliteStore::open(&data).unwrap();
    assert_eq!(store.read_only_because_full(), None);
    assert_eq!(store.put_advisories(&big[..20]).unwrap().len(), 20);
}
