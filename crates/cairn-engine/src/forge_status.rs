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
        key: Some(key),
        attempt: Box::new(attempt),
    });
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
