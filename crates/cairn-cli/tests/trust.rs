//! What a gate may believe, attacked end to end with the real binary, real git
//! and real bubblewrap: tampered evidence (a flipped byte, a moved row, an
//! edited stage kind) is named and denied; the identity that ran a change can
//! not approve it under a spoofed git author; signed commits bind an identity
//! and can be required; an override's VSA says FAILED and `cairn status` marks
//! it until a clean promotion; production rolls back without touching staging.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command;

use common::{Fixture, Run, Team, as_, team};
use serde_json::Value;

/// `cairn run` (as `token`'s identity when given); the newest image's digest.
fn run_as(f: &Fixture, token: Option<&str>, expect: i32) -> String {
    let mut cmd = f.cairn(&["run"]);
    if let Some(t) = token {
        cmd.env("CAIRN_TOKEN", t);
    }
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, expect, "{r:?}");
    f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Rows of `sql` on the fixture's store (read through Python's sqlite3).
fn query(f: &Fixture, sql: &str, params: &[&str]) -> Vec<Vec<String>> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,json; c=sqlite3.connect(sys.argv[1]); print(json.dumps([[str(v) for v in r] for r in c.execute(sys.argv[2], sys.argv[3:])]))",
        ])
        .arg(f.data.join("cairn.db"))
        .arg(sql)
        .args(params)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Flips one bit of one byte in the middle of the signed payload of bundle `id`.
fn flip_a_byte(f: &Fixture, id: &str) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys\n\
             c=sqlite3.connect(sys.argv[1]); i=int(sys.argv[2])\n\
             b=bytearray(c.execute('SELECT bundle FROM evidence WHERE id=?',(i,)).fetchone()[0])\n\
             at=bytes(b).index(b'\"payload\":\"')+11+40\n\
             b[at]^=0x02\n\
             c.execute('UPDATE evidence SET bundle=? WHERE id=?',(bytes(b),i)); c.commit()",
        ])
        .arg(f.data.join("cairn.db"))
        .arg(id)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn explain(f: &Fixture) -> String {
    f.ok(&["explain", "promotion"]).stdout
}

fn promote(t: &Team, token: &str, digest: &str, env: &str) -> Run {
    as_(&t.f, token, &["promote", "hello-web", digest, "--to", env])
}

#[test]
fn tampered_evidence_is_named_and_denied() {
    let t = team();
    let f = &t.f;

    // The attack: the acceptance test fails on the RC, then the rows
    // are edited so that the failed result files under the unit-test stage and
    // the unit-test result about the image under the acceptance stage.
    let config = std::fs::read_to_string(f.repo.join("cairn.toml")).unwrap();
    f.write(
        "cairn.toml",
        &config.replace("contains = \"hello from cairn\"", "contains = \"goodbye\""),
    )
    .commit("expect another greeting");
    let failed = run_as(f, Some(&t.author), 1);
    let rows = query(
        f,
        "SELECT e.id, s.kind FROM evidence e JOIN stages s ON s.id = e.stage_id \
         WHERE e.subject_digest = ? AND e.predicate_type LIKE '%test-result%' ORDER BY e.id",
        &[&failed],
    );
    let id_of = |kind: &str| {
        rows.iter()
            .find(|r| r[1] == kind)
            .map(|r| r[0].clone())
            .unwrap_or_else(|| panic!("no {kind} result: {rows:?}"))
    };
    let (unit, acceptance) = (id_of("unit-test"), id_of("acceptance-test"));
    f.tamper(
        "UPDATE evidence SET stage_id = (SELECT id FROM stages WHERE run_id = evidence.run_id AND kind = 'unit-test') WHERE id = ?",
        &[&acceptance],
    );
    f.tamper(
        "UPDATE evidence SET stage_id = (SELECT id FROM stages WHERE run_id = evidence.run_id AND kind = 'acceptance-test') WHERE id = ?",
        &[&unit],
    );
    let r = promote(&t, &t.rita, &failed, "staging");
    println!("moved rows → promote: {r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    for id in [&unit, &acceptance] {
        assert!(
            r.stderr.contains(&format!("[evidence] bundle {id} ")),
            "bundle {id} is named: {r:?}"
        );
    }
    assert!(
        r.stderr
            .contains("failed verification: its row files it under stage"),
        "{r:?}"
    );
    // The signed stage kind still says the acceptance test failed.
    assert!(r.stderr.contains("[tests] acceptance-test failed"), "{r:?}");
    let why = explain(f);
    println!("cairn explain promotion:\n{why}");
    assert!(
        why.contains(&format!("rule evidence: bundle {acceptance} ")),
        "{why}"
    );

    // A good image: one flipped byte in its acceptance result's payload.
    f.write("cairn.toml", &config)
        .commit("expect the greeting again");
    let good = run_as(f, Some(&t.author), 0);
    let acceptance = query(
        f,
        "SELECT e.id FROM evidence e JOIN stages s ON s.id = e.stage_id \
         WHERE e.subject_digest = ? AND s.kind = 'acceptance-test'",
        &[&good],
    )[0][0]
        .clone();
    flip_a_byte(f, &acceptance);
    let r = promote(&t, &t.rita, &good, "staging");
    println!("flipped byte → promote: {r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("[evidence] bundle {acceptance} "))
            && r.stderr.contains("failed verification"),
        "{r:?}"
    );
    assert!(explain(f).contains(&format!("rule evidence: bundle {acceptance} ")));
    flip_a_byte(f, &acceptance);
    assert_eq!(
        promote(&t, &t.rita, &good, "staging").code,
        0,
        "restored, it promotes"
    );

    // A stage's kind edited in the store: the row no longer matches what the
    // bundles sign.
    f.tamper(
        "UPDATE stages SET kind = 'unit-test' WHERE kind = 'acceptance-test' AND run_id = (SELECT run_id FROM evidence WHERE id = ?)",
        &[&acceptance],
    );
    let r = promote(&t, &t.rita, &good, "staging");
    println!("edited stage kind → promote: {r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("[evidence] bundle {acceptance} ")),
        "{r:?}"
    );
    // `cairn policy eval` shows the same report in the gate's input.
    let eval = Run::from(
        f.cairn(&[
            "--json",
            "policy",
            "eval",
            "hello-web",
            &good,
            "--to",
            "staging",
        ])
        .env("CAIRN_TOKEN", &t.rita)
        .output()
        .unwrap(),
    );
    assert!(eval.stdout.contains("\"failures\""), "{eval:?}");
    let _ = (&t.admin, &t.author, &t.bob, &t.carol);
}

#[test]
fn who_ran_a_change_cannot_approve_it_under_a_spoofed_author() {
    let t = team();
    let f = &t.f;
    // Bob, a maintainer, commits as if carol wrote it, runs it with his own
    // token and approves it with his own token.
    f.write("README", "bob's change\n");
    common::git(&f.repo, &["add", "-A"]);
    common::git(
        &f.repo,
        &[
            "commit",
            "-q",
            "--author=Other Maintainer <carol@example.org>",
            "-m",
            "looks like carol's",
        ],
    );
    let digest = run_as(f, Some(&t.bob), 0);
    let r = as_(f, &t.bob, &["review", "approve"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(promote(&t, &t.rita, &digest, "staging").code, 0);
    let r = promote(&t, &t.rita, &digest, "production");
    println!("spoofed author → promote production: {r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("[review]"), "{r:?}");
    assert!(
        r.stderr
            .contains("bob@example.org may not approve: bob@example.org ran run"),
        "{r:?}"
    );
    let why = explain(f);
    println!("cairn explain promotion:\n{why}");
    assert!(why.contains("rule review:"), "{why}");
    assert!(why.contains("bob@example.org may not approve"), "{why}");
    // The named git author (carol) does not count either: the e-mail adds
    // her as an author. A maintainer who is none of them does.
    assert_eq!(as_(f, &t.carol, &["review", "approve"]).code, 0);
    let r = promote(&t, &t.rita, &digest, "production");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("carol@example.org may not approve"),
        "{r:?}"
    );
    assert_eq!(
        as_(
            f,
            &t.admin,
            &[
                "role",
                "grant",
                "admin@example.org",
                "maintainer",
                "--workload",
                "hello-web"
            ]
        )
        .code,
        0
    );
    assert_eq!(as_(f, &t.admin, &["review", "approve"]).code, 0);
    let r = promote(&t, &t.rita, &digest, "production");
    assert_eq!(
        r.code, 0,
        "a maintainer who neither ran nor wrote it approves: {r:?}"
    );
    let _ = &t.author;
}

#[test]
fn signed_commits_bind_an_identity_and_can_be_required() {
    let t = team();
    let f = &t.f;
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("carol");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "carol", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = keys.path().join("carol.pub");

    // Registering a key needs identity management, is audit-logged, refuses junk.
    let r = as_(
        f,
        &t.bob,
        &[
            "identity",
            "add-key",
            "carol@example.org",
            public.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "a maintainer may not: {r:?}");
    std::fs::write(keys.path().join("junk.pub"), "ssh-ed25519 not-base64!\n").unwrap();
    let r = as_(
        f,
        &t.admin,
        &[
            "identity",
            "add-key",
            "carol@example.org",
            keys.path().join("junk.pub").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let r = as_(
        f,
        &t.admin,
        &[
            "identity",
            "add-key",
            "carol@example.org",
            public.to_str().unwrap(),
        ],
    );
    println!("add-key: {r:?}");
    assert_eq!(r.code, 0, "{r:?}");
    let size = f.json(&["log", "show"])["size"].as_u64().unwrap();
    let entry = f.json(&["log", "show", &(size - 1).to_string()]);
    let text = entry["entry_text"].as_str().unwrap_or_default().to_owned();
    println!("audit log entry {}: {text}", size - 1);
    assert!(
        text.contains("signing-key-add") && text.contains("SHA256:"),
        "{entry}"
    );

    // Production runs the first commit (before the organisation required
    // signatures); the change of what comes next is counted from it.
    let first = run_as(f, Some(&t.author), 0);
    assert_eq!(promote(&t, &t.rita, &first, "staging").code, 0);
    assert_eq!(as_(f, &t.bob, &["review", "approve"]).code, 0);
    assert_eq!(promote(&t, &t.rita, &first, "production").code, 0);

    let platform = tempfile::tempdir().unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        "[review]\nrequire_signed_commits = [\"production\"]\n",
    )
    .unwrap();
    let with_org = |token: &str, args: &[&str]| {
        Run::from(
            f.cairn(args)
                .env("CAIRN_TOKEN", token)
                .env("CAIRN_PLATFORM_DIR", platform.path())
                .output()
                .unwrap(),
        )
    };

    // A commit signed with carol's key: carol signed it, so her approval
    // does not count; bob's does, and the signed change passes.
    f.write("README", "signed\n");
    common::git(&f.repo, &["add", "-A"]);
    common::git(
        &f.repo,
        &[
            "-c",
            "gpg.format=ssh",
            "-c",
            &format!("user.signingkey={}", key.display()),
            "commit",
            "-q",
            "-S",
            "-m",
            "signed by carol",
        ],
    );
    let r = with_org(&t.rita, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let signed = f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let logs = f.ok(&["logs", "last"]).stdout;
    assert!(
        logs.contains("1 with a verified signature of a registered key"),
        "{logs}"
    );
    assert_eq!(
        with_org(
            &t.rita,
            &["promote", "hello-web", &signed, "--to", "staging"]
        )
        .code,
        0
    );
    assert_eq!(as_(f, &t.carol, &["review", "approve"]).code, 0);
    let r = with_org(
        &t.rita,
        &["promote", "hello-web", &signed, "--to", "production"],
    );
    println!("carol approves what she signed → {r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("carol@example.org may not approve: carol@example.org signed commit"),
        "{r:?}"
    );
    assert_eq!(as_(f, &t.bob, &["review", "approve"]).code, 0);
    let r = with_org(
        &t.rita,
        &["promote", "hello-web", &signed, "--to", "production"],
    );
    println!("bob approves the signed change → {r:?}");
    assert_eq!(r.code, 0, "{r:?}");

    // An unsigned commit on top: production requires signed commits.
    f.write("README", "unsigned\n").commit("not signed");
    let r = with_org(&t.rita, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let unsigned = f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        with_org(
            &t.rita,
            &["promote", "hello-web", &unsigned, "--to", "staging"]
        )
        .code,
        0
    );
    assert_eq!(as_(f, &t.bob, &["review", "approve"]).code, 0);
    let r = with_org(
        &t.rita,
        &["promote", "hello-web", &unsigned, "--to", "production"],
    );
    println!("unsigned commit → {r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("[signed-commits]"), "{r:?}");
    assert!(r.stderr.contains("has no signature that verifies"), "{r:?}");
}

#[test]
fn an_override_gets_a_failed_vsa_and_status_marks_it_until_a_clean_promotion() {
    let t = team();
    let f = &t.f;
    let digest = run_as(f, Some(&t.author), 0);
    assert_eq!(promote(&t, &t.rita, &digest, "staging").code, 0);
    // No approval: production is denied; break-glass goes through, flagged.
    let r = as_(
        f,
        &t.rita,
        &[
            "--json",
            "promote",
            "hello-web",
            &digest,
            "--to",
            "production",
            "--override",
            "incident 42: hotfix",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    let vsa_id = out["vsa_evidence"].as_i64().unwrap();

    // The VSA verifies as a signature (and its log entry), and says FAILED
    // with the override, its actor and its reason.
    let dir = tempfile::tempdir().unwrap();
    f.ok(&[
        "evidence",
        &digest,
        "--export",
        dir.path().to_str().unwrap(),
    ]);
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{vsa_id}-"))
        })
        .unwrap()
        .path();
    let bundle = cairn_evidence::Bundle::from_json(&std::fs::read(&file).unwrap()).unwrap();
    let payload = bundle
        .verify_with_log(&f.signing_key(), &f.log_verifier())
        .unwrap();
    let vsa = cairn_evidence::vsa::Vsa::from_statement_json(payload).unwrap();
    println!(
        "override VSA predicate: {}",
        serde_json::to_string(&vsa.predicate).unwrap()
    );
    assert_eq!(
        vsa.predicate.verification_result,
        cairn_evidence::vsa::VerificationResult::Failed
    );
    assert_eq!(vsa.predicate.verified_levels, ["FAILED"]);
    let o = vsa.predicate.override_.as_ref().unwrap();
    assert_eq!(o.actor, "rita@example.org");
    assert_eq!(o.reason, "incident 42: hotfix");
    assert!(o.denied_by.iter().any(|d| d.rule == "review"), "{o:?}");

    // `cairn status` marks production as overridden, text and JSON.
    let status = f.ok(&["status"]).stdout;
    println!("cairn status:\n{status}");
    assert!(status.contains("OVERRIDDEN"), "{status}");
    assert!(status.contains("incident 42: hotfix"), "{status}");
    let rows = f.json(&["status"]);
    let prod = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["environment"] == "production")
        .unwrap();
    assert_eq!(
        prod["overridden"]["reason"], "incident 42: hotfix",
        "{prod}"
    );
    assert_eq!(prod["overridden"]["actor"], "rita@example.org", "{prod}");
    let staging = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["environment"] == "staging")
        .unwrap();
    assert!(staging["overridden"].is_null(), "{staging}");

    // A clean promotion (approved) replaces it: no longer marked.
    assert_eq!(as_(f, &t.bob, &["review", "approve"]).code, 0);
    let r = promote(&t, &t.rita, &digest, "production");
    assert_eq!(r.code, 0, "{r:?}");
    let status = f.ok(&["status"]).stdout;
    println!("after a clean promotion:\n{status}");
    assert!(!status.contains("OVERRIDDEN"), "{status}");
}

#[test]
fn production_rolls_back_to_a_digest_it_ran_without_touching_staging() {
    let t = team();
    let f = &t.f;
    let first = run_as(f, Some(&t.author), 0);
    assert_eq!(promote(&t, &t.rita, &first, "staging").code, 0);
    assert_eq!(as_(f, &t.bob, &["review", "approve"]).code, 0);
    assert_eq!(promote(&t, &t.rita, &first, "production").code, 0);
    f.write("README", "second\n").commit("second");
    let second = run_as(f, Some(&t.author), 0);
    assert_eq!(promote(&t, &t.rita, &second, "staging").code, 0);
    assert_eq!(as_(f, &t.bob, &["review", "approve"]).code, 0);
    assert_eq!(promote(&t, &t.rita, &second, "production").code, 0);

    // Production goes back to the first digest; staging keeps the second.
    let r = as_(
        f,
        &t.rita,
        &["rollback", "hello-web", "--env", "production"],
    );
    println!("rollback production: {r:?}");
    assert_eq!(r.code, 0, "{r:?}");
    let rows = f.json(&["status"]);
    let at = |env: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["environment"] == env)
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(at("production"), first);
    assert_eq!(at("staging"), second, "staging was not touched");

    // A promote (not a rollback) of a digest staging does not run still needs
    // staging, even though production ran it.
    let r = promote(&t, &t.rita, &first, "production");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("[promotion-path]"), "{r:?}");
}

#[test]
fn a_rebase_does_not_sign_a_commit_the_image_row_was_edited_to() {
    let f = Fixture::example("hello-web");
    f.ok(&["base", "create", "tiny", "--name", "tiny"]);
    let digest = run_as(&f, None, 0);
    // A newer `tiny` to rebase onto.
    let newer = tempfile::tempdir().unwrap();
    let root = newer.path();
    for (p, t) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/os-release", "NAME=\"cairn tiny\"\nVERSION_ID=2\n"),
    ] {
        std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
        std::fs::write(root.join(p), t).unwrap();
    }
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    f.ok(&["base", "import", root.to_str().unwrap(), "--name", "tiny"]);
    // The image row now claims another (say, approved) commit.
    f.tamper(
        "UPDATE images SET commit_id = '1111111111111111111111111111111111111111' WHERE digest = ?",
        &[&digest],
    );
    let r = f.run(&["rebase", &digest, "--onto", "tiny"]);
    println!("rebase of an edited row: {r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("its signed provenance does not say"),
        "{r:?}"
    );
    assert_eq!(
        f.json(&["image", "list"]).as_array().unwrap().len(),
        1,
        "nothing was made"
    );
}
