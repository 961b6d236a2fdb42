//! The gate fails closed: every way a policy or an input can be wrong ends in a
//! denial with a reason, or in an `Err` that `decide_or_deny` turns into one.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use cairn_policy::{
    DENY_RULE, DefaultParams, GATE_RULE, Gate, Limits, PolicyError, default_policy_files,
    input_digest, realistic_input,
};
use serde_json::json;

const BUILDER: &str = "urn:cairn:builder:engine";

fn load(text: &str) -> Result<Gate, PolicyError> {
    Gate::load(&[("org/gate.rego", text)])
}

fn deny_messages(gate: &Gate, input: serde_json::Value) -> Vec<(String, String)> {
    let decision = gate.decide_value(&input).unwrap();
    assert!(!decision.allow);
    decision
        .reasons
        .into_iter()
        .map(|d| (d.rule, d.message))
        .collect()
}

#[test]
fn no_policy_is_refused() {
    assert!(matches!(Gate::load(&[]), Err(PolicyError::NoPolicy)));
}

#[test]
fn malformed_rego_is_refused_with_file_line_and_column() {
    let err = Gate::load(&[
        ("org/ok.rego", "package cairn.gate\n\ndeny := set()\n"),
        (
            "org/broken.rego",
            "package cairn.gate\n\ndeny contains x if {\n    x := input.a +\n}\n",
        ),
    ])
    .unwrap_err();
    match &err {
        PolicyError::Syntax {
            file, line, column, ..
        } => {
            assert_eq!(file, "org/broken.rego");
            assert_eq!((*line, *column), (4, 7));
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "org/broken.rego:4:7: expecting `}` while parsing set"
    );

    // Rego v0 syntax (no `if`) is refused, located.
    let err = load("package cairn.gate\n\ndeny[x] {\n  x := 1\n}\n").unwrap_err();
    assert!(
        matches!(&err, PolicyError::Syntax { file, line: 3, .. } if file == "org/gate.rego"),
        "{err:?}"
    );
}

#[test]
fn a_policy_without_the_deny_rule_is_refused_at_load() {
    let err = load("package cairn.gate\n\nallow := true\n").unwrap_err();
    assert!(matches!(err, PolicyError::Compile { .. }), "{err:?}");
    let err = load("package org.other\n\ndeny contains 1 if true\n").unwrap_err();
    assert!(matches!(err, PolicyError::Compile { .. }), "{err:?}");
}

#[test]
fn recursion_is_refused_at_load() {
    let err = load(
        "package cairn.gate\n\na if b\n\nb if a\n\ndeny contains {\"rule\": \"x\", \"msg\": \"y\"} if a\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "org/gate.rego:3:1: recursion detected when evaluating rule:"
    );
    // Recursion only some inputs reach is found when they do: an error, located,
    // which the gate turns into a denial.
    let gate = load(
        "package cairn.gate\n\na if { input.deep; b }\n\nb if a\n\ndeny contains {\"rule\": \"x\", \"msg\": \"y\"} if a\n",
    )
    .unwrap();
    let err = gate.decide_value(&json!({"deep": true})).unwrap_err();
    assert!(err.to_string().contains("recursion detected"), "{err}");
    assert!(!gate.decide_or_deny(&json!({"deep": true})).allow);
}

#[test]
fn duplicate_and_oversized_files_are_refused() {
    let text = "package cairn.gate\n\ndeny := set()\n";
    assert!(matches!(
        Gate::load(&[("a.rego", text), ("a.rego", text)]),
        Err(PolicyError::DuplicateFile(name)) if name == "a.rego"
    ));
    let big = format!("{text}{}", "# padding\n".repeat(30_000));
    assert!(matches!(
        Gate::load(&[("big.rego", &big)]),
        Err(PolicyError::TooLarge { .. })
    ));
}

#[test]
fn an_undefined_deny_denies() {
    // `deny` defined only under a condition the input does not meet.
    let gate = load("package cairn.gate\n\ndeny := {\"x\"} if input.never\n").unwrap();
    assert_eq!(
        deny_messages(&gate, json!({})),
        [(
            GATE_RULE.to_owned(),
            format!("{DENY_RULE} is undefined: the policy gave no decision")
        )]
    );
}

#[test]
fn a_non_set_deny_denies() {
    for (text, shown) in [
        ("deny := false", "false"),
        ("deny := true", "true"),
        ("deny := []", "[]"),
        ("deny := \"no\"", "\"no\""),
    ] {
        let gate = load(&format!("package cairn.gate\n\n{text}\n")).unwrap();
        assert_eq!(
            deny_messages(&gate, json!({})),
            [(
                GATE_RULE.to_owned(),
                format!("{DENY_RULE} must be a set of {{\"rule\", \"msg\"}} objects, not {shown}")
            )],
            "{text}"
        );
    }
}

#[test]
fn malformed_deny_members_deny() {
    let gate = load(
        "package cairn.gate\n\ndeny contains \"just a string\" if true\n\ndeny contains {\"rule\": \"r\"} if true\n\ndeny contains {\"rule\": \"ok\", \"msg\": \"fine\"} if true\n",
    )
    .unwrap();
    let got = deny_messages(&gate, json!({}));
    assert_eq!(got.len(), 3);
    assert!(got.contains(&("ok".to_owned(), "fine".to_owned())));
    assert!(got.contains(&(
        GATE_RULE.to_owned(),
        "a deny entry is not {\"rule\": string, \"msg\": string}: \"just a string\"".to_owned()
    )));
    assert!(
        got.iter()
            .any(|(r, m)| r == GATE_RULE && m.contains("\"rule\": \"r\"")),
        "{got:?}"
    );
}

#[test]
fn an_empty_deny_set_allows_and_a_member_denies() {
    let gate = load(
        "package cairn.gate\n\ndeny contains {\"rule\": \"flag\", \"msg\": \"flag is set\"} if input.flag\n",
    )
    .unwrap();
    assert!(gate.decide_value(&json!({"flag": false})).unwrap().allow);
    assert!(gate.decide_value(&json!({})).unwrap().allow);
    let d = gate.decide_value(&json!({"flag": true})).unwrap();
    assert!(!d.allow);
    assert_eq!(d.reasons[0].message, "flag is set");
}

#[test]
fn an_evaluation_error_is_an_err_and_decide_or_deny_denies() {
    // A strict builtin error: to_number of a non-number.
    let gate = load(
        "package cairn.gate\n\ndeny contains {\"rule\": \"n\", \"msg\": \"big\"} if to_number(input.n) > 3\n",
    )
    .unwrap();
    let err = gate.decide_value(&json!({"n": "three"})).unwrap_err();
    assert!(matches!(err, PolicyError::Evaluation { .. }), "{err:?}");
    let d = gate.decide_or_deny(&json!({"n": "three"}));
    assert!(!d.allow);
    assert_eq!(d.reasons[0].rule, GATE_RULE);
    assert!(
        d.reasons[0]
            .message
            .starts_with("the policy could not be evaluated: evaluation failed: ")
    );
    assert_eq!(d.input_digest, input_digest(&json!({"n": "three"})));
    assert_eq!(d.policy_digest, gate.policy_digest());
}

#[test]
fn a_conflicting_complete_rule_is_an_evaluation_error() {
    let gate = load(
        "package cairn.gate\n\nx := 1 if true\n\nx := 2 if true\n\ndeny contains {\"rule\": \"x\", \"msg\": \"x\"} if x == 3\n",
    )
    .unwrap();
    assert!(gate.decide_value(&json!({})).is_err());
    assert!(!gate.decide_or_deny(&json!({})).allow);
}

#[test]
fn a_policy_that_runs_too_long_is_stopped_and_denied() {
    // 100k × 100k iterations: about 10^10 steps, far beyond any budget.
    let text = "package cairn.gate\n\ndeny contains {\"rule\": \"slow\", \"msg\": \"found\"} if {\n  some i in numbers.range(1, 100000)\n  some j in numbers.range(1, 100000)\n  i * j == -1\n}\n";
    let limits = Limits {
        time_limit: Duration::from_millis(100),
        ..Limits::default()
    };
    let gate = Gate::load_with(&[("slow.rego", text)], &json!({}), limits).unwrap();
    let start = Instant::now();
    let err = gate.decide_value(&json!({})).unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, PolicyError::TimeLimit { limit } if limit == Duration::from_millis(100)),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let d = gate.decide_or_deny(&json!({}));
    assert!(!d.allow);
    assert_eq!(
        d.reasons[0].message,
        "the policy could not be evaluated: the policy ran longer than its 100ms budget"
    );
}

#[test]
fn a_huge_range_is_refused_not_allocated() {
    let gate = load(
        "package cairn.gate\n\ndeny contains {\"rule\": \"r\", \"msg\": \"m\"} if count(numbers.range(0, 1000000000000)) == 0\n",
    )
    .unwrap();
    let err = gate.decide_value(&json!({})).unwrap_err();
    assert!(
        err.to_string()
            .contains("more than the 100000 a gate allows"),
        "{err}"
    );
    let gate = load(
        "package cairn.gate\n\ndeny contains {\"rule\": \"r\", \"msg\": \"m\"} if count(numbers.range_step(0, 10, 0)) == 0\n",
    )
    .unwrap();
    assert!(gate.decide_value(&json!({})).is_err());
    // Small ranges still work, in both directions, as in OPA.
    let gate = load(
        "package cairn.gate\n\ndeny contains {\"rule\": \"r\", \"msg\": sprintf(\"%v %v\", [numbers.range(3, 1), numbers.range_step(0, 10, 4)])} if true\n",
    )
    .unwrap();
    let d = gate.decide_value(&json!({})).unwrap();
    assert_eq!(d.reasons[0].message, "[3, 2, 1] [0, 4, 8]");
}

#[test]
fn non_deterministic_and_outside_world_builtins_are_refused() {
    for call in [
        "rand.intn(\"x\", 10) == 3",
        "time.now_ns() > 0",
        "http.send({\"method\": \"get\", \"url\": \"http://example.invalid\"}).status_code == 200",
        "opa.runtime().env.HOME == \"/root\"",
        "uuid.rfc4122(\"x\") != \"\"",
        "net.cidr_contains(\"10.0.0.0/8\", \"10.0.0.1\")",
    ] {
        let text = format!(
            "package cairn.gate\n\ndeny contains {{\"rule\": \"r\", \"msg\": \"m\"}} if {call}\n"
        );
        let outcome = load(&text).and_then(|g| g.decide_value(&json!({})));
        assert!(outcome.is_err(), "{call} must not evaluate: {outcome:?}");
    }
}

#[test]
fn oversized_or_deep_inputs_are_refused() {
    let gate = Gate::default_set(&DefaultParams::new(BUILDER)).unwrap();
    let mut deep = json!("leaf");
    for _ in 0..40 {
        deep = json!([deep]);
    }
    assert!(matches!(
        gate.decide_value(&json!({"x": deep})),
        Err(PolicyError::TooDeep { limit: 32 })
    ));
    let big = json!({"artifact": {"image_references": vec!["a".repeat(1000); 2000]}});
    assert!(matches!(
        gate.decide_value(&big),
        Err(PolicyError::TooLarge { .. })
    ));
    assert!(!gate.decide_or_deny(&big).allow);
}

#[test]
fn digests_identify_the_policy_and_the_input() {
    let params = DefaultParams::new(BUILDER);
    let gate = Gate::default_set(&params).unwrap();
    let input = realistic_input(BUILDER);
    let d = gate.decide(&input).unwrap();
    assert_eq!(d.policy_digest, gate.policy_digest());
    assert_eq!(
        d.input_digest,
        input_digest(&serde_json::to_value(&input).unwrap())
    );
    assert!(d.policy_digest.starts_with("sha256:") && d.policy_digest.len() == 71);

    // The same files in another order: the same policy digest.
    let mut files = default_policy_files();
    files.reverse();
    let reversed = Gate::load_with(&files, &params.to_data().unwrap(), Limits::default()).unwrap();
    assert_eq!(reversed.policy_digest(), gate.policy_digest());
    // Other params: another policy digest.
    let mut other = params.clone();
    other.required_approvals.insert("production".into(), 2);
    assert_ne!(
        Gate::default_set(&other).unwrap().policy_digest(),
        gate.policy_digest()
    );
    // Another input: another input digest.
    let mut changed = input.clone();
    changed.reviews.clear();
    assert_ne!(gate.decide(&changed).unwrap().input_digest, d.input_digest);
}

#[test]
fn the_typed_input_round_trips_through_its_documented_json() {
    let input = realistic_input(BUILDER);
    let value = serde_json::to_value(&input).unwrap();
    for key in [
        "artifact",
        "evidence",
        "reviews",
        "environment",
        "findings",
        "actor",
        "override",
    ] {
        assert!(value.get(key).is_some(), "{key}");
    }
    assert_eq!(value["reviews"][0]["verdict"], "approve");
    assert_eq!(value["findings"]["vulnerabilities"][0]["severity"], "low");
    let back: cairn_policy::GateInput = serde_json::from_value(value).unwrap();
    assert_eq!(back, input);
}

#[test]
fn a_gate_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Gate>();
    let gate = Gate::default_set(&DefaultParams::new(BUILDER)).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    assert!(gate.decide(&realistic_input(BUILDER)).unwrap().allow);
                }
            });
        }
    });
}

#[test]
fn the_bench_measures_both_sides_on_a_decision_that_allows() {
    let params = DefaultParams::new(BUILDER);
    let gate = Gate::default_set(&params).unwrap();
    let bench = cairn_policy::bench_gate(
        &gate,
        &default_policy_files(),
        &params.to_data().unwrap(),
        &realistic_input(BUILDER),
        20,
        &Instant::now,
    )
    .unwrap();
    assert_eq!(bench.iterations, 20);
    assert!(bench.allowed);
    assert_eq!(bench.denials, 0);
    assert!(bench.gate.p50 <= bench.gate.p99 && bench.gate.p99 <= bench.gate.max);
    assert!(bench.regorus.p50 > Duration::ZERO);
}

#[test]
fn reused_engines_carry_nothing_from_one_decision_to_the_next() {
    // One gate, decisions alternating between inputs that allow, deny, and fail
    // to evaluate: each equals the decision of a freshly loaded gate.
    let params = DefaultParams::new(BUILDER);
    let shared = Gate::default_set(&params).unwrap();
    let good = serde_json::to_value(realistic_input(BUILDER)).unwrap();
    let mut bad_input = realistic_input(BUILDER);
    bad_input.reviews.clear();
    bad_input.environment.previous = None;
    let bad = serde_json::to_value(&bad_input).unwrap();
    let broken =
        json!({"artifact": {"image_references": [1, {"x": []}]}, "environment": {"position": "x"}});
    let fresh =
        |input: &serde_json::Value| Gate::default_set(&params).unwrap().decide_or_deny(input);
    let expected = [fresh(&good), fresh(&bad), fresh(&broken)];
    assert!(expected[0].allow && !expected[1].allow && !expected[2].allow);
    for round in 0..30 {
        for (input, want) in [&good, &bad, &broken].into_iter().zip(&expected) {
            assert_eq!(&shared.decide_or_deny(input), want, "round {round}");
        }
    }
}
