//! The web UI: server-rendered HTML pages (maud) over the same store and the
//! same authorisation as the JSON API. Every page is readable without
//! JavaScript; `/assets/cairn.js` only makes a running run's page live (SSE).
//! No inline script or style anywhere, so the strict Content-Security-Policy
//! set for every answer holds. Unauthenticated browsers are sent to `/login`;
//! a denied page says why, as HTML.

mod assets;
mod delivery;
mod layout;
mod login;
mod pages;
mod sso;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cairn_policy::Action;
use maud::Markup;

use crate::auth::Actor;
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::AppState;

/// The longest `next` path kept across a login.
const MAX_NEXT: usize = 512;

pub fn routes() -> Vec<Route> {
    let view = Access::Role(Action::View);
    let mut routes = delivery::routes();
    routes.extend([
        Route::new(
            Method::POST,
            "/workloads/{name}/runs",
            Access::Role(Action::Run),
            post(pages::run_now),
        )
        .summary("Queue a run of the workload at its HEAD (a form with the session's CSRF token)")
        .tag("ui")
        .example("/workloads/hello/runs")
        .success(StatusCode::SEE_OTHER),
        Route::new(Method::GET, "/runs", view, get(pages::runs))
            .summary("Runs with each stage's status and duration")
            .tag("ui"),
        Route::new(Method::GET, "/runs/{id}", view, get(pages::run))
            .summary("A run: stages, logs (live while it runs) and why it failed")
            .tag("ui")
            .example("/runs/1"),
        Route::new(
            Method::GET,
            "/artifacts/{digest}",
            view,
            get(pages::artifact),
        )
        .summary("An artifact: its evidence, SBOM and findings")
        .tag("ui")
        .example(
            "/artifacts/sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ),
        Route::new(Method::GET, "/environments", view, get(pages::environments))
            .summary("What is deployed where, since when, by whom")
            .tag("ui"),
        Route::new(Method::GET, "/exposures", view, get(pages::exposures))
            .summary(
                "Exposures: findings on what runs in each environment, with the deadline clock",
            )
            .tag("ui"),
        Route::new(Method::GET, "/audit", view, get(pages::audit))
            .summary("Change records and their audit log entries")
            .tag("ui"),
        Route::new(Method::GET, "/login", Access::Public, get(login::form))
            .summary("Log in with a token")
            .tag("ui"),
        Route::new(Method::POST, "/login", Access::Public, post(login::submit))
            .summary("Start a browser session")
            .tag("ui")
            .success(StatusCode::SEE_OTHER),
        Route::new(Method::GET, "/login/oidc", Access::Public, get(sso::start))
            .summary("Log in with the organisation's OpenID Connect provider")
            .tag("ui")
            .success(StatusCode::SEE_OTHER),
        Route::new(
            Method::GET,
            "/login/oidc/callback",
            Access::Public,
            get(sso::callback),
        )
        .summary("Where the OpenID Connect provider sends the browser back (code, state)")
        .tag("ui"),
        Route::new(Method::POST, "/logout", Access::Public, post(login::logout))
            .summary("End the browser session (needs the session's CSRF token)")
            .tag("ui")
            .success(StatusCode::SEE_OTHER),
        Route::new(
            Method::GET,
            "/assets/cairn.css",
            Access::Public,
            get(assets::css),
        )
        .summary("The UI's stylesheet")
        .tag("ui"),
        Route::new(
            Method::GET,
            "/assets/cairn.js",
            Access::Public,
            get(assets::js),
        )
        .summary("The UI's script (live run pages)")
        .tag("ui"),
    ]);
    routes
}

/// The [`Actor`] of a page request. Without (valid) credentials the browser is
/// sent to `/login`, which brings it back here afterwards.
#[derive(Debug, Clone)]
pub struct PageActor(pub Actor);

impl FromRequestParts<AppState> for PageActor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match Actor::from_request_parts(parts, state).await {
            Ok(actor) => Ok(PageActor(actor)),
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map(axum::http::uri::PathAndQuery::as_str)
                    .unwrap_or("/");
                Err(to_login(Some(here)))
            }
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

/// 303 to the login page, coming back to `next` (when it is a local path).
fn to_login(next: Option<&str>) -> Response {
    match next.filter(|n| *n != "/").and_then(local_path) {
        Some(next) => Redirect::to(&format!("/login?next={}", percent_encode(next))),
        None => Redirect::to("/login"),
    }
    .into_response()
}

/// `next` if it is a path on this site: one leading `/`, not `//` or `/\`
/// (which browsers take for another host), printable, not too long.
fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= MAX_NEXT
        && next.chars().all(|c| !c.is_control() && !c.is_whitespace());
    ok.then_some(next)
}

/// Percent-encodes all but unreserved characters and `/`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error answered as an HTML page; a 401 sends the browser to `/login`.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError(error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.status == StatusCode::UNAUTHORIZED {
            return to_login(None);
        }
        html(e.status, layout::error_page(e.status, e.title, &e.detail))
    }
}

/// An HTML answer.
fn html(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, Html(markup.into_string())).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_be_a_local_path() {
        for (next, ok) in [
            ("/runs/1", true),
            ("/runs?workload=a&b=c", true),
            ("/", true),
            ("//evil.example/x", false),
            ("/\\evil.example", false),
            ("https://evil.example/", false),
            ("runs", false),
            ("", false),
            ("/a b", false),
            ("/a\nb", false),
        ] {
            assert_eq!(local_path(next).is_some(), ok, "{next:?}");
        }
    }

    #[test]
    fn percent_encoding_keeps_paths_readable() {
        assert_eq!(percent_encode("/runs/1"), "/runs/1");
        assert_eq!(percent_encode("/runs?w=a&b"), "/runs%3Fw%3Da%26b");
    }
}
