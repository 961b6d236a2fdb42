//! What the advisories stored *now* say about an artifact: the components of its
//! verified CycloneDX SBOM (a signed statement, never a store row) re-matched at
//! decision time through [`crate::inventory::evaluate`], and the state of the
//! advisory database that answer came from. A finding imported after the build
//! counts at the gate like one found at build time.

use cairn_sbom::{Component, Ecosystem, Licence, ScanReport, SourcePackage};
use cairn_store::Store;
use serde_json::Value;

use crate::EngineError;
use crate::inventory::{Collected, Evaluation, Skipped};

/// The advisory database as one decision saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryDbState {
    /// Records kept (withdrawn ones included).
    pub count: u64,
    /// The newest `modified` time among them.
    pub newest_modified: Option<String>,
    /// `sha256:<hex>` over every record's `id`, `modified`, `withdrawn`, by id.
    pub digest: String,
}

/// The stored advisories' state: a count, the newest record and a digest that
/// changes with any import that changed a record.
pub fn advisory_db_state(store: &dyn Store) -> Result<AdvisoryDbState, EngineError> {
    let versions = store.advisory_versions()?;
    let mut ctx = cairn_evidence::Sha256Hasher::new();
    let mut newest: Option<&String> = None;
    for (id, modified, withdrawn) in &versions {
        // Lengths first, so no two lists hash alike.
        for field in [id.as_bytes(), modified.as_bytes()] {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field);
        }
        ctx.update(&[u8::from(*withdrawn)]);
        if newest.is_none_or(|n| modified > n) {
            newest = Some(modified);
        }
    }
    Ok(AdvisoryDbState {
        count: versions.len() as u64,
        newest_modified: newest.cloned(),
        digest: ctx.finish().to_string(),
    })
}

/// One vulnerability the stored advisories give now, in the gate's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentFinding {
    pub id: String,
    /// The component's purl, as the signed SBOM names it.
    pub package: String,
    /// `low` … `critical`, or `unknown`.
    pub severity: String,
    pub fix_available: bool,
    /// The distribution's urgency (Debian's `unimportant`, …), where given.
    pub urgency: Option<String>,
}

/// Re-matches the components a verified CycloneDX predicate lists against the
/// advisories stored now. A component whose purl cannot be read is reported as
/// not evaluated by the matcher (never passed); a predicate that is not a
/// CycloneDX document is an `Err` with the reason, for the caller to deny on.
pub fn rematch_signed_sbom(
    store: &dyn Store,
    predicate: &Value,
) -> Result<Vec<CurrentFinding>, String> {
    let bytes = serde_json::to_vec(predicate).map_err(|e| e.to_string())?;
    let bom = cairn_sbom::cyclonedx_read::read(&bytes)
        .map_err(|e| format!("the signed SBOM cannot be read: {e}"))?;
    let mut report = ScanReport::default();
    let mut skipped = Vec::new();
    for c in &bom.components {
        let Some(purl) = &c.purl else {
            continue;
        };
        // An OS package's source version is a property (the purl's `upstream`
        // names only the source package): it is what OS advisories are about.
        let source_version = c
            .properties
            .iter()
            .find(|(name, _)| name == cairn_sbom::cyclonedx::SOURCE_VERSION_PROPERTY)
            .map(|(_, value)| value.as_str());
        match component_of_purl(purl, source_version) {
            Ok(Some(component)) => report.components.push(component),
            Ok(None) => {}
            Err(why) => skipped.push(Skipped {
                path: purl.chars().take(512).collect(),
                reason: why,
            }),
        }
    }
    let collected = Collected {
        report,
        skipped,
        name: "signed SBOM".to_owned(),
    };
    let mut evaluation: Evaluation =
        crate::inventory::evaluate(store, &collected).map_err(|e| {
            format!(
                "the stored advisories could not be matched: {}",
                cairn_model::error_chain(&e)
            )
        })?;
    let purls = evaluation.take_purls(&collected);
    Ok(evaluation
        .report
        .vulnerabilities
        .iter()
        .map(|f| CurrentFinding {
            id: f.advisory_id.clone(),
            package: purls
                .get(&f.ecosystem, &f.package, &f.installed_version)
                .cloned()
                .unwrap_or_else(|| {
                    format!("{}/{}@{}", f.ecosystem, f.package, f.installed_version)
                }),
            severity: match f.severity.as_ref().map(|s| s.rating.as_str()) {
                Some(s @ ("low" | "medium" | "high" | "critical")) => s.to_owned(),
                _ => "unknown".to_owned(),
            },
            fix_available: !f.fixed_versions.is_empty(),
            urgency: f.urgency.clone(),
        })
        .collect())
}

/// A component from its purl (`pkg:type/namespace/name@version?qualifiers`),
/// as cairn's SBOM writer makes them; `None` for a type cairn does not match.
fn component_of_purl(
    purl: &str,
    source_version: Option<&str>,
) -> Result<Option<Component>, String> {
    let parsed = cairn_model::purl::Purl::parse(purl).map_err(|e| e.to_string())?;
    let ecosystem = match parsed.ty.as_str() {
        "cargo" => Ecosystem::Cargo,
        "npm" => Ecosystem::Npm,
        "pypi" => Ecosystem::PyPI,
        "golang" => Ecosystem::Go,
        "gem" => Ecosystem::RubyGems,
        "composer" => Ecosystem::Packagist,
        "maven" => Ecosystem::Maven,
        "deb" => Ecosystem::Debian,
        "apk" => Ecosystem::Alpine,
        _ => return Ok(None),
    };
    let version = parsed
        .version
        .clone()
        .ok_or_else(|| "the package URL names no version".to_owned())?;
    let name = parsed.name.clone();
    let namespace = (!parsed.namespace.is_empty()).then(|| parsed.namespace.clone());
    let arch = parsed.qualifier("arch").map(str::to_owned);
    let upstream = parsed.qualifier("upstream").map(str::to_owned);
    let source_package = upstream.map(|u| match u.split_once('@') {
        Some((n, v)) => SourcePackage {
            name: n.to_owned(),
            version: v.to_owned(),
        },
        None => SourcePackage {
            name: u,
            version: source_version.unwrap_or(&version).to_owned(),
        },
    });
    // OS packages: the distribution is the namespace, not part of the name.
    let namespace = match ecosystem {
        Ecosystem::Debian | Ecosystem::Alpine => None,
        _ => namespace,
    };
    Ok(Some(Component {
        ecosystem,
        namespace,
        name: name.clone(),
        version,
        purl: purl.to_owned(),
        licence: Licence::NotGiven,
        source_file: "signed SBOM".to_owned(),
        arch,
        source_package,
        dependencies: Vec::new(),
        checksum: None,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn purls_become_the_components_the_sbom_writer_made_them_from() {
        for (purl, eco, ns, name, version) in [
            (
                "pkg:cargo/regex@1.5.4",
                Ecosystem::Cargo,
                None,
                "regex",
                "1.5.4",
            ),
            (
                "pkg:npm/%40types/node@20.1.0",
                Ecosystem::Npm,
                Some("@types"),
                "node",
                "20.1.0",
            ),
            (
                "pkg:maven/org.slf4j/slf4j-api@2.0.9",
                Ecosystem::Maven,
                Some("org.slf4j"),
                "slf4j-api",
                "2.0.9",
            ),
            (
                "pkg:golang/github.com/pkg/errors@v0.9.1",
                Ecosystem::Go,
                Some("github.com/pkg"),
                "errors",
                "v0.9.1",
            ),
            (
                "pkg:deb/debian/libc6@2.36-9?arch=amd64",
                Ecosystem::Debian,
                None,
                "libc6",
                "2.36-9",
            ),
        ] {
            let c = component_of_purl(purl, None).unwrap().unwrap();
            assert_eq!(c.ecosystem, eco, "{purl}");
            assert_eq!(c.namespace.as_deref(), ns, "{purl}");
            assert_eq!(c.name, name, "{purl}");
            assert_eq!(c.version, version, "{purl}");
            assert_eq!(c.purl, purl);
        }
        let c = component_of_purl(
            "pkg:deb/debian/libc6@2.36-9?arch=amd64&upstream=glibc",
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.arch.as_deref(), Some("amd64"));
        let source = c.source_package.unwrap();
        assert_eq!(
            (source.name.as_str(), source.version.as_str()),
            ("glibc", "2.36-9")
        );
        // A binNMU: the advisories are about the source version the SBOM states.
        let c = component_of_purl(
            "pkg:deb/debian/libc6@2.36-9%2Bb1?arch=amd64&distro=debian-12&upstream=glibc",
            Some("2.36-9"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.version, "2.36-9+b1");
        assert_eq!(c.source_package.unwrap().version, "2.36-9");
        assert!(
            component_of_purl("pkg:generic/thing@1", None)
                .unwrap()
                .is_none()
        );
        for bad in [
            "cargo/regex@1",
            "pkg:cargo/regex",
            "pkg:cargo/@1",
            "pkg:cargo/re%zzx@1",
        ] {
            assert!(component_of_purl(bad, None).is_err(), "{bad}");
        }
    }
}
