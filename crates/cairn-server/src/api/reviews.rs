//! Reviews: the actor approves (or asks for changes to) one exact commit of a
//! workload's repository; cairn signs the review, logs it and keeps it as
//! evidence about the commit (`cairn_engine::review::record`, as `cairn review`).

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::post;
use cairn_evidence::review::Verdict;
use cairn_policy::{Action, Scope};
use serde::Deserialize;
use serde_json::Value;

use super::Body;
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::AppState;

/// Longest commit or ref accepted.
const MAX_REV: usize = 256;
/// Longest comment accepted.
const MAX_COMMENT: usize = 16 * 1024;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::POST,
            "/api/reviews",
            Access::Role(Action::Approve),
            post(create),
        )
        .summary(
            "Review one exact commit of a workload: approve or request changes (signed, logged)",
        )
        .tag("reviews")
        .example_body(r#"{"workload":"hello","commit":"HEAD","verdict":"approve"}"#)
        .body_schema(r#"{"type":"object","required":["workload","commit","verdict"],"additionalProperties":false,"properties":{"workload":{"type":"string"},"commit":{"type":"string"},"verdict":{"type":"string","enum":["approve","request-changes"]},"comment":{"type":"string"}}}"#)
        .success(StatusCode::CREATED),
    ]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    workload: String,
    /// A commit id or a ref of the workload's repository.
    commit: String,
    /// `approve` or `request-changes`.
    verdict: Verdict,
    #[serde(default)]
    comment: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Body(req): Body<ReviewRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if req.commit.is_empty() || req.commit.len() > MAX_REV || req.commit.starts_with('-') {
        return Err(ApiError::bad_request(
            "`commit` must be a commit id or a ref (1-256 bytes, not starting with `-`)",
        ));
    }
    if req.comment.as_ref().is_some_and(|c| c.len() > MAX_COMMENT) {
        return Err(ApiError::bad_request(format!(
            "`comment` is longer than {MAX_COMMENT} bytes"
        )));
    }
    state
        .blocking(move |s| {
            s.authorize(
                &actor,
                Action::Approve,
                &Scope::workload(req.workload.clone()),
            )?;
            let record = s.store.workload(&req.workload)?.ok_or_else(|| {
                ApiError::not_found(format!("workload `{}` is not onboarded", req.workload))
            })?;
            let recorded = cairn_engine::review::record(
                &s.config.data,
                &*s.store,
                &actor.identity,
                std::path::Path::new(&record.repo),
                &req.workload,
                &req.commit,
                req.verdict,
                req.comment,
            )?;
            Ok((
                StatusCode::CREATED,
                Json(cairn_engine::wire::review_json(
                    &recorded,
                    req.verdict,
                    &actor.identity.name,
                )),
            ))
        })
        .await
}
