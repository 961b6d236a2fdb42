//! The UI's two static files, compiled into the binary: a small stylesheet and
//! one script (progressive enhancement of run pages). Both are served from this
//! origin, as the Content-Security-Policy requires.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(super) const CSS: &str = include_str!("../../assets/cairn.css");
pub(super) const JS: &str = include_str!("../../assets/cairn.js");

pub(super) async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

pub(super) async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
