//! `cairn scan PATH [--json] [--fail-on low|medium|high|critical]`: the components
//! of PATH (the walk `cairn sbom` does) matched against the advisories `cairn vulns
//! import` stored. Vulnerabilities are listed with their advisory, aliases, package,
//! installed and fixed versions and severity; informational advisories
//! (unmaintained, unsound, notice) apart, as cargo-audit does; what could not be
//! evaluated as issues. Exit 1 when a vulnerability at or above the threshold is
//! found — one without a CVSS severity counts as crossing any threshold (fail
//! closed) — and when nothing could be read or evaluated, or no advisories are
//! stored.
//!
//! `--vex FILE` (repeatable) applies OpenVEX documents: a `not_affected` (with a
//! justification) or `fixed` statement moves a vulnerability to `suppressed`,
//! listed with its status, justification and VEX document id and no longer counted
//! against `--fail-on`; `affected` and `under_investigation` annotate it.
//! `--licence-policy FILE` (or `$CAIRN_PLATFORM_DIR/policy/licences.toml` when
//! present) evaluates every component's licence; any licence finding exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use cairn_engine::scan::ScanOutcome;
use cairn_sbom::licence_policy::LicenceVerdict;
use cairn_vuln::{Finding, FindingKind, Rating, VexVerdict};

use super::sbom::{collect, print_problems};
use super::{data_dir, open_store_reading};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Threshold {
    Low,
    Medium,
    High,
    Critical,
}

impl Threshold {
    fn rating(self) -> Rating {
        match self {
            Threshold::Low => Rating::Low,
            Threshold::Medium => Rating::Medium,
            Threshold::High => Rating::High,
            Threshold::Critical => Rating::Critical,
        }
    }
}

/// How `cairn scan` writes what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ScanFormat {
    /// For people (the default).
    Text,
    /// cairn's JSON (as `--json`).
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ScanArgs {
    /// A source tree or a root filesystem directory (or one lockfile).
    pub path: PathBuf,
    /// Exit 1 when a vulnerability of this severity or higher is found.
    #[arg(long, value_enum, default_value = "high")]
    pub fail_on: Threshold,
    /// An OpenVEX document (repeatable). `not_affected` (with a justification) and
    /// `fixed` statements suppress matching vulnerabilities: they are listed as
    /// suppressed and no longer count against --fail-on. `affected` and
    /// `under_investigation` annotate them. The latest statement wins.
    #[arg(long = "vex", value_name = "FILE")]
    pub vex: Vec<PathBuf>,
    /// The licence policy (TOML: `allow = [...]`, `deny = [...]`, SPDX ids).
    /// Default: `$CAIRN_PLATFORM_DIR/policy/licences.toml` when present. When a
    /// policy is in force, any licence finding (denied, not allowed, unknown or
    /// missing licence) makes the scan exit 1.
    #[arg(
        long = "licence-policy",
        visible_alias = "license-policy",
        value_name = "FILE"
    )]
    pub licence_policy: Option<PathBuf>,
    /// The output: text, json (as --json) or sarif (SARIF 2.1.0: one rule per
    /// advisory, each result located in the lockfile or manifest it came from).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ScanFormat>,
}

pub(super) fn scan(cli: &Cli, args: &ScanArgs) -> Result<ExitCode, Failure> {
    let collected = collect(&args.path)?;
    if collected.nothing_read() {
        print_problems(&collected);
        return Err(Failure::user(anyhow!(
            "no file under {} could be read",
            args.path.display()
        )));
    }
    let store = open_store_reading(&data_dir(cli)?)?;
    if store.advisory_count()? == 0 {
        return Err(Failure::user(anyhow!(
            "no advisories are stored; import some first with `cairn vulns import SOURCE`"
        )));
    }
    let vex = cairn_engine::scan::load_vex(&args.vex)?;
    let policy = policy_path(cli, args)
        .map(|p| cairn_engine::scan::load_licence_policy(&p))
        .transpose()?;
    let threshold = args.fail_on.rating();
    let outcome = cairn_engine::scan::scan(&*store, &collected, vex, policy.as_ref(), threshold)?;
    let failed = outcome.failed();
    let format = match args.format {
        Some(f) => f,
        None if cli.json => ScanFormat::Json,
        None => ScanFormat::Text,
    };
    if format == ScanFormat::Sarif {
        let root = std::fs::canonicalize(&args.path)
            .map_err(|e| Failure::user(anyhow!("cannot resolve {}: {e}", args.path.display())))?;
        let root = if root.is_dir() {
            root
        } else {
            root.parent().map(Path::to_path_buf).unwrap_or(root)
        };
        print_problems(&collected);
        print_json(&cairn_engine::sarif::sarif(
            &outcome, &collected, &root, threshold,
        ));
    } else if format == ScanFormat::Json {
        print_report(&args.path, &outcome, threshold, failed)?;
    } else {
        print_problems(&collected);
        print_text(&outcome, threshold);
    }
    if outcome.report.packages == 0 && !outcome.not_evaluated.is_empty() {
        return Err(Failure::user(anyhow!(
            "none of the components under {} could be evaluated",
            args.path.display()
        )));
    }
    Ok(if failed {
        ExitCode::from(crate::exit::USER)
    } else {
        ExitCode::SUCCESS
    })
}

/// The licence policy in force: `--licence-policy`, else the platform's
/// `policy/licences.toml` when it exists, else none.
fn policy_path(cli: &Cli, args: &ScanArgs) -> Option<PathBuf> {
    match (&args.licence_policy, &cli.platform_dir) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(dir)) if dir.join("policy/licences.toml").is_file() => {
            Some(dir.join("policy/licences.toml"))
        }
        _ => None,
    }
}

/// `--json`'s report, serialised as it is written: one line, the keys of every
/// object in alphabetical order (the order the `serde_json::Value` it was built
/// as before gave them; `json_report_keeps_its_shape` pins it), without a tree
/// of values built first (a 908-crate scan's was a fifth of its instructions).
fn print_report(
    path: &Path,
    outcome: &ScanOutcome,
    threshold: Rating,
    failed: bool,
) -> Result<(), Failure> {
    let report = ReportJson {
        fail_on: threshold.as_str(),
        failed,
        informational: outcome
            .report
            .informational
            .iter()
            .map(|f| FindingJson::of(f, None, None))
            .collect(),
        issues: outcome
            .not_evaluated
            .iter()
            .map(|i| IssueJson {
                reason: &i.reason,
                subject: &i.subject,
            })
            .collect(),
        licence_policy: outcome.licences.is_some(),
        licences: outcome
            .licences
            .iter()
            .flatten()
            .map(|l| LicenceJson {
                detail: licence_detail(&l.verdict),
                kind: l.verdict.kind(),
                licence: &l.licence,
                purl: &l.purl,
            })
            .collect(),
        packages: outcome.report.packages,
        path: path.display().to_string(),
        suppressed: outcome
            .suppressed
            .iter()
            .map(|s| FindingJson::of(&s.finding, None, Some(&s.verdict)))
            .collect(),
        vex_refused: &outcome.vex_refused,
        vulnerabilities: outcome
            .kept
            .iter()
            .map(|(f, v)| FindingJson::of(f, Some(outcome.purl_of(f)), v.as_ref()))
            .collect(),
    };
    // Strings, numbers and booleans only: serialising does not fail, and if it
    // did, the scan fails (exit 2) rather than print nothing and pass.
    let line = serde_json::to_string(&report).context("cannot write the report as JSON")?;
    println!("{line}");
    Ok(())
}

#[derive(serde::Serialize)]
struct ReportJson<'a> {
    fail_on: &'static str,
    failed: bool,
    informational: Vec<FindingJson<'a>>,
    issues: Vec<IssueJson<'a>>,
    licence_policy: bool,
    licences: Vec<LicenceJson<'a>>,
    packages: usize,
    path: String,
    suppressed: Vec<FindingJson<'a>>,
    vex_refused: &'a [String],
    vulnerabilities: Vec<FindingJson<'a>>,
}

#[derive(serde::Serialize)]
struct IssueJson<'a> {
    reason: &'a str,
    subject: &'a str,
}

#[derive(serde::Serialize)]
struct LicenceJson<'a> {
    detail: String,
    kind: &'static str,
    licence: &'a str,
    purl: &'a str,
}

/// A finding; `purl` (a vulnerability's: `null` when unknown) and `vex` only
/// where the report has them.
#[derive(serde::Serialize)]
struct FindingJson<'a> {
    advisory: &'a str,
    aliases: &'a [String],
    ecosystem: &'a str,
    fix: &'static str,
    fixed_versions: &'a [String],
    installed_version: &'a str,
    kind: &'a str,
    package: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<Option<&'a String>>,
    severity: Option<SeverityJson<'a>>,
    summary: Option<&'a str>,
    urgency: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vex: Option<VexJson<'a>>,
}

impl<'a> FindingJson<'a> {
    fn of(
        f: &'a Finding,
        purl: Option<Option<&'a String>>,
        vex: Option<&'a VexVerdict>,
    ) -> FindingJson<'a> {
        FindingJson {
            advisory: &f.advisory_id,
            aliases: &f.aliases,
            ecosystem: &f.ecosystem,
            fix: f.fix_state(),
            fixed_versions: &f.fixed_versions,
            installed_version: &f.installed_version,
            kind: match &f.kind {
                FindingKind::Vulnerability => "vulnerability",
                FindingKind::Informational(i) => i.as_str(),
            },
            package: &f.package,
            purl,
            severity: f.severity.as_ref().map(|s| SeverityJson {
                rating: s.rating.as_str(),
                score: s.score,
                kind: &s.kind,
                vector: &s.vector,
            }),
            summary: f.summary.as_deref(),
            urgency: f.urgency.as_deref(),
            vex: vex.map(|v| VexJson {
                action_statement: v.statement.action_statement.as_deref(),
                document: &v.document_id,
                impact_statement: v.statement.impact_statement.as_deref(),
                justification: v
                    .statement
                    .justification
                    .map(cairn_vuln::Justification::as_str),
                status: v.statement.status.as_str(),
                timestamp: &v.statement.timestamp,
            }),
        }
    }
}

#[derive(serde::Serialize)]
struct SeverityJson<'a> {
    rating: &'static str,
    score: f64,
    #[serde(rename = "type")]
    kind: &'a str,
    vector: &'a str,
}

#[derive(serde::Serialize)]
struct VexJson<'a> {
    action_statement: Option<&'a str>,
    document: &'a str,
    impact_statement: Option<&'a str>,
    justification: Option<&'static str>,
    status: &'static str,
    timestamp: &'a str,
}

fn vex_text(v: &VexVerdict) -> String {
    let mut out = format!("VEX {}", v.statement.status.as_str());
    if let Some(j) = v.statement.justification {
        out.push_str(&format!(" ({})", j.as_str()));
    }
    out.push_str(&format!(
        " by {} at {}",
        v.document_id, v.statement.timestamp
    ));
    if let Some(i) = &v.statement.impact_statement {
        out.push_str(&format!("; impact: {i}"));
    }
    if let Some(a) = &v.statement.action_statement {
        out.push_str(&format!("; action: {a}"));
    }
    out
}

fn licence_detail(v: &LicenceVerdict) -> String {
    match v {
        LicenceVerdict::Allowed => "allowed".to_owned(),
        LicenceVerdict::Denied { denied } => format!("needs denied {}", denied.join(", ")),
        LicenceVerdict::Unknown { reason } => reason.clone(),
        LicenceVerdict::NotAllowed => "no choice of licences is on the allow list".to_owned(),
    }
}

fn finding_text(f: &Finding) {
    let severity = f.severity.as_ref().map_or_else(
        || "severity unknown".to_owned(),
        |s| format!("{} {:.1}", s.rating.as_str(), s.score),
    );
    let aliases = if f.aliases.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.aliases.join(", "))
    };
    println!("{}{aliases}", f.advisory_id);
    if let Some(summary) = &f.summary {
        println!("  {summary}");
    }
    let fixed = if f.fixed_versions.is_empty() {
        f.fix_state().to_owned()
    } else {
        f.fixed_versions.join(", ")
    };
    let urgency = f
        .urgency
        .as_deref()
        .map_or_else(String::new, |u| format!("  urgency: {u}"));
    println!(
        "  {} {} {}  fixed: {fixed}  {severity}{urgency}",
        f.ecosystem, f.package, f.installed_version
    );
}

fn print_text(outcome: &ScanOutcome, threshold: Rating) {
    let report = &outcome.report;
    if !outcome.kept.is_empty() {
        println!("vulnerabilities:");
        for (f, v) in &outcome.kept {
            finding_text(f);
            if let Some(v) = v {
                println!("  {}", vex_text(v));
            }
        }
    }
    if !outcome.suppressed.is_empty() {
        println!("suppressed by VEX (not counted against --fail-on):");
        for s in &outcome.suppressed {
            finding_text(&s.finding);
            println!("  {}", vex_text(&s.verdict));
        }
    }
    if !outcome.vex_refused.is_empty() {
        println!("VEX statements refused (not applied):");
        for r in &outcome.vex_refused {
            println!("  {r}");
        }
    }
    if let Some(licences) = &outcome.licences {
        if licences.is_empty() {
            println!("licences: every component's licence is allowed by the policy");
        } else {
            println!("licences (each fails the scan):");
            for l in licences {
                println!(
                    "  [{}] {}  licence: {}  ({})",
                    l.verdict.kind(),
                    l.purl,
                    l.licence,
                    licence_detail(&l.verdict)
                );
            }
        }
    }
    if !report.informational.is_empty() {
        println!("informational (not counted against --fail-on):");
        for f in &report.informational {
            let kind = match &f.kind {
                FindingKind::Informational(i) => i.as_str(),
                FindingKind::Vulnerability => "vulnerability",
            };
            print!("[{kind}] ");
            finding_text(f);
        }
    }
    if !outcome.not_evaluated.is_empty() {
        println!("not evaluated:");
        for i in &outcome.not_evaluated {
            println!("  {}: {}", i.subject, i.reason);
        }
    }
    println!(
        "{} packages scanned: {} vulnerabilities ({} at or above {}, or of unknown severity), {} suppressed by VEX, {} informational, {} not evaluated{}",
        report.packages,
        outcome.kept.len(),
        outcome.crossing,
        threshold.as_str(),
        outcome.suppressed.len(),
        report.informational.len(),
        outcome.not_evaluated.len(),
        outcome
            .licences
            .as_ref()
            .map_or_else(String::new, |l| format!(", {} licence findings", l.len())),
    );
}
