//! The gate's input: the one JSON document every gate policy is written against.
//!
//! This is a contract: field names are stable and documented here and in the
//! crate docs. The caller (the engine) fills it with what it knows and what it
//! verified; the policy only reads it.
//!
//! ```json
//! {
//!   "artifact": {
//!     "digest": "sha256:<64 hex>",
//!     "workload": "hello",
//!     "commit": "<40 hex>",
//!     "base_image": { "name": "catalog.cairn.local/debian", "digest": "sha256:…", "in_catalog": true },
//!     "image_references": ["catalog.cairn.local/debian@sha256:…"]
//!   },
//!   "evidence": [
//!     { "predicate_type": "https://slsa.dev/provenance/v1", "signer": "<key id>",
//!       "subject_digest": "sha256:…", "stage_kind": "build", "predicate": { … } }
//!   ],
//!   "reviews": [
//!     { "commit": "<40 hex>", "reviewer": "bob", "reviewer_roles": ["maintainer"],
//!       "author": "alice", "verdict": "approve" }
//!   ],
//!   "environment": { "name": "production", "position": 1,
//!                    "previous": { "name": "staging", "deployed": true, "healthy": true } },
//!   "findings": {
//!     "scanned": true,
//!     "vulnerabilities": [ { "id": "CVE-2026-0001", "package": "pkg:deb/debian/openssl@3.0.1",
//!                            "severity": "high", "fix_available": true, "suppressed": false } ],
//!     "licences": [ { "component": "pkg:cargo/serde@1.0.200", "expression": "MIT OR Apache-2.0" } ]
//!   },
//!   "actor": { "identity": "carol", "kind": "user", "roles": ["release-manager"] },
//!   "override": null
//! }
//! ```
//!
//! - `artifact.base_image` is `null` when the artifact has none (a file); the
//!   default policy then denies (`base-image`), so a gate for files drops that rule.
//! - `evidence` holds only statements whose signatures the caller verified (a
//!   statement that did not verify never reaches the input); `subject_digest` is
//!   the subject the statement is about (one entry per subject), `predicate` the
//!   predicate JSON as signed. `stage_kind` is the chain stage kind that produced
//!   it (`unit-test`, `acceptance-test`, `build`, …), from the engine's record.
//! - `reviews` holds each reviewer's latest verdict on a commit of this workload.
//! - `environment.position` is the 0-based place in the promotion path;
//!   `previous` is `null` for the first environment. `deployed`/`healthy` say
//!   whether *this digest* runs there and is healthy.
//! - `severity` is one of `low`, `medium`, `high`, `critical`, `unknown`
//!   (unknown is treated as critical: fail closed); `suppressed` means an
//!   OpenVEX statement says the artifact is not affected.
//! - `findings.scanned` is `true` only when a verified vulnerability scan (in-toto
//!   vulns v0.2) about this digest exists; `vulnerabilities` then come from it and
//!   `licences` from the verified CycloneDX SBOM about the digest. Missing or
//!   `false`, the default policy denies (`vulnerabilities`): no scan, no pass.

use serde::{Deserialize, Serialize};

/// Everything a gate decides on. See the module docs for the JSON shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateInput {
    pub artifact: Artifact,
    pub evidence: Vec<Evidence>,
    pub reviews: Vec<Review>,
    pub environment: Environment,
    pub findings: Findings,
    pub actor: Actor,
    /// A break-glass override, already authorised for the actor
    /// (see [`crate::authorize_override`]).
    #[serde(rename = "override")]
    pub override_: Option<Override>,
}

/// The artifact being gated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// `sha256:<hex>`: the OCI manifest digest or the file digest.
    pub digest: String,
    pub workload: String,
    /// The git commit the artifact was built from.
    pub commit: String,
    pub base_image: Option<BaseImage>,
    /// Every image reference the build used or the artifact names (for the
    /// registry rules).
    pub image_references: Vec<String>,
}

/// The base image the artifact is built on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseImage {
    pub name: String,
    pub digest: String,
    /// Whether cairn's base-image catalog holds exactly this digest.
    pub in_catalog: bool,
}

/// One verified in-toto statement about one subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub predicate_type: String,
    /// The key id of the key whose signature checked.
    pub signer: String,
    /// `sha256:<hex>` of the subject this entry is about.
    pub subject_digest: String,
    /// The chain stage kind that produced the statement, if it came from a stage.
    pub stage_kind: Option<String>,
    pub predicate: serde_json::Value,
}

/// A reviewer's latest verdict on a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub commit: String,
    pub reviewer: String,
    /// The reviewer's roles on this workload (from the bindings), e.g. `maintainer`.
    pub reviewer_roles: Vec<String>,
    /// The commit's author.
    pub author: String,
    pub verdict: Verdict,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Approve,
    RequestChanges,
}

/// The environment the artifact is going to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub name: String,
    /// 0-based position in the promotion path.
    pub position: u32,
    /// The environment before this one in the path, `None` for the first.
    pub previous: Option<PreviousEnvironment>,
}

/// What the previous environment says about this digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousEnvironment {
    pub name: String,
    /// This digest is deployed there now.
    pub deployed: bool,
    /// And healthy there.
    pub healthy: bool,
}

/// The scan and licence summary of the artifact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Findings {
    /// A verified vulnerability scan of this digest exists (absent: `false`).
    #[serde(default)]
    pub scanned: bool,
    pub vulnerabilities: Vec<Vulnerability>,
    pub licences: Vec<Licence>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vulnerability {
    pub id: String,
    /// The affected component (a purl).
    pub package: String,
    pub severity: Severity,
    /// A fixed version of the component exists.
    pub fix_available: bool,
    /// An OpenVEX statement says the artifact is not affected.
    pub suppressed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
    /// No usable severity: treated as critical.
    Unknown,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
            Severity::Unknown => "unknown",
        }
    }
}

/// A component's declared licence (an SPDX expression; `None` when unknown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    pub component: String,
    pub expression: Option<String>,
}

/// Who asks for the gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub identity: String,
    /// `user` or `service-account`.
    pub kind: String,
    /// The actor's roles at this workload and environment.
    pub roles: Vec<String>,
}

/// A break-glass override: the gate's denials stand in the decision, flagged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub reason: String,
}
