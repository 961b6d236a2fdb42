//! A scan's outcome as SARIF 2.1.0 (OASIS), for code-scanning dashboards: one
//! rule per advisory, one result per finding located in the file the component
//! came from (relative to `%SRCROOT%`, the scanned directory) and named by its
//! purl, VEX-suppressed findings with their suppression, informational
//! advisories as notes, and what could not be evaluated as tool notifications.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_vuln::{Finding, FindingKind, Rating};
use serde_json::{Value, json};

use crate::inventory::Collected;
use crate::scan::ScanOutcome;

/// The schema the document names (the OASIS 2.1.0 schema with its errata).
pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The SARIF log of `outcome` (a scan of `collected` under `root`, at
/// `threshold`).
pub fn sarif(
    outcome: &ScanOutcome,
    collected: &Collected,
    root: &Path,
    threshold: Rating,
) -> Value {
    let mut rules = Rules::default();
    let mut results = Vec::new();
    for (f, vex) in &outcome.kept {
        let crossing = f.severity.as_ref().is_none_or(|s| s.rating >= threshold);
        let level = if crossing { "error" } else { "warning" };
        let mut r = result(&mut rules, outcome, collected, f, level);
        if let Some(v) = vex {
            r["properties"]["vex"] = json!(v.statement.status.as_str());
        }
        results.push(r);
    }
    for s in &outcome.suppressed {
        let mut r = result(&mut rules, outcome, collected, &s.finding, "warning");
        let mut justification = format!("OpenVEX {}", s.verdict.statement.status.as_str());
        if let Some(j) = s.verdict.statement.justification {
            justification.push_str(&format!(" ({})", j.as_str()));
        }
        justification.push_str(&format!(" in {}", s.verdict.document_id));
        r["suppressions"] = json!([{
            "kind": "external",
            "status": "accepted",
            "justification": justification,
        }]);
        results.push(r);
    }
    for f in &outcome.report.informational {
        results.push(result(&mut rules, outcome, collected, f, "note"));
    }
    let notifications: Vec<Value> = outcome
        .not_evaluated
        .iter()
        .map(|n| {
            json!({
                "level": "warning",
                "message": { "text": format!("not evaluated: {}: {}", n.subject, n.reason) },
            })
        })
        .collect();
    let mut root_uri = file_uri(root);
    if !root_uri.ends_with('/') {
        root_uri.push('/');
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "cairn",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.list,
            }},
            "originalUriBaseIds": { "%SRCROOT%": { "uri": root_uri } },
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

/// One rule per advisory, in first-seen order.
#[derive(Default)]
struct Rules {
    list: Vec<Value>,
    index: BTreeMap<String, usize>,
}

impl Rules {
    fn of(&mut self, f: &Finding) -> usize {
        if let Some(i) = self.index.get(&f.advisory_id) {
            return *i;
        }
        let i = self.list.len();
        let kind = match &f.kind {
            FindingKind::Vulnerability => "vulnerability",
            FindingKind::Informational(i) => i.as_str(),
        };
        let mut rule = json!({
            "id": f.advisory_id,
            "shortDescription": { "text": f.summary.clone().unwrap_or_else(|| f.advisory_id.clone()) },
            "helpUri": format!("https://osv.dev/vulnerability/{}", f.advisory_id),
            "properties": { "tags": ["security", kind], "aliases": f.aliases },
        });
        if let Some(s) = &f.severity {
            // GitHub code scanning reads a CVSS score here.
            rule["properties"]["security-severity"] = json!(format!("{:.1}", s.score));
            rule["properties"]["cvss"] = json!(s.vector);
        }
        self.list.push(rule);
        self.index.insert(f.advisory_id.clone(), i);
        i
    }
}

fn result(
    rules: &mut Rules,
    outcome: &ScanOutcome,
    collected: &Collected,
    f: &Finding,
    level: &str,
) -> Value {
    let rule_index = rules.of(f);
    let purl = outcome.purl_of(f).cloned();
    let fixed = if f.fixed_versions.is_empty() {
        "no fix yet".to_owned()
    } else {
        format!("fixed in {}", f.fixed_versions.join(", "))
    };
    let aliases = if f.aliases.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.aliases.join(", "))
    };
    let mut files: Vec<&str> = purl
        .as_deref()
        .map(|p| {
            collected
                .report
                .components
                .iter()
                .filter(|c| c.purl == p)
                .map(|c| c.source_file.as_str())
                .collect()
        })
        .unwrap_or_default();
    files.sort_unstable();
    files.dedup();
    let logical = purl.as_deref().map_or_else(Vec::new, |p| {
        vec![json!({ "fullyQualifiedName": p, "kind": "module" })]
    });
    let locations: Vec<Value> = if files.is_empty() {
        vec![json!({ "logicalLocations": logical })]
    } else {
        files
            .iter()
            .map(|file| {
                json!({
                    "physicalLocation": { "artifactLocation": { "uri": relative_uri(file), "uriBaseId": "%SRCROOT%" } },
                    "logicalLocations": logical,
                })
            })
            .collect()
    };
    let identity = format!(
        "{}\n{}",
        f.advisory_id,
        purl.as_deref().unwrap_or(&f.package)
    );
    let fingerprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, identity.as_bytes());
    json!({
        "ruleId": f.advisory_id,
        "ruleIndex": rule_index,
        "level": level,
        "message": { "text": format!(
            "{} {} ({}) is affected by {}{aliases}: {fixed}",
            f.package, f.installed_version, f.ecosystem, f.advisory_id
        )},
        "locations": locations,
        "partialFingerprints": { "cairnFinding/v1": hex(fingerprint.as_ref()) },
        "properties": {},
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A path as the scan named it, as a relative URI reference: each segment
/// percent-encoded except RFC 3986's unreserved characters.
fn relative_uri(path: &str) -> String {
    path.trim_start_matches("./")
        .split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// An absolute directory as a `file://` URI.
fn file_uri(dir: &Path) -> String {
    let text = dir.to_string_lossy();
    let encoded: Vec<String> = text.split('/').map(encode_segment).collect();
    format!("file://{}", encoded.join("/"))
}

fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(relative_uri("Cargo.lock"), "Cargo.lock");
        assert_eq!(
            relative_uri("./web app/package-lock.json"),
            "web%20app/package-lock.json"
        );
        assert_eq!(relative_uri("a/#b?c"), "a/%23b%3Fc");
        assert_eq!(file_uri(Path::new("/srv/my app")), "file:///srv/my%20app");
    }
}
