//! Environments, deployments, change records and identities, as cairn records them.

/// One deployment of a digest to an environment: written as an intent
/// ([`DeploymentStatus::Deploying`]) once its change is durable in the audit log and
/// before the deploy target starts anything, then given its outcome. The newest
/// record of a (workload, environment) that was deployed is what runs there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRecord {
    pub workload: String,
    pub environment: String,
    /// The image's manifest digest, `sha256:…`.
    pub digest: String,
    /// What ran there before (none for the first deployment).
    pub previous_digest: Option<String>,
    /// A [`DeploymentKind`]'s name: `deploy`, `rollback` or `override`.
    pub kind: String,
    /// Who: an identity's name.
    pub actor: String,
    /// The deploy target: a [`TargetKind`]'s name, `local` or `gitops`.
    pub target: String,
    /// Where it is: a URL (`local`) or a commit (`gitops`).
    pub detail: String,
    /// The audit log entry of the change.
    pub log_index: u64,
    pub deployed_at_ms: i64,
    /// Intent or outcome.
    pub status: DeploymentStatus,
    /// The per-deployment random token the deploy target identifies its
    /// deployment by (the `local` target's sandbox cgroup); `None` for records
    /// older than tokens.
    pub token: Option<String>,
    /// Why it has its status (a failure, a reconciliation), when it is not simply
    /// deployed.
    pub reason: Option<String>,
}

/// Where a deployment stands. `Deploying` is the recorded intent; the others are
/// outcomes, each set with a reason but `Deployed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentStatus {
    /// The change is in the log; the deploy target is (or was, when cairn was
    /// killed) at work. Reconciliation gives it an outcome.
    Deploying,
    /// It runs (or, for `gitops`, the repository holds it).
    Deployed,
    /// It never ran: the deploy failed or was interrupted before it ran.
    Failed,
    /// A later deployment replaced it.
    Superseded,
    /// It was deployed, and reconciliation found it no longer runs.
    NotRunning,
}

impl DeploymentStatus {
    pub const ALL: [DeploymentStatus; 5] = [
        DeploymentStatus::Deploying,
        DeploymentStatus::Deployed,
        DeploymentStatus::Failed,
        DeploymentStatus::Superseded,
        DeploymentStatus::NotRunning,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Deploying => "deploying",
            DeploymentStatus::Deployed => "deployed",
            DeploymentStatus::Failed => "failed",
            DeploymentStatus::Superseded => "superseded",
            DeploymentStatus::NotRunning => "not-running",
        }
    }

    pub fn parse(text: &str) -> Option<DeploymentStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the deployment once reached its environment (what `cairn
    /// rollback` may go back to).
    pub fn was_deployed(self) -> bool {
        matches!(
            self,
            DeploymentStatus::Deployed
                | DeploymentStatus::Superseded
                | DeploymentStatus::NotRunning
        )
    }
}

/// What a change record records (`ChangeRecord::kind`): one name per kind,
/// matched through this type, never as a string. Documented in
/// ARCHITECTURE.md ("Change kinds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A promotion the gate allowed reached its environment.
    Deploy,
    /// A rollback the gate allowed reached its environment.
    Rollback,
    /// A break-glass deployment past a denial.
    Override,
    /// The gate said no; nothing was deployed.
    Denied,
    /// The gate allowed it, the change is in the log, and the target failed.
    DeployFailed,
    /// The gate's policies changed (attributed to the system).
    PolicyChange,
    /// Reconciliation resolved what runs against what was recorded.
    Reconciled,
    /// A step of a remediation by cairn.
    Remediation,
    /// A deployment was stopped (`cairn undeploy`).
    Undeploy,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 9] = [
        ChangeKind::Deploy,
        ChangeKind::Rollback,
        ChangeKind::Override,
        ChangeKind::Denied,
        ChangeKind::DeployFailed,
        ChangeKind::PolicyChange,
        ChangeKind::Reconciled,
        ChangeKind::Remediation,
        ChangeKind::Undeploy,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Deploy => "deploy",
            ChangeKind::Rollback => "rollback",
            ChangeKind::Override => "override",
            ChangeKind::Denied => "denied",
            ChangeKind::DeployFailed => "deploy-failed",
            ChangeKind::PolicyChange => "policy-change",
            ChangeKind::Reconciled => "reconciled",
            ChangeKind::Remediation => "remediation",
            ChangeKind::Undeploy => "undeploy",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// How a deployment reached its environment (`DeploymentRecord::kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentKind {
    Deploy,
    Rollback,
    /// Past a denial, by a break-glass override.
    Override,
}

impl DeploymentKind {
    pub const ALL: [DeploymentKind; 3] = [
        DeploymentKind::Deploy,
        DeploymentKind::Rollback,
        DeploymentKind::Override,
    ];

    pub const fn as_str(self) -> &'static str {
        self.change_kind().as_str()
    }

    pub fn parse(text: &str) -> Option<DeploymentKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The change record kind of a deployment of this kind.
    pub const fn change_kind(self) -> ChangeKind {
        match self {
            DeploymentKind::Deploy => ChangeKind::Deploy,
            DeploymentKind::Rollback => ChangeKind::Rollback,
            DeploymentKind::Override => ChangeKind::Override,
        }
    }
}

/// A deploy target's kind (`DeploymentRecord::target`; org.toml's
/// `target = "…"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// The image's rootfs run in the sandbox on a host loopback port.
    Local,
    /// A digest-pinned manifest committed to a GitOps repository.
    Gitops,
}

impl TargetKind {
    pub const ALL: [TargetKind; 2] = [TargetKind::Local, TargetKind::Gitops];

    pub const fn as_str(self) -> &'static str {
        match self {
            TargetKind::Local => "local",
            TargetKind::Gitops => "gitops",
        }
    }

    pub fn parse(text: &str) -> Option<TargetKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A change record: every production change (and every environment change), with
/// who, what, from → to, approvals, the gate's decision and the log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// A [`ChangeKind`]'s name.
    pub kind: String,
    pub workload: String,
    pub environment: String,
    pub actor: String,
    pub from_digest: Option<String>,
    pub to_digest: String,
    /// The log entry it was appended as.
    pub log_index: u64,
    pub at_ms: i64,
    /// The whole record as JSON (approvals, decision, policy digest, reasons, outcome).
    pub json: String,
}

/// Users and service accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    User,
    ServiceAccount,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::User => "user",
            IdentityKind::ServiceAccount => "service-account",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(IdentityKind::User),
            "service-account" => Some(IdentityKind::ServiceAccount),
            _ => None,
        }
    }
}

/// An identity: a name, a kind, and the SHA-256 of its token (the token itself is
/// shown once and never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    pub name: String,
    pub kind: IdentityKind,
    /// Hex SHA-256 of the bearer token.
    pub token_sha256: String,
    pub created_at_ms: i64,
    /// Set when revoked: its token no longer authenticates.
    pub revoked_at_ms: Option<i64>,
    /// When its token stops authenticating, if it expires (the caller checks).
    pub expires_at_ms: Option<i64>,
}

/// A browser session: the SHA-256 of its cookie's token (never the token), whose it
/// is, and the CSRF token its forms carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hex SHA-256 of the session token.
    pub token_sha256: String,
    /// The identity's name.
    pub identity: String,
    pub csrf: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A role bound to an identity, organisation-wide, for a workload, or for a
/// workload's environment. Role names as cairn-policy spells them (`viewer`,
/// `developer`, `maintainer`, `release-manager`, `platform-admin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    pub identity: String,
    pub role: String,
    pub workload: Option<String>,
    pub environment: Option<String>,
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name_and_nothing_else_does() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(k.as_str()), Some(k));
        }
        for k in DeploymentKind::ALL {
            assert_eq!(DeploymentKind::parse(k.as_str()), Some(k));
            assert_eq!(ChangeKind::parse(k.as_str()), Some(k.change_kind()));
        }
        for k in TargetKind::ALL {
            assert_eq!(TargetKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ChangeKind::parse("deploy_failed"), None);
        assert_eq!(ChangeKind::parse("Deploy"), None);
        assert_eq!(TargetKind::parse(""), None);
        assert_eq!(ChangeKind::DeployFailed.as_str(), "deploy-failed");
        assert_eq!(ChangeKind::Undeploy.as_str(), "undeploy");
    }
}
