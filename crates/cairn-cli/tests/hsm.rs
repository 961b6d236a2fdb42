//! cairn's signing key in a PKCS#11 token (issue 18 item 2), end to end through
//! the `cairn` binary against Debian's SoftHSM 2 (a real PKCS#11 module), with
//! keys made by OpenSC's `pkcs11-tool` and by cairn itself: a run's evidence is
//! signed in the token and verified by npm `@sigstore/verify` and PyPI `in-toto`;
//! `cairn key show` names the token; a rotation to a new token key is in the
//! log; a missing module, a wrong PIN, an unknown token or key label are each
//! refused clearly, nothing is signed with another key, and the PIN is never
//! printed. SoftHSM missing fails the tests (scripts/install-deps installs it).
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Fixture, Run, in_toto_python, node_modules};
use serde_json::Value;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "cairn-test";
/// Letters no key id, digest or log line can hold, so a leak is found.
const PIN: &str = "pin-Zq7Xw-secret";
const WRONG_PIN: &str = "pin-Wrong-Yk9Qv";

/// A SoftHSM token store of its own (SOFTHSM2_CONF in a temp dir) with one
/// initialised token and a P-256 key `evidence-1` made by `pkcs11-tool`.
struct Hsm {
    _tmp: tempfile::TempDir,
    conf: PathBuf,
    pin_file: PathBuf,
}

fn tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{name} is missing: run scripts/install-deps (apt-get install softhsm2 opensc)"
    );
}

impl Hsm {
    fn new() -> Self {
        tool("softhsm2-util");
        tool("pkcs11-tool");
        assert!(
            Path::new(MODULE).is_file(),
            "{MODULE} is missing: run scripts/install-deps (apt-get install softhsm2)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let tokens = tmp.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = tmp.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let pin_file = tmp.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let hsm = Hsm {
            _tmp: tmp,
            conf,
            pin_file,
        };
        hsm.cmd(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                TOKEN,
                "--pin",
                PIN,
                "--so-pin",
                "so-pin-1234",
            ],
        );
        hsm.keypair("evidence-1");
        hsm
    }

    fn cmd(&self, program: &str, args: &[&str]) -> Run {
        let r = Run::from(
            Command::new(program)
                .args(args)
                .env("SOFTHSM2_CONF", &self.conf)
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{program} {args:?}: {r:?}");
        r
    }

    /// A P-256 key pair made in the token by OpenSC's pkcs11-tool.
    fn keypair(&self, label: &str) {
        self.cmd(
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
                "--login",
                "--pin",
                PIN,
                "--keypairgen",
                "--key-type",
                "EC:prime256v1",
                "--label",
                label,
            ],
        );
    }

    /// `cairn ARGS` in `f` with this token store.
    fn cairn(&self, f: &Fixture, args: &[&str]) -> Run {
        let r = Run::from(
            f.cairn(args)
                .env("SOFTHSM2_CONF", &self.conf)
                .output()
                .unwrap(),
        );
        for out in [&r.stdout, &r.stderr] {
            assert!(!out.contains(PIN), "the PIN was printed: {r:?}");
            assert!(!out.contains(WRONG_PIN), "a PIN was printed: {r:?}");
        }
        r
    }

    fn ok(&self, f: &Fixture, args: &[&str]) -> Run {
        let r = self.cairn(f, args);
        assert_eq!(r.code, 0, "cairn {args:?}: {r:?}");
        r
    }

    fn json(&self, f: &Fixture, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(f, &all).stdout).unwrap()
    }

    fn use_key(&self, f: &Fixture, label: &str, pin_file: &Path) -> Run {
        self.cairn(
            f,
            &[
                "key",
                "hsm",
                "--module",
                MODULE,
                "--token",
                TOKEN,
                "--key-label",
                label,
                "--pin-file",
                pin_file.to_str().unwrap(),
            ],
        )
    }
}

fn log_entry(hsm: &Hsm, f: &Fixture, index: u64) -> Value {
    let shown = hsm.json(f, &["log", "show", &index.to_string()]);
    serde_json::from_str(shown["entry_text"].as_str().unwrap()).unwrap()
}

/// Every bundle of the last run, verified by sigstore-js (with cairn's trusted
/// root, so the log entry is checked too) and its DSSE envelope by in-toto;
/// returns how many.
fn verify_last_run_externally(hsm: &Hsm, f: &Fixture, dir: &str) -> usize {
    let shown = hsm.json(f, &["key", "show"]);
    let key_id = shown["key_id"].as_str().unwrap();
    let key = f.repo.join(format!("../{dir}.pub"));
    std::fs::write(&key, shown["public_key"].as_str().unwrap()).unwrap();
    let export = f.repo.join(format!("../{dir}"));
    let list = hsm.json(
        f,
        &["evidence", "last", "--export", export.to_str().unwrap()],
    );
    let list = list.as_array().unwrap();
    assert!(!list.is_empty());
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cairn-evidence/tests/interop");
    for e in list {
        let file = PathBuf::from(e["file"].as_str().unwrap());
        let bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            bundle["verificationMaterial"]["publicKey"]["hint"], key_id,
            "{file:?}"
        );
        let node = Run::from(
            Command::new("node")
                .arg(interop.join("verify_bundle.js"))
                .arg(&file)
                .arg(&key)
                .arg(key_id)
                .arg(f.data.join("trusted_root.json"))
                .env("NODE_PATH", node_modules())
                .output()
                .unwrap(),
        );
        assert_eq!(node.code, 0, "@sigstore/verify on {file:?}: {node:?}");
        let envelope = file.with_extension("dsse.json");
        std::fs::write(&envelope, bundle["dsseEnvelope"].to_string()).unwrap();
        let py = Run::from(
            Command::new(in_toto_python())
                .arg(interop.join("verify_dsse.py"))
                .arg(&envelope)
                .arg(&key)
                .arg(key_id)
                .output()
                .unwrap(),
        );
        assert_eq!(py.code, 0, "in-toto on {envelope:?}: {py:?}");
        assert!(
            py.stdout.contains("verified: ecdsa-sha2-nistp256"),
            "{py:?}"
        );
    }
    list.len()
}

/// The acceptance: a run's evidence signed by a key in SoftHSM verifies with
/// `@sigstore/verify` and `in-toto`; `cairn key show` names the token and key
/// label, not a file; a rotation to a new key made in the token is logged, and
/// the next run is signed by it.
#[test]
fn evidence_signed_in_softhsm_verifies_externally_and_rotation_is_logged() {
    let hsm = Hsm::new();
    let f = Fixture::example("hello-c");
    // Start from a key file, as an installation that adopts an HSM does.
    hsm.ok(&f, &["key", "create"]);
    let file_key = hsm.json(&f, &["key", "show"])["key_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let moved = hsm.use_key(&f, "evidence-1", &hsm.pin_file);
    assert_eq!(moved.code, 0, "{moved:?}");
    println!("{}", moved.stdout);
    assert!(
        moved
            .stdout
            .contains("PKCS#11 token \"cairn-test\", key \"evidence-1\""),
        "{moved:?}"
    );
    assert!(
        moved.stdout.contains("logged as audit log entry 1"),
        "{moved:?}"
    );
    assert!(
        moved.stdout.contains(&format!("retired key {file_key}")),
        "{moved:?}"
    );
    // The key file is gone; only the token's configuration is there, private.
    let keys = f.data.join("keys");
    assert!(!keys.join("signing.key").exists());
    let config = keys.join("signing.pkcs11.json");
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stored = std::fs::read_to_string(&config).unwrap();
    assert!(!stored.contains(PIN), "{stored}");
    assert!(
        stored.contains("\"publicKey\": \"-----BEGIN PUBLIC KEY-----"),
        "{stored}"
    );

    let shown = hsm.ok(&f, &["key", "show"]);
    println!("{}", shown.stdout);
    assert!(
        shown.stdout.contains(
            "signing key in PKCS#11 token \"cairn-test\", key \"evidence-1\" (module /usr/lib/softhsm/libsofthsm2.so)"
        ),
        "{shown:?}"
    );
    assert!(!shown.stdout.contains("signing.key"), "{shown:?}");
    let json = hsm.json(&f, &["key", "show"]);
    assert_eq!(json["path"], Value::Null);
    assert_eq!(json["algorithm"], "p256");
    assert_eq!(json["pkcs11"]["token"], TOKEN);
    assert_eq!(json["pkcs11"]["key_label"], "evidence-1");
    let first = json["key_id"].as_str().unwrap().to_owned();
    assert_ne!(first, file_key);
    let moved_entry = log_entry(&hsm, &f, 1);
    assert_eq!(moved_entry["kind"], "key-rotation");
    assert_eq!(moved_entry["spec"]["oldKeyId"], file_key.as_str());
    assert_eq!(moved_entry["spec"]["newKeyId"], first.as_str());

    let run = hsm.cairn(&f, &["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let n = verify_last_run_externally(&hsm, &f, "evidence-1");
    println!("{n} bundles signed in the token verified by @sigstore/verify and in-toto");

    // Rotate to a new key generated in the token by cairn.
    let rotated = hsm.ok(&f, &["key", "rotate", "--key-label", "evidence-2"]);
    println!("{}", rotated.stdout);
    assert!(
        rotated.stdout.contains(
            "rotated to a new p256 signing key in PKCS#11 token \"cairn-test\", key \"evidence-2\""
        ),
        "{rotated:?}"
    );
    assert!(
        rotated.stdout.contains(&format!("retired key {first}")),
        "{rotated:?}"
    );
    let second = hsm.json(&f, &["key", "show"])["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first);
    let index: u64 = rotated
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("logged as audit log entry "))
        .unwrap()
        .parse()
        .unwrap();
    let rotation = log_entry(&hsm, &f, index);
    assert_eq!(rotation["kind"], "key-rotation");
    assert_eq!(rotation["spec"]["purpose"], "evidence-signing");
    assert_eq!(rotation["spec"]["oldKeyId"], first.as_str());
    assert_eq!(rotation["spec"]["newKeyId"], second.as_str());
    assert!(keys.join(format!("retired/{first}.pub")).is_file());
    // The new key is in the token: pkcs11-tool lists it, and never its value.
    let listed = hsm.cmd(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            TOKEN,
            "--login",
            "--pin",
            PIN,
            "--list-objects",
        ],
    );
    assert!(listed.stdout.contains("evidence-2"), "{listed:?}");
    // A label already in use is refused.
    let taken = hsm.cairn(&f, &["key", "rotate", "--key-label", "evidence-1"]);
    assert_eq!(taken.code, 1, "{taken:?}");
    assert!(
        taken
            .stderr
            .contains("already holds a key labelled \"evidence-1\""),
        "{taken:?}"
    );

    f.write("README", "second commit\n").commit("second");
    let run = hsm.cairn(&f, &["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    verify_last_run_externally(&hsm, &f, "evidence-2");
    assert_eq!(hsm.cairn(&f, &["log", "verify"]).code, 0);
    // The PIN is nowhere in the data directory: not in the log, the store, the
    // key configuration or any run's files.
    let mut files = 0;
    let mut stack = vec![f.data.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path()).unwrap();
                assert!(
                    !bytes.windows(PIN.len()).any(|w| w == PIN.as_bytes()),
                    "the PIN is in {:?}",
                    entry.path()
                );
                files += 1;
            }
        }
    }
    assert!(files > 10, "{files}");
}

/// Bad input: a missing module, a wrong PIN, an unknown token or key label, a
/// PIN file others can read, a PIN variable not set: each a clear error (exit
/// 1), the key unchanged, the PIN never printed; and a token that stops
/// answering for the PIN makes a run fail rather than sign with another key.
#[test]
fn a_bad_token_configuration_is_refused_and_nothing_is_signed_with_another_key() {
    let hsm = Hsm::new();
    let f = Fixture::example("hello-c");
    let wrong = f.repo.join("../wrong-pin");
    std::fs::write(&wrong, WRONG_PIN).unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pin = hsm.pin_file.to_str().unwrap().to_owned();
    let cases: [(&str, Vec<&str>, &str); 6] = [
        (
            "module missing",
            vec![
                "--module",
                "/usr/lib/nonexistent/libpkcs11.so",
                "--token",
                TOKEN,
                "--key-label",
                "evidence-1",
                "--pin-file",
                &pin,
            ],
            "the PKCS#11 module /usr/lib/nonexistent/libpkcs11.so cannot be read",
        ),
        (
            "wrong PIN",
            vec![
                "--module",
                MODULE,
                "--token",
                TOKEN,
                "--key-label",
                "evidence-1",
                "--pin-file",
                wrong.to_str().unwrap(),
            ],
            "wrong PIN for PKCS#11 token \"cairn-test\"",
        ),
        (
            "token not found",
            vec![
                "--module",
                MODULE,
                "--token",
                "no-such-token",
                "--key-label",
                "evidence-1",
                "--pin-file",
                &pin,
            ],
            "no PKCS#11 token labelled \"no-such-token\"",
        ),
        (
            "key not found",
            vec![
                "--module",
                MODULE,
                "--token",
                TOKEN,
                "--key-label",
                "no-such-key",
                "--pin-file",
                &pin,
            ],
            "no EC private key labelled \"no-such-key\" in PKCS#11 token \"cairn-test\"",
        ),
        (
            "PIN variable unset",
            vec![
                "--module",
                MODULE,
                "--token",
                TOKEN,
                "--key-label",
                "evidence-1",
                "--pin-env",
                "CAIRN_TEST_NO_SUCH_PIN",
            ],
            "the PIN variable CAIRN_TEST_NO_SUCH_PIN is not set",
        ),
        (
            "relative module",
            vec![
                "--module",
                "libsofthsm2.so",
                "--token",
                TOKEN,
                "--key-label",
                "evidence-1",
                "--pin-file",
                &pin,
            ],
            "the PKCS#11 module must be an absolute path",
        ),
    ];
    for (what, args, expected) in cases {
        let mut all = vec!["key", "hsm"];
        all.extend(args);
        let refused = hsm.cairn(&f, &all);
        println!("{what}: {}", refused.stderr.trim());
        assert_eq!(refused.code, 1, "{what}: {refused:?}");
        assert!(refused.stderr.contains(expected), "{what}: {refused:?}");
        // Nothing was made, logged or configured.
        assert!(!f.data.join("keys/signing.pkcs11.json").exists(), "{what}");
        assert!(!f.data.join("keys/signing.key").exists(), "{what}");
    }
    // A PIN file others can read.
    std::fs::set_permissions(&hsm.pin_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exposed = hsm.use_key(&f, "evidence-1", &hsm.pin_file);
    println!("PIN file 0644: {}", exposed.stderr.trim());
    assert_eq!(exposed.code, 1, "{exposed:?}");
    assert!(
        exposed
            .stderr
            .contains("is readable by other users (mode 644)"),
        "{exposed:?}"
    );
    std::fs::set_permissions(&hsm.pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Configured properly, then the PIN file goes wrong: the run fails before
    // signing anything, and no key file appears in the token's place.
    assert_eq!(hsm.use_key(&f, "evidence-1", &hsm.pin_file).code, 0);
    let size = hsm.json(&f, &["log", "checkpoint"])["size"]
        .as_u64()
        .unwrap();
    std::fs::write(&hsm.pin_file, WRONG_PIN).unwrap();
    let run = hsm.cairn(&f, &["run"]);
    println!("run with a wrong PIN: {}", run.stderr.trim());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("wrong PIN for PKCS#11 token \"cairn-test\""),
        "{run:?}"
    );
    assert!(!f.data.join("keys/signing.key").exists());
    assert_eq!(
        hsm.json(&f, &["log", "checkpoint"])["size"]
            .as_u64()
            .unwrap(),
        size,
        "nothing was logged"
    );
    let show = hsm.cairn(&f, &["key", "show"]);
    assert_eq!(show.code, 1, "{show:?}");
    // A rotation without the token is refused too, the configuration kept.
    let rotate = hsm.cairn(&f, &["key", "rotate"]);
    assert_eq!(rotate.code, 1, "{rotate:?}");
    assert!(f.data.join("keys/signing.pkcs11.json").exists());
    // The right PIN again: the same key, and the run signs with it.
    std::fs::write(&hsm.pin_file, PIN).unwrap();
    assert_eq!(
        hsm.json(&f, &["key", "show"])["pkcs11"]["key_label"],
        "evidence-1"
    );
    let run = hsm.cairn(&f, &["run"]);
    assert_eq!(run.code, 0, "{run:?}");

    // Another key put in the token under the same label is refused, not used.
    for kind in ["privkey", "pubkey"] {
        hsm.cmd(
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
                "--login",
                "--pin",
                PIN,
                "--delete-object",
                "--type",
                kind,
                "--label",
                "evidence-1",
            ],
        );
    }
    hsm.keypair("evidence-1");
    f.write("README", "after the swap\n").commit("swap");
    let swapped = hsm.cairn(&f, &["run"]);
    println!("run with a swapped key: {}", swapped.stderr.trim());
    assert_eq!(swapped.code, 1, "{swapped:?}");
    assert!(
        swapped.stderr.contains("not the key") && swapped.stderr.contains("cairn was set to use"),
        "{swapped:?}"
    );
}
