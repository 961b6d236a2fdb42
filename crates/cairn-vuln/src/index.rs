//! Advisories keyed by (ecosystem, normalised name), for matching many
//! components at once.

use crate::error::Error;
use crate::matching::{Finding, FindingKind, Installed, Package, match_entries, normalize_name};
use crate::osv::Advisory;
use cairn_model::sort::sort_large_by;
use std::collections::HashMap;

/// An index of advisories. Inserting a record whose id is already present
/// replaces it when its `modified` is not older (RFC 3339 UTC strings order
/// lexically); withdrawn records are kept but never match.
#[derive(Debug, Default)]
pub struct AdvisoryIndex {
    advisories: Vec<Option<Advisory>>,
    by_id: HashMap<String, usize>,
    /// (ecosystem, normalised name) → (advisory slot, affected index).
    by_package: HashMap<(String, String), Vec<(usize, usize)>>,
}

/// A package that could not be evaluated against an advisory.
#[derive(Debug)]
pub struct ScanIssue {
    /// The package.
    pub package: Package,
    /// The advisory.
    pub advisory_id: String,
    /// Why.
    pub error: Error,
}

/// The result of matching many packages: vulnerabilities and informational
/// advisories apart, and what could not be evaluated (never dropped).
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Vulnerability findings.
    pub vulnerabilities: Vec<Finding>,
    /// Informational findings (unmaintained, unsound, notice).
    pub informational: Vec<Finding>,
    /// Packages × advisories that could not be evaluated.
    pub issues: Vec<ScanIssue>,
    /// How many packages were looked at.
    pub packages: usize,
}

impl AdvisoryIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces, see the type's docs) one advisory.
    pub fn insert(&mut self, advisory: Advisory) {
        if let Some(&slot) = self.by_id.get(&advisory.id) {
            let newer = self.advisories[slot]
                .as_ref()
                .is_none_or(|old| advisory.modified >= old.modified);
            if !newer {
                return;
            }
            self.advisories[slot] = None;
            for list in self.by_package.values_mut() {
                list.retain(|(s, _)| *s != slot);
            }
        }
        let slot = self.advisories.len();
        for (i, a) in advisory.affected.iter().enumerate() {
            let key = (a.ecosystem.clone(), normalize_name(&a.ecosystem, &a.name));
            self.by_package.entry(key).or_default().push((slot, i));
        }
        self.by_id.insert(advisory.id.clone(), slot);
        self.advisories.push(Some(advisory));
    }

    /// How many distinct advisories are indexed.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The advisory with this id.
    pub fn get(&self, id: &str) -> Option<&Advisory> {
        self.by_id
            .get(id)
            .and_then(|&s| self.advisories[s].as_ref())
    }

    /// Every indexed advisory.
    pub fn advisories(&self) -> impl Iterator<Item = &Advisory> {
        self.advisories.iter().flatten()
    }

    /// The (ecosystem, normalised name) keys, for building test inputs.
    pub fn package_keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_package
            .keys()
            .map(|(e, n)| (e.as_str(), n.as_str()))
    }

    /// Every finding for one package, and the advisories it could not be
    /// evaluated against.
    pub fn lookup(&self, package: &Package) -> (Vec<Finding>, Vec<(String, Error)>) {
        let key = (
            package.ecosystem.clone(),
            normalize_name(&package.ecosystem, &package.name),
        );
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let Some(hits) = self.by_package.get(&key) else {
            return (findings, errors);
        };
        let mut installed = Installed::new(&package.version);
        let mut i = 0;
        while i < hits.len() {
            let slot = hits[i].0;
            let mut j = i;
            while j < hits.len() && hits[j].0 == slot {
                j += 1;
            }
            if let Some(adv) = self.advisories[slot].as_ref() {
                let entries = hits[i..j].iter().map(|&(_, k)| &adv.affected[k]);
                match match_entries(adv, package, entries, &mut installed) {
                    Ok(Some(f)) => findings.push(f),
                    Ok(None) => {}
                    Err(e) => errors.push((adv.id.clone(), e)),
                }
            }
            i = j;
        }
        (findings, errors)
    }

    /// Matches every package; findings sorted by package then advisory id.
    pub fn scan(&self, packages: &[Package]) -> ScanReport {
        self.scan_with(packages, |_| Vec::new())
    }

    /// [`AdvisoryIndex::scan`], with the findings of package `i` that are
    /// already known (`known(i)`: decided from compiled forms, without the
    /// records) added to its own. An indexed advisory with the id of a known
    /// finding of the package is not matched against it again; the report,
    /// its order included, is the one `scan` gives with those records indexed.
    pub fn scan_with(
        &self,
        packages: &[Package],
        mut known: impl FnMut(usize) -> Vec<Finding>,
    ) -> ScanReport {
        let mut report = ScanReport {
            packages: packages.len(),
            ..ScanReport::default()
        };
        for (i, p) in packages.iter().enumerate() {
            let known = known(i);
            let (mut findings, errors) = if self.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                self.lookup(p)
            };
            if !known.is_empty() {
                findings.retain(|f| !known.iter().any(|k| k.advisory_id == f.advisory_id));
            }
            for f in findings.into_iter().chain(known) {
                match f.kind {
                    FindingKind::Vulnerability => report.vulnerabilities.push(f),
                    FindingKind::Informational(_) => report.informational.push(f),
                }
            }
            for (advisory_id, error) in errors {
                report.issues.push(ScanIssue {
                    package: p.clone(),
                    advisory_id,
                    error,
                });
            }
        }
        // Compared in place (a key of cloned strings cost three allocations per
        // comparison: a tenth of a 908-crate scan), and the positions sorted, not the findings.
        let order = |a: &Finding, b: &Finding| {
            (&a.package, &a.installed_version, &a.advisory_id).cmp(&(
                &b.package,
                &b.installed_version,
                &b.advisory_id,
            ))
        };
        sort_large_by(&mut report.vulnerabilities, order);
        sort_large_by(&mut report.informational, order);
        report
    }
}
