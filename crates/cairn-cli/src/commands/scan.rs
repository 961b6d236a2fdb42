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

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use cairn_sbom::licence_policy::{LicencePolicy, LicenceVerdict};
use cairn_vuln::{Finding, FindingKind, Rating, VexDocument, VexSet, VexVerdict};
use serde_json::{Value, json};

use super::sbom::{Collected, collect, error_chain, print_problems};
use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Threshold {
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

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
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
}

/// A vulnerability a VEX statement suppressed.
struct Suppressed<'a> {
    finding: &'a Finding,
    verdict: VexVerdict,
}

/// A component whose licence the policy does not allow.
struct LicenceFinding {
    purl: String,
    licence: String,
    verdict: LicenceVerdict,
}

/// Something that kept a component from being evaluated.
#[derive(Debug)]
struct Issue {
    subject: String,
    reason: String,
}

pub fn scan(cli: &Cli, args: &ScanArgs) -> Result<ExitCode, Failure> {
    let collected = collect(&args.path)?;
    if collected.nothing_read() {
        print_problems(&collected);
        return Err(Failure::user(anyhow!(
            "no file under {} could be read",
            args.path.display()
        )));
    }
    let store = open_store(&data_dir(cli)?)?;
    if store.advisory_count()? == 0 {
        return Err(Failure::user(anyhow!(
            "no advisories are stored; import some first with `cairn vulns import SOURCE`"
        )));
    }
    let vex = load_vex(&args.vex)?;
    let policy = load_policy(cli, args)?;
    let evaluation = cairn_engine::inventory::evaluate(&*store, &collected)?;
    let report = evaluation.report;
    let issues: Vec<Issue> = evaluation
        .not_evaluated
        .into_iter()
        .map(|n| Issue {
            subject: n.subject,
            reason: n.reason,
        })
        .collect();
    let purls = cairn_engine::inventory::purls(&collected);
    let mut kept: Vec<(&Finding, Option<VexVerdict>)> = Vec::new();
    let mut suppressed = Vec::new();
    for f in &report.vulnerabilities {
        let verdict = vex_verdict(&vex.set, &purls, f);
        match verdict {
            Some(v) if v.statement.status.suppresses() => suppressed.push(Suppressed {
                finding: f,
                verdict: v,
            }),
            other => kept.push((f, other)),
        }
    }
    let licence_findings = policy
        .as_ref()
        .map(|p| licence_findings(p, &collected))
        .unwrap_or_default();
    let threshold = args.fail_on.rating();
    let crossing = kept
        .iter()
        .filter(|(f, _)| f.severity.as_ref().is_none_or(|s| s.rating >= threshold))
        .count();
    let failed = crossing > 0 || !licence_findings.is_empty();
    if cli.json {
        print_json(&json!({
            "path": args.path.display().to_string(),
            "packages": report.packages,
            "vulnerabilities": kept.iter().map(|(f, v)| {
                let mut j = finding_json(f);
                // The component's purl (an OS source package: its first binary package's).
                j["purl"] = json!(purls.get(&(f.ecosystem.clone(), f.package.clone(), f.installed_version.clone())));
                if let Some(v) = v {
                    j["vex"] = vex_json(v);
                }
                j
            }).collect::<Vec<_>>(),
            "suppressed": suppressed.iter().map(|s| {
                let mut j = finding_json(s.finding);
                j["vex"] = vex_json(&s.verdict);
                j
            }).collect::<Vec<_>>(),
            "vex_refused": vex.refused,
            "licence_policy": policy.is_some(),
            "licences": licence_findings.iter().map(|l| json!({
                "purl": l.purl,
                "licence": l.licence,
                "kind": l.verdict.kind(),
                "detail": licence_detail(&l.verdict),
            })).collect::<Vec<_>>(),
            "informational": report.informational.iter().map(finding_json).collect::<Vec<_>>(),
            "issues": issues.iter().map(|i| json!({ "subject": i.subject, "reason": i.reason })).collect::<Vec<_>>(),
            "fail_on": threshold.as_str(),
            "failed": failed,
        }));
    } else {
        print_problems(&collected);
        print_text(
            &report,
            &Sections {
                kept: &kept,
                suppressed: &suppressed,
                vex_refused: &vex.refused,
                licences: policy.as_ref().map(|_| licence_findings.as_slice()),
            },
            &issues,
            threshold,
            crossing,
        );
    }
    if report.packages == 0 && !issues.is_empty() {
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

/// The VEX documents given, their statements together, and the statements
/// refused (each naming its file).
struct LoadedVex {
    set: VexSet,
    refused: Vec<String>,
}

/// Reads and parses every `--vex` file; one that cannot be read or parsed stops
/// the scan (ignoring it would silently change what is reported).
fn load_vex(paths: &[PathBuf]) -> Result<LoadedVex, Failure> {
    let mut loaded = LoadedVex {
        set: VexSet::new(),
        refused: Vec::new(),
    };
    for path in paths {
        let too_large = std::fs::metadata(path)
            .map(|m| m.len() > cairn_vuln::vex::MAX_VEX_BYTES as u64)
            .unwrap_or(false);
        if too_large {
            return Err(Failure::user(anyhow!(
                "VEX document {}: larger than {} bytes",
                path.display(),
                cairn_vuln::vex::MAX_VEX_BYTES
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            Failure::user(anyhow!(
                "VEX document {}: cannot read it: {e}",
                path.display()
            ))
        })?;
        let doc = VexDocument::parse(&bytes).map_err(|e| {
            Failure::user(anyhow!(
                "VEX document {}: {}",
                path.display(),
                error_chain(&e)
            ))
        })?;
        for r in &doc.refused {
            loaded
                .refused
                .push(format!("{} ({}): {r}", path.display(), doc.id));
        }
        loaded.set.add(&doc);
    }
    Ok(loaded)
}

/// The licence policy in force: `--licence-policy`, else the platform's
/// `policy/licences.toml` when it exists, else none.
fn load_policy(cli: &Cli, args: &ScanArgs) -> Result<Option<LicencePolicy>, Failure> {
    let path = match (&args.licence_policy, &cli.platform_dir) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) if dir.join("policy/licences.toml").is_file() => {
            dir.join("policy/licences.toml")
        }
        _ => return Ok(None),
    };
    let too_large = std::fs::metadata(&path)
        .map(|m| m.len() > cairn_sbom::licence_policy::MAX_POLICY_BYTES as u64)
        .unwrap_or(false);
    if too_large {
        return Err(Failure::user(anyhow!(
            "licence policy {}: larger than {} bytes",
            path.display(),
            cairn_sbom::licence_policy::MAX_POLICY_BYTES
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::user(anyhow!(
            "licence policy {}: cannot read it: {e}",
            path.display()
        ))
    })?;
    LicencePolicy::parse(&text)
        .map(Some)
        .map_err(|e| Failure::user(anyhow!("{}:{e}", path.display())))
}

fn vex_verdict(
    vex: &VexSet,
    purls: &BTreeMap<(String, String, String), String>,
    f: &Finding,
) -> Option<VexVerdict> {
    if vex.is_empty() {
        return None;
    }
    let purl = purls.get(&(
        f.ecosystem.clone(),
        f.package.clone(),
        f.installed_version.clone(),
    ))?;
    let ids: Vec<&str> = std::iter::once(f.advisory_id.as_str())
        .chain(f.aliases.iter().map(String::as_str))
        .collect();
    vex.verdict(&ids, purl)
}

fn vex_json(v: &VexVerdict) -> Value {
    json!({
        "document": v.document_id,
        "status": v.statement.status.as_str(),
        "justification": v.statement.justification.map(|j| j.as_str()),
        "impact_statement": v.statement.impact_statement,
        "action_statement": v.statement.action_statement,
        "timestamp": v.statement.timestamp,
    })
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

/// Every component (each purl once) whose licence the policy does not allow.
fn licence_findings(policy: &LicencePolicy, collected: &Collected) -> Vec<LicenceFinding> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in &collected.report.components {
        if !seen.insert(c.purl.clone()) {
            continue;
        }
        let verdict = policy.evaluate(&c.licence);
        if verdict.is_finding() {
            let licence = match &c.licence {
                cairn_sbom::Licence::Expression(e) | cairn_sbom::Licence::Unknown(e) => e.clone(),
                cairn_sbom::Licence::NotGiven => "(none stated)".to_owned(),
            };
            out.push(LicenceFinding {
                purl: c.purl.clone(),
                licence,
                verdict,
            });
        }
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

/// What VEX and the licence policy add to the text report.
struct Sections<'a> {
    kept: &'a [(&'a Finding, Option<VexVerdict>)],
    suppressed: &'a [Suppressed<'a>],
    vex_refused: &'a [String],
    /// `None` when no licence policy is in force.
    licences: Option<&'a [LicenceFinding]>,
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "advisory": f.advisory_id,
        "aliases": f.aliases,
        "summary": f.summary,
        "kind": match &f.kind {
            FindingKind::Vulnerability => "vulnerability",
            FindingKind::Informational(i) => i.as_str(),
        },
        "ecosystem": f.ecosystem,
        "package": f.package,
        "installed_version": f.installed_version,
        "fixed_versions": f.fixed_versions,
        "fix": f.fix_state(),
        "urgency": f.urgency,
        "severity": f.severity.as_ref().map(|s| json!({
            "type": s.kind,
            "vector": s.vector,
            "score": s.score,
            "rating": s.rating.as_str(),
        })),
    })
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

fn print_text(
    report: &cairn_vuln::ScanReport,
    sections: &Sections<'_>,
    issues: &[Issue],
    threshold: Rating,
    crossing: usize,
) {
    if !sections.kept.is_empty() {
        println!("vulnerabilities:");
        for (f, v) in sections.kept {
            finding_text(f);
            if let Some(v) = v {
                println!("  {}", vex_text(v));
            }
        }
    }
    if !sections.suppressed.is_empty() {
        println!("suppressed by VEX (not counted against --fail-on):");
        for s in sections.suppressed {
            finding_text(s.finding);
            println!("  {}", vex_text(&s.verdict));
        }
    }
    if !sections.vex_refused.is_empty() {
        println!("VEX statements refused (not applied):");
        for r in sections.vex_refused {
            println!("  {r}");
        }
    }
    if let Some(licences) = sections.licences {
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
    if !issues.is_empty() {
        println!("not evaluated:");
        for i in issues {
            println!("  {}: {}", i.subject, i.reason);
        }
    }
    println!(
        "{} packages scanned: {} vulnerabilities ({crossing} at or above {}, or of unknown severity), {} suppressed by VEX, {} informational, {} not evaluated{}",
        report.packages,
        sections.kept.len(),
        threshold.as_str(),
        sections.suppressed.len(),
        report.informational.len(),
        issues.len(),
        sections
            .licences
            .map_or_else(String::new, |l| format!(", {} licence findings", l.len())),
    );
}
