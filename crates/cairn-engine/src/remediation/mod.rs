//! Remediation by cairn: the closed loop's last step. For an open exposure
//! whose finding is in the image's *base layer* and has a fix, cairn picks the
//! newest catalog version of that base without the finding (running the
//! base's recipe again when the catalog has none: `images::refresh`), rebases
//! the image running in the environment onto it (`images::rebase`), runs the
//! chain's test stages on the rebased digest (`Engine::retest`: the unit tests
//! and the acceptance tests of the same commit, the RC's HTTP checks, in the
//! sandbox) so that it carries its own signed test results, and promotes it
//! along the promotion path through the same gates. The commit is unchanged,
//! so its review still counts. Environments the organisation names in
//! `[remediation] auto_promote` are promoted by cairn itself (org.toml is the
//! authorisation; the gate decides as for anyone); at the first other one the
//! remediation stops, waiting for a human, and says which command to run.
//!
//! One remediation per workload at a time: a lock file per workload in
//! `<data>/remediations/`, held (flock) while it runs, beside a JSON status
//! that names it (a second one is refused, naming the first; a status whose
//! lock is free was interrupted). Every step is appended to the audit log
//! (kind `remediation`) and kept as a change record (`cairn audit`). A failed
//! step stops it: production is untouched (nothing is promoted past a failed
//! step), the exposure stays open, and the status and the log say why.
//!
//! For a *dependency* finding with a fix: the lowest fixed version, the
//! ecosystem's own tool (npm, cargo, uv, pip-compile for a `requirements.txt`
//! compiled from a `requirements.in`; for one pinned by hand the pin
//! rewritten exactly and pip proving the version is on the index)
//! run in the sandbox with network on the commit's tree — with the
//! workload's build image as its system, resolved as a run resolves it, so
//! the tool is the build's — the lockfile and manifest committed on a new
//! branch of the workload's repository, the chain run for that commit; then
//! it waits for review (four eyes, as for any commit) and a human's promotion.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_model::config::OrgConfig;
use cairn_model::{ChangeRecord, RunStatus};
use cairn_policy::Identity;
use cairn_store::Store;
use serde_json::{Value, json};

use crate::audit::{AuditLog, Change, LOCK_WAIT, RemediationStep};
use crate::exposures::{self, Exposure, ExposureFilter, ExposureState};
use crate::host::now_ms;
use crate::images::Images;
use crate::images::refresh::{self, Refreshed};
use crate::promotion::{Intent, Promoter, Request};
use crate::{DataDir, Engine, EngineError, RunObserver, load_workload};

mod dependency;

/// The identity cairn promotes a remediation as, where org.toml's
/// `[remediation] auto_promote` lets it.
pub const ACTOR: &str = "cairn-remediation";

/// Which exposures to remediate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every open exposure.
    All,
    /// The open exposures of one advisory (`DSA-…`, `CVE-…`), optionally of
    /// one workload (`WORKLOAD:ADVISORY`).
    Advisory {
        workload: Option<String>,
        advisory: String,
    },
}

impl Target {
    pub fn parse(text: &str) -> Target {
        match text.split_once(':') {
            Some((w, a)) if !w.is_empty() && !a.is_empty() => Target::Advisory {
                workload: Some(w.to_owned()),
                advisory: a.to_owned(),
            },
            _ => Target::Advisory {
                workload: None,
                advisory: text.to_owned(),
            },
        }
    }

    fn covers(&self, e: &Exposure) -> bool {
        match self {
            Target::All => true,
            Target::Advisory { workload, advisory } => {
                e.advisory == *advisory && workload.as_ref().is_none_or(|w| *w == e.workload)
            }
        }
    }
}

/// What fixes a workload's exposures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// The package is in the image's catalog base: a base version without it.
    Base {
        base: String,
        /// The base digest the running image is on.
        from: String,
    },
    /// The package is the app's own dependency (a lockfile bump).
    Dependency,
    /// Nothing cairn can do (no fixed version known, not an image cairn built).
    None { why: String },
}

/// One workload's remediation, planned.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workload: String,
    /// The environment furthest along the promotion path that runs the
    /// exposed digest.
    pub environment: String,
    pub digest: String,
    pub commit: Option<String>,
    /// `(advisory, package purl)` of the exposures it remediates.
    pub exposures: Vec<(String, String)>,
    pub fix: Fix,
    /// The steps, in words.
    pub steps: Vec<String>,
}

/// How a remediation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The environment runs a digest without the findings.
    Remediated {
        digest: String,
        /// From each exposure's start to the deployment without it (the longest).
        time_to_remediate_ms: i64,
    },
    /// Stopped before an environment a human must approve.
    WaitingForApproval {
        digest: String,
        environment: String,
        command: String,
    },
    /// A dependency bump was committed on a branch and its run passed: it
    /// waits for review like any commit, then for promotion.
    WaitingForReview {
        commit: String,
        branch: String,
        digest: Option<String>,
        command: String,
    },
    /// A step failed: nothing past it happened.
    Failed { step: String, reason: String },
}

/// One remediation's record: the status file, and what `cairn remediate`
/// prints.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: String,
    pub plan: Plan,
    pub steps: Vec<(String, String)>,
    pub ending: Ending,
}

/// Everything a remediation needs.
#[allow(missing_debug_implementations)]
pub struct Remediator<'a> {
    pub data: &'a DataDir,
    pub store: Arc<dyn Store>,
    pub org: &'a OrgConfig,
    pub platform_dir: Option<&'a Path>,
    /// Who asked (`None`: the server's loop, recorded as [`ACTOR`]).
    pub actor: Option<Identity>,
}

impl Remediator<'_> {
    fn actor_name(&self) -> String {
        self.actor
            .as_ref()
            .map_or_else(|| ACTOR.to_owned(), |a| a.name.clone())
    }

    /// The plans for `target`'s open exposures, one per workload.
    pub fn plan(&self, target: &Target) -> Result<Vec<Plan>, EngineError> {
        let store = &*self.store;
        let open: Vec<Exposure> = exposures::list(
            store,
            self.data,
            self.org,
            &ExposureFilter::default(),
            now_ms(),
        )?
        .into_iter()
        .filter(|e| e.state == ExposureState::Open && target.covers(e))
        .collect();
        let mut by_workload: BTreeMap<String, Vec<Exposure>> = BTreeMap::new();
        for e in open {
            by_workload.entry(e.workload.clone()).or_default().push(e);
        }
        let images = Images::open(self.data)?;
        let mut plans = Vec::new();
        for (workload, list) in by_workload {
            // The environment furthest along the path, and what runs there.
            let Some(last) = list
                .iter()
                .max_by_key(|e| self.org.position(&e.environment).unwrap_or(0))
            else {
                continue;
            };
            let (environment, digest) = (last.environment.clone(), last.digest.clone());
            let exposed: Vec<&Exposure> = list.iter().filter(|e| e.digest == digest).collect();
            // What can be fixed now: the base-layer findings first (one base
            // version fixes them together), else the app's own dependencies;
            // findings with no fixed version wait.
            let fixable: Vec<&Exposure> = exposed.iter().copied().filter(|e| e.fixable()).collect();
            let record = store.images(None, Some(&digest), 1)?.into_iter().next();
            let (fix, chosen) = match (&record, exposed.iter().find(|e| !e.fixable())) {
                (_, Some(unfixed)) if fixable.is_empty() => (
                    Fix::None {
                        why: format!(
                            "no fixed version of {} is known for {}: nothing to move to yet (the exposure stays open; accept it with a VEX statement, or wait for the fix)",
                            unfixed.package, unfixed.advisory
                        ),
                    },
                    exposed.clone(),
                ),
                (None, _) => (
                    Fix::None {
                        why: format!("{digest} is not an image cairn built: its base is not known"),
                    },
                    exposed.clone(),
                ),
                (Some(r), _) => {
                    let in_base = base_purls(&images, &r.base_digest)?;
                    let base_ones: Vec<&Exposure> = fixable
                        .iter()
                        .copied()
                        .filter(|e| in_base.contains(&e.package))
                        .collect();
                    if base_ones.is_empty() {
                        (Fix::Dependency, fixable.clone())
                    } else {
                        (
                            Fix::Base {
                                base: r.base_name.clone(),
                                from: r.base_digest.clone(),
                            },
                            base_ones,
                        )
                    }
                }
            };
            let pairs: Vec<(String, String)> = chosen
                .iter()
                .map(|e| (e.advisory.clone(), e.package.clone()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let steps = self.steps(&workload, &digest, record.as_ref(), &fix);
            plans.push(Plan {
                workload,
                environment,
                digest,
                commit: record.map(|r| r.commit),
                exposures: pairs,
                fix,
                steps,
            });
        }
        Ok(plans)
    }

    fn steps(
        &self,
        workload: &str,
        digest: &str,
        record: Option<&cairn_model::ImageRecord>,
        fix: &Fix,
    ) -> Vec<String> {
        let mut steps = Vec::new();
        match fix {
            Fix::None { why } => {
                steps.push(format!("nothing: {why}"));
                return steps;
            }
            Fix::Dependency => {
                steps.push(
                    "bump the dependency to its lowest fixed version with the ecosystem's tool, in the sandbox with network on the workload's build image (npm install NAME@V --package-lock-only, cargo update -p NAME --precise V, uv lock --upgrade-package NAME==V, pip-compile --upgrade-package NAME==V for a requirements.in, else requirements.txt's pin rewritten and checked with pip download)"
                        .to_owned(),
                );
                steps.push(format!(
                    "commit the lockfile on a new branch cairn/remediate-… of {workload}'s repository (parent {})",
                    record.map_or("?", |r| r.commit.as_str())
                ));
                steps.push("run the chain for that commit".to_owned());
                steps.push(
                    "wait for review (four eyes, as for any commit), then promotion by a release manager"
                        .to_owned(),
                );
                return steps;
            }
            Fix::Base { base, from } => {
                steps.push(format!(
                    "take the newest version of catalog base `{base}` without the findings, else refresh `{base}` (its recorded recipe run again) through the catalog's gate; the image is on {from}"
                ));
                steps.push(format!(
                    "rebase {digest} onto it (new provenance, SBOM, scan)"
                ));
                steps.push(format!(
                    "retest the rebased digest: the chain of commit {} (unit tests, acceptance tests, HTTP checks) in the sandbox",
                    record.map_or("?", |r| r.commit.as_str())
                ));
            }
        }
        for env in &self.org.promotion_path {
            if self.org.remediation_auto_promote.contains(env) {
                steps.push(format!(
                    "promote it to {env} through the gate (auto_promote: by cairn; an environment before {} that runs another commit's build is left as it is, for a human)",
                    self.org.promotion_path.last().map_or("the last", String::as_str)
                ));
            } else {
                steps.push(format!(
                    "wait for approval to {env}: `cairn promote {workload} <rebased digest> --to {env}`"
                ));
                break;
            }
        }
        steps
    }

    /// Executes `plan` (see the module's comment); `note` gets each step as
    /// it happens. `Err` only when the remediation could not start (another
    /// one runs for the workload) or cairn itself failed before recording.
    pub fn execute(&self, plan: &Plan, note: &mut dyn FnMut(&str)) -> Result<Outcome, EngineError> {
        let lock = WorkloadLock::acquire(self.data, &plan.workload)?;
        let id = format!("{}-{}", plan.workload, now_ms());
        let mut run = Running {
            r: self,
            lock,
            outcome: Outcome {
                id: id.clone(),
                plan: plan.clone(),
                steps: Vec::new(),
                ending: Ending::Failed {
                    step: "started".to_owned(),
                    reason: "interrupted".to_owned(),
                },
            },
            state: "running",
        };
        run.step(
            "started",
            Some(&plan.digest),
            &format!(
                "remediating {} in {} ({})",
                plan.exposures
                    .iter()
                    .map(|(a, p)| format!("{a} in {p}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                plan.environment,
                plan.digest
            ),
            note,
        )?;
        let ending = match self.execute_steps(&mut run, note) {
            Ok(ending) => ending,
            Err(Failed { step, reason }) => Ending::Failed { step, reason },
        };
        let (step, detail, artifact, state) = match &ending {
            Ending::Remediated {
                digest,
                time_to_remediate_ms,
            } => (
                "remediated",
                format!(
                    "{} runs {digest} without the findings; time to remediate {} s",
                    plan.environment,
                    time_to_remediate_ms / 1000
                ),
                Some(digest.clone()),
                "remediated",
            ),
            Ending::WaitingForApproval {
                digest,
                environment,
                command,
            } => (
                "waiting-for-approval",
                format!("{environment} takes it with a human's approval: {command}"),
                Some(digest.clone()),
                "waiting-for-approval",
            ),
            Ending::WaitingForReview {
                commit,
                branch,
                digest,
                command,
            } => (
                "waiting-for-review",
                format!(
                    "commit {commit} on branch {branch} (image {}) waits for review like any commit: {command}",
                    digest.as_deref().unwrap_or("none")
                ),
                digest.clone(),
                "waiting-for-review",
            ),
            Ending::Failed { step, reason } => (
                "failed",
                format!(
                    "step `{step}` failed: {reason}; production is unchanged and the exposure stays open"
                ),
                None,
                "failed",
            ),
        };
        run.outcome.ending = ending.clone();
        run.state = state;
        run.step(step, artifact.as_deref(), &detail, note)?;
        Ok(run.outcome)
    }

    fn execute_steps(
        &self,
        run: &mut Running<'_, '_>,
        note: &mut dyn FnMut(&str),
    ) -> Result<Ending, Failed> {
        let plan = run.outcome.plan.clone();
        let (base, from) = match &plan.fix {
            Fix::Base { base, from } => (base.clone(), from.clone()),
            Fix::Dependency => return self.bump_dependency(run, note),
            Fix::None { why } => return Err(Failed::at("plan", why.clone())),
        };
        let store = &*self.store;
        let images = Images::open(self.data).map_err(Failed::of("plan"))?;
        let advisories: BTreeSet<String> = plan.exposures.iter().map(|(a, _)| a.clone()).collect();

        // 1. A base version without the findings: the catalog's newest, else
        //    the base's recipe run again.
        let current = store
            .base_history(&base)
            .map_err(|e| Failed::at("base", e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Failed::at("base", format!("base `{base}` is no longer in the catalog"))
            })?;
        let mut fixed_base = None;
        if current.digest != from {
            let left = still_affected(store, &images, &current.digest, &advisories)
                .map_err(Failed::of("base"))?;
            if left.is_empty() {
                fixed_base = Some(current.digest.clone());
                run.step(
                    "base-picked",
                    Some(&current.digest),
                    &format!(
                        "catalog base `{base}` has a newer version without the findings: {}",
                        current.digest
                    ),
                    note,
                )
                .map_err(Failed::of("base"))?;
            }
        }
        let new_base = match fixed_base {
            Some(d) => d,
            None => self.refresh_base(run, &images, &base, &advisories, note)?,
        };

        // 2. Rebase what runs onto it.
        let rebased = crate::images::rebase::rebase(
            self.data,
            store,
            &images,
            self.org,
            &plan.digest,
            &format!("{base}@{new_base}"),
        )
        .map_err(Failed::of("rebase"))?;
        let digest = rebased.record.digest.clone();
        let left = findings_in(store, &images, &rebased.image, &advisories)
            .map_err(Failed::of("rebase"))?;
        if !left.is_empty() {
            return Err(Failed::at(
                "rebase",
                format!("the rebased image {digest} still has {}", left.join(", ")),
            ));
        }
        run.step(
            "rebased",
            Some(&digest),
            &format!(
                "{} rebased onto {base}@{new_base}: {digest} (signed provenance {}, SBOM {}, scan {})",
                plan.digest, rebased.provenance, rebased.sbom, rebased.scan
            ),
            note,
        )
        .map_err(Failed::of("rebase"))?;

        // 3. The chain's test stages on the rebased digest.
        let workload = store
            .workload(&plan.workload)
            .map_err(|e| Failed::at("test", e.to_string()))?
            .ok_or_else(|| {
                Failed::at(
                    "test",
                    format!("workload {} is not onboarded", plan.workload),
                )
            })?;
        let loaded = load_workload(
            Path::new(&workload.repo),
            &rebased.record.commit,
            self.platform_dir,
        )
        .map_err(Failed::of("test"))?;
        let engine = Engine::new(
            self.store.clone(),
            self.data.clone(),
            self.platform_dir.map(Path::to_path_buf),
        )
        .with_actor(Some(self.actor_name()));
        let tested = engine
            .retest(&loaded, &digest, &mut Quiet)
            .map_err(Failed::of("test"))?;
        if tested.status != RunStatus::Succeeded {
            return Err(Failed::at(
                "test",
                format!(
                    "run {} of the rebased digest {digest} failed: {} (`cairn logs {}`)",
                    tested.id,
                    tested.reason.as_deref().unwrap_or("no reason recorded"),
                    tested.id
                ),
            ));
        }
        run.step(
            "tested",
            Some(&digest),
            &format!(
                "run {} of commit {} passed its test stages on {digest} (signed test results about it)",
                tested.id, loaded.commit
            ),
            note,
        )
        .map_err(Failed::of("test"))?;

        // 4. Along the promotion path, through the same gates.
        let promoter = Promoter {
            data: self.data,
            store,
            org: self.org,
            platform_dir: self.platform_dir,
        };
        for env in &self.org.promotion_path {
            if !self.org.remediation_auto_promote.contains(env) {
                return Ok(Ending::WaitingForApproval {
                    digest: digest.clone(),
                    environment: env.clone(),
                    command: format!("cairn promote {} {digest} --to {env}", plan.workload),
                });
            }
            // An environment before the exposed one that runs a build of
            // another commit (a newer one on its way) is not replaced by cairn:
            // the rebased digest of the older commit would undo it. A human
            // decides; what runs there stays.
            if *env != plan.environment
                && let Some(other) = self
                    .other_build_in(&plan, env)
                    .map_err(|e| Failed::at(&format!("promote {env}"), e.to_string()))?
            {
                run.step(
                    "kept",
                    None,
                    &format!(
                        "{env} runs {other}, not commit {} that {} runs: cairn does not replace another build with the rebased {digest}",
                        plan.commit.as_deref().unwrap_or("?"),
                        plan.environment
                    ),
                    note,
                )
                .map_err(Failed::of("promote"))?;
                return Ok(Ending::WaitingForApproval {
                    digest: digest.clone(),
                    environment: env.clone(),
                    command: format!(
                        "{env} runs another build ({other}); to replace it with the rebased digest: cairn promote {} {digest} --to {env}",
                        plan.workload
                    ),
                });
            }
            let step = format!("promote {env}");
            let req = Request {
                workload: plan.workload.clone(),
                image: digest.clone(),
                environment: env.clone(),
                actor: Identity::service_account(ACTOR),
                intent: Intent::Promote,
                override_reason: None,
            };
            let outcome = promoter
                .promote_authorised(&req)
                .map_err(Failed::of(&step))?;
            if !outcome.decision.allow {
                return Err(Failed::at(
                    &step,
                    format!(
                        "the gate denied {digest} in {env} (change {}): {}",
                        outcome.change_id,
                        outcome
                            .decision
                            .reasons
                            .iter()
                            .map(|r| format!("[{}] {}", r.rule, r.message))
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                ));
            }
            note(&format!(
                "promoted {digest} to {env} (change {})",
                outcome.change_id
            ));
            if *env == plan.environment {
                break;
            }
        }

        // 5. Closed: the environment runs a digest without the findings.
        let all = ExposureFilter {
            environment: Some(plan.environment.clone()),
            include_remediated: true,
            ..ExposureFilter::default()
        };
        let list = exposures::list(store, self.data, self.org, &all, now_ms())
            .map_err(Failed::of("close"))?;
        let mine: Vec<&Exposure> = list
            .iter()
            .filter(|e| {
                e.workload == plan.workload
                    && e.digest == plan.digest
                    && advisories.contains(&e.advisory)
            })
            .collect();
        if let Some(open) = mine.iter().find(|e| e.state != ExposureState::Remediated) {
            return Err(Failed::at(
                "close",
                format!(
                    "{} still shows {} as {}",
                    plan.environment,
                    open.advisory,
                    open.state.as_str()
                ),
            ));
        }
        let time_to_remediate_ms = mine
            .iter()
            .filter_map(|e| e.time_to_remediate_ms())
            .max()
            .unwrap_or_default();
        Ok(Ending::Remediated {
            digest,
            time_to_remediate_ms,
        })
    }

    /// What `env` runs when it is a build of another commit than the one
    /// remediated (`digest (commit C)`); `None` when it runs nothing, or a
    /// digest of the same commit (the exposed one, or an earlier rebase).
    fn other_build_in(&self, plan: &Plan, env: &str) -> Result<Option<String>, EngineError> {
        let store = &*self.store;
        let Some(there) = store.current_deployment(&plan.workload, env)? else {
            return Ok(None);
        };
        if there.digest == plan.digest {
            return Ok(None);
        }
        let commit = store
            .images(None, Some(&there.digest), 1)?
            .into_iter()
            .next()
            .map(|r| r.commit);
        if commit.is_some() && commit == plan.commit {
            return Ok(None);
        }
        Ok(Some(format!(
            "{} (commit {})",
            there.digest,
            commit.as_deref().unwrap_or("unknown")
        )))
    }

    /// Runs the base's recipe again and returns the new version's digest,
    /// refusing one that still has the findings.
    fn refresh_base(
        &self,
        run: &mut Running<'_, '_>,
        images: &Images,
        base: &str,
        advisories: &BTreeSet<String>,
        note: &mut dyn FnMut(&str),
    ) -> Result<String, Failed> {
        let store = &*self.store;
        let no_signatures = |_: &crate::images::catalog::Candidate| Ok(Vec::new());
        // The server's loop refreshes as cairn's own remediation identity.
        let actor = Some(
            self.actor
                .clone()
                .unwrap_or_else(|| Identity::service_account(ACTOR)),
        );
        let ctx = refresh::Refresh {
            data: self.data,
            store,
            images,
            org: self.org,
            actor: actor.as_ref(),
            pull: None,
            signatures: &no_signatures,
        };
        let refreshed = refresh::refresh(&ctx, base, None, note).map_err(Failed::of("refresh"))?;
        let digest = match refreshed {
            Refreshed::Unchanged { digest } => {
                return Err(Failed::at(
                    "refresh",
                    format!(
                        "base `{base}`'s recipe gives the version it has ({digest}), which has {}: no fixed base exists yet (`cairn base refresh {base} --from SOURCE` imports one)",
                        advisories.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            Refreshed::Admitted(crate::images::catalog::Admission::Refused { reasons }) => {
                return Err(Failed::at(
                    "refresh",
                    format!(
                        "the catalog's gate refused the new version of `{base}`: {}",
                        reasons.join("; ")
                    ),
                ));
            }
            Refreshed::Admitted(crate::images::catalog::Admission::Admitted { record, .. }) => {
                record.digest
            }
        };
        let left =
            still_affected(store, images, &digest, advisories).map_err(Failed::of("refresh"))?;
        if !left.is_empty() {
            return Err(Failed::at(
                "refresh",
                format!(
                    "the refreshed base `{base}` ({digest}) still has {}: no fixed base exists yet",
                    left.join(", ")
                ),
            ));
        }
        run.step(
            "base-refreshed",
            Some(&digest),
            &format!("base `{base}` refreshed by its recipe: {digest}, without the findings"),
            note,
        )
        .map_err(Failed::of("refresh"))?;
        Ok(digest)
    }

    /// The last remediation of each workload (newest first), with whether it
    /// still runs.
    pub fn statuses(&self) -> Result<Vec<Value>, EngineError> {
        statuses(self.data)
    }
}

/// The last remediation of each workload, as its status file says, with
/// `state` `interrupted` for one whose process is gone.
pub fn statuses(data: &DataDir) -> Result<Vec<Value>, EngineError> {
    let dir = dir(data);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(workload) = name.strip_suffix(".json") else {
            continue;
        };
        if let Some(status) = status(data, workload)? {
            out.push(status);
        }
    }
    out.sort_by(|a, b| b["updated_ms"].as_i64().cmp(&a["updated_ms"].as_i64()));
    Ok(out)
}

/// A workload's last remediation, if any.
pub fn status(data: &DataDir, workload: &str) -> Result<Option<Value>, EngineError> {
    if !cairn_model::config::is_valid_name(workload) {
        return Ok(None);
    }
    let path = dir(data).join(format!("{workload}.json"));
    let Some(bytes) = read_small(&path)? else {
        return Ok(None);
    };
    let mut v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if v["state"] == "running" && !WorkloadLock::held(data, workload)? {
        v["state"] = json!("interrupted");
    }
    Ok(Some(v))
}

/// Marks as remediating the open exposures a running remediation covers.
pub fn mark_remediating(data: &DataDir, list: &mut [Exposure]) -> Result<(), EngineError> {
    let mut running: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in statuses(data)? {
        if s["state"] != "running" {
            continue;
        }
        let workload = s["workload"].as_str().unwrap_or_default().to_owned();
        let advisories = s["exposures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["advisory"].as_str().map(str::to_owned))
            .collect();
        running.insert(workload, advisories);
    }
    for e in list {
        if e.state == ExposureState::Open
            && running
                .get(&e.workload)
                .is_some_and(|a| a.contains(&e.advisory))
        {
            e.state = ExposureState::Remediating;
        }
    }
    Ok(())
}

fn dir(data: &DataDir) -> PathBuf {
    data.root().join("remediations")
}

/// A status file: at most 1 MiB, never through a symlink.
fn read_small(path: &Path) -> Result<Option<Vec<u8>>, EngineError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io("open", path)(e)),
    };
    let mut bytes = Vec::new();
    file.take(1 << 20)
        .read_to_end(&mut bytes)
        .map_err(EngineError::io("read", path))?;
    Ok(Some(bytes))
}

/// The package purls of a base's root filesystem.
fn base_purls(images: &Images, base_digest: &str) -> Result<BTreeSet<String>, EngineError> {
    let image = images.image(base_digest)?;
    let rootfs = images.rootfs(&image)?;
    let collected = crate::inventory::collect_rootfs(&rootfs)?;
    Ok(crate::inventory::purls(&collected).into_values().collect())
}

/// Which of `advisories` the base `digest` still has (matched against the
/// stored advisories now).
fn still_affected(
    store: &dyn Store,
    images: &Images,
    digest: &str,
    advisories: &BTreeSet<String>,
) -> Result<Vec<String>, EngineError> {
    let image = images.image(digest)?;
    findings_in(store, images, &image, advisories)
}

fn findings_in(
    store: &dyn Store,
    images: &Images,
    image: &cairn_oci::Image,
    advisories: &BTreeSet<String>,
) -> Result<Vec<String>, EngineError> {
    let rootfs = images.rootfs(image)?;
    let collected = crate::inventory::collect_rootfs(&rootfs)?;
    let evaluation = crate::inventory::evaluate(store, &collected)?;
    Ok(evaluation
        .report
        .vulnerabilities
        .iter()
        .filter(|v| advisories.contains(&v.advisory_id))
        .map(|v| format!("{} in {} {}", v.advisory_id, v.package, v.installed_version))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

/// A step that failed, and why.
#[derive(Debug)]
struct Failed {
    step: String,
    reason: String,
}

impl Failed {
    fn at(step: &str, reason: String) -> Failed {
        Failed {
            step: step.to_owned(),
            reason,
        }
    }

    fn of(step: &str) -> impl FnOnce(EngineError) -> Failed + '_ {
        move |e| Failed::at(step, cairn_model::error_chain(&e))
    }
}

/// A remediation under way: its lock, its record.
struct Running<'r, 'a> {
    r: &'r Remediator<'a>,
    lock: WorkloadLock,
    outcome: Outcome,
    state: &'static str,
}

impl Running<'_, '_> {
    /// Appends the step to the audit log, keeps it as a change record, and
    /// writes the status file.
    fn step(
        &mut self,
        step: &str,
        artifact: Option<&str>,
        detail: &str,
        note: &mut dyn FnMut(&str),
    ) -> Result<(), EngineError> {
        let plan = &self.outcome.plan;
        let actor = self.r.actor_name();
        let receipt = AuditLog::open_waiting(self.r.data, LOCK_WAIT)?.record(
            &Change::Remediation(RemediationStep {
                id: self.outcome.id.clone(),
                workload: plan.workload.clone(),
                environment: plan.environment.clone(),
                step: step.to_owned(),
                artifact: artifact.map(str::to_owned),
                detail: detail.to_owned(),
                actor: actor.clone(),
            }),
        )?;
        let change = ChangeRecord {
            kind: cairn_model::ChangeKind::Remediation.as_str().to_owned(),
            workload: plan.workload.clone(),
            environment: plan.environment.clone(),
            actor,
            from_digest: Some(plan.digest.clone()),
            to_digest: artifact.unwrap_or(&plan.digest).to_owned(),
            log_index: receipt.index,
            at_ms: now_ms(),
            json: json!({
                "remediation": self.outcome.id,
                "step": step,
                "outcome": format!("{step}: {detail}"),
            })
            .to_string(),
        };
        Promoter {
            data: self.r.data,
            store: &*self.r.store,
            org: self.r.org,
            platform_dir: self.r.platform_dir,
        }
        .keep_change(&change)?;
        note(&format!("{step}: {detail}"));
        self.outcome
            .steps
            .push((step.to_owned(), detail.to_owned()));
        self.lock
            .write_status(&self.outcome, self.state, &self.r.actor_name())
    }
}

/// The run observer of a retest: its log is in the store (`cairn logs`).
struct Quiet;

impl RunObserver for Quiet {}

/// One workload's remediation lock, held while it lives.
#[derive(Debug)]
struct WorkloadLock {
    _file: File,
    status: PathBuf,
}

impl WorkloadLock {
    fn paths(data: &DataDir, workload: &str) -> (PathBuf, PathBuf) {
        let dir = dir(data);
        (
            dir.join(format!("{workload}.lock")),
            dir.join(format!("{workload}.json")),
        )
    }

    fn open(data: &DataDir, workload: &str) -> Result<File, EngineError> {
        use std::os::unix::fs::OpenOptionsExt;
        if !cairn_model::config::is_valid_name(workload) {
            return Err(EngineError::Remediation {
                why: format!("`{workload}` is not a workload name"),
            });
        }
        let dir = dir(data);
        std::fs::create_dir_all(&dir).map_err(EngineError::io("create", &dir))?;
        let (lock, _) = Self::paths(data, workload);
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock)
            .map_err(EngineError::io("open", &lock))
    }

    /// Takes the workload's lock, or refuses naming the remediation that
    /// holds it.
    fn acquire(data: &DataDir, workload: &str) -> Result<WorkloadLock, EngineError> {
        let file = Self::open(data, workload)?;
        let (lock, status) = Self::paths(data, workload);
        match file.try_lock() {
            Ok(()) => Ok(WorkloadLock {
                _file: file,
                status,
            }),
            Err(TryLockError::WouldBlock) => {
                let holder = read_small(&status)?
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .map(|v| {
                        format!(
                            "{} (started {} by {}, at step `{}`)",
                            v["id"].as_str().unwrap_or("?"),
                            v["started"].as_str().unwrap_or("?"),
                            v["actor"].as_str().unwrap_or("?"),
                            v["steps"]
                                .as_array()
                                .and_then(|s| s.last())
                                .and_then(|s| s["step"].as_str())
                                .unwrap_or("?")
                        )
                    })
                    .unwrap_or_else(|| "one that has not recorded its first step yet".to_owned());
                Err(EngineError::Remediation {
                    why: format!(
                        "a remediation of {workload} is already running: {holder}; one remediation per workload at a time"
                    ),
                })
            }
            Err(TryLockError::Error(e)) => Err(EngineError::io("lock", &lock)(e)),
        }
    }

    /// Whether a live process holds the workload's lock.
    fn held(data: &DataDir, workload: &str) -> Result<bool, EngineError> {
        let file = Self::open(data, workload)?;
        match file.try_lock() {
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => {
                Err(EngineError::io("lock", Self::paths(data, workload).0)(e))
            }
        }
    }

    /// Writes the status (a new file renamed over the old one).
    fn write_status(&self, outcome: &Outcome, state: &str, actor: &str) -> Result<(), EngineError> {
        let started_ms = outcome
            .id
            .rsplit_once('-')
            .and_then(|(_, ms)| ms.parse::<i64>().ok())
            .unwrap_or_default();
        let v = json!({
            "id": outcome.id,
            "workload": outcome.plan.workload,
            "environment": outcome.plan.environment,
            "digest": outcome.plan.digest,
            "exposures": outcome.plan.exposures.iter().map(|(a, p)| json!({"advisory": a, "package": p})).collect::<Vec<_>>(),
            "state": state,
            "started": cairn_model::time::rfc3339_utc(started_ms),
            "updated_ms": now_ms(),
            "actor": actor,
            "steps": outcome.steps.iter().map(|(s, d)| json!({"step": s, "detail": d})).collect::<Vec<_>>(),
            "ending": ending_json(&outcome.ending, state),
        });
        let tmp = self.status.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)
                .map_err(EngineError::io("create", &tmp))?;
            f.write_all(v.to_string().as_bytes())
                .map_err(EngineError::io("write", &tmp))?;
        }
        std::fs::rename(&tmp, &self.status).map_err(EngineError::io("rename", &self.status))
    }
}

/// The ending as the status file keeps it (`null` while it runs).
fn ending_json(ending: &Ending, state: &str) -> Value {
    if state == "running" {
        return Value::Null;
    }
    match ending {
        Ending::Remediated {
            digest,
            time_to_remediate_ms,
        } => {
            json!({"remediated": digest, "time_to_remediate_seconds": time_to_remediate_ms / 1000})
        }
        Ending::WaitingForApproval {
            digest,
            environment,
            command,
        } => json!({"waiting_for_approval": environment, "digest": digest, "command": command}),
        Ending::WaitingForReview {
            commit,
            branch,
            digest,
            command,
        } => {
            json!({"waiting_for_review": commit, "branch": branch, "digest": digest, "command": command})
        }
        Ending::Failed { step, reason } => json!({"failed": step, "reason": reason}),
    }
}

/// How often the server's loop looks for a new advisory import.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(2);
/// How long after a failed attempt the loop tries the same exposures again
/// (a base's archive may have the fix by then), unless advisories changed.
pub const RETRY_MS: i64 = 15 * 60 * 1000;

/// The server's remediation loop (`cairn up`): after each advisory import
/// (a new re-match in the store) and every [`RETRY_MS`], every open
/// base-layer exposure with a fix is remediated as [`ACTOR`] — once per
/// exposed digest and set of advisories: one that waits for approval or was
/// remediated is not tried again; one that failed is tried again after
/// [`RETRY_MS`] or a new import.
#[derive(Debug, Default)]
pub struct Loop {
    last_rematch: Option<i64>,
    last_pass_ms: i64,
    /// Per workload: (digest and advisories, when, whether it may be retried).
    attempted: BTreeMap<String, (String, i64, bool)>,
}

impl Loop {
    /// One look: `Ok(outcomes)` of the remediations it ran (often none).
    pub fn tick(
        &mut self,
        data: &DataDir,
        store: Arc<dyn Store>,
        platform_dir: Option<&Path>,
        note: &mut dyn FnMut(&str),
    ) -> Result<Vec<Outcome>, EngineError> {
        let now = now_ms();
        let newest = store.rematches(1)?.first().map(|r| r.id);
        let imported = newest != self.last_rematch;
        if !imported && now - self.last_pass_ms < RETRY_MS {
            return Ok(Vec::new());
        }
        self.last_rematch = newest;
        self.last_pass_ms = now;
        let org = crate::load_org(platform_dir)?;
        let remediator = Remediator {
            data,
            store,
            org: &org,
            platform_dir,
            actor: None,
        };
        let mut out = Vec::new();
        for plan in remediator.plan(&Target::All)? {
            if !matches!(plan.fix, Fix::Base { .. }) {
                continue;
            }
            let key = format!(
                "{} {}",
                plan.digest,
                plan.exposures
                    .iter()
                    .map(|(a, p)| format!("{a}/{p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            // One that waits for a human (also from before a restart) stays
            // as it is.
            if let Some(last) = status(data, &plan.workload)?
                && last["digest"] == plan.digest.as_str()
                && matches!(
                    last["state"].as_str(),
                    Some("waiting-for-approval" | "waiting-for-review" | "running")
                )
            {
                continue;
            }
            if let Some((done, at, retry)) = self.attempted.get(&plan.workload)
                && *done == key
                && (!*retry || (!imported && now - at < RETRY_MS))
            {
                continue;
            }
            match remediator.execute(&plan, note) {
                Ok(outcome) => {
                    let retry = matches!(outcome.ending, Ending::Failed { .. });
                    self.attempted
                        .insert(plan.workload.clone(), (key, now_ms(), retry));
                    out.push(outcome);
                }
                // Another remediation of the workload runs: next time.
                Err(EngineError::Remediation { why }) => note(&why),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::dependency::{lockfile_names, parse_purl, repin_requirement};
    use super::*;

    #[test]
    fn purls_and_targets_read_as_meant() {
        assert_eq!(
            parse_purl("pkg:npm/%40scope/name@1.2.3?x=y").unwrap(),
            ("npm".into(), "@scope/name".into(), "1.2.3".into())
        );
        assert_eq!(
            parse_purl("pkg:cargo/serde@1.0.0").unwrap(),
            ("cargo".into(), "serde".into(), "1.0.0".into())
        );
        assert!(parse_purl("npm/x@1").is_none());
        assert_eq!(
            parse_purl("pkg:pypi/idna@3.6").unwrap(),
            ("pypi".into(), "idna".into(), "3.6".into())
        );
        assert!(parse_purl("pkg:npm/x@").is_none());
        assert_eq!(
            Target::parse("web:DSA-1"),
            Target::Advisory {
                workload: Some("web".into()),
                advisory: "DSA-1".into()
            }
        );
        assert_eq!(
            Target::parse("CVE-2026-1"),
            Target::Advisory {
                workload: None,
                advisory: "CVE-2026-1".into()
            }
        );
    }

    #[test]
    fn requirement_pins_are_rewritten_exactly_or_refused() {
        let text = "# tools\nIDNA==3.6  # pinned\nrequests[socks]==2.31.0 ; python_version > \"3\"\nzope.interface === 6.0\n-r other.txt\n";
        assert!(lockfile_names("requirements.txt", text.as_bytes(), "idna"));
        assert!(lockfile_names(
            "requirements.txt",
            text.as_bytes(),
            "zope-interface"
        ));
        assert!(!lockfile_names(
            "requirements.txt",
            text.as_bytes(),
            "tools"
        ));
        assert_eq!(
            repin_requirement(text, "idna", "3.7").unwrap(),
            text.replace("IDNA==3.6", "IDNA==3.7")
        );
        assert_eq!(
            repin_requirement(text, "zope-interface", "6.1").unwrap(),
            text.replace("=== 6.0", "=== 6.1")
        );
        assert!(
            repin_requirement(text, "requests", "2.32.0")
                .unwrap()
                .contains("requests[socks]==2.32.0 ; python_version")
        );
        let hashed = "idna==3.6 \\\n    --hash=sha256:abc\n";
        assert!(
            repin_requirement(hashed, "idna", "3.7")
                .unwrap_err()
                .contains("hashes")
        );
        assert!(repin_requirement("idna>=3\n", "idna", "3.7").is_err());
    }
}
