//! The gate's input for one request, as `cairn_policy::GateInput` (the typed
//! contract, `deny_unknown_fields`): built only from what cairn can verify —
//! evidence about the digest whose signature and log entry check against
//! cairn's keys, signed reviews of the image's exact commit, the catalog, the
//! environment's history, and the actor's roles.

use std::collections::{BTreeMap, BTreeSet};

use cairn_evidence::Predicate;
use cairn_evidence::review::{Review as SignedReview, commit_subject_digest};
use cairn_model::config::DeployTarget;
use cairn_policy::{
    Actor, AdvisoryDb, Artifact, Author, BaseImage, ChangeCommit, Environment, Evidence, GateInput,
    Identity, Override, PreviousEnvironment, Review, Scope, Verdict, Verification,
};
use serde_json::Value;

use super::findings::GateFindings;
use super::{DECISION_PREDICATE, Promoter, Request};
use crate::EngineError;
use crate::deploy::local as deploy_local;
use crate::host::now_ms;
use crate::verified::{self, Checked, Failure, Trust};

/// What the verified statements about the digest say, gathered in one pass.
#[derive(Default)]
struct FromEvidence {
    evidence: Vec<Evidence>,
    /// The scan's vulnerabilities and the SBOM's licences.
    findings: GateFindings,
    /// The commits and bases cairn's signed provenance names (the image row
    /// is only where to look).
    commits: BTreeSet<String>,
    bases: BTreeSet<String>,
    /// Who ran what produced the artifact (never an approver of it), and why.
    authors: BTreeMap<String, String>,
    /// A verified VSA says cairn's gate passed this digest here before.
    ran_before: bool,
    /// The change's commits, as the provenance signs them.
    change: BTreeMap<String, cairn_evidence::ChangeCommit>,
}

impl Promoter<'_> {
    /// The gate's input for this request.
    pub(super) fn gate_input(
        &self,
        req: &Request,
        record: &cairn_model::ImageRecord,
        digest: &str,
        position: usize,
        trust: &Trust,
    ) -> Result<GateInput, EngineError> {
        let store = self.store;
        // Every bundle filed under the digest is checked; what the gate reads
        // comes out of the signed statements, and a bundle that fails is named
        // (`verification.failures`; the default policy denies on it).
        let (checked, mut failures) =
            verified::about_artifact(store, trust, digest, &req.workload)?;
        let mut facts = from_evidence(&checked, req, digest, &self.builder_id()?);
        let advisory_db =
            self.rematch_current(&checked, &mut facts.findings, &mut failures, digest)?;
        let commit = signed_commit(record, &facts, digest, &mut failures);
        self.change_authors(&facts.change, &mut facts.authors)?;
        let reviews = self.signed_reviews(req, &commit, trust, &mut failures)?;
        let previous = self.previous_environment(req, position, digest)?;
        let base_image = self.base_image(record)?;
        let require_signed_commits = self.org.require_signed_commits.contains(&req.environment);
        let roles = role_names(&crate::access::bindings(store)?, &req.actor, &scope_of(req));
        Ok(GateInput {
            artifact: Artifact {
                digest: digest.to_owned(),
                workload: req.workload.clone(),
                commit,
                image_references: base_image.1,
                base_image: Some(base_image.0),
                change: facts
                    .change
                    .values()
                    .map(|c| ChangeCommit {
                        commit: c.commit.clone(),
                        signed_by: c.signed_by.clone(),
                    })
                    .collect(),
            },
            evidence: facts.evidence,
            reviews,
            environment: Environment {
                name: req.environment.clone(),
                position: u32::try_from(position).unwrap_or(u32::MAX),
                previous,
                ran_before: facts.ran_before,
                require_signed_commits,
            },
            intent: req.intent,
            verification: Verification {
                failures: failures.iter().map(Failure::to_input).collect(),
            },
            authors: facts
                .authors
                .into_iter()
                .map(|(identity, why)| Author { identity, why })
                .collect(),
            findings: facts.findings.into_input(advisory_db),
            actor: Actor {
                identity: req.actor.name.clone(),
                kind: kind_name(&req.actor).to_owned(),
                roles,
            },
            override_: req
                .override_reason
                .as_ref()
                .map(|r| Override { reason: r.clone() }),
        })
    }

    /// What the advisories stored now say about the components of the
    /// verified SBOM: a finding imported after the build counts too. Adds them
    /// to `findings`; returns the database's state and what is new since the scan.
    fn rematch_current(
        &self,
        checked: &[Checked],
        findings: &mut GateFindings,
        failures: &mut Vec<Failure>,
        digest: &str,
    ) -> Result<AdvisoryDb, EngineError> {
        let state = crate::current::advisory_db_state(self.store)?;
        let mut new_since_scan = Vec::new();
        let boms: Vec<&Value> = checked
            .iter()
            .filter(|c| c.predicate_type() == cairn_evidence::sbom::CycloneDxBom::PREDICATE_TYPE)
            .map(|c| &c.statement["predicate"])
            .collect();
        if boms.is_empty() && findings.scanned {
            failures.push(Failure {
                evidence: None,
                what: "sbom".to_owned(),
                reason: format!(
                    "no verified SBOM about {digest}: the advisories stored now cannot be matched against it"
                ),
            });
        }
        for bom in boms {
            match crate::current::rematch_signed_sbom(self.store, bom) {
                Ok(current) => {
                    for f in current {
                        if findings.add_current(&f) {
                            new_since_scan.push(f.id);
                        }
                    }
                }
                Err(why) => failures.push(Failure {
                    evidence: None,
                    what: "sbom".to_owned(),
                    reason: why,
                }),
            }
        }
        new_since_scan.sort();
        new_since_scan.dedup();
        Ok(AdvisoryDb {
            count: state.count,
            newest_modified: state.newest_modified,
            digest: state.digest,
            new_since_scan,
        })
    }

    /// Who signed or authored the change's commits (as cairn's provenance
    /// signs them): a verified signature names an identity; a commit's author
    /// or committer e-mail only adds the identity of that name.
    fn change_authors(
        &self,
        change: &BTreeMap<String, cairn_evidence::ChangeCommit>,
        authors: &mut BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
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
                    && self
                        .store
                        .identity(email)?
                        .is_some_and(|r| crate::access::is_active(&r, now))
                {
                    authors.entry(email.to_owned()).or_insert_with(|| {
                        format!("{email} is the git {role} of commit {short} of the change")
                    });
                }
            }
        }
        Ok(())
    }

    /// Signed reviews of the image's exact commit; a bundle filed as one that
    /// does not verify, or is not a review, is a failure.
    fn signed_reviews(
        &self,
        req: &Request,
        commit: &str,
        trust: &Trust,
        failures: &mut Vec<Failure>,
    ) -> Result<Vec<Review>, EngineError> {
        let store = self.store;
        let bindings = crate::access::bindings(store)?;
        let review_subject = commit_subject_digest(commit).to_string();
        let mut reviews = Vec::new();
        for e in store.evidence_for_subject(&review_subject)? {
            let mut fail = |reason: String| {
                failures.push(Failure {
                    evidence: Some(e.id),
                    what: e.predicate_type.chars().take(200).collect(),
                    reason,
                });
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
            let review = match SignedReview::from_statement_json(&text) {
                Ok(review) => review,
                Err(why) => {
                    fail(format!(
                        "it is filed as a review of commit {commit}, but it is not one: {why}"
                    ));
                    continue;
                }
            };
            let r = &review.predicate;
            let roles = match store.identity(&r.reviewer)? {
                Some(id) => role_names(
                    &bindings,
                    &Identity {
                        name: id.name.clone(),
                        kind: policy_kind(id.kind),
                    },
                    &scope_of(req),
                ),
                None => Vec::new(),
            };
            reviews.push(Review {
                commit: r.commit.clone(),
                reviewer: r.reviewer.clone(),
                reviewer_roles: roles,
                author: review
                    .predicate
                    .author_email()
                    .unwrap_or(&r.author)
                    .to_owned(),
                verdict: match r.verdict {
                    cairn_evidence::review::Verdict::Approve => Verdict::Approve,
                    cairn_evidence::review::Verdict::RequestChanges => Verdict::RequestChanges,
                },
            });
        }
        Ok(reviews)
    }

    /// The environment before this one on the path: whether this digest runs
    /// there, and is healthy. `None` for the first.
    fn previous_environment(
        &self,
        req: &Request,
        position: usize,
        digest: &str,
    ) -> Result<Option<PreviousEnvironment>, EngineError> {
        if position == 0 {
            return Ok(None);
        }
        let name = &self.org.promotion_path[position - 1];
        let there = self.store.current_deployment(&req.workload, name)?;
        let deployed = there.as_ref().is_some_and(|d| d.digest == digest);
        let healthy = deployed && self.healthy(&req.workload, name)?;
        Ok(Some(PreviousEnvironment {
            name: name.clone(),
            deployed,
            healthy,
        }))
    }

    /// The image's base as the catalog knows it, and the image references the
    /// build used: the base's origin when it came from a registry (the
    /// no-docker-hub rule reads these).
    fn base_image(
        &self,
        record: &cairn_model::ImageRecord,
    ) -> Result<(BaseImage, Vec<String>), EngineError> {
        let base = self
            .store
            .base_history(&record.base_name)?
            .into_iter()
            .find(|b| b.digest == record.base_digest);
        let image_references = base
            .iter()
            .map(|b| b.source.clone())
            .filter(|s| {
                !(s.starts_with("rootfs:") || s.starts_with("oci:") || s.starts_with("created:"))
            })
            .collect();
        Ok((
            BaseImage {
                name: record.base_name.clone(),
                digest: record.base_digest.clone(),
                in_catalog: base.is_some(),
            },
            image_references,
        ))
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
}

/// One pass over the verified statements about `digest`.
fn from_evidence(checked: &[Checked], req: &Request, digest: &str, builder: &str) -> FromEvidence {
    let mut out = FromEvidence::default();
    for c in checked {
        if c.predicate_type() == DECISION_PREDICATE {
            continue;
        }
        if c.predicate_type() == cairn_evidence::vsa::VSA_PREDICATE_TYPE {
            out.ran_before |= passed_here(&c.statement, &req.workload, &req.environment, digest);
        }
        if c.facts.builder.as_deref() == Some(builder) {
            out.commits.extend(c.facts.commit.clone());
            out.bases.extend(c.facts.bases.iter().cloned());
            for commit in &c.facts.change {
                out.change
                    .entry(commit.commit.clone())
                    .or_insert_with(|| commit.clone());
            }
        }
        if let Some(who) = &c.facts.triggered_by {
            let run = c.facts.run.as_deref().unwrap_or("?");
            out.authors
                .entry(who.clone())
                .or_insert_with(|| format!("{who} ran run {run}, which produced this artifact"));
        }
        out.findings.take(&c.statement);
        out.evidence.push(Evidence {
            predicate_type: c.predicate_type().to_owned(),
            signer: c.signer.clone(),
            subject_digest: digest.to_owned(),
            stage_kind: c.facts.stage_kind.clone(),
            run: c.facts.run.clone(),
            workload: c.facts.workload.clone(),
            commit: c.facts.commit.clone(),
            predicate: c.statement["predicate"].clone(),
        });
    }
    out
}

/// The artifact's commit: the one cairn's signed provenance names (the image
/// row's when none does). A provenance naming several, or a row its
/// provenance contradicts (commit or base), is a failure.
fn signed_commit(
    record: &cairn_model::ImageRecord,
    facts: &FromEvidence,
    digest: &str,
    failures: &mut Vec<Failure>,
) -> String {
    let commits = &facts.commits;
    let commit = match commits.len() {
        0 => record.commit.clone(),
        1 => commits.iter().next().cloned().unwrap_or_default(),
        _ => {
            failures.push(Failure {
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
        failures.push(Failure {
            evidence: None,
            what: "image record".to_owned(),
            reason: format!(
                "the store says {digest} was built from commit {}, but its signed provenance says {commit}",
                record.commit
            ),
        });
    }
    if !facts.bases.is_empty() && !facts.bases.contains(&record.base_digest) {
        failures.push(Failure {
            evidence: None,
            what: "image record".to_owned(),
            reason: format!(
                "the store says {digest} is built on {}, but its signed provenance names {}",
                record.base_digest,
                facts.bases.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    commit
}

fn scope_of(req: &Request) -> Scope {
    Scope {
        workload: Some(req.workload.clone()),
        environment: Some(req.environment.clone()),
    }
}

fn role_names(
    bindings: &cairn_policy::Bindings,
    identity: &Identity,
    scope: &Scope,
) -> Vec<String> {
    bindings
        .roles_at(identity, scope)
        .into_iter()
        .map(|r| r.as_str().to_owned())
        .collect()
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
