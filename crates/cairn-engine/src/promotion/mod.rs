//! Promotion and rollback: the gate at every environment, then the change in the
//! audit log (durable before anything moves), then the deploy target, then the
//! environment record, the VSA and the change record.
//!
//! The gate's input is built only from what cairn can verify: evidence about the
//! digest whose signature and log entry check against cairn's own keys, reviews
//! of the image's exact commit (signed review statements), the catalog, the
//! environment's history, and the actor's roles. Every decision is itself signed
//! evidence (policy digest, input digest, result) in the log, allowed or not.
//!
//! `gate_input` builds the input, `decision` signs the decision and reads it
//! back, `target` records the intent and calls the deploy target, `vsa` issues
//! the VSA, `change` keeps change records (and policy changes), `status` says
//! what runs where.

mod change;
mod decision;
mod findings;
mod gate_input;
mod status;
mod target;
#[cfg(test)]
mod tests;
mod vsa;

use std::path::{Path, PathBuf};

use cairn_model::config::OrgConfig;
use cairn_model::{ChangeRecord, DeploymentRecord, DeploymentStatus};
use cairn_policy::{Action, Decision, Gate, GateInput, Identity, Limits, Scope};
use cairn_store::Store;

pub use self::change::POLICY_ACTOR;
pub use self::decision::{GateDecision, RecordedApproval, RecordedDecision};
pub use self::status::{EnvironmentStatus, STATUS_SCAN, status};
use crate::audit::{AuditLog, LOCK_WAIT};
use crate::images::Images;
use crate::verified::Trust;
use crate::{DataDir, EngineError};

/// The predicate type of a gate decision.
pub const DECISION_PREDICATE: &str = cairn_evidence::types::GATE_DECISION_V1;
/// Organisation policies: `$CAIRN_PLATFORM_DIR/policy/*.rego`, added to the default set.
pub const POLICY_DIR: &str = "policy";
const MAX_POLICY_FILES: usize = 64;

/// What the actor asks for: `promote` or `rollback` (the gate input's type).
pub use cairn_policy::Intent;

/// One promotion or rollback.
#[derive(Debug, Clone)]
pub struct Request {
    pub workload: String,
    /// The image: a digest, a unique digest prefix, or a layout ref.
    pub image: String,
    pub environment: String,
    pub actor: Identity,
    pub intent: Intent,
    /// Break-glass: deploy despite a denial, with this reason (always logged and
    /// flagged).
    pub override_reason: Option<String>,
}

/// What happened.
#[derive(Debug)]
pub struct Outcome {
    pub decision: Decision,
    /// The gate's input, as decided (for `cairn policy eval` and explanations).
    pub input: GateInput,
    /// The signed decision's evidence id and its log entry.
    pub decision_evidence: i64,
    pub decision_log_index: u64,
    /// The change record (also for denials).
    pub change_id: i64,
    pub change: ChangeRecord,
    /// With a change webhook: whether the record reached it.
    pub change_delivery: Option<String>,
    /// The new environment record, when it was deployed.
    pub deployment: Option<DeploymentRecord>,
    /// The VSA's evidence id, when it was deployed.
    pub vsa_evidence: Option<i64>,
}

/// What a rollback of `workload` in `environment` goes back to: `to` when
/// given, else what ran there before the current deployment.
pub fn rollback_target(
    store: &dyn Store,
    workload: &str,
    environment: &str,
    to: Option<&str>,
) -> Result<String, EngineError> {
    if let Some(digest) = to {
        return Ok(digest.to_owned());
    }
    store
        .current_deployment(workload, environment)?
        .and_then(|d| d.previous_digest)
        .ok_or_else(|| EngineError::NothingToRollBackTo {
            workload: workload.to_owned(),
            environment: environment.to_owned(),
        })
}

/// The context a promotion needs.
#[derive(Debug)]
pub struct Promoter<'a> {
    pub data: &'a DataDir,
    pub store: &'a dyn Store,
    pub org: &'a OrgConfig,
    pub platform_dir: Option<&'a Path>,
}

impl Promoter<'_> {
    /// This installation's builder id, as its gates expect it (reads only).
    pub fn builder_id(&self) -> Result<String, EngineError> {
        crate::audit::gate_builder_id(self.data, self.org.builder_id.as_deref())
    }

    /// The gate: the default policy set with this installation's builder id,
    /// plus the organisation's own policies.
    pub fn gate(&self) -> Result<Gate, EngineError> {
        let mut files: Vec<(String, String)> = cairn_policy::default_policy_files()
            .into_iter()
            .map(|(f, t)| (f.to_owned(), t.to_owned()))
            .collect();
        if let Some(dir) = self.platform_dir.map(|p| p.join(POLICY_DIR))
            && dir.is_dir()
        {
            let mut extra: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(EngineError::io("list", &dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "rego"))
                .filter(|p| !p.to_string_lossy().ends_with("_test.rego"))
                .collect();
            extra.sort();
            if extra.len() > MAX_POLICY_FILES {
                return Err(EngineError::Policy(cairn_policy::PolicyError::TooLarge {
                    what: "the organisation's policy directory (files)".to_owned(),
                    size: extra.len(),
                    limit: MAX_POLICY_FILES,
                }));
            }
            for path in extra {
                let text =
                    std::fs::read_to_string(&path).map_err(EngineError::io("read", &path))?;
                files.push((path.display().to_string(), text));
            }
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(f, t)| (f.as_str(), t.as_str()))
            .collect();
        let data = crate::policy_params::gate_params(self.org, &self.builder_id()?).to_data()?;
        Ok(Gate::load_with(&refs, &data, Limits::default())?)
    }

    /// The image (in `images`), its digest and record, and the environment's
    /// position, checked.
    fn resolve(
        &self,
        req: &Request,
        images: Images,
    ) -> Result<
        (
            Images,
            cairn_oci::Image,
            String,
            cairn_model::ImageRecord,
            usize,
        ),
        EngineError,
    > {
        let position = self.org.position(&req.environment).ok_or_else(|| {
            EngineError::BadDeployTarget {
                why: format!(
                    "environment `{}` is not on the promotion path ({}); org.toml's [promotion] path lists them",
                    req.environment,
                    self.org.promotion_path.join(" → ")
                ),
            }
        })?;
        let image = images.find(&req.image)?;
        let digest = image.manifest_digest.to_string();
        let record = self
            .store
            .images(None, Some(&digest), 1)?
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::ImageNotFound {
                reference: req.image.clone(),
                why: "cairn did not build it; only images built by the chain are promoted".into(),
            })?;
        if record.workload != req.workload {
            return Err(EngineError::ImageNotFound {
                reference: req.image.clone(),
                why: format!(
                    "it is an image of `{}`, not `{}`",
                    record.workload, req.workload
                ),
            });
        }
        Ok((images, image, digest, record, position))
    }

    /// The gate's input and decision for `req`, without recording or deploying
    /// anything (`cairn policy eval`). Needs only the `view` permission.
    pub fn evaluate(&self, req: &Request) -> Result<(GateInput, Decision), EngineError> {
        let scope = Scope {
            workload: Some(req.workload.clone()),
            environment: Some(req.environment.clone()),
        };
        crate::access::authorize(self.store, &req.actor, Action::View, &scope)?;
        // Read only: an evaluation creates nothing, not even an empty layout.
        let images =
            Images::open_existing(self.data)?.ok_or_else(|| EngineError::ImageNotFound {
                reference: req.image.clone(),
                why: "this data directory has no images yet".into(),
            })?;
        let (_, _, digest, record, position) = self.resolve(req, images)?;
        // Read only: no key, log key or log entry is created for an evaluation.
        let trust = Trust::read_only(self.data)?;
        let input = self.gate_input(req, &record, &digest, position, &trust)?;
        let decision = self.gate()?.decide_input_or_deny(&input);
        Ok((input, decision))
    }

    /// Authorises, decides, and — when allowed — records, deploys and certifies.
    pub fn promote(&self, req: &Request) -> Result<Outcome, EngineError> {
        let scope = Scope {
            workload: Some(req.workload.clone()),
            environment: Some(req.environment.clone()),
        };
        let action = match req.intent {
            Intent::Promote => Action::Promote,
            Intent::Rollback => Action::Rollback,
        };
        crate::access::authorize(self.store, &req.actor, action, &scope)?;
        if let Some(reason) = &req.override_reason {
            crate::access::authorize_override(self.store, &req.actor, &scope, reason)?;
        }
        self.promote_authorised(req)
    }

    /// [`Promoter::promote`] once the actor is authorised: by their roles, or
    /// — for a remediation to an environment the organisation's `[remediation]
    /// auto_promote` names — by org.toml itself. The gate decides the same way
    /// either way.
    pub(crate) fn promote_authorised(&self, req: &Request) -> Result<Outcome, EngineError> {
        // One promotion at a time per data directory, and none while another
        // process reconciles; what runs is reconciled with the records first.
        let _lock = crate::deploy::reconcile::DeployLock::acquire(self.data, LOCK_WAIT)?;
        self.reconcile_locked()?;
        let (images, image, digest, record, position) =
            self.resolve(req, Images::open(self.data)?)?;
        let short = &digest[..digest.len().min(19)];
        let forge = |phase, what: String| {
            crate::forge_status::report_promotion(
                self.data,
                self.org,
                self.store,
                &req.workload,
                &record.commit,
                &req.environment,
                phase,
                &format!("{short} to {}: {what}", req.environment),
            );
        };
        use crate::forge_status::Phase;
        forge(Phase::Running, "the gate is deciding".to_owned());
        let current = self
            .store
            .current_deployment(&req.workload, &req.environment)?;
        if req.intent == Intent::Rollback
            && !self
                .store
                .was_deployed(&req.workload, &req.environment, &digest)?
        {
            return Err(EngineError::BadDeployTarget {
                why: format!(
                    "{digest} never ran in {}: a rollback goes back to an earlier deployment (`cairn status` lists them); use `cairn promote` for a new one",
                    req.environment
                ),
            });
        }

        let (trust, key) = Trust::load(self.data)?;
        let input = self.gate_input(req, &record, &digest, position, &trust)?;
        let gate = self.gate()?;
        self.record_policy_change(&gate, &req.actor)?;
        let decision = gate.decide_input_or_deny(&input);
        // The decision is evidence, in the log, whatever it says.
        let signed = self.sign_decision(&key, req, &digest, &input, &decision)?;

        let from_digest = current.as_ref().map(|d| d.digest.clone());
        if !decision.allow {
            let change = change::denied(req, &digest, from_digest, &signed);
            let (change_id, change_delivery) = self.keep_change(&change)?;
            forge(Phase::Failed, "denied by the gate".to_owned());
            return Ok(Outcome {
                decision,
                input,
                decision_evidence: signed.evidence,
                decision_log_index: signed.log_index,
                change_id,
                change,
                change_delivery,
                deployment: None,
                vsa_evidence: None,
            });
        }

        // The change goes into the log first; on Err nothing moves.
        let kind = change::kind_of(req.intent, &decision);
        let logged = change::audit_change(req, kind, &digest, &decision, from_digest.as_ref());
        let receipt = AuditLog::open_waiting(self.data, LOCK_WAIT)?.record(&logged)?;

        // The intent: recorded before the target does anything, with the token the
        // target identifies this deployment by. A kill from here on leaves a record
        // that reconciliation finds and resolves.
        let target = self.org.target(&req.environment);
        let planned =
            self.record_intent(req, &target, current.as_ref(), kind, &digest, receipt.index)?;
        let previous_token = current.as_ref().and_then(|c| c.token.clone());
        let deployed = self.run_target(
            &target,
            &images,
            &image,
            req,
            &record,
            &planned,
            previous_token.as_deref(),
            receipt.index,
        );
        let mut deployment = planned.deployment;
        let detail = match deployed {
            Ok(d) => d,
            Err((e, previous_restored)) => {
                self.deploy_failed(
                    req,
                    &deployment,
                    &signed,
                    &e,
                    previous_token.as_deref(),
                    previous_restored,
                )?;
                forge(Phase::Error, "the deploy failed".to_owned());
                return Err(*e);
            }
        };
        // The outcome: deployed, and what ran before is superseded.
        self.mark_deployed(&deployment, previous_token.as_deref(), &detail)?;
        deployment.status = DeploymentStatus::Deployed;
        deployment.detail = detail;

        // The VSA: one signature check for an admission controller.
        let vsa_evidence = self.issue_vsa(&key, req, &digest, &input, &decision)?;
        let approver_roles =
            crate::policy_params::gate_params(self.org, &self.builder_id()?).approver_roles;
        let change = change::deployed(
            req,
            &deployment,
            &signed,
            &input,
            &approver_roles,
            vsa_evidence,
        );
        let (change_id, change_delivery) = self.keep_change(&change)?;
        forge(Phase::Succeeded, "deployed".to_owned());
        Ok(Outcome {
            decision,
            input,
            decision_evidence: signed.evidence,
            decision_log_index: signed.log_index,
            change_id,
            change,
            change_delivery,
            deployment: Some(deployment),
            vsa_evidence: Some(vsa_evidence),
        })
    }
}
