//! The gate input's `findings`: the vulnerabilities and licences of the
//! verified statements about the digest, and what the advisories stored now
//! add to them.

use std::collections::BTreeMap;

use cairn_evidence::Predicate;
use cairn_policy::{AdvisoryDb, Findings, Licence, Severity, Vulnerability};
use serde_json::Value;

/// The gate's `findings`, from verified statements about the digest only: every
/// vulnerability of every vulns v0.2 scan (one from an earlier run of the same
/// digest included: nothing is dropped), every component of every CycloneDX SBOM
/// with its licence. No verified scan, `scanned` stays false and the default
/// policy denies.
#[derive(Default)]
pub(super) struct GateFindings {
    pub(super) scanned: bool,
    vulnerabilities: BTreeMap<(String, String), Vulnerability>,
    licences: BTreeMap<String, Licence>,
}

impl GateFindings {
    /// Reads one verified statement (about the digest); other predicates, and a
    /// predicate that does not parse, add nothing.
    pub(super) fn take(&mut self, statement: &Value) {
        let predicate_type = statement["predicateType"].as_str().unwrap_or_default();
        if predicate_type == cairn_evidence::vulns::VulnsScan::PREDICATE_TYPE {
            let Ok(scan) = serde_json::from_value::<cairn_evidence::vulns::VulnsScan>(
                statement["predicate"].clone(),
            ) else {
                return;
            };
            self.scanned = true;
            for r in &scan.scanner.result {
                let note = r.annotations.first();
                let package = note
                    .and_then(|n| n.get("purl"))
                    .and_then(Value::as_str)
                    .unwrap_or("(unknown package)")
                    .to_owned();
                let fix_available = note
                    .and_then(|n| n.get("fixedVersions"))
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
                let urgency = note
                    .and_then(|n| n.get("urgency"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.vulnerabilities
                    .entry((r.id.clone(), package.clone()))
                    .or_insert_with(|| Vulnerability {
                        id: r.id.clone(),
                        package,
                        severity: Severity::parse(r.rating()),
                        fix_available,
                        suppressed: false,
                        urgency,
                    });
            }
        } else if predicate_type == cairn_evidence::sbom::CycloneDxBom::PREDICATE_TYPE {
            for (purl, entry) in crate::policy_params::sbom_licence_entries(&statement["predicate"])
            {
                self.licences.entry(purl).or_insert(entry);
            }
        }
    }

    /// Adds a finding the stored advisories give now; `true` when the signed
    /// scan did not name it.
    pub(super) fn add_current(&mut self, f: &crate::current::CurrentFinding) -> bool {
        let key = (f.id.clone(), f.package.clone());
        let severity = Severity::parse(&f.severity);
        if let Some(known) = self.vulnerabilities.get_mut(&key) {
            // A record updated since the build may rate it higher: the higher
            // counts (critical and unknown rank alike).
            let rank = |s: Severity| match s {
                Severity::Low => 1,
                Severity::Medium => 2,
                Severity::High => 3,
                Severity::Critical | Severity::Unknown => 4,
            };
            if rank(severity) > rank(known.severity) {
                known.severity = severity;
            }
            return false;
        }
        self.vulnerabilities.insert(
            key,
            Vulnerability {
                id: f.id.clone(),
                package: f.package.clone(),
                severity,
                fix_available: f.fix_available,
                suppressed: false,
                urgency: f.urgency.clone(),
            },
        );
        true
    }

    pub(super) fn into_input(self, advisory_db: AdvisoryDb) -> Findings {
        Findings {
            scanned: self.scanned,
            vulnerabilities: self.vulnerabilities.into_values().collect(),
            licences: self.licences.into_values().collect(),
            advisory_db: Some(advisory_db),
        }
    }
}
