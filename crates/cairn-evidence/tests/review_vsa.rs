//! The review predicate and the SLSA VSA v1: their exact JSON shape, signed with
//! real keys, verified, and refused when tampered with, of another predicate
//! type, or inconsistent.

use std::collections::BTreeMap;

use cairn_evidence::review::{
    MAX_COMMENT_BYTES, REVIEW_PREDICATE_TYPE, Review, ReviewFacts, Verdict, commit_subject,
};
use cairn_evidence::vsa::{InputAttestation, VerificationResult, Vsa, VsaFacts};
use cairn_evidence::{Algorithm, Bundle, Digest, EvidenceError, SigningKey, Statement, Subject};
use serde_json::{Value, json};

const COMMIT: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const REPO: &str = "https://git.example.invalid/hello.git";

fn keys() -> [SigningKey; 2] {
    [
        SigningKey::from_secret_bytes(Algorithm::Ed25519, &[0x21; 32]).expect("ed25519"),
        SigningKey::from_secret_bytes(Algorithm::EcdsaP256Sha256, &[0x22; 32]).expect("p256"),
    ]
}

fn review_facts() -> ReviewFacts {
    ReviewFacts {
        repository: REPO.into(),
        commit: COMMIT.into(),
        verdict: Verdict::Approve,
        reviewer: "bob@example.invalid".into(),
        author: "Alice Author <alice@example.invalid>".into(),
        reviewed_at_ms: 1_764_072_000_123,
        comment: Some("looks good\n\twith a tab".into()),
    }
}

fn image_digest() -> Digest {
    cairn_evidence::sha256(b"the manifest")
}

fn vsa_facts() -> VsaFacts {
    VsaFacts {
        verifier_id: "https://cairn.invalid/verifier/test-install".into(),
        time_verified_ms: 1_764_072_000_000,
        image: format!("registry.example.invalid/apps/hello@{}", image_digest()),
        policy_uri: "https://cairn.invalid/policies/production.rego".into(),
        policy_digest: cairn_evidence::sha256(b"package cairn.gate"),
        input_attestations: vec![
            InputAttestation {
                uri: Some("cairn:evidence/1".into()),
                sha256: cairn_evidence::sha256(b"provenance bundle"),
            },
            InputAttestation {
                uri: None,
                sha256: cairn_evidence::sha256(b"test result bundle"),
            },
        ],
        result: VerificationResult::Passed,
        verified_levels: vec!["SLSA_BUILD_LEVEL_3".into()],
        dependency_levels: BTreeMap::from([("SLSA_BUILD_LEVEL_3".into(), 1)]),
        override_: None,
    }
}

fn to_value<T: serde::Serialize>(statement: &T) -> Value {
    serde_json::to_value(statement).expect("json")
}

#[test]
fn review_statement_has_its_documented_shape() {
    let statement = Statement::review(&review_facts()).expect("builds");
    let value: Value = serde_json::from_slice(&statement.to_json().expect("json")).expect("json");
    let derived = cairn_evidence::sha256(format!("git-commit:{COMMIT}").as_bytes()).hex();
    assert_eq!(
        value,
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": REPO, "digest": {"gitCommit": COMMIT, "sha256": derived}}],
            "predicateType": "urn:cairn:predicate:review:v1",
            "predicate": {
                "repository": REPO,
                "commit": COMMIT,
                "verdict": "approve",
                "reviewer": "bob@example.invalid",
                "author": "Alice Author <alice@example.invalid>",
                "reviewedAt": "2025-11-25T12:00:00.123Z",
                "comment": "looks good\n\twith a tab"
            }
        })
    );
    let mut changes = review_facts();
    changes.verdict = Verdict::RequestChanges;
    changes.comment = None;
    let value = to_value(&Statement::review(&changes).expect("builds"));
    assert_eq!(value["predicate"]["verdict"], "request-changes");
    assert!(value["predicate"].get("comment").is_none(), "{value}");
}

#[test]
fn a_signed_review_verifies_and_reads_back() {
    for key in keys() {
        let statement = Statement::review(&review_facts()).expect("builds");
        let bundle = Bundle::sign_statement(&statement, &key).expect("signs");
        let read = Bundle::from_json(bundle.to_json().expect("json").as_bytes()).expect("reads");
        let verified = Review::verify_bundle(&read, key.verifying_key()).expect("verifies");
        assert_eq!(verified, statement);
        assert_eq!(
            Review::from_statement_json(&read.envelope.payload).expect("parses"),
            statement
        );
    }
}

#[test]
fn a_tampered_review_is_refused() {
    let [key, other] = keys();
    let statement = Statement::review(&review_facts()).expect("builds");
    let bundle = Bundle::sign_statement(&statement, &key).expect("signs");

    // The approval turned into someone else's: the signature no longer covers it.
    let mut forged = bundle.clone();
    let text = String::from_utf8(forged.envelope.payload.clone()).expect("utf-8");
    forged.envelope.payload = text
        .replace("bob@example.invalid", "eve@example.invalid")
        .into_bytes();
    assert!(matches!(
        Review::verify_bundle(&forged, key.verifying_key()),
        Err(EvidenceError::NoValidSignature { .. })
    ));

    // A flipped bit in the signature.
    let mut flipped = bundle.clone();
    flipped.envelope.signatures[0].sig[3] ^= 0x10;
    assert!(Review::verify_bundle(&flipped, key.verifying_key()).is_err());

    // Signed by another key than the one trusted.
    assert!(Review::verify_bundle(&bundle, other.verifying_key()).is_err());
}

#[test]
fn another_predicate_type_is_not_a_review() {
    let [key, _] = keys();
    let vsa = Statement::vsa(&vsa_facts()).expect("builds");
    let bundle = Bundle::sign_statement(&vsa, &key).expect("signs");
    let err = Review::verify_bundle(&bundle, key.verifying_key()).expect_err("refused");
    assert!(
        err.to_string().contains("predicateType")
            && err.to_string().contains(REVIEW_PREDICATE_TYPE),
        "{err}"
    );
    assert!(Review::from_statement_json(&bundle.envelope.payload).is_err());
}

#[test]
fn a_review_whose_subject_is_not_its_commit_is_refused_even_when_signed() {
    let [key, _] = keys();
    let review = Review::from_facts(&review_facts()).expect("valid");
    let other_commit = "0123456789abcdef0123456789abcdef01234567";
    let mismatched: [(&str, Vec<Subject>); 4] = [
        // The sha256 is not the one derived from the gitCommit.
        (
            "wrong sha256",
            vec![Subject {
                name: REPO.into(),
                digest: BTreeMap::from([
                    ("gitCommit".into(), COMMIT.into()),
                    ("sha256".into(), cairn_evidence::sha256(b"an image").hex()),
                ]),
            }],
        ),
        (
            "other commit",
            vec![commit_subject(REPO, other_commit).expect("valid")],
        ),
        (
            "two subjects",
            vec![
                commit_subject(REPO, COMMIT).expect("valid"),
                commit_subject(REPO, other_commit).expect("valid"),
            ],
        ),
        (
            "no gitCommit",
            vec![Subject::sha256(REPO, cairn_evidence::sha256(b"x"))],
        ),
    ];
    for (case, subject) in mismatched {
        let statement = Statement::new(subject, review.clone()).expect("well-formed sha256");
        let bundle = Bundle::sign_statement(&statement, &key).expect("signs");
        assert!(
            Review::verify_bundle(&bundle, key.verifying_key()).is_err(),
            "{case} was accepted"
        );
    }
}

#[test]
fn bad_review_facts_are_refused() {
    type Edit = (&'static str, fn(&mut ReviewFacts));
    let edits: [Edit; 9] = [
        ("short commit", |f| f.commit.truncate(12)),
        ("uppercase commit", |f| f.commit = f.commit.to_uppercase()),
        ("a ref, not a commit", |f| {
            f.commit = "refs/heads/main".into();
        }),
        ("empty reviewer", |f| f.reviewer = " ".into()),
        ("reviewer with a newline", |f| {
            f.reviewer = "bob\nCairn-Actor: eve".into();
        }),
        ("empty author", |f| f.author.clear()),
        ("huge comment", |f| {
            f.comment = Some("x".repeat(MAX_COMMENT_BYTES + 1));
        }),
        ("comment with an escape", |f| {
            f.comment = Some("\u{1b}[2J".into());
        }),
        ("time out of range", |f| f.reviewed_at_ms = i64::MAX),
    ];
    for (case, edit) in edits {
        let mut facts = review_facts();
        edit(&mut facts);
        assert!(Statement::review(&facts).is_err(), "{case} was accepted");
    }
    let mut facts = review_facts();
    facts.comment = Some("x".repeat(MAX_COMMENT_BYTES));
    Statement::review(&facts).expect("a comment at the limit is fine");
}

#[test]
fn vsa_statement_has_the_slsa_v1_shape() {
    let facts = vsa_facts();
    let statement = Statement::vsa(&facts).expect("builds");
    let value: Value = serde_json::from_slice(&statement.to_json().expect("json")).expect("json");
    assert_eq!(
        value,
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{
                "name": "registry.example.invalid/apps/hello",
                "digest": {"sha256": image_digest().hex()}
            }],
            "predicateType": "https://slsa.dev/verification_summary/v1",
            "predicate": {
                "verifier": {"id": "https://cairn.invalid/verifier/test-install"},
                "timeVerified": "2025-11-25T12:00:00.000Z",
                "resourceUri": facts.image,
                "policy": {
                    "uri": "https://cairn.invalid/policies/production.rego",
                    "digest": {"sha256": cairn_evidence::sha256(b"package cairn.gate").hex()}
                },
                "inputAttestations": [
                    {"uri": "cairn:evidence/1",
                     "digest": {"sha256": cairn_evidence::sha256(b"provenance bundle").hex()}},
                    {"digest": {"sha256": cairn_evidence::sha256(b"test result bundle").hex()}}
                ],
                "verificationResult": "PASSED",
                "verifiedLevels": ["SLSA_BUILD_LEVEL_3"],
                "dependencyLevels": {"SLSA_BUILD_LEVEL_3": 1},
                "slsaVersion": "1.0"
            }
        })
    );
}

#[test]
fn a_failed_verification_lists_failed_as_its_level() {
    let mut facts = vsa_facts();
    facts.result = VerificationResult::Failed;
    facts.verified_levels.clear();
    facts.dependency_levels.clear();
    facts.input_attestations.clear();
    let value = to_value(&Statement::vsa(&facts).expect("builds"));
    assert_eq!(value["predicate"]["verificationResult"], "FAILED");
    assert_eq!(value["predicate"]["verifiedLevels"], json!(["FAILED"]));
    assert!(
        value["predicate"].get("inputAttestations").is_none(),
        "{value}"
    );
    assert!(
        value["predicate"].get("dependencyLevels").is_none(),
        "{value}"
    );

    facts.verified_levels = vec!["SLSA_BUILD_LEVEL_3".into()];
    assert!(
        Statement::vsa(&facts).is_err(),
        "a failure claiming a level"
    );
}

#[test]
fn a_signed_vsa_verifies_and_tampering_is_refused() {
    for key in keys() {
        let statement = Statement::vsa(&vsa_facts()).expect("builds");
        let bundle = Bundle::sign_statement(&statement, &key).expect("signs");
        let read = Bundle::from_json(bundle.to_json().expect("json").as_bytes()).expect("reads");
        assert_eq!(
            Vsa::verify_bundle(&read, key.verifying_key()).expect("verifies"),
            statement
        );

        let mut forged = read.clone();
        let text = String::from_utf8(forged.envelope.payload.clone()).expect("utf-8");
        forged.envelope.payload = text.replace("\"PASSED\"", "\"FAILED\"").into_bytes();
        assert!(Vsa::verify_bundle(&forged, key.verifying_key()).is_err());
        let mut flipped = read.clone();
        flipped.envelope.payload[10] ^= 1;
        assert!(Vsa::verify_bundle(&flipped, key.verifying_key()).is_err());
    }
}

#[test]
fn a_review_is_not_a_vsa() {
    let [key, _] = keys();
    let review = Statement::review(&review_facts()).expect("builds");
    let bundle = Bundle::sign_statement(&review, &key).expect("signs");
    let err = Vsa::verify_bundle(&bundle, key.verifying_key()).expect_err("refused");
    assert!(err.to_string().contains("predicateType"), "{err}");
}

#[test]
fn a_vsa_about_another_image_than_its_resource_is_refused() {
    let [key, _] = keys();
    let vsa = Vsa::from_facts(&vsa_facts()).expect("valid");
    let statement = Statement::new(
        vec![Subject::sha256(
            "registry.example.invalid/apps/hello",
            cairn_evidence::sha256(b"another"),
        )],
        vsa,
    )
    .expect("well-formed");
    let bundle = Bundle::sign_statement(&statement, &key).expect("signs");
    assert!(Vsa::verify_bundle(&bundle, key.verifying_key()).is_err());
}

#[test]
fn bad_vsa_facts_are_refused() {
    type Edit = (&'static str, fn(&mut VsaFacts));
    let edits: [Edit; 9] = [
        ("tag-only image", |f| {
            f.image = "registry.example.invalid/apps/hello:1.0".into();
        }),
        ("not an image reference", |f| f.image = "hello world".into()),
        ("verifier is not a URI", |f| f.verifier_id = "cairn".into()),
        ("empty verifier", |f| f.verifier_id.clear()),
        ("empty policy uri", |f| f.policy_uri.clear()),
        ("no levels", |f| f.verified_levels.clear()),
        ("two build levels", |f| {
            f.verified_levels = vec!["SLSA_BUILD_LEVEL_3".into(), "SLSA_BUILD_LEVEL_2".into()];
        }),
        ("a custom SLSA_ value", |f| {
            f.verified_levels = vec!["SLSA_GREAT".into()];
        }),
        ("a bad dependency level", |f| {
            f.dependency_levels = BTreeMap::from([("SLSA_NOPE".into(), 2)]);
        }),
    ];
    for (case, edit) in edits {
        let mut facts = vsa_facts();
        edit(&mut facts);
        assert!(Statement::vsa(&facts).is_err(), "{case} was accepted");
    }
}

#[test]
fn a_vsa_from_a_later_minor_version_still_reads() {
    // SLSA v1.1 adds `verifier.version`; the parsing rules say to ignore
    // unrecognized fields, so cairn's reader accepts it and keeps the rest.
    let statement = Statement::vsa(&vsa_facts()).expect("builds");
    let mut value = to_value(&statement);
    value["predicate"]["verifier"]["version"] = json!({"cairn": "0.1.0"});
    value["predicate"]["slsaVersion"] = json!("1.1");
    let bytes = serde_json::to_vec(&value).expect("json");
    let read = Vsa::from_statement_json(&bytes).expect("reads");
    assert_eq!(
        read.predicate.resource_uri,
        statement.predicate.resource_uri
    );
    assert_eq!(
        read.predicate.verification_result,
        VerificationResult::Passed
    );
}

#[test]
fn an_overridden_deployment_s_vsa_says_failed_and_carries_the_override() {
    use cairn_evidence::vsa::{OverriddenDenial, VsaOverride};
    let override_ = VsaOverride {
        actor: "rita@example.org".into(),
        reason: "incident 42: hotfix".into(),
        denied_by: vec![OverriddenDenial {
            rule: "tests".into(),
            message: "acceptance-test failed".into(),
        }],
    };
    // A PASSED VSA cannot carry an override.
    let mut facts = vsa_facts();
    facts.override_ = Some(override_.clone());
    assert!(Statement::vsa(&facts).is_err());
    // FAILED with the override: written, and read back with it.
    facts.result = VerificationResult::Failed;
    facts.verified_levels = vec![];
    let statement = Statement::vsa(&facts).unwrap();
    let value = to_value(&statement);
    assert_eq!(value["predicate"]["verificationResult"], "FAILED");
    assert_eq!(
        value["predicate"]["verifiedLevels"],
        serde_json::json!(["FAILED"])
    );
    assert_eq!(
        value["predicate"]["cairnOverride"]["actor"],
        "rita@example.org"
    );
    assert_eq!(
        value["predicate"]["cairnOverride"]["deniedBy"][0]["rule"],
        "tests"
    );
    let back = Vsa::from_statement_json(&statement.to_json().unwrap()).unwrap();
    assert_eq!(back.predicate.override_, Some(override_));
    // A PASSED VSA that claims an override is refused on read.
    let mut forged = value.clone();
    forged["predicate"]["verificationResult"] = "PASSED".into();
    forged["predicate"]["verifiedLevels"] = serde_json::json!(["SLSA_BUILD_LEVEL_3"]);
    assert!(Vsa::from_statement_json(&serde_json::to_vec(&forged).unwrap()).is_err());
}
