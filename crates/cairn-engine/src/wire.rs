//! JSON wire shapes of runs, stages and log lines, shared by the CLI's `--json`
//! output and the HTTP API (the domain types stay free of serde).

use cairn_model::time::rfc3339_utc;
use cairn_model::{LogLine, RunRecord, StageRecord};
use serde_json::{Value, json};

pub fn run_json(run: &RunRecord, stages: Option<&[StageRecord]>) -> Value {
    let mut v = json!({
        "id": run.id.0,
        "workload": run.workload,
        "commit": run.commit,
        "ref": run.git_ref,
        "status": run.status.as_str(),
        "reason": run.reason,
        "created_at": rfc3339_utc(run.created_at_ms),
        "started_at": run.started_at_ms.map(rfc3339_utc),
        "finished_at": run.finished_at_ms.map(rfc3339_utc),
        "duration_ms": duration_ms(run.started_at_ms, run.finished_at_ms),
    });
    if let Some(stages) = stages {
        v["stages"] = stages.iter().map(stage_json).collect();
    }
    v
}

pub fn stage_json(s: &StageRecord) -> Value {
    json!({
        "index": s.index,
        "name": s.name,
        "kind": s.kind.as_str(),
        "command": s.command,
        "status": s.status.as_str(),
        "exit_code": s.exit_code,
        "reason": s.reason,
        "started_at": s.started_at_ms.map(rfc3339_utc),
        "finished_at": s.finished_at_ms.map(rfc3339_utc),
        "duration_ms": duration_ms(s.started_at_ms, s.finished_at_ms),
    })
}

pub fn line_json(stage: &str, line: &LogLine) -> Value {
    json!({
        "stage": stage,
        "seq": line.seq,
        "stream": line.stream.as_str(),
        "at": rfc3339_utc(line.at_ms),
        "text": String::from_utf8_lossy(&line.text),
    })
}

pub fn duration_ms(start: Option<i64>, end: Option<i64>) -> Option<i64> {
    Some(end? - start?)
}

/// A vulnerability finding, with the artifact it is in (`cairn vulns --json`,
/// `GET /api/findings`).
pub fn finding_json(f: &cairn_store::StoredFinding) -> Value {
    json!({
        "advisory": f.key.advisory_id,
        "kind": f.kind,
        "severity": f.severity,
        "state": f.state.as_str(),
        "ecosystem": f.key.ecosystem,
        "package": f.key.name,
        "version": f.key.version,
        "purl": f.purl,
        "sbom_id": f.key.sbom_id,
        "subject": { "name": f.subject_name, "digest": f.subject_digest },
        "workload": f.workload,
        "environment": f.environment,
        "first_seen_ms": f.first_seen_ms,
    })
}

/// [`finding_json`], naming the environments its artifact runs in now
/// (`running`: digest → environments, from `exposures::running`):
/// `environment` is the furthest on the promotion path, `environments` all.
pub fn finding_json_running(
    f: &cairn_store::StoredFinding,
    running: &std::collections::BTreeMap<String, Vec<String>>,
) -> Value {
    let envs = running
        .get(&f.subject_digest)
        .map_or(&[][..], Vec::as_slice);
    let mut v = finding_json(f);
    if let Some(last) = envs.last() {
        v["environment"] = json!(last);
    }
    v["environments"] = json!(envs);
    v
}

/// A deployment: what went where, when, by whom.
pub fn deployment_json(d: &cairn_model::DeploymentRecord) -> Value {
    json!({
        "workload": d.workload, "environment": d.environment, "digest": d.digest,
        "since": rfc3339_utc(d.deployed_at_ms), "by": d.actor,
        "kind": d.kind, "target": d.target, "detail": d.detail, "log_index": d.log_index,
        "status": d.status.as_str(), "reason": d.reason,
    })
}

/// One row of `cairn status` / `GET /api/environments`.
pub fn status_json(row: &crate::promotion::EnvironmentStatus) -> Value {
    let mut v = deployment_json(&row.deployment);
    v["running"] = json!(row.running);
    v["overridden"] = match &row.overridden {
        Some(reason) => json!({ "actor": row.deployment.actor, "reason": reason }),
        None => Value::Null,
    };
    v["last_attempt"] = row
        .last_attempt
        .as_ref()
        .map_or(Value::Null, deployment_json);
    v
}

/// A change record with its proven inclusion in the audit log (`cairn audit`,
/// `GET /api/audit`).
pub fn change_json(
    id: i64,
    c: &cairn_model::ChangeRecord,
    proof: &crate::audit::Inclusion,
) -> Value {
    json!({
        "id": id, "kind": c.kind, "workload": c.workload, "environment": c.environment,
        "actor": c.actor, "from": c.from_digest, "to": c.to_digest,
        "at": rfc3339_utc(c.at_ms), "log_index": c.log_index,
        "proof": { "tree_size": proof.tree_size, "leaf_hash": proof.leaf_hash, "root": proof.root, "verified": true },
        "record": serde_json::from_str::<Value>(&c.json).unwrap_or_default(),
    })
}

/// What an undeploy did (`cairn undeploy --json`, `POST /api/undeploys`).
pub fn undeploy_json(o: &crate::deploy::UndeployOutcome) -> Value {
    json!({
        "workload": o.workload,
        "environment": o.environment,
        "digest": o.digest,
        "target": o.target,
        "detail": o.detail,
        "log_index": o.log_index,
        "change_id": o.change_id,
        "change_delivery": o.change_delivery,
    })
}

/// What a promotion or rollback did (`cairn promote --json`, `POST /api/promotions`).
pub fn outcome_json(o: &crate::promotion::Outcome) -> Value {
    json!({
        "allow": o.decision.allow,
        "reasons": o.decision.reasons,
        "overridden": o.decision.overridden,
        "policy_digest": o.decision.policy_digest,
        "input_digest": o.decision.input_digest,
        "advisory_db": o.input.findings.advisory_db,
        "decision_evidence": o.decision_evidence,
        "change": o.change_id,
        "log_index": o.change.log_index,
        "deployment": o.deployment.as_ref().map(|d| json!({
            "digest": d.digest, "target": d.target, "detail": d.detail, "log_index": d.log_index,
        })),
        "vsa_evidence": o.vsa_evidence,
        "change_delivery": o.change_delivery,
    })
}

/// A recorded review (`cairn review --json`, `POST /api/reviews`).
pub fn review_json(
    r: &crate::review::Recorded,
    verdict: cairn_evidence::review::Verdict,
    reviewer: &str,
) -> Value {
    json!({
        "commit": r.commit,
        "verdict": verdict.as_str(),
        "reviewer": reviewer,
        "author": r.author,
        "evidence": r.evidence,
        "log_index": r.log_index,
        "counts_for_four_eyes": !r.own_commit,
    })
}

/// An exposure (`cairn exposures --json`, `GET /api/exposures`), as of `now`.
pub fn exposure_json(e: &crate::exposures::Exposure, now: i64) -> Value {
    json!({
        "workload": e.workload,
        "environment": e.environment,
        "digest": e.digest,
        "advisory": e.advisory,
        "package": e.package,
        "severity": e.severity,
        "fixable": e.fixable(),
        "fixed_versions": e.fixed_versions,
        "first_seen": rfc3339_utc(e.first_seen_ms),
        "deadline": rfc3339_utc(e.deadline_ms),
        "state": e.state.as_str(),
        "overdue": e.overdue(now),
        "age_seconds": e.age_ms(now) / 1000,
        "remediated_at": e.remediated_at_ms.map(rfc3339_utc),
        "remediated_by": e.remediated_by,
        "time_to_remediate_seconds": e.time_to_remediate_ms().map(|ms| ms / 1000),
        "acceptance": e.acceptance.as_ref().map(|a| json!({
            "by": a.by,
            "until": rfc3339_utc(a.expires_ms),
            "expired": a.expired,
            "evidence": a.evidence,
            "vex": a.vex_id,
            "status": a.status,
        })),
    })
}
