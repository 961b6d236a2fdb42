//! `GET /metrics`: Prometheus text. Counters the server keeps (webhook
//! deliveries and rejections, gate denials, authentication failures), and
//! numbers read from the store and the log at scrape time (runs by outcome,
//! stage durations, queue depth, log size).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cairn_policy::{Action, Scope};

use crate::auth::Caller;
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::AppState;

#[derive(Debug, Default)]
pub struct Metrics {
    runs_queued: AtomicU64,
    gate_denials: AtomicU64,
    auth_failures: AtomicU64,
    forbidden: AtomicU64,
    /// Work handed to the blocking pool ([`AppState::blocking`]).
    blocking_calls: AtomicU64,
    /// (forge, event) → accepted deliveries.
    deliveries: Mutex<BTreeMap<(String, String), u64>>,
    /// (forge, reason) → refused deliveries.
    rejections: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Metrics {
    pub fn run_queued(&self) {
        self.runs_queued.fetch_add(1, Ordering::Relaxed);
    }
    pub fn gate_denied(&self) {
        self.gate_denials.fetch_add(1, Ordering::Relaxed);
    }
    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub fn forbidden(&self) {
        self.forbidden.fetch_add(1, Ordering::Relaxed);
    }
    pub fn blocking_call(&self) {
        self.blocking_calls.fetch_add(1, Ordering::Relaxed);
    }
    /// Hand-offs to the blocking pool so far (a request makes one: issue 19).
    pub fn blocking_calls(&self) -> u64 {
        self.blocking_calls.load(Ordering::Relaxed)
    }
    pub fn delivery_accepted(&self, forge: &str, event: &str) {
        if let Ok(mut map) = self.deliveries.lock() {
            *map.entry((forge.to_owned(), event.to_owned())).or_default() += 1;
        }
    }
    pub fn delivery_rejected(&self, forge: &str, reason: &'static str) {
        if let Ok(mut map) = self.rejections.lock() {
            *map.entry((forge.to_owned(), reason)).or_default() += 1;
        }
    }
    /// Refused deliveries of `forge` for `reason` so far (for tests).
    pub fn rejections(&self, forge: &str, reason: &str) -> u64 {
        self.rejections
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|((f, r), _)| f == forge && *r == reason)
                    .map(|(_, n)| *n)
                    .sum()
            })
            .unwrap_or(0)
    }
}

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/metrics",
            Access::Role(Action::View),
            get(metrics),
        )
        .summary("Prometheus metrics: runs by outcome, stage durations, queue depth, gate denials, log size, webhook rejections")
        .tag("meta"),
        Route::new(Method::GET, "/healthz", Access::Public, get(healthz))
            .summary("Liveness: the process answers (`ok`); says nothing else")
            .tag("meta"),
        Route::new(Method::GET, "/readyz", Access::Public, get(readyz))
            .summary("Readiness: `ready` when the store answers a read and the server is not stopping, else 503 with the reason")
            .tag("meta"),
    ]
}

async fn healthz() -> Response {
    text(axum::http::StatusCode::OK, "ok\n")
}

/// 200 `ready` when a read of the store succeeds and the server is not
/// stopping; 503 otherwise, saying which (never the store's path or error text:
/// the probe is public).
async fn readyz(State(state): State<AppState>) -> Response {
    use axum::http::StatusCode;
    if state.is_stopping() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "not ready: stopping\n");
    }
    let store = state
        .blocking(|s| s.store.queued_count().map_err(ApiError::from))
        .await;
    match store {
        Ok(_) => text(StatusCode::OK, "ready\n"),
        // The error itself went to the server's log (with an incident id).
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the store does not answer\n",
        ),
    }
}

fn text(status: axum::http::StatusCode, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Prometheus label values escape `\`, `"` and newlines.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let text = state
        .blocking_as(caller, move |s, actor| {
            s.authorize(&actor, Action::View, &Scope::organisation())?;
            let mut out = String::new();
            let m = &s.metrics;
            let _ = writeln!(out, "# HELP cairn_runs Runs in the store by status.");
            let _ = writeln!(out, "# TYPE cairn_runs gauge");
            for (status, n) in s.store.run_counts()? {
                let _ = writeln!(out, "cairn_runs{{status=\"{}\"}} {n}", status.as_str());
            }
            let _ = writeln!(out, "# HELP cairn_queue_depth Runs queued for a worker.");
            let _ = writeln!(out, "# TYPE cairn_queue_depth gauge");
            let _ = writeln!(out, "cairn_queue_depth {}", s.store.queued_count()?);
            let _ = writeln!(out, "# HELP cairn_stage_duration_seconds Finished stages by kind and status.");
            let _ = writeln!(out, "# TYPE cairn_stage_duration_seconds summary");
            for stat in s.store.stage_durations()? {
                let labels = format!(
                    "kind=\"{}\",status=\"{}\"",
                    stat.kind.as_str(),
                    stat.status.as_str()
                );
                let _ = writeln!(
                    out,
                    "cairn_stage_duration_seconds_sum{{{labels}}} {:.3}",
                    stat.sum_ms as f64 / 1000.0
                );
                let _ = writeln!(out, "cairn_stage_duration_seconds_count{{{labels}}} {}", stat.count);
            }
            let _ = writeln!(out, "# HELP cairn_runs_queued_total Runs queued by this server (API and webhooks).");
            let _ = writeln!(out, "# TYPE cairn_runs_queued_total counter");
            let _ = writeln!(out, "cairn_runs_queued_total {}", m.runs_queued.load(Ordering::Relaxed));
            let _ = writeln!(out, "# HELP cairn_gate_denials_total Promotions the gate denied through this server.");
            let _ = writeln!(out, "# TYPE cairn_gate_denials_total counter");
            let _ = writeln!(out, "cairn_gate_denials_total {}", m.gate_denials.load(Ordering::Relaxed));
            let _ = writeln!(out, "# HELP cairn_http_unauthorized_total Requests refused for missing or bad credentials.");
            let _ = writeln!(out, "# TYPE cairn_http_unauthorized_total counter");
            let _ = writeln!(out, "cairn_http_unauthorized_total {}", m.auth_failures.load(Ordering::Relaxed));
            let _ = writeln!(out, "# HELP cairn_http_forbidden_total Requests refused by the roles model.");
            let _ = writeln!(out, "# TYPE cairn_http_forbidden_total counter");
            let _ = writeln!(out, "cairn_http_forbidden_total {}", m.forbidden.load(Ordering::Relaxed));
            let _ = writeln!(out, "# HELP cairn_blocking_calls_total Work handed from the async threads to the blocking pool (store, engine).");
            let _ = writeln!(out, "# TYPE cairn_blocking_calls_total counter");
            let _ = writeln!(out, "cairn_blocking_calls_total {}", m.blocking_calls.load(Ordering::Relaxed));
            let _ = writeln!(out, "# HELP cairn_webhook_deliveries_total Forge deliveries accepted.");
            let _ = writeln!(out, "# TYPE cairn_webhook_deliveries_total counter");
            if let Ok(map) = m.deliveries.lock() {
                for ((forge, event), n) in map.iter() {
                    let _ = writeln!(
                        out,
                        "cairn_webhook_deliveries_total{{forge=\"{}\",event=\"{}\"}} {n}",
                        label(forge),
                        label(event)
                    );
                }
            }
            let _ = writeln!(out, "# HELP cairn_webhook_rejections_total Forge deliveries refused, by reason.");
            let _ = writeln!(out, "# TYPE cairn_webhook_rejections_total counter");
            if let Ok(map) = m.rejections.lock() {
                for ((forge, reason), n) in map.iter() {
                    let _ = writeln!(
                        out,
                        "cairn_webhook_rejections_total{{forge=\"{}\",reason=\"{reason}\"}} {n}",
                        label(forge)
                    );
                }
            }
            exposure_metrics(&mut out, s)?;
            let _ = writeln!(out, "# HELP cairn_log_entries Entries in the audit log (its latest checkpoint).");
            let _ = writeln!(out, "# TYPE cairn_log_entries gauge");
            let _ = writeln!(out, "cairn_log_entries {}", log_size(&s.config.data));
            Ok(out)
        })
        .await?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// Buckets of the time-to-remediate histogram, in hours.
const REMEDIATION_BUCKETS_H: [u64; 6] = [1, 4, 12, 24, 72, 168];

/// Exposures (findings on what runs in each environment): open ones and
/// overdue ones by environment and severity, the age of the oldest open one,
/// and how long remediated ones took.
fn exposure_metrics(out: &mut String, s: &crate::state::Shared) -> Result<(), ApiError> {
    let org = cairn_engine::load_org(s.config.platform_dir.as_deref())?;
    let now = cairn_engine::now_ms();
    let all = cairn_engine::exposures::list(
        &*s.store,
        &s.config.data,
        &org,
        &cairn_engine::exposures::ExposureFilter {
            include_remediated: true,
            ..Default::default()
        },
        now,
    )?;
    // (environment, severity) → (open, overdue, oldest age in ms).
    let mut open: BTreeMap<(&str, &str), (u64, u64, i64)> = BTreeMap::new();
    let mut remediated: Vec<i64> = Vec::new();
    let mut accepted: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for e in &all {
        match e.state {
            cairn_engine::exposures::ExposureState::Open
            | cairn_engine::exposures::ExposureState::Remediating => {
                let slot = open
                    .entry((e.environment.as_str(), e.severity.as_str()))
                    .or_default();
                slot.0 += 1;
                slot.1 += u64::from(e.overdue(now));
                slot.2 = slot.2.max(e.age_ms(now));
            }
            cairn_engine::exposures::ExposureState::Remediated => {
                remediated.extend(e.time_to_remediate_ms());
            }
            cairn_engine::exposures::ExposureState::Accepted => {
                *accepted
                    .entry((e.environment.as_str(), e.severity.as_str()))
                    .or_default() += 1;
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP cairn_exposures_accepted Exposures accepted by a signed OpenVEX statement that has not expired."
    );
    let _ = writeln!(out, "# TYPE cairn_exposures_accepted gauge");
    for ((env, severity), n) in &accepted {
        let _ = writeln!(
            out,
            "cairn_exposures_accepted{{environment=\"{}\",severity=\"{}\"}} {n}",
            label(env),
            label(severity)
        );
    }
    let _ = writeln!(
        out,
        "# HELP cairn_exposures_open Open exposures (findings on what runs in an environment)."
    );
    let _ = writeln!(out, "# TYPE cairn_exposures_open gauge");
    for ((env, severity), (n, _, _)) in &open {
        let _ = writeln!(
            out,
            "cairn_exposures_open{{environment=\"{}\",severity=\"{}\"}} {n}",
            label(env),
            label(severity)
        );
    }
    let _ = writeln!(
        out,
        "# HELP cairn_exposures_overdue Open exposures past their SLA deadline."
    );
    let _ = writeln!(out, "# TYPE cairn_exposures_overdue gauge");
    for ((env, severity), (_, n, _)) in &open {
        let _ = writeln!(
            out,
            "cairn_exposures_overdue{{environment=\"{}\",severity=\"{}\"}} {n}",
            label(env),
            label(severity)
        );
    }
    let _ = writeln!(
        out,
        "# HELP cairn_exposure_age_seconds Age of the oldest open exposure."
    );
    let _ = writeln!(out, "# TYPE cairn_exposure_age_seconds gauge");
    for ((env, severity), (_, _, age)) in &open {
        let _ = writeln!(
            out,
            "cairn_exposure_age_seconds{{environment=\"{}\",severity=\"{}\"}} {:.3}",
            label(env),
            label(severity),
            *age as f64 / 1000.0
        );
    }
    let _ = writeln!(
        out,
        "# HELP cairn_exposure_time_to_remediate_seconds From an exposure's start to the deployment without its finding."
    );
    let _ = writeln!(
        out,
        "# TYPE cairn_exposure_time_to_remediate_seconds histogram"
    );
    for hours in REMEDIATION_BUCKETS_H {
        let le_ms = i64::try_from(hours * 3_600_000).unwrap_or(i64::MAX);
        let n = remediated.iter().filter(|ms| **ms <= le_ms).count();
        let _ = writeln!(
            out,
            "cairn_exposure_time_to_remediate_seconds_bucket{{le=\"{}\"}} {n}",
            hours * 3600
        );
    }
    let _ = writeln!(
        out,
        "cairn_exposure_time_to_remediate_seconds_bucket{{le=\"+Inf\"}} {}",
        remediated.len()
    );
    let sum: i64 = remediated.iter().sum();
    let _ = writeln!(
        out,
        "cairn_exposure_time_to_remediate_seconds_sum {:.3}",
        sum as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "cairn_exposure_time_to_remediate_seconds_count {}",
        remediated.len()
    );
    Ok(())
}

/// The tree size in the log's checkpoint (its second line), 0 with no log.
fn log_size(data: &cairn_engine::DataDir) -> u64 {
    std::fs::read_to_string(cairn_engine::audit::log_dir(data).join("checkpoint"))
        .ok()
        .and_then(|text| text.lines().nth(1).and_then(|l| l.parse().ok()))
        .unwrap_or(0)
}
