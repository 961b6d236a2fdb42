//! Gates in Rego, pure (floor 1): the [`GateInput`] contract, [`Gate`] (load
//! policies, decide), the default policy set, Rego unit tests
//! ([`run_policy_tests`]), and roles with the one authorisation function
//! ([`authorize`]).
//!
//! No I/O: the caller hands in policy texts with their file names, the data
//! (params), and the input. Two documented exceptions, both inside regorus: the
//! evaluation budget ([`Limits::time_limit`]) is a cooperative check of a
//! monotonic clock, and nothing else reads time; `rand.intn`, compiled in with
//! regorus' `std` feature, is replaced by an extension that refuses it.
//!
//! regorus features: `std` (the execution timer and hash maps) and `arc`
//! (a `Send + Sync` engine, for the server). Not enabled: `http` (`http.send`),
//! `time` (`time.now_ns` and the clock), `net`, `uuid`, `opa-runtime`
//! (environment), `regex`, `glob`, `semver`, `jsonschema`, `yaml`, `base64`,
//! `hex`, `cache`, `coverage`, `rvm`. A policy calling a builtin that is not
//! compiled in is refused when evaluated.
//!
//! Fail closed: no policy, malformed Rego (refused at load with
//! file:line:column), an undefined or malformed `deny`, an evaluation error, an
//! exhausted budget, an input that is too large or deep: each ends in a denial
//! with a reason (or an `Err` the caller turns into one, see
//! [`Gate::decide_or_deny`]; cairn's own gates decide the typed input with
//! [`Gate::decide_input_or_deny`]).
//!
//! ```
//! use cairn_policy::{DefaultParams, Gate, realistic_input};
//! let gate = Gate::default_set(&DefaultParams::new("urn:cairn:builder:engine"))?;
//! let mut input = realistic_input("urn:cairn:builder:engine");
//! assert!(gate.decide(&input)?.allow);
//! input.reviews.clear();
//! let decision = gate.decide(&input)?;
//! assert!(!decision.allow);
//! assert_eq!(decision.reasons[0].rule, "review");
//! # Ok::<(), cairn_policy::PolicyError>(())
//! ```

mod bench;
mod canonical;
mod defaults;
mod error;
mod gate;
mod input;
mod roles;
mod testing;

pub use bench::realistic_input;
#[cfg(feature = "bench")]
pub use bench::{GateBench, Timing, bench_gate};
pub use canonical::{canonical_json, input_digest, policy_digest, sha256_prefixed};
pub use defaults::{
    DEFAULT_POLICIES, DEFAULT_POLICY_TESTS, DefaultParams, DefaultPolicy, POLICY_TEST_BUILDER_ID,
    default_policy_files, test_default_policies,
};
pub use error::PolicyError;
pub use gate::{DENY_RULE, Decision, Denial, GATE_PACKAGE, GATE_RULE, Gate, Limits};
pub use input::{
    Actor, AdvisoryDb, Artifact, Author, BaseImage, ChangeCommit, Environment, Evidence, Findings,
    GateInput, Intent, Licence, Override, PreviousEnvironment, Review, Severity, Verdict,
    Verification, VerificationFailure, Vulnerability,
};
pub use roles::{
    Action, Binding, BindingScope, Bindings, Denied, Identity, IdentityKind, MATRIX, OverrideGrant,
    Reach, Role, Scope, authorize, authorize_override,
};
pub use testing::{TestCase, TestOutcome, TestReport, run_policy_tests};
