//! `cairn promote`, `cairn rollback`, `cairn undeploy`, `cairn status`, `cairn
//! audit`: environments.
//!
//! The actor is the identity whose token is in `CAIRN_TOKEN`. A promotion is
//! authorised (roles), decided by the gate (Rego; the default set plus
//! `$CAIRN_PLATFORM_DIR/policy/*.rego`), recorded in the audit log — durable before
//! the environment changes — deployed by the environment's target, and certified
//! with a VSA. A denial deploys nothing, is recorded too, and exits 1 naming each
//! rule; `cairn explain promotion` shows it again.

use std::process::ExitCode;

use std::time::Duration;

use cairn_engine::deploy::UndeployRequest;
use cairn_engine::deploy::reconcile::{Reconciliation, last_reconciled};
use cairn_engine::promotion::{Intent, Outcome, Promoter, Request};
use serde_json::json;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::{Failure, USER};
use crate::output::print_json;

#[derive(Debug, clap::Args)]
pub(crate) struct PromoteArgs {
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
pub(crate) struct RollbackArgs {
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
pub(crate) struct UndeployArgs {
    /// The workload.
    pub workload: String,
    /// The environment to stop it in.
    #[arg(long)]
    pub env: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    #[arg(long)]
    pub workload: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// `f` with a promoter over the data directory and `CAIRN_TOKEN`'s actor.
fn with_promoter<T>(
    cli: &Cli,
    f: impl FnOnce(&Promoter<'_>, cairn_policy::Identity) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let actor = cairn_engine::access::actor_from_env(&*store)?;
    let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
    let promoter = Promoter {
        data: &data,
        store: &*store,
        org: &org,
        platform_dir: cli.platform_dir.as_deref(),
    };
    f(&promoter, actor)
}

fn promoter_run(
    cli: &Cli,
    req: impl FnOnce(&dyn cairn_store::Store, cairn_policy::Identity) -> Result<Request, Failure>,
) -> Result<ExitCode, Failure> {
    with_promoter(cli, |promoter, actor| {
        // Reconciled before the request is made (a rollback's target is read from the
        // records); `promote` reconciles again under its lock.
        report_reconciliation(&promoter.reconcile(cairn_engine::audit::LOCK_WAIT)?);
        let request = req(promoter.store, actor)?;
        let outcome = promoter.promote(&request)?;
        report(cli, &request, &outcome)
    })
}

pub(super) fn promote(cli: &Cli, args: &PromoteArgs) -> Result<ExitCode, Failure> {
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

pub(super) fn rollback(cli: &Cli, args: &RollbackArgs) -> Result<ExitCode, Failure> {
    promoter_run(cli, |store, actor| {
        let image = cairn_engine::promotion::rollback_target(
            store,
            &args.workload,
            &args.env,
            args.to.as_deref(),
        )?;
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

/// Stops the workload's deployment in the environment: authorised as a
/// promotion there, logged, stopped by the environment's target, recorded.
/// Nothing deployed is exit 1, saying so.
pub(super) fn undeploy(cli: &Cli, args: &UndeployArgs) -> Result<ExitCode, Failure> {
    let o = with_promoter(cli, |promoter, actor| {
        Ok(promoter.undeploy(&UndeployRequest {
            workload: args.workload.clone(),
            environment: args.env.clone(),
            actor,
        })?)
    })?;
    if cli.json {
        print_json(&cairn_engine::wire::undeploy_json(&o));
    } else {
        println!(
            "undeploy {} → {}: {} ({}, {}); audit log entry {}, change {}",
            args.workload, args.env, o.digest, o.target, o.detail, o.log_index, o.change_id
        );
        if let Some(delivery) = &o.change_delivery {
            eprintln!("change {}: {delivery}", o.change_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(cli: &Cli, req: &Request, o: &Outcome) -> Result<ExitCode, Failure> {
    if cli.json {
        print_json(&cairn_engine::wire::outcome_json(o));
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
        if let Some(db) = &o.input.findings.advisory_db {
            eprintln!(
                "advisories matched at decision time: {} records (newest {}), database {}",
                db.count,
                db.newest_modified.as_deref().unwrap_or("none"),
                db.digest
            );
        }
        eprintln!(
            "recorded as change {} (decision evidence {}, audit log entry {}); `cairn explain promotion` shows it again",
            o.change_id, o.decision_evidence, o.decision_log_index
        );
    }
    if !cli.json
        && let Some(delivery) = &o.change_delivery
    {
        eprintln!("change {}: {delivery}", o.change_id);
    }
    Ok(if o.decision.allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(USER)
    })
}

/// How long `cairn status` waits for a promotion in progress before it reports
/// without reconciling.
const STATUS_WAIT: Duration = Duration::from_secs(2);

/// Reconciles what runs with the records (`cairn up`, `status`, `promote`,
/// `rollback`) and says what it resolved on stderr.
pub(super) fn reconcile_and_report(
    cli: &Cli,
    data: &cairn_engine::DataDir,
    store: &dyn cairn_store::Store,
) -> Result<Reconciliation, Failure> {
    reconcile_in(cli.platform_dir.as_deref(), data, store)
}

/// [`reconcile_and_report`] with the platform directory given (a server's
/// thread, which has no `Cli`).
pub(super) fn reconcile_in(
    platform_dir: Option<&std::path::Path>,
    data: &cairn_engine::DataDir,
    store: &dyn cairn_store::Store,
) -> Result<Reconciliation, Failure> {
    let org = cairn_engine::load_org(platform_dir)?;
    let promoter = Promoter {
        data,
        store,
        org: &org,
        platform_dir,
    };
    let done = promoter.reconcile(STATUS_WAIT)?;
    report_reconciliation(&done);
    Ok(done)
}

fn report_reconciliation(done: &Reconciliation) {
    for r in &done.resolutions {
        eprintln!(
            "reconciled {} → {} ({}, log entry {}): {}{}",
            r.workload,
            r.environment,
            r.digest,
            r.log_index,
            r.status
                .map(|s| format!("{}: ", s.as_str()))
                .unwrap_or_default(),
            r.reason
        );
    }
    for u in &done.unchecked {
        eprintln!("reconcile: not checked: {u}");
    }
    if !done.left_alone.is_empty() {
        eprintln!(
            "reconcile: {} detached sandbox(es) on this host are not recorded in this data directory (another data directory's, or not started by cairn); left alone",
            done.left_alone.len()
        );
    }
}

pub(super) fn status(cli: &Cli) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    // Status tells what is recorded even when reconciling cannot be done now (a
    // full disk, a lock it cannot take): it says so instead of failing.
    let done = reconcile_and_report(cli, &data, &*store).map_err(|f| format!("{:#}", f.error));
    if let Err(why) = &done {
        eprintln!("reconcile: not done now: {why}");
    }
    let rows = cairn_engine::promotion::status(&data, &*store)?;
    let reconciled = last_reconciled(&data).map(|(at, _)| cairn_model::time::rfc3339_utc(at));
    if cli.json {
        print_json(&json!(
            rows.iter()
                .map(|row| {
                    let mut v = cairn_engine::wire::status_json(row);
                    v["reconciled_at"] = json!(reconciled);
                    v
                })
                .collect::<Vec<_>>()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("nothing is deployed yet: `cairn promote WORKLOAD IMAGE --to staging`");
    }
    for row in &rows {
        let d = &row.deployment;
        let state = match (d.status, row.running) {
            (cairn_model::DeploymentStatus::Deployed, true) => String::new(),
            (cairn_model::DeploymentStatus::Deployed, false) => ", NOT RUNNING".to_owned(),
            (s, _) => format!(
                ", {}{}",
                s.as_str().to_uppercase(),
                d.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        };
        println!(
            "{:<16} {:<12} {}  since {} by {} ({}, {}{state}) log entry {}",
            d.workload,
            d.environment,
            d.digest,
            cairn_model::time::rfc3339_utc(d.deployed_at_ms),
            d.actor,
            d.kind,
            d.detail,
            d.log_index
        );
        if let Some(reason) = &row.overridden {
            println!(
                "{:<16} {:<12} OVERRIDDEN: went past the gate by {}'s break-glass override ({}); its VSA says FAILED until a clean promotion replaces it",
                "",
                "",
                d.actor,
                reason
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect::<String>()
            );
        }
        if let Some(a) = &row.last_attempt {
            println!(
                "{:<16} {:<12}   last attempt: {} (log entry {}) {}{}",
                "",
                "",
                a.digest,
                a.log_index,
                a.status.as_str(),
                a.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
    }
    let last = || {
        reconciled
            .as_ref()
            .map(|at| format!("; last reconciled {at}"))
            .unwrap_or_default()
    };
    match &done {
        Ok(d) if d.busy => println!("a promotion is in progress: not reconciled now{}", last()),
        Ok(_) => {
            if let Some(at) = &reconciled {
                println!("reconciled with what runs at {at}");
            }
        }
        Err(_) => println!(
            "NOT reconciled now (see above): this is what is recorded{}",
            last()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn audit(cli: &Cli, args: &AuditArgs) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let changes = store.changes(args.workload.as_deref(), args.limit)?;
    let mut out = Vec::new();
    for (id, c) in &changes {
        let proof = cairn_engine::audit::prove_inclusion(&data, c.log_index)?;
        out.push((*id, c, proof));
    }
    if cli.json {
        print_json(&json!(
            out.iter()
                .map(|(id, c, proof)| cairn_engine::wire::change_json(*id, c, proof))
                .collect::<Vec<_>>()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    if out.is_empty() {
        println!("no changes recorded yet");
    }
    for (id, c, proof) in &out {
        println!(
            "{id:>4} {} {:<9} {} → {} by {}: {} → {}  log entry {} proven in tree {} (root {}…)",
            cairn_model::time::rfc3339_utc(c.at_ms),
            c.kind,
            c.workload,
            c.environment,
            c.actor,
            c.from_digest.as_deref().unwrap_or("-"),
            c.to_digest,
            c.log_index,
            proof.tree_size,
            &proof.root[..16.min(proof.root.len())]
        );
        if matches!(
            cairn_model::ChangeKind::parse(&c.kind),
            Some(
                cairn_model::ChangeKind::Reconciled
                    | cairn_model::ChangeKind::DeployFailed
                    | cairn_model::ChangeKind::Remediation
            )
        ) && let Some(outcome) = cairn_engine::promotion::RecordedDecision::of(c).outcome
        {
            println!("       {outcome}");
        }
        for a in cairn_engine::promotion::RecordedDecision::of(c).approvals {
            match a.counted {
                Ok(()) => println!("       review: {} {} (counted)", a.reviewer, a.verdict),
                Err(why) => println!(
                    "       review: {} {} (not counted: {why})",
                    a.reviewer, a.verdict
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
