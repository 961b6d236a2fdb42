//! The gate benchmark (`cairn bench policy`): `Gate::decide` on a realistic
//! input, side by side with regorus evaluating the same policy on the same
//! input alone. The caller hands in the clock (this crate reads none). The
//! measurement needs the gate's internals, so it is here behind the `bench`
//! feature (which `cairn-bench` turns on); [`realistic_input`] is always here
//! (tests and examples build on it).

#[cfg(feature = "bench")]
use std::time::{Duration, Instant};

use serde_json::json;

#[cfg(feature = "bench")]
use crate::gate::{Gate, add_data, add_policies, eval_deny, new_engine};
use crate::input::{
    Actor, Artifact, BaseImage, Environment, Evidence, Findings, GateInput, Intent, Licence,
    PreviousEnvironment, Review, Severity, Verdict, Verification, Vulnerability,
};
#[cfg(feature = "bench")]
use crate::{Limits, PolicyError};

#[cfg(feature = "bench")]
/// p50 / p99 / max of one measured operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

#[cfg(feature = "bench")]
/// The two sides of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateBench {
    pub iterations: usize,
    /// `Gate::decide`: serialisation, bounds, digest, a fresh engine, evaluation,
    /// reading the denials.
    pub gate: Timing,
    /// regorus alone: `set_input` + `eval_rule("data.cairn.gate.deny")` on one
    /// engine with the same policy files and data.
    pub regorus: Timing,
    /// Whether the gate allowed the input (a sanity check that it did real work).
    pub allowed: bool,
    /// How many denials the gate gave.
    pub denials: usize,
}

#[cfg(feature = "bench")]
/// Times `iterations` decisions (after a warm-up of a tenth of them) with each
/// side. `policies` and `data` are what `gate` was loaded with.
pub fn bench_gate(
    gate: &Gate,
    policies: &[(&str, &str)],
    data: &serde_json::Value,
    input: &GateInput,
    iterations: usize,
    now: &dyn Fn() -> Instant,
) -> Result<GateBench, PolicyError> {
    let iterations = iterations.max(1);
    let warmup = iterations / 10;

    let mut gate_samples = Vec::with_capacity(iterations);
    let mut last = None;
    for i in 0..warmup + iterations {
        let start = now();
        let decision = gate.decide(input)?;
        let elapsed = now().saturating_duration_since(start);
        if i >= warmup {
            gate_samples.push(elapsed);
        }
        last = Some(decision);
    }

    let limits = Limits::default();
    let mut engine = new_engine(&limits)?;
    add_policies(&mut engine, policies, &limits, 0)?;
    add_data(&mut engine, data, &limits)?;
    let value = serde_json::to_value(input).map_err(|source| PolicyError::Json {
        what: "the gate input",
        source,
    })?;
    let mut regorus_samples = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let start = now();
        engine.set_input(regorus::Value::from(value.clone()));
        eval_deny(&mut engine)?;
        let elapsed = now().saturating_duration_since(start);
        if i >= warmup {
            regorus_samples.push(elapsed);
        }
    }

    let (allowed, denials) = last.map_or((false, 0), |d| (d.allow, d.reasons.len()));
    Ok(GateBench {
        iterations,
        gate: timing(gate_samples),
        regorus: timing(regorus_samples),
        allowed,
        denials,
    })
}

#[cfg(feature = "bench")]
fn timing(mut samples: Vec<Duration>) -> Timing {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().unwrap_or_default()
    };
    Timing {
        p50: at(0.50),
        p99: at(0.99),
        max: samples.last().copied().unwrap_or_default(),
    }
}

/// A realistic production gate input that the default set allows: evidence in
/// the shape cairn's engine signs (SLSA provenance v1, in-toto test-result v0.1
/// for unit and acceptance tests), a four-eyes approval, a scanned image with
/// low findings and permissive licences, deployed and healthy in staging.
pub fn realistic_input(builder_id: &str) -> GateInput {
    let digest = "sha256:4f1c6c1b1f0a0c2e8a4b2e6d3c9a7f5e1d2c3b4a5968778695a4b3c2d1e0f9a8";
    let commit = "9f2c1e7b5a3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e";
    let repo = "git+file:///srv/git/hello.git";
    let key = "SHA256:kZ4n7yq1cD2m3vX8pQ0rS5tU6wY9zA1bC2dE3fG4hI5";
    let test_result = |stage: &str, kind: &str| Evidence {
        predicate_type: "https://in-toto.io/attestation/test-result/v0.1".to_owned(),
        signer: key.to_owned(),
        subject_digest: digest.to_owned(),
        stage_kind: Some(kind.to_owned()),
        run: Some("42".to_owned()),
        workload: Some("hello".to_owned()),
        commit: Some(commit.to_owned()),
        predicate: json!({
            "result": "PASSED",
            "configuration": [{"name": "cairn.toml", "uri": repo, "digest": {"gitCommit": commit}}],
            "url": format!("https://cairn.example/runs/42#{stage}"),
            "passedTests": ["greeter::tests::greets", "greeter::tests::greets_twice", "api::health"],
        }),
    };
    GateInput {
        artifact: Artifact {
            digest: digest.to_owned(),
            workload: "hello".to_owned(),
            commit: commit.to_owned(),
            base_image: Some(BaseImage {
                name: "catalog.cairn.local/base/debian-bookworm".to_owned(),
                digest: "sha256:0b1c2d3e4f5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
                    .to_owned(),
                in_catalog: true,
            }),
            image_references: vec![
                "catalog.cairn.local/base/debian-bookworm@sha256:0b1c2d3e4f5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0".to_owned(),
                "registry.cairn.local/apps/hello@sha256:4f1c6c1b1f0a0c2e8a4b2e6d3c9a7f5e1d2c3b4a5968778695a4b3c2d1e0f9a8".to_owned(),
            ],
            change: Vec::new(),
        },
        evidence: vec![
            Evidence {
                predicate_type: "https://slsa.dev/provenance/v1".to_owned(),
                signer: key.to_owned(),
                subject_digest: digest.to_owned(),
                stage_kind: Some("build".to_owned()),
                run: Some("42".to_owned()),
                workload: Some("hello".to_owned()),
                commit: Some(commit.to_owned()),
                predicate: json!({
                    "buildDefinition": {
                        "buildType": "urn:cairn:build-type:chain-stage:v1",
                        "externalParameters": {"workload": "hello", "repository": repo, "commit": commit},
                        "internalParameters": {"chain": "default", "stage": "build", "stageKind": "build", "command": "make"},
                        "resolvedDependencies": [
                            {"uri": repo, "digest": {"gitCommit": commit}},
                            {"name": "catalog.cairn.local/base/debian-bookworm", "uri": "catalog.cairn.local/base/debian-bookworm",
                             "digest": {"sha256": "0b1c2d3e4f5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}}
                        ]
                    },
                    "runDetails": {
                        "builder": {"id": builder_id},
                        "metadata": {"invocationId": "42", "startedOn": "2026-11-25T14:00:00.000Z", "finishedOn": "2026-11-25T14:00:03.250Z"},
                        "byproducts": [{"name": "log", "digest": {"sha256": "aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233"}}]
                    }
                }),
            },
            test_result("unit-tests", "unit-test"),
            test_result("acceptance", "acceptance-test"),
        ],
        reviews: vec![Review {
            commit: commit.to_owned(),
            reviewer: "bob".to_owned(),
            reviewer_roles: vec!["maintainer".to_owned()],
            author: "alice".to_owned(),
            verdict: Verdict::Approve,
        }],
        environment: Environment {
            name: "production".to_owned(),
            position: 1,
            previous: Some(PreviousEnvironment {
                name: "staging".to_owned(),
                deployed: true,
                healthy: true,
            }),
            ran_before: false,
            require_signed_commits: false,
        },
        findings: Findings {
            scanned: true,
            vulnerabilities: vec![
                Vulnerability {
                    id: "CVE-2026-10001".to_owned(),
                    package: "pkg:deb/debian/libc6@2.36-9+deb12u4".to_owned(),
                    severity: Severity::Low,
                    fix_available: false,
                    suppressed: false,
                    urgency: None,
                },
                Vulnerability {
                    id: "GHSA-xxxx-yyyy-zzzz".to_owned(),
                    package: "pkg:cargo/time@0.3.20".to_owned(),
                    severity: Severity::Medium,
                    fix_available: true,
                    suppressed: false,
                    urgency: None,
                },
                Vulnerability {
                    id: "CVE-2026-20002".to_owned(),
                    package: "pkg:deb/debian/openssl@3.0.11-1~deb12u2".to_owned(),
                    severity: Severity::Critical,
                    fix_available: true,
                    suppressed: true,
                    urgency: None,
                },
            ],
            licences: [
                ("pkg:cargo/serde@1.0.200", "MIT OR Apache-2.0"),
                ("pkg:cargo/regex@1.10.4", "MIT OR Apache-2.0"),
                ("pkg:cargo/ring@0.17.8", "ISC AND MIT"),
                ("pkg:cargo/itoa@1.0.11", "MIT OR Apache-2.0"),
                ("pkg:cargo/zlib-rs@0.4.0", "Zlib"),
            ]
            .into_iter()
            .map(|(c, e)| Licence {
                component: c.to_owned(),
                expression: Some(e.to_owned()),
                choices: None,
            })
            .collect(),
            advisory_db: None,
        },
        actor: Actor {
            identity: "carol".to_owned(),
            kind: "user".to_owned(),
            roles: vec!["release-manager".to_owned()],
        },
        override_: None,
        verification: Verification::default(),
        authors: Vec::new(),
        intent: Intent::Promote,
    }
}
