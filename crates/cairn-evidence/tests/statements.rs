//! The statements, envelopes and bundles cairn writes, field by field against the
//! specs, and read back strictly.

mod support;

use cairn_evidence::provenance::{CAIRN_BUILD_TYPE, Provenance};
use cairn_evidence::test_result::{TestOutcome, TestResult};
use cairn_evidence::{
    Algorithm, BUNDLE_MEDIA_TYPE, Bundle, Checkpoint, EvidenceError, InclusionProof, KindVersion,
    LogId, SigningKey, Statement, TlogEntry,
};
use serde_json::{Value, json};
use support::{BUILDER_ID, observed_build};

/// A named change to a valid input that must make it invalid.
type Edit<T> = (&'static str, fn(&mut T));

fn key() -> SigningKey {
    SigningKey::from_secret_bytes(Algorithm::EcdsaP256Sha256, &[0x11; 32]).expect("valid scalar")
}

#[test]
fn provenance_statement_has_the_slsa_v1_shape() {
    let observed = observed_build();
    let statement = Statement::provenance(&observed, BUILDER_ID).expect("builds");
    let value: Value = serde_json::from_slice(&statement.to_json().expect("json")).expect("json");
    assert_eq!(
        value,
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "hello", "digest": {"sha256": observed.artifacts[0].digest["sha256"]}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {
                    "buildType": CAIRN_BUILD_TYPE,
                    "externalParameters": {
                        "workload": "hello-c",
                        "repository": "https://git.example.invalid/hello-c.git",
                        "commit": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
                    },
                    "internalParameters": {
                        "chain": "default", "stage": "build", "stageKind": "build", "command": "make"
                    },
                    "resolvedDependencies": [
                        {"uri": "https://git.example.invalid/hello-c.git",
                         "digest": {"gitCommit": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"}},
                        {"name": "catalog/debian:bookworm", "uri": "catalog/debian:bookworm",
                         "digest": {"sha256": observed.base_images[0].sha256.hex()}}
                    ]
                },
                "runDetails": {
                    "builder": {"id": BUILDER_ID},
                    "metadata": {
                        "invocationId": "42",
                        "startedOn": "2025-11-25T12:00:00.000Z",
                        "finishedOn": "2025-11-25T12:00:03.250Z"
                    },
                    "byproducts": [
                        {"name": "build/stdout", "mediaType": "text/plain",
                         "digest": {"sha256": observed.logs[0].sha256.hex()}}
                    ]
                }
            }
        })
    );
    let back =
        Statement::<Provenance>::from_json(&statement.to_json().expect("json")).expect("reads");
    assert_eq!(back, statement);
}

#[test]
fn provenance_is_refused_for_a_failed_killed_or_backwards_stage_or_no_subject() {
    let cases: [Edit<cairn_evidence::Observed>; 6] = [
        ("short commit", |o| o.commit.truncate(12)),
        ("branch name for a commit", |o| o.commit = "main".into()),
        ("non-zero exit", |o| o.exit_code = Some(1)),
        ("killed", |o| o.exit_code = None),
        ("finished before started", |o| {
            o.finished_ms = o.started_ms - 1;
        }),
        ("no artifact", |o| o.artifacts.clear()),
    ];
    for (name, change) in cases {
        let mut observed = observed_build();
        change(&mut observed);
        assert!(
            Statement::provenance(&observed, BUILDER_ID).is_err(),
            "{name}"
        );
    }
}

#[test]
fn test_result_follows_exit_code_and_failed_tests() {
    let check = |exit_code: Option<i32>, failed: &[&str], want: TestOutcome, want_json: &str| {
        let mut observed = observed_build();
        observed.stage = "unit-tests".into();
        observed.exit_code = exit_code;
        observed.failed_tests = failed
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        let statement =
            Statement::test_result(&observed, Some("https://cairn.invalid/runs/42".into()))
                .expect("builds");
        assert_eq!(statement.predicate.result, want, "{exit_code:?} {failed:?}");
        let value: Value =
            serde_json::from_slice(&statement.to_json().expect("json")).expect("json");
        assert_eq!(
            value["predicateType"],
            "https://in-toto.io/attestation/test-result/v0.1"
        );
        assert_eq!(value["predicate"]["result"], want_json);
        assert_eq!(value["predicate"]["url"], "https://cairn.invalid/runs/42");
        assert_eq!(
            value["predicate"]["configuration"],
            json!([{"name": "cairn.toml", "uri": "https://git.example.invalid/hello-c.git",
                    "digest": {"gitCommit": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"}},
                   {"name": "cairn chain stage", "uri": "urn:cairn:run:42:stage:unit-tests",
                    "annotations": {"cairn.chain": "default", "cairn.run": "42",
                      "cairn.stage": "unit-tests", "cairn.stageKind": "build",
                      "cairn.workload": "hello-c"}}])
        );
        // The stage the gate reads is the signed one.
        let notes = statement
            .predicate
            .stage_annotations()
            .expect("signed stage");
        assert_eq!(notes["cairn.stage"], "unit-tests");
        if failed.is_empty() {
            assert!(value["predicate"].get("failedTests").is_none());
        } else {
            assert_eq!(value["predicate"]["failedTests"], json!(failed));
        }
        let back =
            Statement::<TestResult>::from_json(&statement.to_json().expect("json")).expect("reads");
        assert_eq!(back, statement);
    };
    check(Some(0), &[], TestOutcome::Passed, "PASSED");
    check(Some(1), &["test_greet"], TestOutcome::Failed, "FAILED");
    check(Some(0), &["test_greet"], TestOutcome::Failed, "FAILED");
    check(Some(1), &[], TestOutcome::Failed, "FAILED");
    check(None, &[], TestOutcome::Failed, "FAILED");
    let mut observed = observed_build();
    observed.commit = observed.commit.to_uppercase();
    assert!(
        Statement::test_result(&observed, None).is_err(),
        "uppercase commit"
    );
}

#[test]
fn test_result_names_the_tests_and_counts_them() {
    let mut observed = observed_build();
    observed.stage = "unit-tests".into();
    observed.exit_code = Some(0);
    let xml = br#"<testsuites><testsuite><testcase classname="t" name="a"/><testcase classname="t" name="b"><skipped/></testcase><testcase classname="t" name="c"/></testsuite></testsuites>"#;
    observed.tests = Some(cairn_model::test_results::parse_junit(xml).expect("junit"));
    let statement = Statement::test_result(&observed, None).expect("builds");
    let value: Value = serde_json::from_slice(&statement.to_json().expect("json")).expect("json");
    let predicate = &value["predicate"];
    assert_eq!(predicate["result"], "PASSED");
    assert_eq!(predicate["passedTests"], json!(["t.a", "t.c"]));
    assert!(predicate.get("failedTests").is_none());
    let notes = &predicate["configuration"][1]["annotations"];
    assert_eq!(notes["cairn.tests.format"], "junit-xml");
    assert_eq!(
        (
            &notes["cairn.tests.passed"],
            &notes["cairn.tests.failed"],
            &notes["cairn.tests.skipped"]
        ),
        (&json!("2"), &json!("0"), &json!("1"))
    );
    // A failed test in the runner's report fails the result even on exit 0.
    let xml = br#"<testsuite><testcase name="x"><failure/></testcase></testsuite>"#;
    observed.tests = Some(cairn_model::test_results::parse_junit(xml).expect("junit"));
    let statement = Statement::test_result(&observed, None).expect("builds");
    assert_eq!(statement.predicate.result, TestOutcome::Failed);
    assert_eq!(statement.predicate.failed_tests, ["x"]);
}

#[test]
fn statement_reading_is_strict() {
    let statement = Statement::provenance(&observed_build(), BUILDER_ID).expect("builds");
    let good: Value = serde_json::from_slice(&statement.to_json().expect("json")).expect("json");
    let edits: [Edit<Value>; 5] = [
        ("wrong _type", |v| {
            v["_type"] = json!("https://in-toto.io/Statement/v0.1");
        }),
        ("wrong predicateType", |v| {
            v["predicateType"] = json!("https://slsa.dev/provenance/v0.2");
        }),
        ("no subject", |v| v["subject"] = json!([])),
        ("subject without sha256", |v| {
            v["subject"][0]["digest"] = json!({"sha1": "00"});
        }),
        ("unknown field", |v| v["extra"] = json!(1)),
    ];
    for (name, edit) in edits {
        let mut bad = good.clone();
        edit(&mut bad);
        let bytes = serde_json::to_vec(&bad).expect("json");
        assert!(
            Statement::<Provenance>::from_json(&bytes).is_err(),
            "{name} was accepted"
        );
    }
    // A test-result statement is not provenance.
    let mut observed = observed_build();
    observed.exit_code = Some(1);
    let tests = Statement::test_result(&observed, None).expect("builds");
    assert!(Statement::<Provenance>::from_json(&tests.to_json().expect("json")).is_err());
}

#[test]
fn bundle_json_is_v0_3_protobuf_json() {
    let key = key();
    let statement = Statement::provenance(&observed_build(), BUILDER_ID).expect("builds");
    let bundle = Bundle::sign_statement(&statement, &key).expect("signs");
    let value: Value = serde_json::from_str(&bundle.to_json().expect("json")).expect("json");
    assert_eq!(value["mediaType"], BUNDLE_MEDIA_TYPE);
    assert_eq!(
        value["verificationMaterial"],
        json!({"publicKey": {"hint": key.key_id().as_str()}, "tlogEntries": []})
    );
    let envelope = &value["dsseEnvelope"];
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(envelope["signatures"].as_array().map(Vec::len), Some(1));
    assert_eq!(envelope["signatures"][0]["keyid"], key.key_id().as_str());
    let keys: Vec<&str> = value
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["dsseEnvelope", "mediaType", "verificationMaterial"]);

    let read = Bundle::from_json(value.to_string().as_bytes()).expect("reads");
    assert_eq!(read, bundle);
    let back: Statement<Provenance> = read
        .verify_statement(key.verifying_key())
        .expect("verifies");
    assert_eq!(back, statement);
}

#[test]
fn bundle_reading_is_strict_and_verification_fails_closed() {
    let key = key();
    let statement = Statement::provenance(&observed_build(), BUILDER_ID).expect("builds");
    let bundle = Bundle::sign_statement(&statement, &key).expect("signs");
    let good: Value = serde_json::from_str(&bundle.to_json().expect("json")).expect("json");
    let edits: [Edit<Value>; 7] = [
        ("v0.2 media type", |v| {
            v["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.2");
        }),
        ("certificate", |v| {
            v["verificationMaterial"]["certificate"] = json!({"rawBytes": "AA=="});
        }),
        ("no public key", |v| {
            v["verificationMaterial"]
                .as_object_mut()
                .expect("obj")
                .remove("publicKey");
        }),
        ("message signature", |v| v["messageSignature"] = json!({})),
        ("no envelope", |v| {
            v.as_object_mut().expect("obj").remove("dsseEnvelope");
        }),
        ("two signatures", |v| {
            let sig = v["dsseEnvelope"]["signatures"][0].clone();
            v["dsseEnvelope"]["signatures"] = json!([sig.clone(), sig]);
        }),
        ("unknown field", |v| {
            v["verificationMaterial"]["extra"] = json!(1);
        }),
    ];
    for (name, edit) in edits {
        let mut bad = good.clone();
        edit(&mut bad);
        assert!(
            Bundle::from_json(bad.to_string().as_bytes()).is_err(),
            "{name} was accepted"
        );
    }

    let other = SigningKey::from_secret_bytes(Algorithm::EcdsaP256Sha256, &[0x22; 32]).expect("ok");
    assert!(bundle.verify(other.verifying_key()).is_err());
    let mut flipped = bundle.clone();
    flipped.envelope.payload[5] ^= 1;
    assert!(flipped.verify(key.verifying_key()).is_err());
    // The hint and the keyid must name the key that verifies.
    let mut rehinted = bundle.clone();
    rehinted.key_hint = other.key_id().to_string();
    assert!(
        rehinted.verify(key.verifying_key()).is_err(),
        "hint of another key"
    );
    let mut rekeyed = bundle.clone();
    rekeyed.envelope.signatures[0].keyid = other.key_id().to_string();
    assert!(
        rekeyed.verify(key.verifying_key()).is_err(),
        "keyid of another key"
    );
    let mut unnamed = bundle.clone();
    unnamed.envelope.signatures[0].keyid.clear();
    unnamed
        .verify(key.verifying_key())
        .expect("an empty keyid names no other key");

    // A log entry cairn cannot check yet makes verification fail, not pass.
    let mut logged = bundle.clone();
    logged.tlog_entries.push(TlogEntry {
        log_index: 0,
        log_id: LogId {
            key_id: vec![0; 32],
        },
        kind_version: KindVersion {
            kind: "dsse".into(),
            version: "0.0.1".into(),
        },
        integrated_time: 1_764_072_004,
        inclusion_promise: None,
        inclusion_proof: Some(InclusionProof {
            log_index: 0,
            root_hash: vec![0; 32],
            tree_size: 1,
            hashes: vec![],
            checkpoint: Checkpoint {
                envelope: "cairn.invalid/log\n1\nAAAA\n".into(),
            },
        }),
        canonicalized_body: vec![],
    });
    let json = logged.to_json().expect("json");
    let read = Bundle::from_json(json.as_bytes()).expect("reads");
    assert_eq!(read, logged);
    // Without the log's key the entry cannot be checked: refused.
    assert!(matches!(
        read.verify(key.verifying_key()),
        Err(EvidenceError::Invalid { .. })
    ));
    // With a log key, this made-up entry does not check: refused too.
    let log = cairn_tlog::note::Signer::from_seed("cairn.invalid/log", [3; 32])
        .expect("log key")
        .verifier();
    assert!(matches!(
        read.verify_with_log(key.verifying_key(), &log),
        Err(EvidenceError::Invalid { .. })
    ));
}

#[test]
fn every_single_bit_flip_of_a_bundle_is_refused() {
    let key = SigningKey::from_secret_bytes(Algorithm::Ed25519, &[0x44; 32]).expect("valid");
    let statement = Statement::provenance(&observed_build(), BUILDER_ID).expect("builds");
    let json = Bundle::sign_statement(&statement, &key)
        .expect("signs")
        .to_json()
        .expect("json")
        .into_bytes();
    Bundle::from_json(&json)
        .expect("reads")
        .verify(key.verifying_key())
        .expect("the unmodified bundle verifies");
    let mut accepted = Vec::new();
    for i in 0..json.len() {
        for bit in 0..8 {
            let mut bad = json.clone();
            bad[i] ^= 1 << bit;
            if let Ok(bundle) = Bundle::from_json(&bad)
                && bundle.verify(key.verifying_key()).is_ok()
            {
                accepted.push((i, bit));
            }
        }
    }
    assert_eq!(accepted, [], "flips at (byte, bit) were accepted");
}
