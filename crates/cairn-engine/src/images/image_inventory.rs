//! An image's inventory: the components of its root filesystem (and, when
//! known, of the source it was built from), as a CycloneDX SBOM indexed for
//! `cairn where`, and its scan against the stored advisories as an in-toto
//! vulns v0.2 predicate. The run makes it for its release candidate; a rebase
//! for the image it made. The caller signs both about the image's digest.

use std::path::Path;

use cairn_evidence::Digest;
use cairn_evidence::vulns::{
    RATING_METHOD, ScanMetadata, Scanner, ScannerDb, SeverityScore, VulnResult, VulnsScan,
};
use cairn_sbom::cyclonedx::{DocumentInput, SubjectKind};
use cairn_store::Store;

use crate::EngineError;
use crate::host::now_ms;
use crate::inventory::{self, Collected};

/// The most skipped files, vulnerabilities or unevaluated components noted one
/// by one (the rest are counted).
const MAX_LOGGED: usize = 50;
/// The scanner and database the vulns statements name.
const SCANNER_URI: &str = "urn:cairn:scanner";
const ADVISORY_DB_URI: &str = "urn:cairn:advisories:osv";

/// The SBOM and the scan of one image.
#[derive(Debug)]
pub struct ImageInventory {
    pub bom: serde_json::Value,
    pub scan: VulnsScan,
}

/// What is inventoried.
#[derive(Debug)]
pub struct Subject<'a> {
    /// What the image is, for the notes ("the release candidate").
    pub what: &'a str,
    pub workload: &'a str,
    /// The image's manifest digest (`sha256:…`).
    pub digest: &'a str,
    /// Its unpacked root filesystem.
    pub rootfs: &'a Path,
    /// The components of the source it was built from, if known.
    pub source: Option<Collected>,
    /// The SBOM's timestamp (the commit's time, so it is reproducible).
    pub time_ms: i64,
}

/// Inventories `subject`: records its SBOM in the store's index and scans it;
/// `note` hears what was found (a run's log, a command's output).
pub fn inventory(
    store: &dyn Store,
    subject: Subject<'_>,
    note: &mut dyn FnMut(&str),
) -> Result<ImageInventory, EngineError> {
    let started_ms = now_ms();
    let rootfs = subject.rootfs;
    let image = inventory::collect_rootfs(rootfs)?;
    let in_image = image.report.components.len();
    let name = format!("{}@{}", subject.workload, subject.digest);
    let (collected, in_source) = match subject.source {
        Some(source) => {
            let n = source.report.components.len();
            (
                Collected::merged(name.clone(), vec![("image/", image), ("source/", source)]),
                Some(n),
            )
        }
        None => (
            Collected::merged(name.clone(), vec![("image/", image)]),
            None,
        ),
    };
    for s in collected.skipped.iter().take(MAX_LOGGED) {
        note(&format!("inventory: skipped {}: {}", s.path, s.reason));
    }
    if collected.skipped.len() > MAX_LOGGED {
        note(&format!(
            "inventory: {} more skipped",
            collected.skipped.len() - MAX_LOGGED
        ));
    }
    if collected.nothing_read() {
        return Err(inventory_error(
            rootfs,
            "no lockfile or package database in the image or the source could be read",
        ));
    }
    // Deterministic where it can be: the UUID from the image's digest.
    let digest = Digest::parse(subject.digest).map_err(cairn_evidence::EvidenceError::from)?;
    let hex = digest.hex();
    let mut uuid = [0u8; 16];
    for (i, byte) in uuid.iter_mut().enumerate() {
        *byte = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    let timestamp = cairn_model::time::rfc3339_utc(subject.time_ms);
    let doc = cairn_sbom::cyclonedx::to_json(&DocumentInput {
        subject: cairn_sbom::cyclonedx::Subject {
            kind: SubjectKind::Container,
            name: subject.workload.to_owned(),
            version: Some(subject.digest.to_owned()),
            purl: None,
        },
        components: &collected.report.components,
        uuid,
        timestamp: &timestamp,
        tool_version: env!("CARGO_PKG_VERSION"),
    })
    .map_err(|e| inventory_error(rootfs, &format!("cannot write the SBOM: {e}")))?;
    let bom: serde_json::Value = serde_json::from_slice(&doc)
        .map_err(|e| inventory_error(rootfs, &format!("the SBOM is not JSON: {e}")))?;
    let (sbom_id, matched) = crate::advisories::record_sbom(
        store,
        &cairn_store::NewSbom {
            subject_name: name,
            subject_digest: subject.digest.to_owned(),
            workload: Some(subject.workload.to_owned()),
            environment: None,
            created_at_ms: now_ms(),
            format: "cyclonedx".to_owned(),
            document: doc,
            components: inventory::index_rows(&collected),
        },
    )?;
    note_matched(note, sbom_id, &matched);
    note(&match in_source {
        Some(in_source) => format!(
            "inventory of {}: {} components ({in_image} in the image, {in_source} in the source's lockfiles); SBOM {sbom_id} recorded",
            subject.what,
            collected.report.components.len()
        ),
        None => format!(
            "inventory of {}: {} components (in the image; its source was not read); SBOM {sbom_id} recorded",
            subject.what,
            collected.report.components.len()
        ),
    });
    let advisories = store.advisory_count()?;
    let mut evaluation = inventory::evaluate(store, &collected)?;
    let purls = evaluation.take_purls(&collected);
    let report = &evaluation.report;
    note(&format!(
        "scan against {advisories} stored advisories: {} vulnerabilities, {} informational, {} not evaluated",
        report.vulnerabilities.len(),
        report.informational.len(),
        evaluation.not_evaluated.len()
    ));
    if advisories == 0 {
        note(
            "note: no advisories are stored (`cairn vulns import`), so the scan could find nothing",
        );
    }
    for f in report.vulnerabilities.iter().take(MAX_LOGGED) {
        note(&format!(
            "  {} {} {} {} [{}] fixed: {}",
            f.advisory_id,
            f.ecosystem,
            f.package,
            f.installed_version,
            f.severity.as_ref().map_or("unknown", |s| s.rating.as_str()),
            if f.fixed_versions.is_empty() {
                "none".to_owned()
            } else {
                f.fixed_versions.join(", ")
            }
        ));
    }
    for n in evaluation.not_evaluated.iter().take(MAX_LOGGED) {
        note(&format!("  not evaluated: {}: {}", n.subject, n.reason));
    }
    let scan = VulnsScan {
        scanner: Scanner {
            uri: SCANNER_URI.to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            db: ScannerDb {
                uri: Some(ADVISORY_DB_URI.to_owned()),
                version: Some(advisories.to_string()),
                last_update: evaluation
                    .newest_modified
                    .clone()
                    .unwrap_or_else(|| cairn_model::time::rfc3339_utc(0)),
            },
            result: report
                .vulnerabilities
                .iter()
                .map(|f| vuln_result(f, &purls))
                .collect(),
            not_evaluated: evaluation
                .not_evaluated
                .iter()
                .map(|n| cairn_evidence::vulns::NotEvaluated {
                    subject: n.subject.clone(),
                    reason: n.reason.clone(),
                })
                .collect(),
        },
        metadata: ScanMetadata {
            scan_started_on: cairn_model::time::rfc3339_utc(started_ms),
            scan_finished_on: cairn_model::time::rfc3339_utc(now_ms()),
        },
    };
    Ok(ImageInventory { bom, scan })
}

/// What a run's dependency fetch left in its workspace: the resolved lockfiles
/// and the installed packages' own metadata (`collected`, see
/// [`inventory::collect_installed`]), as a CycloneDX document about the source
/// tree `digest` (`sha256:…`) of `workload`, recorded in the SBOM index (so
/// `cairn where` finds the workload by what it fetched). The caller signs it.
pub fn fetched(
    store: &dyn Store,
    workload: &str,
    subject_name: &str,
    digest: &Digest,
    collected: &Collected,
    time_ms: i64,
    note: &mut dyn FnMut(&str),
) -> Result<serde_json::Value, EngineError> {
    for s in collected.skipped.iter().take(MAX_LOGGED) {
        note(&format!("inventory: skipped {}: {}", s.path, s.reason));
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&digest.as_bytes()[..16]);
    let timestamp = cairn_model::time::rfc3339_utc(time_ms);
    let version = digest.to_string();
    let doc = cairn_sbom::cyclonedx::to_json(&DocumentInput {
        subject: cairn_sbom::cyclonedx::Subject {
            kind: SubjectKind::Application,
            name: workload.to_owned(),
            version: Some(version.clone()),
            purl: None,
        },
        components: &collected.report.components,
        uuid,
        timestamp: &timestamp,
        tool_version: env!("CARGO_PKG_VERSION"),
    })
    .map_err(|e| {
        inventory_error(
            Path::new(subject_name),
            &format!("cannot write the SBOM: {e}"),
        )
    })?;
    let bom: serde_json::Value = serde_json::from_slice(&doc).map_err(|e| {
        inventory_error(
            Path::new(subject_name),
            &format!("the SBOM is not JSON: {e}"),
        )
    })?;
    let (sbom_id, matched) = crate::advisories::record_sbom(
        store,
        &cairn_store::NewSbom {
            subject_name: subject_name.to_owned(),
            subject_digest: version,
            workload: Some(workload.to_owned()),
            environment: None,
            created_at_ms: now_ms(),
            format: "cyclonedx".to_owned(),
            document: doc,
            components: inventory::index_rows(collected),
        },
    )?;
    note_matched(note, sbom_id, &matched);
    let files: Vec<&str> = collected
        .report
        .files
        .iter()
        .filter(|f| f.components > 0)
        .map(|f| f.path.as_str())
        .take(MAX_LOGGED)
        .collect();
    note(&format!(
        "inventory of what the fetch installed: {} components from {} files{}; SBOM {sbom_id} recorded",
        collected.report.components.len(),
        collected.report.files.len(),
        if files.is_empty() {
            String::new()
        } else {
            format!(" ({})", files.join(", "))
        }
    ));
    Ok(bom)
}

fn inventory_error(path: &Path, why: &str) -> EngineError {
    EngineError::io("inventory", path)(std::io::Error::other(why.to_owned()))
}

/// One vulnerability as a vulns v0.2 result: cairn's rating and the CVSS score
/// and vector as severities, the package and versions as an annotation.
fn vuln_result(f: &cairn_vuln::Finding, purls: &inventory::Purls) -> VulnResult {
    let mut severity = vec![SeverityScore {
        method: RATING_METHOD.to_owned(),
        score: f
            .severity
            .as_ref()
            .map_or("unknown", |s| s.rating.as_str())
            .to_owned(),
    }];
    if let Some(s) = &f.severity {
        severity.push(SeverityScore {
            method: "cvss_score".to_owned(),
            score: format!("{:.1}", s.score),
        });
        severity.push(SeverityScore {
            method: s.kind.clone(),
            score: s.vector.clone(),
        });
    }
    let purl = purls
        .get(&f.ecosystem, &f.package, &f.installed_version)
        .cloned()
        .unwrap_or_else(|| format!("{}/{}@{}", f.ecosystem, f.package, f.installed_version));
    let mut note = serde_json::Map::new();
    note.insert("purl".into(), purl.into());
    note.insert("ecosystem".into(), f.ecosystem.clone().into());
    note.insert("package".into(), f.package.clone().into());
    note.insert(
        "installedVersion".into(),
        f.installed_version.clone().into(),
    );
    note.insert("fixedVersions".into(), f.fixed_versions.clone().into());
    note.insert("aliases".into(), f.aliases.clone().into());
    if let Some(urgency) = &f.urgency {
        note.insert("urgency".into(), urgency.clone().into());
    }
    if let Some(summary) = &f.summary {
        note.insert("summary".into(), summary.clone().into());
    }
    VulnResult {
        id: f.advisory_id.clone(),
        severity,
        annotations: vec![note],
    }
}

/// Says what matching a newly stored SBOM against the stored advisories found.
fn note_matched(note: &mut dyn FnMut(&str), sbom_id: i64, matched: &crate::advisories::Rematched) {
    if !matched.outcome.opened.is_empty() || !matched.not_evaluated.is_empty() {
        note(&format!(
            "SBOM {sbom_id} matched against the stored advisories: {} findings, {} not evaluated",
            matched.outcome.opened.len(),
            matched.not_evaluated.len()
        ));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cairn_store::prelude::*;
    use cairn_store::{FindingFilter, NewAdvisory, SqliteStore};

    /// The same commit run twice fetches the same packages: its SBOM (a
    /// deterministic document) is recorded once, so `cairn where` finds one
    /// SBOM and the advisory one finding, not one per run.
    #[test]
    fn the_same_fetch_twice_records_one_sbom_and_one_set_of_findings() {
        let tmp = tempfile::TempDir::new().unwrap();
        std::fs::write(
            tmp.path().join("package-lock.json"),
            r#"{"name":"app","lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/left-pad":{"version":"1.2.0"}}}"#,
        )
        .unwrap();
        let store = SqliteStore::open_in_memory().unwrap();
        let record = r#"{"id":"A-1","modified":"2026-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.1"}]}]}]}"#;
        store
            .put_advisories(&[NewAdvisory {
                id: "A-1".into(),
                modified: "2026-01-01T00:00:00.000000000Z".into(),
                withdrawn: false,
                packages: vec![("npm".into(), "left-pad".into())],
                json: record.as_bytes().to_vec(),
                match_form: None,
                compiled: Vec::new(),
            }])
            .unwrap();
        let digest = cairn_model::Digest::from_bytes([7; 32]);
        let mut notes = Vec::new();
        for _ in 0..2 {
            let collected =
                inventory::collect_installed(inventory::Tree::walk(tmp.path()).unwrap());
            fetched(
                &store,
                "app",
                "app source",
                &digest,
                &collected,
                1_700_000_000_000,
                &mut |n| notes.push(n.to_owned()),
            )
            .unwrap();
        }
        let hits = store.where_package(Some("npm"), "left-pad").unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}\n{notes:#?}");
        let sboms = store.sboms_about(&digest.to_string()).unwrap();
        assert_eq!(sboms.len(), 1, "{sboms:?}");
        let findings = store.findings(&FindingFilter::default()).unwrap();
        assert_eq!(findings.len(), 1, "{findings:?}\n{notes:#?}");
        assert_eq!(findings[0].key.sbom_id, sboms[0].id);
    }
}
