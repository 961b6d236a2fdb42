//! Deliveries to the outside that must never hold up or fail what caused them
//! (forge commit statuses, notifications): queued on a lane (one thread per
//! destination, so a hanging one delays only itself, in order, so `success`
//! never overtakes its `pending`), tried with bounded retries and backoff, and
//! each outcome appended to `<data>/outbox.jsonl` (what, never a secret).
//!
//! A process that ends (`cairn run`) waits a bounded time for its lanes
//! ([`flush`]); what is still queued then is not delivered, and the record file
//! says so by its missing outcome.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;

/// Why an attempt failed, and whether another may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A timeout, a refused connection, a 5xx or 429, a 401 (a token being
    /// rotated): try again after the backoff.
    Retry(String),
    /// Nothing another attempt would change (a 4xx for the request itself, a
    /// credential file cairn refuses): recorded once.
    Permanent(String),
}

/// How often and how patiently a delivery is tried.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub attempts: u32,
    pub first_backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempts: 4,
            first_backoff: Duration::from_millis(500),
        }
    }
}

type Attempt = Box<dyn FnMut() -> Result<(), Failure> + Send>;

/// One delivery.
pub struct Job {
    /// The destination: jobs on one lane go out one at a time, in order.
    pub lane: String,
    /// What it is, for the record (no secret: no token, no secret URL).
    pub what: String,
    /// The file its outcome is appended to.
    pub record: PathBuf,
    pub policy: Policy,
    /// What it updates (a commit status's forge, repository, commit and
    /// context): a newer job with the same key supersedes this one, which
    /// then stops retrying (only the latest state matters).
    pub key: Option<String>,
    pub attempt: Attempt,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("lane", &self.lane)
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

/// At most this many jobs wait on one lane; more are dropped (and recorded).
const LANE_DEPTH: usize = 256;

struct Outbox {
    lanes: Mutex<HashMap<String, SyncSender<(u64, Job)>>>,
    /// The newest submission per key, and the running count of submissions.
    latest: Mutex<(HashMap<String, u64>, u64)>,
    pending: Mutex<usize>,
    idle: Condvar,
}

fn outbox() -> &'static Outbox {
    static OUTBOX: OnceLock<Outbox> = OnceLock::new();
    OUTBOX.get_or_init(|| Outbox {
        lanes: Mutex::new(HashMap::new()),
        latest: Mutex::new((HashMap::new(), 0)),
        pending: Mutex::new(0),
        idle: Condvar::new(),
    })
}

/// Queues `job` on its lane and returns at once.
pub fn submit(job: Job) {
    let ob = outbox();
    *ob.pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
    let seq = {
        let mut latest = ob
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        latest.1 += 1;
        let seq = latest.1;
        if let Some(key) = &job.key {
            latest.0.insert(key.clone(), seq);
        }
        seq
    };
    let job = (seq, job);
    let mut lanes = ob
        .lanes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sender = lanes
        .entry(job.1.lane.clone())
        .or_insert_with(|| {
            let (tx, rx) = sync_channel::<(u64, Job)>(LANE_DEPTH);
            std::thread::spawn(move || {
                for (seq, job) in rx {
                    deliver(seq, job);
                    done();
                }
            });
            tx
        })
        .clone();
    drop(lanes);
    match sender.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full((_, job)) | TrySendError::Disconnected((_, job))) => {
            write_outcome(&job, "dropped", 0, Some("the lane's queue is full"));
            done();
        }
    }
}

fn done() {
    let ob = outbox();
    let mut pending = ob
        .pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *pending = pending.saturating_sub(1);
    if *pending == 0 {
        ob.idle.notify_all();
    }
}

/// Waits until every queued delivery has its outcome, at most `limit`;
/// returns how many are still queued.
pub fn flush(limit: Duration) -> usize {
    let ob = outbox();
    let deadline = Instant::now() + limit;
    let mut pending = ob
        .pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while *pending > 0 {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        pending = ob
            .idle
            .wait_timeout(pending, deadline - now)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
    *pending
}

/// Whether a job newer than `seq` with the same key was submitted.
fn superseded(seq: u64, key: Option<&String>) -> bool {
    let Some(key) = key else { return false };
    let latest = outbox()
        .latest
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    latest.0.get(key).is_some_and(|newest| *newest > seq)
}

fn deliver(seq: u64, mut job: Job) {
    let attempts = job.policy.attempts.max(1);
    let mut backoff = job.policy.first_backoff;
    for n in 1..=attempts {
        match (job.attempt)() {
            Ok(()) => return write_outcome(&job, "delivered", n, None),
            Err(Failure::Permanent(why)) => return write_outcome(&job, "failed", n, Some(&why)),
            Err(Failure::Retry(why)) if n == attempts => {
                return write_outcome(&job, "gave-up", n, Some(&why));
            }
            Err(Failure::Retry(why)) if superseded(seq, job.key.as_ref()) => {
                return write_outcome(&job, "superseded", n, Some(&why));
            }
            Err(Failure::Retry(why)) => {
                write_outcome(&job, "retrying", n, Some(&why));
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

fn write_outcome(job: &Job, outcome: &str, attempts: u32, error: Option<&str>) {
    let line = json!({
        "at": cairn_model::time::rfc3339_utc(crate::host::now_ms()),
        "lane": job.lane,
        "what": job.what,
        "outcome": outcome,
        "attempts": attempts,
        "error": error,
    });
    // Best effort: the record is for people; the delivery's fate does not
    // depend on it. Lanes are threads: `jsonl::append` keeps their lines whole.
    let _ = crate::jsonl::append(&job.record, &line, false);
}

/// A ureq outcome as a [`Failure`], naming no URL (a Slack URL is a secret):
/// 5xx, 429, 408 and 401 are retried, another 4xx is not; transport errors are
/// retried.
pub fn classify(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(), Failure> {
    match result {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let s = r.status().as_u16();
            let why = format!("answered HTTP {s}");
            if s >= 500 || matches!(s, 401 | 408 | 429) {
                Err(Failure::Retry(why))
            } else {
                Err(Failure::Permanent(why))
            }
        }
        Err(e) => Err(Failure::Retry(transport_error(&e))),
    }
}

/// What went wrong on the way, without the URL.
pub fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(io) => format!("could not be reached ({})", io.kind()),
        ureq::Error::ConnectionFailed => "could not be reached (connection failed)".to_owned(),
        ureq::Error::HostNotFound => "could not be reached (host not found)".to_owned(),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "the TLS handshake failed".to_owned(),
        _ => "the request failed".to_owned(),
    }
}

/// A secret (token, webhook URL) from a file only its owner may read: a file
/// others may read, or a symlink, is refused. Trailing whitespace is dropped.
pub fn read_secret_file(path: &str, what: &str) -> Result<String, Failure> {
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    const MAX: u64 = 8192;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Failure::Permanent(format!("cannot read {what} file {path}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| Failure::Permanent(format!("cannot read {what} file {path}: {e}")))?;
    if !meta.is_file() {
        return Err(Failure::Permanent(format!(
            "{what} file {path} is not a regular file"
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Failure::Permanent(format!(
            "{what} file {path} may be read by others (mode {:o}); chmod 600 it",
            meta.permissions().mode() & 0o777
        )));
    }
    let mut text = String::new();
    file.take(MAX)
        .read_to_string(&mut text)
        .map_err(|e| Failure::Permanent(format!("cannot read {what} file {path}: {e}")))?;
    let text = text.trim_end().to_owned();
    if text.is_empty() || text.contains(['\r', '\n']) {
        return Err(Failure::Permanent(format!(
            "{what} file {path} must hold one line"
        )));
    }
    Ok(text)
}
