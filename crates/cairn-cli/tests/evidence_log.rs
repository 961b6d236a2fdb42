//! cairn's evidence and the audit log, end to end through the `cairn` binary:
//! key changes are logged before they take effect, every bundle a run signs
//! carries its log entry (inclusion proof and signed checkpoint), and
//! `cairn verify --key` checks cairn's own bundles, log entry included.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{Fixture, Run, node_modules};

use cairn_engine::DataDir;
use cairn_engine::audit::{AuditLog, Change};
use cairn_engine::keys::KeyStore;
use cairn_evidence::{Bundle, Observed, Statement, Subject};
use cairn_tlog::merkle::{leaf_hash, verify_inclusion};
use serde_json::Value;

fn log_entry(f: &Fixture, index: u64) -> Value {
    let shown = f.json(&["log", "show", &index.to_string()]);
    serde_json::from_str(shown["entry_text"].as_str().unwrap()).unwrap()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn hash32(text: &str) -> [u8; 32] {
    unhex(text).try_into().unwrap()
}

fn flip_after(bytes: &[u8], marker: &[u8], offset: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = out
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap_or_else(|| panic!("{} not found", String::from_utf8_lossy(marker)))
        + marker.len()
        + offset;
    out[at] = if out[at] == b'A' { b'B' } else { b'A' };
    out
}

/// Moves the bundle's entry to the previous index (or the next, at 0), in the
/// entry and in its proof alike.
fn moved_index(bundle: &mut Value) {
    let entry = &mut bundle["verificationMaterial"]["tlogEntries"][0];
    let index: u64 = entry["logIndex"].as_str().unwrap().parse().unwrap();
    let moved = if index == 0 { 1 } else { index - 1 }.to_string();
    entry["logIndex"] = Value::String(moved.clone());
    entry["inclusionProof"]["logIndex"] = Value::String(moved);
}

/// Key creation and rotation are in the log before the new key signs anything;
/// each bundle of the run that follows carries its log entry, whose proof
/// holds against the log's current checkpoint.
#[test]
fn key_rotation_is_logged_before_use_and_every_bundle_carries_its_log_entry() {
    let f = Fixture::example("hello-c");
    let created = f.ok(&["key", "create"]);
    assert!(
        created.stdout.contains("logged as audit log entry 0"),
        "{created:?}"
    );
    let first = f.json(&["key", "show"])["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = f.ok(&["key", "rotate"]);
    assert!(
        rotated.stdout.contains("logged as audit log entry 1"),
        "{rotated:?}"
    );
    assert!(!rotated.stdout.contains("not in the transparency log"));
    let shown = f.json(&["key", "show"]);
    let second = shown["key_id"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let public =
        cairn_evidence::VerifyingKey::from_pem(shown["public_key"].as_str().unwrap()).unwrap();

    let creation = log_entry(&f, 0);
    assert_eq!(creation["kind"], "key-rotation");
    assert_eq!(creation["spec"]["oldKeyId"], Value::Null);
    assert_eq!(creation["spec"]["newKeyId"], first.as_str());
    let rotation = log_entry(&f, 1);
    assert_eq!(rotation["kind"], "key-rotation");
    assert_eq!(rotation["spec"]["purpose"], "evidence-signing");
    assert_eq!(rotation["spec"]["oldKeyId"], first.as_str());
    assert_eq!(rotation["spec"]["newKeyId"], second.as_str());
    let text = f.ok(&["log", "show", "1"]).stdout;
    assert!(
        text.contains("key-rotation") && text.contains(&second),
        "{text}"
    );

    assert_eq!(f.run(&["run"]).code, 0);
    let log = f.log_verifier();
    let export = f.repo.join("../evidence");
    let list = f.json(&["evidence", "last", "--export", export.to_str().unwrap()]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    let now = f.json(&["log", "checkpoint"]);
    let size = now["size"].as_u64().unwrap();
    assert_eq!(size, 2 + 3, "two key entries and three bundles");
    let root = hash32(now["root"].as_str().unwrap());
    let mut indices = Vec::new();
    for e in list {
        let bytes = std::fs::read(e["file"].as_str().unwrap()).unwrap();
        let bundle = Bundle::from_json(&bytes).unwrap();
        // Signed with the rotated key, logged after the rotation.
        assert_eq!(bundle.key_hint, second);
        bundle.verify_with_log(&public, &log).unwrap();
        let [entry] = bundle.tlog_entries.as_slice() else {
            panic!("one entry expected: {:?}", bundle.tlog_entries);
        };
        let index = u64::try_from(entry.log_index).unwrap();
        assert!(index > 1, "{index}");
        assert_eq!(e["log_index"], index);
        indices.push(index);
        assert_eq!(entry.kind_version.kind, "dsse");
        assert_eq!(entry.kind_version.version, "0.0.2");
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        let wire = &json["verificationMaterial"]["tlogEntries"][0];
        assert_eq!(wire["logIndex"], index.to_string());
        assert!(
            wire["inclusionProof"]["checkpoint"]["envelope"]
                .as_str()
                .unwrap()
                .starts_with("cairn.local/log\n")
        );
        // The log holds exactly the entry's body at that index.
        let shown = f.json(&["log", "show", &index.to_string()]);
        assert_eq!(
            unhex(shown["entry_hex"].as_str().unwrap()),
            entry.canonicalized_body
        );
        // And proves it against the current checkpoint.
        let proof = f.json(&["log", "prove", "inclusion", &index.to_string()]);
        assert_eq!(proof["tree_size"].as_u64().unwrap(), size);
        let hashes: Vec<[u8; 32]> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hash32(h.as_str().unwrap()))
            .collect();
        verify_inclusion(
            &leaf_hash(&entry.canonicalized_body),
            index,
            size,
            &hashes,
            &root,
        )
        .unwrap();
        // Tampering with the entry is refused.
        let mut moved: Value = serde_json::from_slice(&bytes).unwrap();
        moved_index(&mut moved);
        let refused = Bundle::from_json(moved.to_string().as_bytes())
            .and_then(|b| b.verify_with_log(&public, &log).map(|_| ()));
        assert!(refused.is_err(), "a moved index was accepted");
        for (marker, offset) in [
            (&b"\"hashes\":[\""[..], 3),
            (b"\"canonicalizedBody\":\"", 20),
            (b"\"rootHash\":\"", 5),
        ] {
            let bad = flip_after(&bytes, marker, offset);
            let refused =
                Bundle::from_json(&bad).and_then(|b| b.verify_with_log(&public, &log).map(|_| ()));
            assert!(
                refused.is_err(),
                "{} accepted",
                String::from_utf8_lossy(marker)
            );
        }
    }
    indices.sort_unstable();
    assert_eq!(indices, [2, 3, 4]);
    assert_eq!(f.run(&["log", "verify"]).code, 0);
}

/// If the log cannot record a rotation, the key stays as it was.
#[test]
fn a_rotation_the_log_cannot_record_does_not_happen() {
    let f = Fixture::new();
    f.ok(&["key", "create", "--algorithm", "ed25519"]);
    let before = f.json(&["key", "show"])["key_id"].clone();
    let tiles = f.data.join("log/tile");
    std::fs::remove_dir_all(&tiles).unwrap();
    std::fs::write(&tiles, "in the way").unwrap();
    let refused = f.run(&["key", "rotate"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("audit log"), "{refused:?}");
    assert_eq!(f.json(&["key", "show"])["key_id"], before);
    let forced = f.run(&["key", "create", "--force"]);
    assert_ne!(forced.code, 0, "{forced:?}");
    assert_eq!(f.json(&["key", "show"])["key_id"], before);
}

/// A bundle signed and logged by the engine, about `artifact`, written to `out`.
fn sign_and_log(data: &Path, artifact: &[u8], out: &Path) {
    let data = DataDir::at(data);
    let audit = AuditLog::open(&data).unwrap();
    let key = KeyStore::new(&data).require().unwrap();
    let observed = Observed {
        workload: "hello".into(),
        repository: "git+file:///src/hello".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        run_id: "1".into(),
        chain: "default".into(),
        stage: "build".into(),
        stage_kind: "build".into(),
        command: Some("make".into()),
        started_ms: 1_764_072_000_000,
        finished_ms: 1_764_072_003_250,
        exit_code: Some(0),
        logs: vec![],
        base_images: vec![],
        failed_tests: vec![],
        tests: None,
        artifacts: vec![Subject::sha256("hello", cairn_evidence::sha256(artifact))],
        triggered_by: None,
        change: Vec::new(),
    };
    let statement = Statement::provenance(&observed, "urn:cairn:builder:engine").unwrap();
    let mut bundle = Bundle::sign_statement(&statement, &key).unwrap();
    let receipt = audit
        .record(&Change::evidence(&bundle.envelope, key.verifying_key()).unwrap())
        .unwrap();
    bundle.tlog_entries.push(receipt.tlog_entry(1_764_072_004));
    std::fs::write(out, bundle.to_json().unwrap()).unwrap();
}

/// `cairn verify --bundle B --key K ARTIFACT` checks a cairn bundle, log entry
/// included, with the trusted root cairn keeps for its own log; one flipped
/// byte anywhere that matters is refused.
#[test]
fn cairn_verify_accepts_cairns_own_bundle_and_rejects_flipped_bytes() {
    for algorithm in ["p256", "ed25519"] {
        let f = Fixture::new();
        f.ok(&["key", "create", "--algorithm", algorithm]);
        let shown = f.json(&["key", "show"]);
        assert_eq!(
            shown["trusted_root"],
            f.data.join("trusted_root.json").display().to_string()
        );
        let dir = f.repo.clone();
        let key = dir.join("cairn.pub");
        std::fs::write(&key, shown["public_key"].as_str().unwrap()).unwrap();
        let artifact = dir.join("hello");
        std::fs::write(&artifact, b"the built program").unwrap();
        let bundle = dir.join("hello.sigstore.json");
        sign_and_log(&f.data, b"the built program", &bundle);
        let verify = |bundle: &Path, artifact: &Path| {
            f.run(&[
                "verify",
                "--bundle",
                bundle.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                artifact.to_str().unwrap(),
            ])
        };
        let ok = verify(&bundle, &artifact);
        assert_eq!(ok.code, 0, "{algorithm}: {ok:?}");
        assert!(
            ok.stdout.contains("inclusion proof and checkpoint"),
            "{ok:?}"
        );
        // The same, naming the trusted root explicitly.
        let root = f.data.join("trusted_root.json");
        let explicit = f.run(&[
            "verify",
            "--bundle",
            bundle.to_str().unwrap(),
            "--trusted-root",
            root.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ]);
        assert_eq!(explicit.code, 0, "{explicit:?}");

        let bytes = std::fs::read(&bundle).unwrap();
        for (marker, offset) in [
            (&b"\"payload\":\""[..], 5),
            (b"\"sig\":\"", 5),
            (b"\"canonicalizedBody\":\"", 20),
            (b"\"hashes\":[\"", 3),
            (b"\"rootHash\":\"", 5),
            (b"\"keyId\":\"", 2),
        ] {
            let bad = dir.join("bad.sigstore.json");
            std::fs::write(&bad, flip_after(&bytes, marker, offset)).unwrap();
            let refused = verify(&bad, &artifact);
            assert_eq!(
                refused.code,
                1,
                "{algorithm}: a flipped byte after {} was accepted: {refused:?}",
                String::from_utf8_lossy(marker)
            );
        }
        // Another index, consistently in the entry and its proof.
        let mut moved: Value = serde_json::from_slice(&bytes).unwrap();
        moved_index(&mut moved);
        let bad = dir.join("bad-index.sigstore.json");
        std::fs::write(&bad, moved.to_string()).unwrap();
        assert_eq!(verify(&bad, &artifact).code, 1);
        // The checkpoint's signature.
        let mut json: Value = serde_json::from_slice(&bytes).unwrap();
        let envelope = &mut json["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
            ["envelope"];
        let mut text = envelope.as_str().unwrap().to_owned();
        let at = text.len() - 3;
        let flipped = if text.as_bytes()[at] == b'A' {
            "B"
        } else {
            "A"
        };
        text.replace_range(at..at + 1, flipped);
        *envelope = Value::String(text);
        let bad = dir.join("bad-checkpoint.sigstore.json");
        std::fs::write(&bad, json.to_string()).unwrap();
        assert_eq!(verify(&bad, &artifact).code, 1);
        // Another artifact.
        let other = dir.join("other");
        std::fs::write(&other, b"the built program!").unwrap();
        assert_eq!(verify(&bundle, &other).code, 1);
    }
}

/// Without a log of its own in the data directory and no trusted root, there
/// is nothing to check a log entry against: refused with a reason.
#[test]
fn cairn_verify_without_any_trusted_root_says_so() {
    let f = Fixture::new();
    f.ok(&["key", "create"]);
    let bundle = f.repo.join("b.json");
    let artifact = f.repo.join("a");
    std::fs::write(&artifact, b"a").unwrap();
    sign_and_log(&f.data, b"a", &bundle);
    let key = f.repo.join("k.pub");
    std::fs::write(
        &key,
        f.json(&["key", "show"])["public_key"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::remove_file(f.data.join("trusted_root.json")).unwrap();
    let refused = f.run(&[
        "verify",
        "--bundle",
        bundle.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        artifact.to_str().unwrap(),
    ]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("trusted root"), "{refused:?}");
}

/// npm `@sigstore/verify` accepts a logged cairn bundle given cairn's key and
/// the trusted root cairn writes for its log (it then requires and checks the
/// entry: body, inclusion proof, checkpoint signature), and rejects it with a
/// flipped byte in the entry or without the log as trust material.
#[test]
fn sigstore_js_checks_the_log_entry_with_cairns_trusted_root() {
    let f = Fixture::new();
    f.ok(&["key", "create"]);
    let shown = f.json(&["key", "show"]);
    let key = f.repo.join("cairn.pub");
    std::fs::write(&key, shown["public_key"].as_str().unwrap()).unwrap();
    let bundle = f.repo.join("hello.sigstore.json");
    sign_and_log(&f.data, b"program", &bundle);
    let root = f.data.join("trusted_root.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cairn-evidence/tests/interop/verify_bundle.js");
    let node = |bundle: &Path, root: Option<&Path>| {
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg(bundle)
            .arg(&key)
            .arg(shown["key_id"].as_str().unwrap())
            .env("NODE_PATH", node_modules());
        if let Some(root) = root {
            cmd.arg(root);
        }
        Run::from(cmd.output().unwrap())
    };
    let ok = node(&bundle, Some(&root));
    assert_eq!(ok.code, 0, "{ok:?}");
    let without = node(&bundle, None);
    assert_eq!(without.code, 1, "{without:?}");
    let bytes = std::fs::read(&bundle).unwrap();
    for (marker, offset) in [
        (&b"\"canonicalizedBody\":\""[..], 20),
        (b"\"hashes\":[\"", 3),
        // The checkpoint's signature (the note's last line).
        (b"cairn.local/log ", 10),
    ] {
        // (sigstore-js recomputes the root from the proof and compares it with
        // the checkpoint's; it ignores `rootHash`, which cairn also checks.)
        let bad = f.repo.join("bad.sigstore.json");
        std::fs::write(&bad, flip_after(&bytes, marker, offset)).unwrap();
        let refused = node(&bad, Some(&root));
        assert_eq!(
            refused.code,
            1,
            "a flipped byte after {} was accepted: {refused:?}",
            String::from_utf8_lossy(marker)
        );
    }
}
