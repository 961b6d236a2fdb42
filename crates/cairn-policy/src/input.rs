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
//!     "image_references": ["catalog.cairn.local/debian@sha256:…"],
//!     "change": [ { "commit": "<40 hex>", "signed_by": "alice@example.org" } ]
//!   },
//!   "evidence": [
//!     { "predicate_type": "https://slsa.dev/provenance/v1", "signer": "<key id>",
//!       "subject_digest": "sha256:…", "stage_kind": "build", "run": "42",
//!       "workload": "hello", "commit": "<40 hex>", "predicate": { … } }
//!   ],
//!   "verification": { "failures": [
//!     { "evidence": 17, "what": "https://in-toto.io/attestation/test-result/v0.1",
//!       "reason": "its signature or log entry does not verify against cairn's keys (…)" }
//!   ] },
//!   "authors": [ { "identity": "alice@example.org", "why": "alice@example.org ran run 42, …" } ],
//!   "intent": "promote",
//!   "reviews": [
//!     { "commit": "<40 hex>", "reviewer": "bob", "reviewer_roles": ["maintainer"],
//!       "author": "alice", "verdict": "approve" }
//!   ],
//!   "environment": { "name": "production", "position": 1, "ran_before": false,
//!                    "require_signed_commits": false,
//!                    "previous": { "name": "staging", "deployed": true, "healthy": true } },
//!   "findings": {
//!     "scanned": true,
//!     "vulnerabilities": [ { "id": "CVE-2026-0001", "package": "pkg:deb/debian/openssl@3.0.1",
//!                            "severity": "high", "fix_available": true, "suppressed": false,
//!                            "urgency": "medium" } ],
//!     "licences": [ { "component": "pkg:cargo/serde@1.0.200", "expression": "MIT OR Apache-2.0",
//!                     "choices": [["Apache-2.0"], ["MIT"]] } ],
//!     "advisory_db": { "count": 31415, "newest_modified": "2026-12-01T00:00:00Z",
//!                      "digest": "sha256:…", "new_since_scan": ["CVE-2026-0002"] }
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
//!   predicate JSON as signed. `stage_kind` (`unit-test`, `acceptance-test`,
//!   `build`, …), `run`, `workload` and `commit` are what the *signed statement*
//!   says produced it (provenance: `internalParameters` / `externalParameters`;
//!   test results: the `cairn chain stage` configuration entry's annotations),
//!   never a store row; `null` when the statement does not say.
//! - `verification.failures` names every bundle filed under the artifact (or
//!   its commit's reviews) that did not verify: a bad signature or log entry,
//!   a statement about another subject, a row that disagrees with what the
//!   bundle signs, an image record its signed provenance contradicts
//!   (`evidence` is then `null`). The default policy denies on any (`evidence`).
//! - `authors` are the authenticated identities that may not approve this
//!   artifact: who queued or ran the runs that produced it (signed in their
//!   evidence), the forge login that pushed (linked to an identity), and the
//!   identities that signed or authored its commits. `why` says which.
//! - `artifact.change` lists the change's commits (reachable from the
//!   artifact's commit, not from what runs in the last environment) as cairn's
//!   signed provenance names them, with the identity whose registered SSH key
//!   made each one's verified signature; with
//!   `environment.require_signed_commits` the default policy denies an
//!   unsigned one, or a change it does not know (`signed-commits`).
//! - `intent` is `promote` or `rollback`; `environment.ran_before` is `true`
//!   when a verified VSA says cairn's gate passed (not overrode) this digest of
//!   this workload into this environment before: a rollback to it needs no
//!   previous environment.
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
//!   `vulnerabilities` also hold what the advisories stored *now* say about the
//!   components of the verified SBOM (re-matched at decision time), so a finding
//!   imported after the build counts like one found at build time;
//!   `advisory_db` names the database state used and the findings the signed
//!   scan did not have (`new_since_scan`).

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
    /// Evidence that did not verify, named (absent: none).
    #[serde(default)]
    pub verification: Verification,
    /// Identities that may not approve (absent: none).
    #[serde(default)]
    pub authors: Vec<Author>,
    /// What the actor asks for (absent: `promote`).
    #[serde(default)]
    pub intent: Intent,
}

/// The bundles that did not verify.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    pub failures: Vec<VerificationFailure>,
}

/// One bundle that did not verify, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationFailure {
    /// The bundle's evidence id; `None` for a store record its signed evidence contradicts.
    pub evidence: Option<i64>,
    /// What the store says it is (a predicate type, or `image record`).
    pub what: String,
    pub reason: String,
}

/// An authenticated identity that may not approve the artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Author {
    pub identity: String,
    /// Why: ran the run, pushed, signed or authored a commit.
    pub why: String,
}

/// What the actor asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    #[default]
    Promote,
    Rollback,
}

impl Intent {
    /// `promote` or `rollback`, as the input and a signed decision say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Promote => "promote",
            Intent::Rollback => "rollback",
        }
    }
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
    /// The commits of the change, as cairn's signed provenance names them.
    #[serde(default)]
    pub change: Vec<ChangeCommit>,
}

/// One commit of the change and the identity whose registered SSH key made
/// its verified signature (`None`: unsigned or not verified).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeCommit {
    pub commit: String,
    pub signed_by: Option<String>,
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
    /// The chain stage kind the statement signs, if it came from a stage.
    pub stage_kind: Option<String>,
    /// The run, workload and commit the statement signs, if it says: `null`
    /// when it does not (the default policy then does not take a test result
    /// as about the artifact's commit); absent in a hand-written input, it is.
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub workload: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
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
    /// A verified VSA says cairn's gate passed this digest into this
    /// environment before (a rollback target).
    #[serde(default)]
    pub ran_before: bool,
    /// The organisation requires every commit of the change to be signed
    /// (`[review] require_signed_commits` in org.toml).
    #[serde(default)]
    pub require_signed_commits: bool,
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
    /// The advisory database the vulnerabilities were re-matched against at
    /// decision time (absent: none was consulted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory_db: Option<AdvisoryDb>,
}

/// The state of the stored advisories a decision used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvisoryDb {
    /// Records kept (withdrawn ones included).
    pub count: u64,
    /// The newest `modified` time among them (RFC 3339), if any.
    pub newest_modified: Option<String>,
    /// `sha256:<hex>` over every record's `id`, `modified` and `withdrawn`, by id.
    pub digest: String,
    /// Findings the stored advisories give now that the signed scan does not name.
    pub new_since_scan: Vec<String>,
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
    /// The distribution's urgency, where its advisory gives one (Debian:
    /// `unimportant`, `low`, `medium`, `high`, `not yet assigned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<String>,
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

    /// `low`, `medium`, `high` or `critical`; anything else is `Unknown`
    /// (treated as critical: fail closed).
    pub fn parse(name: &str) -> Severity {
        match name {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => Severity::Unknown,
        }
    }
}

/// A component's declared licence (an SPDX expression; `None` when unknown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    pub component: String,
    pub expression: Option<String>,
    /// The expression's choices (`cairn_sbom::licence_choices`): each the
    /// licences one way of satisfying it needs together. Without it the policy
    /// splits the expression on ` OR ` and ` AND ` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Vec<String>>>,
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
