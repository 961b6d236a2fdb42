//! GitLab deliveries: `Push Hook` and `Merge Request Hook` with action
//! `approved` (or `approval`, one approval of several). Payloads as in GitLab's
//! "Webhook events" documentation; only the fields cairn reads are declared.

use serde::Deserialize;

use super::{Approval, Event, Push, parse_json};

#[derive(Debug, Deserialize)]
struct Project {
    path_with_namespace: String,
}

#[derive(Debug, Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    project: Project,
    #[serde(default)]
    user_username: Option<String>,
}

#[derive(Debug, Deserialize)]
struct User {
    username: String,
}

#[derive(Debug, Deserialize)]
struct LastCommit {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Attributes {
    #[serde(default)]
    action: Option<String>,
    last_commit: Option<LastCommit>,
}

#[derive(Debug, Deserialize)]
struct MergeRequestPayload {
    user: User,
    project: Project,
    object_attributes: Attributes,
}

/// The delivery of event `event` (the `X-Gitlab-Event` header) with `body`;
/// `Err` says why the body is malformed.
pub(super) fn parse(event: &str, body: &[u8]) -> Result<Event, String> {
    match event {
        "Push Hook" => {
            let p: PushPayload = parse_json(body)?;
            Ok(Event::Push(Push {
                repository: p.project.path_with_namespace,
                git_ref: p.git_ref,
                after: p.after,
                pusher: p.user_username,
            }))
        }
        "Merge Request Hook" => {
            let p: MergeRequestPayload = parse_json(body)?;
            let action = p.object_attributes.action.unwrap_or_default();
            if action != "approved" && action != "approval" {
                return Ok(Event::Ignored(format!(
                    "merge request action `{action}` is not an approval"
                )));
            }
            let commit = p
                .object_attributes
                .last_commit
                .ok_or("an approval without `object_attributes.last_commit`")?
                .id;
            Ok(Event::Approval(Approval {
                repository: p.project.path_with_namespace,
                commit,
                login: p.user.username,
            }))
        }
        other => {
            parse_json::<serde_json::Value>(body)?;
            Ok(Event::Ignored(format!("`{other}` events do nothing")))
        }
    }
}
