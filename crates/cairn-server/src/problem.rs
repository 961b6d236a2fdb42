//! Errors as RFC 9457 problem details (`application/problem+json`). One type for
//! every route: a client error says what was wrong; a server error says little
//! (an id to quote) and the log says much.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_engine::EngineError;
use cairn_model::ErrorKind;
use cairn_store::StoreError;
use serde_json::{Value, json};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An HTTP error with an RFC 9457 body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// A short, stable summary of the problem type.
    pub title: &'static str,
    /// What went wrong this time, for the person reading it.
    pub detail: String,
    /// More members of the problem object (e.g. a gate's reasons).
    pub extra: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            title,
            detail: detail.into(),
            extra: None,
        }
    }

    pub fn with(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// No credentials, or credentials that name no active identity.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication required", detail)
    }

    /// An authenticated identity whose roles do not grant the action.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission denied", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad request", detail)
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "cannot do that", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
            format!("the body is larger than {limit} bytes"),
        )
    }

    /// A failure of cairn itself: logged in full with an id, answered with the id.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        let id = incident_id();
        eprintln!("cairn up: internal error {id}: {error}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
            format!("cairn could not complete the request; the server log has incident {id}"),
        )
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let (Some(Value::Object(extra)), Value::Object(map)) = (&self.extra, &mut body) {
            for (k, v) in extra {
                map.insert(k.clone(), v.clone());
            }
        }
        body
    }
}

/// A short random id tying an answer to its log line.
fn incident_id() -> String {
    let mut bytes = [0u8; 6];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return "unknown".to_owned();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cairn\""),
            );
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match &error {
            EngineError::Store(store) => ApiError::from_store(store, &error),
            EngineError::NoToken => ApiError::unauthorized("send `Authorization: Bearer <token>`"),
            EngineError::BadToken => ApiError::unauthorized(
                "the token belongs to no active identity (unknown, expired or revoked)",
            ),
            EngineError::Denied { reason, .. } => ApiError::forbidden(reason.clone()),
            _ => ApiError::of_kind(error.kind(), error.to_string(), &error),
        }
    }
}

impl ApiError {
    /// The one mapping of an error's kind to its answer: `message` is what the
    /// client may read; `whole` (with causes, maybe paths) stays in the log.
    fn of_kind(kind: ErrorKind, message: String, whole: &dyn std::fmt::Display) -> Self {
        match kind {
            ErrorKind::NotFound => ApiError::not_found(message),
            ErrorKind::Invalid => ApiError::unprocessable(message),
            ErrorKind::Conflict => ApiError::conflict(message),
            ErrorKind::Unauthenticated => ApiError::unauthorized(message),
            ErrorKind::Forbidden => ApiError::forbidden(message),
            // RFC 4918 §11.5: the server cannot store what the request needs;
            // the path stays in the server's log.
            ErrorKind::DiskFull => {
                eprintln!("cairn up: {whole}");
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "disk full",
                    "the server's disk is full; nothing was written (reads still work)",
                )
            }
            ErrorKind::Internal => ApiError::internal(whole),
        }
    }

    /// What the request asked to keep breaks the store's rules: the request's
    /// fault, said as the store says it.
    fn from_store(store: &StoreError, whole: &dyn std::fmt::Display) -> Self {
        if store.is_unreachable() {
            // The database is down or restarting: the client may try again;
            // which server and why stays in the log (never the driver's text).
            eprintln!("cairn: {whole}");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable",
                "the database cannot be reached right now; try again shortly",
            );
        }
        ApiError::of_kind(store.kind(), store.to_string(), whole)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::from_store(&error, &cairn_model::error_chain(&error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15: the CLI mapped every store error to exit 2 while the server
    /// answered 404/409/422. Both now follow the error's kind: every kind the
    /// user can fix is a 4xx here and exit 1 there, the rest 5xx and exit 2.
    #[test]
    fn every_kind_is_4xx_exactly_when_it_is_the_user_s() {
        for kind in [
            ErrorKind::Invalid,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Unauthenticated,
            ErrorKind::Forbidden,
            ErrorKind::DiskFull,
            ErrorKind::Internal,
        ] {
            let e = ApiError::of_kind(kind, "m".into(), &"whole");
            assert_eq!(e.status.is_client_error(), kind.is_user(), "{kind:?}");
            assert_eq!(e.status.is_server_error(), !kind.is_user(), "{kind:?}");
        }
        let missing = StoreError::NotFound {
            what: "workload",
            id: "ghost".into(),
        };
        assert_eq!(ApiError::from(missing).status, StatusCode::NOT_FOUND);
        let taken = EngineError::Store(StoreError::Exists {
            what: "identity",
            id: "dev".into(),
        });
        assert_eq!(ApiError::from(taken).status, StatusCode::CONFLICT);
    }

    /// A full disk is 507 Insufficient Storage, not an anonymous 500, and the
    /// answer does not show the data directory's path.
    #[test]
    fn a_full_disk_is_507_without_the_path() {
        let e = ApiError::from(StoreError::DiskFull {
            dir: "/srv/secret-place".into(),
            what: "recording a change",
            source: None,
        });
        assert_eq!(e.status, StatusCode::INSUFFICIENT_STORAGE);
        assert!(!e.body().to_string().contains("secret-place"));
    }
}
