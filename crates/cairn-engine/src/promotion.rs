//! Promotion and rollback: the gate at every environment, then the change in the
//! audit log (durable before anything moves), then the deploy target, then the
//! environment record, the VSA and the change record.
//!
//! The gate's input is built only from what cairn can verify: evidence about the
//! digest whose signature and log entry check against cairn's own keys, reviews
//! of the image's exact commit (signed review statements), the catalog, the
//! environment's history, and the actor's roles. Every decision is itself signed
//! evidence (policy digest, input digest, result) in the log, allowed or not.

use std::path::{Path, PathBuf};

use cairn_evidence::review::{Review, commit_subject_digest};
use cairn_evidence::vsa::{InputAttestation, VerificationResult, VsaFacts};
use cairn_evidence::{Digest, Predicate, SigningKey, Statement, Subject};
use cairn_model::config::{DeployTarget, OrgConfig};
use cairn_model::{ChangeRecord, DeploymentRecord, DeploymentStatus};
use cairn_policy::{Action, Decision, Gate, Identity, Limits, Scope};
use cairn_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditLog, Change, Deploy, LOCK_WAIT, Override, PolicyChange, Rollback};
use crate::certify::{Filed, sign_and_keep};
use crate::host::now_ms;
use crate::images::{Images, deploy_local};
use crate::runner::BUILDER_ID;
use crate::verified::{self, Trust};
use crate::{DataDir, EngineError};

/// The verifier id in cairn's VSAs.
pub const VERIFIER_ID: &str = "urn:cairn:verifier:gate";
/// The predicate type of a gate decision.
pub const DECISION_PREDICATE: &str = "https://cairn.invalid/attestation/gate-decision/v1";
/// Organisation policies: `$CAIRN_PLATFORM_DIR/policy/*.rego`, added to the default set.
pub const POLICY_DIR: &str = "policy";
const MAX_POLICY_FILES: usize = 64;

/// A signed gate decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GateDecision(pub Value);

impl Predicate for GateDecision {
    const PREDICATE_TYPE: &'static str = DECISION_PREDICATE;
}

/// What the actor asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Promote,
    Rollback,
}

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
    pub input: Value,
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

/// The gate's decision as a change record keeps it: what `cairn explain
/// change:N` prints and the UI's audit page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedDecision {
    /// `None` when the record holds no decision (a policy change).
    pub allow: Option<bool>,
    /// `(rule, message)` of each reason, in order.
    pub reasons: Vec<(String, String)>,
    pub policy_digest: Option<String>,
    pub input_digest: Option<String>,
    /// What happened (`deployed`, `denied: nothing was deployed`, …).
    pub outcome: Option<String>,
}

impl RecordedDecision {
    /// Reads the decision out of a change record's JSON (anything missing or
    /// malformed reads as absent, never as allowed).
    pub fn of(change: &ChangeRecord) -> RecordedDecision {
        let record: Value = serde_json::from_str(&change.json).unwrap_or_default();
        let decision = &record["decision"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        RecordedDecision {
            allow: decision["allow"].as_bool(),
            reasons: decision["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        r["rule"].as_str().unwrap_or("?").to_owned(),
                        r["message"].as_str().unwrap_or("?").to_owned(),
                    )
                })
                .collect(),
            policy_digest: text(&decision["policyDigest"]),
            input_digest: text(&decision["inputDigest"]),
            outcome: text(&record["outcome"]),
        }
    }
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
    /// The gate: the default policy set with cairn's builder id, plus the
    /// organisation's own policies.
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
        let data = crate::policy_params::gate_params(self.org).to_data()?;
        Ok(Gate::load_with(&refs, &data, Limits::default())?)
    }

    /// The image, its digest and record, and the environment's position, checked.
    fn resolve(
        &self,
        req: &Request,
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
        let images = Images::open(self.data)?;
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
    pub fn evaluate(&self, req: &Request) -> Result<(Value, Decision), EngineError> {
        let scope = Scope {
            workload: Some(req.workload.clone()),
            environment: Some(req.environment.clone()),
        };
        crate::access::authorize(self.store, &req.actor, Action::View, &scope)?;
        let (_, _, digest, record, position) = self.resolve(req)?;
        let (trust, _) = Trust::load(self.data)?;
        let input = self.gate_input(req, &record, &digest, position, &trust)?;
        let decision = self.gate()?.decide_or_deny(&input);
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
        let (images, image, digest, record, position) = self.resolve(req)?;
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
        let decision = gate.decide_or_deny(&input);

        // The decision is evidence, in the log, whatever it says.
        let decision_json = json!({
            "workload": req.workload,
            "environment": req.environment,
            "artifact": digest,
            "actor": req.actor.name,
            "intent": match req.intent { Intent::Promote => "promote", Intent::Rollback => "rollback" },
            "allow": decision.allow,
            "reasons": decision.reasons,
            "overridden": decision.overridden,
            "policyDigest": decision.policy_digest,
            "inputDigest": decision.input_digest,
            // The advisory database the vulnerabilities were re-matched against.
            "advisoryDb": input["findings"]["advisory_db"],
            "decidedAt": cairn_model::time::rfc3339_utc(now_ms()),
        });
        let subject = image_subject(&req.workload, &digest)?;
        let (decision_evidence, decision_log_index) = self.sign_and_keep(
            &key,
            subject.clone(),
            GateDecision(decision_json.clone()),
            &digest,
        )?;

        let from_digest = current.as_ref().map(|d| d.digest.clone());
        if !decision.allow {
            let change = ChangeRecord {
                kind: "denied".into(),
                workload: req.workload.clone(),
                environment: req.environment.clone(),
                actor: req.actor.name.clone(),
                from_digest,
                to_digest: digest.clone(),
                log_index: decision_log_index,
                at_ms: now_ms(),
                json:
                    json!({ "decision": decision_json, "outcome": "denied: nothing was deployed" })
                        .to_string(),
            };
            let (change_id, change_delivery) = self.keep_change(&change)?;
            return Ok(Outcome {
                decision,
                input,
                decision_evidence,
                decision_log_index,
                change_id,
                change,
                change_delivery,
                deployment: None,
                vsa_evidence: None,
            });
        }

        // The change goes into the log first; on Err nothing moves.
        let kind = if decision.overridden.is_some() {
            "override"
        } else {
            match req.intent {
                Intent::Promote => "deploy",
                Intent::Rollback => "rollback",
            }
        };
        let logged = match (kind, &from_digest) {
            ("override", _) => Change::Override(Override {
                workload: req.workload.clone(),
                environment: req.environment.clone(),
                artifact: digest.clone(),
                gate: decision.policy_digest.clone(),
                reason: decision.overridden.clone().unwrap_or_default(),
                actor: req.actor.name.clone(),
            }),
            ("rollback", Some(from)) => Change::Rollback(Rollback {
                workload: req.workload.clone(),
                environment: req.environment.clone(),
                from_artifact: from.clone(),
                to_artifact: digest.clone(),
                actor: req.actor.name.clone(),
            }),
            _ => Change::Deploy(Deploy {
                workload: req.workload.clone(),
                environment: req.environment.clone(),
                artifact: digest.clone(),
                actor: req.actor.name.clone(),
            }),
        };
        let receipt = AuditLog::open_waiting(self.data, LOCK_WAIT)?.record(&logged)?;

        // The intent: recorded before the target does anything, with the token the
        // target identifies this deployment by. A kill from here on leaves a record
        // that reconciliation finds and resolves.
        let target = self.org.target(&req.environment);
        let token = deploy_local::new_token()?;
        let (target_name, planned_detail, port) = match &target {
            DeployTarget::Local => {
                // The environment keeps its port: the running deployment's, else
                // the recorded one's.
                let port = deploy_local::current(self.data, &req.workload, &req.environment)?
                    .map(|d| d.port)
                    .or_else(|| {
                        current
                            .as_ref()
                            .filter(|c| c.target == "local")
                            .and_then(|c| deploy_local::port_of(&c.detail))
                    })
                    .map_or_else(free_port, Ok)?;
                ("local", deploy_local::url_of(port), port)
            }
            DeployTarget::Gitops { repo, .. } => ("gitops", format!("a commit to {repo}"), 0),
        };
        let mut deployment = DeploymentRecord {
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            digest: digest.clone(),
            previous_digest: from_digest.clone(),
            kind: kind.to_owned(),
            actor: req.actor.name.clone(),
            target: target_name.to_owned(),
            detail: planned_detail,
            log_index: receipt.index,
            deployed_at_ms: now_ms(),
            status: DeploymentStatus::Deploying,
            token: Some(token.clone()),
            reason: None,
        };
        self.store.add_deployment(&deployment)?;

        let previous_token = current.as_ref().and_then(|c| c.token.clone());
        let deployed = match &target {
            DeployTarget::Local => deploy_local::deploy(
                self.data,
                &images,
                &req.workload,
                &req.environment,
                &image,
                port,
                &token,
                previous_token.as_deref(),
            )
            .map(|d| d.url())
            .map_err(|f| (*f.error, f.previous_restored)),
            DeployTarget::Gitops {
                repo,
                dir,
                image_repository,
            } => {
                let fill = |s: &str| {
                    s.replace("{workload}", &req.workload)
                        .replace("{environment}", &req.environment)
                };
                let port = image
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.exposed_ports().as_ref())
                    .and_then(|p| p.first())
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse::<u16>().ok())
                    .unwrap_or(8080);
                crate::deploy::gitops::deploy(&crate::deploy::gitops::GitopsChange {
                    repo: PathBuf::from(repo),
                    dir: fill(dir),
                    workload: req.workload.clone(),
                    environment: req.environment.clone(),
                    image: format!("{}@{digest}", fill(image_repository)),
                    port,
                    trailers: crate::deploy::gitops::Trailers {
                        run: record
                            .run
                            .map(|r| r.to_string())
                            .unwrap_or_else(|| "-".into()),
                        log_index: receipt.index,
                        change: match req.intent {
                            Intent::Promote => crate::deploy::gitops::ChangeKind::Deploy,
                            Intent::Rollback => crate::deploy::gitops::ChangeKind::Rollback,
                        },
                        actor: req.actor.name.clone(),
                    },
                })
                .map(|c| format!("commit {}", c.commit))
                .map_err(|e| (e, None))
            }
        };
        let detail = match deployed {
            Ok(d) => d,
            Err((e, previous_restored)) => {
                let why = format!("the deploy failed: {e}");
                self.store.set_deployment_status(
                    &token,
                    DeploymentStatus::Failed,
                    Some(&why),
                    None,
                )?;
                if previous_restored == Some(false)
                    && let Some(t) = &previous_token
                {
                    self.store.set_deployment_status(
                        t,
                        DeploymentStatus::NotRunning,
                        Some(&format!(
                            "stopped for the deploy of log entry {}, which failed, and not started again",
                            receipt.index
                        )),
                        None,
                    )?;
                }
                let change = ChangeRecord {
                    kind: "deploy-failed".into(),
                    workload: req.workload.clone(),
                    environment: req.environment.clone(),
                    actor: req.actor.name.clone(),
                    from_digest,
                    to_digest: digest.clone(),
                    log_index: receipt.index,
                    at_ms: now_ms(),
                    json: json!({ "decision": decision_json, "outcome": why, "token": token })
                        .to_string(),
                };
                self.keep_change(&change)?;
                return Err(e);
            }
        };
        // The outcome: deployed, and what ran before is superseded.
        self.store.set_deployment_status(
            &token,
            DeploymentStatus::Deployed,
            None,
            Some(&detail),
        )?;
        if let Some(t) = &previous_token {
            self.store.set_deployment_status(
                t,
                DeploymentStatus::Superseded,
                Some(&format!(
                    "replaced by the deployment of log entry {}",
                    receipt.index
                )),
                None,
            )?;
        }
        deployment.status = DeploymentStatus::Deployed;
        deployment.detail = detail;

        // The VSA: one signature check for an admission controller.
        let inputs: Vec<InputAttestation> = self
            .store
            .evidence_for_subject(&digest)?
            .iter()
            .filter(|e| e.predicate_type != DECISION_PREDICATE)
            // Only what verified: a bundle the gate named as failed is not an input.
            .filter(|e| {
                !input["verification"]["failures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| f["evidence"].as_i64() == Some(e.id))
            })
            .map(|e| InputAttestation {
                uri: Some(format!("cairn:evidence/{}", e.id)),
                sha256: cairn_evidence::sha256(&e.bundle),
            })
            .collect();
        let facts = VsaFacts {
            verifier_id: VERIFIER_ID.to_owned(),
            time_verified_ms: now_ms(),
            image: format!("cairn.local/{}@{digest}", req.workload),
            policy_uri: format!("urn:cairn:policy:{}", req.environment),
            policy_digest: Digest::parse(&decision.policy_digest)
                .map_err(cairn_evidence::EvidenceError::from)?,
            input_attestations: inputs,
            // A break-glass deployment was not verified: FAILED, with the override.
            result: if decision.overridden.is_some() {
                VerificationResult::Failed
            } else {
                VerificationResult::Passed
            },
            verified_levels: if decision.overridden.is_some() {
                Vec::new()
            } else {
                vec!["SLSA_BUILD_LEVEL_3".to_owned()]
            },
            dependency_levels: Default::default(),
            override_: decision
                .overridden
                .as_ref()
                .map(|reason| vsa_override(&req.actor.name, reason, &decision.reasons)),
        };
        let vsa = Statement::vsa(&facts)?;
        let (vsa_evidence, _) = self.sign_statement_and_keep(&key, &vsa, &digest)?;

        let change = ChangeRecord {
            kind: kind.to_owned(),
            workload: req.workload.clone(),
            environment: req.environment.clone(),
            actor: req.actor.name.clone(),
            from_digest,
            to_digest: digest.clone(),
            log_index: receipt.index,
            at_ms: now_ms(),
            json: json!({
                "decision": decision_json,
                "approvals": input["reviews"],
                "target": target_name,
                "detail": deployment.detail,
                "token": token,
                "vsa_evidence": vsa_evidence,
                "outcome": "deployed",
            })
            .to_string(),
        };
        let (change_id, change_delivery) = self.keep_change(&change)?;
        Ok(Outcome {
            decision,
            input,
            decision_evidence,
            decision_log_index,
            change_id,
            change,
            change_delivery,
            deployment: Some(deployment),
            vsa_evidence: Some(vsa_evidence),
        })
    }

    /// A policy change is a production change: when the gate's policies (the
    /// default set, the organisation's files, the parameters) differ from the last
    /// recorded ones, the change is appended to the audit log and kept as a change
    /// record before the new policies decide anything. cairn sees the change when
    /// it first takes effect; `actor` is who triggered that first decision.
    fn record_policy_change(&self, gate: &Gate, actor: &Identity) -> Result<(), EngineError> {
        let new = gate.policy_digest().to_owned();
        let last = self
            .store
            .changes(None, 10_000)?
            .into_iter()
            .find(|(_, c)| c.kind == "policy-change")
            .map(|(_, c)| c.to_digest);
        if last.as_deref() == Some(new.as_str()) {
            return Ok(());
        }
        let receipt = AuditLog::open_waiting(self.data, LOCK_WAIT)?.record(
            &Change::PolicyChange(PolicyChange {
                policy: "gate".to_owned(),
                old_digest: last.clone(),
                new_digest: new.clone(),
                actor: actor.name.clone(),
            }),
        )?;
        self.keep_change(&ChangeRecord {
            kind: "policy-change".into(),
            workload: "*".into(),
            environment: "*".into(),
            actor: actor.name.clone(),
            from_digest: last,
            to_digest: new,
            log_index: receipt.index,
            at_ms: now_ms(),
            json: json!({
                "policy_files": gate.files(),
                "outcome": "the gate's policies changed; first used by this actor's request",
            })
            .to_string(),
        })?;
        Ok(())
    }

    /// The gate's input for this request (see cairn-policy's `GateInput`).
    fn gate_input(
        &self,
        req: &Request,
        record: &cairn_model::ImageRecord,
        digest: &str,
        position: usize,
        trust: &Trust,
    ) -> Result<Value, EngineError> {
        let store = self.store;
        // Every bundle filed under the digest is checked; what the gate reads
        // comes out of the signed statements, and a bundle that fails is named
        // (`verification.failures`; the default policy denies on it).
        let (checked, mut failures) =
            verified::about_artifact(store, trust, digest, &req.workload)?;
        let mut evidence = Vec::new();
        // The findings come from the same verified statements: the scan's
        // vulnerabilities, the SBOM's licences.
        let mut findings = GateFindings::default();
        // The commit and base, from cairn's signed provenance about the digest
        // (the image row is only where to look).
        let mut commits = std::collections::BTreeSet::new();
        let mut bases = std::collections::BTreeSet::new();
        // Who ran what produced this artifact: never an approver of it.
        let mut authors: std::collections::BTreeMap<String, String> = Default::default();
        let mut ran_before = false;
        let mut change: std::collections::BTreeMap<String, cairn_evidence::ChangeCommit> =
            Default::default();
        for c in &checked {
            if c.predicate_type() == DECISION_PREDICATE {
                continue;
            }
            if c.predicate_type() == cairn_evidence::vsa::VSA_PREDICATE_TYPE {
                ran_before |= passed_here(&c.statement, &req.workload, &req.environment, digest);
            }
            if c.facts.builder.as_deref() == Some(BUILDER_ID) {
                commits.extend(c.facts.commit.clone());
                bases.extend(c.facts.bases.iter().cloned());
                for commit in &c.facts.change {
                    change
                        .entry(commit.commit.clone())
                        .or_insert_with(|| commit.clone());
                }
            }
            if let Some(who) = &c.facts.triggered_by {
                let run = c.facts.run.as_deref().unwrap_or("?");
                authors.entry(who.clone()).or_insert_with(|| {
                    format!("{who} ran run {run}, which produced this artifact")
                });
            }
            findings.take(&c.statement);
            evidence.push(json!({
                "predicate_type": c.statement["predicateType"],
                "signer": c.signer,
                "subject_digest": digest,
                "stage_kind": c.facts.stage_kind,
                "run": c.facts.run,
                "workload": c.facts.workload,
                "commit": c.facts.commit,
                "predicate": c.statement["predicate"],
            }));
        }
        // What the advisories stored now say about the components of the
        // verified SBOM: a finding imported after the build counts too.
        let advisory_db = crate::current::advisory_db_state(store)?;
        let mut new_since_scan = Vec::new();
        let boms: Vec<&Value> = checked
            .iter()
            .filter(|c| c.predicate_type() == cairn_evidence::sbom::CycloneDxBom::PREDICATE_TYPE)
            .map(|c| &c.statement["predicate"])
            .collect();
        if boms.is_empty() && findings.scanned {
            failures.push(verified::Failure {
                evidence: None,
                what: "sbom".to_owned(),
                reason: format!(
                    "no verified SBOM about {digest}: the advisories stored now cannot be matched against it"
                ),
            });
        }
        for bom in boms {
            match crate::current::rematch_signed_sbom(store, bom) {
                Ok(current) => {
                    for f in current {
                        if findings.add_current(&f) {
                            new_since_scan.push(f.id);
                        }
                    }
                }
                Err(why) => failures.push(verified::Failure {
                    evidence: None,
                    what: "sbom".to_owned(),
                    reason: why,
                }),
            }
        }
        new_since_scan.sort();
        new_since_scan.dedup();
        let commit = match commits.len() {
            0 => record.commit.clone(),
            1 => commits.iter().next().cloned().unwrap_or_default(),
            _ => {
                failures.push(verified::Failure {
                    evidence: None,
                    what: "provenance".to_owned(),
                    reason: format!(
                        "cairn's signed provenance about {digest} names more than one commit ({})",
                        commits.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
                record.commit.clone()
            }
        };
        if !commits.is_empty() && !commits.contains(&record.commit) {
            failures.push(verified::Failure {
                evidence: None,
                what: "image record".to_owned(),
                reason: format!(
                    "the store says {digest} was built from commit {}, but its signed provenance says {commit}",
                    record.commit
                ),
            });
        }
        if !bases.is_empty() && !bases.contains(&record.base_digest) {
            failures.push(verified::Failure {
                evidence: None,
                what: "image record".to_owned(),
                reason: format!(
                    "the store says {digest} is built on {}, but its signed provenance names {}",
                    record.base_digest,
                    bases.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        // Who signed or authored the change's commits (as cairn's provenance
        // signs them): a verified signature names an identity; a commit's
        // author or committer e-mail only adds the identity of that name.
        let now = now_ms();
        for c in change.values() {
            let short = &c.commit[..12.min(c.commit.len())];
            if let Some(who) = &c.signed_by {
                authors
                    .entry(who.clone())
                    .or_insert_with(|| format!("{who} signed commit {short} of the change"));
            }
            for (role, person) in [("author", &c.author), ("committer", &c.committer)] {
                let email = person
                    .rsplit_once('<')
                    .and_then(|(_, rest)| rest.strip_suffix('>'))
                    .map(str::trim)
                    .unwrap_or_default();
                if !email.is_empty()
                    && store
                        .identity(email)?
                        .is_some_and(|r| crate::access::is_active(&r, now))
                {
                    authors.entry(email.to_owned()).or_insert_with(|| {
                        format!("{email} is the git {role} of commit {short} of the change")
                    });
                }
            }
        }
        let require_signed = self.org.require_signed_commits.contains(&req.environment);
        // Signed reviews of the image's exact commit.
        let bindings = crate::access::bindings(store)?;
        let review_subject = commit_subject_digest(&commit).to_string();
        let mut reviews = Vec::new();
        for e in store.evidence_for_subject(&review_subject)? {
            let mut fail = |reason: String| {
                failures.push(verified::Failure {
                    evidence: Some(e.id),
                    what: e.predicate_type.chars().take(200).collect(),
                    reason,
                })
            };
            let statement = match trust.statement(&e.bundle) {
                Ok((statement, _)) => statement,
                Err(why) => {
                    fail(why);
                    continue;
                }
            };
            let Ok(text) = serde_json::to_vec(&statement) else {
                continue;
            };
            let review = match Review::from_statement_json(&text) {
                Ok(review) => review,
                Err(why) => {
                    fail(format!(
                        "it is filed as a review of commit {commit}, but it is not one: {why}"
                    ));
                    continue;
                }
            };
            let r = &review.predicate;
            let roles: Vec<String> = match store.identity(&r.reviewer)? {
                Some(id) => bindings
                    .roles_at(
                        &Identity {
                            name: id.name.clone(),
                            kind: policy_kind(id.kind),
                        },
                        &Scope {
                            workload: Some(req.workload.clone()),
                            environment: Some(req.environment.clone()),
                        },
                    )
                    .into_iter()
                    .map(|r| r.as_str().to_owned())
                    .collect(),
                None => Vec::new(),
            };
            reviews.push(json!({
                "commit": r.commit,
                "reviewer": r.reviewer,
                "reviewer_roles": roles,
                "author": review.predicate.author_email().unwrap_or(&r.author),
                "verdict": r.verdict.as_str(),
            }));
        }
        let previous = if position == 0 {
            Value::Null
        } else {
            let name = &self.org.promotion_path[position - 1];
            let there = store.current_deployment(&req.workload, name)?;
            let deployed = there.as_ref().is_some_and(|d| d.digest == digest);
            let healthy = deployed && self.healthy(&req.workload, name)?;
            json!({ "name": name, "deployed": deployed, "healthy": healthy })
        };
        let base = store
            .base_history(&record.base_name)?
            .into_iter()
            .find(|b| b.digest == record.base_digest);
        let in_catalog = base.is_some();
        // The base's origin, when it came from a registry, is an image reference
        // the build used (the no-docker-hub rule reads these).
        let image_references: Vec<String> = base
            .iter()
            .map(|b| b.source.clone())
            .filter(|s| {
                !(s.starts_with("rootfs:") || s.starts_with("oci:") || s.starts_with("created:"))
            })
            .collect();
        let roles: Vec<String> = bindings
            .roles_at(
                &req.actor,
                &Scope {
                    workload: Some(req.workload.clone()),
                    environment: Some(req.environment.clone()),
                },
            )
            .into_iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        Ok(json!({
            "artifact": {
                "digest": digest,
                "workload": req.workload,
                "commit": commit,
                "base_image": { "name": record.base_name, "digest": record.base_digest, "in_catalog": in_catalog },
                "image_references": image_references,
                "change": change.values().map(|c| json!({ "commit": c.commit, "signed_by": c.signed_by })).collect::<Vec<_>>(),
            },
            "evidence": evidence,
            "reviews": reviews,
            "environment": { "name": req.environment, "position": position, "previous": previous, "ran_before": ran_before, "require_signed_commits": require_signed },
            "intent": match req.intent { Intent::Promote => "promote", Intent::Rollback => "rollback" },
            "verification": { "failures": failures.iter().map(verified::Failure::to_json).collect::<Vec<_>>() },
            "authors": authors.iter().map(|(identity, why)| json!({ "identity": identity, "why": why })).collect::<Vec<_>>(),
            "findings": findings.to_json(json!({
                "count": advisory_db.count,
                "newest_modified": advisory_db.newest_modified,
                "digest": advisory_db.digest,
                "new_since_scan": new_since_scan,
            })),
            "actor": { "identity": req.actor.name, "kind": kind_name(&req.actor), "roles": roles },
            "override": req.override_reason.as_ref().map(|r| json!({ "reason": r })),
        }))
    }

    /// Whether the workload's deployment in `environment` is up: for `local`, the
    /// same process still runs and answers on its port; for `gitops`, the commit
    /// is what the repository holds (cairn cannot see the cluster).
    fn healthy(&self, workload: &str, environment: &str) -> Result<bool, EngineError> {
        match self.org.target(environment) {
            DeployTarget::Local => Ok(deploy_local::current(self.data, workload, environment)?
                .is_some_and(|d| d.serves())),
            DeployTarget::Gitops { .. } => Ok(true),
        }
    }

    fn sign_and_keep<P: Predicate>(
        &self,
        key: &SigningKey,
        subject: Subject,
        predicate: P,
        digest: &str,
    ) -> Result<(i64, u64), EngineError> {
        let statement = Statement::new(vec![subject], predicate)?;
        self.sign_statement_and_keep(key, &statement, digest)
    }

    fn sign_statement_and_keep<P: Predicate>(
        &self,
        key: &SigningKey,
        statement: &Statement<P>,
        digest: &str,
    ) -> Result<(i64, u64), EngineError> {
        let subject_name = statement
            .subject
            .first()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        sign_and_keep(
            self.data,
            self.store,
            key,
            statement,
            Filed {
                run: None,
                stage: None,
                subject_name: &subject_name,
                subject_digest: digest,
            },
        )
    }

    /// Stores the change record, appends it to the file sink
    /// (`<data>/changes.jsonl`, for change-management systems to pick up) and
    /// delivers it to the organisation's change webhook, if one is set. Returns
    /// the record's id and, with a webhook, how its delivery went.
    pub(crate) fn keep_change(
        &self,
        change: &ChangeRecord,
    ) -> Result<(i64, Option<String>), EngineError> {
        use std::io::Write;
        let id = self.store.add_change(change)?;
        let line = json!({
            "id": id,
            "kind": change.kind,
            "workload": change.workload,
            "environment": change.environment,
            "actor": change.actor,
            "from": change.from_digest,
            "to": change.to_digest,
            "log_index": change.log_index,
            "at": cairn_model::time::rfc3339_utc(change.at_ms),
            "record": serde_json::from_str::<Value>(&change.json).unwrap_or(Value::Null),
        });
        let path = self.data.root().join("changes.jsonl");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(EngineError::io("open", &path))?;
        writeln!(file, "{line}").map_err(EngineError::io("write", &path))?;
        file.sync_data().map_err(EngineError::io("sync", &path))?;
        let delivery = crate::change_sink::deliver(&self.org.change_sink, self.data, id, &line)
            .map(|r| match r {
                Ok(()) => "delivered to the change webhook".to_owned(),
                Err(why) => format!("not delivered to the change webhook: {why}"),
            });
        Ok((id, delivery))
    }
}

/// The override a FAILED VSA carries: single-line, bounded texts (the VSA's
/// own checks refuse control characters and longer texts).
fn vsa_override(
    actor: &str,
    reason: &str,
    denials: &[cairn_policy::Denial],
) -> cairn_evidence::vsa::VsaOverride {
    let clean = |text: &str| -> String {
        let one_line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(1024)
            .collect();
        if one_line.trim().is_empty() {
            "-".to_owned()
        } else {
            one_line
        }
    };
    cairn_evidence::vsa::VsaOverride {
        actor: clean(actor),
        reason: clean(reason),
        denied_by: denials
            .iter()
            .take(64)
            .map(|d| cairn_evidence::vsa::OverriddenDenial {
                rule: clean(&d.rule),
                message: clean(&d.message),
            })
            .collect(),
    }
}

/// Whether `statement` (a verified VSA about `digest`) says cairn promoted
/// `digest` of `workload` to `environment` through its gate (PASSED: an
/// override's VSA says FAILED and does not count).
fn passed_here(statement: &Value, workload: &str, environment: &str, digest: &str) -> bool {
    let p = &statement["predicate"];
    p["verificationResult"] == "PASSED"
        && p["policy"]["uri"].as_str() == Some(&format!("urn:cairn:policy:{environment}"))
        && p["resourceUri"].as_str() == Some(&format!("cairn.local/{workload}@{digest}"))
}

fn image_subject(workload: &str, digest: &str) -> Result<Subject, EngineError> {
    Ok(Subject::sha256(
        format!("{workload}@{digest}"),
        Digest::parse(digest).map_err(cairn_evidence::EvidenceError::from)?,
    ))
}

fn free_port() -> Result<u16, EngineError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(EngineError::io("find a free port on", "127.0.0.1"))
}

fn policy_kind(kind: cairn_model::IdentityKind) -> cairn_policy::IdentityKind {
    match kind {
        cairn_model::IdentityKind::User => cairn_policy::IdentityKind::User,
        cairn_model::IdentityKind::ServiceAccount => cairn_policy::IdentityKind::ServiceAccount,
    }
}

fn kind_name(identity: &Identity) -> &'static str {
    match identity.kind {
        cairn_policy::IdentityKind::User => "user",
        cairn_policy::IdentityKind::ServiceAccount => "service-account",
    }
}

/// The gate's `findings`, from verified statements about the digest only: every
/// vulnerability of every vulns v0.2 scan (one from an earlier run of the same
/// digest included: nothing is dropped), every component of every CycloneDX SBOM
/// with its licence. No verified scan, `scanned` stays false and the default
/// policy denies.
#[derive(Default)]
struct GateFindings {
    scanned: bool,
    vulnerabilities: std::collections::BTreeMap<(String, String), Value>,
    licences: std::collections::BTreeMap<String, Value>,
}

impl GateFindings {
    /// Reads one verified statement (about the digest); other predicates, and a
    /// predicate that does not parse, add nothing.
    fn take(&mut self, statement: &Value) {
        let predicate_type = statement["predicateType"].as_str().unwrap_or_default();
        if predicate_type == cairn_evidence::vulns::VulnsScan::PREDICATE_TYPE {
            let Ok(scan) = serde_json::from_value::<cairn_evidence::vulns::VulnsScan>(
                statement["predicate"].clone(),
            ) else {
                return;
            };
            self.scanned = true;
            for r in &scan.scanner.result {
                let note = r.annotations.first();
                let package = note
                    .and_then(|n| n.get("purl"))
                    .and_then(Value::as_str)
                    .unwrap_or("(unknown package)")
                    .to_owned();
                let fix_available = note
                    .and_then(|n| n.get("fixedVersions"))
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
                let urgency = note
                    .and_then(|n| n.get("urgency"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let severity = match r.rating() {
                    s @ ("low" | "medium" | "high" | "critical") => s,
                    _ => "unknown",
                };
                self.vulnerabilities
                    .entry((r.id.clone(), package.clone()))
                    .or_insert_with(|| {
                        json!({
                            "id": r.id,
                            "package": package,
                            "severity": severity,
                            "fix_available": fix_available,
                            "suppressed": false,
                            "urgency": urgency,
                        })
                    });
            }
        } else if predicate_type == cairn_evidence::sbom::CycloneDxBom::PREDICATE_TYPE {
            for (purl, entry) in crate::policy_params::sbom_licence_entries(&statement["predicate"])
            {
                self.licences.entry(purl).or_insert(entry);
            }
        }
    }

    /// Adds a finding the stored advisories give now; `true` when the signed
    /// scan did not name it.
    fn add_current(&mut self, f: &crate::current::CurrentFinding) -> bool {
        let key = (f.id.clone(), f.package.clone());
        if let Some(known) = self.vulnerabilities.get_mut(&key) {
            // A record updated since the build may rate it higher: the higher counts.
            let rank = |s: &str| match s {
                "low" => 1,
                "medium" => 2,
                "high" => 3,
                _ => 4,
            };
            if rank(&f.severity) > rank(known["severity"].as_str().unwrap_or("unknown")) {
                known["severity"] = json!(f.severity);
            }
            return false;
        }
        self.vulnerabilities.insert(
            key,
            json!({
                "id": f.id,
                "package": f.package,
                "severity": f.severity,
                "fix_available": f.fix_available,
                "suppressed": false,
                "urgency": f.urgency,
            }),
        );
        true
    }

    fn to_json(&self, advisory_db: Value) -> Value {
        json!({
            "scanned": self.scanned,
            "vulnerabilities": self.vulnerabilities.values().collect::<Vec<_>>(),
            "licences": self.licences.values().collect::<Vec<_>>(),
            "advisory_db": advisory_db,
        })
    }
}

/// What runs in one environment of one workload: the deployment that reached it
/// last, whether it really runs there, and a newer attempt that did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentStatus {
    pub deployment: DeploymentRecord,
    /// For the `local` target: its own sandbox (by its token) runs and holds its
    /// port. Other targets are taken at their recorded word.
    pub running: bool,
    /// The deployment went past the gate by a break-glass override: its
    /// reason. It stays marked until a clean promotion (or rollback) replaces it.
    pub overridden: Option<String>,
    /// The newest record, when it is not `deployment` (a failed or interrupted
    /// deploy: what was tried, and why it is not what runs).
    pub last_attempt: Option<DeploymentRecord>,
}

/// The most deployments [`status`] looks through.
pub const STATUS_SCAN: usize = 10_000;

/// What runs where, since when, by whom (`cairn status`, `GET /api/environments`):
/// per (workload, environment), newest first. Reconcile first
/// ([`Promoter::reconcile`]) for the truth about interrupted promotions.
pub fn status(data: &DataDir, store: &dyn Store) -> Result<Vec<EnvironmentStatus>, EngineError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut rows = Vec::new();
    let all = store.deployments(None, None, STATUS_SCAN)?;
    for newest in &all {
        if !seen.insert((newest.workload.clone(), newest.environment.clone())) {
            continue;
        }
        let current = all.iter().find(|d| {
            d.workload == newest.workload
                && d.environment == newest.environment
                && matches!(
                    d.status,
                    DeploymentStatus::Deployed | DeploymentStatus::NotRunning
                )
        });
        let deployment = current.unwrap_or(newest).clone();
        let running = deployment.status == DeploymentStatus::Deployed
            && match deployment.target.as_str() {
                "local" => {
                    deploy_local::current(data, &deployment.workload, &deployment.environment)?
                        .is_some_and(|l| {
                            let same = match &deployment.token {
                                Some(t) => l.token().as_deref() == Some(t.as_str()),
                                None => l.digest == deployment.digest,
                            };
                            same && l.serves()
                        })
                }
                _ => true,
            };
        let last_attempt = (newest.token != deployment.token || current.is_none())
            .then(|| newest.clone())
            .filter(|n| n != &deployment);
        let overridden = if deployment.kind == "override" {
            let reason = store
                .changes(Some(&deployment.workload), STATUS_SCAN)?
                .into_iter()
                .find(|(_, c)| {
                    c.kind == "override"
                        && c.environment == deployment.environment
                        && c.log_index == deployment.log_index
                })
                .and_then(|(_, c)| {
                    let record: Value = serde_json::from_str(&c.json).ok()?;
                    record["decision"]["overridden"].as_str().map(str::to_owned)
                });
            Some(reason.unwrap_or_else(|| "(reason not found)".to_owned()))
        } else {
            None
        };
        rows.push(EnvironmentStatus {
            deployment,
            running,
            overridden,
            last_attempt,
        });
    }
    Ok(rows)
}
