//! `cairn identity` and `cairn role` end to end: the bootstrap admin, an admin
//! adding a developer and granting roles, denials that name the action, revoked
//! tokens refused, tokens that never show up again, and every change in the
//! audit log before it is made (and not made when it cannot be logged).

#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command;

use common::{Fixture, Run};
use serde_json::{Value, json};

/// `cairn ARGS` as the identity holding `token` (or as nobody).
fn as_(f: &Fixture, token: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = f.cairn(args);
    match token {
        Some(t) => cmd.env("CAIRN_TOKEN", t),
        None => cmd.env_remove("CAIRN_TOKEN"),
    };
    Run::from(cmd.output().unwrap())
}

fn ok(f: &Fixture, token: Option<&str>, args: &[&str]) -> Run {
    let r = as_(f, token, args);
    assert_eq!(r.code, 0, "cairn {args:?}: {r:?}");
    r
}

/// The token line of `cairn identity add`'s text output.
fn token_of(run: &Run) -> String {
    let tokens: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("cairn_"))
        .collect();
    assert_eq!(tokens.len(), 1, "one token line: {run:?}");
    tokens[0].to_owned()
}

#[test]
fn identities_and_roles_end_to_end() {
    let f = Fixture::new();

    // Bootstrap: no identity yet, no token needed; the first is a platform-admin.
    let added = ok(&f, None, &["identity", "add", "admin"]);
    assert!(added.stdout.contains("shown once"), "{added:?}");
    assert!(added.stdout.contains("platform-admin"), "{added:?}");
    let admin = token_of(&added);
    assert!(
        !added.stderr.contains(&admin),
        "the token goes to stdout only"
    );

    // No second bootstrap: without a token, adding is refused and says what to do.
    let again = as_(&f, None, &["identity", "add", "eve"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("CAIRN_TOKEN"), "{again:?}");

    // Every other command needs a token, and says how to get one.
    let anonymous = as_(&f, None, &["identity", "list"]);
    assert_eq!(anonymous.code, 1, "{anonymous:?}");
    assert!(
        anonymous.stderr.contains(
            "set CAIRN_TOKEN to your identity's token (cairn identity add prints it once)"
        ),
        "{anonymous:?}"
    );

    // The admin adds a developer (JSON shows the token once too) and grants roles.
    let dev_added = as_(&f, Some(&admin), &["--json", "identity", "add", "dev"]);
    assert_eq!(dev_added.code, 0, "{dev_added:?}");
    let dev_json: serde_json::Value = serde_json::from_str(&dev_added.stdout).unwrap();
    assert_eq!(dev_json["name"], "dev");
    assert_eq!(dev_json["kind"], "user");
    assert_eq!(dev_json["bootstrap"], false);
    let dev = dev_json["token"].as_str().unwrap().to_owned();
    assert!(dev.starts_with("cairn_"));
    assert_ne!(dev, admin);
    let bot = token_of(&ok(
        &f,
        Some(&admin),
        &["identity", "add", "ci-bot", "--service-account"],
    ));
    ok(&f, Some(&admin), &["role", "grant", "dev", "developer"]);
    let granted = ok(
        &f,
        Some(&admin),
        &[
            "role",
            "grant",
            "dev",
            "release-manager",
            "--workload",
            "app",
            "--env",
            "staging",
        ],
    );
    assert!(
        granted
            .stdout
            .contains("granted release-manager to dev for workload app in staging"),
        "{granted:?}"
    );
    // Bad words: an unknown role, an environment without a workload, an unknown
    // identity.
    for args in [
        &["role", "grant", "dev", "owner"][..],
        &["role", "grant", "dev", "viewer", "--env", "production"][..],
        &["role", "grant", "nobody", "viewer"][..],
    ] {
        let r = as_(&f, Some(&admin), args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
    }
    let unknown_role = as_(&f, Some(&admin), &["role", "grant", "dev", "owner"]);
    assert!(
        unknown_role.stderr.contains("unknown role `owner`"),
        "{unknown_role:?}"
    );

    // whoami: the developer sees itself and its roles.
    let me = ok(&f, Some(&dev), &["identity", "whoami"]);
    assert!(me.stdout.starts_with("dev (user)"), "{me:?}");
    assert!(me.stdout.contains("developer organisation-wide"), "{me:?}");
    assert!(
        me.stdout
            .contains("release-manager for workload app in staging"),
        "{me:?}"
    );
    let bot_me = ok(&f, Some(&bot), &["--json", "identity", "whoami"]);
    let bot_me: serde_json::Value = serde_json::from_str(&bot_me.stdout).unwrap();
    assert_eq!(bot_me["name"], "ci-bot");
    assert_eq!(bot_me["kind"], "service-account");
    assert_eq!(bot_me["roles"], serde_json::json!([]));

    // The developer may view but not manage identities or roles: exit 1, and the
    // reason names the action.
    let listed = ok(&f, Some(&dev), &["role", "list"]);
    assert!(listed.stdout.contains("admin"), "{listed:?}");
    assert!(listed.stdout.contains("platform-admin"), "{listed:?}");
    for args in [
        &["identity", "add", "eve"][..],
        &["role", "grant", "dev", "platform-admin"][..],
        &["identity", "revoke", "admin"][..],
    ] {
        let denied = as_(&f, Some(&dev), args);
        assert_eq!(denied.code, 1, "{args:?}: {denied:?}");
        assert!(
            denied.stderr.contains("permission denied")
                && denied.stderr.contains("dev may not manage-identities")
                && denied
                    .stderr
                    .contains("manage-identities is granted by: platform-admin"),
            "{args:?}: {denied:?}"
        );
    }
    // A service account with no role may not even list.
    let bot_list = as_(&f, Some(&bot), &["identity", "list"]);
    assert_eq!(bot_list.code, 1, "{bot_list:?}");
    assert!(bot_list.stderr.contains("may not view"), "{bot_list:?}");

    // The listing shows every identity, never a token or its hash.
    let list = ok(&f, Some(&admin), &["identity", "list"]);
    let list_json = ok(&f, Some(&admin), &["--json", "identity", "list"]);
    for out in [&list.stdout, &list_json.stdout] {
        for name in ["admin", "dev", "ci-bot"] {
            assert!(out.contains(name), "{out}");
        }
        for token in [&admin, &dev, &bot] {
            assert!(!out.contains(token.as_str()), "a token leaked: {out}");
            assert!(!out.contains(&token[6..]), "a token leaked: {out}");
            assert!(
                !out.contains(&sha256_hex(token)),
                "a token hash leaked: {out}"
            );
        }
        assert!(!out.contains("cairn_"), "{out}");
    }
    let entries: serde_json::Value = serde_json::from_str(&list_json.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 3);

    // Revoked: the token is refused at once, and the listing says so.
    let revoked = ok(&f, Some(&admin), &["identity", "revoke", "dev"]);
    assert!(revoked.stdout.contains("revoked dev"), "{revoked:?}");
    let refused = as_(&f, Some(&dev), &["identity", "whoami"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("revoked"), "{refused:?}");
    assert!(!refused.stderr.contains(&dev), "{refused:?}");
    let list = ok(&f, Some(&admin), &["identity", "list"]);
    let dev_line = list.stdout.lines().find(|l| l.starts_with("dev ")).unwrap();
    assert!(dev_line.contains("revoked"), "{list:?}");

    // The last platform-admin cannot lock everyone out.
    let last = as_(&f, Some(&admin), &["identity", "revoke", "admin"]);
    assert_eq!(last.code, 1, "{last:?}");
    assert!(last.stderr.contains("no active platform-admin"), "{last:?}");
    ok(&f, Some(&admin), &["identity", "whoami"]);

    // Role revocation: removed once, then a no-op that says so.
    ok(&f, Some(&admin), &["role", "grant", "ci-bot", "viewer"]);
    let rm = ok(&f, Some(&admin), &["role", "revoke", "ci-bot", "viewer"]);
    assert!(rm.stdout.contains("revoked viewer from ci-bot"), "{rm:?}");
    let rm = ok(&f, Some(&admin), &["role", "revoke", "ci-bot", "viewer"]);
    assert!(rm.stdout.contains("nothing changed"), "{rm:?}");
}

/// The audit log's size (`cairn log checkpoint`).
fn log_size(f: &Fixture) -> u64 {
    f.json(&["log", "checkpoint"])["size"].as_u64().unwrap()
}

/// Entry `index` of the audit log (`cairn --json log show INDEX`), parsed.
fn log_entry(f: &Fixture, index: u64) -> Value {
    let shown = f.json(&["log", "show", &index.to_string()]);
    serde_json::from_str(shown["entry_text"].as_str().unwrap()).unwrap()
}

/// Checks that `run` appended exactly one `access-change` entry (at `before`)
/// whose spec is `spec`, and that neither the JSON nor the text of
/// `cairn log show` holds any of `tokens` or their hashes.
fn logged_once(f: &Fixture, before: u64, spec: &Value, tokens: &[&str]) {
    assert_eq!(log_size(f), before + 1, "one more entry");
    let entry = log_entry(f, before);
    assert_eq!(entry["kind"], "access-change", "{entry}");
    assert_eq!(entry["spec"], *spec, "{entry}");
    let text = ok(f, None, &["log", "show", &before.to_string()]).stdout;
    assert!(text.contains("access-change"), "{text}");
    for out in [text, entry.to_string()] {
        assert!(!out.contains("cairn_"), "a token leaked: {out}");
        for token in tokens {
            assert!(!out.contains(&token[6..]), "a token leaked: {out}");
            assert!(
                !out.contains(&sha256_hex(token)),
                "a token hash leaked: {out}"
            );
        }
    }
}

#[test]
fn every_identity_and_role_change_is_in_the_audit_log_first() {
    let f = Fixture::new();
    let added = ok(&f, None, &["identity", "add", "admin"]);
    let admin = token_of(&added);
    assert_eq!(log_size(&f), 1, "the bootstrap is logged");
    let entry = log_entry(&f, 0);
    assert_eq!(entry["kind"], "access-change", "{entry}");
    assert_eq!(
        entry["spec"],
        json!({"action": "identity-add", "identity": "admin", "kind": "user",
               "role": "platform-admin", "workload": null, "environment": null,
               "actor": null})
    );

    let n = log_size(&f);
    let dev = token_of(&ok(&f, Some(&admin), &["identity", "add", "dev"]));
    let tokens = [admin.as_str(), dev.as_str()];
    logged_once(
        &f,
        n,
        &json!({"action": "identity-add", "identity": "dev", "kind": "user",
                "role": null, "workload": null, "environment": null,
                "actor": "admin"}),
        &tokens,
    );

    let n = log_size(&f);
    ok(
        &f,
        Some(&admin),
        &["role", "grant", "dev", "developer", "--workload", "app"],
    );
    logged_once(
        &f,
        n,
        &json!({"action": "role-grant", "identity": "dev", "kind": null,
                "role": "developer", "workload": "app", "environment": null,
                "actor": "admin"}),
        &tokens,
    );

    // Refused (not authorised, an unknown identity) or a no-op: no entry.
    let n = log_size(&f);
    let denied = as_(&f, Some(&dev), &["role", "grant", "dev", "platform-admin"]);
    assert_eq!(denied.code, 1, "{denied:?}");
    let unknown = as_(&f, Some(&admin), &["role", "grant", "nobody", "viewer"]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    ok(
        &f,
        Some(&admin),
        &["role", "grant", "dev", "developer", "--workload", "app"],
    );
    assert_eq!(log_size(&f), n, "refusals and no-ops are not logged");

    ok(
        &f,
        Some(&admin),
        &["role", "revoke", "dev", "developer", "--workload", "app"],
    );
    logged_once(
        &f,
        n,
        &json!({"action": "role-revoke", "identity": "dev", "kind": null,
                "role": "developer", "workload": "app", "environment": null,
                "actor": "admin"}),
        &tokens,
    );

    let n = log_size(&f);
    ok(&f, Some(&admin), &["identity", "revoke", "dev"]);
    logged_once(
        &f,
        n,
        &json!({"action": "identity-revoke", "identity": "dev", "kind": "user",
                "role": null, "workload": null, "environment": null,
                "actor": "admin"}),
        &tokens,
    );
    ok(&f, Some(&admin), &["identity", "revoke", "dev"]);
    assert_eq!(log_size(&f), n + 1, "revoking again changes nothing");
    ok(&f, None, &["log", "verify"]);
}

#[test]
fn a_grant_whose_log_entry_cannot_be_written_changes_nothing() {
    let f = Fixture::new();
    let admin = token_of(&ok(&f, None, &["identity", "add", "admin"]));
    ok(&f, Some(&admin), &["identity", "add", "dev"]);
    let roles = ok(&f, Some(&admin), &["--json", "role", "list"]).stdout;
    let size = log_size(&f);

    // The log directory is read-only for this one cairn process.
    let log = f.data.join("log");
    let script = format!(
        "mount --bind {log} {log} && mount -o remount,bind,ro {log} && exec \"$0\" \"$@\"",
        log = log.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(env!("CARGO_BIN_EXE_cairn"))
        .args(["role", "grant", "dev", "platform-admin"])
        .current_dir(&f.repo)
        .env("CAIRN_HOME", &f.data)
        .env("CAIRN_TOKEN", &admin)
        .env_remove("CAIRN_PLATFORM_DIR")
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("audit log"),
        "the error names the log: {r:?}"
    );
    assert!(
        r.stderr.contains("nothing was changed"),
        "the error says nothing changed: {r:?}"
    );
    assert_eq!(
        ok(&f, Some(&admin), &["--json", "role", "list"]).stdout,
        roles,
        "the bindings are unchanged"
    );
    assert_eq!(log_size(&f), size);
}

fn sha256_hex(text: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_forge_login_is_linked_to_an_identity_through_the_audit_log() {
    let f = Fixture::new();
    let admin = token_of(&ok(&f, None, &["identity", "add", "admin"]));
    let bob = token_of(&ok(
        &f,
        Some(&admin),
        &["identity", "add", "bob@example.org"],
    ));
    let before = log_size(&f);
    let linked = ok(
        &f,
        Some(&admin),
        &[
            "identity",
            "link",
            "bob@example.org",
            "--forge",
            "github",
            "--login",
            "bob-gh",
        ],
    );
    assert!(linked.stdout.contains("github login bob-gh"), "{linked:?}");
    logged_once(
        &f,
        before,
        &json!({
            "action": "forge-link", "identity": "bob@example.org", "forgeLogin": "github:bob-gh",
            "kind": null, "role": null, "workload": null, "environment": null, "actor": "admin",
        }),
        &[&admin, &bob],
    );
    // Only an identity manager may link; bad names and unknown identities are refused.
    let denied = as_(
        &f,
        Some(&bob),
        &[
            "identity",
            "link",
            "bob@example.org",
            "--forge",
            "github",
            "--login",
            "x",
        ],
    );
    assert_eq!(denied.code, 1, "{denied:?}");
    assert!(denied.stderr.contains("manage-identities"), "{denied:?}");
    for (forge, login, name, says) in [
        ("bitbucket", "bob", "bob@example.org", "forge"),
        ("github", "bob/../x", "bob@example.org", "forge login"),
        ("github", "ghost", "nobody@example.org", "no identity"),
    ] {
        let r = as_(
            &f,
            Some(&admin),
            &["identity", "link", name, "--forge", forge, "--login", login],
        );
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains(says), "{r:?}");
    }
    assert_eq!(log_size(&f), before + 1, "refusals write nothing");
}

#[test]
fn a_token_with_an_expiry_works_until_then_and_says_when() {
    let f = Fixture::new();
    let admin = token_of(&ok(&f, None, &["identity", "add", "admin"]));
    let temp = token_of(&ok(
        &f,
        Some(&admin),
        &[
            "identity",
            "add",
            "contractor@example.org",
            "--expires-in",
            "7",
        ],
    ));
    ok(
        &f,
        Some(&admin),
        &["role", "grant", "contractor@example.org", "viewer"],
    );
    let who = ok(&f, Some(&temp), &["identity", "whoami"]);
    assert!(who.stdout.contains("contractor@example.org"), "{who:?}");
    let list = f
        .cairn(&["--json", "identity", "list"])
        .env("CAIRN_TOKEN", &admin)
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "contractor@example.org")
        .unwrap();
    assert!(entry["expires_at"].is_string(), "{entry}");
    // Past its expiry (moved into the past in the store), it is refused like a revoked one.
    f.tamper(
        "UPDATE identities SET expires_at_ms = 1 WHERE name = ?",
        &["contractor@example.org"],
    );
    let refused = as_(&f, Some(&temp), &["identity", "whoami"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("no active identity"), "{refused:?}");
    let listed = ok(&f, Some(&admin), &["identity", "list"]).stdout;
    assert!(listed.contains("expired"), "{listed}");
    // Days are bounded.
    let bad = as_(
        &f,
        Some(&admin),
        &["identity", "add", "x@example.org", "--expires-in", "0"],
    );
    assert_eq!(bad.code, 1, "{bad:?}");
}
