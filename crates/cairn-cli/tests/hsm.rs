//! cairn's signing key in a PKCS#11 token (issue 18 item 2), end to end through
//! the `cairn` binary against Debian's SoftHSM 2 (a real PKCS#11 module), with
//! keys made by OpenSC's `pkcs11-tool` and by cairn itself: a run's evidence is
//! signed in the token and verified by npm `@sigstore/verify` and PyPI `in-toto`;
//! `cairn key show` names the token; a rotation to a new token key is in the
//! log; a missing module, a wrong PIN, an unknown token or key label are each
//! refused clearly, nothing is signed with another key, and the PIN is never
//! printed. SoftHSM missing fails the tests (scripts/install-deps installs it).
#![allow(clippy::unwrap_used)]

use crate::common;

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

    /// OpenSC's `pkcs11-tool` on the test token, logged in with its PIN.
    fn token_tool(&self, args: &[&str]) -> Run {
        let mut all = vec![
            "--module",
            MODULE,
            "--token-label",
            TOKEN,
            "--login",
            "--pin",
            PIN,
        ];
        all.extend_from_slice(args);
        self.cmd("pkcs11-tool", &all)
    }

    /// Deletes the key pair labelled `label` from the token (both halves).
    fn delete_pair(&self, label: &str) {
        for kind in ["privkey", "pubkey"] {
            self.token_tool(&["--delete-object", "--type", kind, "--label", label]);
        }
    }

    /// A P-256 key pair made in the token by OpenSC's pkcs11-tool.
    fn keypair(&self, label: &str) {
        self.token_tool(&[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            label,
        ]);
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

/// The last run's bundles exported into `../<dir>`, with the evidence key's
/// PEM written beside them: (bundle files, key file, key id).
fn export_last_run(hsm: &Hsm, f: &Fixture, dir: &str) -> (Vec<PathBuf>, PathBuf, String) {
    let shown = hsm.json(f, &["key", "show"]);
    let key_id = shown["key_id"].as_str().unwrap().to_owned();
    let key = f.repo.join(format!("../{dir}.pub"));
    std::fs::write(&key, shown["public_key"].as_str().unwrap()).unwrap();
    let export = f.repo.join(format!("../{dir}"));
    let list = hsm.json(
        f,
        &["evidence", "last", "--export", export.to_str().unwrap()],
    );
    let list = list.as_array().unwrap();
    assert!(!list.is_empty());
    let files = list
        .iter()
        .map(|e| PathBuf::from(e["file"].as_str().unwrap()))
        .collect();
    (files, key, key_id)
}

fn interop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cairn-evidence/tests/interop")
}

/// sigstore-js on one bundle, with cairn's trusted root (so the log entry's
/// inclusion proof and checkpoint signature are checked too).
fn sigstore_js(f: &Fixture, file: &Path, key: &Path, key_id: &str) -> Run {
    sigstore_js_with(&f.data.join("trusted_root.json"), file, key, key_id)
}

fn sigstore_js_with(root: &Path, file: &Path, key: &Path, key_id: &str) -> Run {
    Run::from(
        Command::new("node")
            .arg(interop().join("verify_bundle.js"))
            .arg(file)
            .arg(key)
            .arg(key_id)
            .arg(root)
            .env("NODE_PATH", node_modules())
            .output()
            .unwrap(),
    )
}

/// Every bundle of the last run, verified by sigstore-js (with cairn's trusted
/// root, so the log entry is checked too) and its DSSE envelope by in-toto;
/// returns how many.
fn verify_last_run_externally(hsm: &Hsm, f: &Fixture, dir: &str) -> usize {
    let (files, key, key_id) = export_last_run(hsm, f, dir);
    for file in &files {
        let bundle: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert_eq!(
            bundle["verificationMaterial"]["publicKey"]["hint"], key_id,
            "{file:?}"
        );
        let node = sigstore_js(f, file, &key, &key_id);
        assert_eq!(node.code, 0, "@sigstore/verify on {file:?}: {node:?}");
        let envelope = file.with_extension("dsse.json");
        std::fs::write(&envelope, bundle["dsseEnvelope"].to_string()).unwrap();
        let py = Run::from(
            Command::new(in_toto_python())
                .arg(interop().join("verify_dsse.py"))
                .arg(&envelope)
                .arg(&key)
                .arg(&key_id)
                .output()
                .unwrap(),
        );
        assert_eq!(py.code, 0, "in-toto on {envelope:?}: {py:?}");
        assert!(
            py.stdout.contains("verified: ecdsa-sha2-nistp256"),
            "{py:?}"
        );
    }
    files.len()
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
    assert!(f.data.join("keys/signing.pub").is_file());

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
    // The key file is gone (its recorded public key with it: the
    // configuration records the token's); only the token's configuration is
    // there, private.
    let keys = f.data.join("keys");
    assert!(!keys.join("signing.key").exists());
    assert!(!keys.join("signing.pub").exists());
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
    let listed = hsm.token_tool(&["--list-objects"]);
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
    // Showing the key needs no secret: the recorded public key, without the
    // token or its PIN.
    let show = hsm.cairn(&f, &["--json", "key", "show"]);
    assert_eq!(show.code, 0, "{show:?}");
    let shown: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(shown["pkcs11"]["key_label"], "evidence-1", "{show:?}");
    // A rotation without the token is refused, the configuration kept.
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
    hsm.delete_pair("evidence-1");
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

impl Hsm {
    /// An Ed25519 key pair made in the token by OpenSC's pkcs11-tool
    /// (sensitive, never extractable unless `extractable`).
    fn ed25519_keypair(&self, label: &str, extractable: bool) {
        let mut args = vec![
            "--keypairgen",
            "--key-type",
            "EC:edwards25519",
            "--label",
            label,
        ];
        if extractable {
            args.push("--extractable");
        }
        self.token_tool(&args);
    }

    /// `cairn key log-hsm` for `label` with the PIN in `pin_file`.
    fn log_hsm(&self, f: &Fixture, label: &str, pin_file: &Path, generate: bool) -> Run {
        let mut args = vec![
            "key",
            "log-hsm",
            "--module",
            MODULE,
            "--token",
            TOKEN,
            "--key-label",
            label,
            "--pin-file",
            pin_file.to_str().unwrap(),
        ];
        if generate {
            args.push("--generate");
        }
        self.cairn(f, &args)
    }

    fn objects(&self) -> String {
        self.token_tool(&["--list-objects"]).stdout
    }
}

/// The log's verifier key as `cairn key show` names it.
fn log_verifier(hsm: &Hsm, f: &Fixture) -> String {
    hsm.json(f, &["key", "show"])["log_verifier"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The signature lines of the log's published checkpoint, as (name, key hash).
fn checkpoint_signers(f: &Fixture) -> Vec<(String, String)> {
    note_signers(&std::fs::read_to_string(f.data.join("log/checkpoint")).unwrap())
}

/// The signature lines of a signed note, as (name, key hash).
fn note_signers(note: &str) -> Vec<(String, String)> {
    use base64::Engine as _;
    let (_, sigs) = note.split_once("\n\n").unwrap();
    sigs.lines()
        .map(|l| {
            let rest = l.strip_prefix("— ").unwrap();
            let (name, b64) = rest.split_once(' ').unwrap();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            let hash: String = raw[..4].iter().map(|b| format!("{b:02x}")).collect();
            (name.to_owned(), hash)
        })
        .collect()
}

/// The key hash of a verifier key string `<name>+<hash>+<key>`.
fn hash_of(verifier: &str) -> String {
    verifier.split('+').nth(1).unwrap().to_owned()
}

/// The SLSA builder ids of the bundles in `files`.
fn builder_ids(files: &[PathBuf]) -> Vec<String> {
    use base64::Engine as _;
    files
        .iter()
        .filter_map(|file| {
            let bundle: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
            let payload = base64::engine::general_purpose::STANDARD
                .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
                .unwrap();
            let statement: Value = serde_json::from_slice(&payload).unwrap();
            statement["predicate"]["runDetails"]["builder"]["id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// Issue 18 item 2's leftover: the transparency log's checkpoint key in
/// SoftHSM. `cairn key log-hsm --generate` makes an Ed25519 key in the token
/// (sensitive, never extractable, as the token reports to pkcs11-tool) and hands
/// the log to it: the change is a `key-rotation` entry recorded under the old
/// key, the checkpoint at that size is signed by both keys, the key file is
/// gone. Checkpoints signed by the token then verify with cairn's own
/// verifier (`cairn log verify`, also against the pre-change checkpoint) and
/// with an independent one, sigstore-js's C2SP signed-note check of each
/// bundle's checkpoint against `trusted_root.json` (which lists both keys:
/// bundles logged before the change keep verifying); the builder id stays.
#[test]
fn log_checkpoints_signed_in_softhsm_verify_with_cairn_and_sigstore_js() {
    let hsm = Hsm::new();
    let f = Fixture::example("hello-c");
    hsm.ok(&f, &["key", "create"]);
    let run = hsm.cairn(&f, &["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (before, key, key_id) = export_last_run(&hsm, &f, "before");
    let old = log_verifier(&hsm, &f);
    let old_checkpoint = f.repo.join("../old-checkpoint");
    std::fs::copy(f.data.join("log/checkpoint"), &old_checkpoint).unwrap();
    assert!(f.data.join("keys/log.key").is_file());
    assert_eq!(
        std::fs::read_to_string(f.data.join("keys/log.pub")).unwrap(),
        format!("{old}\n")
    );

    let moved = hsm.log_hsm(&f, "log-1", &hsm.pin_file, true);
    println!("{}", moved.stdout);
    assert_eq!(moved.code, 0, "{moved:?}");
    assert!(
        moved.stdout.contains(
            "the log's checkpoints are now signed by the Ed25519 key in PKCS#11 token \"cairn-test\", key \"log-1\""
        ),
        "{moved:?}"
    );
    assert!(
        moved.stdout.contains(&format!("retired log key {old}")),
        "{moved:?}"
    );
    let new = log_verifier(&hsm, &f);
    assert_ne!(new, old);
    assert!(new.starts_with("cairn.local/log+"), "{new}");
    // The writer holds no private log key any more (nor its recorded public
    // key: the configuration records the token's); the configuration is
    // private and holds no PIN.
    let keys = f.data.join("keys");
    assert!(!keys.join("log.key").exists());
    assert!(!keys.join("log.pub").exists());
    let config = keys.join("log.pkcs11.json");
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stored = std::fs::read_to_string(&config).unwrap();
    assert!(!stored.contains(PIN), "{stored}");
    assert!(stored.contains(&new), "{stored}");
    // The change is in the log, recorded under the old key; the checkpoint
    // at that size is signed by both.
    let index: u64 = moved
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("logged as audit log entry "))
        .unwrap()
        .parse()
        .unwrap();
    let rotation = log_entry(&hsm, &f, index);
    assert_eq!(rotation["kind"], "key-rotation");
    assert_eq!(rotation["spec"]["purpose"], "log-checkpoint");
    assert_eq!(rotation["spec"]["algorithm"], "ed25519");
    assert_eq!(rotation["spec"]["oldKeyId"], old.as_str());
    assert_eq!(rotation["spec"]["newKeyId"], new.as_str());
    let handover = checkpoint_signers(&f);
    println!("handover checkpoint signed by {handover:?}");
    assert_eq!(
        handover,
        vec![
            ("cairn.local/log".to_owned(), hash_of(&old)),
            ("cairn.local/log".to_owned(), hash_of(&new)),
        ]
    );
    // The token's key as the token reports it to OpenSC's pkcs11-tool:
    // CKA_SENSITIVE, CKA_NEVER_EXTRACTABLE (cairn made it with
    // CKA_EXTRACTABLE false, and refuses one that is extractable: below).
    let objects = hsm.objects();
    let mut blocks: Vec<String> = Vec::new();
    for line in objects.lines() {
        match blocks.last_mut() {
            Some(block) if line.starts_with(' ') => {
                block.push('\n');
                block.push_str(line);
            }
            _ => blocks.push(line.to_owned()),
        }
    }
    let private = blocks
        .iter()
        .find(|b| b.starts_with("Private Key Object") && b.contains("label:      log-1"))
        .unwrap_or_else(|| panic!("{objects}"));
    assert!(private.contains("EC_EDWARDS"), "{private}");
    assert!(private.contains("never extractable"), "{private}");
    assert!(private.contains("sensitive"), "{private}");
    println!(
        "the token's log key: {}",
        private.trim().replace('\n', "; ")
    );

    let shown = hsm.ok(&f, &["key", "show"]);
    println!("{}", shown.stdout);
    assert!(
        shown.stdout.contains(
            "log key in PKCS#11 token \"cairn-test\", key \"log-1\" (module /usr/lib/softhsm/libsofthsm2.so)"
        ),
        "{shown:?}"
    );

    // New evidence: its checkpoints are signed in the token.
    f.write("README", "second commit\n").commit("second");
    let run = hsm.cairn(&f, &["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        checkpoint_signers(&f),
        vec![("cairn.local/log".to_owned(), hash_of(&new))]
    );
    let (after, _, _) = export_last_run(&hsm, &f, "after");
    for file in &after {
        let bundle: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let checkpoint = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
            ["checkpoint"]["envelope"]
            .as_str()
            .unwrap();
        assert_eq!(
            note_signers(checkpoint),
            vec![("cairn.local/log".to_owned(), hash_of(&new))],
            "{checkpoint}"
        );
    }
    // sigstore-js checks every bundle's checkpoint signature against the
    // trusted root: the new ones (token key) and the old ones (retired key).
    let n = verify_last_run_externally(&hsm, &f, "after-js");
    for file in &before {
        let node = sigstore_js(&f, file, &key, &key_id);
        assert_eq!(node.code, 0, "@sigstore/verify on {file:?}: {node:?}");
    }
    println!(
        "{n} bundles with token-signed checkpoints and {} from before the change verified by @sigstore/verify",
        before.len()
    );
    let mut root: Value =
        serde_json::from_slice(&std::fs::read(f.data.join("trusted_root.json")).unwrap()).unwrap();
    assert_eq!(root["tlogs"].as_array().unwrap().len(), 2, "{root}");
    assert!(root["tlogs"][0]["publicKey"]["validFor"]["end"].is_string());
    assert!(root["tlogs"][1]["publicKey"]["validFor"]["end"].is_null());
    // The check is real: with a root naming only the old key, sigstore-js
    // refuses the token-signed checkpoints.
    root["tlogs"].as_array_mut().unwrap().truncate(1);
    let old_only = f.repo.join("../old-only-root.json");
    std::fs::write(&old_only, root.to_string()).unwrap();
    let refused = sigstore_js_with(&old_only, &after[0], &key, &key_id);
    println!(
        "sigstore-js with the old log key only: {}",
        refused.stderr.trim()
    );
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("checkpoint"), "{refused:?}");
    // cairn's own verifier: the whole log, and consistency with the
    // checkpoint the old key signed before the change.
    let verified = hsm.cairn(
        &f,
        &[
            "log",
            "verify",
            "--checkpoint",
            old_checkpoint.to_str().unwrap(),
        ],
    );
    println!("{}", verified.stdout);
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(verified.stdout.contains("log intact"), "{verified:?}");
    assert!(verified.stdout.contains("consistent"), "{verified:?}");
    // The installation keeps its builder id across the log key change.
    let ids_before = builder_ids(&before);
    let ids_after = builder_ids(&after);
    assert!(!ids_before.is_empty() && !ids_after.is_empty());
    assert_eq!(ids_before[0], ids_after[0]);

    // From one token key to another: the same steps, the first token key
    // retired in turn; everything logged so far still verifies.
    let again = hsm.log_hsm(&f, "log-2", &hsm.pin_file, true);
    println!("{}", again.stdout);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains(&format!("retired log key {new}")),
        "{again:?}"
    );
    let third = log_verifier(&hsm, &f);
    assert_eq!(
        checkpoint_signers(&f),
        vec![
            ("cairn.local/log".to_owned(), hash_of(&new)),
            ("cairn.local/log".to_owned(), hash_of(&third)),
        ]
    );
    let root: Value =
        serde_json::from_slice(&std::fs::read(f.data.join("trusted_root.json")).unwrap()).unwrap();
    assert_eq!(root["tlogs"].as_array().unwrap().len(), 3, "{root}");
    for file in before.iter().chain(&after) {
        let node = sigstore_js(&f, file, &key, &key_id);
        assert_eq!(node.code, 0, "@sigstore/verify on {file:?}: {node:?}");
    }
    let verified = hsm.cairn(
        &f,
        &[
            "log",
            "verify",
            "--checkpoint",
            old_checkpoint.to_str().unwrap(),
        ],
    );
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(!f.data.join("keys/log.key").exists());
}

/// Bad input for the log's token key: a wrong PIN, a missing key, a key of
/// another type (P-256), an extractable Ed25519 key, a missing module: each
/// refused (exit 1) with its reason, the file key still signing, nothing
/// logged. Then, configured, a token that goes wrong (wrong PIN, a key
/// swapped under the label, a key file planted beside it) stops the run
/// before anything is signed: never a fall-back to a file key or a new key.
#[test]
fn a_bad_log_token_is_refused_and_nothing_is_signed_with_another_key() {
    let hsm = Hsm::new();
    let f = Fixture::example("hello-c");
    hsm.ok(&f, &["key", "create"]);
    hsm.ed25519_keypair("log-x", true);
    hsm.ed25519_keypair("log-ok", false);
    let old = log_verifier(&hsm, &f);
    let size = |hsm: &Hsm, f: &Fixture| {
        hsm.json(f, &["log", "checkpoint"])["size"]
            .as_u64()
            .unwrap()
    };
    let before = size(&hsm, &f);
    let wrong = f.repo.join("../wrong-pin");
    std::fs::write(&wrong, WRONG_PIN).unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cases: [(&str, &str, &Path, &str); 4] = [
        (
            "wrong PIN",
            "log-ok",
            &wrong,
            "wrong PIN for PKCS#11 token \"cairn-test\"",
        ),
        (
            "key missing",
            "no-such-key",
            &hsm.pin_file,
            "no private key labelled \"no-such-key\" in PKCS#11 token \"cairn-test\"",
        ),
        (
            "wrong key type",
            "evidence-1",
            &hsm.pin_file,
            "is a CKK_EC key, not an Ed25519 key (CKK_EC_EDWARDS)",
        ),
        (
            "extractable key",
            "log-x",
            &hsm.pin_file,
            "the private key is extractable (CKA_EXTRACTABLE)",
        ),
    ];
    for (what, label, pin, expected) in cases {
        let refused = hsm.log_hsm(&f, label, pin, false);
        println!("{what}: {}", refused.stderr.trim());
        assert_eq!(refused.code, 1, "{what}: {refused:?}");
        assert!(refused.stderr.contains(expected), "{what}: {refused:?}");
        assert!(f.data.join("keys/log.key").is_file(), "{what}");
        assert!(!f.data.join("keys/log.pkcs11.json").exists(), "{what}");
        assert_eq!(log_verifier(&hsm, &f), old, "{what}");
        assert_eq!(size(&hsm, &f), before, "{what}: nothing was logged");
    }
    let missing = hsm.cairn(
        &f,
        &[
            "key",
            "log-hsm",
            "--module",
            "/usr/lib/nonexistent/libpkcs11.so",
            "--token",
            TOKEN,
            "--key-label",
            "log-ok",
            "--pin-file",
            hsm.pin_file.to_str().unwrap(),
        ],
    );
    println!("module missing: {}", missing.stderr.trim());
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("the PKCS#11 module /usr/lib/nonexistent/libpkcs11.so cannot be read"),
        "{missing:?}"
    );
    assert!(f.data.join("keys/log.key").is_file());

    // A key pkcs11-tool made (sensitive, never extractable) is accepted.
    let moved = hsm.log_hsm(&f, "log-ok", &hsm.pin_file, false);
    assert_eq!(moved.code, 0, "{moved:?}");
    let configured = log_verifier(&hsm, &f);
    let size_now = size(&hsm, &f);
    // The PIN goes wrong: the run stops before anything is signed or
    // logged, and no key file appears in the token's place.
    std::fs::write(&hsm.pin_file, WRONG_PIN).unwrap();
    let run = hsm.cairn(&f, &["run"]);
    println!("run with a wrong log-token PIN: {}", run.stderr.trim());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("wrong PIN for PKCS#11 token \"cairn-test\""),
        "{run:?}"
    );
    assert!(!f.data.join("keys/log.key").exists());
    assert_eq!(size(&hsm, &f), size_now, "nothing was logged");
    assert_eq!(log_verifier(&hsm, &f), configured);
    std::fs::write(&hsm.pin_file, PIN).unwrap();

    // Another Ed25519 key put under the label is refused, not used.
    hsm.delete_pair("log-ok");
    hsm.ed25519_keypair("log-ok", false);
    let swapped = hsm.cairn(&f, &["run"]);
    println!("run with a swapped log key: {}", swapped.stderr.trim());
    assert_eq!(swapped.code, 1, "{swapped:?}");
    assert!(
        swapped.stderr.contains("not the log key")
            && swapped.stderr.contains("cairn was set to use"),
        "{swapped:?}"
    );
    assert_eq!(size(&hsm, &f), size_now, "nothing was logged");
    assert!(!f.data.join("keys/log.key").exists());

    // A key file planted beside the token's configuration: which signs would
    // be a guess, so nothing does.
    std::fs::write(
        f.data.join("keys/log.key"),
        "PRIVATE+KEY+cairn.local/log+00000000+AQ==\n",
    )
    .unwrap();
    std::fs::set_permissions(
        f.data.join("keys/log.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let planted = hsm.cairn(&f, &["run"]);
    println!("run with a planted log key file: {}", planted.stderr.trim());
    assert_eq!(planted.code, 1, "{planted:?}");
    assert!(planted.stderr.contains("both"), "{planted:?}");
}
