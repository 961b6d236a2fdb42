//! `cairn explain RUN`: why a run failed or was interrupted; `cairn explain
//! promotion|change:N`: why a gate decided; `cairn explain remediation[:WORKLOAD]`:
//! how the last remediation of each workload (or of one) ended, and why.

use std::process::ExitCode;

use cairn_model::RunStatus;
use cairn_model::time::rfc3339_utc;
use serde_json::json;

use super::{data_dir, open_store, resolve_run};
use crate::cli::{Cli, ExplainArgs};
use crate::exit::Failure;
use crate::output::{line_json, line_text, print_json, run_json, short_commit};

pub(super) fn explain(cli: &Cli, args: &ExplainArgs) -> Result<ExitCode, Failure> {
    if let Some(rest) = args.run.strip_prefix("remediation") {
        return explain_remediation(cli, rest.strip_prefix(':'));
    }
    let store = open_store(&data_dir(cli)?)?;
    if args.run == "promotion" || args.run.starts_with("change:") {
        return explain_change(cli, &*store, &args.run);
    }
    let id = resolve_run(&*store, &args.run)?;
    let e = cairn_engine::explain::explain(&*store, id, args.lines.min(10_000))?;
    if cli.json {
        let culprit = e.culprit.as_ref().map(|c| {
            json!({
                "stage": c.stage.name,
                "kind": c.stage.kind.as_str(),
                "command": c.stage.command,
                "status": c.stage.status.as_str(),
                "exit_code": c.stage.exit_code,
                "reason": c.stage.reason,
                "failed_tests": c.failed_tests,
                "hint": c.hint,
                "last_lines": c.last_lines.iter().map(|l| line_json(&c.stage.name, l)).collect::<Vec<_>>(),
            })
        });
        let mut v = run_json(&e.run, Some(&e.stages));
        v["explanation"] = json!({ "culprit": culprit });
        print_json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    let run = &e.run;
    let at = run
        .finished_at_ms
        .or(run.started_at_ms)
        .unwrap_or(run.created_at_ms);
    println!(
        "run {} of {} at {}{} {} at {}",
        run.id,
        run.workload,
        short_commit(&run.commit),
        run.git_ref
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        run.status,
        rfc3339_utc(at)
    );
    match run.status {
        RunStatus::Succeeded => {
            println!("every stage passed: nothing to explain");
            return Ok(ExitCode::SUCCESS);
        }
        RunStatus::Queued | RunStatus::Running => {
            println!(
                "the run has not finished; follow it with `cairn logs {} --follow`",
                run.id
            );
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let Some(reason) = &run.reason {
        println!("why:       {reason}");
    }
    let Some(c) = &e.culprit else {
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "stage:     {} ({}, stage {} of {})",
        c.stage.name,
        c.stage.kind,
        c.stage.index + 1,
        e.stages.len()
    );
    if let Some(cmd) = &c.stage.command {
        println!("command:   {cmd}");
    }
    match c.stage.exit_code {
        Some(code) => println!("exit code: {code}"),
        None => println!(
            "exit code: none ({})",
            c.stage.reason.as_deref().unwrap_or(c.stage.status.as_str())
        ),
    }
    if !c.failed_tests.is_empty() {
        println!("failed tests ({}):", c.failed_tests.len());
        for t in &c.failed_tests {
            println!("  - {t}");
        }
    }
    if !c.last_lines.is_empty() {
        println!(
            "last {} log lines of `{}`:",
            c.last_lines.len(),
            c.stage.name
        );
        for l in &c.last_lines {
            println!("  | {}", line_text(l));
        }
    }
    if let Some(hint) = &c.hint {
        println!("hint:      {hint}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `cairn explain promotion` (the newest promotion or rollback that did not deploy)
/// or `cairn explain change:N`: the gate's decision, rule by rule.
fn explain_change(
    cli: &Cli,
    store: &dyn cairn_store::Store,
    what: &str,
) -> Result<ExitCode, Failure> {
    let changes = store.changes(None, 10_000)?;
    let found = match what.strip_prefix("change:") {
        Some(n) => {
            let id: i64 = n.parse().map_err(|_| {
                Failure::user(anyhow::anyhow!(
                    "`{n}` is not a change id (`cairn audit` lists them)"
                ))
            })?;
            changes.into_iter().find(|(i, _)| *i == id)
        }
        None => changes.into_iter().find(|(_, c)| {
            matches!(
                cairn_model::ChangeKind::parse(&c.kind),
                Some(cairn_model::ChangeKind::Denied | cairn_model::ChangeKind::DeployFailed)
            )
        }),
    };
    let Some((id, change)) = found else {
        return Err(Failure::user(anyhow::anyhow!(
            "no such change; `cairn audit` lists the recorded changes"
        )));
    };
    let record: serde_json::Value = serde_json::from_str(&change.json).unwrap_or_default();
    if cli.json {
        print_json(
            &json!({ "id": id, "kind": change.kind, "workload": change.workload,
            "environment": change.environment, "actor": change.actor, "to": change.to_digest,
            "log_index": change.log_index, "record": record }),
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "change {id}: {} of {} to {} by {} at {} (audit log entry {})",
        change.kind,
        change.workload,
        change.environment,
        change.actor,
        rfc3339_utc(change.at_ms),
        change.log_index
    );
    println!("artifact:  {}", change.to_digest);
    let decision = cairn_engine::promotion::RecordedDecision::of(&change);
    if let Some(outcome) = &decision.outcome {
        println!("outcome:   {outcome}");
    }
    println!(
        "decision:  {} (policy {}, input {})",
        if decision.allow == Some(true) {
            "allow"
        } else {
            "deny"
        },
        decision.policy_digest.as_deref().unwrap_or("?"),
        decision.input_digest.as_deref().unwrap_or("?")
    );
    for (rule, message) in &decision.reasons {
        println!("  rule {rule}: {message}");
    }
    for a in &decision.approvals {
        match &a.counted {
            Ok(()) => println!("review:    {} {} (counted)", a.reviewer, a.verdict),
            Err(why) => println!(
                "review:    {} {} (not counted: {why})",
                a.reviewer, a.verdict
            ),
        }
    }
    println!(
        "hint:      `cairn policy eval {} {} --to {}` prints the gate's whole input",
        change.workload, change.to_digest, change.environment
    );
    Ok(ExitCode::SUCCESS)
}

/// The last remediation of `workload` (or of every workload).
fn explain_remediation(cli: &Cli, workload: Option<&str>) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let list = match workload {
        Some(w) => cairn_engine::remediation::status(&data, w)?
            .into_iter()
            .collect(),
        None => cairn_engine::remediation::statuses(&data)?,
    };
    if list.is_empty() {
        return Err(Failure::user(anyhow::anyhow!(
            "no remediation{} yet; `cairn remediate --all --plan` shows what cairn would do",
            workload.map(|w| format!(" of {w}")).unwrap_or_default()
        )));
    }
    if cli.json {
        print_json(&json!(list));
        return Ok(ExitCode::SUCCESS);
    }
    for s in &list {
        super::remediate::print_status(s);
    }
    Ok(ExitCode::SUCCESS)
}
