//! OpenVEX v0.2.0 documents (<https://github.com/openvex/spec>): strict, bounded
//! parsing, and the statement that applies to a finding.
//!
//! A statement applies to a finding when its vulnerability `name` or one of its
//! `aliases` equals the finding's advisory id or one of its aliases (ASCII case
//! ignored), and one of its products — or, when a product lists subcomponents,
//! one of those — is a purl naming the finding's package: same type, namespace
//! and name; the same version when the VEX purl gives one (none means every
//! version); and every qualifier the VEX purl gives present and equal (qualifiers
//! the VEX purl does not give are ignored, as the purl spec allows). When several
//! statements apply, the latest by timestamp wins (a statement without its own
//! timestamp has its document's); on a tie, the one read last.
//!
//! A `not_affected` statement without a justification is refused (kept in
//! [`VexDocument::refused`], never applied). Floor 1: callers hand in bytes.

use cairn_model::purl::Purl;
use std::collections::BTreeMap;

use serde::Deserialize;

/// The largest VEX document accepted.
pub const MAX_VEX_BYTES: usize = 16 * 1024 * 1024;
/// The most statements one document may hold.
pub const MAX_VEX_STATEMENTS: usize = 100_000;

/// Why a VEX document was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum VexError {
    #[error("document is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid OpenVEX JSON")]
    Json(#[source] serde_json::Error),
    #[error("more than {limit} statements")]
    TooManyStatements { limit: usize },
    #[error("{0}")]
    Invalid(String),
}

/// A statement's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl VexStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VexStatus::NotAffected => "not_affected",
            VexStatus::Affected => "affected",
            VexStatus::Fixed => "fixed",
            VexStatus::UnderInvestigation => "under_investigation",
        }
    }

    /// `not_affected` and `fixed` suppress a finding; the others annotate it.
    pub fn suppresses(self) -> bool {
        matches!(self, VexStatus::NotAffected | VexStatus::Fixed)
    }
}

/// The justifications OpenVEX defines for `not_affected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Justification {
    ComponentNotPresent,
    VulnerableCodeNotPresent,
    VulnerableCodeNotInExecutePath,
    VulnerableCodeCannotBeControlledByAdversary,
    InlineMitigationsAlreadyExist,
}

impl Justification {
    pub fn as_str(self) -> &'static str {
        match self {
            Justification::ComponentNotPresent => "component_not_present",
            Justification::VulnerableCodeNotPresent => "vulnerable_code_not_present",
            Justification::VulnerableCodeNotInExecutePath => "vulnerable_code_not_in_execute_path",
            Justification::VulnerableCodeCannotBeControlledByAdversary => {
                "vulnerable_code_cannot_be_controlled_by_adversary"
            }
            Justification::InlineMitigationsAlreadyExist => "inline_mitigations_already_exist",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    #[serde(rename = "@context")]
    context: String,
    #[serde(rename = "@id")]
    id: String,
    author: String,
    #[serde(default)]
    role: Option<String>,
    timestamp: String,
    #[serde(default)]
    last_updated: Option<String>,
    version: u64,
    #[serde(default)]
    tooling: Option<String>,
    statements: Vec<RawStatement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(rename = "@id", default)]
    _id: Option<String>,
    #[serde(default)]
    version: Option<u64>,
    vulnerability: RawVulnerability,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    last_updated: Option<String>,
    #[serde(default)]
    products: Vec<RawComponent>,
    status: VexStatus,
    #[serde(default)]
    supplier: Option<String>,
    #[serde(default)]
    status_notes: Option<String>,
    #[serde(default)]
    justification: Option<Justification>,
    #[serde(default)]
    impact_statement: Option<String>,
    #[serde(default)]
    action_statement: Option<String>,
    #[serde(default)]
    action_statement_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVulnerability {
    #[serde(rename = "@id", default)]
    _id: Option<String>,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    #[serde(rename = "@id", default)]
    id: Option<String>,
    #[serde(default)]
    identifiers: BTreeMap<String, String>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(default)]
    subcomponents: Vec<RawComponent>,
}

/// A product a statement speaks of: its purl (from `@id` or `identifiers.purl`,
/// `None` when it has neither) and its subcomponents' purls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VexProduct {
    pub purl: Option<String>,
    pub subcomponents: Vec<String>,
}

/// One accepted statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VexStatement {
    pub vulnerability: String,
    pub aliases: Vec<String>,
    pub products: Vec<VexProduct>,
    pub status: VexStatus,
    pub justification: Option<Justification>,
    pub impact_statement: Option<String>,
    pub action_statement: Option<String>,
    /// The statement's timestamp, or its document's, as written.
    pub timestamp: String,
    time_key: (i64, u32),
}

/// A parsed OpenVEX document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VexDocument {
    pub id: String,
    pub author: String,
    pub timestamp: String,
    pub version: u64,
    pub statements: Vec<VexStatement>,
    /// Statements refused, each with why (e.g. `not_affected` without justification).
    pub refused: Vec<String>,
}

fn purl_of(c: &RawComponent) -> Option<String> {
    c.identifiers
        .get("purl")
        .cloned()
        .or_else(|| c.id.clone().filter(|i| i.starts_with("pkg:")))
}

impl VexDocument {
    /// Parses an OpenVEX v0.2.0 JSON document, strictly: unknown fields, a foreign
    /// `@context`, bad timestamps or statuses refuse the document.
    pub fn parse(bytes: &[u8]) -> Result<VexDocument, VexError> {
        if bytes.len() > MAX_VEX_BYTES {
            return Err(VexError::TooLarge {
                size: bytes.len(),
                limit: MAX_VEX_BYTES,
            });
        }
        let raw: RawDocument = serde_json::from_slice(bytes).map_err(VexError::Json)?;
        if !raw.context.starts_with("https://openvex.dev/ns") {
            return Err(VexError::Invalid(format!(
                "@context `{}` is not OpenVEX (https://openvex.dev/ns/…)",
                raw.context
            )));
        }
        if raw.statements.len() > MAX_VEX_STATEMENTS {
            return Err(VexError::TooManyStatements {
                limit: MAX_VEX_STATEMENTS,
            });
        }
        let _ = (
            &raw.role,
            &raw.tooling,
            raw.last_updated.as_deref().map(parse_time),
        );
        let doc_key = parse_time(&raw.timestamp).ok_or_else(|| {
            VexError::Invalid(format!("timestamp `{}` is not RFC 3339", raw.timestamp))
        })?;
        let mut statements = Vec::new();
        let mut refused = Vec::new();
        for (n, s) in raw.statements.into_iter().enumerate() {
            let _ = (&s.version, &s.last_updated, &s.supplier, &s.status_notes);
            let _ = (&s.action_statement_timestamp, &s.vulnerability.description);
            let what = format!("statement {} ({})", n + 1, s.vulnerability.name);
            if s.vulnerability.name.trim().is_empty() {
                refused.push(format!("{what}: the vulnerability has no name"));
                continue;
            }
            if s.status == VexStatus::NotAffected && s.justification.is_none() {
                refused.push(format!(
                    "{what}: not_affected without a justification is not accepted"
                ));
                continue;
            }
            let (timestamp, time_key) = match &s.timestamp {
                Some(t) => match parse_time(t) {
                    Some(k) => (t.clone(), k),
                    None => {
                        refused.push(format!("{what}: timestamp `{t}` is not RFC 3339"));
                        continue;
                    }
                },
                None => (raw.timestamp.clone(), doc_key),
            };
            let products: Vec<VexProduct> = s
                .products
                .iter()
                .map(|p| {
                    let _ = &p.hashes;
                    VexProduct {
                        purl: purl_of(p),
                        subcomponents: p.subcomponents.iter().filter_map(purl_of).collect(),
                    }
                })
                .collect();
            if products.is_empty() {
                refused.push(format!("{what}: names no product"));
                continue;
            }
            statements.push(VexStatement {
                vulnerability: s.vulnerability.name,
                aliases: s.vulnerability.aliases,
                products,
                status: s.status,
                justification: s.justification,
                impact_statement: s.impact_statement,
                action_statement: s.action_statement,
                timestamp,
                time_key,
            });
        }
        Ok(VexDocument {
            id: raw.id,
            author: raw.author,
            timestamp: raw.timestamp,
            version: raw.version,
            statements,
            refused,
        })
    }
}

/// The statement that applies to a finding, with the document it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VexVerdict {
    pub document_id: String,
    pub statement: VexStatement,
}

/// Statements from any number of documents, in the order read.
#[derive(Debug, Clone, Default)]
pub struct VexSet {
    statements: Vec<(String, VexStatement)>,
}

impl VexSet {
    pub fn new() -> VexSet {
        VexSet::default()
    }

    /// Adds a document's accepted statements.
    pub fn add(&mut self, doc: &VexDocument) {
        for s in &doc.statements {
            self.statements.push((doc.id.clone(), s.clone()));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// The latest statement about any of `ids` (an advisory id and its aliases)
    /// for the package named by `purl`, if one applies.
    pub fn verdict(&self, ids: &[&str], purl: &str) -> Option<VexVerdict> {
        let target = Purl::parse(purl.trim()).ok()?;
        let mut best: Option<&(String, VexStatement)> = None;
        for entry in &self.statements {
            let s = &entry.1;
            let named = std::iter::once(&s.vulnerability)
                .chain(&s.aliases)
                .any(|v| ids.iter().any(|id| id.eq_ignore_ascii_case(v)));
            if !named || !s.products.iter().any(|p| product_matches(p, &target)) {
                continue;
            }
            if best.is_none_or(|b| s.time_key >= b.1.time_key) {
                best = Some(entry);
            }
        }
        best.map(|(doc, s)| VexVerdict {
            document_id: doc.clone(),
            statement: s.clone(),
        })
    }
}

fn product_matches(p: &VexProduct, target: &Purl) -> bool {
    let matches = |s: &str| Purl::parse(s.trim()).is_ok_and(|v| covers(&v, target));
    if p.subcomponents.is_empty() {
        p.purl.as_deref().is_some_and(matches)
    } else {
        p.subcomponents.iter().any(|s| matches(s))
    }
}

/// Whether the (VEX) purl `vex` names the package `target` is: the same type,
/// namespace and name, its version (if any) the target's, its qualifiers (if
/// any) among the target's.
fn covers(vex: &Purl, target: &Purl) -> bool {
    vex.ty == target.ty
        && vex.namespace == target.namespace
        && vex.name == target.name
        && vex
            .version
            .as_ref()
            .is_none_or(|v| target.version.as_ref() == Some(v))
        && vex
            .qualifiers
            .iter()
            .all(|(k, v)| target.qualifiers.get(k) == Some(v))
}

/// RFC 3339 date-time to (seconds since the epoch, nanoseconds), for ordering.
fn parse_time(s: &str) -> Option<(i64, u32)> {
    cairn_model::time::parse_rfc3339(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, ts: &str, statements: &str) -> String {
        format!(
            r#"{{"@context":"https://openvex.dev/ns/v0.2.0","@id":"{id}","author":"sec@example.com","timestamp":"{ts}","version":1,"statements":[{statements}]}}"#
        )
    }

    fn stmt(vuln: &str, aliases: &str, product: &str, status: &str, extra: &str) -> String {
        format!(
            r#"{{"vulnerability":{{"name":"{vuln}","aliases":[{aliases}]}},"products":[{product}],"status":"{status}"{extra}}}"#
        )
    }

    const NA: &str = r#","justification":"vulnerable_code_not_in_execute_path""#;
    const SMALLVEC: &str = r#"{"@id":"pkg:cargo/smallvec@1.6.0"}"#;

    fn set(docs: &[String]) -> VexSet {
        let mut s = VexSet::new();
        for d in docs {
            s.add(&VexDocument::parse(d.as_bytes()).unwrap());
        }
        s
    }

    #[test]
    fn parses_a_document() {
        let d = VexDocument::parse(
            doc(
                "https://example.com/vex/1",
                "2024-01-02T03:04:05Z",
                &stmt(
                    "RUSTSEC-2021-0003",
                    "\"CVE-2021-25900\"",
                    SMALLVEC,
                    "not_affected",
                    NA,
                ),
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(d.id, "https://example.com/vex/1");
        assert_eq!(d.statements.len(), 1);
        let s = &d.statements[0];
        assert_eq!(s.status, VexStatus::NotAffected);
        assert_eq!(
            s.justification,
            Some(Justification::VulnerableCodeNotInExecutePath)
        );
        assert_eq!(s.aliases, vec!["CVE-2021-25900".to_owned()]);
        assert_eq!(
            s.products[0].purl.as_deref(),
            Some("pkg:cargo/smallvec@1.6.0")
        );
        assert!(d.refused.is_empty());
    }

    #[test]
    fn refuses_not_affected_without_justification() {
        let d = VexDocument::parse(
            doc(
                "d",
                "2024-01-02T03:04:05Z",
                &stmt("RUSTSEC-2021-0003", "", SMALLVEC, "not_affected", ""),
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(d.statements.is_empty());
        assert_eq!(d.refused.len(), 1);
        assert!(d.refused[0].contains("justification"), "{:?}", d.refused);
        let mut s = VexSet::new();
        s.add(&d);
        assert!(
            s.verdict(&["RUSTSEC-2021-0003"], "pkg:cargo/smallvec@1.6.0")
                .is_none()
        );
    }

    #[test]
    fn strict_refusals() {
        let good = doc(
            "d",
            "2024-01-02T03:04:05Z",
            &stmt("X-1", "", SMALLVEC, "fixed", ""),
        );
        assert!(VexDocument::parse(good.as_bytes()).is_ok());
        for bad in [
            good.replace("openvex.dev/ns", "example.com/ns"),
            good.replace("\"fixed\"", "\"wontfix\""),
            good.replace("\"version\":1", "\"version\":1,\"surprise\":true"),
            good.replace("2024-01-02T03:04:05Z", "yesterday"),
            good.replace("\"author\":\"sec@example.com\",", ""),
            good.replace("vulnerable", "x")
                .replace("\"fixed\"", "\"fixed\",\"justification\":\"because\""),
        ] {
            assert!(VexDocument::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_by_alias_and_purl() {
        let s = set(&[doc(
            "d",
            "2024-01-02T03:04:05Z",
            &stmt(
                "CVE-2021-25900",
                "\"GHSA-abcd\"",
                SMALLVEC,
                "not_affected",
                NA,
            ),
        )]);
        let v = s
            .verdict(
                &["RUSTSEC-2021-0003", "cve-2021-25900"],
                "pkg:cargo/smallvec@1.6.0",
            )
            .unwrap();
        assert_eq!(v.document_id, "d");
        assert!(
            s.verdict(&["GHSA-abcd"], "pkg:cargo/smallvec@1.6.0")
                .is_some()
        );
        assert!(
            s.verdict(&["RUSTSEC-2021-0003"], "pkg:cargo/smallvec@1.6.0")
                .is_none()
        );
        assert!(
            s.verdict(&["CVE-2021-25900"], "pkg:cargo/smallvec@1.6.1")
                .is_none()
        );
        assert!(
            s.verdict(&["CVE-2021-25900"], "pkg:cargo/other@1.6.0")
                .is_none()
        );
        assert!(
            s.verdict(&["CVE-2021-25900"], "pkg:npm/smallvec@1.6.0")
                .is_none()
        );
        // Qualifiers on the finding's purl that the VEX purl does not give are ignored.
        assert!(
            s.verdict(&["CVE-2021-25900"], "pkg:cargo/smallvec@1.6.0?arch=x86_64")
                .is_some()
        );
    }

    #[test]
    fn purl_matching_rules() {
        let m = |vex: &str, target: &str| {
            covers(&Purl::parse(vex).unwrap(), &Purl::parse(target).unwrap())
        };
        assert!(m("pkg:cargo/smallvec", "pkg:cargo/smallvec@1.6.0"));
        assert!(m(
            "pkg:npm/%40types/node@1.0.0",
            "pkg:npm/@types/node@1.0.0"
        ));
        assert!(m(
            "pkg:deb/debian/curl@7.0?arch=amd64",
            "pkg:deb/debian/curl@7.0?arch=amd64&distro=bookworm"
        ));
        assert!(!m(
            "pkg:deb/debian/curl@7.0?arch=arm64",
            "pkg:deb/debian/curl@7.0?arch=amd64"
        ));
        assert!(!m(
            "pkg:deb/debian/curl@7.0?arch=amd64",
            "pkg:deb/debian/curl@7.0"
        ));
        assert!(!m(
            "pkg:golang/github.com/a/b@1",
            "pkg:golang/github.com/c/b@1"
        ));
        assert!(Purl::parse("not-a-purl").is_err());
        // The one codec's spec rules: PyPI names compare normalised.
        assert!(m("pkg:pypi/Django_Rest@1", "pkg:pypi/django-rest@1"));
    }

    /// A product whose purl is malformed (a broken escape, which the old lenient
    /// decoder kept as text and matched) suppresses nothing: the finding stays.
    #[test]
    fn a_malformed_purl_suppresses_nothing() {
        let set = set(&[doc(
            "https://example.invalid/vex/1",
            "2024-01-01T00:00:00Z",
            &stmt(
                "CVE-2024-0001",
                "",
                r#"{"@id":"pkg:cargo/smallvec%zz@1.0.0"}"#,
                "not_affected",
                NA,
            ),
        )]);
        assert!(
            set.verdict(&["CVE-2024-0001"], "pkg:cargo/smallvec%zz@1.0.0")
                .is_none()
        );
        assert!(
            set.verdict(&["CVE-2024-0001"], "pkg:cargo/smallvec@1.0.0")
                .is_none()
        );
    }

    #[test]
    fn subcomponents_match_and_bare_product_does_not_cover_them() {
        let p = r#"{"@id":"pkg:oci/app@sha256:abc","subcomponents":[{"@id":"pkg:cargo/smallvec@1.6.0"}]}"#;
        let s = set(&[doc(
            "d",
            "2024-01-02T03:04:05Z",
            &stmt("X-1", "", p, "fixed", ""),
        )]);
        assert_eq!(
            s.verdict(&["X-1"], "pkg:cargo/smallvec@1.6.0")
                .unwrap()
                .statement
                .status,
            VexStatus::Fixed
        );
        assert!(s.verdict(&["X-1"], "pkg:oci/app@sha256:abc").is_none());
        let ident = r#"{"identifiers":{"purl":"pkg:cargo/smallvec@1.6.0"}}"#;
        let s = set(&[doc(
            "d",
            "2024-01-02T03:04:05Z",
            &stmt("X-1", "", ident, "affected", ""),
        )]);
        assert!(s.verdict(&["X-1"], "pkg:cargo/smallvec@1.6.0").is_some());
    }

    #[test]
    fn latest_statement_wins() {
        let older = doc(
            "old",
            "2024-01-01T00:00:00Z",
            &stmt("X-1", "", SMALLVEC, "not_affected", NA),
        );
        let newer = doc(
            "new",
            "2024-01-01T01:00:00+02:00",
            &stmt("X-1", "", SMALLVEC, "affected", ""),
        );
        // 01:00+02:00 is 23:00Z the day before: older than "old".
        let s = set(&[older.clone(), newer.clone()]);
        assert_eq!(
            s.verdict(&["X-1"], "pkg:cargo/smallvec@1.6.0")
                .unwrap()
                .document_id,
            "old"
        );
        let newest = doc(
            "newest",
            "2024-06-01T00:00:00.5Z",
            &stmt("X-1", "", SMALLVEC, "under_investigation", ""),
        );
        let s = set(&[newest, older.clone(), newer]);
        let v = s.verdict(&["X-1"], "pkg:cargo/smallvec@1.6.0").unwrap();
        assert_eq!(v.document_id, "newest");
        assert_eq!(v.statement.status, VexStatus::UnderInvestigation);
        // A statement's own timestamp beats its document's.
        let own = doc(
            "own",
            "2020-01-01T00:00:00Z",
            &stmt(
                "X-1",
                "",
                SMALLVEC,
                "fixed",
                r#","timestamp":"2030-01-01T00:00:00Z""#,
            ),
        );
        let s = set(&[older, own]);
        assert_eq!(
            s.verdict(&["X-1"], "pkg:cargo/smallvec@1.6.0")
                .unwrap()
                .document_id,
            "own"
        );
    }

    #[test]
    fn bounded_input() {
        let big = vec![b' '; MAX_VEX_BYTES + 1];
        assert!(matches!(
            VexDocument::parse(&big),
            Err(VexError::TooLarge { .. })
        ));
        let deep = "[".repeat(100_000);
        assert!(VexDocument::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn byte_mutations_never_panic() {
        let base = doc(
            "d",
            "2024-01-02T03:04:05.123+01:00",
            &[
                stmt("X-1", "\"CVE-1\"", SMALLVEC, "not_affected", NA),
                stmt(
                    "X-2",
                    "",
                    r#"{"@id":"pkg:x/y","subcomponents":[{"@id":"pkg:npm/%40a/b@1?q=1#s"}]}"#,
                    "fixed",
                    r#","timestamp":"2024-01-02T03:04:05Z""#,
                ),
            ]
            .join(","),
        );
        let bytes = base.as_bytes();
        let mut accepted = 0;
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..bytes.len() * 4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut m = bytes.to_vec();
            let pos = i % m.len();
            match i % 4 {
                0 => m[pos] = (seed & 0xff) as u8,
                1 => m.truncate(pos),
                2 => {
                    m.remove(pos);
                }
                _ => m.insert(pos, b"\"{}[]:,%@?\\0"[(seed % 12) as usize]),
            }
            if let Ok(d) = VexDocument::parse(&m) {
                accepted += 1;
                let mut s = VexSet::new();
                s.add(&d);
                let _ = s.verdict(&["X-1", "X-2", "CVE-1"], "pkg:cargo/smallvec@1.6.0");
                let _ = s.verdict(&["X-2"], "pkg:npm/%40a/b@1");
            }
        }
        assert!(
            accepted > 0,
            "no mutant parsed; the base document must be valid"
        );
        assert!(VexDocument::parse(bytes).is_ok());
    }
}
