//! Matching one advisory against one package: package identity per ecosystem,
//! the OSV range algorithm, explicit versions, severity and informational kinds.
//!
//! Range evaluation follows the OSV schema's "Evaluation" section: events are
//! sorted by version (`introduced: "0"` first); walking them, `introduced <= v`
//! sets affected, `fixed <= v` clears it, `last_affected < v` clears it; a
//! version is then affected only if it is below some `limit` (when any).
//! `SEMVER` ranges use SemVer ordering, `ECOSYSTEM` ranges the ecosystem's;
//! `GIT` ranges are ignored here (they order commits, not released versions),
//! so a record with only GIT ranges matches through its `versions` list alone.

use crate::error::Error;
use crate::osv::{Advisory, Affected, Bound, Compiled, Event, EventKind, Informational, RangeKind};
use crate::version::{Scheme, Version, VersionError};
use std::cmp::Ordering;

/// One installed component.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Package {
    /// OSV ecosystem name (`crates.io`, `PyPI`, `Debian:12`, …).
    pub ecosystem: String,
    /// The name as the ecosystem writes it (Maven: `group:artifact`).
    pub name: String,
    /// The installed version.
    pub version: String,
}

impl Package {
    /// A package from its three parts.
    pub fn new(ecosystem: &str, name: &str, version: &str) -> Package {
        Package {
            ecosystem: ecosystem.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
        }
    }
}

/// Qualitative severity rating (CVSS v3.x/v4.0 table; the same for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rating {
    /// 0.0
    None,
    /// 0.1–3.9
    Low,
    /// 4.0–6.9
    Medium,
    /// 7.0–8.9
    High,
    /// 9.0–10.0
    Critical,
}

impl Rating {
    /// Every rating, lowest first (a compiled form writes a rating as its
    /// position here).
    pub(crate) const ALL: [Rating; 5] = [
        Rating::None,
        Rating::Low,
        Rating::Medium,
        Rating::High,
        Rating::Critical,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::None => "none",
            Rating::Low => "low",
            Rating::Medium => "medium",
            Rating::High => "high",
            Rating::Critical => "critical",
        }
    }

    fn from_cvss(s: cvss::Severity) -> Rating {
        match s {
            cvss::Severity::None => Rating::None,
            cvss::Severity::Low => Rating::Low,
            cvss::Severity::Medium => Rating::Medium,
            cvss::Severity::High => Rating::High,
            cvss::Severity::Critical => Rating::Critical,
        }
    }
}

/// A finding's severity, computed from the record's CVSS vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Severity {
    /// The OSV severity type it came from (`CVSS_V3`, `CVSS_V4`, …).
    pub kind: String,
    /// The vector or rating as written.
    pub vector: String,
    /// The CVSS base score.
    pub score: f64,
    /// The qualitative rating of that score.
    pub rating: Rating,
}

/// Picks the newest CVSS version that parses (v4 over v3.1 over v3.0 over v2);
/// entries that do not parse as CVSS are skipped.
pub fn severity_of(scores: &[crate::osv::SeverityScore]) -> Option<Severity> {
    let rank = |c: &cvss::Cvss| match c {
        cvss::Cvss::CvssV40(_) => 4,
        cvss::Cvss::CvssV31(_) => 3,
        cvss::Cvss::CvssV30(_) => 2,
        _ => 1,
    };
    scores
        .iter()
        .filter(|s| s.kind.starts_with("CVSS_"))
        .filter_map(|s| s.score.parse::<cvss::Cvss>().ok().map(|c| (s, c)))
        .max_by_key(|(_, c)| rank(c))
        .map(|(s, c)| Severity {
            kind: s.kind.clone(),
            vector: s.score.clone(),
            score: c.score(),
            rating: Rating::from_cvss(c.severity()),
        })
}

/// Whether a finding is a vulnerability or an informational advisory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// A vulnerability.
    Vulnerability,
    /// RustSec informational (unmaintained, unsound, notice), reported apart.
    Informational(Informational),
}

/// An advisory that applies to an installed package.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The advisory id.
    pub advisory_id: String,
    /// Its aliases.
    pub aliases: Vec<String>,
    /// Its summary.
    pub summary: Option<String>,
    /// Vulnerability or informational.
    pub kind: FindingKind,
    /// The package's ecosystem.
    pub ecosystem: String,
    /// The package's name, as the caller gave it.
    pub package: String,
    /// The installed version.
    pub installed_version: String,
    /// Versions named by `fixed` events of the matching ranges, in record order.
    pub fixed_versions: Vec<String>,
    /// Severity from the entry's or the record's CVSS vector, if any.
    pub severity: Option<Severity>,
    /// The distribution's own rating of the matching entry, kept as data
    /// (Debian's `ecosystem_specific.urgency`: `unimportant`, `low`, `medium`,
    /// `high`, `not yet assigned`); policy decides what it means.
    pub urgency: Option<String>,
}

impl Finding {
    /// `fixed` when a matching range names a fixed version, else `no fix yet`.
    pub fn fix_state(&self) -> &'static str {
        if self.fixed_versions.is_empty() {
            "no fix yet"
        } else {
            "fixed"
        }
    }
}

/// The key a package name is compared by, per ecosystem: PyPI per PEP 503
/// (lower case, runs of `-_.` as one `-`); NuGet and Packagist lower case
/// (their registries are case-insensitive); everything else exact (crates.io,
/// npm, Go module paths, Maven `group:artifact`, RubyGems, distributions).
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    let base = ecosystem.split_once(':').map_or(ecosystem, |(b, _)| b);
    let name = name.trim();
    match base {
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut in_sep = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !in_sep {
                        out.push('-');
                    }
                    in_sep = true;
                } else {
                    out.extend(c.to_lowercase());
                    in_sep = false;
                }
            }
            out
        }
        "NuGet" | "Packagist" => name.to_lowercase(),
        _ => name.to_owned(),
    }
}

/// The installed version parsed lazily, once per scheme it is needed under.
#[derive(Debug)]
pub struct Installed<'a> {
    raw: &'a str,
    cache: Vec<(Scheme, Result<Version, VersionError>)>,
}

impl<'a> Installed<'a> {
    /// The installed version `raw`, not parsed yet.
    pub fn new(raw: &'a str) -> Self {
        Installed {
            raw,
            cache: Vec::new(),
        }
    }

    /// The version as written.
    pub(crate) fn raw(&self) -> &str {
        self.raw
    }

    pub(crate) fn get(&mut self, scheme: Scheme) -> Result<&Version, Error> {
        let i = match self.cache.iter().position(|(s, _)| *s == scheme) {
            Some(i) => i,
            None => {
                self.cache.push((scheme, Version::parse(scheme, self.raw)));
                self.cache.len() - 1
            }
        };
        self.cache[i]
            .1
            .as_ref()
            .map_err(|e| Error::Version(e.clone()))
    }
}

fn ge(v: &Version, b: &Bound) -> bool {
    match b {
        Bound::Zero => true,
        Bound::At(x) => v.compare(x).is_some_and(|o| o != Ordering::Less),
    }
}

fn gt(v: &Version, b: &Bound) -> bool {
    match b {
        Bound::Zero => true,
        Bound::At(x) => v.compare(x) == Some(Ordering::Greater),
    }
}

/// The OSV evaluation of one range's sorted events.
pub(crate) fn in_range(v: &Version, events: &[(EventKind, Bound)]) -> bool {
    let mut affected = false;
    for (kind, bound) in events {
        match kind {
            EventKind::Introduced => {
                if ge(v, bound) {
                    affected = true;
                }
            }
            EventKind::Fixed => {
                if ge(v, bound) {
                    affected = false;
                }
            }
            EventKind::LastAffected => {
                if gt(v, bound) {
                    affected = false;
                }
            }
            EventKind::Limit => {}
        }
    }
    let mut limits = events
        .iter()
        .filter(|(k, _)| *k == EventKind::Limit)
        .peekable();
    if limits.peek().is_none() {
        return affected;
    }
    affected && limits.any(|(_, b)| !ge(v, b))
}

fn in_versions(entry: &Affected, installed: &mut Installed<'_>) -> bool {
    if entry.versions.iter().any(|v| v == installed.raw) {
        return true;
    }
    let Some(scheme) = entry.scheme else {
        return false;
    };
    let Ok(v) = installed.get(scheme) else {
        return false;
    };
    entry.versions.iter().any(|x| v.equals_text(x))
}

/// Whether one `affected` entry covers the installed version. `Err` when it
/// cannot tell: the installed version does not parse under a range's ordering,
/// or a range is broken, and nothing else says "affected".
fn entry_affects(
    advisory: &Advisory,
    entry: &Affected,
    installed: &mut Installed<'_>,
) -> Result<bool, Error> {
    // Affected when the version is in a range or listed: the ranges first
    // (cheap, a few parsed bounds), the list (text, parsed one by one) only
    // when no range says so.
    let mut undecided: Option<Error> = None;
    for range in &entry.ranges {
        match &range.compiled {
            Compiled::Git => {}
            Compiled::Broken(problem) => {
                undecided.get_or_insert(Error::RangeNotEvaluable {
                    advisory: advisory.id.clone(),
                    problem: problem.clone(),
                });
            }
            Compiled::Ready(events) => {
                let scheme = match range.kind {
                    RangeKind::Semver => Scheme::Semver,
                    _ => match entry.scheme {
                        Some(s) => s,
                        None => continue,
                    },
                };
                match installed.get(scheme) {
                    Ok(v) => {
                        if in_range(v, events) {
                            return Ok(true);
                        }
                    }
                    Err(e) => {
                        undecided.get_or_insert(e);
                    }
                }
            }
        }
    }
    if in_versions(entry, installed) {
        return Ok(true);
    }
    match undecided {
        Some(e) => Err(e),
        None => Ok(false),
    }
}

/// The versions named by `fixed` events of an entry's ranges (GIT ranges
/// aside), in record order, each once: what an affected entry adds to a
/// finding's fixed versions. [`crate::compiled`] keeps exactly these.
pub(crate) fn fixed_of(entry: &Affected) -> impl Iterator<Item = &str> {
    let mut seen: Vec<&str> = Vec::new();
    entry
        .ranges
        .iter()
        .filter(|r| r.kind != RangeKind::Git)
        .flat_map(|r| r.events.iter())
        .filter_map(move |e| match e {
            Event::Fixed(v) if !seen.contains(&v.as_str()) => {
                seen.push(v);
                Some(v.as_str())
            }
            _ => None,
        })
}

/// The distribution's own rating of an entry (`ecosystem_specific.urgency`),
/// at most 64 characters.
pub(crate) fn urgency_of(entry: &Affected) -> Option<String> {
    entry
        .ecosystem_specific
        .as_ref()
        .and_then(|e| e.get("urgency"))
        .and_then(serde_json::Value::as_str)
        .map(|u| u.chars().take(64).collect())
}

/// Evaluates the entries of `advisory` already known to name the package.
pub(crate) fn match_entries<'e>(
    advisory: &Advisory,
    package: &Package,
    entries: impl IntoIterator<Item = &'e Affected>,
    installed: &mut Installed<'_>,
) -> Result<Option<Finding>, Error> {
    if advisory.is_withdrawn() {
        return Ok(None);
    }
    let mut hit: Option<&Affected> = None;
    let mut fixed: Vec<String> = Vec::new();
    let mut error = None;
    for entry in entries {
        match entry_affects(advisory, entry, installed) {
            Ok(true) => {
                hit.get_or_insert(entry);
                for v in fixed_of(entry) {
                    if !fixed.iter().any(|f| f == v) {
                        fixed.push(v.to_owned());
                    }
                }
            }
            Ok(false) => {}
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    let Some(entry) = hit else {
        return match error {
            Some(e) => Err(e),
            None => Ok(None),
        };
    };
    let severity = severity_of(&entry.severity).or_else(|| severity_of(&advisory.severity));
    let urgency = urgency_of(entry);
    Ok(Some(Finding {
        advisory_id: advisory.id.clone(),
        aliases: advisory.aliases.clone(),
        summary: advisory.summary.clone(),
        kind: match &advisory.informational {
            Some(i) => FindingKind::Informational(i.clone()),
            None => FindingKind::Vulnerability,
        },
        ecosystem: package.ecosystem.clone(),
        package: package.name.clone(),
        installed_version: package.version.clone(),
        fixed_versions: fixed,
        severity,
        urgency,
    }))
}

/// Whether `advisory` applies to `package`: `Ok(Some)` a finding, `Ok(None)` not
/// affected (or withdrawn), `Err` could not evaluate.
pub fn matches(advisory: &Advisory, package: &Package) -> Result<Option<Finding>, Error> {
    let key = normalize_name(&package.ecosystem, &package.name);
    let entries = advisory.affected.iter().filter(|a| {
        a.ecosystem == package.ecosystem && normalize_name(&a.ecosystem, &a.name) == key
    });
    let mut installed = Installed::new(&package.version);
    match_entries(advisory, package, entries, &mut installed)
}

#[cfg(test)]
mod tests;
