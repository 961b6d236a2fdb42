//! The gate's input for one request (see cairn-policy's `GateInput`): built
//! only from what cairn can verify — evidence about the digest whose signature
//! and log entry check against cairn's keys, signed reviews of the image's exact
//! commit, the catalog, the environment's history, and the actor's roles.

use cairn_evidence::Predicate;
use cairn_evidence::review::{Review, commit_subject_digest};
use cairn_model::config::DeployTarget;
use cairn_policy::{Identity, Scope};
use serde_json::{Value, json};

use super::{DECISION_PREDICATE, Intent, Promoter, Request};
use crate::EngineError;
use crate::host::now_ms;
use crate::images::deploy_local;
use crate::runner::BUILDER_ID;
use crate::verified::{self, Trust};

impl Promoter<'_> {
    /// The gate's input for this request (see cairn-policy's `GateInput`).
    pub(super) fn gate_input(
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
        let review_subject = format!("sha256:{}", commit_subject_digest(&commit).to_hex());
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
