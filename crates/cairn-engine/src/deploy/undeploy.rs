//! `cairn undeploy`: a deployment stopped as a change like any other. Authorised
//! as a promotion to the environment is (`promote` at the workload and
//! environment: a release manager), under the deployments lock after
//! reconciliation, appended to the audit log (`undeploy`) before the target
//! acts, then stopped through [`super::undeploy`], and kept as a change record.
//! Its deployment record becomes `not-running`, saying who stopped it and the
//! log entry, so reconciliation never starts or adopts it again.

use cairn_model::{ChangeRecord, DeploymentStatus};
use cairn_policy::{Action, Identity, Scope};
use serde_json::json;

use super::{Removal, target_name};
use crate::EngineError;
use crate::audit::{AuditLog, Change, LOCK_WAIT, Undeploy};
use crate::host::now_ms;
use crate::promotion::Promoter;

/// Stop what runs of `workload` in `environment`, as `actor`.
#[derive(Debug, Clone)]
pub struct UndeployRequest {
    pub workload: String,
    pub environment: String,
    pub actor: Identity,
}

/// What an undeploy did.
#[derive(Debug, Clone)]
pub struct UndeployOutcome {
    pub workload: String,
    pub environment: String,
    /// The digest that ran.
    pub digest: String,
    /// The target that stopped it (`local`, `gitops`).
    pub target: String,
    /// What the target did (`local`: the sandbox stopped; `gitops`: the commit).
    pub detail: String,
    pub log_index: u64,
    pub change_id: i64,
    pub change_delivery: Option<String>,
}

impl Promoter<'_> {
    /// Authorises, logs, stops and records. Nothing deployed (no deployment,
    /// or one that no longer runs) is [`EngineError::NothingDeployed`], and
    /// nothing is logged.
    pub fn undeploy(&self, req: &UndeployRequest) -> Result<UndeployOutcome, EngineError> {
        let scope = Scope {
            workload: Some(req.workload.clone()),
            environment: Some(req.environment.clone()),
        };
        crate::access::authorize(self.store, &req.actor, Action::Promote, &scope)?;
        let _lock = super::reconcile::DeployLock::acquire(self.data, LOCK_WAIT)?;
        self.reconcile_locked()?;
        let nothing = |why: String| EngineError::NothingDeployed {
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            why,
        };
        let current = self
            .store
            .current_deployment(&req.workload, &req.environment)?
            .ok_or_else(|| nothing("cairn has no deployment of it there".to_owned()))?;
        if current.status != DeploymentStatus::Deployed {
            return Err(nothing(format!(
                "its last deployment ({}, log entry {}) is {}{}",
                current.digest,
                current.log_index,
                current.status.as_str(),
                current
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )));
        }
        let target = self.org.target(&req.environment);
        if current.target != target_name(&target) {
            return Err(EngineError::BadDeployTarget {
                why: format!(
                    "{} in {} was deployed by the `{}` target, but org.toml names `{}` for {} now; cairn stops a deployment only through the target that made it",
                    req.workload,
                    req.environment,
                    current.target,
                    target_name(&target),
                    req.environment
                ),
            });
        }

        // The change goes into the log first; on Err nothing is stopped.
        let receipt =
            AuditLog::open_waiting(self.data, LOCK_WAIT)?.record(&Change::Undeploy(Undeploy {
                workload: req.workload.clone(),
                environment: req.environment.clone(),
                artifact: current.digest.clone(),
                actor: req.actor.name.clone(),
            }))?;
        let stopped = super::undeploy(
            &target,
            &Removal {
                data: self.data,
                workload: &req.workload,
                environment: &req.environment,
                log_index: receipt.index,
                actor: &req.actor.name,
            },
        );
        let change = |outcome: String| ChangeRecord {
            kind: "undeploy".into(),
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            actor: req.actor.name.clone(),
            from_digest: None,
            to_digest: current.digest.clone(),
            log_index: receipt.index,
            at_ms: now_ms(),
            json: json!({
                "outcome": outcome,
                "target": current.target,
                "token": current.token,
            })
            .to_string(),
        };
        let detail = match stopped {
            Ok(detail) => detail,
            Err(e) => {
                self.keep_change(&change(format!("the undeploy failed: {e}")))?;
                return Err(e);
            }
        };
        if let Some(token) = &current.token {
            self.store.set_deployment_status(
                token,
                DeploymentStatus::NotRunning,
                Some(&format!(
                    "stopped by `cairn undeploy` (log entry {}) by {}",
                    receipt.index, req.actor.name
                )),
                None,
            )?;
        }
        let (change_id, change_delivery) =
            self.keep_change(&change(format!("undeployed: {detail}")))?;
        Ok(UndeployOutcome {
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            digest: current.digest.clone(),
            target: current.target.clone(),
            detail,
            log_index: receipt.index,
            change_id,
            change_delivery,
        })
    }
}
