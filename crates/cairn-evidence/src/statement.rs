//! in-toto Statement v1 (in-toto/attestation `spec/v1/statement.md`) and
//! ResourceDescriptor (`spec/v1/resource_descriptor.md`). These are wire types of
//! the in-toto spec, not cairn's domain types.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::dsse::check_size;
use crate::{Digest, EvidenceError};

/// `_type` of a Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The DSSE `payloadType` of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// A statement larger than this is refused before parsing.
pub(crate) const MAX_STATEMENT_BYTES: usize = 4 * 1024 * 1024;

/// A predicate type: the struct and the `predicateType` URI it is carried under.
pub trait Predicate: Serialize + DeserializeOwned {
    const PREDICATE_TYPE: &'static str;
}

/// A subject: a name and its digests (at least `sha256`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    pub fn sha256(name: impl Into<String>, digest: Digest) -> Self {
        Subject {
            name: name.into(),
            digest: BTreeMap::from([("sha256".to_owned(), digest.hex())]),
        }
    }

    /// The `sha256` digest, if present and well-formed.
    pub fn sha256_digest(&self) -> Option<Digest> {
        self.digest
            .get("sha256")
            .and_then(|hex| Digest::from_hex(hex).ok())
    }
}

/// A ResourceDescriptor (the fields cairn writes; all optional on the wire, at
/// least one of `uri`, `digest`, `content` is required by the spec).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    /// The spec's `annotations` (a map of extra facts). cairn writes its own
    /// under `cairn.*` keys, e.g. the chain stage a test result came from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ResourceDescriptor {
    /// A named resource with a `sha256` digest.
    pub fn named_sha256(name: impl Into<String>, digest: Digest) -> Self {
        ResourceDescriptor {
            name: Some(name.into()),
            digest: BTreeMap::from([("sha256".to_owned(), digest.hex())]),
            ..Default::default()
        }
    }

    /// A git commit of a repository: `uri` and `digest.gitCommit`.
    pub fn git_commit(uri: impl Into<String>, commit: impl Into<String>) -> Self {
        ResourceDescriptor {
            uri: Some(uri.into()),
            digest: BTreeMap::from([("gitCommit".to_owned(), commit.into())]),
            ..Default::default()
        }
    }
}

/// An in-toto Statement v1 with a typed predicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Statement<P> {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    pub predicate_type: String,
    pub predicate: P,
}

impl<P: Predicate> Statement<P> {
    /// A statement about `subject` (at least one, each with a well-formed
    /// `sha256`: evidence about nothing is refused).
    pub fn new(subject: Vec<Subject>, predicate: P) -> Result<Self, EvidenceError> {
        check_subjects(&subject)?;
        Ok(Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: P::PREDICATE_TYPE.to_owned(),
            predicate,
        })
    }

    /// The JSON payload that goes into the DSSE envelope.
    pub fn to_json(&self) -> Result<Vec<u8>, EvidenceError> {
        serde_json::to_vec(self).map_err(EvidenceError::json("in-toto statement"))
    }

    /// Parses a statement strictly: size-bounded, `_type` and `predicateType`
    /// exactly as expected, well-formed subjects, no unknown fields.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EvidenceError> {
        check_size("an in-toto statement", bytes.len(), MAX_STATEMENT_BYTES)?;
        let statement: Self =
            serde_json::from_slice(bytes).map_err(EvidenceError::json("in-toto statement"))?;
        if statement.statement_type != STATEMENT_TYPE {
            return Err(EvidenceError::Unexpected {
                what: "the statement _type",
                expected: STATEMENT_TYPE,
                found: statement.statement_type.chars().take(80).collect(),
            });
        }
        if statement.predicate_type != P::PREDICATE_TYPE {
            return Err(EvidenceError::Unexpected {
                what: "the predicateType",
                expected: P::PREDICATE_TYPE,
                found: statement.predicate_type.chars().take(80).collect(),
            });
        }
        check_subjects(&statement.subject)?;
        Ok(statement)
    }
}

fn check_subjects(subjects: &[Subject]) -> Result<(), EvidenceError> {
    if subjects.is_empty() {
        return Err(EvidenceError::Invalid {
            what: "in-toto statement",
            reason: "it has no subject",
        });
    }
    if subjects.iter().any(|s| s.sha256_digest().is_none()) {
        return Err(EvidenceError::Invalid {
            what: "in-toto statement",
            reason: "a subject has no well-formed sha256 digest",
        });
    }
    Ok(())
}
