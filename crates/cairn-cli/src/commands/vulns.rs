//! `cairn vulns import SOURCE`: OSV records from a directory of `*.json` files (or
//! one file) into the store, incrementally by `modified`: a record replaces the
//! kept one only when it is newer. Withdrawn records are kept but never matched.
//! A file that cannot be read or parsed is listed (`skipped PATH: reason`) and the
//! rest goes on. Zip archives are not read yet: unpack one first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use cairn_store::{AdvisoryPut, NewAdvisory, Store};
use cairn_vuln::{Advisory, normalize_name};
use serde_json::json;

use super::sbom::{Skipped, Tree, error_chain};
use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

/// Records written per store transaction.
const BATCH: usize = 256;

#[derive(Debug, clap::Subcommand)]
pub enum VulnsCommand {
    /// Import OSV records from a directory of JSON files (or one file).
    Import {
        /// A directory of OSV `*.json` files (searched recursively), or one file.
        source: PathBuf,
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
    errors: Vec<Skipped>,
}

fn import(cli: &Cli, source: &Path) -> Result<ExitCode, Failure> {
    if source
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        return Err(Failure::user(anyhow!(
            "{}: zip archives are not read yet; unpack it and import the directory",
            source.display()
        )));
    }
    let tree = Tree::walk(source)?;
    let store = open_store(&data_dir(cli)?)?;
    let mut counts = Counts {
        errors: tree.skipped.clone(),
        ..Counts::default()
    };
    let limit = cairn_vuln::osv::MAX_RECORD_BYTES.min(cairn_store::MAX_ADVISORY_BYTES);
    let mut batch = Vec::with_capacity(BATCH);
    for rel in tree.files.iter().filter(|f| f.ends_with(".json")) {
        counts.files += 1;
        let record = tree
            .read(rel, limit)
            .and_then(|bytes| to_record(&bytes).map_err(|e| error_chain(&e)));
        match record {
            Ok(record) => {
                counts.withdrawn += usize::from(record.withdrawn);
                batch.push(record);
                if batch.len() == BATCH {
                    put(&*store, &mut batch, &mut counts)?;
                }
            }
            Err(reason) => counts.errors.push(Skipped {
                path: rel.clone(),
                reason,
            }),
        }
    }
    put(&*store, &mut batch, &mut counts)?;
    report(cli, source, &counts, store.advisory_count()?);
    let imported = counts.new + counts.updated + counts.unchanged;
    if imported == 0 {
        return Err(Failure::user(anyhow!(
            "no OSV record could be imported from {}",
            source.display()
        )));
    }
    Ok(ExitCode::SUCCESS)
}

fn put(
    store: &dyn Store,
    batch: &mut Vec<NewAdvisory>,
    counts: &mut Counts,
) -> Result<(), Failure> {
    if batch.is_empty() {
        return Ok(());
    }
    for outcome in store.put_advisories(batch)? {
        match outcome {
            AdvisoryPut::New => counts.new += 1,
            AdvisoryPut::Updated => counts.updated += 1,
            AdvisoryPut::Unchanged => counts.unchanged += 1,
        }
    }
    batch.clear();
    Ok(())
}

/// A parsed OSV record as the store keeps it: the bytes as read, found by each
/// (ecosystem, normalised name) it names.
fn to_record(bytes: &[u8]) -> Result<NewAdvisory, cairn_vuln::Error> {
    let advisory = Advisory::parse(bytes)?;
    let mut packages: Vec<(String, String)> = advisory
        .affected
        .iter()
        .map(|a| (a.ecosystem.clone(), normalize_name(&a.ecosystem, &a.name)))
        .collect();
    packages.sort();
    packages.dedup();
    Ok(NewAdvisory {
        modified: sortable_time(&advisory.modified),
        withdrawn: advisory.is_withdrawn(),
        id: advisory.id,
        packages,
        json: bytes.to_vec(),
    })
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

fn report(cli: &Cli, source: &Path, c: &Counts, total: u64) {
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
            "errors": errors,
            "stored": total,
        }));
        return;
    }
    for e in &c.errors {
        eprintln!("skipped {}: {}", e.path, e.reason);
    }
    println!(
        "imported {} files from {}: {} new, {} updated, {} unchanged, {} withdrawn, {} errors ({total} advisories stored)",
        c.files,
        source.display(),
        c.new,
        c.updated,
        c.unchanged,
        c.withdrawn,
        c.errors.len(),
    );
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
