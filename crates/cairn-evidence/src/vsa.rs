//! SLSA Verification Summary Attestation v1 (https://slsa.dev/spec/v1.0/verification_summary),
//! predicate type `https://slsa.dev/verification_summary/v1`: cairn, as the
//! verifier, says that an image (the subject: its manifest digest) passed or
//! failed a policy, at which SLSA levels, having looked at which attestations.
//! Issued on each promotion so that an admission check is one signature check.
//!
//! Field names are the spec's (§ Schema). Parsing follows its parsing rules
//! (§ Parsing rules: "Consumers MUST ignore unrecognized fields"), so the
//! predicate's own objects accept fields a later minor version adds (v1.1 adds
//! `verifier.version`), while the in-toto statement around it stays strict.
//! What the spec requires is checked on write and on read:
//! `verifier.id`, `policy.uri`, a `digest` on every input attestation,
//! `verificationResult` PASSED or FAILED, `verifiedLevels` with at most one level
//! per track (§ verifiedLevels) and exactly `["FAILED"]` when verification failed;
//! cairn adds that `resourceUri` is a digest-pinned image reference whose digest
//! is the subject's.
//!
//! A break-glass override never looks verified: its VSA says
//! `verificationResult: FAILED` (`verifiedLevels: ["FAILED"]`) and carries the
//! override in cairn's extension field `cairnOverride` (consumers that do not
//! know it ignore it, as the spec's parsing rules require; the result alone
//! already says FAILED):
//!
//! ```jsonc
//! "cairnOverride": {
//!   "actor": "<the identity that overrode the gate>",
//!   "reason": "<the reason it gave>",
//!   "deniedBy": [ { "rule": "tests", "message": "acceptance-test failed on …" } ]
//! }
//! ```
//!
//! A PASSED VSA with a `cairnOverride` is refused on write and on read.

use std::collections::BTreeMap;

use cairn_model::image_ref::ImageRef;
use serde::{Deserialize, Serialize};

use crate::review::{check_predicate_type, verified_in_toto_payload};
use crate::statement::{Predicate, Statement, Subject};
use crate::{Bundle, Digest, EvidenceError, VerifyingKey, rfc3339_utc_ms};

/// `predicateType` of a VSA v1.
pub const VSA_PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// The SLSA version cairn verifies against (§ slsaVersion, `<MAJOR>.<MINOR>`).
pub const SLSA_VERSION: &str = "1.0";
/// `verifiedLevels` of a failed verification (§ SlsaResult).
pub const FAILED_LEVEL: &str = "FAILED";
/// At most this many input attestations.
pub const MAX_INPUT_ATTESTATIONS: usize = 1024;
/// At most this many verified levels (one per track).
pub const MAX_LEVELS: usize = 16;
const MAX_TEXT_BYTES: usize = 2048;

/// §verificationResult.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VerificationResult {
    Passed,
    Failed,
}

/// §verifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifier {
    pub id: String,
}

/// A ResourceDescriptor with the fields a VSA uses for `policy` and
/// `inputAttestations`: a `uri` and a `digest` (DigestSet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsaResource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
}

impl VsaResource {
    /// A resource with a `sha256` digest and, if given, where to fetch it.
    pub fn sha256(uri: Option<String>, digest: Digest) -> Self {
        VsaResource {
            uri,
            digest: BTreeMap::from([("sha256".to_owned(), digest.hex())]),
        }
    }
}

/// A break-glass override, as a FAILED VSA carries it (`cairnOverride`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VsaOverride {
    pub actor: String,
    pub reason: String,
    /// The gate's denials the override went past.
    pub denied_by: Vec<OverriddenDenial>,
}

/// One denial an override went past.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverriddenDenial {
    pub rule: String,
    pub message: String,
}

/// The VSA predicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vsa {
    pub verifier: Verifier,
    /// RFC 3339, UTC.
    pub time_verified: String,
    pub resource_uri: String,
    pub policy: VsaResource,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_attestations: Vec<VsaResource>,
    pub verification_result: VerificationResult,
    pub verified_levels: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependency_levels: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slsa_version: Option<String>,
    /// cairn's extension: the break-glass override this deployment went
    /// through (only with `verificationResult: FAILED`).
    #[serde(
        rename = "cairnOverride",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub override_: Option<VsaOverride>,
}

impl Predicate for Vsa {
    const PREDICATE_TYPE: &'static str = VSA_PREDICATE_TYPE;
}

/// An attestation the verification looked at: its digest (of the attestation
/// as stored: the bundle or envelope bytes) and where to fetch it, if anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputAttestation {
    pub uri: Option<String>,
    pub sha256: Digest,
}

/// What the engine knows when it issues a VSA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VsaFacts {
    /// The URI naming this cairn installation as verifier.
    pub verifier_id: String,
    /// Unix milliseconds, the engine's clock.
    pub time_verified_ms: i64,
    /// The image reference with its digest (`registry/repo@sha256:…`).
    pub image: String,
    /// The policy evaluated: where it lives, and the SHA-256 of its text.
    pub policy_uri: String,
    pub policy_digest: Digest,
    pub input_attestations: Vec<InputAttestation>,
    pub result: VerificationResult,
    /// When passed, the highest level of each track, e.g. `SLSA_BUILD_LEVEL_3`.
    /// When failed, empty or `["FAILED"]` (written as `["FAILED"]`).
    pub verified_levels: Vec<String>,
    /// Count of transitive dependencies per level; may be empty.
    pub dependency_levels: BTreeMap<String, u64>,
    /// A break-glass override: the result must then be FAILED.
    pub override_: Option<VsaOverride>,
}

impl Vsa {
    /// The predicate from `facts`, checked as [`Vsa::check`] does.
    pub fn from_facts(facts: &VsaFacts) -> Result<Self, EvidenceError> {
        let verified_levels = match facts.result {
            VerificationResult::Passed => facts.verified_levels.clone(),
            VerificationResult::Failed => {
                if !(facts.verified_levels.is_empty() || facts.verified_levels == [FAILED_LEVEL]) {
                    return Err(EvidenceError::Invalid {
                        what: "VSA verifiedLevels",
                        reason: "a failed verification verifies no level (it is written as [\"FAILED\"])",
                    });
                }
                vec![FAILED_LEVEL.to_owned()]
            }
        };
        let vsa = Vsa {
            verifier: Verifier {
                id: facts.verifier_id.clone(),
            },
            time_verified: rfc3339_utc_ms(facts.time_verified_ms)?,
            resource_uri: facts.image.clone(),
            policy: VsaResource::sha256(Some(facts.policy_uri.clone()), facts.policy_digest),
            input_attestations: facts
                .input_attestations
                .iter()
                .map(|a| VsaResource::sha256(a.uri.clone(), a.sha256))
                .collect(),
            verification_result: facts.result,
            verified_levels,
            dependency_levels: facts.dependency_levels.clone(),
            slsa_version: Some(SLSA_VERSION.to_owned()),
            override_: facts.override_.clone(),
        };
        vsa.check()?;
        Ok(vsa)
    }

    /// The image's manifest digest, from `resourceUri`.
    pub fn image_digest(&self) -> Result<Digest, EvidenceError> {
        let reference =
            ImageRef::parse(&self.resource_uri).map_err(|_| EvidenceError::Invalid {
                what: "VSA resourceUri",
                reason: "it is not an image reference",
            })?;
        let Some(digest) = reference.digest.as_deref() else {
            return Err(EvidenceError::Invalid {
                what: "VSA resourceUri",
                reason: "it is not pinned by digest (`@sha256:…`)",
            });
        };
        Ok(Digest::parse(digest)?)
    }

    /// The spec's requirements and cairn's bounds (see the module doc).
    pub fn check(&self) -> Result<(), EvidenceError> {
        let invalid = |what, reason| Err(EvidenceError::Invalid { what, reason });
        check_text("VSA verifier.id", &self.verifier.id)?;
        if !self.verifier.id.contains(':') {
            return invalid("VSA verifier.id", "it is not a URI");
        }
        check_text("VSA timeVerified", &self.time_verified)?;
        self.image_digest()?;
        match &self.policy.uri {
            Some(uri) => check_text("VSA policy.uri", uri)?,
            None => return invalid("VSA policy", "it has no uri (the spec requires one)"),
        }
        check_digest_set("VSA policy.digest", &self.policy.digest)?;
        if self.input_attestations.len() > MAX_INPUT_ATTESTATIONS {
            return Err(EvidenceError::TooLarge {
                what: "VSA inputAttestations",
                size: self.input_attestations.len(),
                limit: MAX_INPUT_ATTESTATIONS,
            });
        }
        for attestation in &self.input_attestations {
            if let Some(uri) = &attestation.uri {
                check_text("VSA inputAttestations uri", uri)?;
            }
            check_digest_set("VSA inputAttestations digest", &attestation.digest)?;
        }
        check_levels(self.verification_result, &self.verified_levels)?;
        if let Some(o) = &self.override_ {
            if self.verification_result == VerificationResult::Passed {
                return invalid(
                    "VSA cairnOverride",
                    "an overridden deployment was not verified: its result must be FAILED",
                );
            }
            check_text("VSA cairnOverride.actor", &o.actor)?;
            check_text("VSA cairnOverride.reason", &o.reason)?;
            if o.denied_by.len() > MAX_LEVELS * 4 {
                return Err(EvidenceError::TooLarge {
                    what: "VSA cairnOverride.deniedBy",
                    size: o.denied_by.len(),
                    limit: MAX_LEVELS * 4,
                });
            }
            for d in &o.denied_by {
                check_text("VSA cairnOverride.deniedBy rule", &d.rule)?;
                check_text("VSA cairnOverride.deniedBy message", &d.message)?;
            }
        }
        if self.dependency_levels.len() > MAX_LEVELS * 4 {
            return Err(EvidenceError::TooLarge {
                what: "VSA dependencyLevels",
                size: self.dependency_levels.len(),
                limit: MAX_LEVELS * 4,
            });
        }
        for level in self.dependency_levels.keys() {
            check_level_name(level)?;
        }
        if let Some(version) = &self.slsa_version {
            let minor = version.strip_prefix("1.");
            if !minor.is_some_and(|m| {
                !m.is_empty() && m.len() <= 4 && m.bytes().all(|b| b.is_ascii_digit())
            }) {
                return invalid("VSA slsaVersion", "it is not `1.<minor>`");
            }
        }
        Ok(())
    }

    /// Checks a statement carrying a VSA: the predicate, and exactly one
    /// subject whose `sha256` is the digest `resourceUri` pins.
    pub fn check_statement(statement: &Statement<Vsa>) -> Result<(), EvidenceError> {
        statement.predicate.check()?;
        let [subject] = statement.subject.as_slice() else {
            return Err(EvidenceError::Invalid {
                what: "VSA statement",
                reason: "it must have exactly one subject, the verified image",
            });
        };
        if subject.sha256_digest() != Some(statement.predicate.image_digest()?) {
            return Err(EvidenceError::Invalid {
                what: "VSA statement",
                reason: "its subject's sha256 is not the digest its resourceUri pins",
            });
        }
        Ok(())
    }

    /// Parses a statement JSON (the DSSE payload) as a VSA v1: other predicate
    /// types are refused, and the statement is checked as
    /// [`Vsa::check_statement`] does. No signature is verified here.
    pub fn from_statement_json(bytes: &[u8]) -> Result<Statement<Vsa>, EvidenceError> {
        check_predicate_type(bytes, VSA_PREDICATE_TYPE)?;
        let statement = Statement::<Vsa>::from_json(bytes)?;
        Vsa::check_statement(&statement)?;
        Ok(statement)
    }

    /// Verifies `bundle`'s signature with `key`, then reads the statement as
    /// [`Vsa::from_statement_json`] does.
    /// A bundle that carries transparency log entries is refused here (see
    /// [`Bundle::verify`]): verify it with [`Bundle::verify_with_log`] and read
    /// the returned payload with `from_statement_json`.
    pub fn verify_bundle(
        bundle: &Bundle,
        key: &VerifyingKey,
    ) -> Result<Statement<Vsa>, EvidenceError> {
        Vsa::from_statement_json(verified_in_toto_payload(bundle, key)?)
    }
}

impl Statement<Vsa> {
    /// The VSA about the image `facts.image` pins: the subject is its manifest
    /// digest, named by the reference without the digest.
    pub fn vsa(facts: &VsaFacts) -> Result<Self, EvidenceError> {
        let vsa = Vsa::from_facts(facts)?;
        let digest = vsa.image_digest()?;
        let name = match ImageRef::parse(&vsa.resource_uri) {
            Ok(r) => ImageRef { digest: None, ..r }.to_string(),
            Err(_) => vsa.resource_uri.clone(),
        };
        Statement::new(vec![Subject::sha256(name, digest)], vsa)
    }
}

fn check_text(what: &'static str, text: &str) -> Result<(), EvidenceError> {
    if text.trim().is_empty() {
        return Err(EvidenceError::Invalid {
            what,
            reason: "it is empty",
        });
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(EvidenceError::TooLarge {
            what,
            size: text.len(),
            limit: MAX_TEXT_BYTES,
        });
    }
    if text.chars().any(char::is_control) {
        return Err(EvidenceError::Invalid {
            what,
            reason: "it contains control characters",
        });
    }
    Ok(())
}

/// At least one digest; a `sha256` entry, if any, well-formed; all bounded.
fn check_digest_set(
    what: &'static str,
    set: &BTreeMap<String, String>,
) -> Result<(), EvidenceError> {
    if set.is_empty() {
        return Err(EvidenceError::Invalid {
            what,
            reason: "it has no digest",
        });
    }
    if set.len() > 8 {
        return Err(EvidenceError::TooLarge {
            what,
            size: set.len(),
            limit: 8,
        });
    }
    for (algorithm, value) in set {
        check_text(what, algorithm)?;
        check_text(what, value)?;
    }
    if let Some(hex) = set.get("sha256") {
        Digest::from_hex(hex)?;
    }
    Ok(())
}

/// A SlsaResult: `FAILED`, `SLSA_<TRACK>_LEVEL_<n>`, or a custom value that
/// does not start with `SLSA_` (§ SlsaResult).
fn check_level_name(level: &str) -> Result<(), EvidenceError> {
    check_text("VSA level", level)?;
    if level.len() > 64 {
        return Err(EvidenceError::TooLarge {
            what: "VSA level",
            size: level.len(),
            limit: 64,
        });
    }
    if level.starts_with("SLSA_") && slsa_track(level).is_none() {
        return Err(EvidenceError::Invalid {
            what: "VSA level",
            reason: "a value starting with SLSA_ must be SLSA_<TRACK>_LEVEL_<n>",
        });
    }
    Ok(())
}

/// The track of `SLSA_<TRACK>_LEVEL_<n>` (e.g. `BUILD`), if `level` has that form.
fn slsa_track(level: &str) -> Option<&str> {
    let rest = level.strip_prefix("SLSA_")?;
    let (track, n) = rest.rsplit_once("_LEVEL_")?;
    let track_ok = !track.is_empty()
        && track
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    let n_ok = !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit());
    (track_ok && n_ok).then_some(track)
}

fn check_levels(result: VerificationResult, levels: &[String]) -> Result<(), EvidenceError> {
    let invalid = |reason| {
        Err(EvidenceError::Invalid {
            what: "VSA verifiedLevels",
            reason,
        })
    };
    if levels.len() > MAX_LEVELS {
        return Err(EvidenceError::TooLarge {
            what: "VSA verifiedLevels",
            size: levels.len(),
            limit: MAX_LEVELS,
        });
    }
    match result {
        VerificationResult::Failed => {
            if levels != [FAILED_LEVEL] {
                return invalid("a failed verification must list exactly [\"FAILED\"]");
            }
        }
        VerificationResult::Passed => {
            if levels.is_empty() {
                return invalid("a passed verification must name the levels it verified");
            }
            let mut tracks = Vec::new();
            for level in levels {
                check_level_name(level)?;
                if level == FAILED_LEVEL {
                    return invalid("a passed verification cannot list FAILED");
                }
                let key = slsa_track(level).unwrap_or(level);
                if tracks.contains(&key) {
                    return invalid("it lists more than one level of the same track");
                }
                tracks.push(key);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_are_read_from_slsa_levels() {
        assert_eq!(slsa_track("SLSA_BUILD_LEVEL_3"), Some("BUILD"));
        assert_eq!(slsa_track("SLSA_SOURCE_LEVEL_2"), Some("SOURCE"));
        for bad in [
            "SLSA_BUILD_3",
            "SLSA__LEVEL_1",
            "SLSA_build_LEVEL_1",
            "SLSA_BUILD_LEVEL_",
            "ORG_X",
        ] {
            assert_eq!(slsa_track(bad), None, "{bad}");
        }
    }

    #[test]
    fn levels_follow_the_result() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let passed = VerificationResult::Passed;
        let failed = VerificationResult::Failed;
        let cases: [(VerificationResult, Vec<String>, bool); 9] = [
            (passed, s(&["SLSA_BUILD_LEVEL_3"]), true),
            (
                passed,
                s(&["SLSA_BUILD_LEVEL_3", "SLSA_SOURCE_LEVEL_1"]),
                true,
            ),
            (passed, s(&["SLSA_BUILD_LEVEL_3", "ORG_REVIEWED"]), true),
            (passed, s(&[]), false),
            (passed, s(&["FAILED"]), false),
            (
                passed,
                s(&["SLSA_BUILD_LEVEL_3", "SLSA_BUILD_LEVEL_2"]),
                false,
            ),
            (passed, s(&["SLSA_BUILDL3"]), false),
            (failed, s(&["FAILED"]), true),
            (failed, s(&["SLSA_BUILD_LEVEL_1"]), false),
        ];
        for (result, levels, ok) in cases {
            assert_eq!(
                check_levels(result, &levels).is_ok(),
                ok,
                "{result:?} {levels:?}"
            );
        }
    }
}
