//! Change records: every promotion, rollback, denial, failed deploy, policy
//! change and reconciliation is one, stored, appended to
//! `<data>/changes.jsonl` and, with `[changes] webhook` in org.toml, delivered
//! to a change-management system (`change_sink.rs`).

use cairn_model::{ChangeKind, ChangeRecord, DeploymentKind, DeploymentRecord};
use cairn_policy::{Decision, Gate, GateInput, Identity, Review, Verdict};
use serde::Serialize;
use serde_json::{Value, json};

use super::decision::SignedDecision;
use super::{Intent, Promoter, Request};
use crate::EngineError;
use crate::audit::{AuditLog, Change, Deploy, LOCK_WAIT, Override, PolicyChange, Rollback};
use crate::host::now_ms;

/// The change record kind of a change of the gate's policies.
const POLICY_CHANGE: &str = ChangeKind::PolicyChange.as_str();
/// Who a policy change is attributed to: the system, since cairn sees a
/// policy change when it takes effect, not who edited the files.
pub const POLICY_ACTOR: &str = "cairn-policy";

impl Promoter<'_> {
    /// A policy change is a production change: when the gate's policies (the
    /// default set, the organisation's files, the parameters) differ from the last
    /// recorded ones, the change is appended to the audit log and kept as a change
    /// record before the new policies decide anything. cairn sees the change when
    /// it first takes effect, not when someone edited a file, so nobody can be
    /// named as its author: it is attributed to [`POLICY_ACTOR`] (the system,
    /// with the policy's source: its files and the platform directory), never
    /// to `noticed_for`, whose request only made cairn look (the record says so).
    /// The last recorded digest is one indexed row, however many changes came
    /// after it.
    pub(super) fn record_policy_change(
        &self,
        gate: &Gate,
        noticed_for: &Identity,
    ) -> Result<(), EngineError> {
        let new = gate.policy_digest().to_owned();
        let last = self
            .store
            .last_change_of_kind(POLICY_CHANGE)?
            .map(|(_, c)| c.to_digest);
        if last.as_deref() == Some(new.as_str()) {
            return Ok(());
        }
        let receipt = AuditLog::open_waiting(self.data, LOCK_WAIT)?.record(
            &Change::PolicyChange(PolicyChange {
                policy: "gate".to_owned(),
                old_digest: last.clone(),
                new_digest: new.clone(),
                actor: POLICY_ACTOR.to_owned(),
            }),
        )?;
        self.keep_change(&ChangeRecord {
            kind: POLICY_CHANGE.into(),
            workload: "*".into(),
            environment: "*".into(),
            actor: POLICY_ACTOR.into(),
            from_digest: last,
            to_digest: new,
            log_index: receipt.index,
            at_ms: now_ms(),
            json: json!({
                "policy_files": gate.files(),
                "source": {
                    "default_set": "cairn's built-in default policies",
                    "platform_dir": self.platform_dir.map(|p| p.display().to_string()),
                },
                "noticed_for": noticed_for.name,
                "outcome": format!(
                    "the gate's policies changed; seen at the first decision under them (for {}'s request, who did not make the change)",
                    noticed_for.name
                ),
            })
            .to_string(),
        })?;
        Ok(())
    }

    /// Stores the change record, appends it to the file sink
    /// (`<data>/changes.jsonl`, for change-management systems to pick up) and
    /// delivers it to the organisation's change webhook, if one is set. Returns
    /// the record's id and, with a webhook, how its delivery went.
    pub(crate) fn keep_change(
        &self,
        change: &ChangeRecord,
    ) -> Result<(i64, Option<String>), EngineError> {
        let id = self.store.add_change(change)?;
        let line = json!({
            "id": id,
            "kind": change.kind,
            "workload": change.workload,
            "environment": change.environment,
            "actor": change.actor,
            "from": change.from_digest,
            "to": change.to_digest,
            "log_index": change.log_index,
            "at": cairn_model::time::rfc3339_utc(change.at_ms),
            "record": serde_json::from_str::<Value>(&change.json).unwrap_or(Value::Null),
        });
        let path = self.data.root().join("changes.jsonl");
        crate::jsonl::append(&path, &line, true).map_err(EngineError::io("append to", &path))?;
        crate::notify::change(self.data, self.org, change, &line);
        let delivery = crate::change_sink::deliver(&self.org.change_sink, self.data, id, &line)
            .map(|r| match r {
                Ok(()) => "delivered to the change webhook".to_owned(),
                Err(why) => format!("not delivered to the change webhook: {why}"),
            });
        Ok((id, delivery))
    }
}

/// The deployment a promotion the gate allowed makes: `override` when an
/// override turned a denial into an allow, else `deploy` or `rollback`.
pub(super) fn kind_of(intent: Intent, decision: &Decision) -> DeploymentKind {
    if decision.overridden.is_some() {
        DeploymentKind::Override
    } else {
        match intent {
            Intent::Promote => DeploymentKind::Deploy,
            Intent::Rollback => DeploymentKind::Rollback,
        }
    }
}

/// The audit-log entry of an allowed change of `kind`.
pub(super) fn audit_change(
    req: &Request,
    kind: DeploymentKind,
    digest: &str,
    decision: &Decision,
    from_digest: Option<&String>,
) -> Change {
    match (kind, from_digest) {
        (DeploymentKind::Override, _) => Change::Override(Override {
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            artifact: digest.to_owned(),
            gate: decision.policy_digest.clone(),
            reason: decision.overridden.clone().unwrap_or_default(),
            actor: req.actor.name.clone(),
        }),
        (DeploymentKind::Rollback, Some(from)) => Change::Rollback(Rollback {
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            from_artifact: from.clone(),
            to_artifact: digest.to_owned(),
            actor: req.actor.name.clone(),
        }),
        _ => Change::Deploy(Deploy {
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            artifact: digest.to_owned(),
            actor: req.actor.name.clone(),
        }),
    }
}

/// The change record of a denial: nothing was deployed.
pub(super) fn denied(
    req: &Request,
    digest: &str,
    from_digest: Option<String>,
    signed: &SignedDecision,
) -> ChangeRecord {
    ChangeRecord {
        kind: ChangeKind::Denied.as_str().into(),
        workload: req.workload.clone(),
        environment: req.environment.clone(),
        actor: req.actor.name.clone(),
        from_digest,
        to_digest: digest.to_owned(),
        log_index: signed.log_index,
        at_ms: now_ms(),
        json: json!({ "decision": signed.decision, "outcome": "denied: nothing was deployed" })
            .to_string(),
    }
}

/// One review as a change record keeps it: the review the gate saw, and
/// whether it counted as an approval (and why not).
#[derive(Debug, Serialize)]
struct Approval<'a> {
    #[serde(flatten)]
    review: &'a Review,
    counted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_counted: Option<String>,
}

/// The reviews the gate saw, each marked as the default policy's review rule
/// (`review.rego`) counts it: an approval of the artifact's commit by a
/// reviewer with an approver role who is not its author nor one of its
/// authenticated authors counts; anything else is marked `counted: false`
/// with the reason, so an author's own approval is never mistaken for one.
fn approvals<'a>(input: &'a GateInput, approver_roles: &[String]) -> Vec<Approval<'a>> {
    input
        .reviews
        .iter()
        .map(|r| {
            let not_counted = if r.verdict != Verdict::Approve {
                Some(format!("{} requested changes", r.reviewer))
            } else if r.commit != input.artifact.commit {
                Some(format!(
                    "{} approved another commit ({})",
                    r.reviewer, r.commit
                ))
            } else if r.reviewer == r.author {
                Some(format!("{} approved their own commit", r.reviewer))
            } else if let Some(a) = input.authors.iter().find(|a| a.identity == r.reviewer) {
                Some(format!("{} may not approve: {}", r.reviewer, a.why))
            } else if !r
                .reviewer_roles
                .iter()
                .any(|role| approver_roles.contains(role))
            {
                Some(format!(
                    "{} is not a {}",
                    r.reviewer,
                    approver_roles.join(" or ")
                ))
            } else {
                None
            };
            Approval {
                review: r,
                counted: not_counted.is_none(),
                not_counted,
            }
        })
        .collect()
}

/// [`approvals`] as the record keeps them (for tests).
#[cfg(test)]
pub(super) fn approvals_json(input: &GateInput, approver_roles: &[String]) -> Vec<Value> {
    approvals(input, approver_roles)
        .iter()
        .map(|a| serde_json::to_value(a).unwrap_or_default())
        .collect()
}

/// The change record of a deployment that reached its target.
pub(super) fn deployed(
    req: &Request,
    deployment: &DeploymentRecord,
    signed: &SignedDecision,
    input: &GateInput,
    approver_roles: &[String],
    vsa_evidence: i64,
) -> ChangeRecord {
    ChangeRecord {
        kind: deployment.kind.clone(),
        workload: req.workload.clone(),
        environment: req.environment.clone(),
        actor: req.actor.name.clone(),
        from_digest: deployment.previous_digest.clone(),
        to_digest: deployment.digest.clone(),
        log_index: deployment.log_index,
        at_ms: now_ms(),
        json: json!({
            "decision": signed.decision,
            "approvals": approvals(input, approver_roles),
            "target": deployment.target,
            "detail": deployment.detail,
            "token": deployment.token,
            "vsa_evidence": vsa_evidence,
            "outcome": "deployed",
        })
        .to_string(),
    }
}
