//! Results back on the forge: each run and promotion is reported as a commit
//! status on its commit, with a link to cairn's page for it, updated as it
//! goes (pending → success / failure / error), through the forge's documented
//! API:
//!
//! - GitHub: `POST /repos/{owner}/{repo}/statuses/{sha}` (REST "Create a
//!   commit status"), `Authorization: Bearer`, `Accept:
//!   application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28`; body
//!   `state` (`error`, `failure`, `pending`, `success`), `target_url`,
//!   `description`, `context`.
//! - GitLab: `POST /projects/:id/statuses/:sha` (Commits API "Set the pipeline
//!   status of a commit"), `:id` the URL-encoded project path,
//!   `PRIVATE-TOKEN`; body `state` (`pending`, `running`, `success`,
//!   `failed`, `canceled`), `name`, `target_url`, `description`.
//! - Gitea: `POST /repos/{owner}/{repo}/statuses/{sha}` (`CreateStatusOption`),
//!   `Authorization: token`; body `state` (`pending`, `success`, `error`,
//!   `failure`), `target_url`, `description`, `context`.
//!
//! - GitHub check runs (optional, `check_runs = true` in `[forges.github]`),
//!   beside the status: the Checks API's "List check runs for a Git
//!   reference" (`GET /repos/{owner}/{repo}/commits/{sha}/check-runs?check_name=…`)
//!   finds the one cairn made (its `external_id`, the page it links to), then
//!   "Update a check run" (`PATCH /repos/{owner}/{repo}/check-runs/{id}`), or
//!   when there is none "Create a check run" (`POST
//!   /repos/{owner}/{repo}/check-runs`: `name`, `head_sha`, `external_id`,
//!   `details_url`, `status` `queued` / `in_progress` / `completed`, with
//!   `conclusion` `success` / `failure` and `completed_at` once completed,
//!   `output` `title` and `summary`). Looked up every time rather than
//!   remembered, so any process or replica updates the same check run, and a
//!   create whose answer was lost is not made twice.
//!
//! Reporting goes through the [`outbox`](crate::outbox): asynchronous, retried
//! with backoff, bounded, recorded in `<data>/outbox.jsonl`, and never fails or
//! delays the run or promotion it reports. The token is read from its 0600 file
//! at each attempt and sent only in its header.

use std::time::Duration;

use cairn_model::config::{ForgeApi, ForgeKind, OrgConfig};
use cairn_model::{RunRecord, Trigger};
use cairn_store::Store;
use serde_json::json;

use crate::DataDir;
use crate::outbox::{self, Failure, Job, Policy};

/// Where a run or promotion is, as cairn says it; each forge's word for it is
/// [`Phase::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Queued, not started.
    Queued,
    /// Started.
    Running,
    /// Ended well (a run succeeded, a promotion deployed).
    Succeeded,
    /// Ended as a "no" (a stage failed, the gate denied).
    Failed,
    /// cairn could not finish it (an internal error, an interrupted run, a
    /// deploy that failed).
    Error,
}

impl Phase {
    /// The forge's documented state value.
    pub fn state(self, kind: ForgeKind) -> &'static str {
        match (kind, self) {
            (ForgeKind::Gitlab, Phase::Queued) => "pending",
            (ForgeKind::Gitlab, Phase::Running) => "running",
            (ForgeKind::Gitlab, Phase::Succeeded) => "success",
            (ForgeKind::Gitlab, Phase::Failed | Phase::Error) => "failed",
            (_, Phase::Queued | Phase::Running) => "pending",
            (_, Phase::Succeeded) => "success",
            (_, Phase::Failed) => "failure",
            (_, Phase::Error) => "error",
        }
    }
}

/// One status to report.
#[derive(Debug, Clone)]
pub struct Status {
    /// `owner/name` (GitLab: `group/sub/name`).
    pub repository: String,
    /// The full commit id.
    pub sha: String,
    /// `cairn/run` or `cairn/promote/<environment>`.
    pub context: String,
    pub phase: Phase,
    pub description: String,
    pub target_url: String,
}

/// GitHub's limit on a status description.
const MAX_DESCRIPTION: usize = 140;

/// The request a forge documents for `status`: URL, headers (the token's
/// header last), JSON body.
pub fn request(
    api: &ForgeApi,
    status: &Status,
    token: &str,
) -> (String, Vec<(&'static str, String)>, serde_json::Value) {
    let base = api.api.trim_end_matches('/');
    let state = status.phase.state(api.kind);
    let description: String = status
        .description
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DESCRIPTION)
        .collect();
    match api.kind {
        ForgeKind::Github => (
            format!("{base}/repos/{}/statuses/{}", status.repository, status.sha),
            vec![
                ("Accept", "application/vnd.github+json".to_owned()),
                ("X-GitHub-Api-Version", "2022-11-28".to_owned()),
                ("Authorization", format!("Bearer {token}")),
            ],
            json!({"state": state, "target_url": status.target_url,
                   "description": description, "context": status.context}),
        ),
        ForgeKind::Gitlab => (
            format!(
                "{base}/projects/{}/statuses/{}",
                status.repository.replace('/', "%2F"),
                status.sha
            ),
            vec![
                ("Accept", "application/json".to_owned()),
                ("PRIVATE-TOKEN", token.to_owned()),
            ],
            json!({"state": state, "target_url": status.target_url,
                   "description": description, "name": status.context}),
        ),
        ForgeKind::Gitea => (
            format!("{base}/repos/{}/statuses/{}", status.repository, status.sha),
            vec![
                ("Accept", "application/json".to_owned()),
                ("Authorization", format!("token {token}")),
            ],
            json!({"state": state, "target_url": status.target_url,
                   "description": description, "context": status.context}),
        ),
    }
}

/// Queues `status` for forge `api` with `policy`, each attempt bounded by `timeout`.
pub fn submit_with(
    data: &DataDir,
    api: &ForgeApi,
    status: Status,
    policy: Policy,
    timeout: Duration,
) {
    let kind = api.kind;
    let what = format!(
        "{} status {} ({}) for {}@{}",
        kind.name(),
        status.phase.state(kind),
        status.context,
        status.repository,
        status.sha
    );
    let key = format!(
        "{}|{}|{}|{}|{}",
        api.api,
        status.repository,
        status.sha,
        status.context,
        kind.name()
    );
    let check_run =
        (kind == ForgeKind::Github && api.check_runs).then(|| (api.clone(), status.clone()));
    let api = api.clone();
    let agent = cairn_registry::http::agent("cairn-forge-status", Some(timeout));
    let attempt = move || {
        let token =
            outbox::read_secret_file(&api.token_file, &format!("the {} token", kind.name()))?;
        let (url, headers, body) = request(&api, &status, &token);
        let mut req = agent.post(&url).header("Content-Type", "application/json");
        for (name, value) in &headers {
            req = req.header(*name, value);
        }
        outbox::classify(req.send(body.to_string().as_str())).map_err(|f| match f {
            Failure::Retry(w) => Failure::Retry(format!("{} {w}", kind.name())),
            Failure::Permanent(w) => Failure::Permanent(format!("{} {w}", kind.name())),
        })
    };
    outbox::submit(Job {
        lane: format!("forge:{}", kind.name()),
        what,
        record: data.root().join("outbox.jsonl"),
        policy,
        key: Some(key.clone()),
        attempt: Box::new(attempt),
    });
    if let Some((api, status)) = check_run {
        submit_check_run(data, api, status, policy, timeout, key);
    }
}

/// A check run's `status` and `conclusion` for `phase` (GitHub's Checks API).
pub fn check_run_state(phase: Phase) -> (&'static str, Option<&'static str>) {
    match phase {
        Phase::Queued => ("queued", None),
        Phase::Running => ("in_progress", None),
        Phase::Succeeded => ("completed", Some("success")),
        Phase::Failed | Phase::Error => ("completed", Some("failure")),
    }
}

/// The largest "list check runs" answer read.
const MAX_LIST: u64 = 1 << 20;

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn query_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The requests GitHub's Checks API documents for `status`: the lookup URL,
/// the create URL, and the create body (an update sends the same body
/// without `name`, `head_sha` and `external_id`).
pub fn check_run_requests(api: &ForgeApi, status: &Status) -> (String, String, serde_json::Value) {
    let base = api.api.trim_end_matches('/');
    let (state, conclusion) = check_run_state(status.phase);
    let title: String = status
        .description
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DESCRIPTION)
        .collect();
    let mut body = json!({
        "name": status.context,
        "head_sha": status.sha,
        "external_id": status.target_url,
        "details_url": status.target_url,
        "status": state,
        "output": {"title": title, "summary": format!("{title}\n\n{}", status.target_url)},
    });
    if let Some(c) = conclusion {
        body["conclusion"] = json!(c);
        body["completed_at"] = json!(cairn_model::time::rfc3339_utc(crate::now_ms()));
    }
    (
        format!(
            "{base}/repos/{}/commits/{}/check-runs?check_name={}&filter=all&per_page=100",
            status.repository,
            status.sha,
            query_encode(&status.context)
        ),
        format!("{base}/repos/{}/check-runs", status.repository),
        body,
    )
}

/// Queues `status` as a GitHub check run, on its own lane beside the status.
fn submit_check_run(
    data: &DataDir,
    api: ForgeApi,
    status: Status,
    policy: Policy,
    timeout: Duration,
    key: String,
) {
    let what = format!(
        "github check run {} ({}) for {}@{}",
        check_run_state(status.phase).0,
        status.context,
        status.repository,
        status.sha
    );
    let agent = cairn_registry::http::agent("cairn-forge-status", Some(timeout));
    let attempt = move || {
        let token = outbox::read_secret_file(&api.token_file, "the github token")?;
        let (list_url, create_url, body) = check_run_requests(&api, &status);
        let headers = [
            ("Accept", "application/vnd.github+json".to_owned()),
            ("X-GitHub-Api-Version", "2022-11-28".to_owned()),
            ("Authorization", format!("Bearer {token}")),
        ];
        let github = |f: Failure| match f {
            Failure::Retry(w) => Failure::Retry(format!("github {w}")),
            Failure::Permanent(w) => Failure::Permanent(format!("github {w}")),
        };
        let mut req = agent.get(&list_url);
        for (name, value) in &headers {
            req = req.header(*name, value);
        }
        let listed = read_json(req.call()).map_err(github)?;
        let existing = listed
            .get("check_runs")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| {
                c.get("external_id").and_then(serde_json::Value::as_str) == Some(&status.target_url)
            })
            .and_then(|c| c.get("id").and_then(serde_json::Value::as_u64));
        let result = match existing {
            Some(id) => {
                let mut update = body;
                if let Some(o) = update.as_object_mut() {
                    for k in ["name", "head_sha", "external_id"] {
                        o.remove(k);
                    }
                }
                let base = api.api.trim_end_matches('/');
                let mut req = agent
                    .patch(&format!(
                        "{base}/repos/{}/check-runs/{id}",
                        status.repository
                    ))
                    .header("Content-Type", "application/json");
                for (name, value) in &headers {
                    req = req.header(*name, value);
                }
                req.send(update.to_string().as_str())
            }
            None => {
                let mut req = agent
                    .post(&create_url)
                    .header("Content-Type", "application/json");
                for (name, value) in &headers {
                    req = req.header(*name, value);
                }
                req.send(body.to_string().as_str())
            }
        };
        outbox::classify(result).map_err(github)
    };
    outbox::submit(Job {
        lane: "forge:github-checks".to_owned(),
        what,
        record: data.root().join("outbox.jsonl"),
        policy,
        key: Some(format!("{key}|check-run")),
        attempt: Box::new(attempt),
    });
}

/// A JSON answer of at most [`MAX_LIST`] bytes to a successful request.
fn read_json(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<serde_json::Value, Failure> {
    use std::io::Read;
    let mut response = match result {
        Ok(r) if r.status().is_success() => r,
        other => {
            outbox::classify(other)?;
            return Err(Failure::Permanent("answered no JSON".into()));
        }
    };
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_LIST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Retry(format!("could not be read ({})", e.kind())))?;
    if bytes.len() as u64 > MAX_LIST {
        return Err(Failure::Permanent(format!(
            "answered more than {MAX_LIST} bytes"
        )));
    }
    serde_json::from_slice(&bytes)
        .map_err(|_| Failure::Permanent("answered something that is not JSON".into()))
}

/// How long one attempt may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The forge a workload's statuses go to: the one its runs came from (a
/// webhook's forge), else the only one configured.
fn forge_of<'a>(org: &'a OrgConfig, trigger: Option<&Trigger>) -> Option<&'a ForgeApi> {
    let named = match trigger {
        Some(Trigger::Webhook { forge, .. } | Trigger::Push { forge, .. }) => {
            ForgeKind::parse(forge)
        }
        _ => None,
    };
    match named {
        Some(kind) => org.forges.api(kind),
        None if org.forges.apis.len() == 1 => org.forges.apis.first(),
        None => None,
    }
}

fn is_commit_id(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reports `run` at `phase`, when its workload has a forge repository and a
/// forge is configured; otherwise nothing. Never fails.
pub fn report_run(
    data: &DataDir,
    org: &OrgConfig,
    store: &dyn Store,
    run: &RunRecord,
    phase: Phase,
) {
    let Some(api) = forge_of(org, Some(&run.trigger)) else {
        return;
    };
    let Some(link) = &org.forges.link else { return };
    let Ok(Some(workload)) = store.workload(&run.workload) else {
        return;
    };
    let Some(repository) = workload.forge_repository else {
        return;
    };
    if !is_commit_id(&run.commit) || !crate::run::forge_name_ok(&repository) {
        return;
    }
    let description = match phase {
        Phase::Queued => format!("cairn run {} is queued", run.id),
        Phase::Running => format!("cairn run {} is running", run.id),
        Phase::Succeeded => format!("cairn run {} succeeded", run.id),
        Phase::Failed | Phase::Error => format!(
            "cairn run {} failed: {}",
            run.id,
            run.reason.as_deref().unwrap_or("see the run")
        ),
    };
    let status = Status {
        repository,
        sha: run.commit.clone(),
        context: "cairn/run".to_owned(),
        phase,
        description,
        target_url: format!("{link}/runs/{}", run.id),
    };
    submit_with(data, api, status, Policy::default(), TIMEOUT);
}

/// Reports a promotion of `workload`'s `commit` to `environment` at `phase`.
#[allow(clippy::too_many_arguments)]
pub fn report_promotion(
    data: &DataDir,
    org: &OrgConfig,
    store: &dyn Store,
    workload: &str,
    commit: &str,
    environment: &str,
    phase: Phase,
    description: &str,
) {
    let Ok(Some(record)) = store.workload(workload) else {
        return;
    };
    let Some(repository) = record.forge_repository else {
        return;
    };
    // The forge the workload's runs come from, when one did.
    let trigger = store
        .runs(&cairn_store::RunFilter {
            workload: Some(workload.to_owned()),
            status: None,
            limit: 20,
            ..Default::default()
        })
        .ok()
        .and_then(|runs| {
            runs.into_iter()
                .map(|r| r.trigger)
                .find(|t| matches!(t, Trigger::Webhook { .. } | Trigger::Push { .. }))
        });
    let Some(api) = forge_of(org, trigger.as_ref()) else {
        return;
    };
    let Some(link) = &org.forges.link else { return };
    if !is_commit_id(commit) || !crate::run::forge_name_ok(&repository) {
        return;
    }
    let status = Status {
        repository,
        sha: commit.to_owned(),
        context: format!("cairn/promote/{environment}"),
        phase,
        description: description.to_owned(),
        target_url: format!("{link}/environments"),
    };
    submit_with(data, api, status, Policy::default(), TIMEOUT);
}

#[cfg(test)]
mod tests;
