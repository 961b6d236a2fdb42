//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>), cairn's export format:
//! one package for the subject (which the document DESCRIBES and which CONTAINS every
//! component), one per component with its purl as an external reference.

use serde_json::{Value, json};

use crate::cyclonedx::{DocumentInput, check_timestamp, merge};
use crate::error::Error;
use crate::licence::Licence;

const SUBJECT_ID: &str = "SPDXRef-Subject";

fn declared(l: &Licence) -> &str {
    match l {
        // References to licences outside the SPDX list would need
        // hasExtractedLicensingInfos, which cairn cannot fill in: say NOASSERTION.
        Licence::Expression(e) if !e.contains("LicenseRef-") && !e.contains("DocumentRef-") => e,
        _ => "NOASSERTION",
    }
}

/// Writes the SPDX 2.3 JSON document. `namespace_base` is an absolute URI (no `#`)
/// under which the document's UUID makes the unique `documentNamespace`.
pub fn to_json(input: &DocumentInput<'_>, namespace_base: &str) -> Result<Vec<u8>, Error> {
    check_timestamp(input.timestamp)?;
    if input.subject.name.trim().is_empty() {
        return Err(Error::EmptySubject);
    }
    let scheme_ok = namespace_base.split_once("://").is_some_and(|(s, rest)| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.is_empty()
    });
    if !scheme_ok || namespace_base.contains('#') || namespace_base.contains(char::is_whitespace) {
        return Err(Error::Namespace(namespace_base.to_string()));
    }
    let uuid = crate::cyclonedx::uuid_v4(input.uuid);
    let namespace = format!(
        "{}/{}-{uuid}",
        namespace_base.trim_end_matches('/'),
        sanitise(&input.subject.name)
    );

    let mut subject = json!({
        "SPDXID": SUBJECT_ID,
        "name": input.subject.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": input.subject.kind.spdx_purpose(),
    });
    if let Some(v) = &input.subject.version {
        subject["versionInfo"] = json!(v);
    }
    if let Some(p) = &input.subject.purl {
        subject["externalRefs"] = json!([{ "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p }]);
    }
    let mut packages = vec![subject];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": SUBJECT_ID,
    })];
    let merged = merge(input.components);
    let id_of = |i: usize| format!("SPDXRef-Package-{}", i + 1);
    let index: std::collections::BTreeMap<&str, usize> = merged
        .iter()
        .enumerate()
        .map(|(i, m)| (m.first.purl.as_str(), i))
        .collect();
    for (i, m) in merged.iter().enumerate() {
        let c = m.first;
        let mut comment = String::from("found in: ");
        comment.push_str(&m.files.iter().copied().collect::<Vec<_>>().join(", "));
        packages.push(json!({
            "SPDXID": id_of(i),
            "name": c.full_name(),
            "versionInfo": c.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared(m.licence),
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "comment": comment,
            "externalRefs": [{ "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": c.purl }],
        }));
        relationships.push(json!({
            "spdxElementId": SUBJECT_ID,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id_of(i),
        }));
        for dep in &m.dependencies {
            if let Some(j) = index.get(dep) {
                relationships.push(json!({
                    "spdxElementId": id_of(i),
                    "relationshipType": "DEPENDS_ON",
                    "relatedSpdxElement": id_of(*j),
                }));
            }
        }
    }
    let doc: Value = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": input.subject.name,
        "documentNamespace": namespace,
        "creationInfo": {
            "created": input.timestamp,
            "creators": [format!("Tool: cairn-{}", input.tool_version)],
        },
        "packages": packages,
        "relationships": relationships,
    });
    serde_json::to_vec_pretty(&doc).map_err(Error::Serialise)
}

fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect()
}
