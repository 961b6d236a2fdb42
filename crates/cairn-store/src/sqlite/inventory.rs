//! [`InventoryStore`] on SQLite: OSV advisories and their package index, stored
//! SBOMs and their components, findings and the log of re-matches.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, count, sql_limit};
use crate::{
    AdvisoryPut, FindingFilter, FindingKey, FindingState, InventoryStore, MatchOutcome, MatchScope,
    NewAdvisory, NewFinding, NewSbom, PackageHit, RematchRecord, SbomSummary, StoreError,
    StoredAdvisory, StoredComponent, StoredFinding, StoredMatcher,
};

const FINDING_COLUMNS: &str = "f.advisory_id, f.sbom_id, f.ecosystem, f.name, f.version, f.purl, \
     f.kind, f.severity, f.state, f.first_seen_ms, f.last_seen_ms, f.fixed_at_ms, \
     s.subject_name, s.subject_digest, s.workload, s.environment";

fn finding_key_from_row(r: &Row<'_>) -> rusqlite::Result<FindingKey> {
    Ok(FindingKey {
        advisory_id: r.get(0)?,
        sbom_id: r.get(1)?,
        ecosystem: r.get(2)?,
        name: r.get(3)?,
        version: r.get(4)?,
    })
}

fn parse_state(name: &str) -> Result<FindingState, StoreError> {
    FindingState::parse(name).ok_or_else(|| StoreError::Corrupt {
        what: "finding state",
        value: name.to_owned(),
    })
}

/// A finding row as stored, before its state is checked.
struct RawFinding {
    key: FindingKey,
    purl: String,
    kind: String,
    severity: Option<String>,
    state: String,
    first_seen_ms: i64,
    last_seen_ms: i64,
    fixed_at_ms: Option<i64>,
    subject_name: String,
    subject_digest: String,
    workload: Option<String>,
    environment: Option<String>,
}

impl RawFinding {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawFinding {
            key: finding_key_from_row(r)?,
            purl: r.get(5)?,
            kind: r.get(6)?,
            severity: r.get(7)?,
            state: r.get(8)?,
            first_seen_ms: r.get(9)?,
            last_seen_ms: r.get(10)?,
            fixed_at_ms: r.get(11)?,
            subject_name: r.get(12)?,
            subject_digest: r.get(13)?,
            workload: r.get(14)?,
            environment: r.get(15)?,
        })
    }

    fn into_finding(self) -> Result<StoredFinding, StoreError> {
        Ok(StoredFinding {
            state: parse_state(&self.state)?,
            key: self.key,
            purl: self.purl,
            kind: self.kind,
            severity: self.severity,
            first_seen_ms: self.first_seen_ms,
            last_seen_ms: self.last_seen_ms,
            fixed_at_ms: self.fixed_at_ms,
            subject_name: self.subject_name,
            subject_digest: self.subject_digest,
            workload: self.workload,
            environment: self.environment,
        })
    }
}

/// The open and suppressed findings a re-match's scope covers (by package, and
/// by advisory), whole, before it is recorded: a set-based read, one statement
/// per package and per advisory (not one per finding).
fn covered_findings(
    tx: &Connection,
    scope: &MatchScope,
    what: &'static str,
) -> Result<std::collections::BTreeMap<FindingKey, StoredFinding>, StoreError> {
    let mut covered = std::collections::BTreeMap::new();
    let mut by_package = tx
        .prepare_cached(&format!(
            "SELECT {FINDING_COLUMNS} FROM findings f JOIN sboms s ON s.id = f.sbom_id \
             WHERE f.ecosystem = ?1 AND f.name = ?2 AND (?3 IS NULL OR f.sbom_id = ?3) \
             AND f.state != 'fixed'"
        ))
        .map_err(StoreError::sqlite(what))?;
    for (ecosystem, name) in &scope.packages {
        let rows = by_package
            .query_map(params![ecosystem, name, scope.sbom], RawFinding::from_row)
            .map_err(StoreError::sqlite(what))?;
        for row in rows {
            let f = row.map_err(StoreError::sqlite(what))?.into_finding()?;
            covered.insert(f.key.clone(), f);
        }
    }
    let mut by_advisory = tx
        .prepare_cached(&format!(
            "SELECT {FINDING_COLUMNS} FROM findings f JOIN sboms s ON s.id = f.sbom_id \
             WHERE f.advisory_id = ?1 AND (?2 IS NULL OR f.sbom_id = ?2) \
             AND f.state != 'fixed'"
        ))
        .map_err(StoreError::sqlite(what))?;
    for id in &scope.advisories {
        let rows = by_advisory
            .query_map(params![id, scope.sbom], RawFinding::from_row)
            .map_err(StoreError::sqlite(what))?;
        for row in rows {
            let f = row.map_err(StoreError::sqlite(what))?.into_finding()?;
            covered.insert(f.key.clone(), f);
        }
    }
    Ok(covered)
}

/// Rows per INSERT of new findings (9 parameters each, far below SQLite's
/// limit of 32,766).
const INSERT_ROWS: usize = 64;

/// Inserts `rows` as open findings seen first at `now_ms`, INSERT_ROWS per
/// statement.
fn insert_findings(
    tx: &Connection,
    rows: &[&NewFinding],
    now_ms: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    let statement = |n: usize| {
        let values: Vec<String> = (0..n)
            .map(|i| {
                let p = i * 9;
                format!(
                    "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, 'open', ?{}, ?{}, NULL)",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8,
                    p + 9,
                    p + 9
                )
            })
            .collect();
        format!(
            "INSERT INTO findings (advisory_id, sbom_id, ecosystem, name, version, purl, kind, \
             severity, state, first_seen_ms, last_seen_ms, fixed_at_ms) VALUES {}",
            values.join(", ")
        )
    };
    for chunk in rows.chunks(INSERT_ROWS) {
        let mut stmt = tx
            .prepare_cached(&statement(chunk.len()))
            .map_err(StoreError::sqlite(what))?;
        let mut i = 1;
        for f in chunk {
            let k = &f.key;
            let values: [&dyn rusqlite::ToSql; 9] = [
                &k.advisory_id,
                &k.sbom_id,
                &k.ecosystem,
                &k.name,
                &k.version,
                &f.purl,
                &f.kind,
                &f.severity,
                &now_ms,
            ];
            for v in values {
                stmt.raw_bind_parameter(i, v)
                    .map_err(StoreError::sqlite(what))?;
                i += 1;
            }
        }
        stmt.raw_execute().map_err(StoreError::sqlite(what))?;
    }
    Ok(())
}

/// The subject of each SBOM a re-match opens findings in, read once per SBOM,
/// so an opened finding is returned as written without reading it back.
#[derive(Default)]
struct SbomSubjects(
    std::collections::HashMap<i64, (String, String, Option<String>, Option<String>)>,
);

impl SbomSubjects {
    /// The finding `f` as just written open (inserted, or reopened keeping
    /// `first_seen_ms`).
    fn opened(
        &mut self,
        tx: &Connection,
        f: &NewFinding,
        first_seen_ms: i64,
        now_ms: i64,
        what: &'static str,
    ) -> Result<StoredFinding, StoreError> {
        let sbom_id = f.key.sbom_id;
        let subject = match self.0.entry(sbom_id) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(
                tx.prepare_cached(
                    "SELECT subject_name, subject_digest, workload, environment FROM sboms \
                     WHERE id = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.query_row([sbom_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                })
                .map_err(StoreError::sqlite(what))?,
            ),
        };
        let (subject_name, subject_digest, workload, environment) = subject.clone();
        Ok(StoredFinding {
            key: f.key.clone(),
            purl: f.purl.clone(),
            kind: f.kind.clone(),
            severity: f.severity.clone(),
            state: FindingState::Open,
            first_seen_ms,
            last_seen_ms: now_ms,
            fixed_at_ms: None,
            subject_name,
            subject_digest,
            workload,
            environment,
        })
    }
}

/// The id of a stored SBOM equal to `s` (see [`InventoryStore::add_sboms`]), if
/// there is one. The digest's index narrows the candidates to the SBOMs about
/// the same artifact; their components are compared as sorted lists.
fn stored_sbom(
    tx: &Connection,
    s: &NewSbom,
    what: &'static str,
) -> Result<Option<i64>, StoreError> {
    let candidates: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM sboms WHERE subject_digest = ?1 AND subject_name = ?2 \
             AND workload IS ?3 AND environment IS ?4 AND format = ?5 AND document = ?6 \
             ORDER BY id",
        )
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    s.subject_digest,
                    s.subject_name,
                    s.workload,
                    s.environment,
                    s.format,
                    s.document
                ],
                |r| r.get(0),
            )?
            .collect()
        })
        .map_err(StoreError::sqlite(what))?;
    if candidates.is_empty() {
        return Ok(None);
    }
    let mut wanted: Vec<(&str, &str, &str, &str)> = s
        .components
        .iter()
        .map(|(e, n, v, p)| (e.as_str(), n.as_str(), v.as_str(), p.as_str()))
        .collect();
    wanted.sort_unstable();
    let mut stmt = tx
        .prepare_cached(
            "SELECT ecosystem, name, version, purl FROM sbom_components WHERE sbom_id = ?1",
        )
        .map_err(StoreError::sqlite(what))?;
    for id in candidates {
        let mut kept: Vec<(String, String, String, String)> = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(Iterator::collect)
            .map_err(StoreError::sqlite(what))?;
        kept.sort_unstable();
        let same = kept.len() == wanted.len()
            && kept
                .iter()
                .zip(&wanted)
                .all(|((e, n, v, p), w)| (e.as_str(), n.as_str(), v.as_str(), p.as_str()) == *w);
        if same {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

fn advisory_by_id(
    tx: &Connection,
    id: &str,
    what: &'static str,
) -> Result<Option<StoredAdvisory>, StoreError> {
    tx.prepare_cached("SELECT id, modified, withdrawn, json FROM advisories WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([id], |r| {
                Ok(StoredAdvisory {
                    id: r.get(0)?,
                    modified: r.get(1)?,
                    withdrawn: r.get(2)?,
                    json: r.get(3)?,
                })
            })
            .optional()
        })
        .map_err(StoreError::sqlite(what))
}

impl InventoryStore for SqliteStore {
    fn put_advisories(&self, advisories: &[NewAdvisory]) -> Result<Vec<AdvisoryPut>, StoreError> {
        let what = "keeping advisories";
        crate::inventory::check_advisory_sizes(advisories)?;
        self.write(what, |tx| {
            let mut out = Vec::with_capacity(advisories.len());
            for a in advisories {
                let stored: Option<String> = tx
                    .prepare_cached("SELECT modified FROM advisories WHERE id = ?1")
                    .and_then(|mut stmt| stmt.query_row([&a.id], |r| r.get(0)).optional())
                    .map_err(StoreError::sqlite(what))?;
                let outcome = match stored {
                    None => AdvisoryPut::New,
                    Some(old) if a.modified > old => AdvisoryPut::Updated,
                    Some(_) => {
                        // The same record again: its form is refreshed when this
                        // binary cuts it differently (forms kept by an older one),
                        // never from other bytes under the same `modified`.
                        tx.prepare_cached(
                            "UPDATE advisories SET match_form = ?2 \
                             WHERE id = ?1 AND json = ?3 AND match_form IS NOT ?2",
                        )
                        .and_then(|mut stmt| stmt.execute(params![a.id, a.match_form, a.json]))
                        .map_err(StoreError::sqlite(what))?;
                        // Its compiled forms likewise (rows kept before schema
                        // v17 have none: this fills them in).
                        let mut stmt = tx
                            .prepare_cached(
                                "UPDATE advisory_packages SET compiled = ?4 \
                                 WHERE id = ?1 AND ecosystem = ?2 AND name = ?3 \
                                 AND compiled IS NOT ?4 \
                                 AND EXISTS (SELECT 1 FROM advisories WHERE id = ?1 AND json = ?5)",
                            )
                            .map_err(StoreError::sqlite(what))?;
                        for (i, (ecosystem, name)) in a.packages.iter().enumerate() {
                            let compiled = a.compiled.get(i).cloned().flatten();
                            stmt.execute(params![a.id, ecosystem, name, compiled, a.json])
                                .map_err(StoreError::sqlite(what))?;
                        }
                        out.push(AdvisoryPut::Unchanged);
                        continue;
                    }
                };
                tx.prepare_cached(
                    "INSERT INTO advisories (id, modified, withdrawn, json, match_form) \
                     VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, \
                     withdrawn = excluded.withdrawn, json = excluded.json, \
                     match_form = excluded.match_form",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![a.id, a.modified, a.withdrawn, a.json, a.match_form])
                })
                .map_err(StoreError::sqlite(what))?;
                tx.prepare_cached("DELETE FROM advisory_packages WHERE id = ?1")
                    .and_then(|mut stmt| stmt.execute([&a.id]))
                    .map_err(StoreError::sqlite(what))?;
                if !a.withdrawn {
                    let mut stmt = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO advisory_packages \
                             (ecosystem, name, id, compiled, modified) VALUES (?1, ?2, ?3, ?4, ?5)",
                        )
                        .map_err(StoreError::sqlite(what))?;
                    for (i, (ecosystem, name)) in a.packages.iter().enumerate() {
                        let compiled = a.compiled.get(i).cloned().flatten();
                        stmt.execute(params![ecosystem, name, a.id, compiled, a.modified])
                            .map_err(StoreError::sqlite(what))?;
                    }
                }
                out.push(outcome);
            }
            Ok(out)
        })
    }

    fn advisories_for_packages(
        &self,
        packages: &[(String, String)],
    ) -> Result<Vec<StoredAdvisory>, StoreError> {
        let what = "reading advisories by package";
        self.read(what, |tx| {
            // One indexed join per package: the records (their match forms)
            // come with the index rows, deduplicated by id.
            let mut out = std::collections::BTreeMap::new();
            let mut stmt = tx
                .prepare_cached(
                    "SELECT a.id, a.modified, a.withdrawn, coalesce(a.match_form, a.json) \
                     FROM advisory_packages p JOIN advisories a ON a.id = p.id \
                     WHERE p.ecosystem = ?1 AND p.name = ?2",
                )
                .map_err(StoreError::sqlite(what))?;
            for (ecosystem, name) in packages {
                let found = stmt
                    .query_map(params![ecosystem, name], |r| {
                        Ok(StoredAdvisory {
                            id: r.get(0)?,
                            modified: r.get(1)?,
                            withdrawn: r.get(2)?,
                            json: r.get(3)?,
                        })
                    })
                    .map_err(StoreError::sqlite(what))?;
                for a in found {
                    let a = a.map_err(StoreError::sqlite(what))?;
                    if !out.contains_key(&a.id) {
                        out.insert(a.id.clone(), a);
                    }
                }
            }
            Ok(out.into_values().collect())
        })
    }

    fn advisory_matchers(
        &self,
        packages: &[(String, String)],
    ) -> Result<Vec<StoredMatcher>, StoreError> {
        let what = "reading compiled match forms by package";
        let mut sorted: Vec<&(String, String)> = packages.iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        self.read(what, |tx| {
            // A merge of the sorted requests with the index's primary key:
            // one statement reads the rows from a requested name on, in key
            // order, and serves every requested name it passes; after
            // `MAX_SKIPPED` rows in a row of names nobody asked for, it seeks
            // again at the next requested name instead. Many requests of a
            // small ecosystem read it in one pass; few of a large one seek
            // once each, with at most `MAX_SKIPPED` rows read in vain per seek.
            // The rows carry the record's `modified` (the record is looked
            // up only for a row without one, which the migration to v17
            // leaves none of).
            const MAX_SKIPPED: usize = 8;
            let mut stmt = tx
                .prepare_cached(
                    "SELECT p.name, p.id, coalesce(p.modified, \
                       (SELECT a.modified FROM advisories a WHERE a.id = p.id)), p.compiled \
                     FROM advisory_packages p \
                     WHERE p.ecosystem = ?1 AND p.name >= ?2 ORDER BY p.name, p.id",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut out = Vec::new();
            let mut i = 0;
            while let Some(&(ecosystem, first)) = sorted.get(i) {
                let mut rows = stmt
                    .query(params![ecosystem, first])
                    .map_err(StoreError::sqlite(what))?;
                let mut skipped = 0;
                // Whether the scan stopped early to seek again at `sorted[i]`.
                let mut seek = false;
                'rows: while let Some(r) = rows.next().map_err(StoreError::sqlite(what))? {
                    let name = r
                        .get_ref(0)
                        .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
                        .map_err(StoreError::sqlite(what))?;
                    loop {
                        let (_, wanted) = sorted[i];
                        match name.cmp(wanted.as_str()) {
                            std::cmp::Ordering::Less => {
                                skipped += 1;
                                if skipped > MAX_SKIPPED {
                                    seek = true;
                                    break 'rows;
                                }
                                continue 'rows;
                            }
                            std::cmp::Ordering::Equal => {
                                skipped = 0;
                                out.push(StoredMatcher {
                                    ecosystem: ecosystem.clone(),
                                    name: wanted.clone(),
                                    id: r.get(1).map_err(StoreError::sqlite(what))?,
                                    modified: r.get(2).map_err(StoreError::sqlite(what))?,
                                    compiled: r.get(3).map_err(StoreError::sqlite(what))?,
                                });
                                continue 'rows;
                            }
                            std::cmp::Ordering::Greater => {
                                // `wanted` has no (more) rows.
                                i += 1;
                                if sorted.get(i).is_none_or(|(e, _)| e != ecosystem) {
                                    break 'rows;
                                }
                            }
                        }
                    }
                }
                if !seek {
                    // The ecosystem's rows ended (or the next request is of
                    // another ecosystem): the rest of its requests have none.
                    while sorted.get(i).is_some_and(|(e, _)| e == ecosystem) {
                        i += 1;
                    }
                }
            }
            Ok(out)
        })
    }

    fn advisories_without_compiled(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let what = "reading advisories without compiled forms";
        self.read(what, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT DISTINCT id FROM advisory_packages \
                     WHERE compiled IS NULL AND id > ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(StoreError::sqlite(what))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map(params![after, limit], |r| r.get(0))
                .map_err(StoreError::sqlite(what))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))
        })
    }

    fn put_compiled(&self, rows: &[crate::inventory::CompiledRow]) -> Result<usize, StoreError> {
        let what = "filling in compiled match forms";
        self.write(what, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE advisory_packages SET compiled = ?4 \
                     WHERE ecosystem = ?1 AND name = ?2 AND id = ?3 AND compiled IS NULL \
                     AND EXISTS (SELECT 1 FROM advisories WHERE id = ?3 AND json = ?5)",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut filled = 0;
            for r in rows {
                filled += stmt
                    .execute(params![r.ecosystem, r.name, r.id, r.form, r.json])
                    .map_err(StoreError::sqlite(what))?;
            }
            Ok(filled)
        })
    }

    fn advisory_forms(&self, ids: &[String]) -> Result<Vec<StoredAdvisory>, StoreError> {
        let what = "reading advisories by id";
        self.read(what, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, modified, withdrawn, coalesce(match_form, json) \
                     FROM advisories WHERE id = ?1",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut sorted: Vec<&String> = ids.iter().collect();
            sorted.sort();
            sorted.dedup();
            let mut out = Vec::with_capacity(sorted.len());
            for id in sorted {
                let found = stmt
                    .query_row([id], |r| {
                        Ok(StoredAdvisory {
                            id: r.get(0)?,
                            modified: r.get(1)?,
                            withdrawn: r.get(2)?,
                            json: r.get(3)?,
                        })
                    })
                    .optional()
                    .map_err(StoreError::sqlite(what))?;
                out.extend(found);
            }
            Ok(out)
        })
    }

    fn advisory(&self, id: &str) -> Result<Option<StoredAdvisory>, StoreError> {
        let what = "reading an advisory";
        self.read(what, |tx| advisory_by_id(tx, id, what))
    }

    fn advisory_count(&self) -> Result<u64, StoreError> {
        let what = "counting advisories";
        self.read(what, |tx| {
            let n: i64 = super::cached_row(tx, "SELECT count(*) FROM advisories", [], |r| r.get(0))
                .map_err(StoreError::sqlite(what))?;
            count("advisory count", n)
        })
    }

    fn advisory_versions(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        let what = "listing advisory versions";
        self.read(what, |tx| {
            let mut stmt = tx
                .prepare_cached("SELECT id, modified, withdrawn FROM advisories ORDER BY id")
                .map_err(StoreError::sqlite(what))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))
                .map_err(StoreError::sqlite(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))
        })
    }

    fn add_sboms(&self, sboms: &[NewSbom]) -> Result<Vec<i64>, StoreError> {
        let what = "keeping SBOMs";
        for sbom in sboms {
            if sbom.document.len() > crate::MAX_SBOM_BYTES {
                return Err(StoreError::TooLarge {
                    what: "an SBOM document",
                    size: sbom.document.len(),
                    limit: crate::MAX_SBOM_BYTES,
                });
            }
            if sbom.components.len() > crate::MAX_SBOM_COMPONENTS {
                return Err(StoreError::TooLarge {
                    what: "an SBOM's component list (in components)",
                    size: sbom.components.len(),
                    limit: crate::MAX_SBOM_COMPONENTS,
                });
            }
        }
        self.write(what, |tx| {
            let mut ids = Vec::with_capacity(sboms.len());
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO sboms (subject_name, subject_digest, workload, environment, \
                     created_at_ms, format, document) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut component = tx
                .prepare_cached(
                    "INSERT INTO sbom_components (sbom_id, ecosystem, name, version, purl) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(StoreError::sqlite(what))?;
            for s in sboms {
                if let Some(id) = stored_sbom(tx, s, what)? {
                    ids.push(id);
                    continue;
                }
                add.execute(params![
                    s.subject_name,
                    s.subject_digest,
                    s.workload,
                    s.environment,
                    s.created_at_ms,
                    s.format,
                    s.document
                ])
                .map_err(StoreError::sqlite(what))?;
                let id = tx.last_insert_rowid();
                for (ecosystem, name, version, purl) in &s.components {
                    component
                        .execute(params![id, ecosystem, name, version, purl])
                        .map_err(StoreError::sqlite(what))?;
                }
                ids.push(id);
            }
            Ok(ids)
        })
    }

    fn sboms_about(&self, subject_digest: &str) -> Result<Vec<SbomSummary>, StoreError> {
        let what = "listing an artifact's SBOMs";
        self.read(what, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, subject_name, subject_digest, workload, environment, \
                     created_at_ms, format FROM sboms WHERE subject_digest = ?1 ORDER BY id",
                )
                .map_err(StoreError::sqlite(what))?;
            stmt.query_map([subject_digest], |r| {
                Ok(SbomSummary {
                    id: r.get(0)?,
                    subject_name: r.get(1)?,
                    subject_digest: r.get(2)?,
                    workload: r.get(3)?,
                    environment: r.get(4)?,
                    created_at_ms: r.get(5)?,
                    format: r.get(6)?,
                })
            })
            .map_err(StoreError::sqlite(what))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::sqlite(what))
        })
    }

    fn where_package(
        &self,
        ecosystem: Option<&str>,
        name: &str,
    ) -> Result<Vec<PackageHit>, StoreError> {
        let what = "finding a package in stored SBOMs";
        self.read(what, |tx| {
            // Rows come in the index's order (name, sbom_id, ecosystem, version,
            // purl): sorted as promised, duplicates adjacent.
            let mut stmt = tx
                .prepare_cached(
                    "SELECT c.sbom_id, s.subject_name, s.subject_digest, s.workload, \
                     s.environment, c.ecosystem, c.version, c.purl \
                     FROM sbom_components c INDEXED BY sbom_components_by_name_sbom \
                     JOIN sboms s ON s.id = c.sbom_id \
                     WHERE c.name = ?2 AND (?1 IS NULL OR c.ecosystem = ?1) \
                     ORDER BY c.sbom_id, c.ecosystem, c.version, c.purl",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut rows = stmt
                .query(params![ecosystem, name])
                .map_err(StoreError::sqlite(what))?;
            let mut out: Vec<PackageHit> = Vec::new();
            while let Some(r) = rows.next().map_err(StoreError::sqlite(what))? {
                let sbom_id: i64 = r.get(0).map_err(StoreError::sqlite(what))?;
                let same = |h: &PackageHit| -> rusqlite::Result<bool> {
                    Ok(h.sbom_id == sbom_id
                        && h.ecosystem == r.get_ref(5)?.as_str()?
                        && h.version == r.get_ref(6)?.as_str()?
                        && h.purl == r.get_ref(7)?.as_str()?)
                };
                if let Some(last) = out.last()
                    && same(last).map_err(StoreError::sqlite(what))?
                {
                    continue;
                }
                let hit = (|| -> rusqlite::Result<PackageHit> {
                    Ok(PackageHit {
                        sbom_id,
                        subject_name: r.get(1)?,
                        subject_digest: r.get(2)?,
                        workload: r.get(3)?,
                        environment: r.get(4)?,
                        ecosystem: r.get(5)?,
                        name: name.to_owned(),
                        version: r.get(6)?,
                        purl: r.get(7)?,
                    })
                })()
                .map_err(StoreError::sqlite(what))?;
                out.push(hit);
            }
            Ok(out)
        })
    }

    fn components_for_packages(
        &self,
        packages: &[(String, String)],
        sbom: Option<i64>,
    ) -> Result<Vec<StoredComponent>, StoreError> {
        let what = "reading stored components by package";
        self.read(what, |tx| {
            let mut out = Vec::new();
            let mut stmt = tx
                .prepare_cached(
                    "SELECT sbom_id, ecosystem, name, version, purl FROM sbom_components \
                     WHERE ecosystem = ?1 AND name = ?2 AND (?3 IS NULL OR sbom_id = ?3)",
                )
                .map_err(StoreError::sqlite(what))?;
            for (ecosystem, name) in packages {
                let rows = stmt
                    .query_map(params![ecosystem, name, sbom], |r| {
                        Ok(StoredComponent {
                            sbom_id: r.get(0)?,
                            ecosystem: r.get(1)?,
                            name: r.get(2)?,
                            version: r.get(3)?,
                            purl: r.get(4)?,
                        })
                    })
                    .map_err(StoreError::sqlite(what))?;
                for row in rows {
                    out.push(row.map_err(StoreError::sqlite(what))?);
                }
            }
            // Sorted and each once, as a set would keep them (a sort is cheaper
            // than a set's inserts for the ~10k rows a popular package has).
            out.sort_unstable();
            out.dedup();
            Ok(out)
        })
    }

    fn record_matches(
        &self,
        scope: &MatchScope,
        found: &[NewFinding],
        now_ms: i64,
    ) -> Result<MatchOutcome, StoreError> {
        let what = "recording a re-match";
        let in_packages: std::collections::HashSet<(&str, &str)> = scope
            .packages
            .iter()
            .map(|(e, n)| (e.as_str(), n.as_str()))
            .collect();
        for f in found {
            let k = &f.key;
            let in_sbom = scope.sbom.is_none_or(|s| s == k.sbom_id);
            if !in_sbom || !in_packages.contains(&(k.ecosystem.as_str(), k.name.as_str())) {
                return Err(StoreError::OutOfScope {
                    advisory: k.advisory_id.clone(),
                    sbom: k.sbom_id,
                    ecosystem: k.ecosystem.clone(),
                    name: k.name.clone(),
                    version: k.version.clone(),
                });
            }
        }
        // Each match once, in primary-key order: the inserts below walk the
        // findings B-tree in order instead of jumping around it.
        let mut order: Vec<&NewFinding> = found.iter().collect();
        order.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        order.dedup_by(|a, b| a.key == b.key);
        self.write(what, |tx| {
            // The open and suppressed findings the scope covers, before this re-match.
            // Whole rows, so the findings this re-match fixes are returned
            // without reading each one again.
            let mut covered = covered_findings(tx, scope, what)?;
            // Set-based reads, one statement per package (not one per match):
            // the stored components of the scope's packages (whether a match's
            // component is stored, and how many were re-matched), and the
            // fixed findings among them (a match of one is reopened).
            let mut components = 0u64;
            // (ecosystem, name) → SBOM → its versions of the package.
            let mut stored: std::collections::HashMap<
                (&str, &str),
                std::collections::HashMap<i64, Vec<String>>,
            > = std::collections::HashMap::new();
            let mut fixed_before: std::collections::HashMap<FindingKey, i64> =
                std::collections::HashMap::new();
            {
                // One SBOM's re-match (an SBOM just stored) reads that SBOM's rows
                // through the indexes' sbom_id column; `?3 IS NULL OR sbom_id = ?3`
                // would read every SBOM's rows of the package.
                let in_sbom = if scope.sbom.is_some() {
                    "sbom_id = ?3"
                } else {
                    "?3 IS NULL"
                };
                let mut read_components = tx
                    .prepare_cached(&format!(
                        "SELECT DISTINCT sbom_id, version, purl FROM sbom_components \
                         WHERE ecosystem = ?1 AND name = ?2 AND {in_sbom}"
                    ))
                    .map_err(StoreError::sqlite(what))?;
                let mut read_fixed = tx
                    .prepare_cached(&format!(
                        "SELECT advisory_id, sbom_id, version, first_seen_ms FROM findings \
                         WHERE ecosystem = ?1 AND name = ?2 AND {in_sbom} AND state = 'fixed'"
                    ))
                    .map_err(StoreError::sqlite(what))?;
                for (ecosystem, name) in &scope.packages {
                    let versions = stored.entry((ecosystem, name)).or_default();
                    let mut rows = read_components
                        .query(params![ecosystem, name, scope.sbom])
                        .map_err(StoreError::sqlite(what))?;
                    while let Some(r) = rows.next().map_err(StoreError::sqlite(what))? {
                        components += 1;
                        let sbom_id: i64 = r.get(0).map_err(StoreError::sqlite(what))?;
                        let version: String = r.get(1).map_err(StoreError::sqlite(what))?;
                        let known = versions.entry(sbom_id).or_default();
                        if !known.contains(&version) {
                            known.push(version);
                        }
                    }
                    let mut rows = read_fixed
                        .query(params![ecosystem, name, scope.sbom])
                        .map_err(StoreError::sqlite(what))?;
                    while let Some(r) = rows.next().map_err(StoreError::sqlite(what))? {
                        fixed_before.insert(
                            FindingKey {
                                advisory_id: r.get(0).map_err(StoreError::sqlite(what))?,
                                sbom_id: r.get(1).map_err(StoreError::sqlite(what))?,
                                ecosystem: ecosystem.clone(),
                                name: name.clone(),
                                version: r.get(2).map_err(StoreError::sqlite(what))?,
                            },
                            r.get(3).map_err(StoreError::sqlite(what))?,
                        );
                    }
                }
            }
            // New findings are inserted INSERT_ROWS at a time (one statement's
            // overhead per batch, not per row), in primary-key order.
            let mut new_rows: Vec<&NewFinding> = Vec::new();
            let mut reopen = tx
                .prepare_cached(
                    "UPDATE findings SET purl = ?6, kind = ?7, severity = ?8, state = 'open', \
                     last_seen_ms = ?9, fixed_at_ms = NULL WHERE advisory_id = ?1 \
                     AND sbom_id = ?2 AND ecosystem = ?3 AND name = ?4 AND version = ?5",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut seen = tx
                .prepare_cached(
                    "UPDATE findings SET kind = ?6, severity = ?7, last_seen_ms = ?8 \
                     WHERE advisory_id = ?1 AND sbom_id = ?2 AND ecosystem = ?3 AND name = ?4 \
                     AND version = ?5",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut opened = Vec::new();
            let mut subjects = SbomSubjects::default();
            let mut still_open = 0u64;
            for f in order {
                let k = &f.key;
                // The scope check above holds, so the component is in `stored`
                // exactly when it is stored.
                let is_stored = stored
                    .get(&(k.ecosystem.as_str(), k.name.as_str()))
                    .and_then(|sboms| sboms.get(&k.sbom_id))
                    .is_some_and(|versions| versions.contains(&k.version));
                if !is_stored {
                    return Err(StoreError::NotFound {
                        what: "stored component",
                        id: format!(
                            "{} {} {} in SBOM {}",
                            k.ecosystem, k.name, k.version, k.sbom_id
                        ),
                    });
                }
                let key_params = params![
                    k.advisory_id,
                    k.sbom_id,
                    k.ecosystem,
                    k.name,
                    k.version,
                    f.purl,
                    f.kind,
                    f.severity,
                    now_ms
                ];
                if covered.remove(k).is_some() {
                    // Open or suppressed: it keeps its state and first-seen time.
                    seen.execute(params![
                        k.advisory_id,
                        k.sbom_id,
                        k.ecosystem,
                        k.name,
                        k.version,
                        f.kind,
                        f.severity,
                        now_ms
                    ])
                    .map_err(StoreError::sqlite(what))?;
                    still_open += 1;
                } else if let Some(first_seen) = fixed_before.get(k) {
                    reopen
                        .execute(key_params)
                        .map_err(StoreError::sqlite(what))?;
                    // A reopened finding keeps its first-seen time.
                    opened.push(subjects.opened(tx, f, *first_seen, now_ms, what)?);
                } else {
                    // Not stored (an open or suppressed one outside the
                    // covered set cannot exist: the scope's packages cover it).
                    new_rows.push(f);
                    opened.push(subjects.opened(tx, f, now_ms, now_ms, what)?);
                }
            }
            insert_findings(tx, &new_rows, now_ms, what)?;
            let mut fix = tx
                .prepare_cached(
                    "UPDATE findings SET state = 'fixed', fixed_at_ms = ?6 WHERE advisory_id = ?1 \
                     AND sbom_id = ?2 AND ecosystem = ?3 AND name = ?4 AND version = ?5",
                )
                .map_err(StoreError::sqlite(what))?;
            for k in covered.keys() {
                fix.execute(params![
                    k.advisory_id,
                    k.sbom_id,
                    k.ecosystem,
                    k.name,
                    k.version,
                    now_ms
                ])
                .map_err(StoreError::sqlite(what))?;
            }
            // What the UPDATE above wrote; every other column is as read.
            let fixed: Vec<StoredFinding> = covered
                .into_values()
                .map(|mut f| {
                    f.state = FindingState::Fixed;
                    f.fixed_at_ms = Some(now_ms);
                    f
                })
                .collect();
            tx.execute(
                "INSERT INTO rematches (at_ms, packages, advisories, sbom_id, components, opened, \
                 still_open, fixed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    now_ms,
                    sql_limit(scope.packages.len()),
                    sql_limit(scope.advisories.len()),
                    scope.sbom,
                    sql_limit(components),
                    sql_limit(opened.len()),
                    sql_limit(still_open),
                    sql_limit(fixed.len())
                ],
            )
            .map_err(StoreError::sqlite(what))?;
            Ok(MatchOutcome {
                rematch_id: tx.last_insert_rowid(),
                components,
                opened,
                still_open,
                fixed,
            })
        })
    }

    fn findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>, StoreError> {
        let what = "reading findings";
        self.read(what, |tx| {
            // The optional filters (`?N IS NULL OR …`) hide every index from
            // SQLite's planner; the one filter asked at scale (a digest's
            // findings, for exposures) is a plain equality, so the planner goes
            // from `sboms_by_subject` to `findings_by_sbom` instead of scanning
            // every finding.
            let digest_filter = if filter.subject_digest.is_some() {
                "s.subject_digest = ?4"
            } else {
                "?4 IS NULL"
            };
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {FINDING_COLUMNS} FROM findings f JOIN sboms s ON s.id = f.sbom_id \
                     WHERE {digest_filter} AND (?1 IS NULL OR f.sbom_id = ?1) \
                     AND (?2 IS NULL OR f.advisory_id = ?2) AND (?3 IS NULL OR f.state = ?3) \
                     ORDER BY f.sbom_id, f.advisory_id, f.ecosystem, f.name, f.version \
                     LIMIT ?5"
                ))
                .map_err(StoreError::sqlite(what))?;
            let rows = stmt
                .query_map(
                    params![
                        filter.sbom,
                        filter.advisory,
                        filter.state.map(FindingState::as_str),
                        filter.subject_digest,
                        sql_limit(filter.limit.unwrap_or(usize::MAX))
                    ],
                    RawFinding::from_row,
                )
                .map_err(StoreError::sqlite(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))?;
            rows.into_iter().map(RawFinding::into_finding).collect()
        })
    }

    fn rematches(&self, limit: usize) -> Result<Vec<RematchRecord>, StoreError> {
        let what = "reading re-matches";
        self.read(what, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, at_ms, packages, advisories, sbom_id, components, opened, \
                     still_open, fixed FROM rematches ORDER BY id DESC LIMIT ?1",
                )
                .map_err(StoreError::sqlite(what))?;
            let rows = stmt
                .query_map([sql_limit(limit)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        [r.get::<_, i64>(2)?, r.get::<_, i64>(3)?],
                        r.get::<_, Option<i64>>(4)?,
                        [
                            r.get::<_, i64>(5)?,
                            r.get::<_, i64>(6)?,
                            r.get::<_, i64>(7)?,
                            r.get::<_, i64>(8)?,
                        ],
                    ))
                })
                .map_err(StoreError::sqlite(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))?;
            rows.into_iter()
                .map(|(id, at_ms, [p, a], sbom, [c, o, s, f])| {
                    Ok(RematchRecord {
                        id,
                        at_ms,
                        packages: count("re-match package count", p)?,
                        advisories: count("re-match advisory count", a)?,
                        sbom,
                        components: count("re-match component count", c)?,
                        opened: count("re-match opened count", o)?,
                        still_open: count("re-match still-open count", s)?,
                        fixed: count("re-match fixed count", f)?,
                    })
                })
                .collect()
        })
    }
}
