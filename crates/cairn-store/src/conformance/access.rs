//! Cases of [`AccessStore`](crate::AccessStore): identities, bindings, sessions, forge accounts.

use super::*;

fn binding(
    identity: &str,
    role: &str,
    workload: Option<&str>,
    environment: Option<&str>,
) -> cairn_model::RoleBinding {
    cairn_model::RoleBinding {
        identity: identity.to_owned(),
        role: role.to_owned(),
        workload: workload.map(str::to_owned),
        environment: environment.map(str::to_owned),
    }
}

fn session(byte: char, identity: &str, expires_at_ms: i64) -> SessionRecord {
    SessionRecord {
        token_sha256: byte.to_string().repeat(64),
        identity: identity.to_owned(),
        csrf: format!("csrf-{byte}"),
        created_at_ms: 10,
        expires_at_ms,
    }
}

pub fn identities_are_unique_and_found_by_token_hash(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::{ServiceAccount, User};
    assert_eq!(store.identity_count()?, 0);
    assert!(store.identities()?.is_empty());
    let alice = identity("alice", 'a', User);
    let ci = identity("ci-bot", 'c', ServiceAccount);
    store.add_identity(&alice)?;
    store.add_identity(&ci)?;
    assert_eq!(store.identity_count()?, 2);
    assert_eq!(store.identity("alice")?, Some(alice.clone()));
    assert_eq!(store.identity("bob")?, None);
    assert_eq!(store.identity_by_token(&"c".repeat(64))?, Some(ci.clone()));
    assert_eq!(store.identity_by_token(&"d".repeat(64))?, None);
    assert_eq!(
        store.identities()?,
        vec![alice.clone(), ci.clone()],
        "by name"
    );
    // A taken name, or a taken token hash, is refused and changes nothing.
    let again = identity("alice", 'e', ServiceAccount);
    match store.add_identity(&again) {
        Err(StoreError::Exists { what, id }) => {
            assert_eq!((what, id.as_str()), ("identity", "alice"));
        }
        other => panic!("a duplicate name must be refused: {other:?}"),
    }
    assert!(matches!(
        store.add_identity(&identity("mallory", 'a', User)),
        Err(StoreError::Exists { .. })
    ));
    assert_eq!(store.identity("alice")?, Some(alice));
    assert_eq!(store.identity("mallory")?, None);
    // Malformed records are refused.
    assert!(matches!(
        store.add_identity(&identity("", 'f', User)),
        Err(StoreError::Invalid { .. })
    ));
    let mut not_hex = identity("bob", 'f', User);
    not_hex.token_sha256 = "F".repeat(64);
    assert!(matches!(
        store.add_identity(&not_hex),
        Err(StoreError::Invalid { .. })
    ));
    not_hex.token_sha256 = "f".repeat(63);
    assert!(matches!(
        store.add_identity(&not_hex),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.add_identity(&identity(&"n".repeat(5000), 'f', User)),
        Err(StoreError::TooLarge { .. })
    ));
    assert_eq!(store.identity_count()?, 2);
    Ok(())
}

pub fn revoked_identities_are_kept_but_not_found_by_token(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let alice = identity("alice", 'a', cairn_model::IdentityKind::User);
    store.add_identity(&alice)?;
    assert!(!store.revoke_identity("nobody", 50)?);
    assert!(store.revoke_identity("alice", 50)?);
    assert!(!store.revoke_identity("alice", 60)?, "already revoked");
    assert_eq!(store.identity_by_token(&"a".repeat(64))?, None);
    let kept = store
        .identity("alice")?
        .expect("a revoked identity is kept");
    assert_eq!(kept.revoked_at_ms, Some(50), "the first revocation's time");
    assert_eq!(store.identities()?, vec![kept]);
    assert_eq!(store.identity_count()?, 1, "revoked identities count");
    // Its name stays taken.
    assert!(matches!(
        store.add_identity(&identity("alice", 'b', cairn_model::IdentityKind::User)),
        Err(StoreError::Exists { .. })
    ));
    Ok(())
}

pub fn the_first_identity_is_added_only_once(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::User;
    let admin = identity("admin", 'a', User);
    let admin_binding = binding("admin", "platform-admin", None, None);
    // A binding for another identity is refused, and nothing is written.
    assert!(matches!(
        store.add_first_identity(&admin, &binding("other", "platform-admin", None, None)),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(store.identity_count()?, 0);
    assert!(store.add_first_identity(&admin, &admin_binding)?);
    assert_eq!(store.identity("admin")?, Some(admin));
    assert_eq!(store.bindings()?, vec![admin_binding.clone()]);
    // Once any identity exists (even revoked), there is no second bootstrap.
    let second = identity("eve", 'e', User);
    assert!(!store.add_first_identity(&second, &binding("eve", "platform-admin", None, None))?);
    assert_eq!(store.identity("eve")?, None);
    assert!(store.revoke_identity("admin", 20)?);
    assert!(!store.add_first_identity(&second, &binding("eve", "platform-admin", None, None))?);
    assert_eq!(store.identity("eve")?, None);
    assert_eq!(store.bindings()?, vec![admin_binding]);
    Ok(())
}

pub fn bindings_are_a_set_of_known_identities(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::User;
    store.add_identity(&identity("bob", 'b', User))?;
    store.add_identity(&identity("alice", 'a', User))?;
    let org = binding("bob", "viewer", None, None);
    let workload = binding("bob", "developer", Some("app"), None);
    let env = binding("bob", "release-manager", Some("app"), Some("production"));
    let alice = binding("alice", "maintainer", Some("app"), None);
    for b in [&env, &workload, &org, &alice] {
        store.add_binding(b)?;
    }
    // Duplicates are a no-op, also for organisation-wide bindings (NULL scopes).
    store.add_binding(&org)?;
    store.add_binding(&env)?;
    assert_eq!(
        store.bindings()?,
        vec![alice.clone(), workload.clone(), env.clone(), org.clone()],
        "by identity, role, workload, environment"
    );
    // An unknown identity, an environment without a workload, an empty name: refused.
    assert!(matches!(
        store.add_binding(&binding("carol", "viewer", None, None)),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.add_binding(&binding("bob", "viewer", None, Some("production"))),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.add_binding(&binding("bob", "", None, None)),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.add_binding(&binding("bob", "viewer", Some(""), None)),
        Err(StoreError::Invalid { .. })
    ));
    // Removal matches the scope exactly.
    assert!(!store.remove_binding(&binding("bob", "viewer", Some("app"), None))?);
    assert!(store.remove_binding(&org)?);
    assert!(!store.remove_binding(&org)?);
    assert!(store.remove_binding(&env)?);
    assert_eq!(store.bindings()?, vec![alice, workload.clone()]);
    // A revoked identity gets no new binding; its old ones are kept (the caller
    // ignores them, as the identity no longer authenticates).
    assert!(store.revoke_identity("bob", 30)?);
    assert!(matches!(
        store.add_binding(&org),
        Err(StoreError::Invalid { .. })
    ));
    assert!(store.bindings()?.contains(&workload));
    Ok(())
}

pub fn sessions_are_kept_until_removed_or_expired(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::User;
    store.add_identity(&identity("alice", 'a', User))?;
    let s1 = session('1', "alice", 100);
    let s2 = session('2', "alice", 200);
    let s3 = session('3', "alice", 300);
    for s in [&s1, &s2, &s3] {
        store.add_session(s)?;
    }
    assert_eq!(store.session(&s1.token_sha256)?, Some(s1.clone()));
    assert_eq!(store.session(&"9".repeat(64))?, None);
    // Refused: a kept token, an unknown identity, a malformed hash.
    assert!(matches!(
        store.add_session(&s1),
        Err(StoreError::Exists { .. })
    ));
    assert_not_found(store.add_session(&session('4', "bob", 100)), "identity");
    let mut upper = session('4', "alice", 100);
    upper.token_sha256 = "A".repeat(64);
    assert!(matches!(
        store.add_session(&upper),
        Err(StoreError::Invalid { .. })
    ));
    // Removal.
    assert!(store.remove_session(&s2.token_sha256)?);
    assert!(!store.remove_session(&s2.token_sha256)?);
    assert_eq!(store.session(&s2.token_sha256)?, None);
    // An expired session is returned (the caller checks) until pruned.
    assert_eq!(store.session(&s1.token_sha256)?, Some(s1.clone()));
    assert_eq!(store.prune_sessions(99)?, 0);
    assert_eq!(store.prune_sessions(100)?, 1, "expired at 100");
    assert_eq!(store.session(&s1.token_sha256)?, None);
    assert_eq!(store.session(&s3.token_sha256)?, Some(s3.clone()));
    assert_eq!(store.prune_sessions(150)?, 0);
    assert_eq!(store.prune_sessions(1_000)?, 1);
    assert_eq!(store.session(&s3.token_sha256)?, None);
    Ok(())
}

pub fn identity_expiry_round_trips(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::{ServiceAccount, User};
    // The bootstrap keeps it, and so does `add_identity`.
    let admin = cairn_model::IdentityRecord {
        expires_at_ms: Some(5_000),
        ..identity("admin", 'd', User)
    };
    assert!(store.add_first_identity(&admin, &binding("admin", "platform-admin", None, None))?);
    let ci = cairn_model::IdentityRecord {
        expires_at_ms: Some(86_400_000),
        ..identity("ci-bot", 'c', ServiceAccount)
    };
    let alice = identity("alice", 'a', User);
    store.add_identity(&ci)?;
    store.add_identity(&alice)?;
    assert_eq!(store.identity("admin")?, Some(admin.clone()));
    assert_eq!(store.identity("ci-bot")?, Some(ci.clone()));
    // An expired identity is still found by its token: the caller checks.
    assert_eq!(
        store.identity_by_token(&"d".repeat(64))?,
        Some(admin.clone())
    );
    assert_eq!(store.identity("alice")?.and_then(|i| i.expires_at_ms), None);
    assert_eq!(store.identities()?, vec![admin, alice, ci]);
    Ok(())
}

pub fn forge_accounts_map_logins_to_identities(store: &dyn Store) -> Result<(), StoreError> {
    use cairn_model::IdentityKind::User;
    store.add_identity(&identity("alice", 'a', User))?;
    store.add_identity(&identity("bob", 'b', User))?;
    assert_eq!(store.forge_account("github", "octocat")?, None);
    store.link_forge_account("github", "octocat", "alice", 10)?;
    store.link_forge_account("gitlab", "octocat", "bob", 11)?;
    assert_eq!(
        store.forge_account("github", "octocat")?.as_deref(),
        Some("alice")
    );
    assert_eq!(
        store.forge_account("gitlab", "octocat")?.as_deref(),
        Some("bob")
    );
    assert_eq!(store.forge_account("gitea", "octocat")?, None);
    assert_eq!(store.forge_account("github", "Octocat")?, None, "exact");
    // Linking again replaces the mapping.
    store.link_forge_account("github", "octocat", "bob", 12)?;
    assert_eq!(
        store.forge_account("github", "octocat")?.as_deref(),
        Some("bob")
    );
    // An unknown identity is refused and the mapping stays.
    assert_not_found(
        store.link_forge_account("github", "octocat", "carol", 13),
        "identity",
    );
    assert_not_found(
        store.link_forge_account("github", "hubot", "carol", 13),
        "identity",
    );
    assert_eq!(
        store.forge_account("github", "octocat")?.as_deref(),
        Some("bob")
    );
    assert_eq!(store.forge_account("github", "hubot")?, None);
    assert!(matches!(
        store.link_forge_account("github", "", "bob", 14),
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.link_forge_account("github", &"l".repeat(5000), "bob", 14),
        Err(StoreError::TooLarge { .. })
    ));
    Ok(())
}
