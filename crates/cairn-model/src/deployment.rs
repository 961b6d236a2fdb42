//! Environments, deployments, change records and identities, as cairn records them.

/// One deployment of a digest to an environment: made only after its change was
/// durable in the audit log and the deploy target succeeded. The newest record of
/// a (workload, environment) is what runs there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRecord {
    pub workload: String,
    pub environment: String,
    /// The image's manifest digest, `sha256:…`.
    pub digest: String,
    /// What ran there before (none for the first deployment).
    pub previous_digest: Option<String>,
    /// `deploy`, `rollback` or `override`.
    pub kind: String,
    /// Who: an identity's name.
    pub actor: String,
    /// The deploy target: `local` or `gitops`.
    pub target: String,
    /// Where it is: a URL (`local`) or a commit (`gitops`).
    pub detail: String,
    /// The audit log entry of the change.
    pub log_index: u64,
    pub deployed_at_ms: i64,
}

/// A change record: every production change (and every environment change), with
/// who, what, from → to, approvals, the gate's decision and the log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// `deploy`, `rollback`, `override`, `policy-change`, `denied`.
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
