//! Workloads: list, onboard (register an app's repository with the server,
//! optionally under its forge name for webhooks), and one workload's summary.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::get;
use cairn_engine::wire::run_json;
use cairn_model::WorkloadRecord;
use cairn_model::time::rfc3339_utc;
use cairn_policy::{Action, Scope};
use cairn_store::RunFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Body;
use crate::auth::{Actor, Caller};
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::AppState;

/// Longest repository path or forge name accepted.
const MAX_NAME: usize = 4096;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/workloads",
            Access::Role(Action::View),
            get(list),
        )
        .summary("Onboarded workloads")
        .tag("workloads"),
        Route::new(
            Method::POST,
            "/api/workloads",
            Access::Role(Action::ChangeChain),
            axum::routing::post(onboard),
        )
        .summary("Onboard a workload: its repository on this host, and its name on the forge")
        .tag("workloads")
        .example_body(r#"{"repo":"/nonexistent/app"}"#)
        .body_schema(r#"{"type":"object","required":["repo"],"additionalProperties":false,"properties":{"repo":{"type":"string","description":"the app's git repository on this host (absolute path)"},"forge_repository":{"type":"string","description":"owner/name on the forge, for webhooks"}}}"#)
        .success(StatusCode::CREATED),
        Route::new(
            Method::GET,
            "/api/workloads/{name}",
            Access::Role(Action::View),
            get(detail),
        )
        .summary("A workload: repository, recent runs, what is deployed where")
        .tag("workloads")
        .example("/api/workloads/hello"),
    ]
}

pub fn workload_json(w: &WorkloadRecord) -> Value {
    json!({
        "name": w.name,
        "repo": w.repo,
        "forge_repository": w.forge_repository,
        "created_at": rfc3339_utc(w.created_at_ms),
        "updated_at": rfc3339_utc(w.updated_at_ms),
    })
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            let visible = s.visible(&actor)?;
            let items: Vec<Value> = s
                .store
                .workloads()?
                .iter()
                .filter(|w| visible.includes(&w.name))
                .map(workload_json)
                .collect();
            Ok(Json(json!({ "workloads": items })))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnboardRequest {
    /// The app's git repository on this host (absolute path).
    repo: String,
    /// `owner/name` as the forge calls it, so its webhooks find this workload.
    #[serde(default)]
    forge_repository: Option<String>,
}

async fn onboard(
    State(state): State<AppState>,
    actor: Actor,
    Body(req): Body<OnboardRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state
        .blocking(move |s| {
            s.authorize(&actor, Action::ChangeChain, &Scope::organisation())?;
            if req.repo.len() > MAX_NAME
                || req
                    .forge_repository
                    .as_ref()
                    .is_some_and(|f| f.len() > MAX_NAME)
            {
                return Err(ApiError::bad_request("a name is too long"));
            }
            let repo = std::path::Path::new(&req.repo);
            if !repo.is_absolute() {
                return Err(ApiError::bad_request("`repo` must be an absolute path"));
            }
            if !repo.is_dir() {
                return Err(ApiError::unprocessable(format!(
                    "{} is not a directory on this host",
                    repo.display()
                )));
            }
            let record = s.engine.register(repo, req.forge_repository.as_deref())?;
            Ok((StatusCode::CREATED, Json(workload_json(&record))))
        })
        .await
}

async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            s.authorize(&actor, Action::View, &Scope::workload(name.clone()))?;
            let record = s.store.workload(&name)?.ok_or_else(|| {
                ApiError::not_found(format!("workload `{name}` is not onboarded"))
            })?;
            let runs: Vec<Value> = s
                .store
                .runs(&RunFilter {
                    workload: Some(name.clone()),
                    status: None,
                    limit: 20,
                    ..Default::default()
                })?
                .iter()
                .map(|r| run_json(r, None))
                .collect();
            let mut body = workload_json(&record);
            body["runs"] = json!(runs);
            Ok(Json(body))
        })
        .await
}
