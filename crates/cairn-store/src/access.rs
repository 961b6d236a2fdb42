//! Who may act: identities (a token's hash), role bindings, browser sessions and
//! forge logins mapped to identities.

use cairn_model::{IdentityRecord, RoleBinding, SessionRecord};

use crate::StoreError;

/// Identities, role bindings, sessions and forge accounts.
///
/// Every method is one transaction (see [`Store`](crate::Store)).
pub trait AccessStore {
    /// Adds an identity. [`StoreError::Exists`] when its name (or its token's
    /// hash) is taken; [`StoreError::Invalid`] for an empty name or a hash that is
    /// not 64 lowercase hex digits.
    fn add_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError>;

    /// Adds the first identity and its binding in one transaction, only while the
    /// store has no identity at all (revoked ones count): returns `false`, having
    /// written nothing, when one exists. This is the bootstrap: two processes
    /// racing for it cannot both win.
    fn add_first_identity(
        &self,
        identity: &IdentityRecord,
        binding: &RoleBinding,
    ) -> Result<bool, StoreError>;

    /// The identity named `name`, revoked or not.
    fn identity(&self, name: &str) -> Result<Option<IdentityRecord>, StoreError>;

    /// The identity whose token hashes to `token_sha256`, unless it is revoked.
    fn identity_by_token(&self, token_sha256: &str) -> Result<Option<IdentityRecord>, StoreError>;

    /// Every identity, revoked ones included, by name.
    fn identities(&self) -> Result<Vec<IdentityRecord>, StoreError>;

    /// Revokes an identity: its token stops authenticating. Returns `false` when
    /// there is no such identity or it was already revoked (nothing changes).
    fn revoke_identity(&self, name: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// How many identities exist, revoked ones included.
    fn identity_count(&self) -> Result<u64, StoreError>;

    /// Binds a role ([`StoreError::NotFound`] for an unknown identity,
    /// [`StoreError::Invalid`] for a revoked one, an empty name, or an environment
    /// without a workload). Adding a binding that exists is a no-op. The role's
    /// name is not checked here: the caller knows the roles.
    fn add_binding(&self, binding: &RoleBinding) -> Result<(), StoreError>;

    /// Removes a binding; `false` when there was none.
    fn remove_binding(&self, binding: &RoleBinding) -> Result<bool, StoreError>;

    /// Every binding (of revoked identities too), by identity, role, workload,
    /// environment (organisation-wide first).
    fn bindings(&self) -> Result<Vec<RoleBinding>, StoreError>;

    /// Keeps a browser session. [`StoreError::NotFound`] for an unknown identity,
    /// [`StoreError::Exists`] for a token hash already kept,
    /// [`StoreError::Invalid`] for a hash that is not 64 lowercase hex digits.
    fn add_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// The session whose token hashes to `token_sha256`, expired or not (the
    /// caller checks the expiry).
    fn session(&self, token_sha256: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Removes a session; `false` when there was none.
    fn remove_session(&self, token_sha256: &str) -> Result<bool, StoreError>;

    /// Removes the sessions that expired at or before `now_ms`; returns how many.
    fn prune_sessions(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Maps `login` on `forge` to `identity` (replacing its mapping, if any).
    /// [`StoreError::NotFound`] for an unknown identity.
    fn link_forge_account(
        &self,
        forge: &str,
        login: &str,
        identity: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// The identity `login` on `forge` is mapped to.
    fn forge_account(&self, forge: &str, login: &str) -> Result<Option<String>, StoreError>;
}
