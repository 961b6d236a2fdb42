//! The closed loop's knowledge, end to end with the real binary, real
//! bubblewrap and the `hello-web` example image: an advisory imported *after*
//! the build is re-matched against the digest's signed SBOM at decision time
//! and blocks promotion like one found at build time, the decision naming the
//! advisory database's state; and a finding on a digest that runs in an
//! environment is an exposure (`cairn exposures`) with its deadline.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Fixture, Run};
use serde_json::Value;

const ADVISORY: &str = "GHSA-cair-n000-0001";
const DECISION_PREDICATE: &str = "https://cairn.invalid/attestation/gate-decision/v1";

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

fn as_(f: &Fixture, token: &str, args: &[&str]) -> Run {
    Run::from(f.cairn(args).env("CAIRN_TOKEN", token).output().unwrap())
}

fn token(f: &Fixture, actor: Option<&str>, name: &str) -> String {
    let mut cmd = f.cairn(&["--json", "identity", "add", name]);
    if let Some(t) = actor {
        cmd.env("CAIRN_TOKEN", t);
    }
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// hello-web with the npm lockfile, on the `tiny` base, built with no advisory
/// known; a release manager (`rita`) and the admin. Returns the image's digest.
fn built() -> (Fixture, String, String, String) {
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
    let r = as_(&f, &rita, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let digest = f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    (f, admin, rita, digest)
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
}
