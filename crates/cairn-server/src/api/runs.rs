//! Runs: list, queue one, detail (with *why* for a failed run), logs, evidence,
//! and the live stream of a run's progress (Server-Sent Events).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use cairn_engine::wire::{line_json, run_json};
use cairn_model::{RunId, Trigger};
use cairn_policy::{Action, Scope};
use cairn_store::{RunCursor, RunFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Body, Params, parse_id};
use crate::auth::{Actor, Caller};
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::runs_query::{RunsFilter, RunsQuery};
use crate::state::{AppState, Shared};

/// The most log lines one request returns.
const MAX_LOG_PAGE: usize = 5_000;

pub fn routes() -> Vec<Route> {
    let view = Access::Role(Action::View);
    vec![
        Route::new(Method::GET, "/api/runs", view, get(list))
            .summary("Runs, newest first (filter by workload, status, commit prefix, trigger; page with `after` = the answer's `next`)")
            .tag("runs"),
        Route::new(
            Method::POST,
            "/api/runs",
            Access::Role(Action::Run),
            post(queue),
        )
        .summary("Queue a run of a workload at a commit or ref; a worker takes it")
        .tag("runs")
        .example_body(r#"{"workload":"hello","rev":"HEAD"}"#)
        .body_schema(r#"{"type":"object","required":["workload"],"additionalProperties":false,"properties":{"workload":{"type":"string"},"rev":{"type":"string","description":"a commit or ref (default HEAD)"}}}"#)
        .success(StatusCode::ACCEPTED),
        Route::new(Method::GET, "/api/runs/{id}", view, get(detail))
            .summary("A run, its stages, and why it failed")
            .tag("runs")
            .example("/api/runs/1"),
        Route::new(Method::GET, "/api/runs/{id}/logs", view, get(logs))
            .summary("A run's log lines (after a sequence number, per stage)")
            .tag("runs")
            .example("/api/runs/1/logs"),
        Route::new(Method::GET, "/api/runs/{id}/evidence", view, get(evidence))
            .summary("The signed evidence a run produced")
            .tag("runs")
            .example("/api/runs/1/evidence"),
        Route::new(
            Method::GET,
            "/api/runs/{id}/events",
            view,
            get(crate::events::run_events),
        )
        .summary("Live: the run's stage changes and log lines as Server-Sent Events")
        .tag("runs")
        .example("/api/runs/1/events"),
    ]
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Params<RunsQuery>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            let f = RunsFilter::parse(q?.0)?;
            let limit = f.limit.unwrap_or(RunFilter::DEFAULT_LIMIT).min(1_000);
            let visible = s.visible(&actor)?;
            if let Some(w) = &f.workload
                && !visible.includes(w)
            {
                s.authorize(&actor, Action::View, &Scope::workload(w.clone()))?;
            }
            // One more than asked, to know whether a next page exists; the
            // cursor follows the store's rows, so runs this caller may not
            // see never stop the paging.
            let mut page = s.store.runs(&f.store_filter(limit.saturating_add(1)))?;
            let next = (page.len() > limit).then(|| {
                page.truncate(limit);
                page.last().map(|r| RunCursor::of(r).to_string())
            });
            let runs: Vec<Value> = page
                .iter()
                .filter(|r| visible.includes(&r.workload))
                .map(|r| run_json(r, None))
                .collect();
            Ok(Json(json!({ "runs": runs, "next": next.flatten() })))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueRequest {
    workload: String,
    /// A commit id or a ref in the workload's repository (default `HEAD`).
    #[serde(default)]
    rev: Option<String>,
}

async fn queue(
    State(state): State<AppState>,
    actor: Actor,
    Body(req): Body<QueueRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let run = state
        .blocking(move |s| {
            s.authorize(&actor, Action::Run, &Scope::workload(req.workload.clone()))?;
            let rev = req.rev.as_deref().unwrap_or("HEAD");
            queue_run(
                s,
                &req.workload,
                rev,
                Trigger::Api {
                    actor: actor.identity.name.clone(),
                },
            )
        })
        .await?;
    state.0.queued.ring();
    Ok((StatusCode::ACCEPTED, Json(run_json(&run, None))))
}

/// Queues a run of onboarded `workload` at `rev`, checking the commit's config
/// names that workload. Nothing is written when it cannot run.
pub fn queue_run(
    s: &Shared,
    workload: &str,
    rev: &str,
    trigger: Trigger,
) -> Result<cairn_model::RunRecord, ApiError> {
    let record = s.store.workload(workload)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "workload `{workload}` is not onboarded (POST /api/workloads onboards it)"
        ))
    })?;
    let run = s.engine.enqueue(
        std::path::Path::new(&record.repo),
        rev,
        Some(workload),
        trigger,
    )?;
    s.metrics.run_queued();
    Ok(run)
}

/// The run `id`, after checking `actor` may view its workload.
pub fn visible_run(
    s: &Shared,
    actor: &Actor,
    id: &str,
) -> Result<cairn_model::RunRecord, ApiError> {
    let id = RunId(parse_id(id, "run")?);
    let run = s
        .store
        .run(id)?
        .ok_or_else(|| ApiError::not_found(format!("run {id} not found")))?;
    s.authorize(actor, Action::View, &Scope::workload(run.workload.clone()))?;
    Ok(run)
}

async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            let run = visible_run(s, &actor, &id)?;
            let explanation = cairn_engine::explain::explain(&*s.store, run.id, 20)?;
            let mut body = run_json(&explanation.run, Some(&explanation.stages));
            body["trigger"] = json!(explanation.run.trigger.as_text());
            if let Some(culprit) = &explanation.culprit {
                body["why"] = json!({
                    "stage": culprit.stage.name,
                    "exit_code": culprit.stage.exit_code,
                    "reason": culprit.stage.reason,
                    "failed_tests": culprit.failed_tests,
                    "hint": culprit.hint,
                    "last_lines": culprit.last_lines.iter().map(|l| line_json(&culprit.stage.name, l)).collect::<Vec<_>>(),
                });
            }
            Ok(Json(body))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    stage: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Result<Params<LogsQuery>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            let Params(q) = q?;
            let run = visible_run(s, &actor, &id)?;
            let stages = s.store.stages(run.id)?;
            let limit = q.limit.unwrap_or(MAX_LOG_PAGE).min(MAX_LOG_PAGE);
            let mut lines = Vec::new();
            for stage in &stages {
                if q.stage.as_ref().is_some_and(|name| name != &stage.name) {
                    continue;
                }
                let page = s
                    .store
                    .logs(stage.id, q.after, limit.saturating_sub(lines.len()))?;
                lines.extend(page.iter().map(|l| line_json(&stage.name, l)));
                if lines.len() >= limit {
                    break;
                }
            }
            if let Some(name) = &q.stage
                && !stages.iter().any(|s| &s.name == name)
            {
                return Err(ApiError::not_found(format!(
                    "run {} has no stage `{name}`",
                    run.id
                )));
            }
            Ok(Json(json!({ "run": run.id.0, "lines": lines })))
        })
        .await
}

async fn evidence(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            let run = visible_run(s, &actor, &id)?;
            let items: Vec<Value> = s
                .store
                .evidence_for_run(run.id)?
                .iter()
                .map(crate::api::evidence_json)
                .collect();
            Ok(Json(json!({ "run": run.id.0, "evidence": items })))
        })
        .await
}
