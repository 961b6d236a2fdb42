//! The SBOM predicate: a CycloneDX document as the predicate of an in-toto
//! statement about the artifact it describes (predicate type
//! `https://cyclonedx.org/bom`, as in-toto's attestation catalogue names it).

use serde::{Deserialize, Serialize};

use crate::statement::Predicate;

/// A CycloneDX BOM (JSON), carried as is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CycloneDxBom(pub serde_json::Value);

impl Predicate for CycloneDxBom {
    const PREDICATE_TYPE: &'static str = "https://cyclonedx.org/bom";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Statement, Subject, sha256};

    #[test]
    fn a_bom_statement_round_trips() {
        let bom = CycloneDxBom(serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.6"}));
        let s = Statement::new(
            vec![Subject::sha256("base tiny", sha256(b"x"))],
            bom.clone(),
        )
        .unwrap();
        let json = s.to_json().unwrap();
        let text = String::from_utf8_lossy(json.as_ref()).into_owned();
        assert!(
            text.contains("\"predicateType\":\"https://cyclonedx.org/bom\""),
            "{text}"
        );
        assert!(text.contains("\"bomFormat\":\"CycloneDX\""), "{text}");
    }
}
