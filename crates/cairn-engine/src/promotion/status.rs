//! What runs where (`cairn status`, `GET /api/environments`): per workload and
//! environment, the deployment that reached it last, whether it runs, and a
//! newer attempt that did not.

use cairn_model::{ChangeKind, DeploymentKind, DeploymentRecord, DeploymentStatus, TargetKind};
use cairn_store::Store;
use serde_json::Value;

use crate::deploy::local as deploy_local;
use crate::{DataDir, EngineError};

/// What runs in one environment of one workload: the deployment that reached it
/// last, whether it really runs there, and a newer attempt that did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentStatus {
    pub deployment: DeploymentRecord,
    /// For the `local` target: its own sandbox (by its token) runs and holds its
    /// port. Other targets are taken at their recorded word.
    pub running: bool,
    /// The deployment went past the gate by a break-glass override: its
    /// reason. It stays marked until a clean promotion (or rollback) replaces it.
    pub overridden: Option<String>,
    /// The newest record, when it is not `deployment` (a failed or interrupted
    /// deploy: what was tried, and why it is not what runs).
    pub last_attempt: Option<DeploymentRecord>,
}

/// The most deployments [`status`] looks through.
pub const STATUS_SCAN: usize = 10_000;

/// What runs where, since when, by whom (`cairn status`, `GET /api/environments`):
/// per (workload, environment), newest first. Reconcile first
/// ([`Promoter::reconcile`]) for the truth about interrupted promotions.
pub fn status(data: &DataDir, store: &dyn Store) -> Result<Vec<EnvironmentStatus>, EngineError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut rows = Vec::new();
    let all = store.deployments(None, None, STATUS_SCAN)?;
    for newest in &all {
        if !seen.insert((newest.workload.clone(), newest.environment.clone())) {
            continue;
        }
        let current = all.iter().find(|d| {
            d.workload == newest.workload
                && d.environment == newest.environment
                && matches!(
                    d.status,
                    DeploymentStatus::Deployed | DeploymentStatus::NotRunning
                )
        });
        let deployment = current.unwrap_or(newest).clone();
        let running = deployment.status == DeploymentStatus::Deployed
            && match TargetKind::parse(&deployment.target) {
                Some(TargetKind::Local) => {
                    deploy_local::current(data, &deployment.workload, &deployment.environment)?
                        .is_some_and(|l| {
                            let same = match &deployment.token {
                                Some(t) => l.token().as_deref() == Some(t.as_str()),
                                None => l.digest == deployment.digest,
                            };
                            same && l.serves()
                        })
                }
                _ => true,
            };
        let last_attempt = (newest.token != deployment.token || current.is_none())
            .then(|| newest.clone())
            .filter(|n| n != &deployment);
        let overridden =
            if DeploymentKind::parse(&deployment.kind) == Some(DeploymentKind::Override) {
                let reason = store
                    .changes(Some(&deployment.workload), STATUS_SCAN)?
                    .into_iter()
                    .find(|(_, c)| {
                        ChangeKind::parse(&c.kind) == Some(ChangeKind::Override)
                            && c.environment == deployment.environment
                            && c.log_index == deployment.log_index
                    })
                    .and_then(|(_, c)| {
                        let record: Value = serde_json::from_str(&c.json).ok()?;
                        record["decision"]["overridden"].as_str().map(str::to_owned)
                    });
                Some(reason.unwrap_or_else(|| "(reason not found)".to_owned()))
            } else {
                None
            };
        rows.push(EnvironmentStatus {
            deployment,
            running,
            overridden,
            last_attempt,
        });
    }
    Ok(rows)
}
