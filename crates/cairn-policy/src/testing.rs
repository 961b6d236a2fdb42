//! Rego unit tests, as `opa test` runs them (OPA docs, "Policy Testing"): every
//! rule whose name starts with `test_` in the test files is evaluated on its
//! own; it passes when it is `true`, fails when it is undefined or anything
//! else, and errors when evaluation fails. This is `cairn policy test`.

use serde::{Deserialize, Serialize};

use crate::PolicyError;
use crate::gate::{Limits, add_data, add_policies, new_engine};

/// The outcome of one test rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum TestOutcome {
    Pass,
    Fail,
    Error { message: String },
}

/// One `test_*` rule and what it gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    /// The test file.
    pub file: String,
    /// `data.<package>.<test name>`.
    pub rule: String,
    /// The test name (`test_…`).
    pub name: String,
    /// The line the rule starts on.
    pub line: u32,
    #[serde(flatten)]
    pub outcome: TestOutcome,
}

/// Every test that ran, in file then line order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    pub cases: Vec<TestCase>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, TestOutcome::Pass))
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, TestOutcome::Fail))
    }
    pub fn errors(&self) -> usize {
        self.count(|o| matches!(o, TestOutcome::Error { .. }))
    }
    /// True only when there was at least one test and every test passed (no
    /// tests is not a pass).
    pub fn ok(&self) -> bool {
        !self.cases.is_empty() && self.passed() == self.cases.len()
    }
    fn count(&self, f: impl Fn(&TestOutcome) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.outcome)).count()
    }
}

/// Runs the `test_*` rules of `tests` against `policies` (both `(file name,
/// Rego text)`), with `data` visible as `data`. Load errors (malformed Rego in
/// either) are an `Err`; a failing or erroring test is in the report.
pub fn run_policy_tests(
    policies: &[(&str, &str)],
    tests: &[(&str, &str)],
    data: &serde_json::Value,
) -> Result<TestReport, PolicyError> {
    let limits = Limits::default();
    let mut engine = new_engine(&limits)?;
    add_policies(&mut engine, policies, &limits, 0)?;
    add_policies(&mut engine, tests, &limits, policies.len())?;
    add_data(&mut engine, data, &limits)?;

    let test_files: Vec<&str> = tests.iter().map(|(n, _)| *n).collect();
    let mut found: Vec<(String, String, String, u32)> = Vec::new();
    for module in engine.get_modules() {
        let file = module.package.span.source.file().clone();
        if !test_files.contains(&file.as_str()) {
            continue;
        }
        let package =
            regorus::utils::get_path_string(&module.package.refr, Some("data")).map_err(|e| {
                PolicyError::Compile {
                    location: file.clone(),
                    message: e.to_string(),
                }
            })?;
        for rule in &module.policy {
            let regorus::unstable::Rule::Spec {
                head: regorus::unstable::RuleHead::Compr { refr, .. },
                span,
                ..
            } = rule.as_ref()
            else {
                continue;
            };
            let Ok(name) = regorus::utils::get_path_string(refr, None) else {
                continue;
            };
            if name.starts_with("test_")
                && !found.iter().any(|(f, _, n, _)| *f == file && *n == name)
            {
                found.push((file.clone(), package.clone(), name, span.line));
            }
        }
    }
    found.sort_by(|a, b| (&a.0, a.3).cmp(&(&b.0, b.3)));

    let mut report = TestReport::default();
    for (file, package, name, line) in found {
        let rule = format!("{package}.{name}");
        let mut run = engine.clone();
        let outcome = match run.eval_rule(rule.clone()) {
            Ok(regorus::Value::Bool(true)) => TestOutcome::Pass,
            Ok(_) => TestOutcome::Fail,
            Err(e) => TestOutcome::Error {
                message: crate::error::one_line(&e.to_string()),
            },
        };
        report.cases.push(TestCase {
            file,
            rule,
            name,
            line,
            outcome,
        });
    }
    Ok(report)
}
