//! Roles, bindings and the one authorisation function used by the CLI and the
//! server: who may do what, where.
//!
//! A role grants the actions in [`MATRIX`]. A binding gives an identity a role
//! at a scope: the whole organisation, one workload, or one workload in one
//! environment. A request is allowed when some binding of a known identity
//! covers the request's scope and its role grants the action; everything else is
//! denied with a reason (fail closed). On top of the matrix:
//! - organisation actions (change the chain, policy or base catalog, manage
//!   keys or identities, import advisories) need an organisation-wide binding;
//! - workload actions (run, approve) need a workload in the scope, environment
//!   actions (promote, rollback, override) a workload and an environment;
//! - approvals and overrides are for people: a service account is never allowed
//!   them, whatever its bindings (four eyes need two humans);
//! - an override also needs a non-empty reason ([`authorize_override`]) and is
//!   always flagged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A role, from least to most operational power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Viewer,
    Developer,
    Maintainer,
    ReleaseManager,
    PlatformAdmin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Developer,
        Role::Maintainer,
        Role::ReleaseManager,
        Role::PlatformAdmin,
    ];

    /// The name used in bindings, policies and the gate input.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Maintainer => "maintainer",
            Role::ReleaseManager => "release-manager",
            Role::PlatformAdmin => "platform-admin",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether this role grants `action` (the row of [`MATRIX`]).
    pub fn grants(self, action: Action) -> bool {
        MATRIX
            .iter()
            .find(|(role, _)| *role == self)
            .is_some_and(|(_, actions)| actions.contains(&action))
    }
}

/// Something an identity asks to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    View,
    Run,
    Approve,
    Promote,
    Rollback,
    Override,
    ChangeChain,
    ChangePolicy,
    ManageKeys,
    ManageIdentities,
    /// Add or replace a base image in the catalog.
    ChangeCatalog,
    /// Import data the closed loop matches: advisories, recorded SBOMs.
    ImportData,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::View,
        Action::Run,
        Action::Approve,
        Action::Promote,
        Action::Rollback,
        Action::Override,
        Action::ChangeChain,
        Action::ChangePolicy,
        Action::ManageKeys,
        Action::ManageIdentities,
        Action::ChangeCatalog,
        Action::ImportData,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Run => "run",
            Action::Approve => "approve",
            Action::Promote => "promote",
            Action::Rollback => "rollback",
            Action::Override => "override",
            Action::ChangeChain => "change-chain",
            Action::ChangePolicy => "change-policy",
            Action::ManageKeys => "manage-keys",
            Action::ManageIdentities => "manage-identities",
            Action::ChangeCatalog => "change-catalog",
            Action::ImportData => "import-data",
        }
    }

    /// Where the action applies.
    pub fn reach(self) -> Reach {
        match self {
            Action::View => Reach::Any,
            Action::Run | Action::Approve => Reach::Workload,
            Action::Promote | Action::Rollback | Action::Override => Reach::Environment,
            Action::ChangeChain
            | Action::ChangePolicy
            | Action::ManageKeys
            | Action::ManageIdentities
            | Action::ChangeCatalog
            | Action::ImportData => Reach::Organisation,
        }
    }

    /// Actions only people may take.
    pub fn human_only(self) -> bool {
        matches!(self, Action::Approve | Action::Override)
    }
}

/// What scope an action needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Any scope.
    Any,
    /// A workload (and any environment of it).
    Workload,
    /// A workload and one of its environments.
    Environment,
    /// The whole organisation: only an organisation-wide binding grants it.
    Organisation,
}

/// What each role may do (anywhere its binding reaches). Roles do not inherit:
/// release managers promote but do not approve code, platform admins run the
/// platform but neither approve nor promote (separation of duties); give a
/// person two bindings to combine them.
pub const MATRIX: &[(Role, &[Action])] = &[
    (Role::Viewer, &[Action::View]),
    (Role::Developer, &[Action::View, Action::Run]),
    (
        Role::Maintainer,
        &[Action::View, Action::Run, Action::Approve],
    ),
    (
        Role::ReleaseManager,
        &[
            Action::View,
            Action::Run,
            Action::Promote,
            Action::Rollback,
            Action::Override,
        ],
    ),
    (
        Role::PlatformAdmin,
        &[
            Action::View,
            Action::Run,
            Action::ChangeChain,
            Action::ChangePolicy,
            Action::ManageKeys,
            Action::ManageIdentities,
            Action::ChangeCatalog,
            Action::ImportData,
        ],
    ),
];

/// Users and service accounts (each authenticates with a key or a token,
/// checked before authorisation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityKind {
    User,
    ServiceAccount,
}

/// An authenticated identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub kind: IdentityKind,
}

impl Identity {
    pub fn user(name: impl Into<String>) -> Self {
        Identity {
            name: name.into(),
            kind: IdentityKind::User,
        }
    }
    pub fn service_account(name: impl Into<String>) -> Self {
        Identity {
            name: name.into(),
            kind: IdentityKind::ServiceAccount,
        }
    }
}

/// Where a request acts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub workload: Option<String>,
    pub environment: Option<String>,
}

impl Scope {
    pub fn organisation() -> Self {
        Scope::default()
    }
    pub fn workload(workload: impl Into<String>) -> Self {
        Scope {
            workload: Some(workload.into()),
            environment: None,
        }
    }
    pub fn environment(workload: impl Into<String>, environment: impl Into<String>) -> Self {
        Scope {
            workload: Some(workload.into()),
            environment: Some(environment.into()),
        }
    }
}

/// Where a binding reaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "at")]
pub enum BindingScope {
    /// Every workload and environment.
    Organisation,
    /// One workload, all its environments.
    Workload { workload: String },
    /// One workload in one environment.
    Environment {
        workload: String,
        environment: String,
    },
}

impl BindingScope {
    fn covers(&self, scope: &Scope) -> bool {
        match self {
            BindingScope::Organisation => true,
            BindingScope::Workload { workload } => scope.workload.as_deref() == Some(workload),
            BindingScope::Environment {
                workload,
                environment,
            } => {
                scope.workload.as_deref() == Some(workload)
                    && scope.environment.as_deref() == Some(environment)
            }
        }
    }
}

/// One grant: an identity has a role at a scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub identity: String,
    pub role: Role,
    pub scope: BindingScope,
}

/// The known identities and their bindings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bindings {
    pub identities: BTreeMap<String, IdentityKind>,
    pub bindings: Vec<Binding>,
}

impl Bindings {
    /// The roles `identity` holds at `scope` (for the gate input's roles).
    pub fn roles_at(&self, identity: &Identity, scope: &Scope) -> Vec<Role> {
        if self.identities.get(&identity.name) != Some(&identity.kind) {
            return Vec::new();
        }
        let mut roles: Vec<Role> = self
            .bindings
            .iter()
            .filter(|b| b.identity == identity.name && b.scope.covers(scope))
            .map(|b| b.role)
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{reason}")]
pub struct Denied {
    pub reason: String,
}

fn denied(reason: String) -> Result<(), Denied> {
    Err(Denied { reason })
}

fn describe(scope: &Scope) -> String {
    match (&scope.workload, &scope.environment) {
        (None, None) => "the organisation".to_owned(),
        (Some(w), None) => format!("workload {w}"),
        (Some(w), Some(e)) => format!("workload {w} in {e}"),
        (None, Some(e)) => format!("environment {e} (no workload)"),
    }
}

/// THE authorisation function: may `identity` do `action` at `scope`?
pub fn authorize(
    bindings: &Bindings,
    identity: &Identity,
    action: Action,
    scope: &Scope,
) -> Result<(), Denied> {
    match bindings.identities.get(&identity.name) {
        None => return denied(format!("unknown identity {}", identity.name)),
        Some(kind) if *kind != identity.kind => {
            return denied(format!(
                "identity {} is not a {}",
                identity.name,
                match identity.kind {
                    IdentityKind::User => "user",
                    IdentityKind::ServiceAccount => "service account",
                }
            ));
        }
        Some(_) => {}
    }
    if action.human_only() && identity.kind == IdentityKind::ServiceAccount {
        return denied(format!(
            "{} is a service account: only people may {}",
            identity.name,
            action.as_str()
        ));
    }
    match action.reach() {
        Reach::Workload if scope.workload.is_none() => {
            return denied(format!("{} needs a workload", action.as_str()));
        }
        Reach::Environment if scope.workload.is_none() || scope.environment.is_none() => {
            return denied(format!(
                "{} needs a workload and an environment",
                action.as_str()
            ));
        }
        Reach::Any if scope.workload.is_none() && scope.environment.is_some() => {
            return denied("an environment scope needs a workload".to_owned());
        }
        _ => {}
    }
    let granted = bindings.bindings.iter().any(|b| {
        b.identity == identity.name
            && b.role.grants(action)
            && match action.reach() {
                Reach::Organisation => b.scope == BindingScope::Organisation,
                _ => b.scope.covers(scope),
            }
    });
    if granted {
        Ok(())
    } else {
        denied(format!(
            "{} may not {} at {}: no role bound there grants it",
            identity.name,
            action.as_str(),
            describe(scope)
        ))
    }
}

/// An authorised break-glass override: always flagged; it goes into the gate
/// input and the change record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideGrant {
    pub identity: String,
    pub scope: Scope,
    pub reason: String,
    /// Always `true`: an override is never silent.
    pub flagged: bool,
}

/// Authorises an override: the identity may override at `scope` and gives a
/// non-empty reason.
pub fn authorize_override(
    bindings: &Bindings,
    identity: &Identity,
    scope: &Scope,
    reason: &str,
) -> Result<OverrideGrant, Denied> {
    authorize(bindings, identity, Action::Override, scope)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Denied {
            reason: "an override needs a reason".to_owned(),
        });
    }
    Ok(OverrideGrant {
        identity: identity.name.clone(),
        scope: scope.clone(),
        reason: reason.to_owned(),
        flagged: true,
    })
}
