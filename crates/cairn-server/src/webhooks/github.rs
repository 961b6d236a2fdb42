//! GitHub deliveries: `push`, `ping` and `pull_request_review` (an approval).
//! Payloads as documented in "Webhook events and payloads"; only the fields
//! cairn reads are declared, the rest are ignored.

use serde::Deserialize;

use super::{Approval, Event, Push, parse_json};

#[derive(Debug, Deserialize)]
pub(super) struct Repository {
    pub(super) full_name: String,
}

#[derive(Debug, Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    repository: Repository,
    #[serde(default)]
    sender: Option<User>,
}

#[derive(Debug, Deserialize)]
pub(super) struct User {
    pub(super) login: String,
}

#[derive(Debug, Deserialize)]
struct Review {
    state: String,
    commit_id: Option<String>,
    user: User,
}

#[derive(Debug, Deserialize)]
pub(super) struct Head {
    pub(super) sha: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct PullRequest {
    pub(super) head: Head,
}

#[derive(Debug, Deserialize)]
struct ReviewPayload {
    #[serde(default)]
    action: Option<String>,
    review: Review,
    pull_request: PullRequest,
    repository: Repository,
}

/// A push (GitHub's payload, which Gitea sends too).
pub(super) fn parse_push(body: &[u8]) -> Result<Event, String> {
    let p: PushPayload = parse_json(body)?;
    Ok(Event::Push(Push {
        repository: p.repository.full_name,
        git_ref: p.git_ref,
        after: p.after,
        pusher: p.sender.map(|u| u.login),
    }))
}

/// The delivery of event `event` (the `X-GitHub-Event` header) with `body`;
/// `Err` says why the body is malformed.
pub(super) fn parse(event: &str, body: &[u8]) -> Result<Event, String> {
    match event {
        "ping" => {
            parse_json::<serde_json::Value>(body)?;
            Ok(Event::Ping)
        }
        "push" => parse_push(body),
        "pull_request_review" => {
            let p: ReviewPayload = parse_json(body)?;
            if p.action.as_deref().is_some_and(|a| a != "submitted") {
                return Ok(Event::Ignored(format!(
                    "review action `{}` is not a submission",
                    p.action.unwrap_or_default()
                )));
            }
            if !p.review.state.eq_ignore_ascii_case("approved") {
                return Ok(Event::Ignored(format!(
                    "a review in state `{}` is not an approval",
                    p.review.state
                )));
            }
            Ok(Event::Approval(Approval {
                repository: p.repository.full_name,
                commit: p.review.commit_id.unwrap_or(p.pull_request.head.sha),
                login: p.review.user.login,
            }))
        }
        other => {
            parse_json::<serde_json::Value>(body)?;
            Ok(Event::Ignored(format!("`{other}` events do nothing")))
        }
    }
}
