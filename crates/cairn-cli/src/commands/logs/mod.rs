//! `cairn logs RUN [STAGE] [--follow]`: a run's logs from the store, optionally
//! following a run that another process is executing.

use std::process::ExitCode;
use std::time::Duration;

use cairn_model::{RunId, StageRecord, StageStatus};
use cairn_store::Store;

mod remote;

use super::{data_dir, open_store, resolve_run};
use crate::cli::{Cli, LogsArgs};
use crate::exit::Failure;
use crate::output::{duration_text, line_json, line_text, print_json};

const PAGE: usize = 1_000;
const POLL: Duration = Duration::from_millis(200);

pub(super) fn logs(cli: &Cli, args: &LogsArgs) -> Result<ExitCode, Failure> {
    if let Some(server) = &args.server {
        return remote::follow(cli, args, server);
    }
    let store = open_store(&data_dir(cli)?)?;
    let id = resolve_run(&*store, &args.run)?;
    let stages = store.stages(id)?;
    let wanted: Vec<usize> = match &args.stage {
        None => (0..stages.len()).collect(),
        Some(name) => match stages.iter().position(|s| &s.name == name) {
            Some(i) => vec![i],
            None => {
                let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
                return Err(Failure::user(anyhow::anyhow!(
                    "run {id} has no stage `{name}`; its stages: {}",
                    names.join(", ")
                )));
            }
        },
    };
    let single = args.stage.is_some();
    for i in wanted {
        print_stage(&*store, id, i, single, args.follow, cli.json)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one stage's lines; when following, waits for the stage to end.
fn print_stage(
    store: &dyn Store,
    run: RunId,
    index: usize,
    single: bool,
    follow: bool,
    json: bool,
) -> Result<(), Failure> {
    let mut after: Option<u64> = None;
    let mut header_done = false;
    loop {
        if crate::output::stdout_closed() {
            // The reader went away (`cairn logs N --follow | head`): nobody to follow for.
            return Ok(());
        }
        let stage = current_stage(store, run, index)?;
        if follow && stage.status == StageStatus::Pending {
            if store.run(run)?.is_some_and(|r| r.status.is_final()) {
                return Ok(());
            }
            std::thread::sleep(POLL);
            continue;
        }
        if !header_done && !single && !json {
            println!("── {} ({}) ──", stage.name, stage.kind);
            header_done = true;
        }
        let page = store.logs(stage.id, after, PAGE)?;
        for line in &page {
            if json {
                print_json(&line_json(&stage.name, line));
            } else {
                println!("{}", line_text(line));
            }
        }
        if let Some(last) = page.last() {
            after = Some(last.seq);
        }
        let running = stage.status == StageStatus::Running;
        if page.len() == PAGE {
            continue;
        }
        if !follow || !running {
            // A last read after the stage ended catches lines written just before.
            if follow {
                let rest = store.logs(stage.id, after, usize::MAX >> 1)?;
                for line in &rest {
                    if json {
                        print_json(&line_json(&stage.name, line));
                    } else {
                        println!("{}", line_text(line));
                    }
                }
            }
            if !single && !json && stage.status != StageStatus::Pending {
                let reason = stage
                    .reason
                    .as_deref()
                    .map(|r| format!(" · {r}"))
                    .unwrap_or_default();
                println!(
                    "── {} {} in {}{reason}",
                    stage.name,
                    stage.status,
                    duration_text(stage.started_at_ms, stage.finished_at_ms)
                );
            }
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

fn current_stage(store: &dyn Store, run: RunId, index: usize) -> Result<StageRecord, Failure> {
    store
        .stages(run)?
        .into_iter()
        .nth(index)
        .ok_or_else(|| Failure::from(anyhow::anyhow!("stage {index} of run {run} disappeared")))
}
