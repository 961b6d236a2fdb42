//! cairn's evidence against real third-party verifiers: npm `@sigstore/verify`
//! (Sigstore bundles, key-based) and PyPI `in-toto` 3.x (DSSE envelopes), installed
//! by `scripts/install-interop-tools`. Without them these tests fail (they never
//! skip): run that script first.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cairn_evidence::{Algorithm, Bundle, Envelope, SigningKey, Statement, VerifyingKey};
use support::{BUILDER_ID, observed_build};

const INSTALL_HINT: &str = "the interop verifiers are not installed: run scripts/install-interop-tools (as root, needs npm and python3)";

/// Where the installer put the tools: `$CAIRN_INTEROP_DIR`, else
/// `<target dir>/interop-tools`, the same rule as the script.
fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAIRN_INTEROP_DIR") {
        return PathBuf::from(dir);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("interop-tools")
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

fn node_modules() -> PathBuf {
    let dir = tools_dir().join("npm/node_modules");
    assert!(
        dir.join("@sigstore/verify/package.json").is_file(),
        "{INSTALL_HINT} (missing {})",
        dir.display()
    );
    dir
}

fn python() -> PathBuf {
    let python = tools_dir().join("venv/bin/python");
    assert!(
        python.is_file(),
        "{INSTALL_HINT} (missing {})",
        python.display()
    );
    python
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{INSTALL_HINT}: cannot start {command:?}: {e}"));
    eprintln!(
        "{command:?} -> {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `verify_bundle.js`; its exit code (0 verified, 1 rejected, 2 setup error).
fn sigstore_js(bundle_json: &str, key: &SigningKey) -> i32 {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().join("bundle.sigstore.json");
    let public = dir.path().join("key.pub");
    std::fs::write(&bundle, bundle_json).expect("write bundle");
    std::fs::write(&public, key.public_key_pem()).expect("write key");
    let output = run(Command::new("node")
        .arg(script("verify_bundle.js"))
        .arg(&bundle)
        .arg(&public)
        .arg(key.key_id().as_str())
        .env("NODE_PATH", node_modules()));
    output.status.code().expect("node exited")
}

/// Runs `verify_dsse.py`; its exit code (0 verified, 1 rejected, 2 setup error).
fn in_toto(envelope_json: &str, key: &SigningKey) -> i32 {
    let dir = tempfile::tempdir().expect("temp dir");
    let envelope = dir.path().join("envelope.json");
    let public = dir.path().join("key.pub");
    std::fs::write(&envelope, envelope_json).expect("write envelope");
    std::fs::write(&public, key.public_key_pem()).expect("write key");
    let output = run(Command::new(python())
        .arg(script("verify_dsse.py"))
        .arg(&envelope)
        .arg(&public)
        .arg(key.key_id().as_str()));
    output.status.code().expect("python exited")
}

fn signed_bundle(algorithm: Algorithm) -> (SigningKey, Bundle) {
    let key = SigningKey::generate(algorithm).expect("generates");
    let statement = Statement::provenance(&observed_build(), BUILDER_ID).expect("builds");
    let bundle = Bundle::sign_statement(&statement, &key).expect("signs");
    (key, bundle)
}

/// The bundle as written, then with one payload byte flipped, then with one
/// signature byte flipped, then checked against another key.
fn check_sigstore_js(algorithm: Algorithm) {
    let (key, bundle) = signed_bundle(algorithm);
    assert_eq!(
        sigstore_js(&bundle.to_json().expect("json"), &key),
        0,
        "cairn's {algorithm} bundle was not accepted"
    );

    let mut payload = bundle.clone();
    payload.envelope.payload[20] ^= 0x01;
    assert_eq!(
        sigstore_js(&payload.to_json().expect("json"), &key),
        1,
        "a flipped payload byte was accepted"
    );

    let mut signature = bundle.clone();
    signature.envelope.signatures[0].sig[12] ^= 0x01;
    assert_eq!(
        sigstore_js(&signature.to_json().expect("json"), &key),
        1,
        "a flipped signature byte was accepted"
    );

    let other = SigningKey::generate(algorithm).expect("generates");
    let mut rehinted = bundle.clone();
    rehinted.key_hint = other.key_id().to_string();
    assert_eq!(
        sigstore_js(&rehinted.to_json().expect("json"), &other),
        1,
        "another key was accepted"
    );
}

#[test]
fn sigstore_js_accepts_p256_bundles_and_rejects_flipped_bytes() {
    check_sigstore_js(Algorithm::EcdsaP256Sha256);
}

#[test]
fn sigstore_js_accepts_ed25519_bundles_and_rejects_flipped_bytes() {
    check_sigstore_js(Algorithm::Ed25519);
}

#[test]
fn sigstore_js_accepts_a_test_result_bundle() {
    let key =
        SigningKey::from_secret_bytes(Algorithm::EcdsaP256Sha256, &[0x33; 32]).expect("valid");
    let mut observed = observed_build();
    observed.exit_code = Some(1);
    observed.failed_tests = vec!["test_greet".into()];
    let statement = Statement::test_result(&observed, None).expect("builds");
    let bundle = Bundle::sign_statement(&statement, &key).expect("signs");
    assert_eq!(sigstore_js(&bundle.to_json().expect("json"), &key), 0);
}

fn check_in_toto(algorithm: Algorithm) {
    let (key, bundle) = signed_bundle(algorithm);
    let envelope = bundle.envelope;
    assert_eq!(
        in_toto(&envelope.to_json().expect("json"), &key),
        0,
        "cairn's {algorithm} envelope was not accepted"
    );

    let mut payload = envelope.clone();
    payload.payload[20] ^= 0x01;
    assert_eq!(
        in_toto(&payload.to_json().expect("json"), &key),
        1,
        "a flipped payload byte was accepted"
    );

    let mut signature = envelope.clone();
    signature.signatures[0].sig[12] ^= 0x01;
    assert_eq!(
        in_toto(&signature.to_json().expect("json"), &key),
        1,
        "a flipped signature byte was accepted"
    );
}

#[test]
fn in_toto_accepts_p256_envelopes_and_rejects_flipped_bytes() {
    check_in_toto(Algorithm::EcdsaP256Sha256);
}

#[test]
fn in_toto_accepts_ed25519_envelopes_and_rejects_flipped_bytes() {
    check_in_toto(Algorithm::Ed25519);
}

/// The other direction: in-toto signs (with a key and key id scheme of its own),
/// cairn verifies, and refuses the same envelope with a flipped payload byte.
fn check_cairn_reads_in_toto(algorithm: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let payload = dir.path().join("payload.json");
    let envelope = dir.path().join("envelope.json");
    let public = dir.path().join("key.pub");
    let statement = Statement::provenance(&observed_build(), BUILDER_ID).expect("builds");
    std::fs::write(&payload, statement.to_json().expect("json")).expect("write payload");
    let output = run(Command::new(python())
        .arg(script("sign_dsse.py"))
        .arg(algorithm)
        .arg(&payload)
        .arg("application/vnd.in-toto+json")
        .arg(&envelope)
        .arg(&public));
    assert_eq!(output.status.code(), Some(0), "in-toto could not sign");

    let key = VerifyingKey::from_pem(&std::fs::read_to_string(&public).expect("key")).expect("pem");
    let read = Envelope::from_json(&std::fs::read(&envelope).expect("envelope")).expect("parses");
    let body = read
        .verify_typed(&key, "application/vnd.in-toto+json")
        .expect("cairn verifies in-toto's envelope");
    assert_eq!(body, statement.to_json().expect("json"));

    let mut flipped = read.clone();
    flipped.payload[20] ^= 0x01;
    assert!(
        flipped.verify(&key).is_err(),
        "a flipped payload byte was accepted"
    );
}

#[test]
fn cairn_verifies_in_toto_p256_envelopes() {
    check_cairn_reads_in_toto("p256");
}

#[test]
fn cairn_verifies_in_toto_ed25519_envelopes() {
    check_cairn_reads_in_toto("ed25519");
}
