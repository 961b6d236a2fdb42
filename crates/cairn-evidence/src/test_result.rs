//! in-toto test-result v0.1 (in-toto/attestation `spec/predicates/test-result.md`),
//! built from what the engine observed of a test stage.

use serde::{Deserialize, Serialize};

use crate::statement::{Predicate, ResourceDescriptor, Statement};
use crate::{EvidenceError, Observed};

/// The `name` of the configuration entry that says which chain stage of which
/// run produced a test result. Its `annotations` (all signed with the result):
/// `cairn.workload`, `cairn.chain`, `cairn.stage`, `cairn.stageKind`
/// (`unit-test`, `acceptance-test`, …), `cairn.run`, and `cairn.triggeredBy`
/// (the identity that queued or ran the run, when one did). When the engine
/// read the runner's machine-readable results (see [`cairn_model::test_results`]),
/// also `cairn.tests.format` (`junit-xml`, `tap`, `cargo-libtest`, `go-test`) and
/// the exact counts `cairn.tests.passed`, `cairn.tests.failed`,
/// `cairn.tests.skipped` (the predicate's `passedTests`/`failedTests` name at
/// most [`cairn_model::test_results::MAX_NAMED`] each). A gate reads the
/// stage kind from here, never from a store row.
pub const STAGE_DESCRIPTOR_NAME: &str = "cairn chain stage";

/// `predicateType` of test-result v0.1.
pub const TEST_RESULT_PREDICATE_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TestOutcome {
    Passed,
    Warned,
    Failed,
}

/// The test-result predicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestResult {
    pub result: TestOutcome,
    /// What configured the run: the workload's committed config at the commit.
    pub configuration: Vec<ResourceDescriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed_tests: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warned_tests: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_tests: Vec<String>,
}

impl Predicate for TestResult {
    const PREDICATE_TYPE: &'static str = TEST_RESULT_PREDICATE_TYPE;
}

impl TestResult {
    /// PASSED only when the step exited 0 and no test is named or counted as
    /// failed; otherwise FAILED (a killed step, a non-zero exit, or failed tests).
    /// `passedTests`/`failedTests` come from the runner's results the engine
    /// read, and the failed tests named in the log.
    /// `url` is where people can see the run (cairn's run page), if there is one.
    pub fn from_observed(observed: &Observed, url: Option<String>) -> Self {
        let mut failed_tests = observed.failed_tests.clone();
        let mut passed_tests = Vec::new();
        if let Some(report) = &observed.tests {
            for name in &report.failed {
                if !failed_tests.contains(name) {
                    failed_tests.push(name.clone());
                }
            }
            passed_tests = report.passed.clone();
        }
        let failed_count = observed.tests.as_ref().map_or(0, |r| r.failed_count);
        let passed = observed.exit_code == Some(0) && failed_tests.is_empty() && failed_count == 0;
        TestResult {
            result: if passed {
                TestOutcome::Passed
            } else {
                TestOutcome::Failed
            },
            configuration: vec![
                ResourceDescriptor {
                    name: Some("cairn.toml".to_owned()),
                    ..ResourceDescriptor::git_commit(&observed.repository, &observed.commit)
                },
                stage_descriptor(observed),
            ],
            url,
            passed_tests,
            warned_tests: Vec::new(),
            failed_tests,
        }
    }
}

/// The [`STAGE_DESCRIPTOR_NAME`] entry of `observed`.
fn stage_descriptor(observed: &Observed) -> ResourceDescriptor {
    let mut annotations = std::collections::BTreeMap::from([
        ("cairn.workload".to_owned(), observed.workload.clone()),
        ("cairn.chain".to_owned(), observed.chain.clone()),
        ("cairn.stage".to_owned(), observed.stage.clone()),
        ("cairn.stageKind".to_owned(), observed.stage_kind.clone()),
        ("cairn.run".to_owned(), observed.run_id.clone()),
    ]);
    if let Some(who) = &observed.triggered_by {
        annotations.insert("cairn.triggeredBy".to_owned(), who.clone());
    }
    if let Some(report) = &observed.tests {
        for (key, value) in [
            ("cairn.tests.format", report.format.as_str().to_owned()),
            ("cairn.tests.passed", report.passed_count.to_string()),
            ("cairn.tests.failed", report.failed_count.to_string()),
            ("cairn.tests.skipped", report.skipped_count.to_string()),
        ] {
            annotations.insert(key.to_owned(), value);
        }
    }
    ResourceDescriptor {
        name: Some(STAGE_DESCRIPTOR_NAME.to_owned()),
        uri: Some(format!(
            "urn:cairn:run:{}:stage:{}",
            observed.run_id, observed.stage
        )),
        annotations,
        ..Default::default()
    }
}

impl TestResult {
    /// The signed annotations of the [`STAGE_DESCRIPTOR_NAME`] entry
    /// (`cairn.stageKind`, `cairn.run`, …); `None` when there is none (a test
    /// result cairn did not write, or one from before cairn signed them).
    pub fn stage_annotations(&self) -> Option<&std::collections::BTreeMap<String, String>> {
        self.configuration
            .iter()
            .find(|d| d.name.as_deref() == Some(STAGE_DESCRIPTOR_NAME))
            .map(|d| &d.annotations)
    }
}

impl Statement<TestResult> {
    /// The test-result statement about the tested artifacts.
    pub fn test_result(observed: &Observed, url: Option<String>) -> Result<Self, EvidenceError> {
        observed.check_commit()?;
        Statement::new(
            observed.artifacts.clone(),
            TestResult::from_observed(observed, url),
        )
    }
}
