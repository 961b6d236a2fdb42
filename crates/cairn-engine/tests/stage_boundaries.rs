//! A run's stages commit once per stage boundary (issue 19): the ended stage's
//! last log lines, its end and the evidence signed about it, with the next
//! stage's start, in one store transaction; and nothing of a stage is told to
//! the run's observer (the CLI's output, a follower) before the transaction
//! that records it committed. Real git, real bubblewrap, a real SQLite file.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use cairn_engine::{DataDir, Engine, RunObserver, load_workload};
use cairn_model::{LogLine, RunStatus, StageKind, StageRecord, StageStatus};
use cairn_store::prelude::*;
use cairn_store::{SqliteStore, Store};

/// Checks the store at each moment the observer is told something.
struct Witness {
    store: Arc<dyn Store>,
    /// Lines the observer saw, per stage id.
    seen: Vec<(i64, usize)>,
    started: Vec<String>,
    finished: Vec<(String, StageStatus)>,
}

impl Witness {
    fn stored(&self, stage: &StageRecord) -> StageRecord {
        self.store
            .stages(stage.run)
            .unwrap()
            .into_iter()
            .find(|s| s.id == stage.id)
            .unwrap()
    }
}

impl RunObserver for Witness {
    fn stage_started(&mut self, stage: &StageRecord) {
        // Told only once the boundary that started it committed.
        let stored = self.stored(stage);
        assert_eq!(stored.status, StageStatus::Running, "{}", stage.name);
        assert!(stored.started_at_ms.is_some(), "{}", stage.name);
        self.started.push(stage.name.clone());
        self.seen.push((stage.id.0, 0));
    }

    fn log_line(&mut self, stage: &StageRecord, _line: &LogLine) {
        let seen = self.seen.iter_mut().find(|(id, _)| *id == stage.id.0);
        seen.unwrap().1 += 1;
    }

    fn stage_finished(&mut self, stage: &StageRecord) {
        // Told only once the boundary that ended it committed: its outcome,
        // every line of its log, and the evidence signed about it are stored.
        let stored = self.stored(stage);
        assert_eq!(stored.status, stage.status, "{}", stage.name);
        assert_eq!(stored.exit_code, stage.exit_code, "{}", stage.name);
        assert!(stored.finished_at_ms.is_some(), "{}", stage.name);
        let seen = self
            .seen
            .iter()
            .find(|(id, _)| *id == stage.id.0)
            .unwrap()
            .1;
        let lines = self.store.log_stats(stage.id).unwrap().lines;
        assert_eq!(lines, seen as u64, "{}: stored lines", stage.name);
        let evidence = self.store.evidence_for_run(stage.run).unwrap();
        let about = evidence
            .iter()
            .filter(|e| e.stage == Some(stage.id))
            .count();
        let certified = matches!(stage.kind, StageKind::UnitTest | StageKind::Build)
            && stage.status == StageStatus::Passed;
        assert_eq!(about, usize::from(certified), "{}: evidence", stage.name);
        self.finished.push((stage.name.clone(), stage.status));
    }
}

const CHAIN: &str = r#"name = "boundaries"
[[stage]]
name = "source"
kind = "source"
[[stage]]
name = "unit-tests"
kind = "unit-test"
[[stage]]
name = "build"
kind = "build"
[[stage]]
name = "noop"
kind = "command"
command = "true"
[[stage]]
name = "fails"
kind = "command"
command = "echo going down; exit 3"
[[stage]]
name = "never"
kind = "command"
command = "true"
"#;

const WORKLOAD: &str = r#"[workload]
name = "app"
chain = "boundaries"
[build]
command = "mkdir -p out && echo built > out/app"
output = "out/app"
[test]
unit = "echo test one ... ok; echo test two ... ok"
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A committed repository whose workload ([`WORKLOAD`]) runs the platform's
/// chain `chain` (its text `chain_text`), and a fresh store for an engine.
struct App {
    /// Removed with the app.
    _tmp: tempfile::TempDir,
    repo: std::path::PathBuf,
    platform: std::path::PathBuf,
    data: DataDir,
    store: Arc<SqliteStore>,
}

impl App {
    fn new(chain: &str, chain_text: &str) -> App {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("app");
        let platform = tmp.path().join("platform");
        write(&platform.join(format!("chains/{chain}.toml")), chain_text);
        write(
            &repo.join("cairn.toml"),
            &WORKLOAD.replace("chain = \"boundaries\"", &format!("chain = \"{chain}\"")),
        );
        cairn_testkit::git(&repo, &["init", "-q"]);
        cairn_testkit::git(&repo, &["add", "cairn.toml"]);
        cairn_testkit::git(&repo, &["commit", "-q", "-m", "app"]);
        let data = DataDir::at(tmp.path().join("data"));
        let store = Arc::new(SqliteStore::open(data.root()).unwrap());
        App {
            _tmp: tmp,
            repo,
            platform,
            data,
            store,
        }
    }

    fn engine(&self) -> Engine {
        Engine::new(
            self.store.clone(),
            self.data.clone(),
            Some(self.platform.clone()),
        )
    }
}

#[test]
fn each_stage_boundary_is_one_commit_and_nothing_is_told_before_it() {
    let app = App::new("boundaries", CHAIN);
    let (repo, platform, store) = (&app.repo, &app.platform, &app.store);
    let engine = app.engine();
    for attempt in 0..2 {
        let mut witness = Witness {
            store: store.clone(),
            seen: Vec::new(),
            started: Vec::new(),
            finished: Vec::new(),
        };
        let before = store.commits();
        let loaded = load_workload(repo, "HEAD", Some(platform)).unwrap();
        let run = engine
            .run_loaded(&loaded, Some("HEAD"), false, &mut witness)
            .unwrap();
        let commits = store.commits() - before;
        println!(
            "run {} ({}): {commits} store commits; started {:?}; finished {:?}",
            run.id, run.status, witness.started, witness.finished
        );
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(
            run.reason.as_deref(),
            Some("stage `fails` failed: exit code 3")
        );
        assert_eq!(
            witness.finished,
            [
                ("source".to_owned(), StageStatus::Passed),
                ("unit-tests".to_owned(), StageStatus::Passed),
                ("build".to_owned(), StageStatus::Passed),
                ("noop".to_owned(), StageStatus::Passed),
                ("fails".to_owned(), StageStatus::Failed),
            ]
        );
        let stages = store.stages(run.id).unwrap();
        assert_eq!(stages[5].status, StageStatus::Skipped);
        let tail = store.log_tail(stages[4].id, 2).unwrap();
        assert_eq!(tail[0].text, b"going down");
        // The run's creation (with the workload, its start and the first
        // stage's start), one per boundary between two of the five stages
        // that ran (each stage's end with the next one's start), and the
        // failed stage's end with the run's end. The unit test's result and
        // the build's provenance are signed and logged, and stored in those
        // boundaries' transactions. A stage that outlives the log flusher's
        // 100 ms tick (a loaded host) writes its pending lines early, for
        // followers: at most a few more, never the four per stage it used to
        // be.
        assert!(
            (1 + 4 + 1..=1 + 4 + 1 + 5).contains(&commits),
            "attempt {attempt}: {commits} commits"
        );
        let evidence = store.evidence_for_run(run.id).unwrap();
        assert_eq!(evidence.len(), 2, "{evidence:?}");
    }
}

/// The key ids (`publicKey.hint`) of a run's stored bundles.
fn signed_by(store: &SqliteStore, run: cairn_model::RunId) -> Vec<String> {
    store
        .evidence_for_run(run)
        .unwrap()
        .iter()
        .map(|e| {
            let bundle: serde_json::Value = serde_json::from_slice(&e.bundle).unwrap();
            bundle["verificationMaterial"]["publicKey"]["hint"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// One engine reads cairn's signing key (and opens the audit log) for its
/// first run only, not per run (issue 19), yet the moment the key changes on
/// disk the next run reads it again: a rotated key signs the next run's
/// evidence, and a key file made readable by others is refused, as a fresh
/// process would.
#[test]
fn an_engine_reads_its_signing_key_once_and_again_when_it_changes() {
    use std::os::unix::fs::PermissionsExt;
    let app = App::new("boundaries", CHAIN);
    let (repo, platform, store, data) = (&app.repo, &app.platform, &app.store, &app.data);
    let engine = app.engine();
    let run = || {
        let loaded = load_workload(repo, "HEAD", Some(platform)).unwrap();
        engine.run_loaded(&loaded, Some("HEAD"), false, &mut ())
    };
    let keys = cairn_engine::keys::KeyStore::new(data);

    let first = run().unwrap();
    let second = run().unwrap();
    let key = keys.require().unwrap().key_id().to_string();
    let (a, b) = (signed_by(store, first.id), signed_by(store, second.id));
    println!("runs 1 and 2 signed by {a:?} and {b:?}");
    assert_eq!(a, [key.clone(), key.clone()]);
    assert_eq!(b, a);

    // `cairn key rotate`, by another process sharing the data directory.
    let audit =
        cairn_engine::audit::AuditLog::open_waiting(data, cairn_engine::audit::LOCK_WAIT).unwrap();
    let rotated = keys.rotate(None, &audit).unwrap().key.key_id().to_string();
    drop(audit);
    assert_ne!(rotated, key);
    let third = run().unwrap();
    let c = signed_by(store, third.id);
    println!("after the rotation, run 3 signed by {c:?}");
    assert_eq!(c, [rotated.clone(), rotated]);

    // The key file made readable by others: refused, as on a first read.
    let path = keys.signing_key_path();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = run().unwrap_err();
    println!("with the key file 0644: {err}");
    assert!(
        matches!(err, cairn_engine::EngineError::KeyExposed { .. }),
        "{err:?}"
    );
}

/// A worker's claim starts the claimed run's first stage in the same
/// transaction (issue 19); when the run's workload can no longer be loaded,
/// that stage fails with the reason and the run with it, in one transaction:
/// nothing is left running.
#[test]
fn a_claimed_run_whose_workload_is_gone_fails_its_first_stage_with_the_reason() {
    use cairn_model::{NewRun, NewStage, Trigger};
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::at(tmp.path().join("data"));
    let store = Arc::new(SqliteStore::open(data.root()).unwrap());
    let gone = tmp.path().join("gone");
    store
        .upsert_workload("app", gone.to_str().unwrap(), 1)
        .unwrap();
    let stage = |name: &str, kind| NewStage {
        name: name.to_owned(),
        kind,
        command: None,
    };
    let (queued, _) = store
        .create_run(&NewRun {
            workload: "app".to_owned(),
            commit: "0".repeat(40),
            git_ref: None,
            created_at_ms: 1,
            stages: vec![
                stage("source", StageKind::Source),
                stage("build", StageKind::Build),
            ],
            trigger: Trigger::Api {
                actor: "alice".to_owned(),
            },
        })
        .unwrap();
    let engine = Engine::new(store.clone(), data, None);
    let before = store.commits();
    let run = engine.execute_next(&mut ()).unwrap().unwrap();
    let commits = store.commits() - before;
    let stages = store.stages(run.id).unwrap();
    println!(
        "run {} {} ({commits} commits): {:?}; stages {:?}",
        run.id,
        run.status,
        run.reason,
        stages
            .iter()
            .map(|s| (s.name.as_str(), s.status, s.reason.as_deref()))
            .collect::<Vec<_>>()
    );
    assert_eq!(run.id, queued.id);
    assert_eq!(run.status, RunStatus::Failed);
    let reason = run.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("cannot load the workload at its commit:"),
        "{reason}"
    );
    assert_eq!(stages[0].status, StageStatus::Failed);
    assert_eq!(stages[0].reason.as_deref(), Some(reason));
    assert!(stages[0].started_at_ms.is_some() && stages[0].finished_at_ms.is_some());
    assert_eq!(stages[1].status, StageStatus::Skipped);
    // The claim (with the first stage's start) and the end.
    assert_eq!(commits, 2);
    assert!(engine.execute_next(&mut ()).unwrap().is_none());
}

/// Tells a watcher thread each stage as it starts.
struct Starts(std::sync::mpsc::Sender<StageRecord>);

impl RunObserver for Starts {
    fn stage_started(&mut self, stage: &StageRecord) {
        let _ = self.0.send(stage.clone());
    }
}

/// A line a stage prints before a long silence reaches the store (and so a
/// follower) while the stage still runs, in every stage of a run: the run's
/// one log flusher serves each stage's log in turn.
#[test]
fn a_line_before_a_silence_is_stored_while_its_stage_runs_in_every_stage() {
    const QUIET: &str = r#"name = "quiet"
[[stage]]
name = "source"
kind = "source"
[[stage]]
name = "one"
kind = "command"
command = "echo early-one; sleep 1.5"
[[stage]]
name = "two"
kind = "command"
command = "echo early-two; sleep 1.5"
[[stage]]
name = "three"
kind = "command"
command = "echo early-three; sleep 1.5"
"#;
    let app = App::new("quiet", QUIET);
    let (repo, platform, store) = (&app.repo, &app.platform, &app.store);
    let engine = app.engine();

    let (starts, started) = std::sync::mpsc::channel::<StageRecord>();
    let watched = store.clone();
    // For each stage: whether its first printed line was seen stored while
    // the store still said the stage was running.
    let watcher = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for stage in started {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let wanted = format!("early-{}", stage.name);
            let stored_while_running = loop {
                let stored = watched
                    .log_tail(stage.id, 50)
                    .unwrap()
                    .iter()
                    .any(|l| l.text == wanted.as_bytes());
                let running = watched
                    .stages(stage.run)
                    .unwrap()
                    .iter()
                    .any(|s| s.id == stage.id && s.status == StageStatus::Running);
                if stored || !running || std::time::Instant::now() > deadline {
                    break stored && running;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            seen.push((stage.name.clone(), stored_while_running));
        }
        seen
    });
    let loaded = load_workload(repo, "HEAD", Some(platform)).unwrap();
    let run = engine
        .run_loaded(&loaded, Some("HEAD"), false, &mut Starts(starts))
        .unwrap();
    let seen = watcher.join().unwrap();
    println!("run {} ({}): {seen:?}", run.id, run.status);
    assert_eq!(run.status, RunStatus::Succeeded);
    let commands: Vec<_> = seen.iter().filter(|(name, _)| name != "source").collect();
    assert_eq!(
        commands,
        [
            &("one".to_owned(), true),
            &("two".to_owned(), true),
            &("three".to_owned(), true)
        ]
    );
}
