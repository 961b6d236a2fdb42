//! The closed loop's knowledge, end to end with the real binary, real
//! bubblewrap and the `hello-web` example image: an advisory imported *after*
//! the build is re-matched against the digest's signed SBOM at decision time
//! and blocks promotion like one found at build time, the decision naming the
//! advisory database's state; and a finding on a digest that runs in an
//! environment is an exposure (`cairn exposures`) with its deadline.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::osv_feed::{OsvServer, npm_record, zip_of};
use common::server::{Up, agent};
use common::{Fixture, Run, as_, token};
use serde_json::Value;

const ADVISORY: &str = "GHSA-cair-n000-0001";
const DECISION_PREDICATE: &str = "urn:cairn:predicate:gate-decision:v1";

/// An npm lockfile naming left-pad 1.3.0, MIT (so the licences rule admits it).
const PACKAGE_LOCK: &str = r#"{
  "name": "hello-web-tools",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": { "name": "hello-web-tools", "version": "1.0.0", "license": "MIT",
          "dependencies": { "left-pad": "1.3.0" } },
    "node_modules/left-pad": {
      "version": "1.3.0",
      "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
      "license": "MIT"
    }
  }
}
"#;

/// A critical (CVSS 9.8) OSV record for left-pad < 1.3.1.
fn advisory_json() -> String {
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": ADVISORY,
        "modified": "2026-12-01T00:00:00Z",
        "published": "2026-12-01T00:00:00Z",
        "summary": "left-pad pads too much",
        "severity": [{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" }],
        "affected": [{
            "package": { "ecosystem": "npm", "name": "left-pad", "purl": "pkg:npm/left-pad" },
            "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "0" }, { "fixed": "1.3.1" }] }]
        }]
    })
    .to_string()
}

/// hello-web with the npm lockfile, on the `tiny` base, built with no advisory
/// known; a release manager (`rita`) and the admin. Returns the image's digest.
fn built() -> (Fixture, String, String, String) {
    let (f, admin, rita) = team();
    let r = as_(&f, &rita, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let digest = f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    (f, admin, rita, digest)
}

/// hello-web with the npm lockfile and the `tiny` base, nothing built yet; the
/// admin and a release manager (`rita`).
fn team() -> (Fixture, String, String) {
    let f = Fixture::example("hello-web");
    f.write("tools/package-lock.json", PACKAGE_LOCK)
        .commit("tools lockfile");
    f.ok(&["base", "create", "tiny", "--name", "tiny"]);
    let admin = token(&f, None, "admin@example.org");
    let rita = token(&f, Some(&admin), "rita@example.org");
    let r = as_(
        &f,
        &admin,
        &[
            "role",
            "grant",
            "rita@example.org",
            "release-manager",
            "--workload",
            "hello-web",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    (f, admin, rita)
}

fn import_advisory(f: &Fixture, token: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{ADVISORY}.json")), advisory_json()).unwrap();
    let r = as_(f, token, &["vulns", "import", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// `cairn policy eval`: (input, denied rules with their messages).
fn eval(f: &Fixture, token: &str, digest: &str, env: &str) -> (Value, Vec<(String, String)>) {
    let r = as_(
        f,
        token,
        &["--json", "policy", "eval", "hello-web", digest, "--to", env],
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let reasons = v["decision"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["rule"].as_str().unwrap().to_owned(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (v["input"].clone(), reasons)
}

/// The gate sees current knowledge: built and staged with no advisory known;
/// the critical record imported afterwards is re-matched against the digest's
/// signed SBOM at decision time and denies production by the
/// `vulnerabilities` rule; the signed decision names the database state.
#[test]
fn an_advisory_imported_after_the_build_denies_production() {
    let (f, admin, rita, digest) = built();
    let logs = f.ok(&["logs", "last"]).stdout;
    assert!(logs.contains("0 vulnerabilities"), "{logs}");
    let r = as_(
        &f,
        &rita,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let (before, _) = eval(&f, &rita, &digest, "production");
    assert_eq!(before["findings"]["advisory_db"]["count"], 0, "{before}");

    import_advisory(&f, &admin);

    let (input, reasons) = eval(&f, &rita, &digest, "production");
    let db = &input["findings"]["advisory_db"];
    assert_eq!(db["count"], 1, "{input}");
    assert_eq!(
        db["new_since_scan"],
        serde_json::json!([ADVISORY]),
        "{input}"
    );
    assert_ne!(db["digest"], before["findings"]["advisory_db"]["digest"]);
    let db_digest = db["digest"].as_str().unwrap().to_owned();
    assert!(
        reasons
            .iter()
            .any(|(rule, msg)| rule == "vulnerabilities" && msg.contains(ADVISORY)),
        "{reasons:?}"
    );

    let r = as_(
        &f,
        &rita,
        &["promote", "hello-web", &digest, "--to", "production"],
    );
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("[vulnerabilities]"), "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{ADVISORY} (critical) in pkg:npm/left-pad@1.3.0")),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("advisories matched at decision time: 1 records")
            && r.stderr.contains(&db_digest),
        "{r:?}"
    );

    // The signed decision (verified against cairn's key and log) names it.
    let export = tempfile::tempdir().unwrap();
    f.ok(&[
        "evidence",
        &digest,
        "--export",
        export.path().to_str().unwrap(),
    ]);
    let (key, log) = (f.signing_key(), f.log_verifier());
    let decisions: Vec<Value> = std::fs::read_dir(export.path())
        .unwrap()
        .map(|e| {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            let bundle = cairn_evidence::Bundle::from_json(&bytes).unwrap();
            serde_json::from_slice(bundle.verify_with_log(&key, &log).unwrap()).unwrap()
        })
        .filter(|s: &Value| s["predicateType"] == DECISION_PREDICATE)
        .collect();
    let denied = decisions
        .iter()
        .find(|d| d["predicate"]["environment"] == "production")
        .unwrap_or_else(|| panic!("{decisions:?}"));
    assert_eq!(denied["predicate"]["allow"], false);
    assert_eq!(
        denied["predicate"]["advisoryDb"]["digest"],
        db_digest.as_str(),
        "{denied}"
    );
    assert_eq!(denied["predicate"]["advisoryDb"]["count"], 1, "{denied}");

    // Without its signed SBOM the current advisories cannot be matched: the
    // gate denies rather than trust the signed scan alone.
    f.tamper(
        "DELETE FROM evidence WHERE subject_digest = ? AND predicate_type = ?",
        &[&digest, "https://cyclonedx.org/bom"],
    );
    let (input, reasons) = eval(&f, &rita, &digest, "staging");
    assert!(
        reasons
            .iter()
            .any(|(rule, msg)| rule == "evidence" && msg.contains("no verified SBOM")),
        "{reasons:?} {input}"
    );
}

fn exposures(f: &Fixture, args: &[&str], platform: Option<&std::path::Path>) -> Value {
    let mut all = vec!["--json", "exposures"];
    all.extend_from_slice(args);
    let mut cmd = f.cairn(&all);
    if let Some(p) = platform {
        cmd.env("CAIRN_PLATFORM_DIR", p);
    }
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str::<Value>(&r.stdout).unwrap()["exposures"].clone()
}

/// An exposure: the image runs in staging, an advisory for one of its
/// components is imported, and `cairn exposures` lists it with its environment,
/// severity, fix and deadline (first seen + 24 h for critical); `--overdue`
/// lists it only once the SLA has passed (here an SLA of 0 hours); `cairn where`
/// names the environment; a digest without the finding promoted to staging
/// remediates it, with its time to remediate.
#[test]
fn a_finding_on_what_runs_in_staging_is_an_exposure_with_a_deadline_until_remediated() {
    let (f, admin, rita, digest) = built();
    let r = as_(
        &f,
        &rita,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(exposures(&f, &[], None), serde_json::json!([]));

    import_advisory(&f, &admin);

    let list = exposures(&f, &[], None);
    println!("{list:#}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    let e = &list[0];
    assert_eq!(e["environment"], "staging");
    assert_eq!(e["workload"], "hello-web");
    assert_eq!(e["digest"], digest.as_str());
    assert_eq!(e["advisory"], ADVISORY);
    assert_eq!(e["package"], "pkg:npm/left-pad@1.3.0");
    assert_eq!(e["severity"], "critical");
    assert_eq!(e["fixable"], true);
    assert_eq!(e["fixed_versions"], serde_json::json!(["1.3.1"]));
    assert_eq!(e["state"], "open");
    assert_eq!(e["overdue"], false);
    let first_seen = e["first_seen"].as_str().unwrap();
    let deadline = e["deadline"].as_str().unwrap();
    // 24 hours later, to the second (RFC 3339 texts of one format compare in order).
    assert!(deadline > first_seen, "{e}");
    assert_eq!(
        time_s(deadline) - time_s(first_seen),
        24 * 3600,
        "{first_seen} → {deadline}"
    );
    let text = f.ok(&["exposures"]).stdout;
    println!("{text}");
    assert!(
        text.contains("staging") && text.contains(ADVISORY),
        "{text}"
    );
    assert!(text.contains(deadline), "{text}");
    assert_eq!(
        exposures(&f, &["--env", "production"], None),
        serde_json::json!([])
    );
    let r = f.run(&["exposures", "--env", "nowhere"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not an environment"), "{r:?}");

    // Not overdue under the default SLA; overdue with an SLA of 0 hours.
    assert_eq!(exposures(&f, &["--overdue"], None), serde_json::json!([]));
    let platform = tempfile::tempdir().unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        "[exposures]\nsla_hours = { critical = 0, high = 24, medium = 168, low = 720 }\n",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let overdue = exposures(&f, &["--overdue"], Some(platform.path()));
    assert_eq!(overdue.as_array().unwrap().len(), 1, "{overdue}");
    assert_eq!(overdue[0]["overdue"], true);
    assert_eq!(overdue[0]["deadline"], overdue[0]["first_seen"]);
    let text = Run::from(
        f.cairn(&["exposures", "--overdue"])
            .env("CAIRN_PLATFORM_DIR", platform.path())
            .output()
            .unwrap(),
    );
    println!("{}", text.stdout);
    assert!(text.stdout.contains("OVERDUE"), "{text:?}");

    // `cairn where` names the environment the artifact runs in.
    let found = f.json(&["where", "pkg:npm/left-pad"]);
    let hit = found["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["subject"]["digest"] == digest.as_str())
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(hit["environment"], "staging", "{hit}");
    assert_eq!(hit["environments"], serde_json::json!(["staging"]), "{hit}");

    // A digest without the finding takes staging over: remediated, with its time.
    f.write(
        "tools/package-lock.json",
        &PACKAGE_LOCK.replace("1.3.0", "1.3.1"),
    )
    .commit("left-pad 1.3.1");
    let r = as_(&f, &rita, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let fixed = f
        .json(&["image", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["digest"].as_str().unwrap().to_owned())
        .find(|d| *d != digest)
        .unwrap();
    let r = as_(
        &f,
        &rita,
        &["promote", "hello-web", &fixed, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(exposures(&f, &[], None), serde_json::json!([]));
    let all = exposures(&f, &["--all"], None);
    println!("{all:#}");
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["state"], "remediated");
    assert_eq!(all[0]["remediated_by"], fixed.as_str());
    assert!(
        all[0]["time_to_remediate_seconds"].as_i64().unwrap() >= 0,
        "{all}"
    );
}

/// The continuous feed, end to end: the image runs in staging; `cairn up`
/// polls an HTTP advisory source (every second here); the source starts
/// serving a critical advisory for one of the image's components, and `GET
/// /api/exposures` lists the exposure within 5 seconds, with no command run.
#[test]
fn cairn_up_polls_the_feed_and_a_newly_served_advisory_is_an_exposure_within_seconds() {
    let (f, _admin, rita, digest) = built();
    let r = as_(
        &f,
        &rita,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let tmp = tempfile::tempdir().unwrap();
    let server = OsvServer::start();
    let other = npm_record(
        "GHSA-feed-0000-0001",
        "2026-12-01T00:00:00Z",
        "minimist",
        "1.2.6",
    );
    server.zip("/npm.zip", zip_of(tmp.path(), &[("other.json", &other)]));
    std::fs::write(
        tmp.path().join("org.toml"),
        format!(
            "[advisories]\nsources = [\"{}/npm.zip\"]\ninterval_seconds = 1\n",
            server.url
        ),
    )
    .unwrap();
    let mut up = Up::start_with(&f.data, &[], Some(tmp.path()));
    up.wait_for("advisory feed:", std::time::Duration::from_secs(30));
    let list = |up: &Up| -> Value {
        let r = agent()
            .get(format!("{}/api/exposures", up.url))
            .header("Authorization", &format!("Bearer {rita}"))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
        serde_json::from_str::<Value>(&r.into_body().read_to_string().unwrap()).unwrap()
    };
    let before = list(&up);
    assert_eq!(before["exposures"], serde_json::json!([]), "{before}");

    server.zip(
        "/npm.zip",
        zip_of(
            tmp.path(),
            &[("other.json", &other), ("left-pad.json", &advisory_json())],
        ),
    );
    let served = std::time::Instant::now();
    let found = loop {
        let v = list(&up);
        if let Some(e) = v["exposures"].as_array().unwrap().first() {
            break e.clone();
        }
        assert!(
            served.elapsed() < std::time::Duration::from_secs(5),
            "no exposure within 5 s; the server printed:\n{}",
            up.seen.join("\n")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    println!(
        "exposure listed {} ms after the advisory was served: {found}",
        served.elapsed().as_millis()
    );
    assert_eq!(found["advisory"], ADVISORY);
    assert_eq!(found["environment"], "staging");
    assert_eq!(found["digest"], digest.as_str());
    assert_eq!(found["state"], "open");
    // The next polls get 304 and import nothing.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let seen = server.take_seen();
    assert!(seen.iter().any(|s| s.status == 304), "{seen:?}");
    assert_eq!(up.stop(std::time::Duration::from_secs(20)), Some(0));
    println!("{}", up.seen.join("\n"));
}

/// An OpenVEX document about ADVISORY in left-pad 1.3.0.
fn vex_doc(status: &str, extra: &str) -> String {
    format!(
        r#"{{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.org/vex/hello-web-1",
  "author": "security@example.org",
  "timestamp": "2026-12-01T12:00:00Z",
  "version": 1,
  "statements": [{{
    "vulnerability": {{ "name": "{ADVISORY}" }},
    "products": [{{ "@id": "pkg:npm/left-pad@1.3.0" }}],
    "status": "{status}"{extra}
  }}]
}}"#
    )
}

/// Accepting an exposure with a signed OpenVEX statement and an expiry: the
/// statement must apply and say `not_affected` (justified) or `affected` with
/// an action; only a role with `override` at the environment may; the
/// acceptance is believed only while its signature verifies (a tampered row is
/// not); past its expiry the exposure is open again and says so.
#[test]
fn an_exposure_accepted_with_signed_openvex_until_an_expiry_is_open_again_after_it() {
    let (f, admin, rita, digest) = built();
    let r = as_(
        &f,
        &rita,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    import_advisory(&f, &admin);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let good = write(
        "good.json",
        &vex_doc(
            "not_affected",
            r#", "justification": "vulnerable_code_not_in_execute_path""#,
        ),
    );
    let accept = |token: &str, vex: &str, dur: &str| {
        as_(
            &f,
            token,
            &[
                "exposures",
                "accept",
                &digest,
                "--env",
                "staging",
                "--vex",
                vex,
                "--for",
                dur,
            ],
        )
    };

    // Statements that accept nothing, and who may not accept.
    for (doc, says) in [
        (
            vex_doc("under_investigation", ""),
            "`under_investigation` statement accepts nothing",
        ),
        (vex_doc("affected", ""), "only with an `action_statement`"),
        (vex_doc("fixed", ""), "deploy the digest with the fix"),
        (
            vex_doc(
                "not_affected",
                r#", "justification": "component_not_present""#,
            )
            .replace("left-pad@1.3.0", "left-pad@9.9.9"),
            "no statement of the document applies",
        ),
    ] {
        let r = accept(&rita, &write("bad.json", &doc), "1d");
        println!("{}", r.stderr.trim());
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains(says), "{says}: {r:?}");
    }
    let vic = token(&f, Some(&admin), "vic@example.org");
    let r = as_(&f, &admin, &["role", "grant", "vic@example.org", "viewer"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = accept(&vic, &good, "1d");
    println!("{}", r.stderr.trim());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("override"), "{r:?}");
    let r = accept(&rita, &good, "400d");
    assert_eq!(r.code, 1, "{r:?}");

    // Accepted for a day: not open, not overdue, says by whom and until when.
    let r = accept(&rita, &good, "1d");
    println!("{}", r.stdout);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("accepted 1 exposure(s)"), "{r:?}");
    let list = exposures(&f, &[], None);
    println!("{list:#}");
    assert_eq!(list[0]["state"], "accepted", "{list}");
    assert_eq!(list[0]["acceptance"]["by"], "rita@example.org");
    assert_eq!(list[0]["acceptance"]["expired"], false);
    let text = f.ok(&["exposures"]).stdout;
    assert!(text.contains("accepted until"), "{text}");

    // A row whose signature no longer verifies is not believed.
    f.tamper(
        "UPDATE evidence SET bundle = CAST(replace(CAST(bundle AS TEXT), '\"sig\":\"', '\"sig\":\"AAAA') AS BLOB) WHERE predicate_type = ?",
        &["urn:cairn:predicate:exposure-acceptance:v1"],
    );
    let list = exposures(&f, &[], None);
    assert_eq!(list[0]["state"], "open", "{list}");
    assert_eq!(list[0]["acceptance"], Value::Null, "{list}");

    // Accepted for 2 seconds: then open again, saying so.
    let r = accept(&rita, &good, "2s");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(exposures(&f, &[], None)[0]["state"], "accepted");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let list = exposures(&f, &[], None);
    println!("{list:#}");
    assert_eq!(list[0]["state"], "open", "{list}");
    assert_eq!(list[0]["acceptance"]["expired"], true, "{list}");
    let text = f.ok(&["exposures"]).stdout;
    println!("{text}");
    assert!(
        text.contains("open again: the acceptance by rita@example.org"),
        "{text}"
    );
}

/// The exposures page in a real browser (Debian's chromium and npm's
/// playwright-core: `scripts/install-browser-tools`; without them this test
/// fails, saying so): the exposure is listed and its deadline clock counts down
/// without a reload, with no CSP violation.
#[test]
fn the_exposures_page_counts_the_deadline_clock_in_a_real_browser() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let playwright = target.join("browser-tools/node_modules/playwright-core");
    assert!(
        playwright.join("package.json").is_file()
            && std::path::Path::new("/usr/bin/chromium").is_file(),
        "the browser tests need chromium and playwright-core: run scripts/install-browser-tools"
    );
    let (f, admin, rita, digest) = built();
    let r = as_(
        &f,
        &rita,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    import_advisory(&f, &admin);
    let mut up = Up::start(&f.data, &[]);
    let shots = target.join("browser-screenshots");
    let out = std::process::Command::new("node")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/exposures.mjs"))
        .env("CAIRN_URL", &up.url)
        .env("CAIRN_TOKEN", &rita)
        .env("ADVISORY", ADVISORY)
        .env("SCREENSHOTS", &shots)
        .env("PLAYWRIGHT", &playwright)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("clock counted without a reload"),
        "{stdout}"
    );
    assert!(
        std::fs::metadata(shots.join("exposures.png"))
            .unwrap()
            .len()
            > 1000
    );
    assert_eq!(up.stop(std::time::Duration::from_secs(20)), Some(0));
}

/// Requests a receiver got: (head, body).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A webhook receiver (std::net): every request's head and body, answered 200.
fn receiver() -> (String, Received) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/cairn", listener.local_addr().unwrap());
    let got: Received = Default::default();
    let kept = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut head, mut length) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            kept.lock()
                .unwrap()
                .push((head, String::from_utf8(body).unwrap()));
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

/// An exposure past its deadline (an SLA of 0 hours) is flagged by the API
/// and the metrics, and `cairn up`'s watch sends it to the change webhook
/// exactly once (later checks, and a restart, send nothing more).
#[test]
fn an_overdue_exposure_is_flagged_and_sent_to_the_change_webhook_once() {
    let (f, admin, rita, digest) = built();
    let r = as_(
        &f,
        &rita,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    import_advisory(&f, &admin);
    let (url, got) = receiver();
    let platform = tempfile::tempdir().unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        format!("[exposures]\nsla_hours = {{ critical = 0 }}\n[changes]\nwebhook = \"{url}\"\n"),
    )
    .unwrap();
    let mut up = Up::start_with(&f.data, &[], Some(platform.path()));
    let line = up.wait_for("exposure OVERDUE", std::time::Duration::from_secs(15));
    println!("{line}");
    assert!(line.contains(ADVISORY) && line.contains("sent to the change webhook"));
    let get = |path: &str| {
        let r = agent()
            .get(format!("{}{path}", up.url))
            .header("Authorization", &format!("Bearer {admin}"))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.into_body().read_to_string().unwrap()
    };
    let listed: Value = serde_json::from_str(&get("/api/exposures?overdue=true")).unwrap();
    assert_eq!(listed["exposures"][0]["overdue"], true, "{listed}");
    let metrics = get("/metrics");
    assert!(
        metrics
            .contains("cairn_exposures_overdue{environment=\"staging\",severity=\"critical\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("cairn_exposure_age_seconds{environment=\"staging\""));
    // Several more checks pass; then a restart: still one delivery.
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(up.stop(std::time::Duration::from_secs(20)), Some(0));
    let mut up = Up::start_with(&f.data, &[], Some(platform.path()));
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(up.stop(std::time::Duration::from_secs(20)), Some(0));
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let (head, body) = &got[0];
    println!("webhook got: {body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-cairn-event: exposure-overdue"),
        "{head}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["kind"], "exposure-overdue");
    assert_eq!(body["exposure"]["advisory"], ADVISORY);
    assert_eq!(body["exposure"]["digest"], digest.as_str());
    assert_eq!(body["exposure"]["overdue"], true);
}

/// Two `cairn serve` replicas on one store watch for overdue exposures, but
/// only the one holding the watch's duty sends: one delivery, not one per
/// replica; and when that replica is killed, the one taking the watch over
/// reads the ledger and sends nothing again.
#[test]
fn two_replicas_send_an_overdue_exposure_once_and_the_one_taking_over_does_not_send_it_again() {
    let (f, admin, rita, digest) = built();
    let r = as_(
        &f,
        &rita,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    import_advisory(&f, &admin);
    let (url, got) = receiver();
    let platform = tempfile::tempdir().unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        format!("[exposures]\nsla_hours = {{ critical = 0 }}\n[changes]\nwebhook = \"{url}\"\n"),
    )
    .unwrap();
    let env = [("CAIRN_PLATFORM_DIR", platform.path().to_str().unwrap())];
    let args = ["serve", "--listen", "127.0.0.1:0", "--grace", "5"];
    let mut replicas = [
        Up::process(&f.data, &args, &env, "cairn serve: serving on "),
        Up::process(&f.data, &args, &env, "cairn serve: serving on "),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let sender = loop {
        if let Some(i) = (0..2).find(|&i| {
            replicas[i]
                .drain()
                .iter()
                .any(|l| l.contains("exposure OVERDUE"))
        }) {
            break i;
        }
        assert!(std::time::Instant::now() < deadline, "no replica sent");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // Several more looks by both replicas: still one delivery.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let other = 1 - sender;
    assert!(
        !replicas[other]
            .drain()
            .iter()
            .any(|l| l.contains("exposure OVERDUE")),
        "{:?}",
        replicas[other].seen
    );
    assert_eq!(got.lock().unwrap().len(), 1);
    println!("replica {sender} sent the overdue exposure; replica {other} did not");
    // kill -9 the sender: the other takes the watch over and sends nothing new.
    replicas[sender].kill9();
    let line = replicas[other].wait_for(
        "holds duty `exposure-watch`",
        std::time::Duration::from_secs(20),
    );
    println!("after kill -9 of replica {sender}: {line}");
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(
        replicas[other].stop(std::time::Duration::from_secs(20)),
        Some(0)
    );
    assert!(
        !replicas[other]
            .seen
            .iter()
            .any(|l| l.contains("exposure OVERDUE")),
        "{:?}",
        replicas[other].seen
    );
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    println!("webhook deliveries: {}", got.len());
}

/// Seconds since the epoch of an RFC 3339 UTC text (`YYYY-MM-DDTHH:MM:SS…Z`).
fn time_s(text: &str) -> i64 {
    cairn_model::time::parse_rfc3339(text).expect("RFC 3339").0
}

/// An SBOM stored after the advisory import is matched when it is stored: a
/// digest built after the import and deployed (break-glass, past the gate's
/// denial) is an exposure at once, without waiting for an import that happens
/// to name its packages again.
#[test]
fn a_digest_built_after_the_import_is_an_exposure_as_soon_as_it_runs() {
    let (f, admin, rita) = team();
    import_advisory(&f, &admin);
    let r = as_(&f, &rita, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let logs = f.ok(&["logs", "1"]).stdout;
    assert!(
        logs.contains("matched against the stored advisories: 1 findings"),
        "{logs}"
    );
    let digest = f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = as_(
        &f,
        &rita,
        &[
            "promote",
            "hello-web",
            &digest,
            "--to",
            "staging",
            "--override",
            "the fix ships tomorrow",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let list = exposures(&f, &[], None);
    println!("{list:#}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["digest"], digest.as_str());
    assert_eq!(list[0]["advisory"], ADVISORY);
    assert_eq!(list[0]["environment"], "staging");
    assert_eq!(list[0]["state"], "open");
}
