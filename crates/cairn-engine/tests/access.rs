//! Identities and authorisation over a real store: bootstrap, tokens,
//! revocation, cairn-policy's decisions on the store's bindings, and the audit
//! log entry each change gets before it is made.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use cairn_engine::access::{self, TOKEN_PREFIX};
use cairn_engine::{DataDir, EngineError, audit};
use cairn_model::IdentityKind;
use cairn_policy::{Action, Identity, Scope};
use cairn_store::SqliteStore;
use cairn_store::prelude::*;
use serde_json::{Value, json};

/// A data directory (for the audit log) that lives as long as the test.
struct Data {
    dir: DataDir,
    _tmp: tempfile::TempDir,
}

impl std::ops::Deref for Data {
    type Target = DataDir;
    fn deref(&self) -> &DataDir {
        &self.dir
    }
}

fn store() -> (SqliteStore, Data) {
    let tmp = tempfile::tempdir().unwrap();
    let data = Data {
        dir: DataDir::at(tmp.path()),
        _tmp: tmp,
    };
    (SqliteStore::open_in_memory().unwrap(), data)
}

/// The audit log's entries, as JSON (none before the log exists).
fn entries(data: &DataDir) -> Vec<Value> {
    if !audit::log_dir(data).exists() {
        return Vec::new();
    }
    let verifier = cairn_tlog_fs::load_or_create_signer(&audit::key_path(data), audit::ORIGIN)
        .unwrap()
        .verifier();
    let log = cairn_tlog_fs::Log::open_read_only(&audit::log_dir(data), verifier).unwrap();
    (0..log.size())
        .map(|i| serde_json::from_slice(&log.entry(i).unwrap()).unwrap())
        .collect()
}

/// The spec of an `access-change` entry (and checks its kind).
fn access_spec(entry: &Value) -> &Value {
    assert_eq!(entry["kind"], "access-change", "{entry}");
    assert_eq!(entry["apiVersion"], audit::CHANGE_VERSION, "{entry}");
    &entry["spec"]
}

/// Replaces `<data>/log` by a file, so that the log cannot be opened; returns
/// where the log was moved (if it existed).
fn break_log(data: &DataDir) -> Option<PathBuf> {
    let log = audit::log_dir(data);
    let aside = data.root().join("log.aside");
    let moved = log.exists().then(|| {
        std::fs::rename(&log, &aside).unwrap();
        aside
    });
    std::fs::write(&log, b"not a log").unwrap();
    moved
}

fn mend_log(data: &DataDir, moved: Option<PathBuf>) {
    let log = audit::log_dir(data);
    std::fs::remove_file(&log).unwrap();
    if let Some(aside) = moved {
        std::fs::rename(aside, log).unwrap();
    }
}

/// The first identity, created without an actor: a platform-admin.
fn bootstrap(store: &dyn Store, data: &DataDir) -> (Identity, String) {
    let created =
        access::create_identity(store, data, None, "admin", IdentityKind::User, 1).unwrap();
    assert!(created.bootstrap);
    let token = created.token.expose().to_owned();
    (access::authenticate(store, &token).unwrap(), token)
}

#[test]
fn the_first_identity_is_a_platform_admin_and_the_only_bootstrap() {
    let (store, data) = store();
    let created =
        access::create_identity(&store, &data, None, "admin", IdentityKind::User, 7).unwrap();
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
    let err =
        access::create_identity(&store, &data, None, "eve", IdentityKind::User, 8).unwrap_err();
    assert!(matches!(err, EngineError::AlreadyBootstrapped), "{err}");
    assert!(err.to_string().contains("CAIRN_TOKEN"));
    assert!(err.is_user_error());
    assert_eq!(store.identity("eve").unwrap(), None);
    // Two tokens are never the same.
    let admin = access::authenticate(&store, token).unwrap();
    let other = access::create_identity(
        &store,
        &data,
        Some(&admin),
        "ci",
        IdentityKind::ServiceAccount,
        9,
    )
    .unwrap();
    assert!(!other.bootstrap);
    assert_ne!(other.token.expose(), token);
}

#[test]
fn authentication_fails_closed() {
    let (store, data) = store();
    let (admin, token) = bootstrap(&store, &data);
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
    let (store, data) = store();
    let (admin, _) = bootstrap(&store, &data);
    let dev =
        access::create_identity(&store, &data, Some(&admin), "dev", IdentityKind::User, 2).unwrap();
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
        &data,
        &admin,
        &access::role_binding("dev", "developer", None, None).unwrap(),
    )
    .unwrap();
    access::grant_role(
        &store,
        &data,
        &admin,
        &access::role_binding("dev", "release-manager", Some("app"), Some("staging")).unwrap(),
    )
    .unwrap();
    // Granting twice is a no-op.
    access::grant_role(
        &store,
        &data,
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
    let err = access::create_identity(&store, &data, Some(&dev_id), "eve", IdentityKind::User, 3)
        .unwrap_err();
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
        access::grant_role(&store, &data, &dev_id, &grant_self),
        Err(EngineError::Denied { .. })
    ));
    assert!(matches!(
        access::revoke_identity(&store, &data, &dev_id, "admin", 4),
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
            &data,
            &admin,
            &access::role_binding("nobody", "viewer", None, None).unwrap()
        ),
        Err(EngineError::UnknownIdentity { .. })
    ));
    for bad in ["", "-flag", "a b", "x/y", &"n".repeat(65)] {
        assert!(
            matches!(
                access::create_identity(&store, &data, Some(&admin), bad, IdentityKind::User, 5),
                Err(EngineError::BadName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        access::create_identity(&store, &data, Some(&admin), "dev", IdentityKind::User, 5),
        Err(EngineError::IdentityExists { .. })
    ));
    // Removing a role takes it away.
    let rm = access::role_binding("dev", "release-manager", Some("app"), Some("staging")).unwrap();
    assert!(access::revoke_role(&store, &data, &admin, &rm).unwrap());
    assert!(!access::revoke_role(&store, &data, &admin, &rm).unwrap());
    assert!(ok(Action::Promote, &Scope::environment("app", "staging")).is_err());
}

#[test]
fn a_revoked_identity_is_refused_everywhere() {
    let (store, data) = store();
    let (admin, _) = bootstrap(&store, &data);
    let ci = access::create_identity(
        &store,
        &data,
        Some(&admin),
        "ci",
        IdentityKind::ServiceAccount,
        2,
    )
    .unwrap();
    access::grant_role(
        &store,
        &data,
        &admin,
        &access::role_binding("ci", "developer", Some("app"), None).unwrap(),
    )
    .unwrap();
    let ci_id = access::authenticate(&store, ci.token.expose()).unwrap();
    assert_eq!(ci_id, Identity::service_account("ci"));
    access::authorize(&store, &ci_id, Action::Run, &Scope::workload("app")).unwrap();
    // Service accounts never approve, whatever their bindings.
    assert!(access::authorize(&store, &ci_id, Action::Approve, &Scope::workload("app")).is_err());

    assert!(access::revoke_identity(&store, &data, &admin, "ci", 10).unwrap());
    assert!(!access::revoke_identity(&store, &data, &admin, "ci", 11).unwrap());
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
            &data,
            &admin,
            &access::role_binding("ci", "viewer", None, None).unwrap()
        ),
        Err(EngineError::IdentityRevoked { .. })
    ));
    assert!(matches!(
        access::revoke_identity(&store, &data, &admin, "ghost", 12),
        Err(EngineError::UnknownIdentity { .. })
    ));
}

#[test]
fn the_last_platform_admin_stays() {
    let (store, data) = store();
    let (admin, _) = bootstrap(&store, &data);
    let admin_binding = access::role_binding("admin", "platform-admin", None, None).unwrap();
    assert!(matches!(
        access::revoke_identity(&store, &data, &admin, "admin", 2),
        Err(EngineError::LastAdmin)
    ));
    assert!(matches!(
        access::revoke_role(&store, &data, &admin, &admin_binding),
        Err(EngineError::LastAdmin)
    ));
    // With a second admin, the first may go.
    let ops =
        access::create_identity(&store, &data, Some(&admin), "ops", IdentityKind::User, 3).unwrap();
    access::grant_role(
        &store,
        &data,
        &admin,
        &access::role_binding("ops", "platform-admin", None, None).unwrap(),
    )
    .unwrap();
    let ops_id = access::authenticate(&store, ops.token.expose()).unwrap();
    assert!(access::revoke_identity(&store, &data, &ops_id, "admin", 4).unwrap());
    assert!(matches!(
        access::revoke_identity(&store, &data, &ops_id, "ops", 5),
        Err(EngineError::LastAdmin)
    ));
    assert_eq!(store.identity("ops").unwrap().unwrap().revoked_at_ms, None);
}

#[test]
fn an_unknown_role_in_the_store_is_an_error_not_a_skip() {
    let (store, data) = store();
    let (admin, _) = bootstrap(&store, &data);
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

#[test]
fn every_identity_and_role_change_is_logged_before_it_is_made() {
    let (store, data) = store();
    let (admin, admin_token) = bootstrap(&store, &data);
    // The bootstrap: an identity-add with the platform-admin binding, no actor.
    let log = entries(&data);
    assert_eq!(log.len(), 1);
    assert_eq!(
        *access_spec(&log[0]),
        json!({
            "action": "identity-add", "identity": "admin", "kind": "user",
            "role": "platform-admin", "workload": null, "environment": null,
            "actor": null,
        })
    );

    let dev =
        access::create_identity(&store, &data, Some(&admin), "dev", IdentityKind::User, 2).unwrap();
    let ci = access::create_identity(
        &store,
        &data,
        Some(&admin),
        "ci",
        IdentityKind::ServiceAccount,
        2,
    )
    .unwrap();
    let rm = access::role_binding("dev", "release-manager", Some("app"), Some("staging")).unwrap();
    access::grant_role(&store, &data, &admin, &rm).unwrap();
    // A no-op grant changes nothing, so it logs nothing.
    access::grant_role(&store, &data, &admin, &rm).unwrap();
    assert!(access::revoke_role(&store, &data, &admin, &rm).unwrap());
    assert!(!access::revoke_role(&store, &data, &admin, &rm).unwrap());
    assert!(access::revoke_identity(&store, &data, &admin, "ci", 3).unwrap());
    assert!(!access::revoke_identity(&store, &data, &admin, "ci", 4).unwrap());

    let log = entries(&data);
    let specs: Vec<&Value> = log.iter().map(access_spec).collect();
    assert_eq!(
        specs[1..],
        [
            &json!({
                "action": "identity-add", "identity": "dev", "kind": "user",
                "role": null, "workload": null, "environment": null, "actor": "admin",
            }),
            &json!({
                "action": "identity-add", "identity": "ci", "kind": "service-account",
                "role": null, "workload": null, "environment": null, "actor": "admin",
            }),
            &json!({
                "action": "role-grant", "identity": "dev", "kind": null,
                "role": "release-manager", "workload": "app", "environment": "staging",
                "actor": "admin",
            }),
            &json!({
                "action": "role-revoke", "identity": "dev", "kind": null,
                "role": "release-manager", "workload": "app", "environment": "staging",
                "actor": "admin",
            }),
            &json!({
                "action": "identity-revoke", "identity": "ci", "kind": "service-account",
                "role": null, "workload": null, "environment": null, "actor": "admin",
            }),
        ]
    );
    // Never a token, nor its hash.
    let text: String = log.iter().map(Value::to_string).collect();
    for token in [admin_token.as_str(), dev.token.expose(), ci.token.expose()] {
        assert!(!text.contains(token), "{text}");
        assert!(!text.contains(&token[TOKEN_PREFIX.len()..]), "{text}");
        assert!(!text.contains(&access::token_sha256(token)), "{text}");
    }
    assert!(!text.contains("cairn_"), "{text}");
}

#[test]
fn a_refused_change_is_not_logged() {
    let (store, data) = store();
    let (admin, _) = bootstrap(&store, &data);
    let dev =
        access::create_identity(&store, &data, Some(&admin), "dev", IdentityKind::User, 2).unwrap();
    let dev_id = access::authenticate(&store, dev.token.expose()).unwrap();
    let before = entries(&data).len();
    assert_eq!(before, 2);
    let grant_self = access::role_binding("dev", "platform-admin", None, None).unwrap();
    let admin_binding = access::role_binding("admin", "platform-admin", None, None).unwrap();
    let refusals = [
        // Not authorised.
        access::grant_role(&store, &data, &dev_id, &grant_self).unwrap_err(),
        access::revoke_role(&store, &data, &dev_id, &admin_binding).unwrap_err(),
        access::revoke_identity(&store, &data, &dev_id, "admin", 3).unwrap_err(),
        access::create_identity(&store, &data, Some(&dev_id), "eve", IdentityKind::User, 3)
            .unwrap_err(),
        // Unknown identity, an identity that exists, a second bootstrap.
        access::grant_role(
            &store,
            &data,
            &admin,
            &access::role_binding("nobody", "viewer", None, None).unwrap(),
        )
        .unwrap_err(),
        access::revoke_identity(&store, &data, &admin, "ghost", 3).unwrap_err(),
        access::create_identity(&store, &data, Some(&admin), "dev", IdentityKind::User, 3)
            .unwrap_err(),
        access::create_identity(&store, &data, None, "eve", IdentityKind::User, 3).unwrap_err(),
        // The last platform-admin.
        access::revoke_identity(&store, &data, &admin, "admin", 3).unwrap_err(),
        access::revoke_role(&store, &data, &admin, &admin_binding).unwrap_err(),
    ];
    for (i, err) in refusals.iter().enumerate() {
        assert!(err.is_user_error(), "{i}: {err}");
    }
    assert_eq!(entries(&data).len(), before, "refusals are not logged");
    assert_eq!(store.bindings().unwrap(), vec![admin_binding]);
}

#[test]
fn a_change_whose_log_entry_cannot_be_written_is_not_made() {
    let (store, data) = store();
    // Not even the bootstrap: no identity is made.
    let moved = break_log(&data);
    let err =
        access::create_identity(&store, &data, None, "admin", IdentityKind::User, 1).unwrap_err();
    assert!(err.to_string().contains("audit log"), "{err}");
    assert!(store.identities().unwrap().is_empty());
    assert!(store.bindings().unwrap().is_empty());
    mend_log(&data, moved);

    let (admin, _) = bootstrap(&store, &data);
    access::create_identity(&store, &data, Some(&admin), "dev", IdentityKind::User, 2).unwrap();
    let viewer = access::role_binding("dev", "viewer", None, None).unwrap();
    access::grant_role(&store, &data, &admin, &viewer).unwrap();
    let bindings = store.bindings().unwrap();
    let identities = store.identities().unwrap();
    let logged = entries(&data).len();

    let moved = break_log(&data);
    let developer = access::role_binding("dev", "developer", None, None).unwrap();
    for err in [
        access::grant_role(&store, &data, &admin, &developer).unwrap_err(),
        access::revoke_role(&store, &data, &admin, &viewer).unwrap_err(),
        access::revoke_identity(&store, &data, &admin, "dev", 3).unwrap_err(),
        access::create_identity(&store, &data, Some(&admin), "eve", IdentityKind::User, 3)
            .unwrap_err(),
    ] {
        assert!(
            matches!(err, EngineError::AuditLog { .. }),
            "the error names the audit log: {err}"
        );
    }
    assert_eq!(store.bindings().unwrap(), bindings, "bindings unchanged");
    assert_eq!(
        store.identities().unwrap(),
        identities,
        "identities unchanged"
    );
    mend_log(&data, moved);
    assert_eq!(entries(&data).len(), logged);
}

/// org.toml's role names (`[[sso.map]]` roles, checked by cairn-model) are
/// exactly cairn-policy's.
#[test]
fn the_sso_map_knows_every_role_by_its_policy_name() {
    let policy: Vec<&str> = cairn_policy::Role::ALL
        .into_iter()
        .map(cairn_policy::Role::as_str)
        .collect();
    assert_eq!(policy, cairn_model::config::ROLE_NAMES);
}

/// `[[sso.map]]` with roles: no bootstrap through it, the stored kind is not
/// changed, revoked stays revoked, and a settled identity logs nothing.
#[test]
fn a_declared_identity_fails_closed() {
    use cairn_model::config::{DeclaredRoles, MappedRole};
    let (store, data) = store();
    let declared = DeclaredRoles {
        service_account: true,
        roles: vec![MappedRole {
            role: "developer".into(),
            workload: Some("hello".into()),
            environment: None,
        }],
    };
    let e = access::declared_identity(&store, &data, "bot", &declared).unwrap_err();
    assert!(matches!(e, EngineError::SsoBeforeBootstrap { .. }), "{e}");
    assert!(entries(&data).is_empty(), "nothing logged");

    let (admin, _) = bootstrap(&store, &data);
    let bot = access::declared_identity(&store, &data, "bot", &declared).unwrap();
    assert_eq!(bot.kind, cairn_policy::IdentityKind::ServiceAccount);
    let n = entries(&data).len();
    access::declared_identity(&store, &data, "bot", &declared).unwrap();
    assert_eq!(entries(&data).len(), n, "settled: nothing logged");
    access::authorize(&store, &bot, Action::View, &Scope::workload("hello")).unwrap();

    let as_user = DeclaredRoles {
        service_account: false,
        ..declared.clone()
    };
    let e = access::declared_identity(&store, &data, "bot", &as_user).unwrap_err();
    assert!(e.to_string().contains("exists as a service-account"), "{e}");

    access::revoke_identity(&store, &data, &admin, "bot", 2).unwrap();
    let e = access::declared_identity(&store, &data, "bot", &declared).unwrap_err();
    assert!(matches!(e, EngineError::BadToken), "{e}");

    // org.toml cannot demote the last platform-admin.
    let n = entries(&data).len();
    let e = access::declared_identity(&store, &data, &admin.name, &as_user).unwrap_err();
    assert!(matches!(e, EngineError::LastAdmin), "{e}");
    assert_eq!(entries(&data).len(), n, "refused before any change");
}
