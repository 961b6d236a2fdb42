//! `cairn policy test`: Rego unit tests report pass, fail and error per rule,
//! with file and name; the default set's own tests all pass.

#![allow(clippy::unwrap_used)]

use cairn_policy::{
    DEFAULT_POLICY_TESTS, DefaultParams, PolicyError, TestOutcome, default_policy_files,
    run_policy_tests, test_default_policies,
};
use serde_json::json;

#[test]
fn the_default_set_passes_its_own_rego_tests() {
    let report = test_default_policies(&DefaultParams::new("urn:cairn:builder:engine")).unwrap();
    let failures: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.outcome != TestOutcome::Pass)
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(report.ok());
    assert!(report.passed() >= 30, "{}", report.passed());
    // Every rule of the set has tests.
    for rule in [
        "review",
        "approval",
        "acceptance",
        "provenance",
        "base_image",
        "docker",
        "finding",
        "licence",
        "staging",
        "failed_verification",
        "who_ran_it",
        "rollback",
        "signed_commits",
    ] {
        assert!(
            report.cases.iter().any(|c| c.name.contains(rule)),
            "no Rego test mentions {rule}"
        );
    }
}

#[test]
fn without_the_builder_id_the_default_tests_fail_closed() {
    // The default set's tests with no params: the good input is denied
    // (provenance needs the builder id), so "good is allowed" fails.
    let report =
        run_policy_tests(&default_policy_files(), DEFAULT_POLICY_TESTS, &json!({})).unwrap();
    let good = report
        .cases
        .iter()
        .find(|c| c.name == "test_good_input_is_allowed")
        .unwrap();
    assert_eq!(good.outcome, TestOutcome::Fail);
    assert!(!report.ok());
}

#[test]
fn pass_fail_and_error_are_reported_with_file_and_name() {
    let policy = (
        "org/gate.rego",
        "package cairn.gate\n\ndeny contains {\"rule\": \"r\", \"msg\": \"m\"} if input.bad\n\nhalf(x) := x / 2\n",
    );
    let tests = (
        "org/gate_test.rego",
        "package cairn.gate_test\n\nimport data.cairn.gate\n\ntest_allows_good if {\n  count(gate.deny) == 0 with input as {}\n}\n\ntest_wrongly_expects_deny if {\n  count(gate.deny) == 1 with input as {}\n}\n\ntest_errors if {\n  to_number(\"x\") == 1\n}\n\nnot_a_test := true\n",
    );
    let report = run_policy_tests(&[policy], &[tests], &json!({})).unwrap();
    let got: Vec<(&str, &str, u32, &TestOutcome)> = report
        .cases
        .iter()
        .map(|c| (c.file.as_str(), c.name.as_str(), c.line, &c.outcome))
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0],
        (
            "org/gate_test.rego",
            "test_allows_good",
            5,
            &TestOutcome::Pass
        )
    );
    assert_eq!(
        got[1],
        (
            "org/gate_test.rego",
            "test_wrongly_expects_deny",
            9,
            &TestOutcome::Fail
        )
    );
    assert_eq!(
        (got[2].0, got[2].1, got[2].2),
        ("org/gate_test.rego", "test_errors", 13)
    );
    assert!(
        matches!(got[2].3, TestOutcome::Error { message } if message.contains("org/gate_test.rego:14")),
        "{:?}",
        got[2].3
    );
    assert_eq!(
        report.cases[0].rule,
        "data.cairn.gate_test.test_allows_good"
    );
    assert_eq!(
        (report.passed(), report.failed(), report.errors()),
        (1, 1, 1)
    );
    assert!(!report.ok());
}

#[test]
fn no_tests_is_not_a_pass_and_malformed_tests_are_refused() {
    let policy = ("gate.rego", "package cairn.gate\n\ndeny := set()\n");
    let report = run_policy_tests(
        &[policy],
        &[("empty_test.rego", "package t\n\nx := 1\n")],
        &json!({}),
    )
    .unwrap();
    assert!(report.cases.is_empty());
    assert!(!report.ok());
    let err = run_policy_tests(
        &[policy],
        &[("bad_test.rego", "package t\n\ntest_x if {\n")],
        &json!({}),
    )
    .unwrap_err();
    assert!(
        matches!(err, PolicyError::Syntax { ref file, .. } if file == "bad_test.rego"),
        "{err:?}"
    );
}
