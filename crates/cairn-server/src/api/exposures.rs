//! `GET /api/exposures`: findings on the digests deployed in each environment
//! (`cairn_engine::exposures`), of the workloads the actor may see: first seen,
//! severity, fix, SLA deadline, state. Filter by environment, overdue only, and
//! remediated ones too.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use cairn_engine::exposures::ExposureFilter;
use cairn_engine::now_ms;
use cairn_policy::Action;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Params;
use crate::auth::Caller;
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/exposures",
            Access::Role(Action::View),
            get(list),
        )
        .summary("Findings on what runs in each environment: first seen, severity, fix, SLA deadline, state (filter: environment, overdue, all)")
        .tag("findings"),
    ]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    environment: Option<String>,
    /// Only open exposures past their deadline.
    #[serde(default)]
    overdue: bool,
    /// Remediated exposures too.
    #[serde(default)]
    all: bool,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Params<ListQuery>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking_as(caller, move |s, actor| {
            let Params(q) = q?;
            let visible = s.visible(&actor)?;
            let org = cairn_engine::load_org(s.config.platform_dir.as_deref())?;
            if let Some(env) = &q.environment
                && org.position(env).is_none()
            {
                return Err(ApiError::bad_request(format!(
                    "`{}` is not an environment of the promotion path",
                    env.chars().take(64).collect::<String>()
                )));
            }
            let now = now_ms();
            let mut list = cairn_engine::exposures::list(
                &*s.store,
                &s.config.data,
                &org,
                &ExposureFilter {
                    environment: q.environment.clone(),
                    overdue: q.overdue,
                    include_remediated: q.all,
                },
                now,
            )?;
            cairn_engine::remediation::mark_remediating(&s.config.data, &mut list)?;
            let items: Vec<Value> = list
                .iter()
                .filter(|e| visible.includes(&e.workload))
                .map(|e| cairn_engine::wire::exposure_json(e, now))
                .collect();
            Ok(Json(json!({ "exposures": items })))
        })
        .await
}
