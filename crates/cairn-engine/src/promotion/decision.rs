//! The gate's decision as evidence: signed (policy digest, input digest,
//! result) and in the log whatever it says, and read back from a change record.

use cairn_evidence::{Predicate, Sha256Digest, SigningKey, Statement, Subject};
use cairn_model::ChangeRecord;
use cairn_policy::Decision;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{DECISION_PREDICATE, Promoter, Request};
use crate::EngineError;
use crate::certify::{Filed, sign_and_keep};
use crate::host::now_ms;

/// A signed gate decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GateDecision(pub Value);

impl Predicate for GateDecision {
    const PREDICATE_TYPE: &'static str = DECISION_PREDICATE;
}

/// The signed decision: its JSON (as the change record keeps it), its evidence
/// id and its log entry.
#[derive(Debug, Clone)]
pub(super) struct SignedDecision {
    pub(super) json: Value,
    pub(super) evidence: i64,
    pub(super) log_index: u64,
}

/// The gate's decision as a change record keeps it: what `cairn explain
/// change:N` prints and the UI's audit page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedDecision {
    /// `None` when the record holds no decision (a policy change).
    pub allow: Option<bool>,
    /// `(rule, message)` of each reason, in order.
    pub reasons: Vec<(String, String)>,
    pub policy_digest: Option<String>,
    pub input_digest: Option<String>,
    /// What happened (`deployed`, `denied: nothing was deployed`, …).
    pub outcome: Option<String>,
}

impl RecordedDecision {
    /// Reads the decision out of a change record's JSON (anything missing or
    /// malformed reads as absent, never as allowed).
    pub fn of(change: &ChangeRecord) -> RecordedDecision {
        let record: Value = serde_json::from_str(&change.json).unwrap_or_default();
        let decision = &record["decision"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        RecordedDecision {
            allow: decision["allow"].as_bool(),
            reasons: decision["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        r["rule"].as_str().unwrap_or("?").to_owned(),
                        r["message"].as_str().unwrap_or("?").to_owned(),
                    )
                })
                .collect(),
            policy_digest: text(&decision["policyDigest"]),
            input_digest: text(&decision["inputDigest"]),
            outcome: text(&record["outcome"]),
        }
    }
}

impl Promoter<'_> {
    /// Signs `decision` about `digest` and keeps it, in the log, whatever it says.
    pub(super) fn sign_decision(
        &self,
        key: &SigningKey,
        req: &Request,
        digest: &str,
        input: &Value,
        decision: &Decision,
    ) -> Result<SignedDecision, EngineError> {
        let json = json!({
            "workload": req.workload,
            "environment": req.environment,
            "artifact": digest,
            "actor": req.actor.name,
            "intent": req.intent.as_str(),
            "allow": decision.allow,
            "reasons": decision.reasons,
            "overridden": decision.overridden,
            "policyDigest": decision.policy_digest,
            "inputDigest": decision.input_digest,
            // The advisory database the vulnerabilities were re-matched against.
            "advisoryDb": input["findings"]["advisory_db"],
            "decidedAt": cairn_model::time::rfc3339_utc(now_ms()),
        });
        let subject = image_subject(&req.workload, digest)?;
        let (evidence, log_index) =
            self.sign_and_keep(key, subject, GateDecision(json.clone()), digest)?;
        Ok(SignedDecision {
            json,
            evidence,
            log_index,
        })
    }

    fn sign_and_keep<P: Predicate>(
        &self,
        key: &SigningKey,
        subject: Subject,
        predicate: P,
        digest: &str,
    ) -> Result<(i64, u64), EngineError> {
        let statement = Statement::new(vec![subject], predicate)?;
        self.sign_statement_and_keep(key, &statement, digest)
    }

    pub(super) fn sign_statement_and_keep<P: Predicate>(
        &self,
        key: &SigningKey,
        statement: &Statement<P>,
        digest: &str,
    ) -> Result<(i64, u64), EngineError> {
        let subject_name = statement
            .subject
            .first()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        sign_and_keep(
            self.data,
            self.store,
            key,
            statement,
            Filed {
                run: None,
                stage: None,
                subject_name: &subject_name,
                subject_digest: digest,
            },
        )
    }
}

fn image_subject(workload: &str, digest: &str) -> Result<Subject, EngineError> {
    Ok(Subject::sha256(
        format!("{workload}@{digest}"),
        Sha256Digest::from_hex(digest.trim_start_matches("sha256:"))?,
    ))
}
