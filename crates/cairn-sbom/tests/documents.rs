//! The CycloneDX and SPDX writers on a small, hand-made component list: exact
//! output for each licence state, merging by purl, dependencies, and the UUID bits.

use cairn_sbom::cyclonedx::{self, DocumentInput, Subject, SubjectKind, uuid_v4};
use cairn_sbom::{Component, Ecosystem, Licence, SourcePackage, purl, spdx_doc};
use serde_json::json;

fn comp(name: &str, version: &str, licence: Licence, file: &str) -> Component {
    Component {
        ecosystem: Ecosystem::Cargo,
        namespace: None,
        name: name.into(),
        version: version.into(),
        purl: purl::cargo(name, version),
        licence,
        source_file: file.into(),
        arch: None,
        source_package: None,
        dependencies: Vec::new(),
        checksum: None,
    }
}

fn components() -> Vec<Component> {
    let mut a = comp(
        "anyhow",
        "1.0.86",
        Licence::Expression("MIT OR Apache-2.0".into()),
        "Cargo.lock",
    );
    a.dependencies = vec![purl::cargo("zed", "0.1.0"), purl::cargo("absent", "9.9.9")];
    let mut deb = comp("libc6", "2.36-9", Licence::NotGiven, "var/lib/dpkg/status");
    deb.ecosystem = Ecosystem::Debian;
    deb.purl = purl::deb("debian", "libc6", "2.36-9", Some("amd64"));
    deb.source_package = Some(SourcePackage {
        name: "glibc".into(),
        version: "2.36-9".into(),
    });
    vec![
        comp(
            "zed",
            "0.1.0",
            Licence::Unknown("Custom licence".into()),
            "b/Cargo.lock",
        ),
        comp("zed", "0.1.0", Licence::NotGiven, "a/Cargo.lock"),
        a,
        deb,
    ]
}

fn input(c: &[Component]) -> DocumentInput<'_> {
    DocumentInput {
        subject: Subject {
            kind: SubjectKind::Container,
            name: "img".into(),
            version: None,
            purl: None,
        },
        components: c,
        uuid: [0xff; 16],
        timestamp: "2026-01-02T03:04:05.5Z",
        tool_version: "0.1.0",
    }
}

#[test]
fn uuid_has_v4_bits() {
    assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
    assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
}

#[test]
fn cyclonedx_components_exact() {
    let c = components();
    let doc: serde_json::Value =
        serde_json::from_slice(&cyclonedx::to_json(&input(&c)).unwrap()).unwrap();
    assert_eq!(
        doc["serialNumber"],
        "urn:uuid:ffffffff-ffff-4fff-bfff-ffffffffffff"
    );
    assert_eq!(
        doc["metadata"]["component"],
        json!({ "type": "container", "bom-ref": "cairn:subject", "name": "img" })
    );
    assert_eq!(doc["metadata"]["tools"]["components"][0]["name"], "cairn");
    assert_eq!(
        doc["components"],
        json!([
            {
                "type": "library", "bom-ref": "pkg:cargo/anyhow@1.0.86", "name": "anyhow", "version": "1.0.86",
                "purl": "pkg:cargo/anyhow@1.0.86",
                "licenses": [{ "expression": "MIT OR Apache-2.0" }],
                "properties": [{ "name": "cairn:ecosystem", "value": "crates.io" }],
                "evidence": { "occurrences": [{ "location": "Cargo.lock" }] }
            },
            {
                "type": "library", "bom-ref": "pkg:cargo/zed@0.1.0", "name": "zed", "version": "0.1.0",
                "purl": "pkg:cargo/zed@0.1.0",
                "licenses": [{ "license": { "name": "Custom licence" } }],
                "properties": [{ "name": "cairn:ecosystem", "value": "crates.io" }],
                "evidence": { "occurrences": [{ "location": "a/Cargo.lock" }, { "location": "b/Cargo.lock" }] }
            },
            {
                "type": "library", "bom-ref": "pkg:deb/debian/libc6@2.36-9?arch=amd64", "name": "libc6", "version": "2.36-9",
                "purl": "pkg:deb/debian/libc6@2.36-9?arch=amd64",
                "properties": [
                    { "name": "cairn:ecosystem", "value": "Debian" },
                    { "name": "cairn:source-package:name", "value": "glibc" },
                    { "name": "cairn:source-package:version", "value": "2.36-9" }
                ],
                "evidence": { "occurrences": [{ "location": "var/lib/dpkg/status" }] }
            }
        ])
    );
    // Dependencies on components not in the document are dropped, not dangling.
    assert_eq!(
        doc["dependencies"],
        json!([{ "ref": "pkg:cargo/anyhow@1.0.86", "dependsOn": ["pkg:cargo/zed@0.1.0"] }])
    );
}

#[test]
fn spdx_packages_exact() {
    let c = components();
    let doc: serde_json::Value = serde_json::from_slice(
        &spdx_doc::to_json(&input(&c), "https://cairn.example/sbom/").unwrap(),
    )
    .unwrap();
    assert_eq!(
        doc["documentNamespace"],
        "https://cairn.example/sbom/img-ffffffff-ffff-4fff-bfff-ffffffffffff"
    );
    assert_eq!(
        doc["creationInfo"],
        json!({ "created": "2026-01-02T03:04:05.5Z", "creators": ["Tool: cairn-0.1.0"] })
    );
    let packages = doc["packages"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = packages
        .iter()
        .map(|p| {
            (
                p["SPDXID"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
                p["licenseDeclared"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        summary,
        [
            s("SPDXRef-Subject", "img", "NOASSERTION"),
            s("SPDXRef-Package-1", "anyhow", "MIT OR Apache-2.0"),
            s("SPDXRef-Package-2", "zed", "NOASSERTION"),
            s("SPDXRef-Package-3", "libc6", "NOASSERTION"),
        ]
    );
    assert_eq!(
        packages[3]["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/libc6@2.36-9?arch=amd64"
    );
    let rels: Vec<String> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["spdxElementId"].as_str().unwrap(),
                r["relationshipType"].as_str().unwrap(),
                r["relatedSpdxElement"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        rels,
        [
            "SPDXRef-DOCUMENT DESCRIBES SPDXRef-Subject",
            "SPDXRef-Subject CONTAINS SPDXRef-Package-1",
            "SPDXRef-Package-1 DEPENDS_ON SPDXRef-Package-2",
            "SPDXRef-Subject CONTAINS SPDXRef-Package-2",
            "SPDXRef-Subject CONTAINS SPDXRef-Package-3",
        ]
    );
}

#[test]
fn empty_subject_is_an_error() {
    let c = components();
    let mut i = input(&c);
    i.subject.name = " ".into();
    assert!(cyclonedx::to_json(&i).is_err());
    assert!(spdx_doc::to_json(&i, "https://x.example").is_err());
}
