//! Gates, review, roles and promotion end to end with the real binary: the example
//! web app goes run → staging → production with a second identity's approval;
//! without it, with the author's own, skipping staging, or after a failed
//! acceptance test, production is denied and `cairn explain promotion` names the
//! rule; evidence that does not verify is named. Every change is in the audit log with a verified inclusion proof; a
//! rollback goes through the gate again; a deployment whose log entry cannot be
//! written does not happen.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command;

use common::{Fixture, Run, Team, as_, team};
use serde_json::Value;

/// Runs the chain as `token`'s identity (once there are identities, a run
/// needs one allowed to run the workload) and returns the image it built.
fn built_image(f: &Fixture, token: &str) -> String {
    let r = as_(f, token, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Promotes `digest` to staging as the release manager; returns its URL there.
fn stage(t: &Team, digest: &str) -> String {
    let r = as_(
        &t.f,
        &t.rita,
        &["--json", "promote", "hello-web", digest, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let staged: Value = serde_json::from_str(&r.stdout).unwrap();
    staged["deployment"]["detail"].as_str().unwrap().to_owned()
}

fn get(url: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end='')",
            url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn denied_by(t: &Team, r: &Run, rule: &str) {
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&format!("[{rule}]")), "{rule}: {r:?}");
    let explain = t.f.ok(&["explain", "promotion"]).stdout;
    assert!(explain.contains(&format!("rule {rule}:")), "{explain}");
}

#[test]
fn run_to_staging_to_production_with_a_second_identitys_approval() {
    let t = team();
    let f = &t.f;
    let digest = built_image(f, &t.dev);

    // A developer may not promote: the roles say so before any gate.
    let r = as_(
        f,
        &t.dev,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("promote"), "{r:?}");

    // Staging: tests passed on this digest, provenance, catalog base; no approval needed.
    let url = stage(&t, &digest);
    assert_eq!(get(&format!("{url}/")), "hello from cairn\n");

    // Production without an approval: denied by the review rule, nothing deployed.
    let r = as_(
        f,
        &t.rita,
        &["promote", "hello-web", &digest, "--to", "production"],
    );
    denied_by(&t, &r, "review");
    // The author's own approval does not count.
    let r = as_(f, &t.author, &["review", "approve"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("does not count"), "{r:?}");
    let r = as_(
        f,
        &t.rita,
        &["promote", "hello-web", &digest, "--to", "production"],
    );
    denied_by(&t, &r, "review");
    // A second maintainer's approval does.
    assert_eq!(as_(f, &t.bob, &["review", "approve"]).code, 0);
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
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let prod: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(prod["allow"], true);
    assert!(prod["vsa_evidence"].as_i64().is_some(), "{prod}");

    let status = as_(f, &t.rita, &["--json", "status"]);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let envs: Vec<(&str, &str, bool)> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["environment"].as_str().unwrap(),
                s["digest"].as_str().unwrap(),
                s["running"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        envs.contains(&("staging", digest.as_str(), true)),
        "{envs:?}"
    );
    assert!(
        envs.contains(&("production", digest.as_str(), true)),
        "{envs:?}"
    );

    // The VSA is signed evidence about the digest.
    let evidence = f.json(&["evidence", &digest]);
    let types: Vec<&str> = evidence
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["predicate_type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"https://slsa.dev/verification_summary/v1"),
        "{types:?}"
    );
    // Its verifier and the provenance's builder name this installation, the
    // same one (issue 15: both were constants shared by every installation).
    let export = f.data.with_file_name("evidence-of-digest");
    let listed = f.json(&["evidence", &digest, "--export", export.to_str().unwrap()]);
    let (public, log) = (f.signing_key(), f.log_verifier());
    let statements: Vec<Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let bytes = std::fs::read(e["file"].as_str().unwrap()).unwrap();
            let bundle = cairn_evidence::Bundle::from_json(&bytes).unwrap();
            serde_json::from_slice(bundle.verify_with_log(&public, &log).unwrap()).unwrap()
        })
        .collect();
    let of = |ty: &str| {
        statements
            .iter()
            .find(|s| s["predicateType"] == ty)
            .unwrap_or_else(|| panic!("no {ty} in {statements:?}"))
    };
    let verifier = of("https://slsa.dev/verification_summary/v1")["predicate"]["verifier"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let builder = of("https://slsa.dev/provenance/v1")["predicate"]["runDetails"]["builder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    println!("verifier {verifier}, builder {builder}");
    assert_eq!(
        verifier.strip_prefix("urn:cairn:verifier:"),
        builder.strip_prefix("urn:cairn:builder:"),
        "{verifier} / {builder}"
    );

    // Every change is in the log with a verified inclusion proof.
    let audit = f.json(&["audit"]);
    let kinds: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["deploy", "denied", "denied", "deploy", "policy-change"],
        "newest first; the policies in force were recorded before their first decision: {audit}"
    );
    for c in audit.as_array().unwrap() {
        assert_eq!(c["proof"]["verified"], true, "{c}");
    }
    // The policies in force are the system's change, not the promoter's: rita
    // only made cairn look at them first.
    let policy = &audit[4];
    assert_eq!(policy["actor"], "cairn-policy", "{policy}");
    assert_eq!(
        policy["record"]["noticed_for"], "rita@example.org",
        "{policy}"
    );
    // The production record keeps both reviews, the author's marked as not
    // counted, with the reason; bob's counted.
    let approvals = audit[0]["record"]["approvals"].as_array().unwrap();
    let marks: Vec<(&str, bool, Option<&str>)> = approvals
        .iter()
        .map(|a| {
            (
                a["reviewer"].as_str().unwrap(),
                a["counted"].as_bool().unwrap(),
                a["not_counted"].as_str(),
            )
        })
        .collect();
    assert!(
        marks.contains(&(
            "author@example.invalid",
            false,
            Some("author@example.invalid approved their own commit")
        )),
        "{marks:?}"
    );
    assert!(
        marks.contains(&("bob@example.org", true, None)),
        "{marks:?}"
    );
    let text = as_(f, &t.rita, &["audit"]);
    println!("{}", text.stdout);
    assert!(
        text.stdout.contains(
            "review: author@example.invalid approve (not counted: author@example.invalid approved their own commit)"
        ),
        "{text:?}"
    );

    // A new commit that skips staging is denied, even approved.
    f.write("README", "a new commit\n").commit("second");
    let second = built_image(f, &t.dev);
    assert_ne!(second, digest);
    assert_eq!(as_(f, &t.bob, &["review", "approve"]).code, 0);
    let r = as_(
        f,
        &t.rita,
        &["promote", "hello-web", &second, "--to", "production"],
    );
    denied_by(&t, &r, "promotion-path");

    // Staging takes it; a rollback of staging goes back through the gate and runs the first.
    assert_eq!(
        as_(
            f,
            &t.rita,
            &["promote", "hello-web", &second, "--to", "staging"]
        )
        .code,
        0
    );
    let r = as_(
        f,
        &t.rita,
        &["--json", "rollback", "hello-web", "--env", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let back: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(back["deployment"]["digest"], digest.as_str());
    let _ = &t.admin;
}

#[test]
fn a_failed_acceptance_test_is_denied_and_a_deploy_without_its_log_entry_cannot_happen() {
    let t = team();
    let f = &t.f;
    // The RC does not pass its HTTP checks: the run fails at acceptance tests.
    let config = std::fs::read_to_string(f.repo.join("cairn.toml")).unwrap();
    f.write(
        "cairn.toml",
        &config.replace("contains = \"hello from cairn\"", "contains = \"goodbye\""),
    )
    .commit("expect another greeting");
    let r = as_(f, &t.dev, &["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    let digest = f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = as_(
        f,
        &t.rita,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    denied_by(&t, &r, "tests");
    let status = as_(f, &t.rita, &["--json", "status"]);
    assert_eq!(status.stdout.trim(), "[]", "{status:?}");

    // A good build, but the audit log cannot be written: nothing is deployed.
    f.write("cairn.toml", &config)
        .commit("expect the greeting again");
    let good = built_image(f, &t.dev);
    let log = f.data.join("log");
    let script = format!(
        "mount --bind {log} {log} && mount -o remount,bind,ro {log} && exec \"$0\" \"$@\"",
        log = log.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(env!("CARGO_BIN_EXE_cairn"))
        .args(["promote", "hello-web", &good, "--to", "staging"])
        .current_dir(&f.repo)
        .env("CAIRN_HOME", &f.data)
        .env("CAIRN_TOKEN", &t.rita)
        .env_remove("CAIRN_PLATFORM_DIR")
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("log"), "the error names the log: {r:?}");
    let status = as_(f, &t.rita, &["--json", "status"]);
    assert_eq!(
        status.stdout.trim(),
        "[]",
        "the environment is unchanged: {status:?}"
    );

    // Bad input: an override without a reason, an unknown environment.
    let r = as_(
        f,
        &t.rita,
        &[
            "promote",
            "hello-web",
            &good,
            "--to",
            "staging",
            "--override",
            "",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let r = as_(f, &t.rita, &["promote", "hello-web", &good, "--to", "moon"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not on the promotion path"), "{r:?}");
    let r = Run::from(
        f.cairn(&["promote", "hello-web", &good, "--to", "staging"])
            .env("CAIRN_TOKEN", "cairn_not-a-token")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "an unknown token: {r:?}");
}

#[test]
fn a_gitops_environment_gets_a_digest_pinned_commit_per_change_and_rollback_writes_a_new_one() {
    let t = team();
    let f = &t.f;
    // A change-management system: every change record is POSTed to it.
    let (sink_url, received) = change_receiver(4);
    let (_gitops, repo, platform) =
        common::gitops_staging(&format!("\n[changes]\nwebhook = \"{sink_url}\"\n"));
    let promote = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let r = Run::from(
            f.cairn(&all)
                .env("CAIRN_TOKEN", &t.rita)
                .env("CAIRN_PLATFORM_DIR", platform.path())
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{r:?}");
        serde_json::from_str::<Value>(&r.stdout).unwrap()
    };
    let first = built_image(f, &t.dev);
    promote(&["promote", "hello-web", &first, "--to", "staging"]);
    f.write("README", "second\n").commit("second");
    let second = built_image(f, &t.dev);
    let out = promote(&["promote", "hello-web", &second, "--to", "staging"]);
    assert!(
        out["deployment"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("commit "),
        "{out}"
    );
    let back = promote(&["rollback", "hello-web", "--env", "staging"]);
    assert_eq!(back["deployment"]["digest"], first.as_str());
    assert_eq!(
        back["change_delivery"], "delivered to the change webhook",
        "{back}"
    );
    let bodies = received.join().unwrap();
    let kinds: Vec<&str> = bodies.iter().map(|b| b["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["policy-change", "deploy", "deploy", "rollback"],
        "{bodies:?}"
    );
    assert_eq!(bodies[3]["to"], first.as_str());
    assert_eq!(bodies[3]["actor"], "rita@example.org");

    let log = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["log", "--format=%s%n%b%n--"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert_eq!(log.matches("Cairn-Change:").count(), 3, "{log}");
    assert!(log.contains("Cairn-Change: rollback"), "{log}");
    assert!(log.contains("Cairn-Actor: rita@example.org"), "{log}");
    let manifest =
        std::fs::read_to_string(repo.join("envs/staging/hello-web/workload.yaml")).unwrap();
    assert!(
        manifest.contains(&format!("registry.example.org/apps/hello-web@{first}")),
        "the rollback pins the first digest: {manifest}"
    );
}

/// A change-management system on loopback: answers `count` POSTs with 200 and
/// returns their JSON bodies.
fn change_receiver(count: usize) -> (String, std::thread::JoinHandle<Vec<Value>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/changes", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for _ in 0..count {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            bodies.push(serde_json::from_slice(&body).unwrap());
        }
        bodies
    });
    (url, handle)
}

#[test]
fn evidence_with_a_bad_signature_or_about_another_digest_does_not_count() {
    let t = team();
    let f = &t.f;
    let first = built_image(f, &t.dev);
    f.write("README", "second\n").commit("second");
    let second = built_image(f, &t.dev);

    // The second image's acceptance result, its signature broken in the store.
    f.tamper(
        "UPDATE evidence SET bundle = CAST(replace(CAST(bundle AS TEXT), '\"sig\":\"', '\"sig\":\"AAAA') AS BLOB) \
         WHERE subject_digest = ? AND predicate_type LIKE '%test-result%'",
        &[&second],
    );
    let r = as_(
        f,
        &t.rita,
        &["promote", "hello-web", &second, "--to", "staging"],
    );
    denied_by(&t, &r, "tests");
    // Not dropped silently: the bundle is named.
    assert!(
        r.stderr.contains("[evidence] bundle ") && r.stderr.contains("failed verification"),
        "{r:?}"
    );

    // The first image's evidence, filed under the second digest: its statement is
    // about the first, so the gate does not count it, and names it.
    f.tamper(
        "INSERT INTO evidence (run_id, stage_id, predicate_type, subject_name, subject_digest, bundle, created_at_ms) \
         SELECT run_id, stage_id, predicate_type, subject_name, ?, bundle, created_at_ms FROM evidence \
         WHERE subject_digest = ? AND predicate_type LIKE '%test-result%'",
        &[&second, &first],
    );
    let r = as_(
        f,
        &t.rita,
        &["promote", "hello-web", &second, "--to", "staging"],
    );
    denied_by(&t, &r, "tests");
    assert!(
        r.stderr.contains(&format!(
            "is filed under {second}, but its signed statement is about {first}"
        )),
        "{r:?}"
    );
    // The untouched first image still promotes.
    assert_eq!(
        as_(
            f,
            &t.rita,
            &["promote", "hello-web", &first, "--to", "staging"]
        )
        .code,
        0
    );

    // A malformed organisation policy: refused with its file, line and column; nothing moves.
    let platform = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(platform.path().join("policy")).unwrap();
    std::fs::write(
        platform.path().join("policy/bad.rego"),
        "package cairn.gate\n\ndeny contains x if {\n",
    )
    .unwrap();
    let r = Run::from(
        f.cairn(&["promote", "hello-web", &first, "--to", "staging"])
            .env("CAIRN_TOKEN", &t.rita)
            .env("CAIRN_PLATFORM_DIR", platform.path())
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("bad.rego:"),
        "names the file and line: {r:?}"
    );
}

/// Whether something accepts connections on `url`'s port (`http://127.0.0.1:PORT`).
fn answers(url: &str) -> bool {
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_millis(500),
    )
    .is_ok()
}

/// The size of the fixture's audit log.
fn log_size(f: &Fixture) -> u64 {
    f.json(&["log", "show"])["size"].as_u64().unwrap()
}

#[test]
fn undeploy_stops_a_local_deployment_as_a_logged_change_and_a_developer_may_not() {
    let t = team();
    let f = &t.f;
    let digest = built_image(f, &t.dev);
    let url = stage(&t, &digest);
    assert_eq!(get(&format!("{url}/")), "hello from cairn\n");
    // The deployment's sandbox, as its record names it (cgroups, pid).
    let record = cairn_engine::DataDir::at(&f.data)
        .deployments()
        .join("hello-web/staging.json");
    let record: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    let sandbox =
        cairn_sandbox::DetachedSandbox::from_record(record["sandbox"].as_str().unwrap()).unwrap();
    assert!(sandbox.is_running());

    // A developer may not stop it: the roles say so, nothing is logged, it runs on.
    let log_before = log_size(f);
    let r = as_(f, &t.dev, &["undeploy", "hello-web", "--env", "staging"]);
    println!("developer: exit {}: {}", r.code, r.stderr.trim());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("dev@example.org"), "{r:?}");
    assert!(r.stderr.contains("promote"), "{r:?}");
    assert_eq!(log_size(f), log_before);
    assert_eq!(get(&format!("{url}/")), "hello from cairn\n");
    // Without a token at all: refused too.
    let r = f.run(&["undeploy", "hello-web", "--env", "staging"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(answers(&url));

    // The release manager stops it: logged first, then the sandbox is gone.
    let r = as_(f, &t.rita, &["undeploy", "hello-web", "--env", "staging"]);
    println!("release manager: exit {}: {}", r.code, r.stdout.trim());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "undeploy hello-web → staging: {digest} (local, its sandbox was stopped)"
        )),
        "{r:?}"
    );
    assert!(!answers(&url), "{url} still answers after the undeploy");
    assert!(!sandbox.is_running(), "its sandbox still runs");
    for cgroup in &sandbox.cgroups {
        assert!(!cgroup.exists(), "{} is left", cgroup.display());
    }
    let index = log_size(f) - 1;
    let last = f.json(&["log", "show", &index.to_string()]);
    println!("log entry {index}: {}", last["entry_text"]);
    let entry: Value = serde_json::from_str(last["entry_text"].as_str().unwrap()).unwrap();
    assert_eq!(entry["kind"], "undeploy", "{entry}");
    assert_eq!(entry["spec"]["artifact"], digest.as_str(), "{entry}");
    assert_eq!(entry["spec"]["actor"], "rita@example.org", "{entry}");
    let audit = f.json(&["audit"]);
    let change = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "undeploy")
        .unwrap_or_else(|| panic!("no undeploy change record: {audit}"))
        .clone();
    println!("change: {change}");
    assert_eq!(change["actor"], "rita@example.org", "{change}");
    assert_eq!(change["log_index"], index, "{change}");

    // Reconciliation (every `status`) leaves it stopped and says why.
    let r = f.ok(&["status"]);
    println!("status: {}", r.stdout.trim());
    assert!(
        r.stdout
            .contains("NOT-RUNNING: stopped by `cairn undeploy`"),
        "{r:?}"
    );
    assert!(!answers(&url));

    // Nothing deployed any more: exit 1, saying so; nothing logged.
    let log_before = log_size(f);
    let r = as_(f, &t.rita, &["undeploy", "hello-web", "--env", "staging"]);
    println!("again: exit {}: {}", r.code, r.stderr.trim());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("nothing of hello-web is deployed in staging: its last deployment"),
        "{r:?}"
    );
    let r = as_(
        f,
        &t.rita,
        &["undeploy", "hello-web", "--env", "production"],
    );
    println!("never deployed: exit {}: {}", r.code, r.stderr.trim());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(
            "nothing of hello-web is deployed in production: cairn has no deployment of it there"
        ),
        "{r:?}"
    );
    assert_eq!(log_size(f), log_before);

    // The environment takes a new promotion as usual.
    let url = stage(&t, &digest);
    assert_eq!(get(&format!("{url}/")), "hello from cairn\n");
}

#[test]
fn undeploy_of_a_gitops_environment_removes_its_manifests_in_a_commit() {
    let t = team();
    let f = &t.f;
    let (_gitops, repo, platform) = common::gitops_staging("");
    // Someone else's file beside cairn's directory stays.
    std::fs::create_dir_all(repo.join("envs/staging")).unwrap();
    std::fs::write(repo.join("envs/staging/README"), "staging\n").unwrap();
    common::git(&repo, &["add", "."]);
    common::git(&repo, &["commit", "-q", "-m", "start"]);
    let as_rita = |args: &[&str]| {
        Run::from(
            f.cairn(args)
                .env("CAIRN_TOKEN", &t.rita)
                .env("CAIRN_PLATFORM_DIR", platform.path())
                .output()
                .unwrap(),
        )
    };
    let digest = built_image(f, &t.dev);
    let r = as_rita(&["promote", "hello-web", &digest, "--to", "staging"]);
    assert_eq!(r.code, 0, "{r:?}");
    let dir = repo.join("envs/staging/hello-web");
    assert!(dir.join("workload.yaml").exists());

    let r = as_rita(&["undeploy", "hello-web", "--env", "staging"]);
    println!("undeploy: exit {}: {}", r.code, r.stdout.trim());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("(gitops, commit "), "{r:?}");
    assert!(!dir.exists(), "the workload's directory is still there");
    assert!(repo.join("envs/staging/README").exists());
    let log = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["log", "-1", "--format=%s%n%b"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout).into_owned();
    println!("commit: {log}");
    assert!(
        log.starts_with(&format!("undeploy hello-web from staging: {digest}")),
        "{log}"
    );
    assert!(log.contains("Cairn-Change: undeploy"), "{log}");
    assert!(log.contains("Cairn-Actor: rita@example.org"), "{log}");
    let status = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["status", "--porcelain"])
        .output()
        .unwrap();
    assert!(status.stdout.is_empty(), "work tree not clean: {status:?}");

    // Reconciliation does not take the removal for someone else's edit, nor
    // bring the deployment back.
    let r = Run::from(
        f.cairn(&["status"])
            .env("CAIRN_PLATFORM_DIR", platform.path())
            .output()
            .unwrap(),
    );
    println!("status: {}", r.stdout.trim());
    assert!(
        r.stdout
            .contains("NOT-RUNNING: stopped by `cairn undeploy`"),
        "{r:?}"
    );
    let r = as_rita(&["undeploy", "hello-web", "--env", "staging"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("nothing of hello-web is deployed in staging"),
        "{r:?}"
    );
}
