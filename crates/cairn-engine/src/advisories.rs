//! Importing OSV advisories into the store, and re-matching the stored SBOMs
//! against what changed: the one import `cairn vulns import`, `cairn vulns sync`
//! and the server's advisory feed (`feed.rs`) share.
//!
//! Records come from a directory of `*.json` files, one file, or a zip archive
//! as osv.dev publishes them per ecosystem; a record replaces the kept one only
//! when it is newer (`modified`). Withdrawn records are kept but never matched.
//! A file (or zip entry) that cannot be read or parsed is counted with its
//! reason and the rest goes on. A zip is read entry by entry, never extracted
//! (`cairn_vuln::archive`: unsafe names, bombs, encrypted entries refused one
//! by one; an archive over the total or entry-count limit stops with what was
//! read so far imported and the rest named as not read).
//!
//! After the records are stored, only the components of the (ecosystem, name)
//! packages that the *new or changed* records name are re-matched, against
//! every stored advisory for those packages: new findings are opened, findings
//! that no longer match are marked fixed. Unchanged records re-match nothing.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek};

use cairn_model::error_chain;
use cairn_store::{
    AdvisoryPut, FindingKey, MatchOutcome, MatchScope, NewAdvisory, NewFinding, Store,
};
use cairn_vuln::archive::{Entry, Limits, OsvArchive};
use cairn_vuln::{Advisory, FindingKind, Package, normalize_name};

use crate::EngineError;
use crate::inventory::{Skipped, Tree};

/// Records written per store transaction.
const BATCH: usize = 256;

/// How many failures an import keeps with their reasons; the rest are counted.
pub const KEPT_FAILURES: usize = 100;

/// The entries an import could not use: every one counted, the first
/// [`KEPT_FAILURES`] kept with their reasons. Memory stays bounded however many
/// bad entries an archive holds (200,000 of them once took 3.7 GB).
#[derive(Debug, Default, Clone)]
pub struct Failures {
    count: usize,
    kept: Vec<Skipped>,
}

impl Failures {
    pub fn push(&mut self, failure: Skipped) {
        self.count += 1;
        if self.kept.len() < KEPT_FAILURES {
            self.kept.push(failure);
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Skipped> {
        self.kept.iter()
    }
}

/// What one import did.
#[derive(Debug, Default, Clone)]
pub struct ImportCounts {
    pub files: usize,
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub withdrawn: usize,
    /// Zip entries that are no OSV record (directories, other files).
    pub ignored: usize,
    pub errors: Failures,
    /// What stored records cannot say, per record: an unknown range type, a
    /// version that does not parse, a distribution release cairn does not know.
    /// The record is stored; its other entries still match.
    pub problems: Failures,
    /// (ecosystem, normalised name) of every new or changed record.
    pub touched: BTreeSet<(String, String)>,
    /// Ids of every new or changed record.
    pub changed: BTreeSet<String>,
}

impl ImportCounts {
    /// Records read and stored (new, updated or unchanged).
    pub fn imported(&self) -> usize {
        self.new + self.updated + self.unchanged
    }

    /// The re-match scope of what this import changed.
    pub fn scope(&self) -> MatchScope {
        MatchScope {
            packages: self.touched.iter().cloned().collect(),
            advisories: self.changed.iter().cloned().collect(),
            sbom: None,
        }
    }
}

/// The record limit both the parser and the store accept.
pub fn record_limit() -> usize {
    cairn_vuln::osv::MAX_RECORD_BYTES.min(cairn_store::MAX_ADVISORY_BYTES)
}

/// The archive limits an import reads a zip under.
pub fn zip_limits() -> Limits {
    Limits {
        max_entry_bytes: record_limit() as u64,
        ..Limits::default()
    }
}

/// An import in progress: records are batched into the store as they are read.
#[derive(Debug)]
pub struct Import<'s> {
    store: &'s dyn Store,
    batch: Vec<NewAdvisory>,
    pub counts: ImportCounts,
}

impl<'s> Import<'s> {
    pub fn new(store: &'s dyn Store) -> Self {
        Import {
            store,
            batch: Vec::with_capacity(BATCH),
            counts: ImportCounts::default(),
        }
    }

    /// Every `*.json` file of `tree` (what the walk skipped is counted).
    /// `progress` is told (files read, files in all) every 1000 files.
    pub fn tree(
        &mut self,
        tree: &Tree,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(), EngineError> {
        for skipped in &tree.skipped {
            self.counts.errors.push(skipped.clone());
        }
        let files: Vec<&String> = tree.files.iter().filter(|f| f.ends_with(".json")).collect();
        for (i, rel) in files.iter().enumerate() {
            if i % 1000 == 0 {
                progress(i, files.len());
            }
            self.counts.files += 1;
            let record = tree.read(rel, record_limit());
            self.take(rel, record)?;
        }
        Ok(())
    }

    /// Every entry of the zip archive read from `reader` under `limits`;
    /// entries are named `SHOWN!ENTRY` in errors. An archive that cannot be
    /// opened at all is [`EngineError::BadArchive`].
    pub fn zip<R: Read + Seek>(
        &mut self,
        reader: R,
        limits: Limits,
        shown: &str,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(), EngineError> {
        let mut archive =
            OsvArchive::open(reader, limits).map_err(|e| EngineError::BadArchive {
                source_name: shown.to_owned(),
                reason: error_chain(&e),
            })?;
        for index in 0..archive.len() {
            if index % 1000 == 0 {
                progress(index, archive.len());
            }
            match archive.entry(index) {
                Ok(Entry::Record { name, bytes }) => {
                    self.counts.files += 1;
                    self.take(&format!("{shown}!{name}"), Ok(bytes))?;
                }
                Ok(Entry::Refused { name, error }) => {
                    self.counts.files += 1;
                    self.counts.errors.push(Skipped {
                        path: format!("{shown}!{name}"),
                        reason: error_chain(&error),
                    });
                }
                Ok(Entry::Ignored { .. }) => self.counts.ignored += 1,
                Err(e) => {
                    self.counts.errors.push(Skipped {
                        path: shown.to_owned(),
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

    /// One record's bytes as read from `path` (or why it could not be read).
    pub fn take(&mut self, path: &str, bytes: Result<Vec<u8>, String>) -> Result<(), EngineError> {
        let record = bytes.and_then(|b| to_record(&b).map_err(|e| error_chain(&e)));
        match record {
            Ok((record, problems)) => {
                for reason in problems {
                    self.counts.problems.push(Skipped {
                        path: format!("{path} ({})", record.id),
                        reason,
                    });
                }
                self.counts.withdrawn += usize::from(record.withdrawn);
                self.batch.push(record);
                if self.batch.len() == BATCH {
                    self.put()?;
                }
            }
            Err(reason) => self.counts.errors.push(Skipped {
                path: path.to_owned(),
                reason,
            }),
        }
        Ok(())
    }

    /// Stores what is still batched; the counts of the whole import.
    pub fn finish(mut self) -> Result<ImportCounts, EngineError> {
        self.put()?;
        backfill_compiled(self.store)?;
        Ok(self.counts)
    }

    fn put(&mut self) -> Result<(), EngineError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let c = &self.counts;
        let outcomes = self.store.put_advisories(&self.batch).map_err(|source| {
            EngineError::ImportPartial(Box::new(crate::PartialImport {
                stored: c.imported(),
                new: c.new,
                updated: c.updated,
                unchanged: c.unchanged,
                files: c.files,
                batch: self.batch.len(),
                source,
            }))
        })?;
        for (outcome, record) in outcomes.into_iter().zip(self.batch.iter()) {
            match outcome {
                AdvisoryPut::New => self.counts.new += 1,
                AdvisoryPut::Updated => self.counts.updated += 1,
                AdvisoryPut::Unchanged => {
                    self.counts.unchanged += 1;
                    continue;
                }
            }
            self.counts.touched.extend(record.packages.iter().cloned());
            self.counts.changed.insert(record.id.clone());
        }
        self.batch.clear();
        Ok(())
    }
}

/// How many record ids [`backfill_compiled`] asks for at a time.
const BACKFILL_BATCH: usize = 500;
/// The most record bytes [`backfill_compiled`] holds before writing the forms
/// it compiled (a record is at most `MAX_ADVISORY_BYTES`, 16 MiB).
const BACKFILL_BYTES: usize = 32 << 20;

/// Fills in the compiled match forms index rows kept before schema v17 lack
/// (a scan matches such a row through its record, slowly): each stored
/// record with such a row is compiled from its stored JSON, as an import
/// would (read one at a time), and its forms written where its rows still
/// have none, in batches of at most [`BACKFILL_BYTES`] of records.
/// Run by the writing commands (every import: `cairn vulns import`, the
/// feed), never by a scan, which opens the store read-only. A record that
/// does not parse keeps its rows as they are (a scan reports it). Returns how
/// many rows were filled; nothing to do costs one indexed query.
pub fn backfill_compiled(store: &dyn Store) -> Result<usize, EngineError> {
    let mut after = String::new();
    let mut filled = 0;
    loop {
        let ids = store.advisories_without_compiled(&after, BACKFILL_BATCH)?;
        let Some(last) = ids.last() else {
            return Ok(filled);
        };
        after = last.clone();
        let (mut rows, mut held) = (Vec::new(), 0usize);
        for id in ids {
            let Some(stored) = store.advisory(&id)? else {
                continue; // removed meanwhile
            };
            let Ok(advisory) = Advisory::parse(&stored.json) else {
                continue;
            };
            for ((ecosystem, name), form) in cairn_vuln::compiled::compile(&advisory) {
                if let Some(form) = form {
                    held += stored.json.len() + form.len();
                    rows.push(cairn_store::CompiledRow {
                        ecosystem,
                        name,
                        id: id.clone(),
                        json: stored.json.clone(),
                        form,
                    });
                }
            }
            if held >= BACKFILL_BYTES {
                filled += store.put_compiled(&std::mem::take(&mut rows))?;
                held = 0;
            }
        }
        filled += store.put_compiled(&rows)?;
    }
}

/// A record to store, and the problems of the parsed advisory (as text): the
/// bytes as read, found by each (ecosystem, normalised name) it names.
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
    // A compiled match form per (ecosystem, name), in `packages`' order.
    let mut forms = cairn_vuln::compiled::compile(&advisory);
    let compiled = packages
        .iter()
        .map(|key| {
            forms
                .iter_mut()
                .find(|(k, _)| k == key)
                .and_then(|(_, f)| f.take())
        })
        .collect();
    Ok((
        NewAdvisory {
            modified: sortable_time(&advisory.modified),
            withdrawn: advisory.is_withdrawn(),
            id: advisory.id,
            packages,
            json: bytes.to_vec(),
            match_form: cairn_vuln::match_form(bytes),
            compiled,
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
pub fn rematch(store: &dyn Store, scope: MatchScope) -> Result<Rematched, EngineError> {
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
        let mut packages: Vec<Package> = by_package.keys().cloned().collect();
        packages.sort_by(|a, b| {
            (&a.ecosystem, &a.name, &a.version).cmp(&(&b.ecosystem, &b.name, &b.version))
        });
        let matched = crate::inventory::match_stored(store, &packages)?;
        for (id, e) in &matched.unparsed {
            not_evaluated.push((
                format!("advisory {id}"),
                format!("the stored record does not parse: {}", error_chain(e)),
            ));
        }
        let report = matched.report;
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
    let outcome = store.record_matches(&scope, &found, crate::host::now_ms())?;
    Ok(Rematched {
        scope,
        outcome,
        not_evaluated,
    })
}

/// Keeps `sbom` and matches it against the advisories stored now, so a
/// document stored after an import has its findings (and a digest deployed
/// later its exposures) without waiting for the next import that happens to
/// name its packages. Every place that stores an SBOM goes through here.
pub fn record_sbom(
    store: &dyn Store,
    sbom: &cairn_store::NewSbom,
) -> Result<(i64, Rematched), EngineError> {
    let id = store.add_sbom(sbom)?;
    let packages: BTreeSet<(String, String)> = sbom
        .components
        .iter()
        .map(|(ecosystem, name, _, _)| (ecosystem.clone(), name.clone()))
        .collect();
    let matched = rematch(
        store,
        MatchScope {
            packages: packages.into_iter().collect(),
            advisories: Vec::new(),
            sbom: Some(id),
        },
    )?;
    Ok((id, matched))
}

/// RFC 3339 UTC (`…T12:00:00Z`, `…T12:00:00.5Z`) with exactly nine fractional
/// digits, so that byte order is time order. Any other form is kept as written.
pub fn sortable_time(t: &str) -> String {
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
