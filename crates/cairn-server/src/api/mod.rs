//! The JSON API under `/api/`: one module per resource. Every handler takes an
//! [`Actor`](crate::auth::Actor) and authorises before it reads or writes.

pub mod artifacts;
pub mod audit;
pub mod environments;
pub mod exposures;
pub mod findings;
pub mod reviews;
pub mod runs;
pub mod whoami;
pub mod workloads;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::ApiError;
use crate::routes::Route;

pub fn routes() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(workloads::routes());
    routes.extend(runs::routes());
    routes.extend(artifacts::routes());
    routes.extend(findings::routes());
    routes.extend(exposures::routes());
    routes.extend(environments::routes());
    routes.extend(reviews::routes());
    routes.extend(audit::routes());
    routes.extend(whoami::routes());
    routes
}

/// A JSON body whose rejections are problem details.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

fn json_problem(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            "send the body as `Content-Type: application/json`",
        ),
        JsonRejection::JsonDataError(e) => ApiError::unprocessable(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(e.body_text()),
        JsonRejection::BytesRejection(e)
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::too_large(crate::routes::MAX_BODY)
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

/// Query parameters whose rejections are problem details.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Params(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::bad_request(e.body_text()))
            }
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// A path id that must be a positive number.
pub fn parse_id(text: &str, what: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request(format!("`{text}` is not a {what} id")))
}

/// A piece of evidence, without its bundle (the artifact routes carry bundles).
pub fn evidence_json(e: &cairn_model::EvidenceRecord) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "run": e.run.map(|r| r.0),
        "predicate_type": e.predicate_type,
        "subject_name": e.subject_name,
        "subject_digest": e.subject_digest,
        "created_at": cairn_model::time::rfc3339_utc(e.created_at_ms),
    })
}
