//! The VSA a deployment ends with: one signature check for an admission
//! controller, naming the policy, its digest and every verified input; a
//! break-glass deployment's says FAILED, with the override.

use cairn_evidence::vsa::{InputAttestation, VerificationResult, VsaFacts};
use cairn_evidence::{Digest, SigningKey, Statement};
use cairn_policy::{Decision, GateInput};

use super::{DECISION_PREDICATE, Promoter, Request};
use crate::EngineError;
use crate::host::now_ms;

impl Promoter<'_> {
    /// Signs and keeps the VSA of a deployment of `digest` that `decision`
    /// allowed; returns its evidence id.
    pub(super) fn issue_vsa(
        &self,
        key: &SigningKey,
        req: &Request,
        digest: &str,
        input: &GateInput,
        decision: &Decision,
    ) -> Result<i64, EngineError> {
        let inputs: Vec<InputAttestation> = self
            .store
            .evidence_for_subject(digest)?
            .iter()
            .filter(|e| e.predicate_type != DECISION_PREDICATE)
            // Only what verified: a bundle the gate named as failed is not an input.
            .filter(|e| {
                !input
                    .verification
                    .failures
                    .iter()
                    .any(|f| f.evidence == Some(e.id))
            })
            .map(|e| InputAttestation {
                uri: Some(format!("cairn:evidence/{}", e.id)),
                sha256: cairn_evidence::sha256(&e.bundle),
            })
            .collect();
        let facts = VsaFacts {
            verifier_id: crate::audit::verifier_id(self.data, self.org.builder_id.as_deref())?,
            time_verified_ms: now_ms(),
            image: format!("cairn.local/{}@{digest}", req.workload),
            policy_uri: format!("urn:cairn:policy:{}", req.environment),
            policy_digest: Digest::parse(&decision.policy_digest)
                .map_err(cairn_evidence::EvidenceError::from)?,
            input_attestations: inputs,
            // A break-glass deployment was not verified: FAILED, with the override.
            result: if decision.overridden.is_some() {
                VerificationResult::Failed
            } else {
                VerificationResult::Passed
            },
            verified_levels: if decision.overridden.is_some() {
                Vec::new()
            } else {
                vec!["SLSA_BUILD_LEVEL_3".to_owned()]
            },
            dependency_levels: Default::default(),
            override_: decision
                .overridden
                .as_ref()
                .map(|reason| vsa_override(&req.actor.name, reason, &decision.reasons)),
        };
        let vsa = Statement::vsa(&facts)?;
        let (vsa_evidence, _) = self.sign_statement_and_keep(key, &vsa, digest)?;
        Ok(vsa_evidence)
    }
}

/// The override a FAILED VSA carries: single-line, bounded texts (the VSA's
/// own checks refuse control characters and longer texts).
fn vsa_override(
    actor: &str,
    reason: &str,
    denials: &[cairn_policy::Denial],
) -> cairn_evidence::vsa::VsaOverride {
    let clean = |text: &str| -> String {
        let one_line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(1024)
            .collect();
        if one_line.trim().is_empty() {
            "-".to_owned()
        } else {
            one_line
        }
    };
    cairn_evidence::vsa::VsaOverride {
        actor: clean(actor),
        reason: clean(reason),
        denied_by: denials
            .iter()
            .take(64)
            .map(|d| cairn_evidence::vsa::OverriddenDenial {
                rule: clean(&d.rule),
                message: clean(&d.message),
            })
            .collect(),
    }
}
