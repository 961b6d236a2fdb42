//! The deploy target's part of a promotion: the intent recorded before the
//! target acts (a `deploying` record with the token the target identifies the
//! deployment by), the target's call, and its outcome on the record.

use cairn_model::config::DeployTarget;
use cairn_model::{
    ChangeKind, ChangeRecord, DeploymentKind, DeploymentRecord, DeploymentStatus, TargetKind,
};
use serde_json::json;

use super::decision::SignedDecision;
use super::{Intent, Promoter, Request};
use crate::EngineError;
use crate::deploy::local as deploy_local;
use crate::host::now_ms;
use crate::images::Images;

/// A deployment recorded as `deploying`, and the port a `local` target serves on.
#[derive(Debug)]
pub(super) struct Planned {
    pub(super) deployment: DeploymentRecord,
    pub(super) port: u16,
}

impl Promoter<'_> {
    /// Records the intent: a `deploying` record with a fresh token, before the
    /// target does anything. A kill from here on leaves a record that
    /// reconciliation finds and resolves.
    pub(super) fn record_intent(
        &self,
        req: &Request,
        target: &DeployTarget,
        current: Option<&DeploymentRecord>,
        kind: DeploymentKind,
        digest: &str,
        log_index: u64,
    ) -> Result<Planned, EngineError> {
        let token = deploy_local::new_token()?;
        let (target_name, planned_detail, port) = match target {
            DeployTarget::Local => {
                // The environment keeps its port: the running deployment's, else
                // the recorded one's.
                let port = deploy_local::current(self.data, &req.workload, &req.environment)?
                    .map(|d| d.port)
                    .or_else(|| {
                        current
                            .filter(|c| TargetKind::parse(&c.target) == Some(TargetKind::Local))
                            .and_then(|c| deploy_local::port_of(&c.detail))
                    })
                    .map_or_else(free_port, Ok)?;
                (target.kind(), deploy_local::url_of(port), port)
            }
            DeployTarget::Gitops { repo, .. } => (target.kind(), format!("a commit to {repo}"), 0),
        };
        let deployment = DeploymentRecord {
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            digest: digest.to_owned(),
            previous_digest: current.map(|c| c.digest.clone()),
            kind: kind.as_str().to_owned(),
            actor: req.actor.name.clone(),
            target: target_name.as_str().to_owned(),
            detail: planned_detail,
            log_index,
            deployed_at_ms: now_ms(),
            status: DeploymentStatus::Deploying,
            token: Some(token),
            reason: None,
        };
        self.store.add_deployment(&deployment)?;
        Ok(Planned { deployment, port })
    }

    /// The target acts. `Ok`: the deployment's detail (URL or commit); `Err`:
    /// why not, and for `local` whether the previous deployment runs again.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_target(
        &self,
        target: &DeployTarget,
        images: &Images,
        image: &cairn_oci::Image,
        req: &Request,
        record: &cairn_model::ImageRecord,
        planned: &Planned,
        previous_token: Option<&str>,
        log_index: u64,
    ) -> Result<String, (Box<EngineError>, Option<bool>)> {
        let digest = &planned.deployment.digest;
        let token = planned.deployment.token.clone().unwrap_or_default();
        let port = planned.port;
        crate::deploy::deploy(
            target,
            &crate::deploy::Deployment {
                data: self.data,
                images,
                workload: &req.workload,
                environment: &req.environment,
                image,
                digest,
                port,
                token: &token,
                previous_token,
                run: record.run.map(|r| r.to_string()),
                log_index,
                change: match req.intent {
                    Intent::Promote => crate::deploy::gitops::ChangeKind::Deploy,
                    Intent::Rollback => crate::deploy::gitops::ChangeKind::Rollback,
                },
                actor: &req.actor.name,
            },
        )
        .map_err(|f| (f.error, f.previous_restored))
    }

    /// A deploy that failed: its record `failed`, the previous one
    /// `not-running` when it was stopped and not started again, and a
    /// `deploy-failed` change record.
    pub(super) fn deploy_failed(
        &self,
        req: &Request,
        deployment: &DeploymentRecord,
        signed: &SignedDecision,
        error: &EngineError,
        previous_token: Option<&str>,
        previous_restored: Option<bool>,
    ) -> Result<(), EngineError> {
        let token = deployment.token.clone().unwrap_or_default();
        let why = format!("the deploy failed: {error}");
        self.store
            .set_deployment_status(&token, DeploymentStatus::Failed, Some(&why), None)?;
        if previous_restored == Some(false)
            && let Some(t) = previous_token
        {
            self.store.set_deployment_status(
                t,
                DeploymentStatus::NotRunning,
                Some(&format!(
                    "stopped for the deploy of log entry {}, which failed, and not started again",
                    deployment.log_index
                )),
                None,
            )?;
        }
        let change = ChangeRecord {
            kind: ChangeKind::DeployFailed.as_str().into(),
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            actor: req.actor.name.clone(),
            from_digest: deployment.previous_digest.clone(),
            to_digest: deployment.digest.clone(),
            log_index: deployment.log_index,
            at_ms: now_ms(),
            json: json!({ "decision": signed.decision, "outcome": why, "token": token })
                .to_string(),
        };
        self.keep_change(&change)?;
        Ok(())
    }

    /// The outcome: `deployment` is deployed with `detail`, and what ran before
    /// is superseded.
    pub(super) fn mark_deployed(
        &self,
        deployment: &DeploymentRecord,
        previous_token: Option<&str>,
        detail: &str,
    ) -> Result<(), EngineError> {
        let token = deployment.token.as_deref().unwrap_or_default();
        self.store
            .set_deployment_status(token, DeploymentStatus::Deployed, None, Some(detail))?;
        if let Some(t) = previous_token {
            self.store.set_deployment_status(
                t,
                DeploymentStatus::Superseded,
                Some(&format!(
                    "replaced by the deployment of log entry {}",
                    deployment.log_index
                )),
                None,
            )?;
        }
        Ok(())
    }
}

fn free_port() -> Result<u16, EngineError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(EngineError::io("find a free port on", "127.0.0.1"))
}
