//! `cairn promote`, `cairn rollback`, `cairn status`, `cairn audit`: environments.
//!
//! The actor is the identity whose token is in `CAIRN_TOKEN`. A promotion is
//! authorised (roles), decided by the gate (Rego; the default set plus
//! `$CAIRN_PLATFORM_DIR/policy/*.rego`), recorded in the audit log — durable before
//! the environment changes — deployed by the environment's target, and certified
//! with a VSA. A denial deploys nothing, is recorded too, and exits 1 naming each
//! rule; `cairn explain promotion` shows it again.

use std::process::ExitCode;

use anyhow::anyhow;
use cairn_engine::promotion::{Intent, Outcome, Promoter, Request};
use serde_json::json;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::{Failure, USER};
use crate::output::print_json;

#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The workload.
    pub workload: String,
    /// The image: a digest, a unique digest prefix, or `WORKLOAD:COMMIT12`.
    pub image: String,
    /// The environment to deploy to.
    #[arg(long)]
    pub to: String,
    /// Break-glass: deploy despite a denial, with this reason (logged and flagged).
    #[arg(long, value_name = "REASON")]
    pub r#override: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    pub workload: String,
    #[arg(long)]
    pub env: String,
    /// The digest to go back to (default: what ran before the current one).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, value_name = "REASON")]
    pub r#override: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[arg(long)]
    pub workload: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

fn promoter_run(
    cli: &Cli,
    req: impl FnOnce(&dyn cairn_store::Store, cairn_policy::Identity) -> Result<Request, Failure>,
) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let actor = cairn_engine::access::actor_from_env(&*store)?;
    let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
    let request = req(&*store, actor)?;
    let promoter = Promoter {
        data: &data,
        store: &*store,
        org: &org,
        platform_dir: cli.platform_dir.as_deref(),
    };
    let outcome = promoter.promote(&request)?;
    report(cli, &request, &outcome)
}

pub fn promote(cli: &Cli, args: &PromoteArgs) -> Result<ExitCode, Failure> {
    promoter_run(cli, |_, actor| {
        Ok(Request {
            workload: args.workload.clone(),
            image: args.image.clone(),
            environment: args.to.clone(),
            actor,
            intent: Intent::Promote,
            override_reason: args.r#override.clone(),
        })
    })
}

pub fn rollback(cli: &Cli, args: &RollbackArgs) -> Result<ExitCode, Failure> {
    promoter_run(cli, |store, actor| {
        let image = match &args.to {
            Some(d) => d.clone(),
            None => store
                .current_deployment(&args.workload, &args.env)?
                .and_then(|d| d.previous_digest)
                .ok_or_else(|| {
                    Failure::user(anyhow!(
                        "{} has no earlier deployment in {} to go back to; pass --to DIGEST",
                        args.workload,
                        args.env
                    ))
                })?,
        };
        Ok(Request {
            workload: args.workload.clone(),
            image,
            environment: args.env.clone(),
            actor,
            intent: Intent::Rollback,
            override_reason: args.r#override.clone(),
        })
    })
}

fn report(cli: &Cli, req: &Request, o: &Outcome) -> Result<ExitCode, Failure> {
    if cli.json {
        print_json(&json!({
            "allow": o.decision.allow,
            "reasons": o.decision.reasons,
            "overridden": o.decision.overridden,
            "policy_digest": o.decision.policy_digest,
            "input_digest": o.decision.input_digest,
            "decision_evidence": o.decision_evidence,
            "change": o.change_id,
            "log_index": o.change.log_index,
            "deployment": o.deployment.as_ref().map(|d| json!({
                "digest": d.digest, "target": d.target, "detail": d.detail, "log_index": d.log_index,
            })),
            "vsa_evidence": o.vsa_evidence,
        }));
    } else if let Some(d) = &o.deployment {
        println!(
            "{} {} → {}: {} ({}, {}); audit log entry {}, VSA evidence {}",
            d.kind,
            req.workload,
            req.environment,
            d.digest,
            d.target,
            d.detail,
            d.log_index,
            o.vsa_evidence.unwrap_or_default()
        );
        if let Some(reason) = &o.decision.overridden {
            println!("OVERRIDE (flagged): {reason}; the gate said:");
            for r in &o.decision.reasons {
                println!("  - [{}] {}", r.rule, r.message);
            }
        }
    } else {
        eprintln!(
            "denied: {} → {} ({}); nothing was deployed. The gate said:",
            req.workload, req.environment, o.change.to_digest
        );
        for r in &o.decision.reasons {
            eprintln!("  - [{}] {}", r.rule, r.message);
        }
        eprintln!(
            "recorded as change {} (decision evidence {}, audit log entry {}); `cairn explain promotion` shows it again",
            o.change_id, o.decision_evidence, o.decision_log_index
        );
    }
    Ok(if o.decision.allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(USER)
    })
}

pub fn status(cli: &Cli) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let all = store.deployments(None, None, 10_000)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut rows = Vec::new();
    for d in all {
        if !seen.insert((d.workload.clone(), d.environment.clone())) {
            continue;
        }
        let running = match d.target.as_str() {
            "local" => {
                cairn_engine::images::deploy_local::current(&data, &d.workload, &d.environment)?
                    .is_some_and(|l| l.is_running() && l.digest == d.digest)
            }
            _ => true,
        };
        rows.push((d, running));
    }
    if cli.json {
        print_json(&json!(rows.iter().map(|(d, running)| json!({
            "workload": d.workload, "environment": d.environment, "digest": d.digest,
            "since": cairn_model::time::rfc3339_utc(d.deployed_at_ms), "by": d.actor,
            "kind": d.kind, "target": d.target, "detail": d.detail, "log_index": d.log_index,
            "running": running,
        })).collect::<Vec<_>>()));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("nothing is deployed yet: `cairn promote WORKLOAD IMAGE --to staging`");
    }
    for (d, running) in &rows {
        println!(
            "{:<16} {:<12} {}  since {} by {} ({}, {}{}) log entry {}",
            d.workload,
            d.environment,
            d.digest,
            cairn_model::time::rfc3339_utc(d.deployed_at_ms),
            d.actor,
            d.kind,
            d.detail,
            if *running { "" } else { ", NOT RUNNING" },
            d.log_index
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn audit(cli: &Cli, args: &AuditArgs) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let changes = store.changes(args.workload.as_deref(), args.limit)?;
    let mut out = Vec::new();
    for (id, c) in &changes {
        let (size, leaf, root, _) = super::log::prove_inclusion(data.root(), c.log_index)?;
        out.push((id, c, size, leaf, root));
    }
    if cli.json {
        print_json(&json!(out.iter().map(|(id, c, size, leaf, root)| json!({
            "id": id, "kind": c.kind, "workload": c.workload, "environment": c.environment,
            "actor": c.actor, "from": c.from_digest, "to": c.to_digest,
            "at": cairn_model::time::rfc3339_utc(c.at_ms), "log_index": c.log_index,
            "proof": { "tree_size": size, "leaf_hash": leaf, "root": root, "verified": true },
            "record": serde_json::from_str::<serde_json::Value>(&c.json).unwrap_or_default(),
        })).collect::<Vec<_>>()));
        return Ok(ExitCode::SUCCESS);
    }
    if out.is_empty() {
        println!("no changes recorded yet");
    }
    for (id, c, size, _, root) in &out {
        println!(
            "{id:>4} {} {:<9} {} → {} by {}: {} → {}  log entry {} proven in tree {size} (root {}…)",
            cairn_model::time::rfc3339_utc(c.at_ms),
            c.kind,
            c.workload,
            c.environment,
            c.actor,
            c.from_digest.as_deref().unwrap_or("-"),
            c.to_digest,
            c.log_index,
            &root[..16.min(root.len())]
        );
    }
    Ok(ExitCode::SUCCESS)
}
