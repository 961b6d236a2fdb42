//! What the admission webhook decides about one image: a Kubernetes
//! namespace's environment (org.toml `[admission] namespaces`) admits an
//! image only when its reference is pinned by digest, names an allowed
//! registry (never Docker Hub), and cairn holds a VSA about that digest for
//! that environment which verifies against cairn's keys and log (as the
//! promotion gate verifies evidence: [`crate::verified::Trust`]), says PASSED
//! and carries no break-glass override. Everything else is refused with the
//! image and the rule named. It reads only: no key, log or file is created
//! (a fresh installation without keys admits nothing).

use std::path::Path;

use cairn_evidence::vsa::VSA_PREDICATE_TYPE;
use cairn_model::Digest;
use cairn_model::config::OrgConfig;
use cairn_model::image_ref::{ImageRef, RefError};
use cairn_store::Store;
use serde_json::Value;

use crate::verified::{Trust, subject_digest};
use crate::{DataDir, EngineError};

/// The rule names a refusal quotes.
pub const RULE_REFERENCE: &str = "rule image-reference";
pub const RULE_REGISTRY: &str = "rule allowed-registry";
pub const RULE_PINNED: &str = "rule pinned-by-digest";
pub const RULE_VSA: &str = "rule cairn-vsa";
pub const RULE_NAMESPACE: &str = "rule namespace-environment";

/// VSAs read per digest at most (a digest promoted more often than this is
/// judged on its latest ones).
const MAX_VSAS: usize = 64;

/// The keys, log verifier and organisation settings one admission review is
/// decided with (loaded per review: a rotated key or an edited org.toml
/// counts at once).
pub struct Admission {
    trust: Trust,
    org: OrgConfig,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("registries", &self.org.registries)
            .field("namespaces", &self.org.admission_namespaces)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// Reads cairn's public keys, the log's verifier and org.toml, creating
    /// nothing.
    pub fn load(data: &DataDir, platform_dir: Option<&Path>) -> Result<Admission, EngineError> {
        Ok(Admission {
            trust: Trust::read_only(data)?,
            org: crate::load_org(platform_dir)?,
        })
    }

    /// The environment `namespace` deploys to, or why it admits nothing.
    pub fn environment_of(&self, namespace: &str) -> Result<&str, String> {
        self.org
            .admission_namespaces
            .get(namespace)
            .map(String::as_str)
            .ok_or_else(|| {
                format!(
                    "{RULE_NAMESPACE}: namespace `{}` is not mapped to an environment in org.toml [admission] namespaces, so nothing is admitted there",
                    printable(namespace)
                )
            })
    }

    /// Whether `image` may run in `environment`: `Ok(Err(why))` names the
    /// rule; `Err` is cairn failing (the webhook then refuses too).
    pub fn check(
        &self,
        store: &dyn Store,
        environment: &str,
        image: &str,
    ) -> Result<Result<(), String>, EngineError> {
        let parsed = match ImageRef::parse(image) {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("{RULE_REFERENCE}: {e}"))),
        };
        if let Err(e) = parsed.check_allowed(&self.org.registries, true) {
            let rule = match e {
                // The Docker Hub refusal quotes its own rule.
                RefError::DockerHub { .. } => return Ok(Err(e.to_string())),
                RefError::RegistryNotAllowed { .. } => RULE_REGISTRY,
                RefError::NotPinned { .. } => RULE_PINNED,
                RefError::Invalid { .. } => RULE_REFERENCE,
            };
            return Ok(Err(format!("{rule}: {e}")));
        }
        let Some(digest) = parsed.digest.as_deref().and_then(|d| Digest::parse(d).ok()) else {
            return Ok(Err(format!(
                "{RULE_PINNED}: `{image}` is not pinned by a sha256 digest"
            )));
        };
        self.vsa(store, environment, &digest)
    }

    /// The VSA rule for `digest` in `environment`.
    fn vsa(
        &self,
        store: &dyn Store,
        environment: &str,
        digest: &Digest,
    ) -> Result<Result<(), String>, EngineError> {
        let text = digest.to_string();
        let policy = format!("urn:cairn:policy:{environment}");
        // The row's predicate type is only the index that finds a bundle:
        // each is believed for what it signs. A row relabelled away from
        // VSA can only make the answer a refusal.
        let mut rows: Vec<_> = store
            .evidence_for_subject(&text)?
            .into_iter()
            .filter(|e| e.predicate_type == VSA_PREDICATE_TYPE)
            .collect();
        rows.reverse();
        rows.truncate(MAX_VSAS);
        let (mut overridden, mut elsewhere, mut unverified) = (false, Vec::new(), Vec::new());
        for e in &rows {
            let statement = match self.trust.statement(&e.bundle) {
                Ok((statement, _)) => statement,
                Err(reason) => {
                    unverified.push(format!("VSA bundle {} {reason}", e.id));
                    continue;
                }
            };
            if statement["predicateType"] != VSA_PREDICATE_TYPE || !about(&statement, digest) {
                unverified.push(format!(
                    "bundle {} is filed as a VSA about {text} but does not sign one",
                    e.id
                ));
                continue;
            }
            let p = &statement["predicate"];
            if p["policy"]["uri"].as_str() != Some(policy.as_str()) {
                if let Some(other) = p["policy"]["uri"]
                    .as_str()
                    .and_then(|u| u.strip_prefix("urn:cairn:policy:"))
                {
                    elsewhere.push(format!("`{}`", printable(other)));
                }
                continue;
            }
            let passed = p["verificationResult"] == "PASSED" && p.get("cairnOverride").is_none();
            if passed {
                return Ok(Ok(()));
            }
            overridden = true;
        }
        elsewhere.sort();
        elsewhere.dedup();
        let why = if overridden {
            format!(
                "{RULE_VSA}: {text} reached `{environment}` only by a break-glass override (its VSA says FAILED), which admits nothing"
            )
        } else if !elsewhere.is_empty() {
            format!(
                "{RULE_VSA}: {text} has a cairn VSA for {} but none for `{environment}`",
                elsewhere.join(", ")
            )
        } else if !unverified.is_empty() {
            format!(
                "{RULE_VSA}: no VSA about {text} verifies: {}",
                unverified.join("; ")
            )
        } else {
            format!(
                "{RULE_VSA}: cairn holds no VSA about {text}: it was never promoted to `{environment}` through cairn's gate"
            )
        };
        Ok(Err(why))
    }
}

/// Whether a verified statement is about `digest`: one of its subjects, and
/// the digest its `resourceUri` pins.
fn about(statement: &Value, digest: &Digest) -> bool {
    let subject = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| subject_digest(s).as_ref() == Some(digest));
    let resource = statement["predicate"]["resourceUri"]
        .as_str()
        .and_then(|u| u.rsplit_once('@'))
        .is_some_and(|(_, d)| d == digest.to_string());
    subject && resource
}

/// Text from a request, bounded and without control characters, for a message.
pub fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(256)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > 256 {
        out.push('…');
    }
    out
}
