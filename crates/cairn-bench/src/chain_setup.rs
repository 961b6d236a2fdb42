//! The end-to-end chain benchmark behind `cairn bench chain`: a throwaway git repo,
//! a chain of no-op stages, a fresh store, and the wall time of each whole run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_model::RunStatus;

use anyhow::{Context, anyhow};
use cairn_engine::{DataDir, Engine, load_workload};

use crate::Failure;

/// What [`chain`] measured.
#[derive(Debug, Clone)]
pub struct ChainRuns {
    /// Each run's wall time.
    pub times: Vec<Duration>,
    /// The store's write transactions (each a WAL fsync) per run, the fewest
    /// and the most of any run: the run's creation (with its workload, its
    /// start and its first stage's start), one per boundary between two
    /// stages, and the last stage's end with the run's end; a few more when a
    /// stage outlived the log flusher's 100 ms tick (its pending lines written
    /// early, for followers).
    pub commits_per_run: (u64, u64),
}

/// Runs a chain of `source` + `noop_stages` stages that each run `true` in the
/// sandbox, `repeat` times; returns each run's wall time and the store commits
/// a run took. Uses `scratch` (an empty directory) for the repository, the
/// platform config and the store.
pub fn chain(scratch: &Path, noop_stages: usize, repeat: usize) -> Result<ChainRuns, Failure> {
    let (repo, platform) = noop_workload(scratch, noop_stages, "bench")?;
    let data = DataDir::at(scratch.join("data"));
    let store = Arc::new(cairn_store::SqliteStore::open(data.root())?);
    let engine = Engine::new(store.clone(), data, Some(platform.clone()));
    let mut times = Vec::with_capacity(repeat);
    let mut commits_per_run = (u64::MAX, 0);
    for _ in 0..repeat {
        let commits = store.commits();
        let start = Instant::now();
        let loaded = load_workload(&repo, "HEAD", Some(&platform))?;
        let run = engine.run_loaded(&loaded, Some("HEAD"), false, &mut ())?;
        times.push(start.elapsed());
        let commits = store.commits() - commits;
        commits_per_run = (
            commits_per_run.0.min(commits),
            commits_per_run.1.max(commits),
        );
        if run.status != RunStatus::Succeeded {
            return Err(anyhow!(
                "the benchmark chain run failed: {}",
                run.reason.as_deref().unwrap_or("the run did not succeed")
            )
            .into());
        }
    }
    Ok(ChainRuns {
        times,
        commits_per_run,
    })
}

/// The benchmarks' workload: a git repository at `scratch/app` named
/// `workload` on a chain `bench` (in the platform directory `scratch/platform`)
/// of `source` + `noop_stages` stages that each run `true`. Returns the
/// repository and the platform directory.
pub(crate) fn noop_workload(
    scratch: &Path,
    noop_stages: usize,
    workload: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let repo = scratch.join("app");
    let platform = scratch.join("platform");
    let chains = platform.join("chains");
    for dir in [&repo, &chains] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut chain =
        String::from("name = \"bench\"\n[[stage]]\nname = \"source\"\nkind = \"source\"\n");
    for i in 0..noop_stages {
        chain.push_str(&format!(
            "[[stage]]\nname = \"noop-{i}\"\nkind = \"command\"\ncommand = \"true\"\n"
        ));
    }
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write(&chains.join("bench.toml"), &chain)?;
    write(
        &repo.join("cairn.toml"),
        &format!(
            "[workload]\nname = \"{workload}\"\nchain = \"bench\"\n[build]\ncommand = \"true\"\n[test]\nunit = \"true\"\n"
        ),
    )?;
    for args in [
        &["init", "-q"][..],
        &["add", "cairn.toml"],
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@cairn.invalid",
            "commit",
            "-q",
            "-m",
            "bench",
        ],
    ] {
        let status = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .status()
            .context("cannot run git")?;
        if !status.success() {
            return Err(anyhow!("git failed setting up the benchmark repository"));
        }
    }
    Ok((repo, platform))
}
