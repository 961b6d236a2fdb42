//! The audit log, public and read-only, at the C2SP tlog-tiles paths under
//! `/log/`: `checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`.
//! A tile path is parsed strictly and rebuilt in canonical form before any file
//! is opened, so no request names a file outside the log.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cairn_tlog::tiles::{TilePath, entries_path, parse_path, tile_path};

use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/log/checkpoint",
            Access::Public,
            get(checkpoint),
        )
        .summary("The audit log's latest signed checkpoint (C2SP signed note)")
        .tag("log"),
        Route::new(Method::GET, "/log/tile/{*path}", Access::Public, get(tile))
            .summary("A hash tile or entry bundle of the audit log (C2SP tlog-tiles)")
            .tag("log")
            .example("/log/tile/0/000.p/1"),
    ]
}

async fn checkpoint(State(state): State<AppState>) -> Result<Response, ApiError> {
    let path = cairn_engine::audit::log_dir(&state.0.config.data).join("checkpoint");
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(bytes_response(
            bytes,
            "text/plain; charset=utf-8",
            "no-cache",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError::not_found(
            "the audit log is empty: nothing has been recorded yet",
        )),
        Err(e) => Err(ApiError::internal(&format!(
            "reading {}: {e}",
            path.display()
        ))),
    }
}

async fn tile(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let requested = format!("tile/{path}");
    let parsed = parse_path(&requested).map_err(|_| {
        ApiError::not_found(format!(
            "`{}` is not a tile path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])",
            requested.chars().take(200).collect::<String>()
        ))
    })?;
    let (canonical, full) = match parsed {
        TilePath::Hashes {
            level,
            index,
            width,
        } => (
            tile_path(level, index, width),
            width == cairn_tlog::tiles::TILE_WIDTH,
        ),
        TilePath::Entries { index, width } => (
            entries_path(index, width),
            width == cairn_tlog::tiles::TILE_WIDTH,
        ),
    };
    let file = cairn_engine::audit::log_dir(&state.0.config.data).join(&canonical);
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            // A full tile never changes; a partial one is replaced as the log grows.
            let cache = if full {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            Ok(bytes_response(bytes, "application/octet-stream", cache))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ApiError::not_found(format!("the log has no {canonical}")))
        }
        Err(e) => Err(ApiError::internal(&format!(
            "reading {}: {e}",
            file.display()
        ))),
    }
}

fn bytes_response(bytes: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
