//! The audit trail: change records (deployments, rollbacks, overrides, denials,
//! policy changes), newest first, each with its inclusion in the audit log proven
//! and checked now (`cairn audit`).

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use cairn_policy::{Action, Scope};
use serde::Deserialize;
use serde_json::Value;

use super::Params;
use crate::auth::Caller;
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::AppState;

/// The most changes one request returns (each is proven).
const MAX_CHANGES: usize = 1_000;
/// As `cairn audit`.
const DEFAULT_LIMIT: usize = 50;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/audit",
            Access::Role(Action::View),
            get(list),
        )
        .summary("Change records with their proven inclusion in the audit log (filter by workload)")
        .tag("audit"),
    ]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    workload: Option<String>,
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
            let limit = q.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_CHANGES);
            let scope = match &q.workload {
                Some(w) => Scope::workload(w.clone()),
                None => Scope::organisation(),
            };
            s.authorize(&actor, Action::View, &scope)?;
            let mut items = Vec::new();
            for (id, change) in s.store.changes(q.workload.as_deref(), limit)? {
                let proof = cairn_engine::audit::prove_inclusion(&s.config.data, change.log_index)?;
                items.push(cairn_engine::wire::change_json(id, &change, &proof));
            }
            Ok(Json(Value::Array(items)))
        })
        .await
}
