//! A scan: collected components matched against the stored advisories
//! ([`crate::inventory::evaluate`]), OpenVEX documents applied, the licence
//! policy evaluated, and the threshold counted. The engine's one scan path:
//! `cairn scan` only prints what it returns.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cairn_sbom::licence_policy::{LicencePolicy, LicenceVerdict};
use cairn_store::Store;
use cairn_vuln::{Finding, Rating, ScanReport, VexDocument, VexSet, VexVerdict};

use crate::EngineError;
use crate::inventory::{Collected, NotEvaluated, Purls};

/// The VEX documents given, their statements together, and the statements
/// refused (each naming its file and document).
#[derive(Debug, Default)]
pub struct LoadedVex {
    pub set: VexSet,
    pub refused: Vec<String>,
}

/// Reads and parses every VEX document; one that cannot be read or parsed stops
/// the scan (ignoring it would silently change what is reported).
pub fn load_vex(paths: &[PathBuf]) -> Result<LoadedVex, EngineError> {
    let mut loaded = LoadedVex::default();
    for path in paths {
        let what = format!("VEX document {}", path.display());
        let bytes = read_bounded(path, cairn_vuln::vex::MAX_VEX_BYTES, &what)?;
        let doc = VexDocument::parse(&bytes).map_err(|e| EngineError::BadDocument {
            what: what.clone(),
            reason: cairn_model::error_chain(&e),
        })?;
        for r in &doc.refused {
            loaded
                .refused
                .push(format!("{} ({}): {r}", path.display(), doc.id));
        }
        loaded.set.add(&doc);
    }
    Ok(loaded)
}

/// Reads and parses a licence policy (TOML: `allow`, `deny`).
pub fn load_licence_policy(path: &Path) -> Result<LicencePolicy, EngineError> {
    let what = format!("licence policy {}", path.display());
    let bytes = read_bounded(path, cairn_sbom::licence_policy::MAX_POLICY_BYTES, &what)?;
    let text = String::from_utf8(bytes).map_err(|_| EngineError::BadDocument {
        what: what.clone(),
        reason: "cannot read it: not UTF-8".to_owned(),
    })?;
    // The parser's message starts with the line: `path:LINE: …`.
    LicencePolicy::parse(&text).map_err(|e| EngineError::BadDocument {
        what: String::new(),
        reason: format!("{}:{e}", path.display()),
    })
}

/// At most `limit` bytes of the file at `path`, else why not.
fn read_bounded(path: &Path, limit: usize, what: &str) -> Result<Vec<u8>, EngineError> {
    use std::io::Read;
    let refuse = |reason: String| EngineError::BadDocument {
        what: what.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if bytes.len() > limit {
        return Err(refuse(format!("larger than {limit} bytes")));
    }
    Ok(bytes)
}

/// A vulnerability a VEX statement suppressed.
#[derive(Debug)]
pub struct Suppressed {
    pub finding: Finding,
    pub verdict: VexVerdict,
}

/// A component whose licence the policy does not allow.
#[derive(Debug)]
pub struct LicenceFinding {
    pub purl: String,
    pub licence: String,
    pub verdict: LicenceVerdict,
}

/// What a scan found.
#[derive(Debug)]
pub struct ScanOutcome {
    /// The package count and the informational findings (its vulnerabilities
    /// are in `kept` and `suppressed`).
    pub report: ScanReport,
    /// Vulnerabilities no VEX statement suppressed, with the statement that
    /// annotates one (`affected`, `under_investigation`).
    pub kept: Vec<(Finding, Option<VexVerdict>)>,
    pub suppressed: Vec<Suppressed>,
    pub vex_refused: Vec<String>,
    /// `None` when no licence policy is in force.
    pub licences: Option<Vec<LicenceFinding>>,
    pub not_evaluated: Vec<NotEvaluated>,
    /// Each component's purl by (ecosystem, package, version).
    pub purls: Purls,
    /// Kept vulnerabilities at or above the threshold, or of unknown severity
    /// (fail closed).
    pub crossing: usize,
}

impl ScanOutcome {
    /// Whether the scan says no: a vulnerability crossing the threshold, or any
    /// licence finding.
    pub fn failed(&self) -> bool {
        self.crossing > 0 || self.licences.as_ref().is_some_and(|l| !l.is_empty())
    }

    /// The purl of the component a finding is about (an OS source package: its
    /// first binary package's).
    pub fn purl_of(&self, f: &Finding) -> Option<&String> {
        self.purls
            .get(&f.ecosystem, &f.package, &f.installed_version)
    }
}

/// Scans `collected`: matched against the stored advisories, `vex` applied,
/// `policy` evaluated, vulnerabilities at or above `threshold` counted.
pub fn scan(
    store: &dyn Store,
    collected: &Collected,
    vex: LoadedVex,
    policy: Option<&LicencePolicy>,
    threshold: Rating,
) -> Result<ScanOutcome, EngineError> {
    let mut evaluation = crate::inventory::evaluate(store, collected)?;
    let purls = evaluation.take_purls(collected);
    let mut report = evaluation.report;
    let mut kept = Vec::with_capacity(report.vulnerabilities.len());
    let mut suppressed = Vec::new();
    for finding in std::mem::take(&mut report.vulnerabilities) {
        match vex_verdict(&vex.set, &purls, &finding) {
            Some(verdict) if verdict.statement.status.suppresses() => {
                suppressed.push(Suppressed { finding, verdict });
            }
            other => kept.push((finding, other)),
        }
    }
    let crossing = kept
        .iter()
        .filter(|(f, _)| f.severity.as_ref().is_none_or(|s| s.rating >= threshold))
        .count();
    Ok(ScanOutcome {
        report,
        kept,
        suppressed,
        vex_refused: vex.refused,
        licences: policy.map(|p| licence_findings(p, collected)),
        not_evaluated: evaluation.not_evaluated,
        purls,
        crossing,
    })
}

fn vex_verdict(vex: &VexSet, purls: &Purls, f: &Finding) -> Option<VexVerdict> {
    if vex.is_empty() {
        return None;
    }
    let purl = purls.get(&f.ecosystem, &f.package, &f.installed_version)?;
    let ids: Vec<&str> = std::iter::once(f.advisory_id.as_str())
        .chain(f.aliases.iter().map(String::as_str))
        .collect();
    vex.verdict(&ids, purl)
}

/// Every component (each purl once) whose licence the policy does not allow.
fn licence_findings(policy: &LicencePolicy, collected: &Collected) -> Vec<LicenceFinding> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in &collected.report.components {
        if !seen.insert(c.purl.clone()) {
            continue;
        }
        let verdict = policy.evaluate(&c.licence);
        if verdict.is_finding() {
            let licence = match &c.licence {
                cairn_sbom::Licence::Expression(e) | cairn_sbom::Licence::Unknown(e) => e.clone(),
                cairn_sbom::Licence::NotGiven => "(none stated)".to_owned(),
            };
            out.push(LicenceFinding {
                purl: c.purl.clone(),
                licence,
                verdict,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_vex_document_that_is_too_large_or_unreadable_is_refused_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let big = tmp.path().join("big.json");
        std::fs::write(&big, vec![b' '; cairn_vuln::vex::MAX_VEX_BYTES + 1]).unwrap();
        let err = load_vex(std::slice::from_ref(&big)).unwrap_err();
        assert!(err.is_user_error());
        assert_eq!(
            err.to_string(),
            format!(
                "VEX document {}: larger than {} bytes",
                big.display(),
                cairn_vuln::vex::MAX_VEX_BYTES
            )
        );
        let missing = tmp.path().join("missing.json");
        let err = load_vex(std::slice::from_ref(&missing)).unwrap_err();
        assert!(err.to_string().contains("cannot read it"), "{err}");
        let err = load_licence_policy(&missing).unwrap_err();
        assert!(err.is_user_error());
        assert!(
            err.to_string().starts_with(&format!(
                "licence policy {}: cannot read it",
                missing.display()
            )),
            "{err}"
        );
    }
}
