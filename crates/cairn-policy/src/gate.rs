//! A gate: Rego policies loaded once, then one decision per input.
//!
//! Convention (the contract for organisation policies): the gate evaluates the
//! rule `data.cairn.gate.deny`, a partial set whose members are objects
//! `{"rule": "<rule name>", "msg": "<why>"}`:
//!
//! ```rego
//! package cairn.gate
//!
//! deny contains {"rule": "no-docker-hub", "msg": msg} if {
//!     some ref in input.artifact.image_references
//!     startswith(ref, "docker.io/")
//!     msg := sprintf("%s is on Docker Hub", [ref])
//! }
//! ```
//!
//! The artifact is allowed iff `deny` is defined, is a set, every member has that
//! shape, and the set is empty. Anything else denies with a reason naming what was
//! wrong (fail closed): an undefined `deny`, a `deny` that is not a set, a member
//! of the wrong shape. An evaluation error or an exceeded budget is an `Err`
//! ([`Gate::decide`]) that the caller turns into a denial, or that
//! [`Gate::decide_or_deny`] turns into one.
//!
//! Policies are parsed as Rego v1 (OPA 1.0 syntax: `if`, `contains`, `in`,
//! `every`). Data handed in at load (e.g. the default set's params) is visible
//! as `data`.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use regorus::Value;
use regorus::utils::limits::{ExecutionTimerConfig, PolicyLengthConfig};
use serde::{Deserialize, Serialize};

use crate::canonical::{canonical_json, input_digest, policy_digest, sha256_prefixed};
use crate::error::{Located, first_line, locate, one_line};
use crate::{GateInput, PolicyError};

/// The package gate policies live in.
pub const GATE_PACKAGE: &str = "cairn.gate";
/// The rule a gate evaluates.
pub const DENY_RULE: &str = "data.cairn.gate.deny";
/// The `rule` of denials the gate itself adds (a malformed result, an override
/// without a reason, an evaluation that failed).
pub const GATE_RULE: &str = "cairn.gate";

/// Bounds on what a gate loads and evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes per policy file (and per test file).
    pub max_policy_file_bytes: usize,
    /// Bytes over all policy files.
    pub max_policy_total_bytes: usize,
    /// Number of policy files.
    pub max_policy_files: usize,
    /// Bytes of the input in canonical JSON.
    pub max_input_bytes: usize,
    /// Nesting depth of the input (and the data).
    pub max_input_depth: usize,
    /// Wall-clock budget of one evaluation (a cooperative check inside regorus).
    /// It stops a runaway policy; it must never stop an honest one on a loaded
    /// machine. The default decision takes about 2 ms in a debug build, but a
    /// wall clock also counts the time the thread waits for a core: on two
    /// busy cores a 250 ms budget denied a healthy promotion. The default is
    /// about a thousand times the honest cost.
    pub time_limit: Duration,
    /// Elements `numbers.range` / `numbers.range_step` may produce.
    pub max_range_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_policy_file_bytes: 256 * 1024,
            max_policy_total_bytes: 1024 * 1024,
            max_policy_files: 256,
            max_input_bytes: 1024 * 1024,
            max_input_depth: 32,
            time_limit: Duration::from_secs(2),
            max_range_elements: 100_000,
        }
    }
}

/// One reason a gate denied.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Denial {
    /// The rule that denied (e.g. `review`), or [`GATE_RULE`].
    pub rule: String,
    pub message: String,
}

/// What a gate decided about one input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the change may go ahead. `true` when nothing denied, or when an
    /// override with a reason was given (then `overridden` is set and the
    /// denials it overrode stay in `reasons`).
    pub allow: bool,
    /// Why the policy denied, sorted; empty when the policy allowed.
    pub reasons: Vec<Denial>,
    /// The break-glass reason when an override turned a denial into an allow.
    pub overridden: Option<String>,
    /// `sha256:<hex>` over the sorted policy files and the data.
    pub policy_digest: String,
    /// `sha256:<hex>` over the canonical JSON of the input.
    pub input_digest: String,
}

/// Loaded, prepared policies: decide many inputs with them. `Send + Sync`:
/// share one gate between threads.
pub struct Gate {
    /// The prepared engine every decision starts from.
    engine: regorus::Engine,
    /// Engines that finished a decision cleanly, reused (regorus resets its
    /// evaluation state and the input on every evaluation); an engine whose
    /// evaluation failed is dropped, never reused.
    pool: Mutex<Vec<regorus::Engine>>,
    policy_digest: String,
    files: Vec<String>,
    limits: Limits,
}

/// Engines kept for reuse: about the number of threads deciding at once.
const POOL_SIZE: usize = 8;

impl Clone for Gate {
    fn clone(&self) -> Self {
        Gate {
            engine: self.engine.clone(),
            pool: Mutex::new(Vec::new()),
            policy_digest: self.policy_digest.clone(),
            files: self.files.clone(),
            limits: self.limits,
        }
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("files", &self.files)
            .field("policy_digest", &self.policy_digest)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// Loads `(file name, Rego text)` pairs with no data and the default limits.
    pub fn load(policies: &[(&str, &str)]) -> Result<Gate, PolicyError> {
        Gate::load_with(
            policies,
            &serde_json::Value::Object(Default::default()),
            Limits::default(),
        )
    }

    /// Loads policies with `data` (a JSON object, visible to policies as `data`)
    /// and explicit limits. Malformed Rego is refused with file, line and column.
    pub fn load_with(
        policies: &[(&str, &str)],
        data: &serde_json::Value,
        limits: Limits,
    ) -> Result<Gate, PolicyError> {
        if policies.is_empty() {
            return Err(PolicyError::NoPolicy);
        }
        let mut engine = new_engine(&limits)?;
        let files = add_policies(&mut engine, policies, &limits, 0)?;
        add_data(&mut engine, data, &limits)?;
        // Prepare now (scheduling, recursion and conflict checks) so that a policy
        // that cannot be evaluated is refused at load, and check the entry point
        // exists.
        engine
            .compile_with_entrypoint(&DENY_RULE.into())
            .map_err(|e| compile_error(&e.to_string()))?;
        engine.set_gather_prints(false);
        // regorus finds recursion only when evaluation reaches it: a dry run on an
        // empty input catches what it can at load; the rest is an evaluation
        // error, located, at decision time (still a denial).
        let mut dry = engine.clone();
        dry.set_input(Value::new_object());
        if let Err(e) = dry.eval_rule(DENY_RULE.to_owned()) {
            let text = e.to_string();
            if text.contains("recursion detected") {
                return Err(compile_error(&text));
            }
        }
        let owned: Vec<(String, String)> = policies
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        Ok(Gate {
            engine,
            pool: Mutex::new(Vec::new()),
            policy_digest: policy_digest(&owned, data),
            files,
            limits,
        })
    }

    /// `sha256:<hex>` over the sorted policy files and the data.
    pub fn policy_digest(&self) -> &str {
        &self.policy_digest
    }

    /// The policy file names, in load order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Decides about a typed input.
    pub fn decide(&self, input: &GateInput) -> Result<Decision, PolicyError> {
        let value = serde_json::to_value(input).map_err(|source| PolicyError::Json {
            what: "the gate input",
            source,
        })?;
        self.decide_value(&value)
    }

    /// Decides about any JSON input (for `cairn policy eval` on hand-written
    /// inputs): bounded in size and depth, otherwise taken as is.
    pub fn decide_value(&self, input: &serde_json::Value) -> Result<Decision, PolicyError> {
        check_depth(input, self.limits.max_input_depth)?;
        let canonical = canonical_json(input);
        if canonical.len() > self.limits.max_input_bytes {
            return Err(PolicyError::TooLarge {
                what: "the gate input".to_owned(),
                size: canonical.len(),
                limit: self.limits.max_input_bytes,
            });
        }
        let input_digest = sha256_prefixed(canonical.as_bytes());
        let mut engine = self
            .pool
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_else(|| self.engine.clone());
        engine.set_input(Value::from(input.clone()));
        let result = engine
            .eval_rule(DENY_RULE.to_owned())
            .map_err(|e| self.evaluation_error(&e.to_string()))?;
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < POOL_SIZE
        {
            pool.push(engine);
        }
        let mut reasons = read_denials(&result);
        let override_reason = input
            .get("override")
            .filter(|o| !o.is_null())
            .map(|o| o.get("reason").and_then(|r| r.as_str()).map(str::trim));
        let mut overridden = None;
        let allow = match override_reason {
            // An override is only meaningful with a reason; without one it denies.
            Some(None) | Some(Some("")) => {
                reasons.push(Denial {
                    rule: GATE_RULE.to_owned(),
                    message: "an override needs a non-empty reason".to_owned(),
                });
                false
            }
            Some(Some(reason)) if !reasons.is_empty() => {
                overridden = Some(reason.to_owned());
                true
            }
            _ => reasons.is_empty(),
        };
        reasons.sort();
        reasons.dedup();
        Ok(Decision {
            allow,
            reasons,
            overridden,
            policy_digest: self.policy_digest.clone(),
            input_digest,
        })
    }

    /// [`Gate::decide_value`], with an error turned into a denial (rule
    /// [`GATE_RULE`], the error as the message): the fail-closed form for callers
    /// that record every outcome as a decision. An override does not apply to a
    /// policy that could not be evaluated.
    pub fn decide_or_deny(&self, input: &serde_json::Value) -> Decision {
        match self.decide_value(input) {
            Ok(decision) => decision,
            Err(error) => Decision {
                allow: false,
                reasons: vec![Denial {
                    rule: GATE_RULE.to_owned(),
                    message: format!("the policy could not be evaluated: {error}"),
                }],
                overridden: None,
                policy_digest: self.policy_digest.clone(),
                input_digest: input_digest(input),
            },
        }
    }

    /// [`Gate::decide`] in the fail-closed form of [`Gate::decide_or_deny`]:
    /// the one way cairn's gates decide about the typed input.
    pub fn decide_input_or_deny(&self, input: &GateInput) -> Decision {
        match serde_json::to_value(input) {
            Ok(value) => self.decide_or_deny(&value),
            Err(error) => Decision {
                allow: false,
                reasons: vec![Denial {
                    rule: GATE_RULE.to_owned(),
                    message: format!("the gate input could not be serialised: {error}"),
                }],
                overridden: None,
                policy_digest: self.policy_digest.clone(),
                input_digest: String::new(),
            },
        }
    }

    fn evaluation_error(&self, text: &str) -> PolicyError {
        if text.contains("exceeded time limit") {
            PolicyError::TimeLimit {
                limit: self.limits.time_limit,
            }
        } else {
            PolicyError::Evaluation {
                message: one_line(text),
            }
        }
    }
}

/// Evaluates `data.cairn.gate.deny` on an engine that is already loaded and has
/// its input: the regorus-only half of the bench.
#[cfg(feature = "bench")]
pub(crate) fn eval_deny(engine: &mut regorus::Engine) -> Result<Value, PolicyError> {
    engine
        .eval_rule(DENY_RULE.to_owned())
        .map_err(|e| PolicyError::Evaluation {
            message: one_line(&e.to_string()),
        })
}

/// A regorus engine configured the way every cairn gate runs: Rego v1, strict
/// builtin errors, the time budget, and the builtins that would break purity or
/// bounds replaced.
pub(crate) fn new_engine(limits: &Limits) -> Result<regorus::Engine, PolicyError> {
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(false);
    engine.set_strict_builtin_errors(true);
    let file_bytes = std::num::NonZeroUsize::new(limits.max_policy_file_bytes.max(1))
        .unwrap_or(std::num::NonZeroUsize::MIN);
    engine.set_policy_length_config(PolicyLengthConfig {
        max_file_bytes: file_bytes,
        ..PolicyLengthConfig::default()
    });
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: limits.time_limit,
        check_interval: std::num::NonZeroU32::new(32).unwrap_or(std::num::NonZeroU32::MIN),
    });
    add_extensions(&mut engine, limits.max_range_elements)?;
    Ok(engine)
}

/// Extensions are looked up before builtins, so these replace them:
/// - `rand.intn` (compiled in with regorus' `std` feature) would make decisions
///   random: refused.
/// - `numbers.range` / `numbers.range_step` allocate their whole result up front
///   (a huge range aborts the process): bounded.
fn add_extensions(engine: &mut regorus::Engine, max: usize) -> Result<(), PolicyError> {
    let refuse_rand = |_: Vec<Value>| -> anyhow::Result<Value> {
        Err(anyhow::anyhow!(
            "rand.intn is not allowed in a gate: decisions must be reproducible"
        ))
    };
    let range = move |args: Vec<Value>| -> anyhow::Result<Value> {
        let (a, b) = (int_arg(&args, 0)?, int_arg(&args, 1)?);
        bounded_range(a, b, 1, max, "numbers.range")
    };
    let range_step = move |args: Vec<Value>| -> anyhow::Result<Value> {
        let (a, b, step) = (int_arg(&args, 0)?, int_arg(&args, 1)?, int_arg(&args, 2)?);
        if step <= 0 {
            return Err(anyhow::anyhow!(
                "numbers.range_step: step must be a positive integer"
            ));
        }
        bounded_range(a, b, step, max, "numbers.range_step")
    };
    for (name, nargs, ext) in [
        (
            "rand.intn",
            2u8,
            Box::new(refuse_rand) as Box<dyn regorus::Extension>,
        ),
        ("numbers.range", 2, Box::new(range)),
        ("numbers.range_step", 3, Box::new(range_step)),
    ] {
        engine
            .add_extension(name.to_owned(), nargs, ext)
            .map_err(|e| PolicyError::Evaluation {
                message: first_line(&e.to_string()),
            })?;
    }
    Ok(())
}

fn int_arg(args: &[Value], i: usize) -> anyhow::Result<i64> {
    args.get(i)
        .and_then(|v| v.as_i64().ok())
        .ok_or_else(|| anyhow::anyhow!("numbers.range: operand {} must be an integer", i + 1))
}

fn bounded_range(a: i64, b: i64, step: i64, max: usize, name: &str) -> anyhow::Result<Value> {
    let span = u128::from(a.abs_diff(b));
    let count = span / u128::from(step.unsigned_abs()) + 1;
    if count > max as u128 {
        return Err(anyhow::anyhow!(
            "{name}: {count} elements is more than the {max} a gate allows"
        ));
    }
    let step = if b >= a { step } else { -step };
    let mut values = Vec::with_capacity(count as usize);
    let mut v = a;
    for _ in 0..count {
        values.push(Value::from(v));
        v = v.saturating_add(step);
    }
    Ok(Value::from(values))
}

/// Adds policy files after checking the bounds; returns their names.
pub(crate) fn add_policies(
    engine: &mut regorus::Engine,
    policies: &[(&str, &str)],
    limits: &Limits,
    already: usize,
) -> Result<Vec<String>, PolicyError> {
    if policies.len() + already > limits.max_policy_files {
        return Err(PolicyError::TooLarge {
            what: "the policy set (files)".to_owned(),
            size: policies.len() + already,
            limit: limits.max_policy_files,
        });
    }
    let total: usize = policies.iter().map(|(_, t)| t.len()).sum();
    if total > limits.max_policy_total_bytes {
        return Err(PolicyError::TooLarge {
            what: "the policy set".to_owned(),
            size: total,
            limit: limits.max_policy_total_bytes,
        });
    }
    let mut names: Vec<String> = Vec::with_capacity(policies.len());
    for (name, text) in policies {
        if names.iter().any(|n| n == name) {
            return Err(PolicyError::DuplicateFile((*name).to_owned()));
        }
        if text.len() > limits.max_policy_file_bytes {
            return Err(PolicyError::TooLarge {
                what: format!("policy file {name}"),
                size: text.len(),
                limit: limits.max_policy_file_bytes,
            });
        }
        engine
            .add_policy((*name).to_owned(), (*text).to_owned())
            .map_err(|e| syntax_error(name, &e.to_string()))?;
        names.push((*name).to_owned());
    }
    Ok(names)
}

pub(crate) fn add_data(
    engine: &mut regorus::Engine,
    data: &serde_json::Value,
    limits: &Limits,
) -> Result<(), PolicyError> {
    if !data.is_object() {
        return Err(PolicyError::DataNotObject);
    }
    check_depth(data, limits.max_input_depth)?;
    engine
        .add_data(Value::from(data.clone()))
        .map_err(|e| PolicyError::Evaluation {
            message: first_line(&e.to_string()),
        })
}

fn syntax_error(file: &str, text: &str) -> PolicyError {
    match locate(text) {
        Some(Located {
            file,
            line,
            column,
            message,
        }) => PolicyError::Syntax {
            file,
            line,
            column,
            message,
        },
        // Errors without a location (e.g. a length limit) still name the file.
        None => PolicyError::Syntax {
            file: file.to_owned(),
            line: 0,
            column: 0,
            message: first_line(text),
        },
    }
}

fn compile_error(text: &str) -> PolicyError {
    match locate(text) {
        Some(l) => PolicyError::Compile {
            location: format!("{}:{}:{}", l.file, l.line, l.column),
            message: l.message,
        },
        None => PolicyError::Compile {
            location: "the policy set".to_owned(),
            message: first_line(text),
        },
    }
}

/// Reads the `deny` set; every way it can be wrong becomes a denial.
fn read_denials(result: &Value) -> Vec<Denial> {
    let gate = |message: String| Denial {
        rule: GATE_RULE.to_owned(),
        message,
    };
    let set = match result {
        Value::Undefined => {
            return vec![gate(format!(
                "{DENY_RULE} is undefined: the policy gave no decision"
            ))];
        }
        Value::Set(set) => set,
        other => {
            return vec![gate(format!(
                "{DENY_RULE} must be a set of {{\"rule\", \"msg\"}} objects, not {}",
                excerpt(other)
            ))];
        }
    };
    set.iter()
        .map(|member| {
            let field = |name: &str| match member {
                Value::Object(o) => match o.get(&Value::from(name)) {
                    Some(Value::String(s)) => Some(s.to_string()),
                    _ => None,
                },
                _ => None,
            };
            match (field("rule"), field("msg")) {
                (Some(rule), Some(message)) if !rule.is_empty() => Denial { rule, message },
                _ => gate(format!(
                    "a deny entry is not {{\"rule\": string, \"msg\": string}}: {}",
                    excerpt(member)
                )),
            }
        })
        .collect()
}

/// A short JSON rendering of a value for a message.
fn excerpt(value: &Value) -> String {
    let text = value
        .to_json_str()
        .unwrap_or_else(|_| "<not JSON>".to_owned());
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i >= 200 {
            out.push('…');
            break;
        }
        let _ = out.write_char(c);
    }
    out
}

/// Refuses JSON nested deeper than `limit` (iteratively: no recursion on
/// untrusted depth).
pub(crate) fn check_depth(value: &serde_json::Value, limit: usize) -> Result<(), PolicyError> {
    let mut stack = vec![(value, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        if depth > limit {
            return Err(PolicyError::TooDeep { limit });
        }
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            serde_json::Value::Object(members) => {
                stack.extend(members.values().map(|i| (i, depth + 1)));
            }
            _ => {}
        }
    }
    Ok(())
}
