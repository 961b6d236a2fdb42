//! `cairn remediate [EXPOSURE|--all] [--plan]`: remediation by cairn of open
//! exposures (see `cairn_engine::remediation`): for a base-layer finding with a
//! fix, a base version without it, the image rebased onto it, the rebased
//! digest tested by the chain's test stages, then promoted along the path
//! (by cairn where org.toml's `[remediation] auto_promote` says so, else
//! waiting for a human). `--plan` prints the steps and does nothing. Without
//! an exposure or `--all`: the last remediation of each workload and how it
//! ended (why, when it failed).
//!
//! Exit codes: 0 remediated, planned or waiting for approval; 1 refused (another
//! remediation runs, nothing to remediate) or a step failed (said why); 2 cairn
//! failed.

use std::process::ExitCode;

use anyhow::anyhow;
use cairn_engine::remediation::{Ending, Fix, Remediator, Target};
use serde_json::{Value, json};

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Args)]
pub(crate) struct RemediateArgs {
    /// The exposure: its advisory (`DSA-…`, `CVE-…`), or `WORKLOAD:ADVISORY`.
    #[arg(conflicts_with = "all")]
    pub exposure: Option<String>,
    /// Every open exposure.
    #[arg(long)]
    pub all: bool,
    /// Print the steps; do nothing.
    #[arg(long)]
    pub plan: bool,
}

pub(super) fn remediate(cli: &Cli, args: &RemediateArgs) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let target = match (&args.exposure, args.all) {
        (Some(e), _) => Target::parse(e),
        (None, true) => Target::All,
        (None, false) => return show(cli, &data),
    };
    let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
    let store = open_store(&data)?;
    let actor = if args.plan {
        None
    } else {
        cairn_engine::access::cli_actor(&*store, cairn_policy::Action::Run, None)?
    };
    let remediator = Remediator {
        data: &data,
        store: store.clone(),
        org: &org,
        platform_dir: cli.platform_dir.as_deref(),
        actor: actor.clone(),
    };
    let plans = remediator.plan(&target)?;
    if plans.is_empty() {
        return Err(Failure::user(anyhow!(
            "no open exposure {}: nothing to remediate (`cairn exposures` lists them)",
            match &target {
                Target::All => "anywhere".to_owned(),
                Target::Advisory { advisory, .. } => format!("of {advisory}"),
            }
        )));
    }
    if args.plan {
        if cli.json {
            print_json(&json!(plans.iter().map(plan_json).collect::<Vec<_>>()));
        } else {
            for p in &plans {
                print_plan(p);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    // The one who asks runs the workload's chain again: `run` at each workload.
    if let Some(actor) = &actor {
        for p in &plans {
            cairn_engine::access::authorize(
                &*store,
                actor,
                cairn_policy::Action::Run,
                &cairn_policy::Scope {
                    workload: Some(p.workload.clone()),
                    environment: None,
                },
            )?;
        }
    }
    let mut failed = false;
    let mut out = Vec::new();
    for p in &plans {
        if !cli.json {
            print_plan(p);
        }
        let outcome = remediator.execute(p, &mut |line| eprintln!("cairn: {line}"))?;
        let (text, ending) = match &outcome.ending {
            Ending::Remediated {
                digest,
                time_to_remediate_ms,
            } => (
                format!(
                    "remediated: {} runs {digest}; time to remediate {:.1} s",
                    p.environment,
                    *time_to_remediate_ms as f64 / 1000.0
                ),
                json!({ "state": "remediated", "digest": digest, "time_to_remediate_ms": time_to_remediate_ms }),
            ),
            Ending::WaitingForApproval {
                digest,
                environment,
                command,
            } => (
                format!("waiting for approval to {environment}: {command}"),
                json!({ "state": "waiting-for-approval", "digest": digest, "environment": environment, "command": command }),
            ),
            Ending::WaitingForReview {
                commit,
                branch,
                digest,
                command,
            } => (
                format!("waiting for review of commit {commit} (branch {branch}): {command}"),
                json!({ "state": "waiting-for-review", "commit": commit, "branch": branch, "digest": digest, "command": command }),
            ),
            Ending::Failed { step, reason } => {
                failed = true;
                (
                    format!(
                        "FAILED at `{step}`: {reason}\nproduction is unchanged; the exposure stays open"
                    ),
                    json!({ "state": "failed", "step": step, "reason": reason }),
                )
            }
        };
        if cli.json {
            out.push(json!({ "id": outcome.id, "plan": plan_json(p), "ending": ending,
                "steps": outcome.steps.iter().map(|(s, d)| json!({"step": s, "detail": d})).collect::<Vec<_>>() }));
        } else {
            println!("{}: {text}", p.workload);
        }
    }
    if cli.json {
        print_json(&json!(out));
    }
    if failed {
        return Err(Failure::user(anyhow!(
            "a remediation failed (see above; `cairn remediate` shows the last of each workload)"
        )));
    }
    Ok(ExitCode::SUCCESS)
}

fn fix_name(fix: &Fix) -> String {
    match fix {
        Fix::Base { base, .. } => format!("base `{base}`"),
        Fix::Dependency => "dependency".to_owned(),
        Fix::None { .. } => "none".to_owned(),
    }
}

fn plan_json(p: &cairn_engine::remediation::Plan) -> Value {
    json!({
        "workload": p.workload,
        "environment": p.environment,
        "digest": p.digest,
        "commit": p.commit,
        "exposures": p.exposures.iter().map(|(a, pkg)| json!({"advisory": a, "package": pkg})).collect::<Vec<_>>(),
        "fix": fix_name(&p.fix),
        "steps": p.steps,
    })
}

fn print_plan(p: &cairn_engine::remediation::Plan) {
    println!(
        "{} in {} ({}): {} — fix: {}",
        p.workload,
        p.environment,
        p.digest,
        p.exposures
            .iter()
            .map(|(a, pkg)| format!("{a} in {pkg}"))
            .collect::<Vec<_>>()
            .join(", "),
        fix_name(&p.fix)
    );
    for (i, s) in p.steps.iter().enumerate() {
        println!("  {}. {s}", i + 1);
    }
}

/// The last remediation of each workload.
fn show(cli: &Cli, data: &cairn_engine::DataDir) -> Result<ExitCode, Failure> {
    let list = cairn_engine::remediation::statuses(data)?;
    if cli.json {
        print_json(&json!(list));
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("no remediation yet; `cairn remediate --all --plan` shows what cairn would do");
    }
    for s in &list {
        print_status(s);
    }
    Ok(ExitCode::SUCCESS)
}

/// One workload's last remediation: its state, how it ended (why, when it
/// failed) and its steps.
pub(super) fn print_status(s: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    println!(
        "{} {}: {} (started {} by {})",
        text(&s["workload"]),
        text(&s["id"]),
        text(&s["state"]),
        text(&s["started"]),
        text(&s["actor"])
    );
    let e = &s["ending"];
    if let Some(step) = e["failed"].as_str() {
        println!("  failed at `{step}`: {}", text(&e["reason"]));
    } else if let Some(commit) = e["waiting_for_review"].as_str() {
        println!(
            "  waiting for review of commit {commit} (branch {}): {}",
            text(&e["branch"]),
            text(&e["command"])
        );
    } else if let Some(env) = e["waiting_for_approval"].as_str() {
        println!("  waiting for approval to {env}: {}", text(&e["command"]));
    } else if let Some(d) = e["remediated"].as_str() {
        println!(
            "  remediated by {d} in {} s",
            e["time_to_remediate_seconds"]
        );
    }
    for step in s["steps"].as_array().into_iter().flatten() {
        println!("  - {}: {}", text(&step["step"]), text(&step["detail"]));
    }
}
