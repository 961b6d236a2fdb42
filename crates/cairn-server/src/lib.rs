//! The server behind `cairn up`: one process serving the JSON API (OpenAPI at
//! `/api/openapi.json`), the web UI, forge webhooks, live run events (SSE),
//! Prometheus metrics and the audit log's tiles, with workers executing queued
//! runs. The router is a plain [`app`] built from the route [`routes::table`];
//! every route that is not public goes through the roles model's one
//! authorisation function (`cairn_engine::access::authorize`).

pub mod admission;
pub mod api;
pub mod auth;
pub mod duties;
pub mod events;
pub mod feed;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod problem;
pub mod remediation;
pub mod routes;
pub mod runs_query;
pub mod secret;
pub mod serve;
pub mod session;
pub mod state;
pub mod tlog;
pub mod tls;
pub mod ui;
pub mod watch;
pub mod webhooks;
pub mod worker;

pub use routes::app;
pub use state::{AppState, ServerConfig};
