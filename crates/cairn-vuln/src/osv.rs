//! OSV records (<https://ossf.github.io/osv-schema/>, schema 1.x) read from bytes.
//!
//! The wire shape (`wire`) is deserialised with serde and then validated into
//! the domain types below, which carry no serde. Fields the schema leaves open
//! (`ecosystem_specific`, `database_specific`) and fields added by later schema
//! versions are tolerated; required fields (`id`, `modified`), field types and
//! event shape (exactly one of introduced/fixed/last_affected/limit) are
//! enforced. Inputs are bounded ([`MAX_RECORD_BYTES`], [`MAX_EVENTS_PER_RANGE`]).
//!
//! Problems that make one range unusable (an unknown range type, a version that
//! does not parse, an ecosystem without a version ordering) do not reject the
//! record: they are listed in [`Advisory::problems`], and matching a package
//! that such a range concerns is an error, never a silent "not affected".

use crate::error::Error;
use crate::version::{Scheme, Version};
use serde_json::Value;
use std::fmt;

/// The largest record accepted (osv.dev's largest records are a few MiB).
pub const MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;
/// The most events in one range.
pub const MAX_EVENTS_PER_RANGE: usize = 4096;
/// The most `affected` entries in one record.
pub const MAX_AFFECTED: usize = 16_384;

mod wire {
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Deserialize)]
    pub(super) struct Record {
        pub id: String,
        pub modified: String,
        #[serde(default)]
        pub published: Option<String>,
        #[serde(default)]
        pub withdrawn: Option<String>,
        #[serde(default)]
        pub aliases: Option<Vec<String>>,
        #[serde(default)]
        pub related: Option<Vec<String>>,
        #[serde(default)]
        pub summary: Option<String>,
        #[serde(default)]
        pub details: Option<String>,
        #[serde(default)]
        pub severity: Option<Vec<Severity>>,
        #[serde(default)]
        pub affected: Option<Vec<Affected>>,
        #[serde(default)]
        pub references: Option<Vec<Reference>>,
        #[serde(default)]
        pub database_specific: Option<Value>,
    }

    #[derive(Deserialize)]
    pub(super) struct Severity {
        #[serde(rename = "type")]
        pub kind: String,
        pub score: String,
    }

    #[derive(Deserialize)]
    pub(super) struct Affected {
        #[serde(default)]
        pub package: Option<Package>,
        #[serde(default)]
        pub severity: Option<Vec<Severity>>,
        #[serde(default)]
        pub ranges: Option<Vec<Range>>,
        #[serde(default)]
        pub versions: Option<Vec<String>>,
        #[serde(default)]
        pub ecosystem_specific: Option<Value>,
        #[serde(default)]
        pub database_specific: Option<Value>,
    }

    #[derive(Deserialize)]
    pub(super) struct Package {
        pub ecosystem: String,
        pub name: String,
        #[serde(default)]
        pub purl: Option<String>,
    }

    #[derive(Deserialize)]
    pub(super) struct Range {
        #[serde(rename = "type")]
        pub kind: String,
        #[serde(default)]
        pub repo: Option<String>,
        pub events: Vec<Event>,
        #[serde(default)]
        pub database_specific: Option<Value>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Event {
        #[serde(default)]
        pub introduced: Option<String>,
        #[serde(default)]
        pub fixed: Option<String>,
        #[serde(default)]
        pub last_affected: Option<String>,
        #[serde(default)]
        pub limit: Option<String>,
    }

    #[derive(Deserialize)]
    pub(super) struct Reference {
        #[serde(rename = "type")]
        pub kind: String,
        pub url: String,
    }
}

/// One OSV record, validated.
#[derive(Debug, Clone)]
pub struct Advisory {
    /// `id`, e.g. `RUSTSEC-2021-0001`.
    pub id: String,
    /// `modified` (RFC 3339, as written).
    pub modified: String,
    /// `published`.
    pub published: Option<String>,
    /// `withdrawn`: a withdrawn record never matches.
    pub withdrawn: Option<String>,
    /// `aliases` (CVE, GHSA, …).
    pub aliases: Vec<String>,
    /// `related`.
    pub related: Vec<String>,
    /// `summary`.
    pub summary: Option<String>,
    /// `details` (Markdown).
    pub details: Option<String>,
    /// `severity`.
    pub severity: Vec<SeverityScore>,
    /// `affected`.
    pub affected: Vec<Affected>,
    /// `references`.
    pub references: Vec<Reference>,
    /// Top-level `database_specific`, kept as JSON (the schema leaves it open).
    pub database_specific: Option<Value>,
    /// RustSec's `informational` kind (from `affected[].database_specific` or the
    /// top level); `None` for a vulnerability.
    pub informational: Option<Informational>,
    /// What in this record cannot be used, by place.
    pub problems: Vec<RecordProblem>,
}

/// A `severity` entry: its type and score (a CVSS vector or a rating).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeverityScore {
    /// `type`: `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`, …
    pub kind: String,
    /// `score`.
    pub score: String,
}

/// A `references` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `type`: `ADVISORY`, `WEB`, `PACKAGE`, …
    pub kind: String,
    /// `url`.
    pub url: String,
}

/// RustSec's informational advisory kinds, reported apart from vulnerabilities.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Informational {
    /// The crate is no longer maintained.
    Unmaintained,
    /// The crate has an unsound API.
    Unsound,
    /// A notice.
    Notice,
    /// Another kind, as written.
    Other(String),
}

impl Informational {
    fn from_str(s: &str) -> Informational {
        match s {
            "unmaintained" => Informational::Unmaintained,
            "unsound" => Informational::Unsound,
            "notice" => Informational::Notice,
            o => Informational::Other(o.to_owned()),
        }
    }

    /// The kind as RustSec writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Informational::Unmaintained => "unmaintained",
            Informational::Unsound => "unsound",
            Informational::Notice => "notice",
            Informational::Other(s) => s,
        }
    }
}

/// An `affected` entry.
#[derive(Debug, Clone)]
pub struct Affected {
    /// `package.ecosystem`, as written (`crates.io`, `Debian:12`, …).
    pub ecosystem: String,
    /// `package.name`, as written.
    pub name: String,
    /// `package.purl`.
    pub purl: Option<String>,
    /// The version ordering of the ecosystem, when cairn has one.
    pub scheme: Option<Scheme>,
    /// `ranges`.
    pub ranges: Vec<Range>,
    /// `versions`: explicitly affected versions.
    pub versions: Vec<String>,
    /// `severity` of this entry (schema 1.4+), if any.
    pub severity: Vec<SeverityScore>,
    /// `ecosystem_specific`, kept as JSON.
    pub ecosystem_specific: Option<Value>,
    /// `database_specific`, kept as JSON.
    pub database_specific: Option<Value>,
}

/// A `ranges` entry.
#[derive(Debug, Clone)]
pub struct Range {
    /// `type`.
    pub kind: RangeKind,
    /// `repo` (GIT ranges).
    pub repo: Option<String>,
    /// `events`, in record order.
    pub events: Vec<Event>,
    /// `database_specific`, kept as JSON.
    pub database_specific: Option<Value>,
    /// The events with parsed versions, ready to evaluate.
    pub(crate) compiled: Compiled,
}

/// A range's `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeKind {
    /// `SEMVER`: versions ordered by SemVer 2.0, whatever the ecosystem.
    Semver,
    /// `ECOSYSTEM`: versions ordered by the ecosystem's rules.
    Ecosystem,
    /// `GIT`: commit hashes; not used for version matching (cairn matches
    /// released versions, and commit ancestry needs the repository).
    Git,
    /// Any other type, as written; reported as a record problem.
    Unknown(String),
}

/// A range event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `introduced`; `"0"` means "from the beginning".
    Introduced(String),
    /// `fixed`.
    Fixed(String),
    /// `last_affected`.
    LastAffected(String),
    /// `limit`.
    Limit(String),
}

impl Event {
    /// The version the event names.
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// A range prepared for evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Compiled {
    /// A GIT range: not used for version matching.
    Git,
    /// Parsed events.
    Ready(Vec<(EventKind, Bound)>),
    /// Cannot be evaluated; the problem is also in [`Advisory::problems`].
    Broken(RecordProblem),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    Introduced,
    Fixed,
    LastAffected,
    Limit,
}

/// A parsed event version; `Zero` is `introduced: "0"`, below every version.
#[derive(Debug, Clone)]
pub(crate) enum Bound {
    Zero,
    At(Version),
}

impl Bound {
    pub(crate) fn cmp_bound(&self, other: &Bound) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Bound::Zero, Bound::Zero) => Ordering::Equal,
            (Bound::Zero, Bound::At(_)) => Ordering::Less,
            (Bound::At(_), Bound::Zero) => Ordering::Greater,
            // Both parsed under the range's one scheme, so `compare` is `Some`.
            (Bound::At(a), Bound::At(b)) => a.compare(b).unwrap_or(Ordering::Equal),
        }
    }
}

/// Something in a record that cannot be used for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    /// Where: `affected[i].ranges[j]` or `affected[i]`.
    pub at: String,
    /// What.
    pub kind: ProblemKind,
}

/// The kinds of [`RecordProblem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// A range `type` outside SEMVER, ECOSYSTEM, GIT.
    UnknownRangeType(String),
    /// A version in an event does not parse under the range's ordering.
    UnparsableVersion {
        /// The version.
        version: String,
        /// Why.
        reason: &'static str,
    },
    /// An ECOSYSTEM range for an ecosystem cairn has no ordering for.
    UnsupportedEcosystem(String),
    /// A range without any `introduced` event (the schema requires one).
    NoIntroduced,
    /// A distribution ecosystem (`Debian`, `Ubuntu`, `Alpine`) without a release
    /// cairn can recognise (`Debian:bookworm`): the entry never applies.
    UnknownRelease(String),
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ProblemKind::UnknownRangeType(t) => write!(f, "{}: unknown range type {t:?}", self.at),
            ProblemKind::UnparsableVersion { version, reason } => {
                write!(
                    f,
                    "{}: version {version:?} does not parse: {reason}",
                    self.at
                )
            }
            ProblemKind::UnsupportedEcosystem(e) => {
                write!(f, "{}: no version ordering for ecosystem {e:?}", self.at)
            }
            ProblemKind::NoIntroduced => write!(f, "{}: range has no introduced event", self.at),
            ProblemKind::UnknownRelease(why) => write!(f, "{}: {why}", self.at),
        }
    }
}

/// What a record names, read without building it ([`Advisory::peek`]): enough to
/// decide whether a record can concern some packages before a full parse.
#[derive(Debug)]
pub struct Peek<'a> {
    /// The record's id.
    pub id: std::borrow::Cow<'a, str>,
    /// Whether the record says it is withdrawn.
    pub withdrawn: bool,
    /// Every `affected[].package` as (ecosystem, name), as written.
    pub packages: Vec<(std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
}

mod peek_wire {
    use serde::Deserialize;
    use serde::de::IgnoredAny;
    use std::borrow::Cow;

    #[derive(Deserialize)]
    pub(super) struct Record<'a> {
        #[serde(borrow)]
        pub id: Cow<'a, str>,
        #[allow(dead_code)]
        pub modified: IgnoredAny,
        #[serde(default)]
        pub withdrawn: Option<IgnoredAny>,
        #[serde(default, borrow)]
        pub affected: Option<Vec<Affected<'a>>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Affected<'a> {
        #[serde(default, borrow)]
        pub package: Option<Package<'a>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Package<'a> {
        #[serde(borrow)]
        pub ecosystem: Cow<'a, str>,
        #[serde(borrow)]
        pub name: Cow<'a, str>,
    }
}

impl Advisory {
    /// Reads one OSV record from JSON bytes.
    /// Reads only a record's id, withdrawal and package names, borrowing from
    /// `bytes` (no other field is built): a cheap first look. A record
    /// [`Advisory::parse`] accepts always peeks; one that peeks may still be
    /// refused by the full parse, so a record kept after a peek is parsed in full.
    pub fn peek(bytes: &[u8]) -> Result<Peek<'_>, Error> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(Error::RecordTooLarge {
                len: bytes.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let rec: peek_wire::Record<'_> = serde_json::from_slice(bytes).map_err(Error::Json)?;
        Ok(Peek {
            id: rec.id,
            withdrawn: rec.withdrawn.is_some(),
            packages: rec
                .affected
                .unwrap_or_default()
                .into_iter()
                .filter_map(|a| a.package)
                .map(|p| (p.ecosystem, p.name))
                .collect(),
        })
    }

    pub fn parse(bytes: &[u8]) -> Result<Advisory, Error> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(Error::RecordTooLarge {
                len: bytes.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let rec: wire::Record = serde_json::from_slice(bytes).map_err(Error::Json)?;
        let id = rec.id;
        let invalid = |field: String, reason: &'static str| Error::InvalidRecord {
            id: Some(id.clone()),
            field,
            reason,
        };
        if id.trim().is_empty() {
            return Err(invalid("id".into(), "empty"));
        }
        if rec.modified.trim().is_empty() {
            return Err(invalid("modified".into(), "empty"));
        }
        let wire_affected = rec.affected.unwrap_or_default();
        if wire_affected.len() > MAX_AFFECTED {
            return Err(invalid("affected".into(), "too many entries"));
        }
        let mut problems = Vec::new();
        let mut informational = rec
            .database_specific
            .as_ref()
            .and_then(|d| d.get("informational"))
            .and_then(Value::as_str)
            .map(Informational::from_str);
        let mut affected = Vec::with_capacity(wire_affected.len());
        for (i, a) in wire_affected.into_iter().enumerate() {
            let Some(pkg) = a.package else {
                // Schema 1.x allows `affected` without `package` only for GIT
                // ranges of a repository; it names no package to match.
                continue;
            };
            if pkg.ecosystem.is_empty() || pkg.name.is_empty() {
                return Err(invalid(
                    format!("affected[{i}].package"),
                    "empty ecosystem or name",
                ));
            }
            if informational.is_none() {
                informational = a
                    .database_specific
                    .as_ref()
                    .and_then(|d| d.get("informational"))
                    .and_then(Value::as_str)
                    .map(Informational::from_str);
            }
            let scheme = Scheme::for_ecosystem(&pkg.ecosystem);
            if let Some(why) = crate::distro::unknown_release(&pkg.ecosystem) {
                problems.push(RecordProblem {
                    at: format!("affected[{i}].package.ecosystem"),
                    kind: ProblemKind::UnknownRelease(why),
                });
            }
            let mut ranges = Vec::new();
            for (j, r) in a.ranges.unwrap_or_default().into_iter().enumerate() {
                // Where, for an error or a problem: written only then.
                let at = || format!("affected[{i}].ranges[{j}]");
                if r.events.is_empty() {
                    return Err(invalid(format!("{}.events", at()), "empty"));
                }
                if r.events.len() > MAX_EVENTS_PER_RANGE {
                    return Err(invalid(format!("{}.events", at()), "too many events"));
                }
                let mut events = Vec::with_capacity(r.events.len());
                for (k, e) in r.events.into_iter().enumerate() {
                    let ev = match (e.introduced, e.fixed, e.last_affected, e.limit) {
                        (Some(v), None, None, None) => Event::Introduced(v),
                        (None, Some(v), None, None) => Event::Fixed(v),
                        (None, None, Some(v), None) => Event::LastAffected(v),
                        (None, None, None, Some(v)) => Event::Limit(v),
                        _ => {
                            return Err(invalid(
                                format!("{}.events[{k}]", at()),
                                "needs exactly one of introduced, fixed, last_affected, limit",
                            ));
                        }
                    };
                    events.push(ev);
                }
                let kind = match r.kind.as_str() {
                    "SEMVER" => RangeKind::Semver,
                    "ECOSYSTEM" => RangeKind::Ecosystem,
                    "GIT" => RangeKind::Git,
                    other => RangeKind::Unknown(other.to_owned()),
                };
                let compiled = compile(&kind, scheme, &pkg.ecosystem, &events, &at, &mut problems);
                ranges.push(Range {
                    kind,
                    repo: r.repo,
                    events,
                    database_specific: r.database_specific,
                    compiled,
                });
            }
            affected.push(Affected {
                ecosystem: pkg.ecosystem,
                name: pkg.name,
                purl: pkg.purl,
                scheme,
                ranges,
                versions: a.versions.unwrap_or_default(),
                severity: severities(a.severity),
                ecosystem_specific: a.ecosystem_specific,
                database_specific: a.database_specific,
            });
        }
        Ok(Advisory {
            id,
            modified: rec.modified,
            published: rec.published,
            withdrawn: rec.withdrawn,
            aliases: rec.aliases.unwrap_or_default(),
            related: rec.related.unwrap_or_default(),
            summary: rec.summary,
            details: rec.details,
            severity: severities(rec.severity),
            affected,
            references: rec
                .references
                .unwrap_or_default()
                .into_iter()
                .map(|r| Reference {
                    kind: r.kind,
                    url: r.url,
                })
                .collect(),
            database_specific: rec.database_specific,
            informational,
            problems,
        })
    }

    /// Whether the record is withdrawn (it is kept, but never matches).
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }
}

/// The fields of a record matching and findings read: a match form keeps these
/// and drops the rest (`details`, `references`, `related`, `credits`, each
/// range's `database_specific`; of the open `database_specific` and
/// `ecosystem_specific` objects only `informational` and `urgency`).
const KEPT_TOP: &[&str] = &[
    "schema_version",
    "id",
    "modified",
    "published",
    "withdrawn",
    "aliases",
    "summary",
    "severity",
    "affected",
    "database_specific",
];

/// An open object (`database_specific`, `ecosystem_specific`) cut down to the
/// one key matching reads; `None` when it does not have it (matching reads it
/// only through that key, so dropping the object changes nothing).
fn keep_key(value: Option<Value>, key: &str) -> Option<Value> {
    let Value::Object(mut object) = value? else {
        return None;
    };
    let kept = object.remove(key)?;
    let mut out = serde_json::Map::new();
    out.insert(key.to_owned(), kept);
    Some(Value::Object(out))
}

/// A record's match form: the record's JSON with only what matching and a
/// finding read (see [`KEPT_TOP`]), for a store to keep beside the record so a
/// scan parses a few hundred bytes per record instead of the whole text. Of
/// each entry's `versions` it keeps only those its ranges do not already
/// cover ([`covered_by_ranges`]).
/// [`Advisory::parse`] of the form gives the same matches, findings (ids,
/// aliases, summary, severity, urgency, fixed versions, kind) and record
/// problems as of the record. `None` when the record does not parse (keep
/// no form: matching then reads the record itself).
pub fn match_form(bytes: &[u8]) -> Option<Vec<u8>> {
    let advisory = Advisory::parse(bytes).ok()?;
    let Value::Object(mut record) = serde_json::from_slice::<Value>(bytes).ok()? else {
        return None;
    };
    record.retain(|k, _| KEPT_TOP.contains(&k.as_str()));
    if let Some(d) = keep_key(record.remove("database_specific"), "informational") {
        record.insert("database_specific".to_owned(), d);
    }
    if let Some(Value::Array(affected)) = record.get_mut("affected") {
        // The parsed entries, in order: the parse skips an entry without a
        // package (it names nothing to match), so the two lists pair up by
        // counting the entries that have one.
        let mut parsed = advisory.affected.iter();
        for entry in affected.iter_mut() {
            let Value::Object(entry) = entry else {
                continue;
            };
            let has_package = entry.get("package").is_some_and(|p| !p.is_null());
            if has_package
                && let Some(parsed) = parsed.next()
                && let Some(Value::Array(versions)) = entry.get_mut("versions")
            {
                versions.retain(|v| !v.as_str().is_some_and(|v| covered_by_ranges(parsed, v)));
            }
            if let Some(d) = keep_key(entry.remove("database_specific"), "informational") {
                entry.insert("database_specific".to_owned(), d);
            }
            if let Some(e) = keep_key(entry.remove("ecosystem_specific"), "urgency") {
                entry.insert("ecosystem_specific".to_owned(), e);
            }
            if let Some(Value::Array(ranges)) = entry.get_mut("ranges") {
                for range in ranges.iter_mut() {
                    if let Value::Object(range) = range {
                        range.remove("database_specific");
                    }
                }
            }
        }
    }
    let form = serde_json::to_vec(&Value::Object(record)).ok()?;
    // The form must read as a record too; else keep none (never a form that
    // would turn a record into "does not parse").
    Advisory::parse(&form).ok()?;
    Some(form)
}

/// Whether `listed`, one of an entry's `versions`, is already affected through
/// one of the entry's own ranges under the entry's ordering, so that a match
/// form can drop it: matching answers "affected" when the installed version is
/// listed *or* in a range, and an installed version equal to `listed` (as text,
/// or under the ordering) compares with every bound as `listed` does, so it is
/// in that range too. That last step needs an ordering where equal versions
/// compare alike with everything (a total preorder by construction): dpkg's
/// (the token comparison of `verrevcmp`), SemVer precedence, PEP 440,
/// NuGet's and the numeric lists'. The others (Maven, RubyGems, Packagist,
/// apk, rpm, Pub) keep every listed version. OSV.dev's Debian records list
/// every version of their ranges: their forms keep none.
pub(crate) fn covered_by_ranges(entry: &Affected, listed: &str) -> bool {
    let Some(scheme) = entry.scheme else {
        return false;
    };
    if !matches!(
        scheme,
        Scheme::Debian
            | Scheme::Semver
            | Scheme::Pypi
            | Scheme::NuGet
            | Scheme::Cran
            | Scheme::Hackage
    ) {
        return false;
    }
    let Ok(v) = Version::parse(scheme, listed) else {
        return false;
    };
    entry.ranges.iter().any(|r| {
        let same_order = match r.kind {
            RangeKind::Ecosystem => true,
            RangeKind::Semver => scheme == Scheme::Semver,
            RangeKind::Git | RangeKind::Unknown(_) => false,
        };
        same_order
            && matches!(&r.compiled, Compiled::Ready(events) if crate::matching::in_range(&v, events))
    })
}

fn severities(s: Option<Vec<wire::Severity>>) -> Vec<SeverityScore> {
    s.unwrap_or_default()
        .into_iter()
        .map(|s| SeverityScore {
            kind: s.kind,
            score: s.score,
        })
        .collect()
}

/// Parses a range's event versions; records a problem when it cannot be
/// evaluated.
fn compile(
    kind: &RangeKind,
    scheme: Option<Scheme>,
    ecosystem: &str,
    events: &[Event],
    at: &dyn Fn() -> String,
    problems: &mut Vec<RecordProblem>,
) -> Compiled {
    let mut problem = |kind| {
        let p = RecordProblem { at: at(), kind };
        problems.push(p.clone());
        Compiled::Broken(p)
    };
    let scheme = match kind {
        RangeKind::Git => return Compiled::Git,
        RangeKind::Unknown(t) => return problem(ProblemKind::UnknownRangeType(t.clone())),
        RangeKind::Semver => Scheme::Semver,
        RangeKind::Ecosystem => match scheme {
            Some(s) => s,
            None => return problem(ProblemKind::UnsupportedEcosystem(ecosystem.to_owned())),
        },
    };
    if !events.iter().any(|e| matches!(e, Event::Introduced(_))) {
        return problem(ProblemKind::NoIntroduced);
    }
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let kind = match e {
            Event::Introduced(_) => EventKind::Introduced,
            Event::Fixed(_) => EventKind::Fixed,
            Event::LastAffected(_) => EventKind::LastAffected,
            Event::Limit(_) => EventKind::Limit,
        };
        let v = e.version();
        let bound = if kind == EventKind::Introduced && v == "0" {
            Bound::Zero
        } else if kind == EventKind::Limit && v == "*" {
            // `limit: "*"` means no limit (schema: "limit": "*" is unbounded).
            continue;
        } else {
            match Version::parse(scheme, v) {
                Ok(p) => Bound::At(p),
                Err(err) => {
                    return problem(ProblemKind::UnparsableVersion {
                        version: v.chars().take(128).collect(),
                        reason: err.reason,
                    });
                }
            }
        };
        out.push((kind, bound));
    }
    // The OSV algorithm walks events in version order; a stable sort keeps the
    // record's order among equal versions.
    out.sort_by(|a, b| a.1.cmp_bound(&b.1));
    Compiled::Ready(out)
}
