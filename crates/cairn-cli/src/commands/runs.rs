//! `cairn runs`: list runs, newest first.

use std::process::ExitCode;

use cairn_model::RunStatus;
use cairn_model::time::rfc3339_utc;
use cairn_store::{RunFilter, TriggerKind};

use super::{data_dir, open_store};
use crate::cli::{Cli, RunsArgs};
use crate::exit::Failure;
use crate::output::{duration_text, print_json, run_json, short_commit};

pub(super) fn runs(cli: &Cli, args: &RunsArgs) -> Result<ExitCode, Failure> {
    let status = match &args.status {
        None => None,
        Some(s) => Some(s.parse::<RunStatus>().map_err(|e| {
            let allowed: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            Failure::user(anyhow::anyhow!("{e}; one of: {}", allowed.join(", ")))
        })?),
    };
    let commit_prefix = args
        .commit
        .as_deref()
        .map(|c| {
            cairn_store::commit_prefix(c)
                .map_err(|rule| Failure::user(anyhow::anyhow!("--commit: {rule}")))
        })
        .transpose()?;
    let trigger = args
        .trigger
        .as_deref()
        .map(|t| {
            TriggerKind::parse(t).ok_or_else(|| {
                let allowed: Vec<&str> = TriggerKind::ALL.iter().map(|k| k.as_str()).collect();
                Failure::user(anyhow::anyhow!(
                    "--trigger {t:?} is not a trigger; one of: {}",
                    allowed.join(", ")
                ))
            })
        })
        .transpose()?;
    let store = open_store(&data_dir(cli)?)?;
    let runs = store.runs(&RunFilter {
        workload: args.workload.clone(),
        status,
        commit_prefix,
        trigger,
        limit: args.limit.min(10_000),
        after: None,
    })?;
    if cli.json {
        print_json(&runs.iter().map(|r| run_json(r, None)).collect());
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs yet: `cairn run` in an app with a cairn.toml starts one");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>5}  {:<20} {:<12} {:<11} {:<20} {:>8}  REASON",
        "RUN", "WORKLOAD", "COMMIT", "STATUS", "STARTED", "TOOK"
    );
    for r in &runs {
        println!(
            "{:>5}  {:<20} {:<12} {:<11} {:<20} {:>8}  {}",
            r.id,
            r.workload,
            short_commit(&r.commit),
            r.status,
            rfc3339_utc(r.started_at_ms.unwrap_or(r.created_at_ms)),
            duration_text(r.started_at_ms, r.finished_at_ms),
            r.reason.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
