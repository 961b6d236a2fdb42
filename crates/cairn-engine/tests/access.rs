//! Identities and authorisation over a real store: bootstrap, tokens,
//! revocation, and cairn-policy's decisions on the store's bindings.

#![allow(clippy::unwrap_used)]

use cairn_engine::EngineError;
use cairn_engine::access::{self, TOKEN_PREFIX};
use cairn_model::IdentityKind;
use cairn_policy::{Action, Identity, Scope};
use cairn_store::{SqliteStore, Store};

fn store() -> SqliteStore {
    SqliteStore::open_in_memory().unwrap()
}

/// The first identity, created without an actor: a platform-admin.
fn bootstrap(store: &dyn Store) -> (Identity, String) {
    let created = access::create_identity(store, None, "admin", IdentityKind::User, 1).unwrap();
    assert!(created.bootstrap);
    let token = created.token.expose().to_owned();
    (access::authenticate(store, &token).unwrap(), token)
}

#[test]
fn the_first_identity_is_a_platform_admin_and_the_only_bootstrap() {
    let store = store();
    let created = access::create_identity(&store, None, "admin", IdentityKind::User, 7).unwrap();
    assert!(created.bootstrap);
    let token = created.token.expose();
    // cairn_ + base64url of 32 bytes (43 characters, no padding).
    assert!(token.starts_with(TOKEN_PREFIX));
    let body = &token[TOKEN_PREFIX.len()..];
    assert_eq!(body.len(), 43);
    assert!(
        body.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    // Only the hash is kept, and Debug never shows the token.
    let kept = store.identity("admin").unwrap().unwrap();
    assert_eq!(kept.token_sha256, access::token_sha256(token));
    assert_ne!(kept.token_sha256, token);
    assert!(!format!("{created:?}").contains(body));
    assert_eq!(kept.created_at_ms, 7);
    assert_eq!(
        store.bindings().unwrap(),
        vec![cairn_model::RoleBinding {
            identity: "admin".to_owned(),
            role: "platform-admin".to_owned(),
            workload: None,
            environment: None,
        }]
    );
    // A second bootstrap is refused, and nothing is written.
    let err = access::create_identity(&store, None, "eve", IdentityKind::User, 8).unwrap_err();
    assert!(matches!(err, EngineError::AlreadyBootstrapped), "{err}");
    assert!(err.to_string().contains("CAIRN_TOKEN"));
    assert!(err.is_user_error());
    assert_eq!(store.identity("eve").unwrap(), None);
    // Two tokens are never the same.
    let admin = access::authenticate(&store, token).unwrap();
    let other =
        access::create_identity(&store, Some(&admin), "ci", IdentityKind::ServiceAccount, 9)
            .unwrap();
    assert!(!other.bootstrap);
    assert_ne!(other.token.expose(), token);
}

#[test]
fn authentication_fails_closed() {
    let store = store();
    let (admin, token) = bootstrap(&store);
    assert_eq!(admin, Identity::user("admin"));
    // Surrounding whitespace (a pasted token) is forgiven; anything else is not.
    assert_eq!(
        access::authenticate(&store, &format!(" {token}\n")).unwrap(),
        admin
    );
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [
        "",
        "cairn_",
        flipped.as_str(),
        &token[TOKEN_PREFIX.len()..],
        &"cairn_x".repeat(100),
        &access::token_sha256(&token),
    ] {
        let err = access::authenticate(&store, bad).unwrap_err();
        assert!(matches!(err, EngineError::BadToken), "{bad}: {err}");
        assert!(!err.to_string().contains(&token));
    }
    // No token at all says what to do.
    let err = access::actor_from_token(&store, None).unwrap_err();
    assert!(matches!(err, EngineError::NoToken));
    assert!(
        err.to_string().contains(
            "set CAIRN_TOKEN to your identity's token (cairn identity add prints it once)"
        ),
        "{err}"
    );
    assert!(matches!(
        access::actor_from_token(&store, Some("  ")).unwrap_err(),
        EngineError::NoToken
    ));
    assert_eq!(
        access::actor_from_token(&store, Some(&token)).unwrap(),
        admin
    );
}

#[test]
fn managing_identities_needs_manage_identities() {
    let store = store();
    let (admin, _) = bootstrap(&store);
    let dev = access::create_identity(&store, Some(&admin), "dev", IdentityKind::User, 2).unwrap();
    let dev_id = access::authenticate(&store, dev.token.expose()).unwrap();
    assert_eq!(dev_id, Identity::user("dev"));
    // No role yet: denied everything, even viewing.
    let err = access::authorize(&store, &dev_id, Action::View, &Scope::organisation()).unwrap_err();
    assert!(
        matches!(err, EngineError::Denied { action: "view", .. }),
        "{err}"
    );
    // Roles from the CLI's words.
    access::grant_role(
        &store,
        &admin,
        &access::role_binding("dev", "developer", None, None).unwrap(),
    )
    .unwrap();
    access::grant_role(
        &store,
        &admin,
        &access::role_binding("dev", "release-manager", Some("app"), Some("staging")).unwrap(),
    )
    .unwrap();
    // Granting twice is a no-op.
    access::grant_role(
        &store,
        &admin,
        &access::role_binding("dev", "developer", None, None).unwrap(),
    )
    .unwrap();
    assert_eq!(store.bindings().unwrap().len(), 3);
    // What the store's bindings now allow, through cairn-policy.
    let ok = |action, scope: &Scope| access::authorize(&store, &dev_id, action, scope);
    ok(Action::View, &Scope::organisation()).unwrap();
    ok(Action::Run, &Scope::workload("app")).unwrap();
    ok(Action::Promote, &Scope::environment("app", "staging")).unwrap();
    assert!(ok(Action::Promote, &Scope::environment("app", "production")).is_err());
    assert!(ok(Action::Approve, &Scope::workload("app")).is_err());
    access::authorize_override(
        &store,
        &dev_id,
        &Scope::environment("app", "staging"),
        "fire",
    )
    .unwrap();
    assert!(
        access::authorize_override(&store, &dev_id, &Scope::environment("app", "staging"), " ")
            .is_err()
    );
    // A developer may not manage identities or roles; the reason names the action.
    let err =
        access::create_identity(&store, Some(&dev_id), "eve", IdentityKind::User, 3).unwrap_err();
    match &err {
        EngineError::Denied { action, reason } => {
            assert_eq!(*action, "manage-identities");
            assert!(reason.contains("dev may not manage-identities"), "{reason}");
            assert!(
                reason.ends_with("(manage-identities is granted by: platform-admin)"),
                "{reason}"
            );
        }
        other => panic!("expected a denial, got {other}"),
    }
    assert!(err.is_user_error());
    assert_eq!(store.identity("eve").unwrap(), None);
    let grant_self = access::role_binding("dev", "platform-admin", None, None).unwrap();
    assert!(matches!(
        access::grant_role(&store, &dev_id, &grant_self),
        Err(EngineError::Denied { .. })
    ));
    assert!(matches!(
        access::revoke_identity(&store, &dev_id, "admin", 4),
        Err(EngineError::Denied { .. })
    ));
    // Bad words are refused before anything is written.
    assert!(matches!(
        access::role_binding("dev", "owner", None, None),
        Err(EngineError::UnknownRole { .. })
    ));
    assert!(matches!(
        access::role_binding("dev", "viewer", None, Some("production")),
        Err(EngineError::BadName { .. })
    ));
    assert!(matches!(
        access::role_binding("dev", "viewer", Some("a b"), None),
        Err(EngineError::BadName { .. })
    ));
    assert!(matches!(
        access::grant_role(
            &store,
            &admin,
            &access::role_binding("nobody", "viewer", None, None).unwrap()
        ),
        Err(EngineError::UnknownIdentity { .. })
    ));
    for bad in ["", "-flag", "a b", "x/y", &"n".repeat(65)] {
        assert!(
            matches!(
                access::create_identity(&store, Some(&admin), bad, IdentityKind::User, 5),
                Err(EngineError::BadName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        access::create_identity(&store, Some(&admin), "dev", IdentityKind::User, 5),
        Err(EngineError::IdentityExists { .. })
    ));
    // Removing a role takes it away.
    let rm = access::role_binding("dev", "release-manager", Some("app"), Some("staging")).unwrap();
    assert!(access::revoke_role(&store, &admin, &rm).unwrap());
    assert!(!access::revoke_role(&store, &admin, &rm).unwrap());
    assert!(ok(Action::Promote, &Scope::environment("app", "staging")).is_err());
}

#[test]
fn a_revoked_identity_is_refused_everywhere() {
    let store = store();
    let (admin, _) = bootstrap(&store);
    let ci = access::create_identity(&store, Some(&admin), "ci", IdentityKind::ServiceAccount, 2)
        .unwrap();
    access::grant_role(
        &store,
        &admin,
        &access::role_binding("ci", "developer", Some("app"), None).unwrap(),
    )
    .unwrap();
    let ci_id = access::authenticate(&store, ci.token.expose()).unwrap();
    assert_eq!(ci_id, Identity::service_account("ci"));
    access::authorize(&store, &ci_id, Action::Run, &Scope::workload("app")).unwrap();
    // Service accounts never approve, whatever their bindings.
    assert!(access::authorize(&store, &ci_id, Action::Approve, &Scope::workload("app")).is_err());

    assert!(access::revoke_identity(&store, &admin, "ci", 10).unwrap());
    assert!(!access::revoke_identity(&store, &admin, "ci", 11).unwrap());
    assert!(matches!(
        access::authenticate(&store, ci.token.expose()),
        Err(EngineError::BadToken)
    ));
    // Even handed in as already authenticated, a revoked identity is denied: it is
    // not among the bindings' identities.
    let bindings = access::bindings(&store).unwrap();
    assert!(!bindings.identities.contains_key("ci"));
    assert!(bindings.bindings.iter().all(|b| b.identity != "ci"));
    let err = access::authorize(&store, &ci_id, Action::Run, &Scope::workload("app")).unwrap_err();
    assert!(err.to_string().contains("unknown identity ci"), "{err}");
    assert!(matches!(
        access::grant_role(
            &store,
            &admin,
            &access::role_binding("ci", "viewer", None, None).unwrap()
        ),
        Err(EngineError::IdentityRevoked { .. })
    ));
    assert!(matches!(
        access::revoke_identity(&store, &admin, "ghost", 12),
        Err(EngineError::UnknownIdentity { .. })
    ));
}

#[test]
fn the_last_platform_admin_stays() {
    let store = store();
    let (admin, _) = bootstrap(&store);
    let admin_binding = access::role_binding("admin", "platform-admin", None, None).unwrap();
    assert!(matches!(
        access::revoke_identity(&store, &admin, "admin", 2),
        Err(EngineError::LastAdmin)
    ));
    assert!(matches!(
        access::revoke_role(&store, &admin, &admin_binding),
        Err(EngineError::LastAdmin)
    ));
    // With a second admin, the first may go.
    let ops = access::create_identity(&store, Some(&admin), "ops", IdentityKind::User, 3).unwrap();
    access::grant_role(
        &store,
        &admin,
        &access::role_binding("ops", "platform-admin", None, None).unwrap(),
    )
    .unwrap();
    let ops_id = access::authenticate(&store, ops.token.expose()).unwrap();
    assert!(access::revoke_identity(&store, &ops_id, "admin", 4).unwrap());
    assert!(matches!(
        access::revoke_identity(&store, &ops_id, "ops", 5),
        Err(EngineError::LastAdmin)
    ));
    assert_eq!(store.identity("ops").unwrap().unwrap().revoked_at_ms, None);
}

#[test]
fn an_unknown_role_in_the_store_is_an_error_not_a_skip() {
    let store = store();
    let (admin, _) = bootstrap(&store);
    store
        .add_binding(&cairn_model::RoleBinding {
            identity: "admin".to_owned(),
            role: "superuser".to_owned(),
            workload: None,
            environment: None,
        })
        .unwrap();
    let err = access::authorize(&store, &admin, Action::View, &Scope::organisation()).unwrap_err();
    assert!(err.to_string().contains("superuser"), "{err}");
    assert!(!err.is_user_error());
}
