//! Environments: what runs where (since when, by whom), one environment's
//! deployment history, and changing them — a promotion or a rollback through the
//! engine's `Promoter` (authorise → gate over verified evidence → signed
//! decision → audit log → deploy → VSA → change record), or an undeploy (as
//! `cairn undeploy`: authorised as a promotion, logged, then stopped). A gate
//! denial deploys nothing and is answered 422 with the gate's reasons; so is an
//! undeploy where nothing is deployed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::{get, post};
use cairn_engine::promotion::{Intent, Outcome, Promoter, Request};
use cairn_engine::wire::{deployment_json, outcome_json, status_json};
use cairn_policy::{Action, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Body, Params};
use crate::auth::{Actor, Caller};
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::{AppState, Shared};

/// The most deployments one request returns.
const MAX_DEPLOYMENTS: usize = 1_000;
const DEFAULT_LIMIT: usize = 100;
/// Longest name, image reference or override reason accepted.
const MAX_TEXT: usize = 4096;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/environments",
            Access::Role(Action::View),
            get(list),
        )
        .summary("What runs where: each workload's current deployment per environment")
        .tag("environments"),
        Route::new(
            Method::GET,
            "/api/environments/{env}/deployments",
            Access::Role(Action::View),
            get(history),
        )
        .summary("An environment's deployments, newest first (filter by workload)")
        .tag("environments")
        .example("/api/environments/staging/deployments"),
        Route::new(
            Method::POST,
            "/api/promotions",
            Access::Role(Action::Promote),
            post(promote),
        )
        .summary("Promote an image to an environment through the gate (422 with the reasons when denied)")
        .tag("environments")
        .example_body(r#"{"workload":"hello","image":"sha256:0000000000000000000000000000000000000000000000000000000000000000","to":"staging"}"#)
        .body_schema(r#"{"type":"object","required":["workload","image","to"],"additionalProperties":false,"properties":{"workload":{"type":"string"},"image":{"type":"string","description":"a digest, a unique digest prefix, or WORKLOAD:COMMIT12"},"to":{"type":"string"},"override":{"type":"string","description":"break-glass: deploy despite a denial, with this reason (flagged)"}}}"#),
        Route::new(
            Method::POST,
            "/api/rollbacks",
            Access::Role(Action::Rollback),
            post(rollback),
        )
        .summary("Roll an environment back to an earlier deployment, through the gate")
        .tag("environments")
        .example_body(r#"{"workload":"hello","env":"staging","to":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}"#)
        .body_schema(r#"{"type":"object","required":["workload","env"],"additionalProperties":false,"properties":{"workload":{"type":"string"},"env":{"type":"string"},"to":{"type":"string","description":"the digest to go back to (default: the previous one)"},"override":{"type":"string"}}}"#),
        Route::new(
            Method::POST,
            "/api/undeploys",
            Access::Role(Action::Promote),
            post(undeploy),
        )
        .summary("Stop what runs of a workload in an environment (logged first; 422 when nothing is deployed)")
        .tag("environments")
        .example_body(r#"{"workload":"hello","env":"staging"}"#)
        .body_schema(r#"{"type":"object","required":["workload","env"],"additionalProperties":false,"properties":{"workload":{"type":"string"},"env":{"type":"string"}}}"#),
    ]
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    state
        .blocking_as(caller, move |s, actor| {
            let visible = s.visible(&actor)?;
            let rows = cairn_engine::promotion::status(&s.config.data, &*s.store)?;
            let items: Vec<Value> = rows
                .iter()
                .filter(|row| visible.includes(&row.deployment.workload))
                .map(status_json)
                .collect();
            Ok(Json(json!(items)))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    workload: Option<String>,
    limit: Option<usize>,
}

async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
    q: Result<Params<HistoryQuery>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking_as(caller, move |s, actor| {
            let Params(q) = q?;
            let limit = q.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_DEPLOYMENTS);
            // One workload: View there; all of them: those the actor may see.
            let visible = match &q.workload {
                Some(w) => {
                    s.authorize(
                        &actor,
                        Action::View,
                        &Scope::environment(w.clone(), env.clone()),
                    )?;
                    crate::auth::Visible::All
                }
                None => s.visible(&actor)?,
            };
            let items: Vec<Value> = s
                .store
                .deployments(q.workload.as_deref(), Some(&env), limit)?
                .iter()
                .filter(|d| visible.includes(&d.workload))
                .map(|d| {
                    let mut item = deployment_json(d);
                    item["previous"] = json!(d.previous_digest);
                    item
                })
                .collect();
            Ok(Json(json!({
                "environment": env,
                "workload": q.workload,
                "deployments": items,
            })))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    workload: String,
    /// A digest, a unique digest prefix, or `WORKLOAD:COMMIT12`.
    image: String,
    /// The environment.
    to: String,
    /// Break-glass: deploy despite a denial, with this reason (logged, flagged).
    #[serde(default, rename = "override")]
    override_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    workload: String,
    env: String,
    /// The digest to go back to (default: what ran before the current one).
    #[serde(default)]
    to: Option<String>,
    #[serde(default, rename = "override")]
    override_reason: Option<String>,
}

fn check_lengths(texts: &[Option<&str>]) -> Result<(), ApiError> {
    if texts.iter().flatten().any(|t| t.len() > MAX_TEXT) {
        return Err(ApiError::bad_request(format!(
            "a field is longer than {MAX_TEXT} bytes"
        )));
    }
    Ok(())
}

/// Runs `request` through the engine's promoter, exactly as `cairn promote`
/// does; a denial is a 422 carrying the outcome (reasons, change, evidence).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UndeployRequest {
    workload: String,
    env: String,
}

/// `f` with a promoter over the server's data directory and org.toml.
fn with_promoter<T>(
    s: &Shared,
    f: impl FnOnce(&Promoter<'_>) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let org = cairn_engine::load_org(s.config.platform_dir.as_deref())?;
    f(&Promoter {
        data: &s.config.data,
        store: &*s.store,
        org: &org,
        platform_dir: s.config.platform_dir.as_deref(),
    })
}

fn run_promoter(s: &Shared, request: &Request) -> Result<Json<Value>, ApiError> {
    let outcome: Outcome = with_promoter(s, |promoter| Ok(promoter.promote(request)?))?;
    if !outcome.decision.allow {
        s.metrics.gate_denied();
        return Err(ApiError::unprocessable(format!(
            "the gate denied {} → {} ({}); nothing was deployed; recorded as change {}",
            request.workload, request.environment, outcome.change.to_digest, outcome.change_id
        ))
        .with(outcome_json(&outcome)));
    }
    Ok(Json(outcome_json(&outcome)))
}

async fn promote(
    State(state): State<AppState>,
    actor: Actor,
    Body(req): Body<PromoteRequest>,
) -> Result<Json<Value>, ApiError> {
    check_lengths(&[
        Some(&req.workload),
        Some(&req.image),
        Some(&req.to),
        req.override_reason.as_deref(),
    ])?;
    state
        .blocking(move |s| {
            s.authorize(
                &actor,
                Action::Promote,
                &Scope::environment(req.workload.clone(), req.to.clone()),
            )?;
            run_promoter(
                s,
                &Request {
                    workload: req.workload,
                    image: req.image,
                    environment: req.to,
                    actor: actor.identity,
                    intent: Intent::Promote,
                    override_reason: req.override_reason,
                },
            )
        })
        .await
}

async fn rollback(
    State(state): State<AppState>,
    actor: Actor,
    Body(req): Body<RollbackRequest>,
) -> Result<Json<Value>, ApiError> {
    check_lengths(&[
        Some(&req.workload),
        Some(&req.env),
        req.to.as_deref(),
        req.override_reason.as_deref(),
    ])?;
    state
        .blocking(move |s| {
            s.authorize(
                &actor,
                Action::Rollback,
                &Scope::environment(req.workload.clone(), req.env.clone()),
            )?;
            let image = cairn_engine::promotion::rollback_target(
                &*s.store,
                &req.workload,
                &req.env,
                req.to.as_deref(),
            )?;
            run_promoter(
                s,
                &Request {
                    workload: req.workload,
                    image,
                    environment: req.env,
                    actor: actor.identity,
                    intent: Intent::Rollback,
                    override_reason: req.override_reason,
                },
            )
        })
        .await
}

async fn undeploy(
    State(state): State<AppState>,
    actor: Actor,
    Body(req): Body<UndeployRequest>,
) -> Result<Json<Value>, ApiError> {
    check_lengths(&[Some(&req.workload), Some(&req.env)])?;
    state
        .blocking(move |s| {
            s.authorize(
                &actor,
                Action::Promote,
                &Scope::environment(req.workload.clone(), req.env.clone()),
            )?;
            let o = with_promoter(s, |promoter| {
                Ok(promoter.undeploy(&cairn_engine::deploy::UndeployRequest {
                    workload: req.workload.clone(),
                    environment: req.env.clone(),
                    actor: actor.identity,
                })?)
            })?;
            Ok(Json(cairn_engine::wire::undeploy_json(&o)))
        })
        .await
}
