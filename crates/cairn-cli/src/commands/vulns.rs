//! `cairn vulns import SOURCE` and `cairn vulns sync` (the organisation's
//! `[advisories] sources`, polled once, as `cairn up` does on its interval;
//! `cairn_engine::feed`). `import`: OSV records from a directory of `*.json` files, one
//! file, or a zip archive as osv.dev publishes them per ecosystem, into the store,
//! incrementally by `modified`: a record replaces the kept one only when it is
//! newer. Withdrawn records are kept but never matched. A file (or zip entry) that
//! cannot be read or parsed is listed (`skipped PATH: reason`) and the rest goes on.
//!
//! A zip is read entry by entry, never extracted: names with `..` or an absolute
//! path, entries over the size or compression-ratio limits (bombs) and encrypted
//! entries are refused one by one (`cairn_vuln::archive`); an archive over the
//! total or entry-count limit stops with what was read so far imported and the
//! rest named as not read.
//!
//! After the import, the stored SBOMs are re-matched incrementally: only the
//! components of the (ecosystem, name) packages that the new or changed records
//! name, against every stored advisory for those packages. New findings are
//! printed ("N new findings in M artifacts"); findings that no longer match are
//! marked fixed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use cairn_engine::advisories::{Import, ImportCounts, KEPT_FAILURES};
pub(super) use cairn_engine::advisories::{Rematched, rematch};
use cairn_engine::feed::{FeedLimits, Polled};
use cairn_store::StoredFinding;
use serde_json::{Value, json};

use super::sbom::Tree;
use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum VulnsCommand {
    /// Import OSV records from a directory of JSON files, one file, or a zip archive
    /// (as osv.dev publishes them per ecosystem), then re-match the stored SBOMs
    /// that contain the packages the new or changed records name.
    Import {
        /// A directory of OSV `*.json` files (searched recursively), one file, or a
        /// `.zip` of them.
        source: std::path::PathBuf,
    },
    /// Poll every `[advisories] sources` entry of org.toml once (as `cairn up`
    /// does on its interval): fetch what changed (conditional GET for URLs),
    /// import it and re-match only what changed.
    Sync,
}

pub(super) fn vulns(cli: &Cli, cmd: &VulnsCommand) -> Result<ExitCode, Failure> {
    match cmd {
        VulnsCommand::Import { source } => import(cli, source),
        VulnsCommand::Sync => sync(cli),
    }
}

/// Whether `source` is a zip archive: a file named `*.zip`, or starting with a
/// zip signature.
fn is_zip(source: &Path) -> bool {
    if !source.is_file() {
        return false;
    }
    if source
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        return true;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(source)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06")
}

fn import(cli: &Cli, source: &Path) -> Result<ExitCode, Failure> {
    let zip = is_zip(source);
    let tree = if zip { None } else { Some(Tree::walk(source)?) };
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    // Who asks (authorised for import-data by the CLI's guard), and an
    // `advisory-import` entry in the audit log before any record is stored.
    let actor = cairn_engine::access::cli_actor(
        &*store,
        cairn_policy::Action::ImportData,
        Some(&cairn_policy::Scope::organisation()),
    )?;
    {
        use cairn_engine::audit::{AdvisoryImport, AuditLog, Change, LOCK_WAIT};
        AuditLog::open_waiting(&data, LOCK_WAIT)?.record(&Change::AdvisoryImport(
            AdvisoryImport {
                source: source.display().to_string(),
                actor: actor.map(|a| a.name),
            },
        ))?;
    }
    let mut import = Import::new(&*store);
    let mut quiet = |_: usize, _: usize| {};
    match &tree {
        Some(tree) => import.tree(tree, &mut quiet)?,
        None => {
            let file = std::fs::File::open(source).map_err(|e| {
                Failure::user(
                    anyhow::Error::new(e).context(format!("cannot read {}", source.display())),
                )
            })?;
            import.zip(
                std::io::BufReader::new(file),
                cairn_engine::advisories::zip_limits(),
                &source.display().to_string(),
                &mut quiet,
            )?;
        }
    }
    let counts = import.finish()?;
    let rematched = rematch(&*store, counts.scope())?;
    report(cli, source, &counts, store.advisory_count()?, &rematched);
    if counts.imported() == 0 {
        return Err(Failure::user(anyhow!(
            "no OSV record could be imported from {}",
            source.display()
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// `cairn vulns sync`: every configured source once, with progress on stderr.
/// Exit 1 when a source failed (the others are still imported), 0 otherwise.
fn sync(cli: &Cli) -> Result<ExitCode, Failure> {
    let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
    if org.advisory_feed.sources.is_empty() {
        return Err(Failure::user(anyhow!(
            "org.toml names no advisory sources; add e.g. [advisories] sources = [\"https://…/all.zip\"]"
        )));
    }
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let actor = cairn_engine::access::cli_actor(
        &*store,
        cairn_policy::Action::ImportData,
        Some(&cairn_policy::Scope::organisation()),
    )?;
    let mut progress = |line: &str| eprintln!("cairn: {line}");
    let report = cairn_engine::feed::sync(
        &*store,
        &data,
        &org.advisory_feed,
        actor.as_ref().map(|a| a.name.as_str()),
        &FeedLimits::default(),
        &mut progress,
    )?;
    if cli.json {
        print_json(&sync_json(&report));
    } else {
        for s in &report.sources {
            match &s.result {
                Ok(Polled::Unchanged(why)) => println!("{}: unchanged ({why})", s.source),
                Ok(Polled::Imported {
                    digest,
                    log_index,
                    counts,
                }) => println!(
                    "{}: imported {} ({} new, {} updated, {} unchanged, {} errors; audit log entry {log_index}, {digest})",
                    s.source,
                    counts.files,
                    counts.new,
                    counts.updated,
                    counts.unchanged,
                    counts.errors.len()
                ),
                Err(why) => println!("{}: FAILED: {why}", s.source),
            }
        }
        print_rematch(&report.rematched);
    }
    if report.failed() > 0 {
        return Err(Failure::user(anyhow!(
            "{} of {} advisory sources failed",
            report.failed(),
            report.sources.len()
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// A feed poll as `--json` shows it.
pub(super) fn sync_json(report: &cairn_engine::feed::SyncReport) -> Value {
    let sources: Vec<Value> = report
        .sources
        .iter()
        .map(|s| match &s.result {
            Ok(Polled::Unchanged(why)) => {
                json!({ "source": s.source, "outcome": "unchanged", "reason": why })
            }
            Ok(Polled::Imported {
                digest,
                log_index,
                counts,
            }) => json!({
                "source": s.source,
                "outcome": "imported",
                "digest": digest,
                "log_index": log_index,
                "files": counts.files,
                "new": counts.new,
                "updated": counts.updated,
                "unchanged": counts.unchanged,
                "changed": counts.changed.iter().collect::<Vec<_>>(),
                "error_count": counts.errors.len(),
                "errors": counts.errors.iter().map(|e| json!({ "path": e.path, "reason": e.reason })).collect::<Vec<_>>(),
            }),
            Err(why) => json!({ "source": s.source, "outcome": "failed", "reason": why }),
        })
        .collect();
    json!({ "sources": sources, "rematch": rematch_json(&report.rematched) })
}

/// A finding as `--json` shows it.
pub(super) use cairn_engine::wire::finding_json;

/// The re-match as `--json` shows it.
pub(super) fn rematch_json(r: &Rematched) -> Value {
    json!({
        "packages": r.scope.packages.len(),
        "advisories": r.scope.advisories.len(),
        "components": r.outcome.components,
        "new_findings": r.outcome.opened.iter().map(finding_json).collect::<Vec<_>>(),
        "artifacts": r.artifacts(),
        "still_open": r.outcome.still_open,
        "fixed": r.outcome.fixed.iter().map(finding_json).collect::<Vec<_>>(),
        "not_evaluated": r.not_evaluated.iter().map(|(s, why)| json!({ "subject": s, "reason": why })).collect::<Vec<_>>(),
    })
}

/// The re-match as text: a summary line, then each new and fixed finding.
pub(super) fn print_rematch(r: &Rematched) {
    let o = &r.outcome;
    println!(
        "re-matched {} stored components of {} packages: {} new findings in {} artifacts, {} still open, {} fixed, {} not evaluated",
        o.components,
        r.scope.packages.len(),
        o.opened.len(),
        r.artifacts(),
        o.still_open,
        o.fixed.len(),
        r.not_evaluated.len(),
    );
    let mut by_artifact: BTreeMap<(i64, &str, &str), Vec<&StoredFinding>> = BTreeMap::new();
    for f in &o.opened {
        by_artifact
            .entry((f.key.sbom_id, &f.subject_name, &f.subject_digest))
            .or_default()
            .push(f);
    }
    for ((_, name, digest), findings) in by_artifact {
        println!("new in {name} ({digest}):");
        for f in findings {
            println!(
                "  {} {} {} {}  [{}{}]",
                f.key.advisory_id,
                f.key.ecosystem,
                f.key.name,
                f.key.version,
                f.kind,
                f.severity
                    .as_deref()
                    .map_or_else(String::new, |s| format!(", {s}")),
            );
        }
    }
    for f in &o.fixed {
        println!(
            "fixed (no longer matches): {} {} {} {} in {} ({})",
            f.key.advisory_id,
            f.key.ecosystem,
            f.key.name,
            f.key.version,
            f.subject_name,
            f.subject_digest
        );
    }
    for (subject, why) in &r.not_evaluated {
        println!("not evaluated: {subject}: {why}");
    }
}

fn report(cli: &Cli, source: &Path, c: &ImportCounts, total: u64, rematched: &Rematched) {
    if cli.json {
        let errors: Vec<_> = c
            .errors
            .iter()
            .map(|e| json!({ "path": e.path, "reason": e.reason }))
            .collect();
        print_json(&json!({
            "source": source.display().to_string(),
            "files": c.files,
            "new": c.new,
            "updated": c.updated,
            "unchanged": c.unchanged,
            "withdrawn": c.withdrawn,
            "ignored": c.ignored,
            "errors": errors,
            "error_count": c.errors.len(),
            "problems": c.problems.iter().map(|e| json!({ "path": e.path, "reason": e.reason })).collect::<Vec<_>>(),
            "problem_count": c.problems.len(),
            "stored": total,
            "rematch": rematch_json(rematched),
        }));
        return;
    }
    for e in c.errors.iter() {
        eprintln!("skipped {}: {}", e.path, e.reason);
    }
    if c.errors.len() > KEPT_FAILURES {
        eprintln!(
            "… and {} more skipped (the first {KEPT_FAILURES} are listed)",
            c.errors.len() - KEPT_FAILURES
        );
    }
    for e in c.problems.iter() {
        eprintln!("stored with a problem {}: {}", e.path, e.reason);
    }
    if c.problems.len() > KEPT_FAILURES {
        eprintln!(
            "… and {} more problems (the first {KEPT_FAILURES} are listed)",
            c.problems.len() - KEPT_FAILURES
        );
    }
    println!(
        "imported {} files from {}: {} new, {} updated, {} unchanged, {} withdrawn, {} errors, {} record problems ({total} advisories stored)",
        c.files,
        source.display(),
        c.new,
        c.updated,
        c.unchanged,
        c.withdrawn,
        c.errors.len(),
        c.problems.len(),
    );
    print_rematch(rematched);
}
