//! The gate's decision as evidence: signed (policy digest, input digest,
//! result) and in the log whatever it says, and read back from a change record.

use cairn_evidence::{Digest, Predicate, SigningKey, Statement, Subject};
use cairn_model::ChangeRecord;
use cairn_policy::{AdvisoryDb, Decision, Denial, GateInput};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DECISION_PREDICATE, Intent, Promoter, Request};
use crate::EngineError;
use crate::certify::{Filed, sign_and_keep};
use crate::host::now_ms;

/// A signed gate decision: who asked for what, what the gate said (allowed,
/// and every denying rule with its message), under which policy and input.
/// A change record keeps a copy (`decision`), read back with
/// [`RecordedDecision::of`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateDecision {
    pub workload: String,
    pub environment: String,
    /// The digest decided about.
    pub artifact: String,
    pub actor: String,
    pub intent: Intent,
    pub allow: bool,
    /// The denials, sorted; with an override, the ones it went past.
    pub reasons: Vec<Denial>,
    /// The break-glass reason when an override turned a denial into an allow.
    pub overridden: Option<String>,
    pub policy_digest: String,
    pub input_digest: String,
    /// The advisory database the vulnerabilities were re-matched against.
    pub advisory_db: Option<AdvisoryDb>,
    /// RFC 3339, UTC.
    pub decided_at: String,
}

impl Predicate for GateDecision {
    const PREDICATE_TYPE: &'static str = DECISION_PREDICATE;
}

/// The signed decision, its evidence id and its log entry.
#[derive(Debug, Clone)]
pub(super) struct SignedDecision {
    pub(super) decision: GateDecision,
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
    /// The reviews the gate saw (a deployment's record): each reviewer,
    /// verdict and whether it counted — `Err(why)` when it did not.
    pub approvals: Vec<RecordedApproval>,
}

/// One review a change record keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedApproval {
    pub reviewer: String,
    pub verdict: String,
    /// `Ok(())` when it counted as an approval, else why not. A record older
    /// than the marking says nothing: `Err("not marked (an older record)")`.
    pub counted: Result<(), String>,
}

impl RecordedDecision {
    /// Reads the decision out of a change record's JSON (anything missing or
    /// malformed reads as absent, never as allowed).
    pub fn of(change: &ChangeRecord) -> RecordedDecision {
        let mut record: Value = serde_json::from_str(&change.json).unwrap_or_default();
        let outcome = record["outcome"].as_str().map(str::to_owned);
        let approvals = record["approvals"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| RecordedApproval {
                reviewer: a["reviewer"].as_str().unwrap_or("?").to_owned(),
                verdict: a["verdict"].as_str().unwrap_or("?").to_owned(),
                counted: match a["counted"].as_bool() {
                    Some(true) => Ok(()),
                    Some(false) => Err(a["not_counted"].as_str().unwrap_or("?").to_owned()),
                    None => Err("not marked (an older record)".to_owned()),
                },
            })
            .collect();
        let Ok(decision) = serde_json::from_value::<GateDecision>(record["decision"].take()) else {
            return RecordedDecision {
                outcome,
                approvals,
                ..RecordedDecision::default()
            };
        };
        RecordedDecision {
            allow: Some(decision.allow),
            reasons: decision
                .reasons
                .into_iter()
                .map(|r| (r.rule, r.message))
                .collect(),
            policy_digest: Some(decision.policy_digest),
            input_digest: Some(decision.input_digest),
            outcome,
            approvals,
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
        input: &GateInput,
        decision: &Decision,
    ) -> Result<SignedDecision, EngineError> {
        let decision = GateDecision {
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            artifact: digest.to_owned(),
            actor: req.actor.name.clone(),
            intent: req.intent,
            allow: decision.allow,
            reasons: decision.reasons.clone(),
            overridden: decision.overridden.clone(),
            policy_digest: decision.policy_digest.clone(),
            input_digest: decision.input_digest.clone(),
            advisory_db: input.findings.advisory_db.clone(),
            decided_at: cairn_model::time::rfc3339_utc(now_ms()),
        };
        let subject = image_subject(&req.workload, digest)?;
        let (evidence, log_index) = self.sign_and_keep(key, subject, decision.clone(), digest)?;
        Ok(SignedDecision {
            decision,
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
        Digest::parse(digest).map_err(cairn_evidence::EvidenceError::from)?,
    ))
}
