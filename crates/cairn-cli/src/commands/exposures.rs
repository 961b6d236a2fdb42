//! `cairn exposures [--env E] [--overdue] [--all]`: findings on the digests
//! deployed in each environment (computed by `cairn_engine::exposures` from the
//! findings and the deployment history), with first-seen, severity, whether a
//! fix exists, the SLA deadline and the state. Read-only.
//!
//! Exit codes: 0 listed (an empty list too), 2 cairn failed.

use std::process::ExitCode;

use cairn_engine::exposures::{ExposureFilter, now_ms};
use cairn_engine::wire::exposure_json;
use cairn_model::time::rfc3339_utc;
use serde_json::json;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Args)]
pub struct ExposuresArgs {
    /// Only this environment.
    #[arg(long = "env")]
    pub env: Option<String>,
    /// Only open exposures past their deadline.
    #[arg(long)]
    pub overdue: bool,
    /// Remediated exposures too (with their time to remediate).
    #[arg(long)]
    pub all: bool,
}

/// Hours and minutes, for people.
fn span(ms: i64) -> String {
    let minutes = ms.unsigned_abs() / 60_000;
    format!("{}h{:02}m", minutes / 60, minutes % 60)
}

pub fn exposures(cli: &Cli, args: &ExposuresArgs) -> Result<ExitCode, Failure> {
    let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
    if let Some(env) = &args.env
        && org.position(env).is_none()
    {
        return Err(Failure::user(anyhow::anyhow!(
            "`{env}` is not an environment of the promotion path ({})",
            org.promotion_path.join(" → ")
        )));
    }
    let store = open_store(&data_dir(cli)?)?;
    let now = now_ms();
    let mut list = cairn_engine::exposures::list(
        &*store,
        &org,
        &ExposureFilter {
            environment: args.env.clone(),
            overdue: args.overdue,
            include_remediated: args.all,
        },
        now,
    )?;
    // Open ones a running remediation covers are `remediating`.
    cairn_engine::remediation::mark_remediating(&data_dir(cli)?, &mut list)?;
    if cli.json {
        print_json(&json!({
            "now": rfc3339_utc(now),
            "exposures": list.iter().map(|e| exposure_json(e, now)).collect::<Vec<_>>(),
        }));
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!(
            "no exposures{}",
            if args.overdue {
                " past their deadline"
            } else {
                ""
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12} {:<16} {:<24} {:<9} {:<10} {:<20} {:<30} {:<10} PACKAGE / DIGEST",
        "ENVIRONMENT", "WORKLOAD", "ADVISORY", "SEVERITY", "STATE", "FIRST SEEN", "DEADLINE", "FIX"
    );
    for e in &list {
        let deadline = match e.state {
            cairn_engine::exposures::ExposureState::Remediated => format!(
                "remediated in {}",
                span(e.time_to_remediate_ms().unwrap_or_default())
            ),
            _ if e.overdue(now) => format!(
                "{} OVERDUE {}",
                rfc3339_utc(e.deadline_ms),
                span(now - e.deadline_ms)
            ),
            _ => format!(
                "{} (in {})",
                rfc3339_utc(e.deadline_ms),
                span(e.deadline_ms - now)
            ),
        };
        let fix = if e.fixable() {
            e.fixed_versions.join(",")
        } else {
            "no fix yet".to_owned()
        };
        println!(
            "{:<12} {:<16} {:<24} {:<9} {:<10} {:<20} {:<30} {:<10} {} {}",
            e.environment,
            e.workload,
            e.advisory,
            e.severity,
            e.state.as_str(),
            rfc3339_utc(e.first_seen_ms),
            deadline,
            fix,
            e.package,
            e.digest
        );
    }
    Ok(ExitCode::SUCCESS)
}
