//! `cairn bench workers`: runs per minute with 1, 2 and 3 `cairn worker`
//! processes on one PostgreSQL (issue 16): the same batch of runs of a chain of
//! no-op sandboxed stages is queued for each count, then the workers start, and
//! the time from their start to the last run's end is measured; the scaling ratio says how
//! much each added worker brings. A benchmark, not a timed test.

use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use cairn_engine::{DataDir, Engine};
use cairn_model::{RunId, Trigger};
use serde_json::json;

use crate::{Failure, Output, print_json};

/// Worker processes stopped when dropped.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `runs` runs with 1, 2 and 3 worker processes on the PostgreSQL
/// database at `database` (its runs stay there, under workload
/// `bench-workers`).
pub fn workers(
    out: &Output,
    database: &str,
    runs: usize,
    stages: usize,
) -> Result<ExitCode, Failure> {
    if !(database.starts_with("postgres://") || database.starts_with("postgresql://")) {
        return Err(Failure::user(anyhow!(
            "`cairn bench workers` needs a PostgreSQL database: --database postgres://…"
        )));
    }
    let runs = runs.clamp(1, 10_000);
    let stages = stages.clamp(1, 60);
    let exe = std::env::current_exe().context("cannot find the cairn binary")?;
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let (repo, platform) =
        crate::chain_setup::noop_workload(scratch.path(), stages, "bench-workers")?;
    let data = DataDir::at(scratch.path().join("data"));
    std::fs::create_dir_all(data.root()).context("cannot create the data directory")?;
    let store = cairn_store::open(database).context("cannot open the database")?;
    let engine = Engine::new(Arc::clone(&store), data.clone(), Some(platform.clone()));
    engine.register(&repo, None)?;
    let mut rows = Vec::new();
    for count in 1..=3usize {
        // The batch is queued first, so the clock measures the workers, not
        // the queueing; it starts as the workers start (their start-up counts).
        let mut ids: Vec<RunId> = Vec::with_capacity(runs);
        for _ in 0..runs {
            let run = engine.enqueue(
                &repo,
                "HEAD",
                Some("bench-workers"),
                Trigger::Api {
                    actor: "bench".to_owned(),
                },
            )?;
            ids.push(run.id);
        }
        let started = Instant::now();
        let workers = Workers(
            (0..count)
                .map(|_| {
                    Command::new(&exe)
                        .args(["worker", "--grace", "1"])
                        .env("CAIRN_HOME", data.root())
                        .env("CAIRN_PLATFORM_DIR", &platform)
                        .env("CAIRN_DATABASE_URL", database)
                        .env_remove("CAIRN_TOKEN")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .context("cannot start `cairn worker`")
                })
                .collect::<Result<_, _>>()?,
        );
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut failed = 0;
        for id in &ids {
            loop {
                let run = store
                    .run(*id)
                    .context("cannot read a run")?
                    .ok_or_else(|| anyhow!("run {id} vanished"))?;
                if run.status.is_final() {
                    if run.status != cairn_model::RunStatus::Succeeded {
                        failed += 1;
                    }
                    break;
                }
                if Instant::now() > deadline {
                    return Err(anyhow!("run {id} did not end within an hour").into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let took = started.elapsed();
        drop(workers);
        if failed > 0 {
            return Err(anyhow!("{failed} of {runs} benchmark runs did not succeed").into());
        }
        let per_minute = runs as f64 / took.as_secs_f64() * 60.0;
        if !out.json {
            println!(
                "{count} worker(s): {runs} runs in {:.1} s = {per_minute:.1} runs/minute",
                took.as_secs_f64()
            );
        }
        rows.push((count, took, per_minute));
    }
    let base = rows[0].2;
    if out.json {
        print_json(&json!({
            "runs": runs,
            "stages": stages + 1,
            "workers": rows.iter().map(|(n, took, rpm)| json!({
                "workers": n,
                "seconds": took.as_secs_f64(),
                "runs_per_minute": rpm,
                "scaling": rpm / base,
            })).collect::<Vec<_>>(),
        }));
    } else {
        println!(
            "scaling (runs/minute relative to 1 worker): {}",
            rows.iter()
                .map(|(n, _, rpm)| format!("{n}: {:.2}×", rpm / base))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    drop(engine);
    drop(store);
    Ok(ExitCode::SUCCESS)
}
