//! The vulnerability scan predicate: in-toto's vulns v0.2
//! (`https://in-toto.io/attestation/vulns/v0.2`): the scanner (its URI, version
//! and vulnerability database), the scan's result (one entry per vulnerability,
//! its id and severity as `{method, score}` pairs) and when the scan ran.
//!
//! The spec leaves each result's package to `annotations` (a list of key/value
//! maps): cairn puts one map there naming the package's purl, installed version,
//! fixed versions, aliases and cairn's qualitative rating. What could not be
//! evaluated goes in `scanner.notEvaluated`, so a consumer can tell "nothing
//! found" from "not looked at" (fail closed).

use serde::{Deserialize, Serialize};

use crate::statement::Predicate;

/// The severity method whose score is cairn's qualitative rating (`low`,
/// `medium`, `high`, `critical`, or `unknown` when no CVSS vector parsed).
pub const RATING_METHOD: &str = "cairn_rating";

/// A vulnerability scan of the statement's subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VulnsScan {
    pub scanner: Scanner,
    pub metadata: ScanMetadata,
}

impl Predicate for VulnsScan {
    const PREDICATE_TYPE: &'static str = "https://in-toto.io/attestation/vulns/v0.2";
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scanner {
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub db: ScannerDb,
    /// The vulnerabilities found; empty means none was found among what was
    /// evaluated (see `not_evaluated`).
    pub result: Vec<VulnResult>,
    /// Components (or files) that could not be evaluated, with why.
    #[serde(default)]
    pub not_evaluated: Vec<NotEvaluated>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScannerDb {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// RFC 3339: when the database last changed (its newest record's `modified`).
    pub last_update: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VulnResult {
    pub id: String,
    pub severity: Vec<SeverityScore>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityScore {
    pub method: String,
    pub score: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotEvaluated {
    pub subject: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanMetadata {
    pub scan_started_on: String,
    pub scan_finished_on: String,
}

impl VulnResult {
    /// cairn's rating of this result (`unknown` when the statement gives none).
    pub fn rating(&self) -> &str {
        self.severity
            .iter()
            .find(|s| s.method == RATING_METHOD)
            .map_or("unknown", |s| s.score.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Statement, Subject, sha256};

    #[test]
    fn a_vulns_statement_has_the_v0_2_shape_and_round_trips() {
        let mut note = serde_json::Map::new();
        note.insert("purl".into(), "pkg:cargo/smallvec@1.6.0".into());
        let scan = VulnsScan {
            scanner: Scanner {
                uri: "urn:cairn:scanner".into(),
                version: Some("0.1.0".into()),
                db: ScannerDb {
                    uri: Some("urn:cairn:advisories".into()),
                    version: Some("3".into()),
                    last_update: "2026-01-01T00:00:00Z".into(),
                },
                result: vec![VulnResult {
                    id: "RUSTSEC-2021-0003".into(),
                    severity: vec![SeverityScore {
                        method: RATING_METHOD.into(),
                        score: "critical".into(),
                    }],
                    annotations: vec![note],
                }],
                not_evaluated: vec![],
            },
            metadata: ScanMetadata {
                scan_started_on: "2026-01-01T00:00:00Z".into(),
                scan_finished_on: "2026-01-01T00:00:01Z".into(),
            },
        };
        let s = Statement::new(vec![Subject::sha256("rc", sha256(b"x"))], scan.clone()).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(s.to_json().unwrap().as_ref()).unwrap();
        assert_eq!(
            json["predicateType"],
            "https://in-toto.io/attestation/vulns/v0.2"
        );
        let p = &json["predicate"];
        assert_eq!(p["scanner"]["db"]["lastUpdate"], "2026-01-01T00:00:00Z");
        assert_eq!(
            p["scanner"]["result"][0]["severity"][0]["method"],
            "cairn_rating"
        );
        assert_eq!(p["metadata"]["scanStartedOn"], "2026-01-01T00:00:00Z");
        let back: VulnsScan = serde_json::from_value(p.clone()).unwrap();
        assert_eq!(back, scan);
        assert_eq!(back.scanner.result[0].rating(), "critical");
    }
}
