//! The default policy set cairn ships (`policies/*.rego`, embedded), its
//! parameters, and its Rego unit tests.
//!
//! | file | rule | what it asks |
//! |---|---|---|
//! | `input.rego` | `input` | the fields the rules read are present and well-formed |
//! | `evidence.rego` | `evidence` | every bundle filed under the artifact verified; one that did not is named |
//! | `signed_commits.rego` | `signed-commits` | where org.toml requires it (`[review] require_signed_commits`), every commit of the change has a verified SSH signature by a key registered to an identity |
//! | `review.rego` | `review` | the commit has the approvals its environment needs, by an approver who is none of its authors (four eyes: not who ran or pushed it, nor who signed or authored a commit; the git author e-mail only adds to that); a request for changes blocks |
//! | `test_results.rego` | `tests` | unit and acceptance tests PASSED on this exact digest (signed test-result) |
//! | `provenance.rego` | `provenance` | SLSA provenance about this digest from cairn's builder, built from the artifact's commit |
//! | `base_image.rego` | `base-image` | the base image is pinned by digest and in cairn's catalog |
//! | `registries.rego` | `no-docker-hub` | no image reference resolves to Docker Hub |
//! | `vulnerabilities.rego` | `vulnerabilities` | a signed vulnerability scan of this digest exists, and no open finding is at or above the environment's threshold (production: high, staging: critical) |
//! | `licences.rego` | `licences` | every component's licence expression is satisfied by the allowed licences |
//! | `promotion.rego` | `promotion-path` | after the first environment, the digest is deployed and healthy in the previous one, unless it is a rollback to a digest the gate passed into this environment before |
//! | `params.rego` | — | defaults of the parameters, overridden by `data.cairn.params` |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::gate::{Gate, Limits};
use crate::input::Severity;
use crate::{PolicyError, TestReport, run_policy_tests};

/// One file of the default set.
#[derive(Clone, Copy, Debug)]
pub struct DefaultPolicy {
    pub file: &'static str,
    /// The `rule` its denials carry (empty for `params.rego`).
    pub rule: &'static str,
    pub summary: &'static str,
    pub text: &'static str,
}

macro_rules! policy {
    ($file:literal, $rule:literal, $summary:literal) => {
        DefaultPolicy {
            file: $file,
            rule: $rule,
            summary: $summary,
            text: include_str!(concat!("../policies/", $file)),
        }
    };
}

/// The default policy set.
pub const DEFAULT_POLICIES: &[DefaultPolicy] = &[
    policy!(
        "params.rego",
        "",
        "defaults of the parameters, overridden by data.cairn.params"
    ),
    policy!(
        "input.rego",
        "input",
        "the fields the rules read are present and well-formed"
    ),
    policy!(
        "evidence.rego",
        "evidence",
        "every bundle filed under the artifact verified; one that did not is named"
    ),
    policy!(
        "signed_commits.rego",
        "signed-commits",
        "where org.toml requires it, every commit of the change has a verified signature of a registered key"
    ),
    policy!(
        "review.rego",
        "review",
        "approvals by a maintainer who is not the author (four eyes; count per environment)"
    ),
    policy!(
        "test_results.rego",
        "tests",
        "unit and acceptance tests PASSED on this exact digest"
    ),
    policy!(
        "provenance.rego",
        "provenance",
        "SLSA provenance about this digest from cairn's builder, for the artifact's commit"
    ),
    policy!(
        "base_image.rego",
        "base-image",
        "the base image is pinned and in cairn's catalog"
    ),
    policy!(
        "registries.rego",
        "no-docker-hub",
        "no image reference resolves to Docker Hub"
    ),
    policy!(
        "vulnerabilities.rego",
        "vulnerabilities",
        "a signed vulnerability scan of this digest exists, and no open finding is at or above the environment's threshold (production: high, staging: critical)"
    ),
    policy!(
        "licences.rego",
        "licences",
        "every component's licence is allowed"
    ),
    policy!(
        "promotion.rego",
        "promotion-path",
        "after the first environment, deployed and healthy in the previous one first"
    ),
];

/// The Rego unit tests of the default set (`cairn policy test` runs them too).
pub const DEFAULT_POLICY_TESTS: &[(&str, &str)] = &[(
    "default_test.rego",
    include_str!("../policies/default_test.rego"),
)];

/// Parameters of the default set, handed in as `data.cairn.params`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultParams {
    /// The SLSA builder id cairn's engine writes (the engine's `BUILDER_ID`).
    pub builder_id: String,
    /// Approvals per environment; `"*"` for any other environment.
    pub required_approvals: BTreeMap<String, u32>,
    /// Roles whose approval counts.
    pub approver_roles: Vec<String>,
    /// Test stage kinds that must have PASSED on the digest.
    pub required_tests: Vec<String>,
    /// Lowest blocking severity per environment; `"*"` for any other.
    pub severity_threshold: BTreeMap<String, Severity>,
    /// SPDX licence identifiers (or whole expressions) that are allowed for
    /// application dependencies.
    pub allowed_licences: Vec<String>,
    /// Licences no component may need (every choice through its expression
    /// needs one of them): denied for OS packages and dependencies alike.
    pub denied_licences: Vec<String>,
    /// Licences allowed for packages of an OS distribution (`pkg:deb`,
    /// `pkg:apk`, `pkg:rpm`): a catalog base's packages, shipped as the
    /// distribution ships them.
    pub os_allowed_licences: Vec<String>,
    /// Whether an OS package whose copyright file names no SPDX licence
    /// blocks (application dependencies with no known licence always do).
    pub os_unknown_licence_blocks: bool,
    /// Whether a finding in an OS package with no fixed version yet blocks, per
    /// environment; `"*"` for any other (application dependencies' findings
    /// block at the threshold, fixed or not).
    pub block_unfixed: BTreeMap<String, bool>,
    /// Whether findings the distribution rates `unimportant` count.
    pub count_unimportant: bool,
    /// Key ids whose evidence counts; empty means any verified signer.
    pub trusted_signers: Vec<String>,
}

/// The licences a stock Debian minbase's packages are under, beside the
/// permissive set: the GPL and LGPL family (copyleft obligations are met by
/// the distribution's source archive for unmodified packages), Perl's Artistic
/// licence, and the other DFSG-free licences Debian main names.
pub(crate) const OS_LICENCES: &[&str] = &[
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "GFDL-1.2-or-later",
    "GFDL-1.3-or-later",
    "OpenSSL",
    "X11",
    "curl",
    "FSFAP",
    "FSFUL",
    "FSFULLR",
    "Sleepycat",
];

/// The builder id the default policies' own Rego tests use (and the benchmarks'
/// inputs); an installation's evidence carries its own (see cairn-engine's
/// `audit::builder_id`), never this one.
pub const POLICY_TEST_BUILDER_ID: &str = "urn:cairn:builder:engine";

impl DefaultParams {
    /// The documented defaults, with cairn's builder id.
    pub fn new(builder_id: impl Into<String>) -> Self {
        DefaultParams {
            builder_id: builder_id.into(),
            required_approvals: BTreeMap::from([
                ("*".to_owned(), 1),
                ("staging".to_owned(), 0),
                ("production".to_owned(), 1),
            ]),
            approver_roles: vec!["maintainer".to_owned()],
            required_tests: vec!["unit-test".to_owned(), "acceptance-test".to_owned()],
            severity_threshold: BTreeMap::from([
                ("*".to_owned(), Severity::High),
                ("staging".to_owned(), Severity::Critical),
                ("production".to_owned(), Severity::High),
            ]),
            allowed_licences: [
                "0BSD",
                "Apache-2.0",
                "BSD-2-Clause",
                "BSD-3-Clause",
                "BSL-1.0",
                "CC0-1.0",
                "CDLA-Permissive-2.0",
                "ISC",
                "MIT",
                "MIT-0",
                "MPL-2.0",
                "Unicode-3.0",
                "Unicode-DFS-2016",
                "Unlicense",
                "Zlib",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            denied_licences: Vec::new(),
            os_allowed_licences: Vec::new(),
            os_unknown_licence_blocks: false,
            block_unfixed: BTreeMap::from([("*".to_owned(), false)]),
            count_unimportant: false,
            trusted_signers: Vec::new(),
        }
        .with_os_licences()
    }

    /// `os_allowed_licences` = the application allow-list and [`OS_LICENCES`].
    fn with_os_licences(mut self) -> Self {
        let mut os: Vec<String> = self
            .allowed_licences
            .iter()
            .cloned()
            .chain(OS_LICENCES.iter().map(|s| (*s).to_owned()))
            .collect();
        os.sort();
        os.dedup();
        self.os_allowed_licences = os;
        self
    }

    /// `{"cairn": {"params": …}}`: the data document the default set reads.
    pub fn to_data(&self) -> Result<serde_json::Value, PolicyError> {
        let params = serde_json::to_value(self).map_err(|source| PolicyError::Json {
            what: "the default policy params",
            source,
        })?;
        Ok(serde_json::json!({ "cairn": { "params": params } }))
    }
}

/// The default set as `(file name, text)` pairs.
pub fn default_policy_files() -> Vec<(&'static str, &'static str)> {
    DEFAULT_POLICIES.iter().map(|p| (p.file, p.text)).collect()
}

impl Gate {
    /// The default policy set with `params`.
    pub fn default_set(params: &DefaultParams) -> Result<Gate, PolicyError> {
        Gate::load_with(
            &default_policy_files(),
            &params.to_data()?,
            Limits::default(),
        )
    }
}

/// Runs the default set's own Rego unit tests.
pub fn test_default_policies(params: &DefaultParams) -> Result<TestReport, PolicyError> {
    run_policy_tests(
        &default_policy_files(),
        DEFAULT_POLICY_TESTS,
        &params.to_data()?,
    )
}
