//! Findings across the artifacts an actor may see: open ones by default,
//! filtered by state and severity. A finding whose artifact names no workload
//! is shown only to those with an organisation-wide View.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use cairn_policy::Action;
use cairn_store::{FindingFilter, FindingState};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Params;
use super::artifacts::{has_severity, parse_state};
use crate::auth::{Caller, Visible};
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::AppState;

/// The most findings one request returns.
const MAX_FINDINGS: usize = 10_000;
const DEFAULT_LIMIT: usize = 1_000;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/findings",
            Access::Role(Action::View),
            get(list),
        )
        .summary("Vulnerability findings across visible artifacts (default: open; filter by state, severity)")
        .tag("findings"),
    ]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open` (default), `suppressed` or `fixed`.
    state: Option<String>,
    /// `low`, `medium`, `high` or `critical` (default: every severity).
    severity: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Params<ListQuery>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            let Params(q) = q?;
            let wanted = parse_state(q.state.as_deref())?.unwrap_or(FindingState::Open);
            let limit = q.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_FINDINGS);
            let visible = s.visible(&actor)?;
            let org = cairn_engine::load_org(s.config.platform_dir.as_deref())?;
            let running = cairn_engine::exposures::running(&*s.store, &org)?;
            let items: Vec<Value> = s
                .store
                .findings(&FindingFilter {
                    state: Some(wanted),
                    ..FindingFilter::default()
                })?
                .iter()
                .filter(|f| match &f.workload {
                    Some(w) => visible.includes(w),
                    None => visible == Visible::All,
                })
                .filter(|f| has_severity(f, q.severity.as_deref()))
                .take(limit)
                .map(|f| cairn_engine::wire::finding_json_running(f, &running))
                .collect();
            Ok(Json(json!({ "findings": items })))
        })
        .await
}
