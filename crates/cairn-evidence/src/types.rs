//! cairn's own type URIs: the build type of its provenance and the predicate
//! types of the statements only cairn writes. Each is versioned and has a page
//! in the repository's `docs/evidence/` naming its fields; a change of meaning
//! or a removed field makes a new version, never an edit of an old one.
//!
//! They are URNs in cairn's own `urn:cairn:` namespace, as cairn's other
//! identifiers are (`urn:cairn:verifier:…`, `urn:cairn:policy:…`): unlike the
//! reserved `.invalid` names they replace, they are meant to be published and
//! relied on, and unlike an `https` name they claim no domain cairn does not
//! hold. Predicates cairn writes in a published format (SLSA Provenance v1 and
//! VSA v1, in-toto test-result v0.1 and vulns v0.2, CycloneDX) keep that
//! format's own type.

/// `buildDefinition.buildType` of cairn's SLSA provenance: one stage of a chain.
pub const CHAIN_STAGE_BUILD_TYPE_V1: &str = "urn:cairn:build-type:chain-stage:v1";
/// A review of one commit (see [`crate::review`]).
pub const REVIEW_V1: &str = "urn:cairn:predicate:review:v1";
/// A gate's decision on a promotion or rollback.
pub const GATE_DECISION_V1: &str = "urn:cairn:predicate:gate-decision:v1";
/// An exposure accepted for a time with an OpenVEX statement.
pub const EXPOSURE_ACCEPTANCE_V1: &str = "urn:cairn:predicate:exposure-acceptance:v1";

/// Every type URI of cairn's and the page (under `docs/evidence/`) documenting it.
pub const DOCUMENTED: [(&str, &str); 4] = [
    (CHAIN_STAGE_BUILD_TYPE_V1, "chain-stage-v1.md"),
    (REVIEW_V1, "review-v1.md"),
    (GATE_DECISION_V1, "gate-decision-v1.md"),
    (EXPOSURE_ACCEPTANCE_V1, "exposure-acceptance-v1.md"),
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::DOCUMENTED;

    /// Each type has its page, which names the type URI in its first line and
    /// lists the fields (a `## Fields` section).
    #[test]
    fn every_type_uri_has_its_page() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/evidence");
        for (uri, page) in DOCUMENTED {
            let text = std::fs::read_to_string(docs.join(page))
                .unwrap_or_else(|e| panic!("docs/evidence/{page} for {uri}: {e}"));
            let first = text.lines().next().unwrap_or_default();
            assert!(first.contains(&format!("`{uri}`")), "{page}: {first}");
            assert!(text.contains("\n## Fields\n"), "{page} lists no fields");
        }
    }
}
