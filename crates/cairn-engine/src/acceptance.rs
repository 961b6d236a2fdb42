//! Accepting an exposure: an authorised identity hands in an OpenVEX document
//! (`not_affected` with its justification, or `affected` with an
//! `action_statement` saying how the risk is handled) and an expiry; cairn
//! checks that the document applies to open exposures of the digest in the
//! environment, then signs an acceptance statement about the digest — the
//! OpenVEX document as given, the environment, who accepted it, until when —
//! records it in the audit log and keeps it as evidence (`certify.rs`), as it
//! does for reviews: it vouches that it authenticated the identity.
//!
//! Exposures read acceptances back only from evidence whose signature and log
//! entry verify against cairn's keys (`verified.rs`) and whose signed subject
//! is the digest; the store's row is only the index. An acceptance applies to
//! an exposure of its environment when its VEX statement applies to the
//! exposure's advisory (or an alias) and package purl (`cairn_vuln::vex`). Past
//! its expiry it no longer does: the exposure is open again, and says so.

use std::collections::BTreeMap;

use cairn_evidence::{Predicate, Statement, Subject};
use cairn_model::config::OrgConfig;
use cairn_model::time::rfc3339_utc;
use cairn_policy::{Action, Identity, Scope};
use cairn_store::Store;
use cairn_vuln::vex::{VexDocument, VexSet, VexStatus};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditLog, LOCK_WAIT};
use crate::certify::{Filed, sign_and_keep};
use crate::exposures::{Exposure, ExposureFilter, ExposureState};
use crate::keys::KeyStore;
use crate::{DataDir, EngineError};

/// The predicate type of an acceptance.
pub const ACCEPTANCE_PREDICATE_TYPE: &str = cairn_evidence::types::EXPOSURE_ACCEPTANCE_V1;

/// The longest an acceptance may last: a year.
pub const MAX_ACCEPTANCE_MS: i64 = 365 * 24 * 3_600_000;

/// What cairn signs about a digest when an exposure is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcceptancePredicate {
    pub workload: String,
    pub environment: String,
    pub accepted_by: String,
    pub accepted_at: String,
    /// The expiry, RFC 3339, and in ms since the epoch.
    pub expires: String,
    pub expires_ms: i64,
    /// The OpenVEX document, as handed in.
    pub openvex: serde_json::Value,
}

impl Predicate for AcceptancePredicate {
    const PREDICATE_TYPE: &'static str = ACCEPTANCE_PREDICATE_TYPE;
}

/// An acceptance as an exposure shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub by: String,
    pub expires_ms: i64,
    /// The evidence (signed bundle) it was read from.
    pub evidence: i64,
    /// The OpenVEX document's `@id` and the applying statement's status.
    pub vex_id: String,
    pub status: String,
    /// Past its expiry: the exposure is open again.
    pub expired: bool,
}

/// What [`accept`] recorded.
#[derive(Debug)]
pub struct Accepted {
    pub exposures: Vec<Exposure>,
    pub evidence: i64,
    pub log_index: u64,
    pub expires_ms: i64,
}

/// Why a statement may not accept an exposure (`None`: it may).
fn refusal(status: VexStatus, action: Option<&str>) -> Option<String> {
    match status {
        VexStatus::NotAffected => None,
        VexStatus::Affected if action.is_some_and(|a| !a.trim().is_empty()) => None,
        VexStatus::Affected => Some(
            "an `affected` statement accepts an exposure only with an `action_statement` saying how the risk is handled".into(),
        ),
        VexStatus::Fixed => Some("a `fixed` statement accepts nothing: deploy the digest with the fix".into()),
        VexStatus::UnderInvestigation => {
            Some("an `under_investigation` statement accepts nothing".into())
        }
    }
}

/// The advisory's id and aliases (from its stored record).
fn ids_of(store: &dyn Store, advisory: &str) -> Result<Vec<String>, EngineError> {
    let mut ids = vec![advisory.to_owned()];
    if let Some(stored) = store.advisory(advisory)?
        && let Ok(a) = cairn_vuln::Advisory::parse(&stored.json)
    {
        ids.extend(a.aliases);
    }
    Ok(ids)
}

/// Accepts the open exposures of `digest` in `environment` that the OpenVEX
/// document `vex` applies to, until `now_ms + duration_ms`, as `actor`
/// (authorised for `override` at the exposure's workload and environment;
/// `None` only while the organisation has no identities).
#[allow(clippy::too_many_arguments)]
pub fn accept(
    data: &DataDir,
    store: &dyn Store,
    org: &OrgConfig,
    actor: Option<&Identity>,
    environment: &str,
    digest: &str,
    vex: &[u8],
    duration_ms: i64,
    now_ms: i64,
) -> Result<Accepted, EngineError> {
    let refuse = |why: String| EngineError::AcceptanceRefused(why);
    if !(1000..=MAX_ACCEPTANCE_MS).contains(&duration_ms) {
        return Err(refuse(
            "an acceptance lasts from 1 second to 365 days".to_owned(),
        ));
    }
    if org.position(environment).is_none() {
        return Err(refuse(format!(
            "`{environment}` is not an environment of the promotion path ({})",
            org.promotion_path.join(" → ")
        )));
    }
    let doc = VexDocument::parse(vex).map_err(|e| {
        refuse(format!(
            "the OpenVEX document is refused: {}",
            cairn_model::error_chain(&e)
        ))
    })?;
    let openvex: serde_json::Value = serde_json::from_slice(vex)
        .map_err(|e| refuse(format!("the OpenVEX document is not JSON: {e}")))?;
    let mut set = VexSet::new();
    set.add(&doc);
    let open: Vec<Exposure> = list_unaccepted_open(store, org, environment, now_ms)?
        .into_iter()
        .filter(|e| e.digest == digest)
        .collect();
    if open.is_empty() {
        return Err(refuse(format!(
            "{digest} has no open exposure in {environment}"
        )));
    }
    let mut accepted = Vec::new();
    let mut reasons = Vec::new();
    for e in open {
        let ids = ids_of(store, &e.advisory)?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        match set.verdict(&refs, &e.package) {
            None => reasons.push(format!(
                "{} {}: no statement of the document applies",
                e.advisory, e.package
            )),
            Some(v) => match refusal(v.statement.status, v.statement.action_statement.as_deref()) {
                Some(why) => reasons.push(format!("{} {}: {why}", e.advisory, e.package)),
                None => accepted.push(e),
            },
        }
    }
    if accepted.is_empty() {
        return Err(refuse(format!(
            "the OpenVEX document accepts no open exposure of {digest} in {environment}: {}",
            reasons.join("; ")
        )));
    }
    let workload = accepted[0].workload.clone();
    let actor_name = match actor {
        Some(actor) => {
            crate::access::authorize(
                store,
                actor,
                Action::Override,
                &Scope {
                    workload: Some(workload.clone()),
                    environment: Some(environment.to_owned()),
                },
            )?;
            actor.name.clone()
        }
        None => "local (no identities)".to_owned(),
    };
    let hex = cairn_evidence::Digest::parse(digest)
        .map_err(|_| refuse(format!("{digest} is not a sha256 digest")))?;
    let expires_ms = now_ms.saturating_add(duration_ms);
    let statement = Statement::new(
        vec![Subject::sha256(workload.clone(), hex)],
        AcceptancePredicate {
            workload: workload.clone(),
            environment: environment.to_owned(),
            accepted_by: actor_name,
            accepted_at: rfc3339_utc(now_ms),
            expires: rfc3339_utc(expires_ms),
            expires_ms,
            openvex,
        },
    )?;
    let key = {
        let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
        KeyStore::new(data).load_or_create(&audit)?.0
    };
    let (evidence, log_index) = sign_and_keep(
        data,
        store,
        &key,
        &statement,
        Filed {
            run: None,
            stage: None,
            subject_name: &workload,
            subject_digest: digest,
        },
    )?;
    Ok(Accepted {
        exposures: accepted,
        evidence,
        log_index,
        expires_ms,
    })
}

fn list_unaccepted_open(
    store: &dyn Store,
    org: &OrgConfig,
    environment: &str,
    now_ms: i64,
) -> Result<Vec<Exposure>, EngineError> {
    Ok(crate::exposures::list_unaccepted(
        store,
        org,
        &ExposureFilter {
            environment: Some(environment.to_owned()),
            ..ExposureFilter::default()
        },
        now_ms,
    )?
    .into_iter()
    .filter(|e| e.state == ExposureState::Open)
    .collect())
}

/// One verified acceptance.
struct Verified {
    evidence: i64,
    predicate: AcceptancePredicate,
    set: VexSet,
    vex_id: String,
}

/// Applies the verified acceptances to `exposures`: an open one a live
/// acceptance applies to becomes accepted; one whose acceptance expired stays
/// open and carries it (marked expired). Bundles that do not verify are not
/// believed (the exposure stays open).
pub(crate) fn apply(
    store: &dyn Store,
    data: &DataDir,
    exposures: &mut [Exposure],
    now_ms: i64,
) -> Result<(), EngineError> {
    let mut by_digest: BTreeMap<String, Vec<Verified>> = BTreeMap::new();
    let mut trust: Option<crate::verified::Trust> = None;
    for e in exposures.iter() {
        if e.state != ExposureState::Open || by_digest.contains_key(&e.digest) {
            continue;
        }
        let rows: Vec<_> = store
            .evidence_for_subject(&e.digest)?
            .into_iter()
            .filter(|r| r.predicate_type == ACCEPTANCE_PREDICATE_TYPE)
            .collect();
        let mut found = Vec::new();
        for row in rows {
            if trust.is_none() {
                trust = Some(crate::verified::Trust::load(data)?.0);
            }
            let Some(t) = trust.as_ref() else { continue };
            let Ok((statement, _)) = t.statement(&row.bundle) else {
                continue;
            };
            let wanted = cairn_evidence::Digest::parse(&e.digest).ok();
            let about = wanted.is_some()
                && statement["subject"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| crate::verified::subject_digest(s) == wanted);
            if !about || statement["predicateType"] != ACCEPTANCE_PREDICATE_TYPE {
                continue;
            }
            let Ok(predicate) =
                serde_json::from_value::<AcceptancePredicate>(statement["predicate"].clone())
            else {
                continue;
            };
            let Ok(bytes) = serde_json::to_vec(&predicate.openvex) else {
                continue;
            };
            let Ok(doc) = VexDocument::parse(&bytes) else {
                continue;
            };
            let mut set = VexSet::new();
            set.add(&doc);
            found.push(Verified {
                evidence: row.id,
                predicate,
                set,
                vex_id: doc.id,
            });
        }
        by_digest.insert(e.digest.clone(), found);
    }
    let mut ids_cache: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in exposures.iter_mut() {
        let Some(found) = by_digest.get(&e.digest) else {
            continue;
        };
        if found.is_empty() {
            continue;
        }
        if !ids_cache.contains_key(&e.advisory) {
            ids_cache.insert(e.advisory.clone(), ids_of(store, &e.advisory)?);
        }
        let ids: Vec<&str> = ids_cache[&e.advisory].iter().map(String::as_str).collect();
        // The acceptance that lasts longest among those that apply.
        let best = found
            .iter()
            .filter(|v| {
                v.predicate.environment == e.environment && v.predicate.workload == e.workload
            })
            .filter_map(|v| {
                let verdict = v.set.verdict(&ids, &e.package)?;
                refusal(
                    verdict.statement.status,
                    verdict.statement.action_statement.as_deref(),
                )
                .is_none()
                .then(|| (v, verdict.statement.status.as_str()))
            })
            .max_by_key(|(v, _)| v.predicate.expires_ms);
        if let Some((v, status)) = best {
            let expired = v.predicate.expires_ms <= now_ms;
            if !expired {
                e.state = ExposureState::Accepted;
            }
            e.acceptance = Some(Acceptance {
                by: v.predicate.accepted_by.clone(),
                expires_ms: v.predicate.expires_ms,
                evidence: v.evidence,
                vex_id: v.vex_id.clone(),
                status: status.to_owned(),
                expired,
            });
        }
    }
    Ok(())
}
