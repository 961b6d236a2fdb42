//! [`InventoryStore`] on PostgreSQL (the same rules as `sqlite/inventory.rs`):
//! OSV advisories and their package index, stored SBOMs and their components,
//! findings and the log of re-matches.

use postgres::Row;

use super::{PostgresStore, Tx, count, sql_limit};
use crate::{
    AdvisoryPut, FindingFilter, FindingKey, FindingState, InventoryStore, MatchOutcome, MatchScope,
    NewAdvisory, NewFinding, NewSbom, PackageHit, RematchRecord, SbomSummary, StoreError,
    StoredAdvisory, StoredComponent, StoredFinding, StoredMatcher,
};

const FINDING_KEY_COLUMNS: &str = "advisory_id, sbom_id, ecosystem, name, version";

const FINDING_COLUMNS: &str = "f.advisory_id, f.sbom_id, f.ecosystem, f.name, f.version, f.purl, \
     f.kind, f.severity, f.state, f.first_seen_ms, f.last_seen_ms, f.fixed_at_ms, \
     s.subject_name, s.subject_digest, s.workload, s.environment";

fn finding_key_from_row(r: &Row) -> Result<FindingKey, postgres::Error> {
    Ok(FindingKey {
        advisory_id: r.try_get(0)?,
        sbom_id: r.try_get(1)?,
        ecosystem: r.try_get(2)?,
        name: r.try_get(3)?,
        version: r.try_get(4)?,
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
    fn from_row(r: &Row) -> Result<Self, postgres::Error> {
        Ok(RawFinding {
            key: finding_key_from_row(r)?,
            purl: r.try_get(5)?,
            kind: r.try_get(6)?,
            severity: r.try_get(7)?,
            state: r.try_get(8)?,
            first_seen_ms: r.try_get(9)?,
            last_seen_ms: r.try_get(10)?,
            fixed_at_ms: r.try_get(11)?,
            subject_name: r.try_get(12)?,
            subject_digest: r.try_get(13)?,
            workload: r.try_get(14)?,
            environment: r.try_get(15)?,
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

/// Finding keys as the columns of `unnest(…)`: advisory, SBOM, ecosystem, name
/// and version, one array each (a batch is one statement, not one per key).
struct KeyColumns<'a> {
    advisories: Vec<&'a str>,
    sboms: Vec<i64>,
    ecosystems: Vec<&'a str>,
    names: Vec<&'a str>,
    versions: Vec<&'a str>,
}

impl<'a> KeyColumns<'a> {
    fn of(keys: impl IntoIterator<Item = &'a FindingKey>) -> Self {
        let mut c = KeyColumns {
            advisories: Vec::new(),
            sboms: Vec::new(),
            ecosystems: Vec::new(),
            names: Vec::new(),
            versions: Vec::new(),
        };
        for k in keys {
            c.advisories.push(&k.advisory_id);
            c.sboms.push(k.sbom_id);
            c.ecosystems.push(&k.ecosystem);
            c.names.push(&k.name);
            c.versions.push(&k.version);
        }
        c
    }
}

/// `unnest` of a [`KeyColumns`] bound as `$1`…`$5`, as `k`, with `k.i` its
/// position (from 1).
const UNNEST_KEYS: &str = "unnest($1::text[], $2::bigint[], $3::text[], $4::text[], \
     $5::text[]) WITH ORDINALITY AS k (advisory_id, sbom_id, ecosystem, name, version, i)";

/// `k`'s finding `f`.
const KEY_IS_F: &str = "f.advisory_id = k.advisory_id AND f.sbom_id = k.sbom_id \
     AND f.ecosystem = k.ecosystem AND f.name = k.name AND f.version = k.version";

/// The stored findings of `keys`, in their order (one statement); each must
/// be stored.
fn findings_by_keys(
    tx: &mut Tx<'_>,
    keys: &[FindingKey],
    what: &'static str,
) -> Result<Vec<StoredFinding>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let c = KeyColumns::of(keys);
    let raw = tx.all(
        what,
        &format!(
            "SELECT {FINDING_COLUMNS} FROM {UNNEST_KEYS} JOIN findings f ON {KEY_IS_F} \
             JOIN sboms s ON s.id = f.sbom_id ORDER BY k.i"
        ),
        &[
            &c.advisories,
            &c.sboms,
            &c.ecosystems,
            &c.names,
            &c.versions,
        ],
        RawFinding::from_row,
    )?;
    if raw.len() != keys.len() {
        return Err(StoreError::Corrupt {
            what: "finding count",
            value: format!("{} of {} findings read back", raw.len(), keys.len()),
        });
    }
    raw.into_iter().map(RawFinding::into_finding).collect()
}

/// The id of a stored SBOM equal to `s` (see [`InventoryStore::add_sboms`]), if
/// there is one. The digest's index narrows the candidates to the SBOMs about
/// the same artifact; their components are compared as sorted lists.
fn stored_sbom(
    tx: &mut Tx<'_>,
    s: &NewSbom,
    what: &'static str,
) -> Result<Option<i64>, StoreError> {
    let candidates: Vec<i64> = tx.all(
        what,
        "SELECT id FROM sboms WHERE subject_digest = $1 AND subject_name = $2 \
         AND workload IS NOT DISTINCT FROM $3 AND environment IS NOT DISTINCT FROM $4 \
         AND format = $5 AND document = $6 ORDER BY id",
        &[
            &s.subject_digest,
            &s.subject_name,
            &s.workload,
            &s.environment,
            &s.format,
            &s.document,
        ],
        |r| r.try_get(0),
    )?;
    if candidates.is_empty() {
        return Ok(None);
    }
    let mut wanted: Vec<(&str, &str, &str, &str)> = s
        .components
        .iter()
        .map(|(e, n, v, p)| (e.as_str(), n.as_str(), v.as_str(), p.as_str()))
        .collect();
    wanted.sort_unstable();
    for id in candidates {
        let mut kept: Vec<(String, String, String, String)> = tx.all(
            what,
            "SELECT ecosystem, name, version, purl FROM sbom_components WHERE sbom_id = $1",
            &[&id],
            |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)),
        )?;
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
    tx: &mut Tx<'_>,
    id: &str,
    what: &'static str,
) -> Result<Option<StoredAdvisory>, StoreError> {
    tx.opt(
        what,
        "SELECT id, modified, withdrawn, json FROM advisories WHERE id = $1",
        &[&id],
        |r| {
            Ok(StoredAdvisory {
                id: r.try_get(0)?,
                modified: r.try_get(1)?,
                withdrawn: r.try_get::<_, i64>(2)? != 0,
                json: r.try_get(3)?,
            })
        },
    )
}

impl InventoryStore for PostgresStore {
    fn put_advisories(&self, advisories: &[NewAdvisory]) -> Result<Vec<AdvisoryPut>, StoreError> {
        let what = "keeping advisories";
        crate::inventory::check_advisory_sizes(advisories)?;
        self.write(what, |tx| {
            let mut out = Vec::with_capacity(advisories.len());
            for a in advisories {
                let stored: Option<String> = tx.opt(
                    what,
                    "SELECT modified FROM advisories WHERE id = $1",
                    &[&a.id],
                    |r| r.try_get(0),
                )?;
                let outcome = match stored {
                    None => AdvisoryPut::New,
                    Some(old) if a.modified > old => AdvisoryPut::Updated,
                    Some(_) => {
                        // The same record again: its form is refreshed when this
                        // binary cuts it differently (forms kept by an older one),
                        // never from other bytes under the same `modified`.
                        tx.exec(
                            what,
                            "UPDATE advisories SET match_form = $2 \
                             WHERE id = $1 AND json = $3 AND match_form IS DISTINCT FROM $2",
                            &[&a.id, &a.match_form, &a.json],
                        )?;
                        // Its compiled forms likewise (rows kept before schema
                        // v17 have none: this fills them in).
                        for (i, (ecosystem, name)) in a.packages.iter().enumerate() {
                            let compiled = a.compiled.get(i).cloned().flatten();
                            tx.exec(
                                what,
                                "UPDATE advisory_packages SET compiled = $4 \
                                 WHERE id = $1 AND ecosystem = $2 AND name = $3 \
                                 AND compiled IS DISTINCT FROM $4 \
                                 AND EXISTS (SELECT 1 FROM advisories WHERE id = $1 AND json = $5)",
                                &[&a.id, ecosystem, name, &compiled, &a.json],
                            )?;
                        }
                        out.push(AdvisoryPut::Unchanged);
                        continue;
                    }
                };
                tx.exec(
                    what,
                    "INSERT INTO advisories (id, modified, withdrawn, json, match_form) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, \
                     withdrawn = excluded.withdrawn, json = excluded.json, \
                     match_form = excluded.match_form",
                    &[
                        &a.id,
                        &a.modified,
                        &i64::from(a.withdrawn),
                        &a.json,
                        &a.match_form,
                    ],
                )?;
                tx.exec(
                    what,
                    "DELETE FROM advisory_packages WHERE id = $1",
                    &[&a.id],
                )?;
                if !a.withdrawn {
                    for (i, (ecosystem, name)) in a.packages.iter().enumerate() {
                        let compiled = a.compiled.get(i).cloned().flatten();
                        tx.exec(
                            what,
                            "INSERT INTO advisory_packages (ecosystem, name, id, compiled, modified) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                            &[ecosystem, name, &a.id, &compiled, &a.modified],
                        )?;
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
        if packages.is_empty() {
            return Ok(Vec::new());
        }
        let ecosystems: Vec<&str> = packages.iter().map(|(e, _)| e.as_str()).collect();
        let names: Vec<&str> = packages.iter().map(|(_, n)| n.as_str()).collect();
        self.read(what, |tx| {
            // One statement for every package: the records (their match forms)
            // joined to the index rows, each once, by id.
            tx.all(
                what,
                "SELECT a.id, a.modified, a.withdrawn, coalesce(a.match_form, a.json) \
                 FROM advisories a WHERE a.id IN ( \
                   SELECT p.id FROM advisory_packages p \
                   JOIN unnest($1::text[], $2::text[]) AS k (ecosystem, name) \
                     ON p.ecosystem = k.ecosystem AND p.name = k.name) \
                 ORDER BY a.id",
                &[&ecosystems, &names],
                |r| {
                    Ok(StoredAdvisory {
                        id: r.try_get(0)?,
                        modified: r.try_get(1)?,
                        withdrawn: r.try_get::<_, i64>(2)? != 0,
                        json: r.try_get(3)?,
                    })
                },
            )
        })
    }

    fn advisory_matchers(
        &self,
        packages: &[(String, String)],
    ) -> Result<Vec<StoredMatcher>, StoreError> {
        let what = "reading compiled match forms by package";
        if packages.is_empty() {
            return Ok(Vec::new());
        }
        let ecosystems: Vec<&str> = packages.iter().map(|(e, _)| e.as_str()).collect();
        let names: Vec<&str> = packages.iter().map(|(_, n)| n.as_str()).collect();
        self.read(what, |tx| {
            tx.all(
                what,
                "SELECT DISTINCT p.ecosystem, p.name, p.id, \
                   coalesce(p.modified, (SELECT a.modified FROM advisories a WHERE a.id = p.id)), \
                   p.compiled \
                 FROM advisory_packages p \
                 JOIN unnest($1::text[], $2::text[]) AS k (ecosystem, name) \
                   ON p.ecosystem = k.ecosystem AND p.name = k.name \
                 ORDER BY p.ecosystem, p.name, p.id",
                &[&ecosystems, &names],
                |r| {
                    Ok(StoredMatcher {
                        ecosystem: r.try_get(0)?,
                        name: r.try_get(1)?,
                        id: r.try_get(2)?,
                        modified: r.try_get(3)?,
                        compiled: r.try_get(4)?,
                    })
                },
            )
        })
    }

    fn advisories_without_compiled(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let what = "reading advisories without compiled forms";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(what, |tx| {
            tx.all(
                what,
                "SELECT DISTINCT id FROM advisory_packages \
                 WHERE compiled IS NULL AND id > $1 ORDER BY id LIMIT $2",
                &[&after, &limit],
                |r| r.try_get(0),
            )
        })
    }

    fn put_compiled(&self, rows: &[crate::inventory::CompiledRow]) -> Result<usize, StoreError> {
        let what = "filling in compiled match forms";
        self.write(what, |tx| {
            let mut filled = 0;
            for r in rows {
                filled += tx.exec(
                    what,
                    "UPDATE advisory_packages SET compiled = $4 \
                     WHERE ecosystem = $1 AND name = $2 AND id = $3 AND compiled IS NULL \
                     AND EXISTS (SELECT 1 FROM advisories WHERE id = $3 AND json = $5)",
                    &[&r.ecosystem, &r.name, &r.id, &r.form, &r.json],
                )? as usize;
            }
            Ok(filled)
        })
    }

    fn advisory_forms(&self, ids: &[String]) -> Result<Vec<StoredAdvisory>, StoreError> {
        let what = "reading advisories by id";
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.read(what, |tx| {
            tx.all(
                what,
                "SELECT a.id, a.modified, a.withdrawn, coalesce(a.match_form, a.json) \
                 FROM advisories a WHERE a.id = ANY($1::text[]) ORDER BY a.id",
                &[&ids],
                |r| {
                    Ok(StoredAdvisory {
                        id: r.try_get(0)?,
                        modified: r.try_get(1)?,
                        withdrawn: r.try_get::<_, i64>(2)? != 0,
                        json: r.try_get(3)?,
                    })
                },
            )
        })
    }

    fn advisory(&self, id: &str) -> Result<Option<StoredAdvisory>, StoreError> {
        let what = "reading an advisory";
        self.read(what, |tx| advisory_by_id(tx, id, what))
    }

    fn advisory_count(&self) -> Result<u64, StoreError> {
        let what = "counting advisories";
        self.read(what, |tx| {
            let n: i64 = tx.one(what, "SELECT count(*) FROM advisories", &[], |r| {
                r.try_get(0)
            })?;
            count("advisory count", n)
        })
    }

    fn advisory_versions(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        let what = "listing advisory versions";
        self.read(what, |tx| {
            tx.all(
                what,
                "SELECT id, modified, withdrawn FROM advisories ORDER BY id",
                &[],
                |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<_, i64>(2)? != 0)),
            )
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
            for s in sboms {
                if let Some(id) = stored_sbom(tx, s, what)? {
                    ids.push(id);
                    continue;
                }
                let id: i64 = tx.one(
                    what,
                    "INSERT INTO sboms (subject_name, subject_digest, workload, environment, \
                     created_at_ms, format, document) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     RETURNING id",
                    &[
                        &s.subject_name,
                        &s.subject_digest,
                        &s.workload,
                        &s.environment,
                        &s.created_at_ms,
                        &s.format,
                        &s.document,
                    ],
                    |r| r.try_get(0),
                )?;
                for chunk in s.components.chunks(super::runs::BATCH) {
                    let column = |f: fn(&(String, String, String, String)) -> &str| -> Vec<&str> {
                        chunk.iter().map(f).collect()
                    };
                    let ecosystems = column(|c| &c.0);
                    let names = column(|c| &c.1);
                    let versions = column(|c| &c.2);
                    let purls = column(|c| &c.3);
                    tx.exec(
                        what,
                        "INSERT INTO sbom_components (sbom_id, ecosystem, name, version, purl) \
                         SELECT $1, c.ecosystem, c.name, c.version, c.purl \
                         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) \
                         AS c (ecosystem, name, version, purl)",
                        &[&id, &ecosystems, &names, &versions, &purls],
                    )?;
                }
                ids.push(id);
            }
            Ok(ids)
        })
    }

    fn sboms_about(&self, subject_digest: &str) -> Result<Vec<SbomSummary>, StoreError> {
        let what = "listing an artifact's SBOMs";
        self.read(what, |tx| {
            tx.all(
                what,
                "SELECT id, subject_name, subject_digest, workload, environment, \
                 created_at_ms, format FROM sboms WHERE subject_digest = $1 ORDER BY id",
                &[&subject_digest],
                |r| {
                    Ok(SbomSummary {
                        id: r.try_get(0)?,
                        subject_name: r.try_get(1)?,
                        subject_digest: r.try_get(2)?,
                        workload: r.try_get(3)?,
                        environment: r.try_get(4)?,
                        created_at_ms: r.try_get(5)?,
                        format: r.try_get(6)?,
                    })
                },
            )
        })
    }

    fn where_package(
        &self,
        ecosystem: Option<&str>,
        name: &str,
    ) -> Result<Vec<PackageHit>, StoreError> {
        let what = "finding a package in stored SBOMs";
        self.read(what, |tx| {
            // Distinct hits, sorted as promised (by SBOM, ecosystem, version, purl).
            tx.all(
                what,
                "SELECT DISTINCT c.sbom_id, s.subject_name, s.subject_digest, s.workload, \
                 s.environment, c.ecosystem, c.version, c.purl \
                 FROM sbom_components c JOIN sboms s ON s.id = c.sbom_id \
                 WHERE c.name = $2 AND ($1::text IS NULL OR c.ecosystem = $1) \
                 ORDER BY c.sbom_id, c.ecosystem, c.version, c.purl",
                &[&ecosystem, &name],
                |r| {
                    Ok(PackageHit {
                        sbom_id: r.try_get(0)?,
                        subject_name: r.try_get(1)?,
                        subject_digest: r.try_get(2)?,
                        workload: r.try_get(3)?,
                        environment: r.try_get(4)?,
                        ecosystem: r.try_get(5)?,
                        name: name.to_owned(),
                        version: r.try_get(6)?,
                        purl: r.try_get(7)?,
                    })
                },
            )
        })
    }

    fn components_for_packages(
        &self,
        packages: &[(String, String)],
        sbom: Option<i64>,
    ) -> Result<Vec<StoredComponent>, StoreError> {
        let what = "reading stored components by package";
        self.snapshot(what, |tx| {
            let mut out = std::collections::BTreeSet::new();
            for (ecosystem, name) in packages {
                let rows = tx.all(
                    what,
                    "SELECT sbom_id, ecosystem, name, version, purl FROM sbom_components \
                     WHERE ecosystem = $1 AND name = $2 AND ($3::bigint IS NULL OR sbom_id = $3)",
                    &[ecosystem, name, &sbom],
                    |r| {
                        Ok(StoredComponent {
                            sbom_id: r.try_get(0)?,
                            ecosystem: r.try_get(1)?,
                            name: r.try_get(2)?,
                            version: r.try_get(3)?,
                            purl: r.try_get(4)?,
                        })
                    },
                )?;
                out.extend(rows);
            }
            Ok(out.into_iter().collect())
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
        // A statement per step, each for the whole batch (arrays bound to
        // `unnest`), never one per finding or package.
        let (scope_ecosystems, scope_names): (Vec<&str>, Vec<&str>) = scope
            .packages
            .iter()
            .map(|(e, n)| (e.as_str(), n.as_str()))
            .unzip();
        let mut done = std::collections::HashSet::new();
        let found: Vec<&NewFinding> = found.iter().filter(|f| done.insert(&f.key)).collect();
        let found_keys = KeyColumns::of(found.iter().map(|f| &f.key));
        self.write(what, |tx| {
            // The open and suppressed findings the scope covers (by package, or
            // by advisory), before this re-match.
            let mut covered: std::collections::BTreeSet<FindingKey> = tx
                .all(
                    what,
                    &format!(
                        "SELECT {FINDING_KEY_COLUMNS} FROM findings \
                         WHERE state != 'fixed' AND ($3::bigint IS NULL OR sbom_id = $3) \
                         AND ((ecosystem, name) IN (SELECT * FROM unnest($1::text[], $2::text[])) \
                         OR advisory_id = ANY($4::text[]))"
                    ),
                    &[
                        &scope_ecosystems,
                        &scope_names,
                        &scope.sbom,
                        &scope.advisories,
                    ],
                    finding_key_from_row,
                )?
                .into_iter()
                .collect();
            // For each match, in order: whether its component is stored, and the
            // state of its stored finding (NULL: none).
            let known: Vec<(bool, Option<String>)> = if found.is_empty() {
                Vec::new()
            } else {
                tx.all(
                    what,
                    &format!(
                        "SELECT EXISTS (SELECT 1 FROM sbom_components c \
                         WHERE c.ecosystem = k.ecosystem AND c.name = k.name \
                         AND c.version = k.version AND c.sbom_id = k.sbom_id), \
                         (SELECT f.state FROM findings f WHERE {KEY_IS_F}) \
                         FROM {UNNEST_KEYS} ORDER BY k.i"
                    ),
                    &[
                        &found_keys.advisories,
                        &found_keys.sboms,
                        &found_keys.ecosystems,
                        &found_keys.names,
                        &found_keys.versions,
                    ],
                    |r| Ok((r.try_get(0)?, r.try_get(1)?)),
                )?
            };
            let mut opened_keys = Vec::new();
            let mut still_open = 0u64;
            let (mut new, mut reopened, mut seen) = (Vec::new(), Vec::new(), Vec::new());
            for (f, (exists, state)) in found.iter().zip(known) {
                let k = &f.key;
                if !exists {
                    return Err(StoreError::NotFound {
                        what: "stored component",
                        id: format!(
                            "{} {} {} in SBOM {}",
                            k.ecosystem, k.name, k.version, k.sbom_id
                        ),
                    });
                }
                match state.map(|s| parse_state(&s)).transpose()? {
                    None => {
                        new.push(*f);
                        opened_keys.push(k.clone());
                    }
                    Some(FindingState::Fixed) => {
                        reopened.push(*f);
                        opened_keys.push(k.clone());
                    }
                    Some(FindingState::Open | FindingState::Suppressed) => {
                        seen.push(*f);
                        still_open += 1;
                    }
                }
                covered.remove(k);
            }
            // Opened (new), opened again (stored as fixed), seen again (open or
            // suppressed: kept so, its first-seen time too).
            let steps = [
                (
                    &new,
                    "INSERT INTO findings (advisory_id, sbom_id, ecosystem, name, version, \
                     purl, kind, severity, state, first_seen_ms, last_seen_ms, fixed_at_ms) \
                     SELECT k.advisory_id, k.sbom_id, k.ecosystem, k.name, k.version, \
                     m.purl, m.kind, m.severity, 'open', $9, $9, NULL",
                ),
                (
                    &reopened,
                    "UPDATE findings f SET purl = m.purl, kind = m.kind, severity = m.severity, \
                     state = 'open', last_seen_ms = $9, fixed_at_ms = NULL",
                ),
                (
                    &seen,
                    "UPDATE findings f SET kind = m.kind, severity = m.severity, \
                     last_seen_ms = $9",
                ),
            ];
            for (batch, head) in steps {
                if batch.is_empty() {
                    continue;
                }
                let c = KeyColumns::of(batch.iter().map(|f| &f.key));
                let purls: Vec<&str> = batch.iter().map(|f| f.purl.as_str()).collect();
                let kinds: Vec<&str> = batch.iter().map(|f| f.kind.as_str()).collect();
                let severities: Vec<Option<&str>> =
                    batch.iter().map(|f| f.severity.as_deref()).collect();
                // The match's own columns beside its key, by position.
                let with = "unnest($6::text[], $7::text[], $8::text[]) WITH ORDINALITY \
                     AS m (purl, kind, severity, i)";
                let sql = if head.starts_with("INSERT") {
                    format!("{head} FROM {UNNEST_KEYS} JOIN {with} ON m.i = k.i")
                } else {
                    format!("{head} FROM {UNNEST_KEYS} JOIN {with} ON m.i = k.i WHERE {KEY_IS_F}")
                };
                tx.exec(
                    what,
                    &sql,
                    &[
                        &c.advisories,
                        &c.sboms,
                        &c.ecosystems,
                        &c.names,
                        &c.versions,
                        &purls,
                        &kinds,
                        &severities,
                        &now_ms,
                    ],
                )?;
            }
            // What the scope covered and this re-match did not find: fixed.
            if !covered.is_empty() {
                let c = KeyColumns::of(&covered);
                tx.exec(
                    what,
                    &format!(
                        "UPDATE findings f SET state = 'fixed', fixed_at_ms = $6 \
                         FROM {UNNEST_KEYS} WHERE {KEY_IS_F}"
                    ),
                    &[
                        &c.advisories,
                        &c.sboms,
                        &c.ecosystems,
                        &c.names,
                        &c.versions,
                        &now_ms,
                    ],
                )?;
            }
            // The distinct components of each package of the scope, summed (a
            // package named twice counts twice, as one count per package would).
            let components: i64 = tx.one(
                what,
                "SELECT coalesce(sum(per.n), 0)::bigint \
                 FROM unnest($1::text[], $2::text[]) AS p (ecosystem, name) \
                 CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT DISTINCT c.sbom_id, \
                 c.version, c.purl FROM sbom_components c WHERE c.ecosystem = p.ecosystem \
                 AND c.name = p.name AND ($3::bigint IS NULL OR c.sbom_id = $3)) AS d) AS per",
                &[&scope_ecosystems, &scope_names, &scope.sbom],
                |r| r.try_get(0),
            )?;
            let components = count("component count", components)?;
            let opened = findings_by_keys(tx, &opened_keys, what)?;
            let covered: Vec<FindingKey> = covered.into_iter().collect();
            let fixed = findings_by_keys(tx, &covered, what)?;
            let rematch_id: i64 = tx.one(
                what,
                "INSERT INTO rematches (at_ms, packages, advisories, sbom_id, components, \
                 opened, still_open, fixed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &now_ms,
                    &sql_limit(scope.packages.len()),
                    &sql_limit(scope.advisories.len()),
                    &scope.sbom,
                    &sql_limit(components),
                    &sql_limit(opened.len()),
                    &sql_limit(still_open),
                    &sql_limit(fixed.len()),
                ],
                |r| r.try_get(0),
            )?;
            Ok(MatchOutcome {
                rematch_id,
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
            let rows = tx.all(
                what,
                &format!(
                    "SELECT {FINDING_COLUMNS} FROM findings f JOIN sboms s ON s.id = f.sbom_id \
                     WHERE ($4::text IS NULL OR s.subject_digest = $4) \
                     AND ($1::bigint IS NULL OR f.sbom_id = $1) \
                     AND ($2::text IS NULL OR f.advisory_id = $2) \
                     AND ($3::text IS NULL OR f.state = $3) \
                     ORDER BY f.sbom_id, f.advisory_id, f.ecosystem, f.name, f.version \
                     LIMIT $5"
                ),
                &[
                    &filter.sbom,
                    &filter.advisory,
                    &filter.state.map(FindingState::as_str),
                    &filter.subject_digest,
                    &sql_limit(filter.limit.unwrap_or(usize::MAX)),
                ],
                RawFinding::from_row,
            )?;
            rows.into_iter().map(RawFinding::into_finding).collect()
        })
    }

    fn rematches(&self, limit: usize) -> Result<Vec<RematchRecord>, StoreError> {
        let what = "reading re-matches";
        self.read(what, |tx| {
            let rows = tx.all(
                what,
                "SELECT id, at_ms, packages, advisories, sbom_id, components, opened, \
                 still_open, fixed FROM rematches ORDER BY id DESC LIMIT $1",
                &[&sql_limit(limit)],
                |r| {
                    Ok((
                        r.try_get::<_, i64>(0)?,
                        r.try_get::<_, i64>(1)?,
                        [r.try_get::<_, i64>(2)?, r.try_get::<_, i64>(3)?],
                        r.try_get::<_, Option<i64>>(4)?,
                        [
                            r.try_get::<_, i64>(5)?,
                            r.try_get::<_, i64>(6)?,
                            r.try_get::<_, i64>(7)?,
                            r.try_get::<_, i64>(8)?,
                        ],
                    ))
                },
            )?;
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
