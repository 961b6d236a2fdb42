//! Identities and authorisation for the CLI and the server: who is asking
//! (a bearer token), and may they (cairn-policy's one [`cairn_policy::authorize`]
//! over the bindings kept in the store).
//!
//! - A token is `cairn_` followed by 32 random bytes from aws-lc-rs in base64url
//!   (no padding). It is shown once, to its owner, when the identity is created;
//!   the store keeps only its SHA-256 (hex). [`Token`] never prints it in `Debug`.
//! - [`authenticate`] hashes the presented token and looks the hash up. No stored
//!   secret is compared byte by byte with attacker input, so there is no timing
//!   side channel to make constant-time: what a lookup's timing could reveal is
//!   about the SHA-256 of the guess, which says nothing about any real token.
//! - Unknown, malformed and revoked tokens are all refused the same way (fail
//!   closed); a revoked identity is also absent from [`bindings`], so it is
//!   denied even when handed in as an already-authenticated [`Identity`].
//! - Bootstrap: while the store has no identity at all (revoked ones count), the
//!   first [`create_identity`] without an actor creates the identity *and* binds
//!   it `platform-admin` organisation-wide, in one store transaction (two racing
//!   bootstraps cannot both win). After that, managing identities and roles needs
//!   [`Action::ManageIdentities`].
//! - The actor of a CLI command comes from the environment variable
//!   [`TOKEN_ENV`] (`CAIRN_TOKEN`), see [`actor_from_env`].
//! - The last active organisation-wide platform-admin cannot be revoked (nor its
//!   binding removed): nobody could manage identities afterwards.
//! - Every change of identities and roles (an identity added — the bootstrap
//!   too —, an identity revoked, a role granted or revoked) is recorded in the
//!   data directory's audit log as an `access-change` entry ([`AccessChange`])
//!   *before* the store changes: first the actor is authorised and the change
//!   checked (a refused change or a no-op is never logged), then the entry is
//!   made durable, then the store is written. When the entry cannot be recorded
//!   nothing changes. The audit log is held open (its append lock) from the
//!   checks to the write, so access changes of cairn processes sharing a data
//!   directory take turns, and what was checked still holds when the store is
//!   written. The entry names the identity, the role and scope, and the actor:
//!   never a token or its hash.

use std::collections::BTreeSet;

use base64::Engine as _;
use cairn_model::{IdentityKind, IdentityRecord, RoleBinding};
use cairn_policy::{Action, Binding, BindingScope, Bindings, Identity, OverrideGrant, Role, Scope};
use cairn_store::{Store, StoreError};

use crate::audit::{AccessAction, AccessChange, AuditLog, Change, LOCK_WAIT};
use crate::host::now_ms;
use crate::{DataDir, EngineError};

/// The environment variable a CLI command reads its actor's token from.
pub const TOKEN_ENV: &str = "CAIRN_TOKEN";

/// Every token starts with this, so a leaked one is easy to recognise (and scan for).
pub const TOKEN_PREFIX: &str = "cairn_";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// Anything longer is not a cairn token (and is not hashed).
const MAX_TOKEN_LEN: usize = 256;

/// The longest identity name.
pub const MAX_NAME_LEN: usize = 64;

/// The longest workload or environment name in a binding.
pub const MAX_SCOPE_LEN: usize = 128;

/// A bearer token: shown once to its owner, never logged. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The token itself, to show its owner exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A new identity and its token (the only time the token exists in clear).
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub record: IdentityRecord,
    pub token: Token,
    /// This was the first identity: it was also bound `platform-admin`
    /// organisation-wide.
    pub bootstrap: bool,
}

/// The hex SHA-256 of a token, as the store keeps it.
pub fn token_sha256(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.as_ref() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

fn new_token() -> Result<Token, EngineError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| EngineError::NoRandomness)?;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Ok(Token(format!("{TOKEN_PREFIX}{text}")))
}

/// The policy's view of an identity kind.
pub fn policy_kind(kind: IdentityKind) -> cairn_policy::IdentityKind {
    match kind {
        IdentityKind::User => cairn_policy::IdentityKind::User,
        IdentityKind::ServiceAccount => cairn_policy::IdentityKind::ServiceAccount,
    }
}

/// The authenticated identity of a stored record.
pub fn identity_of(record: &IdentityRecord) -> Identity {
    Identity {
        name: record.name.clone(),
        kind: policy_kind(record.kind),
    }
}

/// Checks an identity's name: 1 to [`MAX_NAME_LEN`] characters of `a-z`, `A-Z`,
/// `0-9`, `.`, `_`, `-` and `@`, starting with a letter or digit (so a user's
/// e-mail address fits, and no name looks like a flag or holds whitespace).
pub fn check_identity_name(name: &str) -> Result<(), EngineError> {
    let bad = |why| EngineError::BadName {
        what: "identity name",
        value: name.chars().take(MAX_NAME_LEN + 16).collect(),
        why,
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(bad("it must be 1 to 64 characters long"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(bad("it must start with a letter or a digit"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(bad("use only letters, digits, '.', '_', '-' and '@'"));
    }
    Ok(())
}

fn check_scope_name(what: &'static str, value: &str) -> Result<(), EngineError> {
    let bad = |why| EngineError::BadName {
        what,
        value: value.chars().take(MAX_SCOPE_LEN + 16).collect(),
        why,
    };
    if value.is_empty() || value.len() > MAX_SCOPE_LEN {
        return Err(bad("it must be 1 to 128 characters long"));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad("it must be printable ASCII without spaces"));
    }
    Ok(())
}

/// Creates an identity and its token.
///
/// Without an `actor` this is the bootstrap: allowed only while the store has no
/// identity at all, and the new identity is also bound `platform-admin`
/// organisation-wide ([`NewIdentity::bootstrap`]); otherwise
/// [`EngineError::AlreadyBootstrapped`]. With an `actor`, the actor needs
/// [`Action::ManageIdentities`] and the identity gets no binding. The
/// `identity-add` entry is recorded in `data`'s audit log before the identity
/// is written (see the module's documentation).
pub fn create_identity(
    store: &dyn Store,
    data: &DataDir,
    actor: Option<&Identity>,
    name: &str,
    kind: IdentityKind,
    now_ms: i64,
) -> Result<NewIdentity, EngineError> {
    create_expiring_identity(store, data, actor, name, kind, now_ms, None)
}

/// [`create_identity`] whose token stops working at `expires_at_ms` (`None`:
/// until revoked).
pub fn create_expiring_identity(
    store: &dyn Store,
    data: &DataDir,
    actor: Option<&Identity>,
    name: &str,
    kind: IdentityKind,
    now_ms: i64,
    expires_at_ms: Option<i64>,
) -> Result<NewIdentity, EngineError> {
    check_identity_name(name)?;
    if let Some(actor) = actor {
        authorize(
            store,
            actor,
            Action::ManageIdentities,
            &Scope::organisation(),
        )?;
    }
    // Held from the checks to the write: access changes take turns.
    let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
    match actor {
        None if !store.identities()?.is_empty() => return Err(EngineError::AlreadyBootstrapped),
        // Never a new first admin over a log that already has identities.
        None => crate::pairing::refuse_bootstrap_over_log(data)?,
        _ if store.identity(name)?.is_some() => {
            return Err(EngineError::IdentityExists {
                name: name.to_owned(),
            });
        }
        _ => {}
    }
    let token = new_token()?;
    audit.record(&Change::Access(AccessChange {
        action: AccessAction::IdentityAdd,
        forge_login: None,
        signing_key: None,
        identity: name.to_owned(),
        kind: Some(kind.as_str().to_owned()),
        role: actor
            .is_none()
            .then(|| Role::PlatformAdmin.as_str().to_owned()),
        workload: None,
        environment: None,
        actor: actor.map(|a| a.name.clone()),
    }))?;
    let record = IdentityRecord {
        name: name.to_owned(),
        kind,
        token_sha256: token_sha256(token.expose()),
        created_at_ms: now_ms,
        revoked_at_ms: None,
        expires_at_ms,
    };
    let exists = |e: StoreError| match e {
        StoreError::Exists { .. } => EngineError::IdentityExists {
            name: name.to_owned(),
        },
        other => other.into(),
    };
    match actor {
        None => {
            let binding = RoleBinding {
                identity: name.to_owned(),
                role: Role::PlatformAdmin.as_str().to_owned(),
                workload: None,
                environment: None,
            };
            if !store
                .add_first_identity(&record, &binding)
                .map_err(exists)?
            {
                return Err(EngineError::AlreadyBootstrapped);
            }
            Ok(NewIdentity {
                record,
                token,
                bootstrap: true,
            })
        }
        Some(_) => {
            store.add_identity(&record).map_err(exists)?;
            Ok(NewIdentity {
                record,
                token,
                bootstrap: false,
            })
        }
    }
}

/// The active identity holding `token`; unknown, malformed and revoked tokens
/// are all [`EngineError::BadToken`].
pub fn authenticate(store: &dyn Store, token: &str) -> Result<Identity, EngineError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN || !token.starts_with(TOKEN_PREFIX) {
        return Err(EngineError::BadToken);
    }
    match store.identity_by_token(&token_sha256(token))? {
        Some(record) if is_active(&record, now_ms()) => Ok(identity_of(&record)),
        _ => Err(EngineError::BadToken),
    }
}

/// Neither revoked nor expired at `now_ms`.
pub fn is_active(record: &IdentityRecord, now_ms: i64) -> bool {
    record.revoked_at_ms.is_none() && record.expires_at_ms.is_none_or(|at| now_ms < at)
}

/// That the identity a change is about (a forge link, a signing key) exists and
/// is active: unknown and revoked (or expired) are named as such.
fn require_active(store: &dyn Store, identity: &str) -> Result<(), EngineError> {
    match store.identity(identity)? {
        None => Err(EngineError::UnknownIdentity {
            name: identity.to_owned(),
        }),
        Some(r) if !is_active(&r, now_ms()) => Err(EngineError::IdentityRevoked {
            name: identity.to_owned(),
        }),
        Some(_) => Ok(()),
    }
}

/// The active identity called `name` (a browser session's owner, checked again
/// on every request); revoked, expired and unknown are all
/// [`EngineError::BadToken`].
pub fn active_identity(store: &dyn Store, name: &str) -> Result<Identity, EngineError> {
    match store.identity(name)? {
        Some(record) if is_active(&record, now_ms()) => Ok(identity_of(&record)),
        _ => Err(EngineError::BadToken),
    }
}

/// The actor named by a token, or [`EngineError::NoToken`] when there is none
/// (an empty token counts as none).
pub fn actor_from_token(store: &dyn Store, token: Option<&str>) -> Result<Identity, EngineError> {
    match token.map(str::trim) {
        None | Some("") => Err(EngineError::NoToken),
        Some(token) => authenticate(store, token),
    }
}

/// The actor of a CLI command: the identity whose token is in `CAIRN_TOKEN`.
/// Unset → [`EngineError::NoToken`] ("set CAIRN_TOKEN to your identity's token
/// (cairn identity add prints it once)"); a value that is not UTF-8 is
/// [`EngineError::BadToken`].
pub fn actor_from_env(store: &dyn Store) -> Result<Identity, EngineError> {
    match std::env::var_os(TOKEN_ENV) {
        None => Err(EngineError::NoToken),
        Some(value) => match value.to_str() {
            Some(text) => actor_from_token(store, Some(text)),
            None => Err(EngineError::BadToken),
        },
    }
}

/// The binding of a store row, as cairn-policy reads it.
pub fn policy_binding(row: &RoleBinding) -> Result<Binding, EngineError> {
    let role = Role::parse(&row.role).ok_or_else(|| {
        EngineError::Store(StoreError::Corrupt {
            what: "role name",
            value: row.role.clone(),
        })
    })?;
    let scope = match (&row.workload, &row.environment) {
        (None, None) => BindingScope::Organisation,
        (Some(workload), None) => BindingScope::Workload {
            workload: workload.clone(),
        },
        (Some(workload), Some(environment)) => BindingScope::Environment {
            workload: workload.clone(),
            environment: environment.clone(),
        },
        (None, Some(environment)) => {
            return Err(EngineError::Store(StoreError::Corrupt {
                what: "role binding scope",
                value: format!("environment {environment} without a workload"),
            }));
        }
    };
    Ok(Binding {
        identity: row.identity.clone(),
        role,
        scope,
    })
}

/// The active identities and their bindings, as cairn-policy's [`Bindings`].
/// Revoked identities and their bindings are left out, so they are denied
/// everything. A row the policy cannot read (an unknown role) is an error, not
/// skipped.
pub fn bindings(store: &dyn Store) -> Result<Bindings, EngineError> {
    let mut out = Bindings::default();
    let now = now_ms();
    for record in store.identities()? {
        if is_active(&record, now) {
            out.identities
                .insert(record.name.clone(), policy_kind(record.kind));
        }
    }
    for row in store.bindings()? {
        if out.identities.contains_key(&row.identity) {
            out.bindings.push(policy_binding(&row)?);
        }
    }
    Ok(out)
}

/// The policy's reason, and which roles would grant the action (so the user
/// knows what to ask for).
fn denied(action: Action, denied: cairn_policy::Denied) -> EngineError {
    let grantors: Vec<&str> = Role::ALL
        .into_iter()
        .filter(|r| r.grants(action))
        .map(Role::as_str)
        .collect();
    EngineError::Denied {
        action: action.as_str(),
        reason: format!(
            "{} ({} is granted by: {})",
            denied.reason,
            action.as_str(),
            grantors.join(", ")
        ),
    }
}

/// May `actor` do `action` at `scope`? [`cairn_policy::authorize`] over the
/// store's bindings; [`EngineError::Denied`] carries the policy's reason.
pub fn authorize(
    store: &dyn Store,
    actor: &Identity,
    action: Action,
    scope: &Scope,
) -> Result<(), EngineError> {
    let bindings = bindings(store)?;
    cairn_policy::authorize(&bindings, actor, action, scope).map_err(|d| denied(action, d))
}

/// Whether the organisation has identities (revoked ones count): from the
/// first `cairn identity add` on, every state change goes through the roles
/// model.
pub fn has_identities(store: &dyn Store) -> Result<bool, EngineError> {
    Ok(!store.identities()?.is_empty())
}

/// Who makes a state change from the CLI, authorised for `action` at `scope`
/// (`None`: only authenticated; the caller authorises once it knows the
/// scope). While the organisation has no identity at all (a fresh, one-person
/// install) there is nobody to authorise: `Ok(None)`, and the change is
/// recorded without an actor. Once it has one, `CAIRN_TOKEN` must name an
/// active identity ([`EngineError::NoToken`], [`EngineError::BadToken`]) whose
/// roles grant the action ([`EngineError::Denied`]).
pub fn cli_actor(
    store: &dyn Store,
    action: Action,
    scope: Option<&Scope>,
) -> Result<Option<Identity>, EngineError> {
    if !has_identities(store)? {
        return Ok(None);
    }
    let actor = actor_from_env(store)?;
    if let Some(scope) = scope {
        authorize(store, &actor, action, scope)?;
    }
    Ok(Some(actor))
}

/// A break-glass override by `actor` at `scope` with `reason`
/// ([`cairn_policy::authorize_override`]): always flagged.
pub fn authorize_override(
    store: &dyn Store,
    actor: &Identity,
    scope: &Scope,
    reason: &str,
) -> Result<OverrideGrant, EngineError> {
    let bindings = bindings(store)?;
    cairn_policy::authorize_override(&bindings, actor, scope, reason)
        .map_err(|d| denied(Action::Override, d))
}

/// Names of the active identities bound `platform-admin` organisation-wide.
fn active_admins(bindings: &Bindings) -> BTreeSet<&str> {
    bindings
        .bindings
        .iter()
        .filter(|b| b.role == Role::PlatformAdmin && b.scope == BindingScope::Organisation)
        .map(|b| b.identity.as_str())
        .collect()
}

/// Revokes identity `name` (its token stops working; it keeps its name and
/// history). Needs [`Action::ManageIdentities`]; refuses to revoke the last
/// active organisation-wide platform-admin. Returns `false` when it was already
/// revoked (and logs nothing); otherwise the `identity-revoke` entry is recorded
/// in `data`'s audit log before the identity is revoked.
pub fn revoke_identity(
    store: &dyn Store,
    data: &DataDir,
    actor: &Identity,
    name: &str,
    now_ms: i64,
) -> Result<bool, EngineError> {
    authorize(
        store,
        actor,
        Action::ManageIdentities,
        &Scope::organisation(),
    )?;
    let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
    let Some(record) = store.identity(name)? else {
        return Err(EngineError::UnknownIdentity {
            name: name.to_owned(),
        });
    };
    if record.revoked_at_ms.is_some() {
        return Ok(false);
    }
    let current = bindings(store)?;
    let admins = active_admins(&current);
    if admins.len() == 1 && admins.contains(name) {
        return Err(EngineError::LastAdmin);
    }
    audit.record(&Change::Access(AccessChange {
        action: AccessAction::IdentityRevoke,
        forge_login: None,
        signing_key: None,
        identity: name.to_owned(),
        kind: Some(record.kind.as_str().to_owned()),
        role: None,
        workload: None,
        environment: None,
        actor: Some(actor.name.clone()),
    }))?;
    Ok(store.revoke_identity(name, now_ms)?)
}

/// A binding from the command line's words: the role must be one cairn-policy
/// knows, an environment needs a workload, names are bounded.
pub fn role_binding(
    identity: &str,
    role: &str,
    workload: Option<&str>,
    environment: Option<&str>,
) -> Result<RoleBinding, EngineError> {
    check_identity_name(identity)?;
    let role = Role::parse(role).ok_or_else(|| EngineError::UnknownRole {
        name: role.chars().take(64).collect(),
    })?;
    if let Some(w) = workload {
        check_scope_name("workload name", w)?;
    }
    if let Some(e) = environment {
        check_scope_name("environment name", e)?;
        if workload.is_none() {
            return Err(EngineError::BadName {
                what: "role scope",
                value: format!("--env {e}"),
                why: "an environment binding also needs --workload",
            });
        }
    }
    Ok(RoleBinding {
        identity: identity.to_owned(),
        role: role.as_str().to_owned(),
        workload: workload.map(str::to_owned),
        environment: environment.map(str::to_owned),
    })
}

/// Binds a role (adding an existing binding is a no-op, and logs nothing).
/// Needs [`Action::ManageIdentities`]; the identity must exist and be active.
/// The `role-grant` entry is recorded in `data`'s audit log before the binding
/// is written.
pub fn grant_role(
    store: &dyn Store,
    data: &DataDir,
    actor: &Identity,
    binding: &RoleBinding,
) -> Result<(), EngineError> {
    authorize(
        store,
        actor,
        Action::ManageIdentities,
        &Scope::organisation(),
    )?;
    // Checks the role's name and the scope as role_binding does.
    policy_binding(binding).map_err(|_| EngineError::UnknownRole {
        name: binding.role.clone(),
    })?;
    let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
    match store.identity(&binding.identity)? {
        None => {
            return Err(EngineError::UnknownIdentity {
                name: binding.identity.clone(),
            });
        }
        Some(r) if r.revoked_at_ms.is_some() => {
            return Err(EngineError::IdentityRevoked {
                name: binding.identity.clone(),
            });
        }
        Some(_) => {}
    }
    if store.bindings()?.contains(binding) {
        return Ok(());
    }
    audit.record(&binding_change(AccessAction::RoleGrant, binding, actor))?;
    store.add_binding(binding).map_err(|e| match e {
        StoreError::NotFound { .. } => EngineError::UnknownIdentity {
            name: binding.identity.clone(),
        },
        StoreError::Invalid { .. } => EngineError::IdentityRevoked {
            name: binding.identity.clone(),
        },
        other => other.into(),
    })
}

/// Removes a binding; `false` when there was none. Needs
/// [`Action::ManageIdentities`]; refuses to remove the last active
/// organisation-wide platform-admin binding. The `role-revoke` entry is
/// recorded in `data`'s audit log before the binding is removed (nothing is
/// logged when there was none).
pub fn revoke_role(
    store: &dyn Store,
    data: &DataDir,
    actor: &Identity,
    binding: &RoleBinding,
) -> Result<bool, EngineError> {
    authorize(
        store,
        actor,
        Action::ManageIdentities,
        &Scope::organisation(),
    )?;
    let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
    if binding.role == Role::PlatformAdmin.as_str()
        && binding.workload.is_none()
        && binding.environment.is_none()
    {
        let current = bindings(store)?;
        let admins = active_admins(&current);
        if admins.len() == 1 && admins.contains(binding.identity.as_str()) {
            return Err(EngineError::LastAdmin);
        }
    }
    if !store.bindings()?.contains(binding) {
        return Ok(false);
    }
    audit.record(&binding_change(AccessAction::RoleRevoke, binding, actor))?;
    Ok(store.remove_binding(binding)?)
}

/// The actor a change made because of `[[sso.map]]` in org.toml is logged
/// under (not an identity name: brackets are not allowed in one).
pub const SSO_MAP_ACTOR: &str = "[[sso.map]]";

/// The active identity a single sign-on names, made as org.toml declares it
/// (`[[sso.map]]` with `roles`): created when missing (a user or a service
/// account, with a token nobody is given: it signs in through the provider
/// only), and its bindings granted and revoked until they are exactly
/// `declared`, each change an audit log entry by [`SSO_MAP_ACTOR`] before it
/// is made. A revoked or expired identity stays so ([`EngineError::BadToken`]);
/// an organisation with no identity yet is not bootstrapped this way
/// ([`EngineError::SsoBeforeBootstrap`]), a stored identity of another kind
/// is not changed ([`EngineError::SsoKindDiffers`]); the last
/// organisation-wide platform-admin is not demoted ([`EngineError::LastAdmin`]).
/// When nothing differs nothing is locked or logged.
pub fn declared_identity(
    store: &dyn Store,
    data: &DataDir,
    name: &str,
    declared: &cairn_model::config::DeclaredRoles,
) -> Result<Identity, EngineError> {
    let kind = if declared.service_account {
        IdentityKind::ServiceAccount
    } else {
        IdentityKind::User
    };
    let declared = declared
        .roles
        .iter()
        .map(|r| {
            role_binding(
                name,
                &r.role,
                r.workload.as_deref(),
                r.environment.as_deref(),
            )
        })
        .collect::<Result<Vec<RoleBinding>, EngineError>>()?;
    let same = |have: &[&RoleBinding]| {
        have.len() == declared.len() && declared.iter().all(|d| have.contains(&d))
    };
    let settled = |store: &dyn Store| -> Result<Option<Identity>, EngineError> {
        let Some(record) = store.identity(name)? else {
            return Ok(None);
        };
        if !is_active(&record, now_ms()) {
            return Err(EngineError::BadToken);
        }
        if record.kind != kind {
            return Err(EngineError::SsoKindDiffers {
                name: name.to_owned(),
                stored: record.kind.as_str(),
                declared: kind.as_str(),
            });
        }
        let all = store.bindings()?;
        let have: Vec<&RoleBinding> = all.iter().filter(|b| b.identity == name).collect();
        Ok(same(&have).then(|| identity_of(&record)))
    };
    if let Some(identity) = settled(store)? {
        return Ok(identity);
    }
    // Held from the checks to the last write: access changes take turns.
    let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
    if let Some(identity) = settled(store)? {
        return Ok(identity);
    }
    if store.identities()?.is_empty() {
        return Err(EngineError::SsoBeforeBootstrap {
            name: name.to_owned(),
        });
    }
    let change = |action, b: Option<&RoleBinding>, kind: Option<IdentityKind>| {
        Change::Access(AccessChange {
            action,
            forge_login: None,
            signing_key: None,
            identity: name.to_owned(),
            kind: kind.map(|k| k.as_str().to_owned()),
            role: b.map(|b| b.role.clone()),
            workload: b.and_then(|b| b.workload.clone()),
            environment: b.and_then(|b| b.environment.clone()),
            actor: Some(SSO_MAP_ACTOR.to_owned()),
        })
    };
    let record = match store.identity(name)? {
        Some(record) => record,
        None => {
            audit.record(&change(AccessAction::IdentityAdd, None, Some(kind)))?;
            // A token nobody holds: only its hash is kept, and it is dropped here.
            let token = new_token()?;
            let record = IdentityRecord {
                name: name.to_owned(),
                kind,
                token_sha256: token_sha256(token.expose()),
                created_at_ms: now_ms(),
                revoked_at_ms: None,
                expires_at_ms: None,
            };
            store.add_identity(&record)?;
            record
        }
    };
    let have: Vec<RoleBinding> = store
        .bindings()?
        .into_iter()
        .filter(|b| b.identity == name)
        .collect();
    let revoke: Vec<&RoleBinding> = have.iter().filter(|b| !declared.contains(b)).collect();
    if revoke
        .iter()
        .any(|b| b.role == Role::PlatformAdmin.as_str() && b.workload.is_none())
        && active_admins(&bindings(store)?).into_iter().eq([name])
    {
        return Err(EngineError::LastAdmin);
    }
    for b in declared.iter().filter(|b| !have.contains(b)) {
        audit.record(&change(AccessAction::RoleGrant, Some(b), None))?;
        store.add_binding(b)?;
    }
    for b in revoke {
        audit.record(&change(AccessAction::RoleRevoke, Some(b), None))?;
        store.remove_binding(b)?;
    }
    Ok(identity_of(&record))
}

/// The forges whose logins can be linked.
pub const FORGES: [&str; 3] = ["github", "gitlab", "gitea"];

/// Links `login` on `forge` to identity `identity`, so the forge's pull-request
/// approvals by that login become signed reviews by the identity. Needs
/// [`Action::ManageIdentities`]; recorded in the audit log (`forge-link`)
/// before it is made; replaces an earlier link of the same login.
pub fn link_forge_account(
    store: &dyn Store,
    data: &DataDir,
    actor: &Identity,
    forge: &str,
    login: &str,
    identity: &str,
) -> Result<(), EngineError> {
    authorize(
        store,
        actor,
        Action::ManageIdentities,
        &Scope::organisation(),
    )?;
    if !FORGES.contains(&forge) {
        return Err(EngineError::BadName {
            what: "forge",
            value: forge.to_owned(),
            why: "use github, gitlab or gitea",
        });
    }
    if login.is_empty()
        || login.len() > 255
        || !login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(EngineError::BadName {
            what: "forge login",
            value: login.to_owned(),
            why: "a login is letters, digits, '-', '_' and '.'",
        });
    }
    let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
    require_active(store, identity)?;
    audit.record(&Change::Access(AccessChange {
        action: AccessAction::ForgeLink,
        forge_login: Some(format!("{forge}:{login}")),
        signing_key: None,
        identity: identity.to_owned(),
        kind: None,
        role: None,
        workload: None,
        environment: None,
        actor: Some(actor.name.clone()),
    }))?;
    Ok(store.link_forge_account(forge, login, identity, now_ms())?)
}

/// The audit entry of a role granted or revoked by `actor`.
fn binding_change(action: AccessAction, binding: &RoleBinding, actor: &Identity) -> Change {
    Change::Access(AccessChange {
        action,
        forge_login: None,
        signing_key: None,
        identity: binding.identity.clone(),
        kind: None,
        role: Some(binding.role.clone()),
        workload: binding.workload.clone(),
        environment: binding.environment.clone(),
        actor: Some(actor.name.clone()),
    })
}

/// Every identity (revoked ones too) for `cairn identity list`; needs
/// [`Action::View`] at the organisation. The records carry only token hashes.
pub fn list_identities(
    store: &dyn Store,
    actor: &Identity,
) -> Result<Vec<IdentityRecord>, EngineError> {
    authorize(store, actor, Action::View, &Scope::organisation())?;
    Ok(store.identities()?)
}

/// Every binding for `cairn role list`; needs [`Action::View`] at the
/// organisation.
pub fn list_bindings(store: &dyn Store, actor: &Identity) -> Result<Vec<RoleBinding>, EngineError> {
    authorize(store, actor, Action::View, &Scope::organisation())?;
    Ok(store.bindings()?)
}

/// Where registered SSH commit-signing keys are kept: one JSON document in the
/// data directory (0600), written only after its audit entry is durable.
pub const SIGNING_KEYS_FILE: &str = "signing-keys.json";
/// The allowed-signers file cairn writes for `git verify-commit` (0600).
pub const ALLOWED_SIGNERS_FILE: &str = "allowed_signers";
/// The SSH public key types a commit-signing key may have.
const SSH_KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
];
/// The most keys one identity may register.
const MAX_KEYS_PER_IDENTITY: usize = 16;

/// A registered commit-signing key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SigningKeyRecord {
    pub identity: String,
    /// `<type> <base64>` (the comment is dropped).
    pub key: String,
    /// `SHA256:<base64>` as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub added_at_ms: i64,
}

/// Checks an SSH public key line (`<type> <base64> [comment]`): a known type,
/// base64 whose blob names the same type, at most 16 KiB. Returns the key
/// without its comment and its `SHA256:` fingerprint.
pub fn parse_ssh_public_key(line: &str) -> Result<(String, String), EngineError> {
    let bad = |why| EngineError::BadName {
        what: "SSH public key",
        value: line.chars().take(48).collect(),
        why,
    };
    if line.len() > 16 * 1024 || line.contains(['\n', '\r', '\0']) {
        return Err(bad("it must be one line of at most 16 KiB"));
    }
    let mut words = line.split_whitespace();
    let (Some(kind), Some(b64)) = (words.next(), words.next()) else {
        return Err(bad(
            "it must be `<type> <base64> [comment]`, as in a .pub file",
        ));
    };
    if !SSH_KEY_TYPES.contains(&kind) {
        return Err(bad(
            "its type is not an SSH signing key type (ssh-ed25519, ecdsa-sha2-nistp256, …)",
        ));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad("its key is not base64"))?;
    let named = blob
        .get(..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
        .and_then(|n| blob.get(4..4 + n));
    if named != Some(kind.as_bytes()) {
        return Err(bad("its key blob does not name its type"));
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &blob);
    let fingerprint = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_ref())
    );
    Ok((format!("{kind} {b64}"), fingerprint))
}

/// Every registered commit-signing key (none when the file does not exist).
pub fn signing_keys(data: &DataDir) -> Result<Vec<SigningKeyRecord>, EngineError> {
    let path = data.root().join(SIGNING_KEYS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| {
            EngineError::Store(StoreError::Corrupt {
                what: "signing-keys.json",
                value: path.display().to_string(),
            })
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(EngineError::io("read", &path)(e)),
    }
}

/// Registers an SSH commit-signing key for `identity`: a commit whose
/// signature verifies with it is bound to that identity (it signed it, so it
/// may not approve it). Needs [`Action::ManageIdentities`]; the identity must
/// be active; recorded in the audit log (`signing-key-add`, with the key's
/// fingerprint) before it is kept. Registering a key again is a no-op; a key
/// registered to another identity is refused. Returns the fingerprint.
pub fn add_signing_key(
    store: &dyn Store,
    data: &DataDir,
    actor: &Identity,
    identity: &str,
    key_line: &str,
) -> Result<String, EngineError> {
    authorize(
        store,
        actor,
        Action::ManageIdentities,
        &Scope::organisation(),
    )?;
    let (key, fingerprint) = parse_ssh_public_key(key_line)?;
    let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
    require_active(store, identity)?;
    let mut keys = signing_keys(data)?;
    if let Some(k) = keys.iter().find(|k| k.fingerprint == fingerprint) {
        if k.identity == identity {
            return Ok(fingerprint);
        }
        return Err(EngineError::BadName {
            what: "SSH public key",
            value: fingerprint,
            why: "it is registered to another identity",
        });
    }
    if keys.iter().filter(|k| k.identity == identity).count() >= MAX_KEYS_PER_IDENTITY {
        return Err(EngineError::BadName {
            what: "SSH public key",
            value: fingerprint,
            why: "the identity has 16 keys already",
        });
    }
    audit.record(&Change::Access(AccessChange {
        action: AccessAction::SigningKeyAdd,
        forge_login: None,
        signing_key: Some(fingerprint.clone()),
        identity: identity.to_owned(),
        kind: None,
        role: None,
        workload: None,
        environment: None,
        actor: Some(actor.name.clone()),
    }))?;
    keys.push(SigningKeyRecord {
        identity: identity.to_owned(),
        key,
        fingerprint: fingerprint.clone(),
        added_at_ms: now_ms(),
    });
    let json = serde_json::to_vec_pretty(&keys).map_err(|_| {
        EngineError::Store(StoreError::Corrupt {
            what: "signing keys",
            value: "not serialisable".to_owned(),
        })
    })?;
    crate::keys::write_atomically(&data.root().join(SIGNING_KEYS_FILE), &json, 0o600)?;
    Ok(fingerprint)
}

/// Writes the allowed-signers file for `git verify-commit` from the keys of
/// the *active* identities (a revoked identity's keys bind nothing) to
/// `<data>/allowed_signers.<for_what>` and returns its path (the caller
/// removes it); `None` when no key is registered.
pub fn write_allowed_signers(
    store: &dyn Store,
    data: &DataDir,
    for_what: &str,
) -> Result<Option<std::path::PathBuf>, EngineError> {
    let keys = signing_keys(data)?;
    let now = now_ms();
    let mut lines = String::new();
    for k in &keys {
        if store
            .identity(&k.identity)?
            .is_some_and(|r| is_active(&r, now))
        {
            // `<principal> namespaces="git" <type> <base64>`
            lines.push_str(&format!("{} namespaces=\"git\" {}\n", k.identity, k.key));
        }
    }
    if lines.is_empty() {
        return Ok(None);
    }
    let path = data
        .root()
        .join(format!("{ALLOWED_SIGNERS_FILE}.{for_what}"));
    crate::keys::write_atomically(&path, lines.as_bytes(), 0o600)?;
    Ok(Some(path))
}
