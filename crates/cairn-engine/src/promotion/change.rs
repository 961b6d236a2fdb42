//! Change records: every promotion, rollback, denial, failed deploy, policy
//! change and reconciliation is one, stored, appended to
//! `<data>/changes.jsonl` and, with `[changes] webhook` in org.toml, delivered
//! to a change-management system (`change_sink.rs`).

use cairn_model::{ChangeRecord, DeploymentRecord};
use cairn_policy::{Decision, Gate, Identity};
use serde_json::{Value, json};

use super::decision::SignedDecision;
use super::{Intent, Promoter, Request};
use crate::EngineError;
use crate::audit::{AuditLog, Change, Deploy, LOCK_WAIT, Override, PolicyChange, Rollback};
use crate::host::now_ms;

impl Promoter<'_> {
    /// A policy change is a production change: when the gate's policies (the
    /// default set, the organisation's files, the parameters) differ from the last
    /// recorded ones, the change is appended to the audit log and kept as a change
    /// record before the new policies decide anything. cairn sees the change when
    /// it first takes effect; `actor` is who triggered that first decision.
    pub(super) fn record_policy_change(
        &self,
        gate: &Gate,
        actor: &Identity,
    ) -> Result<(), EngineError> {
        let new = gate.policy_digest().to_owned();
        let last = self
            .store
            .changes(None, 10_000)?
            .into_iter()
            .find(|(_, c)| c.kind == "policy-change")
            .map(|(_, c)| c.to_digest);
        if last.as_deref() == Some(new.as_str()) {
            return Ok(());
        }
        let receipt = AuditLog::open_waiting(self.data, LOCK_WAIT)?.record(
            &Change::PolicyChange(PolicyChange {
                policy: "gate".to_owned(),
                old_digest: last.clone(),
                new_digest: new.clone(),
                actor: actor.name.clone(),
            }),
        )?;
        self.keep_change(&ChangeRecord {
            kind: "policy-change".into(),
            workload: "*".into(),
            environment: "*".into(),
            actor: actor.name.clone(),
            from_digest: last,
            to_digest: new,
            log_index: receipt.index,
            at_ms: now_ms(),
            json: json!({
                "policy_files": gate.files(),
                "outcome": "the gate's policies changed; first used by this actor's request",
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
        use std::io::Write;
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
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(EngineError::io("open", &path))?;
        writeln!(file, "{line}").map_err(EngineError::io("write", &path))?;
        file.sync_data().map_err(EngineError::io("sync", &path))?;
        let delivery = crate::change_sink::deliver(&self.org.change_sink, self.data, id, &line)
            .map(|r| match r {
                Ok(()) => "delivered to the change webhook".to_owned(),
                Err(why) => format!("not delivered to the change webhook: {why}"),
            });
        Ok((id, delivery))
    }
}

/// The change a promotion the gate allowed makes: `override` when an override
/// turned a denial into an allow, else `deploy` or `rollback`.
pub(super) fn kind_of(intent: Intent, decision: &Decision) -> &'static str {
    if decision.overridden.is_some() {
        "override"
    } else {
        match intent {
            Intent::Promote => "deploy",
            Intent::Rollback => "rollback",
        }
    }
}

/// The audit-log entry of an allowed change of `kind`.
pub(super) fn audit_change(
    req: &Request,
    kind: &str,
    digest: &str,
    decision: &Decision,
    from_digest: Option<&String>,
) -> Change {
    match (kind, from_digest) {
        ("override", _) => Change::Override(Override {
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            artifact: digest.to_owned(),
            gate: decision.policy_digest.clone(),
            reason: decision.overridden.clone().unwrap_or_default(),
            actor: req.actor.name.clone(),
        }),
        ("rollback", Some(from)) => Change::Rollback(Rollback {
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
        kind: "denied".into(),
        workload: req.workload.clone(),
        environment: req.environment.clone(),
        actor: req.actor.name.clone(),
        from_digest,
        to_digest: digest.to_owned(),
        log_index: signed.log_index,
        at_ms: now_ms(),
        json: json!({ "decision": signed.json, "outcome": "denied: nothing was deployed" })
            .to_string(),
    }
}

/// The change record of a deployment that reached its target.
pub(super) fn deployed(
    req: &Request,
    deployment: &DeploymentRecord,
    signed: &SignedDecision,
    input: &Value,
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
            "decision": signed.json,
            "approvals": input["reviews"],
            "target": deployment.target,
            "detail": deployment.detail,
            "token": deployment.token,
            "vsa_evidence": vsa_evidence,
            "outcome": "deployed",
        })
        .to_string(),
    }
}
