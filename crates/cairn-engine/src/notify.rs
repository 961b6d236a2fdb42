//! Notifications to the people who need to know (org.toml `[[notify]]`): run
//! failures, denied promotions, changes to the last environment of the
//! promotion path (production), overdue exposures. Each sink takes the events
//! it names, in its own protocol:
//!
//! - Slack-compatible incoming webhook: `POST` JSON `{"text", "blocks"}`
//!   (a `section` with mrkdwn, `&`, `<`, `>` escaped as Slack requires); the
//!   URL is a secret, read from a 0600 file, never recorded.
//! - Generic webhook: `POST` JSON `{"event", "title", "facts", "link",
//!   "record"}` with `X-Cairn-Event`, signed like the change webhook
//!   (`X-Cairn-Signature-256: sha256=<HMAC-SHA256 hex of the body>`) when a
//!   secret file is set.
//! - Email over SMTP ([`crate::smtp`]).
//!
//! Every delivery goes through the [`outbox`](crate::outbox): queued, bounded
//! (timeouts, retries), recorded, never blocking or failing what it reports.

use std::time::Duration;

use cairn_model::config::{NotifyEvent, NotifyTarget, OrgConfig};
use cairn_model::{ChangeKind, ChangeRecord, RunRecord};
use serde_json::{Value, json};

use crate::DataDir;
use crate::outbox::{self, Failure, Job, Policy};

/// One notification, whatever the sink.
#[derive(Debug, Clone)]
pub struct Notice {
    pub event: NotifyEvent,
    /// One line.
    pub title: String,
    /// Name and value pairs shown under the title.
    pub facts: Vec<(String, String)>,
    /// cairn's page about it, when the server's URL is known (`[forges] link`).
    pub link: Option<String>,
    /// The record it is about, for programs.
    pub record: Value,
}

/// How long one attempt may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Whether any sink wants `event`.
pub fn wants(org: &OrgConfig, event: NotifyEvent) -> bool {
    org.notify.iter().any(|s| s.events.contains(&event))
}

/// Queues `notice` to every sink that wants its event; returns at once.
pub fn send(data: &DataDir, org: &OrgConfig, notice: &Notice) {
    send_with(data, org, notice, Policy::default(), TIMEOUT);
}

/// [`send`] with a retry policy and per-attempt timeout.
pub fn send_with(
    data: &DataDir,
    org: &OrgConfig,
    notice: &Notice,
    policy: Policy,
    timeout: Duration,
) {
    for (index, sink) in org.notify.iter().enumerate() {
        if !sink.events.contains(&notice.event) {
            continue;
        }
        let (lane, attempt): (String, Box<dyn FnMut() -> Result<(), Failure> + Send>) = match &sink
            .target
        {
            NotifyTarget::Slack { url_file } => {
                let url_file = url_file.clone();
                let body = slack_body(notice).to_string();
                let agent = cairn_registry::http::agent("cairn-notify", Some(timeout));
                (
                    format!("notify:{index}:slack"),
                    Box::new(move || {
                        let url = outbox::read_secret_file(&url_file, "the Slack webhook URL")?;
                        if !cairn_model::config::is_feed_url(&url) {
                            return Err(Failure::Permanent(format!(
                                "{url_file} does not hold an https:// URL"
                            )));
                        }
                        outbox::classify(
                            agent
                                .post(&url)
                                .header("Content-Type", "application/json")
                                .send(body.as_str()),
                        )
                        .map_err(|f| prefix(f, "the Slack webhook"))
                    }),
                )
            }
            NotifyTarget::Webhook { url, secret_file } => {
                let url = url.clone();
                let secret_file = secret_file.clone();
                let body = webhook_body(notice).to_string();
                let event = notice.event.name();
                let agent = cairn_registry::http::agent("cairn-notify", Some(timeout));
                (
                    format!("notify:{index}:webhook"),
                    Box::new(move || {
                        let mut req = agent
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .header("X-Cairn-Event", event);
                        if let Some(file) = &secret_file {
                            let secret = outbox::read_secret_file(file, "the webhook's secret")?;
                            req = req.header(
                                "X-Cairn-Signature-256",
                                &crate::change_sink::signature(secret.as_bytes(), &body),
                            );
                        }
                        outbox::classify(req.send(body.as_str()))
                            .map_err(|f| prefix(f, "the webhook"))
                    }),
                )
            }
            NotifyTarget::Email { smtp, from, to } => {
                let mail = crate::smtp::Mail {
                    from: from.clone(),
                    to: to.clone(),
                    subject: format!("[cairn] {}", notice.title),
                    body: email_body(notice),
                };
                let server = smtp.clone();
                (
                    format!("notify:{index}:email"),
                    Box::new(move || crate::smtp::send(&server, &mail, timeout)),
                )
            }
        };
        outbox::submit(Job {
            lane,
            what: format!("{} notification: {}", notice.event.name(), notice.title),
            record: data.root().join("outbox.jsonl"),
            policy,
            key: None,
            attempt,
        });
    }
}

fn prefix(f: Failure, who: &str) -> Failure {
    match f {
        Failure::Retry(w) => Failure::Retry(format!("{who} {w}")),
        Failure::Permanent(w) => Failure::Permanent(format!("{who} {w}")),
    }
}

/// Slack's mrkdwn escapes (its "Formatting text" guide: `&`, `<`, `>`).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Slack message: `text` (the fallback for notifications) and `blocks`.
pub fn slack_body(n: &Notice) -> Value {
    let mut fields = String::new();
    for (k, v) in &n.facts {
        fields.push_str(&format!("*{}:* {}\n", slack_escape(k), slack_escape(v)));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&n.title, 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&fields, 3000)}}),
    ];
    if let Some(link) = &n.link {
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("<{}|Open in cairn>", slack_escape(link))}
        ]}));
    }
    json!({"text": slack_escape(&n.title), "blocks": blocks})
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The generic webhook's body.
pub fn webhook_body(n: &Notice) -> Value {
    let facts: serde_json::Map<String, Value> = n
        .facts
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({"event": n.event.name(), "title": n.title, "facts": facts,
           "link": n.link, "record": n.record})
}

fn email_body(n: &Notice) -> String {
    let mut body = format!("{}\n\n", n.title);
    for (k, v) in &n.facts {
        body.push_str(&format!("{k}: {v}\n"));
    }
    if let Some(link) = &n.link {
        body.push_str(&format!("\n{link}\n"));
    }
    body
}

/// A run failed.
pub fn run_failed(data: &DataDir, org: &OrgConfig, run: &RunRecord) {
    if !wants(org, NotifyEvent::RunFailed) {
        return;
    }
    send(
        data,
        org,
        &Notice {
            event: NotifyEvent::RunFailed,
            title: format!("Run {} of {} failed", run.id, run.workload),
            facts: vec![
                ("workload".into(), run.workload.clone()),
                ("commit".into(), run.commit.clone()),
                (
                    "reason".into(),
                    run.reason.clone().unwrap_or_else(|| "see the run".into()),
                ),
            ],
            link: org
                .forges
                .link
                .as_ref()
                .map(|l| format!("{l}/runs/{}", run.id)),
            record: json!({"run": run.id.to_string(), "workload": run.workload,
                           "commit": run.commit, "reason": run.reason}),
        },
    );
}

/// A change record was kept: a denial, or a change to the last environment
/// of the promotion path, is worth telling.
pub fn change(data: &DataDir, org: &OrgConfig, change: &ChangeRecord, record: &Value) {
    let production = org.promotion_path.last().map(String::as_str);
    let event = if change.kind == ChangeKind::Denied.as_str() {
        NotifyEvent::PromotionDenied
    } else if Some(change.environment.as_str()) == production
        && change.kind != ChangeKind::PolicyChange.as_str()
    {
        NotifyEvent::ProductionChange
    } else {
        return;
    };
    if !wants(org, event) {
        return;
    }
    let title = match event {
        NotifyEvent::PromotionDenied => format!(
            "Promotion of {} to {} denied",
            change.workload, change.environment
        ),
        _ => format!(
            "{} of {} in {}",
            change.kind, change.workload, change.environment
        ),
    };
    let mut facts = vec![
        ("workload".into(), change.workload.clone()),
        ("environment".into(), change.environment.clone()),
        ("actor".into(), change.actor.clone()),
        ("image".into(), change.to_digest.clone()),
    ];
    if let Some(from) = &change.from_digest {
        facts.push(("was".into(), from.clone()));
    }
    if let Some(reasons) = denial_reasons(change) {
        facts.push(("denied by".into(), reasons));
    }
    send(
        data,
        org,
        &Notice {
            event,
            title,
            facts,
            link: org
                .forges
                .link
                .as_ref()
                .map(|l| format!("{l}/environments")),
            record: record.clone(),
        },
    );
}

/// The rules that denied, read by the one reader of a change record's decision.
fn denial_reasons(change: &ChangeRecord) -> Option<String> {
    let reasons: Vec<String> = crate::promotion::RecordedDecision::of(change)
        .reasons
        .iter()
        .take(10)
        .map(|(rule, message)| format!("[{rule}] {message}"))
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// An exposure passed its deadline.
pub fn exposure_overdue(data: &DataDir, org: &OrgConfig, title: String, record: &Value) {
    if !wants(org, NotifyEvent::ExposureOverdue) {
        return;
    }
    let e = &record["exposure"];
    let fact = |k: &str| (k.to_owned(), e[k].as_str().unwrap_or_default().to_owned());
    send(
        data,
        org,
        &Notice {
            event: NotifyEvent::ExposureOverdue,
            title,
            facts: vec![
                fact("workload"),
                fact("environment"),
                fact("advisory"),
                fact("deadline"),
            ],
            link: org.forges.link.as_ref().map(|l| format!("{l}/exposures")),
            record: record.clone(),
        },
    );
}

#[cfg(test)]
mod tests;
