//! Artifacts, by digest: every signed bundle about one (`sha256:<64 hex>`), its
//! CycloneDX SBOM, and its vulnerability findings. An artifact belongs to the
//! workloads whose images or runs it came from; seeing it needs View on each of
//! them, or an organisation-wide View when none is known (a catalog base).

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::get;
use cairn_evidence::Predicate;
use cairn_evidence::sbom::CycloneDxBom;
use cairn_model::EvidenceRecord;
use cairn_policy::{Action, Scope};
use cairn_store::{FindingFilter, FindingState, StoredFinding};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Params, evidence_json};
use crate::auth::{Actor, Caller};
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::{AppState, Shared};

/// The most images of one digest looked at to find its workloads.
const MAX_IMAGES: usize = 100;
/// The digest the routes' examples use.
#[cfg(test)]
const EXAMPLE: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

pub fn routes() -> Vec<Route> {
    let view = Access::Role(Action::View);
    vec![
        Route::new(
            Method::GET,
            "/api/artifacts/{digest}/evidence",
            view,
            get(evidence),
        )
        .summary("Every signed bundle about an artifact (`sha256:<hex>`), bundles included")
        .tag("artifacts")
        .example("/api/artifacts/sha256:0000000000000000000000000000000000000000000000000000000000000000/evidence"),
        Route::new(Method::GET, "/api/artifacts/{digest}/sbom", view, get(sbom))
            .summary("An artifact's CycloneDX SBOM (the predicate of its signed SBOM evidence)")
            .tag("artifacts")
            .example("/api/artifacts/sha256:0000000000000000000000000000000000000000000000000000000000000000/sbom"),
        Route::new(
            Method::GET,
            "/api/artifacts/{digest}/findings",
            view,
            get(findings),
        )
        .summary("Vulnerability findings in an artifact (filter by state, severity)")
        .tag("artifacts")
        .example("/api/artifacts/sha256:0000000000000000000000000000000000000000000000000000000000000000/findings"),
    ]
}

/// `text` when it is exactly `sha256:` and 64 lowercase hex digits.
pub fn parse_digest(text: &str) -> Result<String, ApiError> {
    if cairn_model::Digest::is_valid(text) {
        Ok(text.to_owned())
    } else {
        let shown: String = text.chars().take(80).collect();
        Err(ApiError::bad_request(format!(
            "`{shown}` is not an artifact digest: use `sha256:` and 64 lowercase hex digits"
        )))
    }
}

/// Checks `actor` may view the artifact `digest`: View on every workload its
/// images, its evidence's runs and its SBOMs (`sbom_workloads`, when the
/// caller reads findings) name; organisation-wide View when they name none.
fn authorize_artifact(
    s: &Shared,
    actor: &Actor,
    digest: &str,
    evidence: &[EvidenceRecord],
    sbom_workloads: &[String],
) -> Result<(), ApiError> {
    let mut workloads = BTreeSet::new();
    for image in s.store.images(None, Some(digest), MAX_IMAGES)? {
        workloads.insert(image.workload);
    }
    let runs: BTreeSet<_> = evidence.iter().filter_map(|e| e.run).collect();
    for run in runs {
        if let Some(run) = s.store.run(run)? {
            workloads.insert(run.workload);
        }
    }
    workloads.extend(sbom_workloads.iter().cloned());
    if workloads.is_empty() {
        return s.authorize(actor, Action::View, &Scope::organisation());
    }
    for workload in workloads {
        s.authorize(actor, Action::View, &Scope::workload(workload))?;
    }
    Ok(())
}

/// The first `limit` findings about `digest` (of every state, or of `state`).
fn findings_of(
    s: &Shared,
    digest: &str,
    state: Option<FindingState>,
    limit: usize,
) -> Result<Vec<StoredFinding>, ApiError> {
    Ok(s.store.findings(&FindingFilter {
        state,
        subject_digest: Some(digest.to_owned()),
        limit: Some(limit),
        ..FindingFilter::default()
    })?)
}

/// The most findings `GET /api/artifacts/{digest}/findings` returns, and how many
/// when the query names no `limit`.
const MAX_FINDINGS: usize = 10_000;
const DEFAULT_FINDINGS: usize = 1_000;

/// The statement a stored bundle carries (read as stored, not re-verified:
/// the engine verified and logged it before keeping it; `cairn verify` checks).
fn statement_of(e: &EvidenceRecord) -> Result<Value, ApiError> {
    let bundle = cairn_evidence::Bundle::from_json(&e.bundle).map_err(|err| {
        ApiError::internal(&format!("stored evidence {} is not a bundle: {err}", e.id))
    })?;
    serde_json::from_slice(&bundle.envelope.payload).map_err(|err| {
        ApiError::internal(&format!("stored evidence {} has no statement: {err}", e.id))
    })
}

async fn evidence(
    State(state): State<AppState>,
    caller: Caller,
    Path(digest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            let digest = parse_digest(&digest)?;
            let records = s.store.evidence_for_subject(&digest)?;
            authorize_artifact(s, &actor, &digest, &records, &[])?;
            let mut items = Vec::with_capacity(records.len());
            for e in &records {
                let mut item = evidence_json(e);
                item["bundle"] = serde_json::from_slice(&e.bundle).map_err(|err| {
                    ApiError::internal(&format!("stored evidence {} is not JSON: {err}", e.id))
                })?;
                items.push(item);
            }
            Ok(Json(json!({ "digest": digest, "evidence": items })))
        })
        .await
}

async fn sbom(
    State(state): State<AppState>,
    caller: Caller,
    Path(digest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            let digest = parse_digest(&digest)?;
            let records = s.store.evidence_for_subject(&digest)?;
            authorize_artifact(s, &actor, &digest, &records, &[])?;
            let newest = records
                .iter()
                .rev()
                .find(|e| e.predicate_type == CycloneDxBom::PREDICATE_TYPE)
                .ok_or_else(|| ApiError::not_found(format!("{digest} has no SBOM evidence")))?;
            let mut statement = statement_of(newest)?;
            Ok(Json(statement["predicate"].take()))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    /// `open`, `suppressed` or `fixed` (default: every state).
    state: Option<String>,
    /// `low`, `medium`, `high`, `critical` (default: every severity).
    severity: Option<String>,
    /// At most this many (default 1000, at most 10000), the first by SBOM and
    /// advisory.
    limit: Option<usize>,
}

/// The state a query names.
pub fn parse_state(state: Option<&str>) -> Result<Option<FindingState>, ApiError> {
    state
        .map(|name| {
            FindingState::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{name}` is not a finding state: use open, suppressed or fixed"
                ))
            })
        })
        .transpose()
}

/// Whether finding `f` has `severity` (any, when `None`).
pub fn has_severity(f: &StoredFinding, severity: Option<&str>) -> bool {
    severity.is_none_or(|want| {
        f.severity
            .as_deref()
            .is_some_and(|have| have.eq_ignore_ascii_case(want))
    })
}

async fn findings(
    State(state): State<AppState>,
    caller: Caller,
    Path(digest): Path<String>,
    q: Result<Params<FindingsQuery>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            let Params(q) = q?;
            let digest = parse_digest(&digest)?;
            let wanted = parse_state(q.state.as_deref())?;
            let limit = q.limit.unwrap_or(DEFAULT_FINDINGS).min(MAX_FINDINGS);
            // Authorised by the workloads of every SBOM of the digest (every
            // finding's workload is its SBOM's), not of the findings read.
            let sbom_workloads: Vec<String> = s
                .store
                .sboms_about(&digest)?
                .into_iter()
                .filter_map(|sbom| sbom.workload)
                .collect();
            let records = s.store.evidence_for_subject(&digest)?;
            authorize_artifact(s, &actor, &digest, &records, &sbom_workloads)?;
            let all = if q.severity.is_some() {
                // Severity is filtered here, after the store's limit would cut.
                findings_of(s, &digest, wanted, MAX_FINDINGS)?
            } else {
                findings_of(s, &digest, wanted, limit)?
            };
            let org = cairn_engine::load_org(s.config.platform_dir.as_deref())?;
            let running = cairn_engine::exposures::running(&*s.store, &org)?;
            let items: Vec<Value> = all
                .iter()
                .filter(|f| wanted.is_none_or(|w| f.state == w))
                .filter(|f| has_severity(f, q.severity.as_deref()))
                .take(limit)
                .map(|f| cairn_engine::wire::finding_json_running(f, &running))
                .collect();
            Ok(Json(json!({ "digest": digest, "findings": items })))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_strict() {
        assert!(parse_digest(EXAMPLE).is_ok());
        for bad in [
            "",
            "sha256:",
            "sha256:abc",
            "SHA256:0000000000000000000000000000000000000000000000000000000000000000",
            "sha256:000000000000000000000000000000000000000000000000000000000000000A",
            "sha256:00000000000000000000000000000000000000000000000000000000000000000",
            "sha512:0000000000000000000000000000000000000000000000000000000000000000",
            "sha256:000000000000000000000000000000000000000000000000000000000000000g",
            " sha256:000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(parse_digest(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn examples_use_a_valid_digest() {
        for route in routes() {
            let digest = route.example.split('/').nth(3).unwrap_or_default();
            assert_eq!(digest, EXAMPLE, "{route:?}");
        }
    }
}
