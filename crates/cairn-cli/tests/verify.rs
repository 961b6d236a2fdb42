//! `cairn verify` end to end: the whole Sigstore conformance suite
//! (`$CAIRN_CONFORMANCE_DIR/sigstore-bundle-verify`) through the real binary.
//! Positive cases must exit 0, `*_fail` cases must exit 1 (never 2: a bad
//! bundle is the input's fault, not cairn's).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";
const EXPECTED_CASES: usize = 70;

fn suite_dir() -> PathBuf {
    cairn_testkit::conformance("sigstore-bundle-verify")
}

fn or_default(case: &Path, name: &str, default: PathBuf) -> PathBuf {
    let p = case.join(name);
    if p.exists() { p } else { default }
}

fn text(case: &Path, name: &str, default: &str) -> String {
    std::fs::read_to_string(case.join(name))
        .map_or_else(|_| default.to_owned(), |s| s.trim().to_owned())
}

/// `cairn verify` for one case folder, with the protocol's defaults.
fn cairn_verify(suite: &Path, case: &Path, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.env_remove("CAIRN_SIGSTORE_TRUSTED_ROOT");
    if json {
        cmd.arg("--json");
    }
    cmd.arg("verify")
        .arg("--bundle")
        .arg(case.join("bundle.sigstore.json"))
        .arg("--trusted-root")
        .arg(or_default(
            case,
            "trusted_root.json",
            suite.join("production_trusted_root.json"),
        ));
    let key = case.join("key.pub");
    if key.exists() {
        cmd.arg("--key").arg(key);
    } else {
        cmd.arg("--certificate-identity")
            .arg(text(case, "identity", DEFAULT_IDENTITY))
            .arg("--certificate-oidc-issuer")
            .arg(text(case, "issuer", DEFAULT_ISSUER));
    }
    cmd.arg(or_default(case, "artifact", suite.join("a.txt")));
    cmd.output().unwrap()
}

#[test]
fn cairn_verify_passes_the_conformance_suite() {
    let suite = suite_dir();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&suite)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("bundle.sigstore.json").is_file())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), EXPECTED_CASES);
    let mut misses = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let want = if name.ends_with("_fail") { 1 } else { 0 };
        let out = cairn_verify(&suite, case, false);
        let got = out.status.code();
        if got != Some(want) {
            misses.push(format!(
                "{name}: exit {got:?}, want {want}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    println!(
        "{}/{} conformance cases",
        cases.len() - misses.len(),
        cases.len()
    );
    assert!(
        misses.is_empty(),
        "{} misses:\n{}",
        misses.len(),
        misses.join("\n")
    );
}

#[test]
fn json_reports_what_verified_and_what_failed() {
    let suite = suite_dir();
    let out = cairn_verify(&suite, &suite.join("happy-path-v0.3"), true);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["identities"][0], DEFAULT_IDENTITY);
    assert_eq!(v["issuer"], DEFAULT_ISSUER);
    assert_eq!(v["tlog_entries"][0]["inclusion_proof"], true);

    let out = cairn_verify(&suite, &suite.join("set-invalid-signature_fail"), true);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["check"], "set");
}

#[test]
fn text_failure_names_the_check() {
    let suite = suite_dir();
    let out = cairn_verify(&suite, &suite.join("invalid-inclusion-proof_fail"), false);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("verification failed (inclusion-proof)"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_1() {
    let suite = suite_dir();
    let bundle = suite.join("happy-path-v0.3/bundle.sigstore.json");
    let artifact = suite.join("a.txt");
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .env_remove("CAIRN_SIGSTORE_TRUSTED_ROOT")
            .arg("verify")
            .args(args)
            .output()
            .unwrap()
    };
    // No trusted root.
    let out = run(&[
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--key".as_ref(),
        artifact.as_os_str(),
        artifact.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trusted root"));
    // Neither a key nor an identity.
    let root = suite.join("production_trusted_root.json");
    let out = run(&[
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--trusted-root".as_ref(),
        root.as_os_str(),
        artifact.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    // A missing bundle file.
    let missing = suite.join("no-such-bundle.json");
    let out = run(&[
        "--bundle".as_ref(),
        missing.as_os_str(),
        "--trusted-root".as_ref(),
        root.as_os_str(),
        "--certificate-identity".as_ref(),
        DEFAULT_IDENTITY.as_ref(),
        "--certificate-oidc-issuer".as_ref(),
        DEFAULT_ISSUER.as_ref(),
        artifact.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
}
