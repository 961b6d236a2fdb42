//! `cairn vulns import SOURCE`: OSV records from a directory of `*.json` files, one
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use cairn_store::{
    AdvisoryPut, FindingKey, MatchOutcome, MatchScope, NewAdvisory, NewFinding, Store,
    StoredFinding,
};
use cairn_vuln::archive::{Entry, Limits, OsvArchive};
use cairn_vuln::{Advisory, AdvisoryIndex, FindingKind, Package, normalize_name};
use serde_json::{Value, json};

use super::sbom::{Skipped, Tree, error_chain};
use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

/// Records written per store transaction.
const BATCH: usize = 256;

#[derive(Debug, clap::Subcommand)]
pub enum VulnsCommand {
    /// Import OSV records from a directory of JSON files, one file, or a zip archive
    /// (as osv.dev publishes them per ecosystem), then re-match the stored SBOMs
    /// that contain the packages the new or changed records name.
    Import {
        /// A directory of OSV `*.json` files (searched recursively), one file, or a
        /// `.zip` of them.
        source: std::path::PathBuf,
    },
}

pub fn vulns(cli: &Cli, cmd: &VulnsCommand) -> Result<ExitCode, Failure> {
    match cmd {
        VulnsCommand::Import { source } => import(cli, source),
    }
}

/// What one import did.
#[derive(Debug, Default)]
struct Counts {
    files: usize,
    new: usize,
    updated: usize,
    unchanged: usize,
    withdrawn: usize,
    /// Zip entries that are no OSV record (directories, other files).
    ignored: usize,
    errors: Failures,
    /// What stored records cannot say, per record: an unknown range type, a
    /// version that does not parse, a distribution release cairn does not know.
    /// The record is stored; its other entries still match.
    problems: Failures,
    /// (ecosystem, normalised name) of every new or changed record.
    touched: BTreeSet<(String, String)>,
    /// Ids of every new or changed record.
    changed: BTreeSet<String>,
}

/// How many failures an import keeps with their reasons; the rest are counted.
pub const KEPT_FAILURES: usize = 100;

/// The entries an import could not use: every one counted, the first
/// [`KEPT_FAILURES`] kept with their reasons. Memory stays bounded however many
/// bad entries an archive holds (200,000 of them once took 3.7 GB).
#[derive(Debug, Default)]
struct Failures {
    count: usize,
    kept: Vec<Skipped>,
}

impl Failures {
    fn push(&mut self, failure: Skipped) {
        self.count += 1;
        if self.kept.len() < KEPT_FAILURES {
            self.kept.push(failure);
        }
    }

    fn len(&self) -> usize {
        self.count
    }

    fn iter(&self) -> std::slice::Iter<'_, Skipped> {
        self.kept.iter()
    }
}

/// The record limit both the parser and the store accept.
fn record_limit() -> usize {
    cairn_vuln::osv::MAX_RECORD_BYTES.min(cairn_store::MAX_ADVISORY_BYTES)
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
    let mut counts = Counts::default();
    let mut batch = Vec::with_capacity(BATCH);
    match &tree {
        Some(tree) => {
            for skipped in &tree.skipped {
                counts.errors.push(skipped.clone());
            }
            for rel in tree.files.iter().filter(|f| f.ends_with(".json")) {
                counts.files += 1;
                let record = tree
                    .read(rel, record_limit())
                    .and_then(|bytes| to_record(&bytes).map_err(|e| error_chain(&e)));
                take(&*store, rel, record, &mut batch, &mut counts)?;
            }
        }
        None => import_zip(&*store, source, &mut batch, &mut counts)?,
    }
    put(&*store, &mut batch, &mut counts)?;
    let rematched = rematch(
        &*store,
        MatchScope {
            packages: counts.touched.iter().cloned().collect(),
            advisories: counts.changed.iter().cloned().collect(),
            sbom: None,
        },
    )?;
    report(cli, source, &counts, store.advisory_count()?, &rematched);
    let imported = counts.new + counts.updated + counts.unchanged;
    if imported == 0 {
        return Err(Failure::user(anyhow!(
            "no OSV record could be imported from {}",
            source.display()
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds one read record to the batch (writing the batch when full), or lists why
/// it was skipped.
fn take(
    store: &dyn Store,
    path: &str,
    record: Result<(NewAdvisory, Vec<String>), String>,
    batch: &mut Vec<NewAdvisory>,
    counts: &mut Counts,
) -> Result<(), Failure> {
    match record {
        Ok((record, problems)) => {
            for reason in problems {
                counts.problems.push(Skipped {
                    path: format!("{path} ({})", record.id),
                    reason,
                });
            }
            counts.withdrawn += usize::from(record.withdrawn);
            batch.push(record);
            if batch.len() == BATCH {
                put(store, batch, counts)?;
            }
        }
        Err(reason) => counts.errors.push(Skipped {
            path: path.to_owned(),
            reason,
        }),
    }
    Ok(())
}

/// Reads a zip archive entry by entry under [`Limits::default`]; entries are
/// named `ARCHIVE!ENTRY` in errors.
fn import_zip(
    store: &dyn Store,
    source: &Path,
    batch: &mut Vec<NewAdvisory>,
    counts: &mut Counts,
) -> Result<(), Failure> {
    let limits = Limits {
        max_entry_bytes: record_limit() as u64,
        ..Limits::default()
    };
    let file = std::fs::File::open(source).map_err(|e| {
        Failure::user(anyhow::Error::new(e).context(format!("cannot read {}", source.display())))
    })?;
    let mut archive = OsvArchive::open(std::io::BufReader::new(file), limits)
        .map_err(|e| Failure::user(anyhow!("{}: {}", source.display(), error_chain(&e))))?;
    let shown = source.display().to_string();
    for index in 0..archive.len() {
        match archive.entry(index) {
            Ok(Entry::Record { name, bytes }) => {
                counts.files += 1;
                let record = to_record(&bytes).map_err(|e| error_chain(&e));
                take(store, &format!("{shown}!{name}"), record, batch, counts)?;
            }
            Ok(Entry::Refused { name, error }) => {
                counts.files += 1;
                counts.errors.push(Skipped {
                    path: format!("{shown}!{name}"),
                    reason: error_chain(&error),
                });
            }
            Ok(Entry::Ignored { .. }) => counts.ignored += 1,
            Err(e) => {
                counts.errors.push(Skipped {
                    path: shown.clone(),
                    reason: format!(
                        "{}; {} of {} entries not read",
                        error_chain(&e),
                        archive.len() - index,
                        archive.len()
                    ),
                });
                break;
            }
        }
    }
    Ok(())
}

fn put(
    store: &dyn Store,
    batch: &mut Vec<NewAdvisory>,
    counts: &mut Counts,
) -> Result<(), Failure> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = store.put_advisories(batch).map_err(|e| {
        let failure = Failure::from(e);
        let stored = counts.new + counts.updated + counts.unchanged;
        Failure {
            code: failure.code,
            error: failure.error.context(format!(
                "the import is PARTIAL: it stopped after storing {stored} record(s) ({} new, {} \
                 updated, {} unchanged) of the {} file(s) read so far; this batch of {} and \
                 everything after it were not stored, and findings were not re-matched; run the \
                 import again once the cause is fixed (stored records are kept, unchanged ones \
                 are skipped)",
                counts.new,
                counts.updated,
                counts.unchanged,
                counts.files,
                batch.len()
            )),
        }
    })?;
    for (outcome, record) in outcomes.into_iter().zip(batch.iter()) {
        match outcome {
            AdvisoryPut::New => counts.new += 1,
            AdvisoryPut::Updated => counts.updated += 1,
            AdvisoryPut::Unchanged => {
                counts.unchanged += 1;
                continue;
            }
        }
        counts.touched.extend(record.packages.iter().cloned());
        counts.changed.insert(record.id.clone());
    }
    batch.clear();
    Ok(())
}

/// A parsed OSV record as the store keeps it: the bytes as read, found by each
/// (ecosystem, normalised name) it names.
/// A record to store, and the problems of the parsed advisory (as text).
fn to_record(bytes: &[u8]) -> Result<(NewAdvisory, Vec<String>), cairn_vuln::Error> {
    let advisory = Advisory::parse(bytes)?;
    let problems = advisory.problems.iter().map(ToString::to_string).collect();
    let mut packages: Vec<(String, String)> = advisory
        .affected
        .iter()
        .map(|a| (a.ecosystem.clone(), normalize_name(&a.ecosystem, &a.name)))
        .collect();
    packages.sort();
    packages.dedup();
    Ok((
        NewAdvisory {
            modified: sortable_time(&advisory.modified),
            withdrawn: advisory.is_withdrawn(),
            id: advisory.id,
            packages,
            json: bytes.to_vec(),
        },
        problems,
    ))
}

/// A re-match of stored SBOMs, and what could not be evaluated in it.
#[derive(Debug)]
pub struct Rematched {
    pub scope: MatchScope,
    pub outcome: MatchOutcome,
    /// `subject: reason` for every component × advisory that could not be evaluated.
    pub not_evaluated: Vec<(String, String)>,
}

impl Rematched {
    /// How many artifacts the newly opened findings are in.
    pub fn artifacts(&self) -> usize {
        self.outcome
            .opened
            .iter()
            .map(|f| f.key.sbom_id)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Re-matches the stored components of `scope`'s packages (in its SBOM, or in
/// all) against every stored advisory naming those packages, and records the
/// findings: new ones are opened, gone ones fixed.
pub fn rematch(store: &dyn Store, scope: MatchScope) -> Result<Rematched, Failure> {
    let mut not_evaluated = Vec::new();
    let components = store.components_for_packages(&scope.packages, scope.sbom)?;
    let mut by_package: HashMap<Package, Vec<&cairn_store::StoredComponent>> = HashMap::new();
    for c in &components {
        by_package
            .entry(Package::new(&c.ecosystem, &c.name, &c.version))
            .or_default()
            .push(c);
    }
    let mut found = Vec::new();
    if !by_package.is_empty() {
        let mut index = AdvisoryIndex::new();
        for stored in store.advisories_for_packages(&scope.packages)? {
            match Advisory::parse(&stored.json) {
                Ok(advisory) => index.insert(advisory),
                Err(e) => not_evaluated.push((
                    format!("advisory {}", stored.id),
                    format!("the stored record does not parse: {}", error_chain(&e)),
                )),
            }
        }
        let packages: Vec<Package> = by_package.keys().cloned().collect();
        let report = index.scan(&packages);
        for i in &report.issues {
            not_evaluated.push((
                format!(
                    "{} {} {}",
                    i.package.ecosystem, i.package.name, i.package.version
                ),
                format!("advisory {}: {}", i.advisory_id, error_chain(&i.error)),
            ));
        }
        for f in report.vulnerabilities.iter().chain(&report.informational) {
            let key = Package::new(&f.ecosystem, &f.package, &f.installed_version);
            let kind = match &f.kind {
                FindingKind::Vulnerability => "vulnerability".to_owned(),
                FindingKind::Informational(i) => i.as_str().to_owned(),
            };
            for c in by_package.get(&key).into_iter().flatten() {
                found.push(NewFinding {
                    key: FindingKey {
                        advisory_id: f.advisory_id.clone(),
                        sbom_id: c.sbom_id,
                        ecosystem: c.ecosystem.clone(),
                        name: c.name.clone(),
                        version: c.version.clone(),
                    },
                    purl: c.purl.clone(),
                    kind: kind.clone(),
                    severity: f.severity.as_ref().map(|s| s.rating.as_str().to_owned()),
                });
            }
        }
    }
    let outcome = store.record_matches(&scope, &found, now_ms())?;
    Ok(Rematched {
        scope,
        outcome,
        not_evaluated,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3339 UTC (`…T12:00:00Z`, `…T12:00:00.5Z`) with exactly nine fractional
/// digits, so that byte order is time order. Any other form is kept as written.
fn sortable_time(t: &str) -> String {
    let Some(body) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) else {
        return t.to_owned();
    };
    let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
    let shape_ok = secs.len() == 19
        && secs.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T' || b == b't',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return t.to_owned();
    }
    let mut frac: String = frac.chars().take(9).collect();
    while frac.len() < 9 {
        frac.push('0');
    }
    format!("{}T{}.{frac}Z", &secs[..10], &secs[11..])
}

/// A finding as `--json` shows it.
pub use cairn_engine::wire::finding_json;

/// The re-match as `--json` shows it.
pub fn rematch_json(r: &Rematched) -> Value {
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
pub fn print_rematch(r: &Rematched) {
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

fn report(cli: &Cli, source: &Path, c: &Counts, total: u64, rematched: &Rematched) {
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

#[cfg(test)]
mod tests {
    use super::sortable_time;

    #[test]
    fn times_sort_as_bytes() {
        for (input, want) in [
            ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000000000Z"),
            ("2024-01-02T03:04:05.5Z", "2024-01-02T03:04:05.500000000Z"),
            (
                "2024-01-02T03:04:05.1234567891Z",
                "2024-01-02T03:04:05.123456789Z",
            ),
            ("2024-01-02t03:04:05z", "2024-01-02T03:04:05.000000000Z"),
            ("2024-01-02T03:04:05+01:00", "2024-01-02T03:04:05+01:00"),
            ("yesterday", "yesterday"),
        ] {
            assert_eq!(sortable_time(input), want, "{input}");
        }
        assert!(sortable_time("2024-01-02T03:04:05Z") < sortable_time("2024-01-02T03:04:05.5Z"));
    }
}
