//! The authorisation matrix: every role × action × binding scope × request
//! scope × identity kind against an expectation written out independently of
//! the code; zero unexpected allows (and zero unexpected denials).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use cairn_policy::{
    Action, Binding, BindingScope, Bindings, Identity, IdentityKind, MATRIX, Role, Scope,
    authorize, authorize_override,
};

/// The expected grants, as a table people review:
/// V=view R=run A=approve P=promote B=rollback O=override
/// C=change-chain Y=change-policy K=manage-keys I=manage-identities
/// G=change-catalog D=import-data.
const EXPECTED: &[(&str, &str)] = &[
    ("viewer", "V..........."),
    ("developer", "VR.........."),
    ("maintainer", "VRA........."),
    ("release-manager", "VR.PBO......"),
    ("platform-admin", "VR....CYKIGD"),
];

const LETTERS: &str = "VRAPBOCYKIGD";

fn expected_grant(role: Role, action: Action) -> bool {
    let row = EXPECTED
        .iter()
        .find(|(name, _)| *name == role.as_str())
        .unwrap()
        .1;
    let i = Action::ALL.iter().position(|a| *a == action).unwrap();
    let letter = LETTERS.as_bytes()[i];
    row.as_bytes()[i] == letter
}

fn binding_scopes() -> Vec<BindingScope> {
    vec![
        BindingScope::Organisation,
        BindingScope::Workload {
            workload: "hello".into(),
        },
        BindingScope::Environment {
            workload: "hello".into(),
            environment: "staging".into(),
        },
    ]
}

fn request_scopes() -> Vec<Scope> {
    vec![
        Scope::organisation(),
        Scope::workload("hello"),
        Scope::workload("other"),
        Scope::environment("hello", "staging"),
        Scope::environment("hello", "production"),
        Scope::environment("other", "staging"),
        Scope {
            workload: None,
            environment: Some("staging".into()),
        },
    ]
}

/// The expectation, spelled out case by case.
fn expected(
    role: Role,
    at: &BindingScope,
    kind: IdentityKind,
    action: Action,
    scope: &Scope,
) -> bool {
    if !expected_grant(role, action) {
        return false;
    }
    if kind == IdentityKind::ServiceAccount && matches!(action, Action::Approve | Action::Override)
    {
        return false;
    }
    let w = scope.workload.as_deref();
    let e = scope.environment.as_deref();
    // The scope the action needs.
    let shape_ok = match action {
        Action::View => !(w.is_none() && e.is_some()),
        Action::Run | Action::Approve => w.is_some(),
        Action::Promote | Action::Rollback | Action::Override => w.is_some() && e.is_some(),
        Action::ChangeChain
        | Action::ChangePolicy
        | Action::ManageKeys
        | Action::ManageIdentities
        | Action::ChangeCatalog
        | Action::ImportData => true,
    };
    if !shape_ok {
        return false;
    }
    let organisation_action = matches!(
        action,
        Action::ChangeChain
            | Action::ChangePolicy
            | Action::ManageKeys
            | Action::ManageIdentities
            | Action::ChangeCatalog
            | Action::ImportData
    );
    match at {
        BindingScope::Organisation => true,
        _ if organisation_action => false,
        BindingScope::Workload { workload } => w == Some(workload.as_str()),
        BindingScope::Environment {
            workload,
            environment,
        } => w == Some(workload.as_str()) && e == Some(environment.as_str()),
    }
}

#[test]
fn the_code_matrix_is_the_documented_one() {
    for role in Role::ALL {
        for action in Action::ALL {
            assert_eq!(
                role.grants(action),
                expected_grant(role, action),
                "{role:?} {action:?}"
            );
        }
    }
    assert_eq!(MATRIX.len(), Role::ALL.len());
}

#[test]
fn every_role_action_and_scope_matches_the_expected_matrix() {
    let mut checked = 0;
    let mut allowed = 0;
    let mut unexpected = Vec::new();
    for role in Role::ALL {
        for at in binding_scopes() {
            for kind in [IdentityKind::User, IdentityKind::ServiceAccount] {
                let identity = Identity {
                    name: "subject".into(),
                    kind,
                };
                let bindings = Bindings {
                    identities: BTreeMap::from([("subject".into(), kind)]),
                    bindings: vec![Binding {
                        identity: "subject".into(),
                        role,
                        scope: at.clone(),
                    }],
                };
                for action in Action::ALL {
                    for scope in request_scopes() {
                        let got = authorize(&bindings, &identity, action, &scope);
                        let want = expected(role, &at, kind, action, &scope);
                        checked += 1;
                        if got.is_ok() {
                            allowed += 1;
                        }
                        if got.is_ok() != want {
                            unexpected.push(format!(
                                "{role:?} at {at:?} ({kind:?}) {action:?} on {scope:?}: got {got:?}, want {want}"
                            ));
                        }
                        if let Err(denied) = got {
                            assert!(!denied.reason.is_empty());
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 5 * 3 * 2 * 12 * 7);
    assert!(allowed > 0);
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

fn org() -> Bindings {
    Bindings {
        identities: BTreeMap::from([
            ("alice".into(), IdentityKind::User),
            ("bob".into(), IdentityKind::User),
            ("carol".into(), IdentityKind::User),
            ("ci-bot".into(), IdentityKind::ServiceAccount),
        ]),
        bindings: vec![
            Binding {
                identity: "bob".into(),
                role: Role::Maintainer,
                scope: BindingScope::Workload {
                    workload: "hello".into(),
                },
            },
            Binding {
                identity: "carol".into(),
                role: Role::ReleaseManager,
                scope: BindingScope::Environment {
                    workload: "hello".into(),
                    environment: "production".into(),
                },
            },
            Binding {
                identity: "ci-bot".into(),
                role: Role::Maintainer,
                scope: BindingScope::Organisation,
            },
        ],
    }
}

#[test]
fn unknown_identities_and_wrong_kinds_are_denied_with_a_reason() {
    let b = org();
    let err = authorize(
        &b,
        &Identity::user("mallory"),
        Action::View,
        &Scope::organisation(),
    )
    .unwrap_err();
    assert_eq!(err.reason, "unknown identity mallory");
    // A known name claimed with the wrong kind.
    let err = authorize(
        &b,
        &Identity::service_account("bob"),
        Action::View,
        &Scope::workload("hello"),
    )
    .unwrap_err();
    assert_eq!(err.reason, "identity bob is not a service account");
    // A known identity without bindings can do nothing.
    let err = authorize(
        &b,
        &Identity::user("alice"),
        Action::View,
        &Scope::workload("hello"),
    )
    .unwrap_err();
    assert_eq!(
        err.reason,
        "alice may not view at workload hello: no role bound there grants it"
    );
    // Empty bindings deny everything.
    let empty = Bindings::default();
    for action in Action::ALL {
        assert!(
            authorize(
                &empty,
                &Identity::user("bob"),
                action,
                &Scope::workload("hello")
            )
            .is_err()
        );
    }
}

#[test]
fn a_service_account_never_approves_whatever_its_role() {
    let b = org();
    let err = authorize(
        &b,
        &Identity::service_account("ci-bot"),
        Action::Approve,
        &Scope::workload("hello"),
    )
    .unwrap_err();
    assert_eq!(
        err.reason,
        "ci-bot is a service account: only people may approve"
    );
    assert!(
        authorize(
            &b,
            &Identity::service_account("ci-bot"),
            Action::Run,
            &Scope::workload("hello")
        )
        .is_ok()
    );
    assert!(
        authorize(
            &b,
            &Identity::user("bob"),
            Action::Approve,
            &Scope::workload("hello")
        )
        .is_ok()
    );
    assert!(
        authorize(
            &b,
            &Identity::user("bob"),
            Action::Approve,
            &Scope::workload("other")
        )
        .is_err()
    );
}

#[test]
fn an_override_needs_the_role_and_a_reason_and_is_flagged() {
    let b = org();
    let carol = Identity::user("carol");
    let prod = Scope::environment("hello", "production");
    let grant = authorize_override(&b, &carol, &prod, "  INC-4711: roll back  ").unwrap();
    assert!(grant.flagged);
    assert_eq!(grant.reason, "INC-4711: roll back");
    assert_eq!(grant.identity, "carol");
    for reason in ["", "   ", "\n"] {
        assert_eq!(
            authorize_override(&b, &carol, &prod, reason)
                .unwrap_err()
                .reason,
            "an override needs a reason"
        );
    }
    // Not in staging (carol's binding is production only), not by a maintainer.
    assert!(authorize_override(&b, &carol, &Scope::environment("hello", "staging"), "x").is_err());
    assert!(authorize_override(&b, &Identity::user("bob"), &prod, "x").is_err());
    // Promotion needs an environment in the scope.
    assert_eq!(
        authorize(&b, &carol, Action::Promote, &Scope::workload("hello"))
            .unwrap_err()
            .reason,
        "promote needs a workload and an environment"
    );
}

#[test]
fn roles_at_a_scope_feed_the_gate_input() {
    let b = org();
    assert_eq!(
        b.roles_at(
            &Identity::user("bob"),
            &Scope::environment("hello", "production")
        ),
        [Role::Maintainer]
    );
    assert!(
        b.roles_at(&Identity::user("bob"), &Scope::workload("other"))
            .is_empty()
    );
    assert!(
        b.roles_at(&Identity::user("mallory"), &Scope::workload("hello"))
            .is_empty()
    );
    assert_eq!(Role::parse("release-manager"), Some(Role::ReleaseManager));
    assert_eq!(Role::parse("root"), None);
}
