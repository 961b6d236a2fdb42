//! Deployments (intent and outcome) and change records.

use cairn_model::{ChangeRecord, DeploymentRecord, DeploymentStatus};

use crate::StoreError;

/// The largest change record JSON [`DeploymentStore::add_change`] keeps.
pub const MAX_CHANGE_JSON_BYTES: usize = 1 << 20;

/// Deployments and change records.
///
/// Every method is one transaction (see [`Store`](crate::Store)).
pub trait DeploymentStore {
    /// Records a deployment (an intent, `deploying`, or an outcome); returns its
    /// id. A token is unique.
    fn add_deployment(&self, deployment: &DeploymentRecord) -> Result<i64, StoreError>;

    /// Gives the deployment with `token` its status (an outcome) and reason (and,
    /// when given, its final `detail`); `false` when no deployment has that token.
    fn set_deployment_status(
        &self,
        token: &str,
        status: DeploymentStatus,
        reason: Option<&str>,
        detail: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// What runs (or should run) in `environment` of `workload`: its newest
    /// deployment that reached it (`deployed` or `not-running`).
    fn current_deployment(
        &self,
        workload: &str,
        environment: &str,
    ) -> Result<Option<DeploymentRecord>, StoreError>;

    /// Deployments, newest first, of `workload` and/or to `environment` (each
    /// filter optional), at most `limit`.
    fn deployments(
        &self,
        workload: Option<&str>,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeploymentRecord>, StoreError>;

    /// Whether `digest` was ever deployed to `environment` of `workload`.
    fn was_deployed(
        &self,
        workload: &str,
        environment: &str,
        digest: &str,
    ) -> Result<bool, StoreError>;

    /// Keeps a change record; returns its id. JSON larger than
    /// [`MAX_CHANGE_JSON_BYTES`] is refused.
    fn add_change(&self, change: &ChangeRecord) -> Result<i64, StoreError>;

    /// Change records with their ids, newest first, of `workload` (or all), at most
    /// `limit`.
    fn changes(
        &self,
        workload: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(i64, ChangeRecord)>, StoreError>;
    /// The newest change record of `kind` with its id (one indexed row).
    fn last_change_of_kind(&self, kind: &str) -> Result<Option<(i64, ChangeRecord)>, StoreError>;
}
