//! The route table: every route the server answers, with the access it needs.
//! The router, the OpenAPI document and the authorisation tests are all built
//! from this one table, so none of them can forget a route.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use cairn_policy::Action;
use tower_http::catch_panic::CatchPanicLayer;

use crate::problem::ApiError;
use crate::state::AppState;

/// The largest request body any route reads (webhooks have their own, smaller
/// bound).
pub const MAX_BODY: usize = 1 << 20;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the OpenAPI document, the log's tiles, the login page, assets.
    Public,
    /// A forge delivery, authenticated by its signature over the body.
    Signed,
    /// An identity whose roles grant this action at the route's scope.
    Role(Action),
}

/// What a route is for, in the OpenAPI document's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// JSON API (in the OpenAPI document).
    Api,
    /// Plain text or bytes for tools (the log's tiles, metrics; documented too).
    Text,
    /// An HTML page or form of the web UI (not in the OpenAPI document).
    Page,
}

/// One route.
pub struct Route {
    pub method: Method,
    /// The path in axum and OpenAPI syntax (`/api/runs/{id}`).
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub kind: Kind,
    pub access: Access,
    /// A path with example values, for tests that call every route.
    pub example: &'static str,
    /// An example JSON body (for routes that take one), for the same tests.
    pub example_body: Option<&'static str>,
    /// The JSON Schema of the body (for the OpenAPI document).
    pub body_schema: Option<&'static str>,
    /// What the route answers on success.
    pub success: StatusCode,
    pub handler: MethodRouter<AppState>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Every route.
pub fn table() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(crate::openapi::routes());
    routes.extend(crate::api::routes());
    routes.extend(crate::tlog::routes());
    routes.extend(crate::metrics::routes());
    routes.extend(crate::webhooks::routes());
    routes.extend(crate::admission::routes());
    routes.extend(crate::ui::routes());
    routes
}

/// The whole server as one router: `fn app(state) -> Router`.
pub fn app(state: AppState) -> Router {
    app_with(state, Vec::new())
}

/// The router with `extra` routes besides the table's, under the same layers
/// (tests add a handler that panics).
pub fn app_with(state: AppState, extra: Vec<Route>) -> Router {
    let mut router = Router::new();
    for route in table().into_iter().chain(extra) {
        router = router.route(route.path, route.handler);
    }
    router
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(security_headers))
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such route; GET /api/openapi.json lists them")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
        "this route does not take that method; GET /api/openapi.json lists them",
    )
}

/// A handler that panicked: answered 500, the server goes on.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    ApiError::internal(&format!("a handler panicked: {what}")).into_response()
}

/// Headers on every answer: no sniffing, no framing, no referrer, and a strict
/// Content-Security-Policy (scripts and styles only from this origin).
async fn security_headers(request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

impl Route {
    /// A route needing `access`; the kind follows from the path (`/api/` and
    /// `/webhooks/` are JSON API, `/log/`, `/metrics` and the probes text, the
    /// rest pages).
    pub fn new(
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Route {
        let kind = if path.starts_with("/api/") || path.starts_with("/webhooks/") {
            Kind::Api
        } else if path.starts_with("/log/") || matches!(path, "/metrics" | "/healthz" | "/readyz") {
            Kind::Text
        } else {
            Kind::Page
        };
        Route {
            method,
            path,
            summary: "",
            tag: "",
            kind,
            access,
            example: path,
            example_body: None,
            body_schema: None,
            success: StatusCode::OK,
            handler,
        }
    }

    pub fn summary(mut self, summary: &'static str) -> Route {
        self.summary = summary;
        self
    }

    pub fn tag(mut self, tag: &'static str) -> Route {
        self.tag = tag;
        self
    }

    pub fn example(mut self, example: &'static str) -> Route {
        self.example = example;
        self
    }

    pub fn example_body(mut self, body: &'static str) -> Route {
        self.example_body = Some(body);
        self
    }

    pub fn body_schema(mut self, schema: &'static str) -> Route {
        self.body_schema = Some(schema);
        self
    }

    pub fn success(mut self, status: StatusCode) -> Route {
        self.success = status;
        self
    }
}
