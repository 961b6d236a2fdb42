//! in-toto test-result v0.1 (in-toto/attestation `spec/predicates/test-result.md`),
//! built from what the engine observed of a test stage.

use serde::{Deserialize, Serialize};

use crate::statement::{Predicate, ResourceDescriptor, Statement};
use crate::{EvidenceError, Observed};

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
    /// PASSED only when the step exited 0 and no test is named as failed;
    /// otherwise FAILED (a killed step, a non-zero exit, or failed tests).
    /// `url` is where people can see the run (cairn's run page), if there is one.
    pub fn from_observed(observed: &Observed, url: Option<String>) -> Self {
        let passed = observed.exit_code == Some(0) && observed.failed_tests.is_empty();
        TestResult {
            result: if passed {
                TestOutcome::Passed
            } else {
                TestOutcome::Failed
            },
            configuration: vec![ResourceDescriptor {
                name: Some("cairn.toml".to_owned()),
                ..ResourceDescriptor::git_commit(&observed.repository, &observed.commit)
            }],
            url,
            passed_tests: Vec::new(),
            warned_tests: Vec::new(),
            failed_tests: observed.failed_tests.clone(),
        }
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
