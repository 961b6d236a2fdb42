//! The Sigstore conformance suite (sigstore/sigstore-conformance
//! `test/assets/bundle-verify`): every case folder must verify, or be rejected
//! when its name ends in `_fail`. Reads `$CAIRN_CONFORMANCE_DIR`
//! (default `../../../shared/conformance` from this crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use cairn_sigstore::{
    ArtifactHasher, ArtifactInput, TrustedRoot, VerificationPolicy, VerifyError, verify,
};

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";
const EXPECTED_CASES: usize = 70;

fn suite_dir() -> PathBuf {
    cairn_testkit::conformance("sigstore-bundle-verify")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn read_opt(path: &Path) -> Option<Vec<u8>> {
    path.exists().then(|| read(path))
}

/// Runs one case folder through the library exactly as `cairn verify` does.
fn run_case(suite: &Path, case: &Path, now: i64, by_digest: bool) -> Result<(), VerifyError> {
    let bundle = read(&case.join("bundle.sigstore.json"));
    let artifact = read_opt(&case.join("artifact")).unwrap_or_else(|| read(&suite.join("a.txt")));
    let root = read_opt(&case.join("trusted_root.json"))
        .unwrap_or_else(|| read(&suite.join("production_trusted_root.json")));
    let root = TrustedRoot::from_json(&root)?;
    let text = |name: &str, default: &str| {
        read_opt(&case.join(name)).map_or_else(
            || default.to_owned(),
            |b| String::from_utf8(b).unwrap().trim().to_owned(),
        )
    };
    let policy = match read_opt(&case.join("key.pub")) {
        Some(key) => VerificationPolicy::Key(key),
        None => VerificationPolicy::Identity {
            san: text("identity", DEFAULT_IDENTITY),
            issuer: text("issuer", DEFAULT_ISSUER),
        },
    };
    // The CLI hashes the artifact as it streams it, and gives the bytes only
    // when the key needs them.
    let input = if by_digest {
        let mut h = ArtifactHasher::new();
        for chunk in artifact.chunks(7) {
            h.update(chunk);
        }
        ArtifactInput::Sha256(h.finish())
    } else {
        ArtifactInput::Bytes(&artifact)
    };
    match verify(&bundle, input, &policy, &root, now) {
        Err(VerifyError::NeedsArtifactBytes) => verify(
            &bundle,
            ArtifactInput::Bytes(&artifact),
            &policy,
            &root,
            now,
        )
        .map(|_| ()),
        other => other.map(|_| ()),
    }
}

#[test]
fn sigstore_bundle_verify_suite() {
    run_suite(false);
}

/// The same suite given only the artifact's digest, as `cairn verify` streams it.
#[test]
fn sigstore_bundle_verify_suite_from_digest() {
    run_suite(true);
}

fn run_suite(by_digest: bool) {
    let suite = suite_dir();
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&suite)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("bundle.sigstore.json").is_file())
        .collect();
    cases.sort();
    assert_eq!(
        cases.len(),
        EXPECTED_CASES,
        "the suite should hold {EXPECTED_CASES} cases"
    );
    let mut misses = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let should_fail = name.ends_with("_fail");
        match (run_case(&suite, case, now, by_digest), should_fail) {
            (Ok(()), false) => println!("ok   {name}"),
            (Err(e), true) => println!("ok   {name} (rejected: [{}] {e})", e.check()),
            (Ok(()), true) => misses.push(format!("{name}: verified, but must be rejected")),
            (Err(e), false) => misses.push(format!("{name}: rejected: [{}] {e}", e.check())),
        }
    }
    println!(
        "{}/{} conformance cases",
        cases.len() - misses.len(),
        cases.len()
    );
    for m in &misses {
        println!("MISS {m}");
    }
    assert!(
        misses.is_empty(),
        "{} misses:\n{}",
        misses.len(),
        misses.join("\n")
    );
}

// ---- targeted checks on real bundles: each tampering must fail for its own reason ----

fn case_inputs(name: &str) -> (PathBuf, Vec<u8>, Vec<u8>, TrustedRoot) {
    let suite = suite_dir();
    let case = suite.join(name);
    let bundle = read(&case.join("bundle.sigstore.json"));
    let artifact = read_opt(&case.join("artifact")).unwrap_or_else(|| read(&suite.join("a.txt")));
    let root = read_opt(&case.join("trusted_root.json"))
        .unwrap_or_else(|| read(&suite.join("production_trusted_root.json")));
    (
        case,
        bundle,
        artifact,
        TrustedRoot::from_json(&root).unwrap(),
    )
}

fn identity() -> VerificationPolicy {
    VerificationPolicy::Identity {
        san: DEFAULT_IDENTITY.to_owned(),
        issuer: DEFAULT_ISSUER.to_owned(),
    }
}

const NOW: i64 = 1_900_000_000;

/// Edits the bundle JSON, verifies, and returns the failed check's name.
fn tampered(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> &'static str {
    let (_, bundle, artifact, root) = case_inputs(name);
    let mut v: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    edit(&mut v);
    let bytes = serde_json::to_vec(&v).unwrap();
    match verify(
        &bytes,
        ArtifactInput::Bytes(&artifact),
        &identity(),
        &root,
        NOW,
    ) {
        Ok(_) => "verified",
        Err(e) => e.check(),
    }
}

#[test]
fn untampered_bundles_verify() {
    assert_eq!(tampered("happy-path-v0.3", |_| {}), "verified");
    assert_eq!(tampered("rekor2-happy-path", |_| {}), "verified");
}

type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

#[test]
fn each_tampering_fails_its_own_check() {
    let entry = "/verificationMaterial/tlogEntries/0";
    let cases: Vec<(&str, &str, Edit)> = vec![
        (
            "happy-path-v0.3",
            "set",
            Box::new(move |v| {
                *v.pointer_mut(&format!("{entry}/integratedTime")).unwrap() = "1710869187".into();
            }),
        ),
        (
            "happy-path-v0.3",
            "set",
            Box::new(move |v| {
                *v.pointer_mut(&format!("{entry}/logIndex")).unwrap() = "79571824".into();
            }),
        ),
        (
            "happy-path-v0.3",
            "inclusion-proof",
            Box::new(move |v| {
                *v.pointer_mut(&format!("{entry}/inclusionProof/hashes/0"))
                    .unwrap() = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
            }),
        ),
        (
            "happy-path-v0.3",
            "inclusion-proof",
            Box::new(move |v| {
                v.pointer_mut(&format!("{entry}/inclusionProof/hashes"))
                    .unwrap()
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
        ),
        (
            "happy-path-v0.3",
            "checkpoint",
            Box::new(move |v| {
                let p = v
                    .pointer_mut(&format!("{entry}/inclusionProof/checkpoint/envelope"))
                    .unwrap();
                let text =
                    p.as_str()
                        .unwrap()
                        .replacen("rekor.sigstore.dev - ", "rekor.example - ", 1);
                *p = text.into();
            }),
        ),
        (
            "happy-path-v0.3",
            "tlog-entry",
            Box::new(move |v| {
                *v.pointer_mut(&format!("{entry}/logId/keyId")).unwrap() =
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
            }),
        ),
        (
            "happy-path-v0.3",
            "tlog-entry",
            Box::new(move |v| {
                v.pointer_mut(entry)
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .remove("inclusionProof");
            }),
        ),
        (
            "happy-path-v0.3",
            "bundle-format",
            Box::new(|v| {
                v.pointer_mut("/verificationMaterial/tlogEntries")
                    .unwrap()
                    .as_array_mut()
                    .unwrap()
                    .clear();
            }),
        ),
        (
            "happy-path-v0.3",
            "digest",
            Box::new(|v| {
                *v.pointer_mut("/messageSignature/messageDigest/digest")
                    .unwrap() = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
            }),
        ),
        (
            "rekor2-happy-path",
            "time",
            Box::new(|v| {
                v.pointer_mut("/verificationMaterial")
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .remove("timestampVerificationData");
            }),
        ),
        (
            "rekor2-happy-path",
            "checkpoint",
            Box::new(move |v| {
                let p = v
                    .pointer_mut(&format!("{entry}/inclusionProof/checkpoint/envelope"))
                    .unwrap();
                let text = p.as_str().unwrap().replacen("\n736\n", "\n737\n", 1);
                *p = text.into();
            }),
        ),
        (
            "happy-path-intoto-in-dsse-v3",
            "signature",
            Box::new(|v| {
                *v.pointer_mut("/dsseEnvelope/payloadType").unwrap() = "application/json".into();
            }),
        ),
    ];
    for (i, (name, want, edit)) in cases.into_iter().enumerate() {
        assert_eq!(tampered(name, edit), want, "tampering #{i} of {name}");
    }
}

#[test]
fn identity_and_issuer_must_match() {
    let (_, bundle, artifact, root) = case_inputs("happy-path-v0.3");
    let wrong_san = VerificationPolicy::Identity {
        san: "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main".to_owned(),
        issuer: DEFAULT_ISSUER.to_owned(),
    };
    let err = verify(
        &bundle,
        ArtifactInput::Bytes(&artifact),
        &wrong_san,
        &root,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::Identity { .. }), "{err}");
    let wrong_issuer = VerificationPolicy::Identity {
        san: DEFAULT_IDENTITY.to_owned(),
        issuer: "https://accounts.google.com".to_owned(),
    };
    let err = verify(
        &bundle,
        ArtifactInput::Bytes(&artifact),
        &wrong_issuer,
        &root,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::Issuer { .. }), "{err}");
}

#[test]
fn integrated_time_after_now_is_rejected() {
    let (_, bundle, artifact, root) = case_inputs("happy-path-v0.3");
    let integrated = 1_710_869_186;
    verify(
        &bundle,
        ArtifactInput::Bytes(&artifact),
        &identity(),
        &root,
        integrated,
    )
    .unwrap();
    let err = verify(
        &bundle,
        ArtifactInput::Bytes(&artifact),
        &identity(),
        &root,
        integrated - 1,
    )
    .unwrap_err();
    assert!(
        matches!(err, VerifyError::IntegratedTimeInFuture { .. }),
        "{err}"
    );
}

#[test]
fn other_artifact_or_key_or_root_is_rejected() {
    let (_, bundle, artifact, root) = case_inputs("happy-path-v0.3");
    let mut other = artifact.clone();
    other.push(b'\n');
    let err = verify(
        &bundle,
        ArtifactInput::Bytes(&other),
        &identity(),
        &root,
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.check(), "digest");
    let err = verify(
        &bundle,
        ArtifactInput::Bytes(&artifact),
        &identity(),
        &TrustedRoot::empty(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.check(), "tlog-entry");
    // A certificate bundle is not verified by a key, nor a key bundle by identity.
    let (case, key_bundle, _, _) = case_inputs("managed-key-happy-path");
    let key = read(&case.join("key.pub"));
    let err = verify(
        &bundle,
        ArtifactInput::Bytes(&artifact),
        &VerificationPolicy::Key(key.clone()),
        &root,
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.check(), "policy");
    let err = verify(
        &key_bundle,
        ArtifactInput::Bytes(&artifact),
        &identity(),
        &root,
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.check(), "policy");
    // Another key (the Rekor key of the trusted root) does not verify a key bundle.
    let rekor_key = root.tlogs[0].key.spki_der().to_vec();
    let err = verify(
        &key_bundle,
        ArtifactInput::Bytes(&artifact),
        &VerificationPolicy::Key(rekor_key),
        &root,
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.check(), "signature");
}

/// Flipping any one byte never panics, and whatever still verifies still
/// verifies the same artifact by the same identity.
#[test]
fn byte_flips_never_panic_nor_change_what_verifies() {
    for name in [
        "happy-path-v0.3",
        "rekor2-timestamp-with-embedded-cert",
        "happy-path-intoto-in-dsse-v3",
    ] {
        let (_, bundle, artifact, root) = case_inputs(name);
        let good = verify(
            &bundle,
            ArtifactInput::Bytes(&artifact),
            &identity(),
            &root,
            NOW,
        )
        .unwrap();
        let mut rejected = 0;
        for i in (0..bundle.len()).step_by(5) {
            let mut b = bundle.clone();
            b[i] ^= 0x01;
            match verify(&b, ArtifactInput::Bytes(&artifact), &identity(), &root, NOW) {
                Ok(v) => {
                    assert_eq!(
                        v.artifact_sha256, good.artifact_sha256,
                        "{name} flip at {i}"
                    );
                    assert_eq!(v.identities, good.identities, "{name} flip at {i}");
                }
                Err(_) => rejected += 1,
            }
        }
        assert!(
            rejected > bundle.len() / 10,
            "{name}: only {rejected} flips rejected"
        );
    }
}

#[test]
fn oversized_and_junk_bundles_are_rejected() {
    let (_, bundle, artifact, root) = case_inputs("happy-path-v0.3");
    let big = vec![b' '; cairn_sigstore::MAX_BUNDLE_BYTES + 1];
    let err = verify(
        &big,
        ArtifactInput::Bytes(&artifact),
        &identity(),
        &root,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err}");
    let mut junk = bundle.clone();
    junk.extend_from_slice(b"{}");
    let err = verify(
        &junk,
        ArtifactInput::Bytes(&artifact),
        &identity(),
        &root,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::Json { .. }), "{err}");
    let err = verify(
        &bundle[..bundle.len() / 2],
        ArtifactInput::Bytes(&artifact),
        &identity(),
        &root,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::Json { .. }), "{err}");
}
