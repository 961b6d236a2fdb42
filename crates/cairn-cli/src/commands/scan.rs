//! `cairn scan PATH [--json] [--fail-on low|medium|high|critical]`: the components
//! of PATH (the walk `cairn sbom` does) matched against the advisories `cairn vulns
//! import` stored. Vulnerabilities are listed with their advisory, aliases, package,
//! installed and fixed versions and severity; informational advisories
//! (unmaintained, unsound, notice) apart, as cargo-audit does; what could not be
//! evaluated as issues. Exit 1 when a vulnerability at or above the threshold is
//! found — one without a CVSS severity counts as crossing any threshold (fail
//! closed) — and when nothing could be read or evaluated, or no advisories are
//! stored.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use cairn_sbom::Ecosystem;
use cairn_vuln::{Advisory, AdvisoryIndex, Finding, FindingKind, Package, Rating, normalize_name};
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
    let mut issues = Vec::new();
    let packages = packages(&collected, &mut issues);
    let keys: Vec<(String, String)> = packages
        .iter()
        .map(|p| (p.ecosystem.clone(), normalize_name(&p.ecosystem, &p.name)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut index = AdvisoryIndex::new();
    for stored in store.advisories_for_packages(&keys)? {
        match Advisory::parse(&stored.json) {
            Ok(advisory) => index.insert(advisory),
            Err(e) => issues.push(Issue {
                subject: format!("advisory {}", stored.id),
                reason: format!("the stored record does not parse: {}", error_chain(&e)),
            }),
        }
    }
    let report = index.scan(&packages);
    for i in &report.issues {
        issues.push(Issue {
            subject: format!(
                "{} {} {}",
                i.package.ecosystem, i.package.name, i.package.version
            ),
            reason: format!("advisory {}: {}", i.advisory_id, error_chain(&i.error)),
        });
    }
    let threshold = args.fail_on.rating();
    let crossing = report
        .vulnerabilities
        .iter()
        .filter(|f| f.severity.as_ref().is_none_or(|s| s.rating >= threshold))
        .count();
    if cli.json {
        print_json(&json!({
            "path": args.path.display().to_string(),
            "packages": report.packages,
            "vulnerabilities": report.vulnerabilities.iter().map(finding_json).collect::<Vec<_>>(),
            "informational": report.informational.iter().map(finding_json).collect::<Vec<_>>(),
            "issues": issues.iter().map(|i| json!({ "subject": i.subject, "reason": i.reason })).collect::<Vec<_>>(),
            "fail_on": threshold.as_str(),
            "failed": crossing > 0,
        }));
    } else {
        print_problems(&collected);
        print_text(&report, &issues, threshold, crossing);
    }
    if report.packages == 0 && !issues.is_empty() {
        return Err(Failure::user(anyhow!(
            "none of the components under {} could be evaluated",
            args.path.display()
        )));
    }
    Ok(if crossing > 0 {
        ExitCode::from(crate::exit::USER)
    } else {
        ExitCode::SUCCESS
    })
}

/// The components as OSV packages, each once. OS packages are listed as issues:
/// their advisories are per distribution release and source package, which cairn
/// does not match yet.
fn packages(collected: &Collected, issues: &mut Vec<Issue>) -> Vec<Package> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in &collected.report.components {
        if matches!(c.ecosystem, Ecosystem::Debian | Ecosystem::Alpine) {
            issues.push(Issue {
                subject: c.purl.clone(),
                reason: "OS packages are not matched yet (advisories are per release and source package)"
                    .to_owned(),
            });
            continue;
        }
        let p = Package::new(c.ecosystem.osv_name(), &c.full_name(), &c.version);
        if seen.insert((p.ecosystem.clone(), p.name.clone(), p.version.clone())) {
            out.push(p);
        }
    }
    for e in &collected.skipped {
        issues.push(Issue {
            subject: e.path.clone(),
            reason: format!("not read, its components were not evaluated: {}", e.reason),
        });
    }
    out
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
        "no fixed version".to_owned()
    } else {
        f.fixed_versions.join(", ")
    };
    println!(
        "  {} {} {}  fixed: {fixed}  {severity}",
        f.ecosystem, f.package, f.installed_version
    );
}

fn print_text(
    report: &cairn_vuln::ScanReport,
    issues: &[Issue],
    threshold: Rating,
    crossing: usize,
) {
    if !report.vulnerabilities.is_empty() {
        println!("vulnerabilities:");
        for f in &report.vulnerabilities {
            finding_text(f);
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
        "{} packages scanned: {} vulnerabilities ({crossing} at or above {}, or of unknown severity), {} informational, {} not evaluated",
        report.packages,
        report.vulnerabilities.len(),
        threshold.as_str(),
        report.informational.len(),
        issues.len(),
    );
}
