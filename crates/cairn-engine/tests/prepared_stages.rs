//! The chain runner starts the next stage's sandbox while the current stage
//! runs and holds it before its command (`cairn_sandbox::prepare`): released
//! at its turn it runs as a direct one; when a stage fails, the held one is
//! discarded, its command never run, no process and no cgroup left. Real git,
//! real bubblewrap (as root: cgroups), a real SQLite file.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_engine::{DataDir, Engine, load_workload};
use cairn_model::RunStatus;
use cairn_store::SqliteStore;
use cairn_store::prelude::*;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const WORKLOAD: &str = r#"[workload]
name = "app"
chain = "ahead"
[build]
command = "true"
[test]
unit = "true"
"#;

/// This process's children in a cairn run cgroup (the sandboxes' reapers): pid
/// and cgroup name.
fn sandboxes() -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ppid: Option<u32> = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid != Some(me) {
            continue;
        }
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if let Some(name) = cgroup
            .lines()
            .filter_map(|l| l.rsplit_once("/cairn/").map(|(_, n)| n))
            .find(|n| n.starts_with("run-"))
        {
            found.push((pid, name.to_owned()));
        }
    }
    found
}

/// Runs `chain` on a fresh app with its workspace kept; returns the run, its
/// stages' logs, the workspace, the most sandboxes seen at once and every
/// sandbox's cgroup name.
fn run_chain(
    chain: &str,
) -> (
    cairn_model::RunRecord,
    Vec<String>,
    std::path::PathBuf,
    usize,
    BTreeSet<String>,
    tempfile::TempDir,
) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("app");
    let platform = tmp.path().join("platform");
    write(&platform.join("chains/ahead.toml"), chain);
    write(&repo.join("cairn.toml"), WORKLOAD);
    cairn_testkit::git(&repo, &["init", "-q"]);
    cairn_testkit::git(&repo, &["add", "cairn.toml"]);
    cairn_testkit::git(&repo, &["commit", "-q", "-m", "app"]);
    let data = DataDir::at(tmp.path().join("data"));
    let store = Arc::new(SqliteStore::open(data.root()).unwrap());
    let engine = Engine::new(store.clone(), data.clone(), Some(platform.clone()));

    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(Mutex::new(BTreeSet::new()));
    let sampler = {
        let (stop, most, names) = (stop.clone(), most.clone(), names.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let now = sandboxes();
                most.fetch_max(now.len(), Ordering::Relaxed);
                names
                    .lock()
                    .unwrap()
                    .extend(now.into_iter().map(|(_, n)| n));
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let loaded = load_workload(&repo, "HEAD", Some(&platform)).unwrap();
    let run = engine
        .run_loaded(&loaded, Some("HEAD"), true, &mut ())
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let logs = store
        .stages(run.id)
        .unwrap()
        .iter()
        .map(|s| {
            store
                .log_tail(s.id, 100)
                .unwrap()
                .iter()
                .map(|l| String::from_utf8_lossy(&l.text).into_owned())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let workspace = data.workspaces().join(run.id.to_string());
    let most = most.load(Ordering::Relaxed);
    let names = names.lock().unwrap().clone();
    (run, logs, workspace, most, names, tmp)
}

/// No process of ours in a cairn cgroup, and none of the sandboxes' cgroups left.
fn nothing_left(names: &BTreeSet<String>) {
    assert!(sandboxes().is_empty(), "{:?}", sandboxes());
    let left: Vec<String> = cairn_sandbox::list_cgroups()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

#[test]
fn the_next_stage_starts_ahead_and_runs_as_a_direct_one() {
    let chain = r#"name = "ahead"
[[stage]]
name = "source"
kind = "source"
[[stage]]
name = "first"
kind = "command"
command = "sleep 0.5; echo first"
[[stage]]
name = "second"
kind = "command"
command = "echo second > second.txt; echo \"$CAIRN_STAGE\"; ls /proc/self/fd | tr '\\n' ' '; exit 0"
[[stage]]
name = "unit-tests"
kind = "unit-test"
"#;
    let (run, logs, workspace, most, names, _tmp) = run_chain(chain);
    println!(
        "run {}: {}; at most {most} sandboxes at once; logs:\n{}",
        run.id,
        run.status,
        logs.join("\n--\n")
    );
    assert_eq!(run.status, RunStatus::Succeeded);
    // While `first` ran, `second`'s sandbox was held beside it.
    assert!(most >= 2, "{most}");
    assert!(
        logs[2].contains("started ahead during the previous stage"),
        "{}",
        logs[2]
    );
    assert!(
        logs[3].contains("started ahead during the previous stage"),
        "{}",
        logs[3]
    );
    assert!(!logs[1].contains("started ahead"), "{}", logs[1]);
    // Its own environment and descriptors, as a direct step's.
    assert!(logs[2].contains("\nsecond\n0 1 2 3 \n"), "{}", logs[2]);
    assert_eq!(
        std::fs::read_to_string(workspace.join("second.txt")).unwrap(),
        "second\n"
    );
    nothing_left(&names);
}

#[test]
fn a_failed_stage_never_runs_the_next_one_held_ahead() {
    let chain = r#"name = "ahead"
[[stage]]
name = "source"
kind = "source"
[[stage]]
name = "ok"
kind = "command"
command = "true"
[[stage]]
name = "fails"
kind = "command"
command = "sleep 1; echo going down; exit 3"
[[stage]]
name = "never"
kind = "command"
command = "touch /workspace/never-ran"
"#;
    let (run, logs, workspace, most, names, _tmp) = run_chain(chain);
    println!(
        "run {}: {} ({:?}); at most {most} sandboxes at once, cgroups {names:?}",
        run.id, run.status, run.reason
    );
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.reason.as_deref(),
        Some("stage `fails` failed: exit code 3")
    );
    // `never`'s sandbox was held while `fails` ran (1 s: the sampler sees both;
    // `ok`, which ends at once, it may miss), then discarded.
    assert!(most >= 2, "{most}");
    assert!(names.len() >= 2, "{names:?}");
    assert!(!workspace.join("never-ran").exists(), "the held stage ran");
    assert!(logs[3].is_empty(), "{}", logs[3]);
    nothing_left(&names);
}
