//! The default policy set on realistic inputs: each rule's exact denial, and
//! the allow of a complete input built from real, signed and verified evidence.

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use cairn_policy::{
    BaseImage, DefaultParams, Evidence, Gate, GateInput, Licence, Override, Review, Severity,
    Verdict, Vulnerability, realistic_input,
};
use serde_json::json;

const BUILDER: &str = "urn:cairn:builder:engine";
const DIGEST: &str = "sha256:4f1c6c1b1f0a0c2e8a4b2e6d3c9a7f5e1d2c3b4a5968778695a4b3c2d1e0f9a8";
const COMMIT: &str = "9f2c1e7b5a3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e";
const OTHER_COMMIT: &str = "0000000000000000000000000000000000000000";

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| Gate::default_set(&DefaultParams::new(BUILDER)).unwrap())
}

/// Applies `change` to the realistic production input and checks the exact
/// denials (sorted by rule, then message).
#[track_caller]
fn check(change: impl FnOnce(&mut GateInput), expect: &[(&str, &str)]) {
    check_with(gate(), change, expect);
}

#[track_caller]
fn check_with(gate: &Gate, change: impl FnOnce(&mut GateInput), expect: &[(&str, &str)]) {
    let mut input = realistic_input(BUILDER);
    change(&mut input);
    let decision = gate.decide(&input).unwrap();
    let got: Vec<(&str, &str)> = decision
        .reasons
        .iter()
        .map(|d| (d.rule.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(got, expect);
    assert_eq!(decision.allow, expect.is_empty());
    assert_eq!(decision.overridden, None);
}

fn staging(input: &mut GateInput) {
    input.environment.name = "staging".into();
    input.environment.position = 0;
    input.environment.previous = None;
}

fn review(reviewer: &str, role: &str, author: &str, commit: &str, verdict: Verdict) -> Review {
    Review {
        commit: commit.into(),
        reviewer: reviewer.into(),
        reviewer_roles: vec![role.into()],
        author: author.into(),
        verdict,
    }
}

fn evidence_of_kind<'a>(input: &'a mut GateInput, kind: &str) -> &'a mut Evidence {
    input
        .evidence
        .iter_mut()
        .find(|e| e.stage_kind.as_deref() == Some(kind))
        .unwrap()
}

#[test]
fn the_realistic_production_input_is_allowed() {
    check(|_| {}, &[]);
}

// --- review ------------------------------------------------------------------

const NEEDS_ONE: &str = "commit 9f2c1e7b5a3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e needs 1 approval(s) by a maintainer who is not its author, and has 0";

#[test]
fn production_without_review_is_denied() {
    check(|i| i.reviews.clear(), &[("review", NEEDS_ONE)]);
}

#[test]
fn the_authors_own_approval_does_not_count() {
    check(
        |i| {
            i.reviews = vec![review(
                "alice",
                "maintainer",
                "alice",
                COMMIT,
                Verdict::Approve,
            )];
        },
        &[(
            "review",
            &format!("{NEEDS_ONE} (not counted: alice approved their own commit)"),
        )],
    );
}

#[test]
fn a_developers_approval_does_not_count() {
    check(
        |i| {
            i.reviews = vec![review(
                "dan",
                "developer",
                "alice",
                COMMIT,
                Verdict::Approve,
            )];
        },
        &[(
            "review",
            &format!("{NEEDS_ONE} (not counted: dan is not a maintainer)"),
        )],
    );
}

#[test]
fn a_new_commit_needs_new_approvals() {
    check(
        |i| {
            i.reviews = vec![review(
                "bob",
                "maintainer",
                "alice",
                OTHER_COMMIT,
                Verdict::Approve,
            )];
        },
        &[(
            "review",
            &format!("{NEEDS_ONE} (not counted: bob approved another commit ({OTHER_COMMIT}))"),
        )],
    );
}

#[test]
fn a_request_for_changes_blocks_despite_an_approval() {
    check(
        |i| {
            i.reviews.push(review(
                "erin",
                "maintainer",
                "alice",
                COMMIT,
                Verdict::RequestChanges,
            ));
        },
        &[(
            "review",
            &format!("erin requested changes on commit {COMMIT}"),
        )],
    );
}

#[test]
fn staging_needs_no_approval_by_default() {
    check(
        |i| {
            staging(i);
            i.reviews.clear();
        },
        &[],
    );
}

#[test]
fn the_approval_count_per_environment_is_a_param() {
    let mut params = DefaultParams::new(BUILDER);
    params.required_approvals.insert("production".into(), 2);
    let strict = Gate::default_set(&params).unwrap();
    check_with(
        &strict,
        |_| {},
        &[(
            "review",
            &format!(
                "commit {COMMIT} needs 2 approval(s) by a maintainer who is not its author, and has 1"
            ),
        )],
    );
    check_with(
        &strict,
        |i| {
            i.reviews.push(review(
                "frank",
                "maintainer",
                "alice",
                COMMIT,
                Verdict::Approve,
            ));
        },
        &[],
    );
    // Two entries by the same reviewer are one approval.
    check_with(
        &strict,
        |i| i.reviews.push(i.reviews[0].clone()),
        &[(
            "review",
            &format!(
                "commit {COMMIT} needs 2 approval(s) by a maintainer who is not its author, and has 1"
            ),
        )],
    );
}

// --- tests -------------------------------------------------------------------

#[test]
fn a_missing_acceptance_test_result_is_denied() {
    check(
        |i| {
            i.evidence
                .retain(|e| e.stage_kind.as_deref() != Some("acceptance-test"));
        },
        &[(
            "tests",
            &format!("no acceptance-test result about {DIGEST}"),
        )],
    );
}

#[test]
fn a_failed_acceptance_test_is_denied_naming_the_tests() {
    check(
        |i| {
            let e = evidence_of_kind(i, "acceptance-test");
            e.predicate["result"] = json!("FAILED");
            e.predicate["failedTests"] = json!(["greets_in_french", "api::health"]);
        },
        &[(
            "tests",
            &format!("acceptance-test failed on {DIGEST}: api::health, greets_in_french"),
        )],
    );
    check(
        |i| evidence_of_kind(i, "unit-test").predicate["result"] = json!("FAILED"),
        &[("tests", &format!("unit-test failed on {DIGEST}"))],
    );
}

#[test]
fn a_test_result_about_another_digest_does_not_count() {
    check(
        |i| {
            evidence_of_kind(i, "acceptance-test").subject_digest =
                "sha256:1111111111111111111111111111111111111111111111111111111111111111".into();
        },
        &[(
            "tests",
            &format!("no acceptance-test result about {DIGEST}"),
        )],
    );
}

// --- provenance ----------------------------------------------------------------

#[test]
fn provenance_from_another_builder_is_denied() {
    check(
        |i| {
            evidence_of_kind(i, "build").predicate["runDetails"]["builder"]["id"] =
                json!("https://github.com/actions/runner");
        },
        &[(
            "provenance",
            &format!(
                "no SLSA provenance about {DIGEST} from builder {BUILDER} for commit {COMMIT} (provenance from other builders: https://github.com/actions/runner)"
            ),
        )],
    );
}

#[test]
fn provenance_for_another_commit_is_denied() {
    check(
        |i| {
            evidence_of_kind(i, "build").predicate["buildDefinition"]["externalParameters"]["commit"] =
                json!(OTHER_COMMIT);
        },
        &[(
            "provenance",
            &format!(
                "no SLSA provenance about {DIGEST} from builder {BUILDER} for commit {COMMIT} (cairn built it from another commit: {OTHER_COMMIT})"
            ),
        )],
    );
}

#[test]
fn missing_provenance_is_denied() {
    check(
        |i| {
            i.evidence
                .retain(|e| e.stage_kind.as_deref() != Some("build"));
        },
        &[(
            "provenance",
            &format!(
                "no SLSA provenance about {DIGEST} from builder {BUILDER} for commit {COMMIT}"
            ),
        )],
    );
}

#[test]
fn evidence_from_an_untrusted_signer_does_not_count() {
    let mut params = DefaultParams::new(BUILDER);
    params.trusted_signers = vec!["SHA256:another-key".into()];
    let gate = Gate::default_set(&params).unwrap();
    check_with(
        &gate,
        |_| {},
        &[
            (
                "provenance",
                &format!(
                    "no SLSA provenance about {DIGEST} from builder {BUILDER} for commit {COMMIT}"
                ),
            ),
            (
                "tests",
                &format!("no acceptance-test result about {DIGEST}"),
            ),
            ("tests", &format!("no unit-test result about {DIGEST}")),
        ],
    );
}

// --- base image and registries ---------------------------------------------------

const BASE: &str = "catalog.cairn.local/base/debian-bookworm";
const BASE_DIGEST: &str = "sha256:0b1c2d3e4f5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

#[test]
fn a_base_image_outside_the_catalog_is_denied() {
    check(
        |i| i.artifact.base_image.as_mut().unwrap().in_catalog = false,
        &[(
            "base-image",
            &format!("base image {BASE}@{BASE_DIGEST} is not in cairn's catalog"),
        )],
    );
}

#[test]
fn an_unpinned_or_missing_base_image_is_denied() {
    check(
        |i| {
            i.artifact.base_image = Some(BaseImage {
                name: BASE.into(),
                digest: "latest".into(),
                in_catalog: true,
            });
        },
        &[(
            "base-image",
            &format!("base image {BASE} is not pinned by a sha256 digest"),
        )],
    );
    check(
        |i| i.artifact.base_image = None,
        &[("base-image", "the artifact names no base image")],
    );
}

#[test]
fn docker_hub_references_are_denied_in_every_spelling() {
    for reference in [
        "alpine:3.20",
        "debian@sha256:0b1c2d3e4f5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "library/debian:bookworm",
        "docker.io/library/debian:bookworm",
        "index.docker.io/bitnami/redis:7",
        "registry-1.docker.io/library/nginx",
        "DOCKER.IO/library/nginx",
    ] {
        check(
            |i| i.artifact.image_references.push(reference.into()),
            &[(
                "no-docker-hub",
                &format!("image reference {reference} resolves to Docker Hub"),
            )],
        );
    }
    for reference in [
        "ghcr.io/org/app:1",
        "localhost:5000/app",
        "registry.cairn.local:5000/apps/hello",
        "quay.io/prometheus/node-exporter",
    ] {
        check(|i| i.artifact.image_references.push(reference.into()), &[]);
    }
}

#[test]
fn a_base_from_docker_hub_outside_the_catalog_is_denied_twice_over() {
    // `base_image.name` is a catalog name; the base's origin is an image reference.
    check(
        |i| {
            i.artifact.base_image = Some(BaseImage {
                name: "debian".into(),
                digest: BASE_DIGEST.into(),
                in_catalog: false,
            });
            i.artifact.image_references.push("debian:12".into());
        },
        &[
            (
                "base-image",
                &format!("base image debian@{BASE_DIGEST} is not in cairn's catalog"),
            ),
            (
                "no-docker-hub",
                "image reference debian:12 resolves to Docker Hub",
            ),
        ],
    );
}

// --- vulnerabilities --------------------------------------------------------------

fn vuln(severity: Severity, fix_available: bool, suppressed: bool) -> Vulnerability {
    Vulnerability {
        id: "CVE-2026-0001".into(),
        package: "pkg:deb/debian/openssl@3.0.11".into(),
        severity,
        fix_available,
        suppressed,
        urgency: None,
    }
}

#[test]
fn a_high_finding_blocks_production_but_not_staging() {
    check(
        |i| {
            i.findings
                .vulnerabilities
                .push(vuln(Severity::High, true, false));
        },
        &[(
            "vulnerabilities",
            "CVE-2026-0001 (high) in pkg:deb/debian/openssl@3.0.11 is at or above the high threshold of production; a fix is available",
        )],
    );
    check(
        |i| {
            staging(i);
            i.findings
                .vulnerabilities
                .push(vuln(Severity::High, true, false));
        },
        &[],
    );
}

#[test]
fn a_critical_finding_blocks_staging() {
    check(
        |i| {
            staging(i);
            i.findings
                .vulnerabilities
                .push(vuln(Severity::Critical, true, false));
        },
        &[(
            "vulnerabilities",
            "CVE-2026-0001 (critical) in pkg:deb/debian/openssl@3.0.11 is at or above the critical threshold of staging; a fix is available",
        )],
    );
    // With no fix yet, an OS package's finding waits for the distribution's
    // fix by default (`block_unfixed`), and blocks where the organisation says.
    check(
        |i| {
            staging(i);
            i.findings
                .vulnerabilities
                .push(vuln(Severity::Critical, false, false));
        },
        &[],
    );
}

#[test]
fn an_unknown_severity_counts_as_critical_and_vex_suppresses() {
    check(
        |i| {
            staging(i);
            i.findings
                .vulnerabilities
                .push(vuln(Severity::Unknown, true, false));
        },
        &[(
            "vulnerabilities",
            "CVE-2026-0001 (unknown) in pkg:deb/debian/openssl@3.0.11 is at or above the critical threshold of staging; a fix is available",
        )],
    );
    check(
        |i| {
            i.findings
                .vulnerabilities
                .push(vuln(Severity::Critical, true, true));
        },
        &[],
    );
}

#[test]
fn without_a_signed_scan_of_the_digest_the_gate_denies() {
    check(
        |i| i.findings.scanned = false,
        &[(
            "vulnerabilities",
            "no signed vulnerability scan of this digest: its vulnerabilities cannot be evaluated",
        )],
    );
    // Staging too: no threshold makes an unscanned artifact pass.
    check(
        |i| {
            staging(i);
            i.findings.scanned = false;
            i.findings.vulnerabilities.clear();
        },
        &[(
            "vulnerabilities",
            "no signed vulnerability scan of this digest: its vulnerabilities cannot be evaluated",
        )],
    );
}

#[test]
fn an_unlisted_environment_gets_the_strict_defaults() {
    check(
        |i| {
            i.environment.name = "eu-production".into();
            i.environment.previous.as_mut().unwrap().name = "production".into();
            i.findings
                .vulnerabilities
                .push(vuln(Severity::High, true, false));
            i.reviews.clear();
        },
        &[
            ("review", NEEDS_ONE),
            (
                "vulnerabilities",
                "CVE-2026-0001 (high) in pkg:deb/debian/openssl@3.0.11 is at or above the high threshold of eu-production; a fix is available",
            ),
        ],
    );
}

// --- licences ---------------------------------------------------------------------

fn licence(expression: Option<&str>) -> Licence {
    Licence {
        component: "pkg:npm/left-pad@1.3.0".into(),
        expression: expression.map(str::to_owned),
        choices: None,
    }
}

#[test]
fn licences_must_be_allowed() {
    let not_allowed =
        |e: &str| format!("pkg:npm/left-pad@1.3.0 is licensed {e}, which is not allowed");
    for expression in [
        "AGPL-3.0-only",
        "MIT AND GPL-3.0-only",
        "(MIT OR Apache-2.0) AND Unicode-3.0",
        "NOASSERTION",
        "",
    ] {
        check(
            |i| i.findings.licences.push(licence(Some(expression))),
            &[("licences", &not_allowed(expression))],
        );
    }
    check(
        |i| i.findings.licences.push(licence(None)),
        &[("licences", "pkg:npm/left-pad@1.3.0 has no known licence")],
    );
    for expression in ["GPL-3.0-only OR MIT", "ISC AND MIT", "Apache-2.0"] {
        check(|i| i.findings.licences.push(licence(Some(expression))), &[]);
    }
}

// --- promotion path ---------------------------------------------------------------

#[test]
fn production_needs_the_digest_healthy_in_staging_first() {
    check(
        |i| i.environment.previous.as_mut().unwrap().deployed = false,
        &[(
            "promotion-path",
            &format!("{DIGEST} is not deployed in staging: promote it there before production"),
        )],
    );
    check(
        |i| i.environment.previous.as_mut().unwrap().healthy = false,
        &[(
            "promotion-path",
            &format!("{DIGEST} is deployed in staging but not healthy there"),
        )],
    );
    check(
        |i| i.environment.previous = None,
        &[(
            "promotion-path",
            "production is not the first environment, but no previous environment is named",
        )],
    );
}

// --- several at once, overrides ------------------------------------------------------

#[test]
fn every_failing_rule_is_reported_sorted() {
    check(
        |i| {
            i.reviews.clear();
            i.evidence.clear();
            i.environment.previous.as_mut().unwrap().deployed = false;
        },
        &[
            (
                "promotion-path",
                &format!("{DIGEST} is not deployed in staging: promote it there before production"),
            ),
            (
                "provenance",
                &format!(
                    "no SLSA provenance about {DIGEST} from builder {BUILDER} for commit {COMMIT}"
                ),
            ),
            ("review", NEEDS_ONE),
            (
                "tests",
                &format!("no acceptance-test result about {DIGEST}"),
            ),
            ("tests", &format!("no unit-test result about {DIGEST}")),
        ],
    );
}

#[test]
fn an_override_with_a_reason_allows_and_is_flagged_with_the_denials_kept() {
    let mut input = realistic_input(BUILDER);
    input.reviews.clear();
    input.override_ = Some(Override {
        reason: "INC-4711: roll back to the last good digest".into(),
    });
    let decision = gate().decide(&input).unwrap();
    assert!(decision.allow);
    assert_eq!(
        decision.overridden.as_deref(),
        Some("INC-4711: roll back to the last good digest")
    );
    assert_eq!(decision.reasons.len(), 1);
    assert_eq!(decision.reasons[0].rule, "review");
}

#[test]
fn an_override_without_a_reason_denies_even_an_allowed_input() {
    for reason in ["", "   "] {
        let mut input = realistic_input(BUILDER);
        input.override_ = Some(Override {
            reason: reason.into(),
        });
        let decision = gate().decide(&input).unwrap();
        assert!(!decision.allow);
        assert_eq!(decision.overridden, None);
        assert_eq!(decision.reasons.len(), 1);
        assert_eq!(decision.reasons[0].rule, "cairn.gate");
        assert_eq!(
            decision.reasons[0].message,
            "an override needs a non-empty reason"
        );
    }
}

// --- real evidence -------------------------------------------------------------------

/// Builds the evidence entries the way the engine will: real statements from
/// cairn-evidence, signed into Sigstore bundles, parsed back and verified; only
/// what verified reaches the input.
#[test]
fn real_signed_and_verified_evidence_passes_the_gate() {
    use cairn_evidence::{Algorithm, Bundle, Observed, SigningKey, Statement, Subject};
    let key = SigningKey::from_secret_bytes(Algorithm::Ed25519, &[7; 32]).unwrap();
    let artifact = cairn_evidence::sha256(b"the hello image manifest");
    let digest = artifact.to_string();
    let observed = |stage: &str, kind: &str| Observed {
        workload: "hello".into(),
        repository: "git+file:///srv/git/hello.git".into(),
        commit: COMMIT.into(),
        run_id: "42".into(),
        chain: "default".into(),
        stage: stage.into(),
        stage_kind: kind.into(),
        command: Some("make test".into()),
        started_ms: 1_764_072_000_000,
        finished_ms: 1_764_072_003_250,
        exit_code: Some(0),
        logs: vec![],
        base_images: vec![],
        failed_tests: vec![],
        tests: None,
        artifacts: vec![Subject::sha256("hello", artifact)],
        triggered_by: None,
        change: Vec::new(),
    };
    let bundles = vec![
        (
            "build",
            Bundle::sign_statement(
                &Statement::provenance(&observed("build", "build"), BUILDER).unwrap(),
                &key,
            )
            .unwrap(),
        ),
        (
            "unit-test",
            Bundle::sign_statement(
                &Statement::test_result(&observed("unit", "unit-test"), None).unwrap(),
                &key,
            )
            .unwrap(),
        ),
        (
            "acceptance-test",
            Bundle::sign_statement(
                &Statement::test_result(&observed("acceptance", "acceptance-test"), None).unwrap(),
                &key,
            )
            .unwrap(),
        ),
    ];
    let mut evidence = Vec::new();
    for (kind, bundle) in bundles {
        let read = Bundle::from_json(bundle.to_json().unwrap().as_bytes()).unwrap();
        let payload = read.verify(key.verifying_key()).unwrap();
        let statement: serde_json::Value = serde_json::from_slice(payload).unwrap();
        for subject in statement["subject"].as_array().unwrap() {
            evidence.push(Evidence {
                predicate_type: statement["predicateType"].as_str().unwrap().into(),
                signer: key.verifying_key().key_id().to_string(),
                subject_digest: format!("sha256:{}", subject["digest"]["sha256"].as_str().unwrap()),
                stage_kind: Some(kind.into()),
                // What the engine reads from the signed statement; `None`
                // (serialised as `null`) would not be taken as about the commit.
                run: Some("42".into()),
                workload: Some("hello".into()),
                commit: Some(COMMIT.into()),
                predicate: statement["predicate"].clone(),
            });
        }
    }
    let mut input = realistic_input(BUILDER);
    input.artifact.digest = digest.clone();
    input.evidence = evidence;
    let decision = gate().decide(&input).unwrap();
    assert_eq!(decision.reasons, vec![]);
    assert!(decision.allow);

    // The same evidence with the key pinned: still allowed; pinned to another
    // key: provenance and tests are denied.
    let mut params = DefaultParams::new(BUILDER);
    params.trusted_signers = vec![key.verifying_key().key_id().to_string()];
    assert!(
        Gate::default_set(&params)
            .unwrap()
            .decide(&input)
            .unwrap()
            .allow
    );
    params.trusted_signers = vec!["SHA256:someone-else".into()];
    let rules: Vec<String> = Gate::default_set(&params)
        .unwrap()
        .decide(&input)
        .unwrap()
        .reasons
        .into_iter()
        .map(|d| d.rule)
        .collect();
    assert_eq!(rules, ["provenance", "tests", "tests"]);
}
