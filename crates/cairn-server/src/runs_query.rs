//! The runs filters the API (`GET /api/runs`) and the runs page (`/runs`)
//! take from a query string, checked once for both: workload, status, commit
//! prefix, trigger, and the keyset cursor of the page before.

use cairn_model::RunStatus;
use cairn_store::{RunCursor, RunFilter, TriggerKind};
use serde::Deserialize;

use crate::problem::ApiError;

/// The longest workload name a filter takes.
const MAX_WORKLOAD: usize = 256;

/// The filters as a query string carries them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    pub workload: Option<String>,
    pub status: Option<String>,
    /// A commit id or its prefix (hex).
    pub commit: Option<String>,
    /// `cli`, `api`, `webhook` or `push`.
    pub trigger: Option<String>,
    /// The keyset cursor: `<created_at_ms>.<id>` of the last run of the page before.
    pub after: Option<String>,
    /// At most this many runs (the API; the runs page has pages of its own size).
    pub limit: Option<usize>,
}

/// The filters, checked: every refusal says the rule.
#[derive(Debug, Clone, Default)]
pub struct RunsFilter {
    pub workload: Option<String>,
    pub status: Option<RunStatus>,
    pub commit: Option<String>,
    pub trigger: Option<TriggerKind>,
    pub after: Option<RunCursor>,
    pub limit: Option<usize>,
}

impl RunsFilter {
    /// Checks `q`; an empty value is no filter.
    pub fn parse(q: RunsQuery) -> Result<RunsFilter, ApiError> {
        let some = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let workload = some(q.workload);
        if workload.as_ref().is_some_and(|w| w.len() > MAX_WORKLOAD) {
            return Err(ApiError::bad_request(format!(
                "`workload` is longer than {MAX_WORKLOAD} bytes"
            )));
        }
        let status = some(q.status)
            .map(|s| {
                s.parse::<RunStatus>()
                    .map_err(|e| ApiError::bad_request(e.to_string()))
            })
            .transpose()?;
        let commit = some(q.commit)
            .map(|c| {
                cairn_store::commit_prefix(&c)
                    .map_err(|rule| ApiError::bad_request(format!("`commit`: {rule}")))
            })
            .transpose()?;
        let trigger = some(q.trigger)
            .map(|t| {
                TriggerKind::parse(&t).ok_or_else(|| {
                    ApiError::bad_request("`trigger` is one of cli, api, webhook, push")
                })
            })
            .transpose()?;
        let after = some(q.after)
            .map(|a| {
                RunCursor::parse(&a)
                    .ok_or_else(|| ApiError::bad_request("`after` is `<created_at_ms>.<id>`"))
            })
            .transpose()?;
        Ok(RunsFilter {
            workload,
            status,
            commit,
            trigger,
            after,
            limit: q.limit,
        })
    }

    /// The store's filter for these, at most `limit` runs.
    pub fn store_filter(&self, limit: usize) -> RunFilter {
        RunFilter {
            workload: self.workload.clone(),
            status: self.status,
            commit_prefix: self.commit.clone(),
            trigger: self.trigger,
            after: self.after,
            limit,
        }
    }
}
