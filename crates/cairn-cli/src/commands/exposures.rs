//! `cairn exposures [--env E] [--overdue] [--all]`: findings on the digests
//! deployed in each environment (computed by `cairn_engine::exposures` from the
//! findings and the deployment history), with first-seen, severity, whether a
//! fix exists, the SLA deadline and the state (an accepted one with who
//! accepted it and until when; one whose acceptance expired is open again and
//! says so). `cairn exposures accept DIGEST --env E --vex FILE --for 30d`:
//! accept the open exposures of a digest in an environment that an OpenVEX
//! document applies to, until the expiry (`cairn_engine::acceptance`: signed,
//! logged, authorised as `override` at the workload and environment).
//!
//! Exit codes: 0 listed (an empty list too) or accepted, 1 refused, 2 cairn failed.

use std::process::ExitCode;

use cairn_engine::exposures::ExposureFilter;
use cairn_engine::now_ms;
use cairn_engine::wire::exposure_json;
use cairn_model::time::rfc3339_utc;
use serde_json::json;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ExposuresArgs {
    #[command(subcommand)]
    pub action: Option<ExposuresAction>,
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

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ExposuresAction {
    /// Accept the open exposures of DIGEST in an environment that a signed
    /// OpenVEX statement applies to (`not_affected` with a justification, or
    /// `affected` with an action statement), until an expiry.
    Accept {
        /// The deployed digest (`sha256:…`).
        digest: String,
        /// The environment it runs in.
        #[arg(long = "env")]
        env: String,
        /// The OpenVEX document.
        #[arg(long)]
        vex: std::path::PathBuf,
        /// How long the acceptance lasts: a number and s, m, h or d (at most 365d).
        #[arg(long = "for", value_parser = parse_duration_ms)]
        duration_ms: i64,
    },
}

/// `90d`, `12h`, `30m`, `45s` → milliseconds.
fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let (n, unit) = text.split_at(text.len().saturating_sub(1));
    let scale = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err("write a number and s, m, h or d, e.g. 30d".into()),
    };
    let n: i64 = n
        .parse()
        .map_err(|_| "write a number and s, m, h or d, e.g. 30d".to_owned())?;
    n.checked_mul(scale)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| "out of range".to_owned())
}

/// Hours and minutes, for people.
fn span(ms: i64) -> String {
    let minutes = ms.unsigned_abs() / 60_000;
    format!("{}h{:02}m", minutes / 60, minutes % 60)
}

pub(super) fn exposures(cli: &Cli, args: &ExposuresArgs) -> Result<ExitCode, Failure> {
    let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
    if let Some(ExposuresAction::Accept {
        digest,
        env,
        vex,
        duration_ms,
    }) = &args.action
    {
        return accept(cli, &org, digest, env, vex, *duration_ms);
    }
    if let Some(env) = &args.env
        && org.position(env).is_none()
    {
        return Err(Failure::user(anyhow::anyhow!(
            "`{env}` is not an environment of the promotion path ({})",
            org.promotion_path.join(" → ")
        )));
    }
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let now = now_ms();
    let mut list = cairn_engine::exposures::list(
        &*store,
        &data,
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
            cairn_engine::exposures::ExposureState::Accepted => match &e.acceptance {
                Some(a) => format!("accepted until {} by {}", rfc3339_utc(a.expires_ms), a.by),
                None => "suppressed by VEX".to_owned(),
            },
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
        if let Some(a) = e.acceptance.as_ref().filter(|a| a.expired) {
            println!(
                "  open again: the acceptance by {} (VEX {}, evidence {}) expired at {}",
                a.by,
                a.vex_id,
                a.evidence,
                rfc3339_utc(a.expires_ms)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn accept(
    cli: &Cli,
    org: &cairn_model::config::OrgConfig,
    digest: &str,
    env: &str,
    vex: &std::path::Path,
    duration_ms: i64,
) -> Result<ExitCode, Failure> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(vex)
        .and_then(|f| {
            f.take(cairn_vuln::vex::MAX_VEX_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|e| {
            Failure::user(anyhow::Error::new(e).context(format!("cannot read {}", vex.display())))
        })?;
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    // Authenticated here; authorised by the engine at the exposure's scope.
    let actor = cairn_engine::access::cli_actor(&*store, cairn_policy::Action::Override, None)?;
    let now = now_ms();
    let done = cairn_engine::acceptance::accept(
        &data,
        &*store,
        org,
        actor.as_ref(),
        env,
        digest,
        &bytes,
        duration_ms,
        now,
    )?;
    if cli.json {
        print_json(&json!({
            "accepted": done.exposures.iter().map(|e| exposure_json(e, now)).collect::<Vec<_>>(),
            "until": rfc3339_utc(done.expires_ms),
            "evidence": done.evidence,
            "log_index": done.log_index,
        }));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "accepted {} exposure(s) of {digest} in {env} until {} (signed acceptance: evidence {}, audit log entry {})",
        done.exposures.len(),
        rfc3339_utc(done.expires_ms),
        done.evidence,
        done.log_index
    );
    for e in &done.exposures {
        println!("  {} {}", e.advisory, e.package);
    }
    Ok(ExitCode::SUCCESS)
}
