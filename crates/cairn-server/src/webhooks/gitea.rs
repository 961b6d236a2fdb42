//! Gitea (and Forgejo) deliveries: `push` and pull-request approvals
//! (`pull_request_review_approved`, or `pull_request_approved` in older
//! versions). Payloads follow Gitea's `modules/structs/hook.go`; only the fields
//! cairn reads are declared.

use serde::Deserialize;

use super::github::{PullRequest, Repository, User, parse_push};
use super::{Approval, Event, parse_json};

#[derive(Debug, Deserialize)]
struct ReviewPayload {
    pull_request: PullRequest,
    repository: Repository,
    /// Who submitted the review.
    sender: User,
}

/// The delivery of event `event` (the `X-Gitea-Event` header) with `body`;
/// `Err` says why the body is malformed.
pub(super) fn parse(event: &str, body: &[u8]) -> Result<Event, String> {
    match event {
        // Gitea's push payload is GitHub's.
        "push" => parse_push(body),
        "pull_request_review_approved" | "pull_request_approved" => {
            let p: ReviewPayload = parse_json(body)?;
            Ok(Event::Approval(Approval {
                repository: p.repository.full_name,
                commit: p.pull_request.head.sha,
                login: p.sender.login,
            }))
        }
        other => {
            parse_json::<serde_json::Value>(body)?;
            Ok(Event::Ignored(format!("`{other}` events do nothing")))
        }
    }
}
