//! Forge webhooks: `POST /webhooks/{github,gitlab,gitea}`. A delivery is
//! authenticated over its raw, bounded body before anything parses it
//! ([`signature`]); its delivery id is accepted once (the store refuses a
//! replay, writing nothing). A push queues a run of the onboarded workload at
//! the pushed commit; a pull-request approval by a forge login linked to a
//! cairn identity becomes a signed review of that commit (the roles model
//! decides whether the identity may approve). Every refusal is a problem+json
//! answer, counted by reason in the metrics, and writes nothing.
//!
//! The delivery and the run it queues are written in one transaction
//! ([`cairn_store::Store::accept_delivery`]): the engine plans the run
//! ([`cairn_engine::Engine::plan_run`]) and the store writes both.

mod gitea;
mod github;
mod gitlab;
pub mod signature;

use std::path::Path;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cairn_engine::{EngineError, access, review};
use cairn_evidence::review::Verdict;
use cairn_model::{NewDelivery, Trigger, WorkloadRecord};
use cairn_policy::{Action, Scope};
use cairn_store::DeliveryAccepted;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::{AppState, Shared};

/// The largest delivery body read (forges send far less for the events cairn
/// reads; GitHub caps its payloads at 25 MB, which cairn does not need).
pub const MAX_WEBHOOK_BODY: usize = 256 << 10;
/// The longest delivery id accepted (forges send UUIDs).
pub const MAX_DELIVERY_ID: usize = 128;
/// The longest event name accepted.
const MAX_EVENT_NAME: usize = 64;
/// The longest forge login looked up.
const MAX_LOGIN: usize = 255;
/// How long a push may wait for its commit to be fetched from the forge.
const FETCH_LIMIT: std::time::Duration = std::time::Duration::from_secs(8);
/// The longest outcome text kept with a delivery.
const MAX_OUTCOME: usize = 300;

/// A forge that sends webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    GitHub,
    GitLab,
    Gitea,
}

impl Forge {
    /// The name in deliveries, triggers, forge-account links and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
            Forge::Gitea => "gitea",
        }
    }

    /// The header naming the event.
    pub fn event_header(self) -> &'static str {
        match self {
            Forge::GitHub => "x-github-event",
            Forge::GitLab => "x-gitlab-event",
            Forge::Gitea => "x-gitea-event",
        }
    }

    /// The headers carrying the delivery id, in order of preference.
    pub fn delivery_headers(self) -> &'static [&'static str] {
        match self {
            Forge::GitHub => &["x-github-delivery"],
            Forge::GitLab => &["x-gitlab-event-uuid", "idempotency-key"],
            Forge::Gitea => &["x-gitea-delivery"],
        }
    }

    /// The header that authenticates a delivery.
    pub fn signature_header(self) -> &'static str {
        match self {
            Forge::GitHub => "x-hub-signature-256",
            Forge::GitLab => "x-gitlab-token",
            Forge::Gitea => "x-gitea-signature",
        }
    }

    /// This forge's own secret.
    fn secret(self, secrets: &crate::secret::WebhookSecrets) -> &crate::secret::Secret {
        match self {
            Forge::GitHub => &secrets.github,
            Forge::GitLab => &secrets.gitlab,
            Forge::Gitea => &secrets.gitea,
        }
    }

    fn authenticate(
        self,
        secret: &crate::secret::Secret,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Refusal> {
        let name = self.signature_header();
        let value = match headers.get(name) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| bad_signature(signature::BadSignature::Malformed.detail(name)))?,
            ),
        };
        let result = match self {
            Forge::GitHub => signature::verify_github(secret, body, value),
            Forge::GitLab => signature::verify_token(secret, value),
            Forge::Gitea => signature::verify_hmac_sha256(secret, body, value),
        };
        result.map_err(|bad| bad_signature(bad.detail(name)))
    }

    fn parse(self, event: &str, body: &[u8]) -> Result<Event, String> {
        match self {
            Forge::GitHub => github::parse(event, body),
            Forge::GitLab => gitlab::parse(event, body),
            Forge::Gitea => gitea::parse(event, body),
        }
    }
}

/// What a delivery asks cairn to do, whatever the forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The forge checking the hook (GitHub's `ping`): answered, not recorded.
    Ping,
    Push(Push),
    Approval(Approval),
    /// Recorded and answered 202, doing nothing; says why.
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Push {
    /// The forge's name of the repository (`owner/name`).
    pub repository: String,
    /// The full ref pushed (`refs/heads/main`).
    pub git_ref: String,
    /// The commit the ref points to now (all zeros: the ref was deleted).
    pub after: String,
    /// The forge login that pushed (GitHub/Gitea `sender.login`, GitLab
    /// `user_username`), if the payload names one.
    pub pusher: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Approval {
    pub repository: String,
    /// The commit approved (the pull request's head when reviewed).
    pub commit: String,
    /// The reviewer's login on the forge.
    pub login: String,
}

/// Parses a JSON body; `Err` says where it is malformed.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not the JSON expected: {e}"))
}

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::POST, "/webhooks/github", Access::Signed, post(github_hook))
            .summary("A GitHub delivery (X-Hub-Signature-256): a push queues a run, an approval becomes a review")
            .tag("webhooks")
            .success(StatusCode::ACCEPTED),
        Route::new(Method::POST, "/webhooks/gitlab", Access::Signed, post(gitlab_hook))
            .summary("A GitLab delivery (X-Gitlab-Token): a push queues a run, an approval becomes a review")
            .tag("webhooks")
            .success(StatusCode::ACCEPTED),
        Route::new(Method::POST, "/webhooks/gitea", Access::Signed, post(gitea_hook))
            .summary("A Gitea delivery (X-Gitea-Signature): a push queues a run, an approval becomes a review")
            .tag("webhooks")
            .success(StatusCode::ACCEPTED),
    ]
}

async fn github_hook(State(state): State<AppState>, request: Request) -> Response {
    receive(Forge::GitHub, state, request).await
}

async fn gitlab_hook(State(state): State<AppState>, request: Request) -> Response {
    receive(Forge::GitLab, state, request).await
}

async fn gitea_hook(State(state): State<AppState>, request: Request) -> Response {
    receive(Forge::Gitea, state, request).await
}

/// A refused delivery: the answer, and the reason the metrics count it under.
#[derive(Debug)]
struct Refusal {
    reason: &'static str,
    error: ApiError,
}

fn refuse(reason: &'static str, error: ApiError) -> Refusal {
    Refusal { reason, error }
}

fn bad_signature(detail: String) -> Refusal {
    refuse("bad_signature", ApiError::unauthorized(detail))
}

fn malformed(detail: impl Into<String>) -> Refusal {
    refuse("malformed", ApiError::bad_request(detail))
}

/// An error from the engine or the store, counted by its status.
impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        let reason = match error.status {
            StatusCode::BAD_REQUEST => "malformed",
            StatusCode::UNAUTHORIZED => "bad_signature",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "replay",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            _ => "internal",
        };
        Refusal { reason, error }
    }
}

/// What an accepted delivery answers.
struct Accepted {
    status: StatusCode,
    body: Value,
    /// A run was queued: wake the workers.
    queued: bool,
}

async fn receive(forge: Forge, state: AppState, request: Request) -> Response {
    match deliver(forge, &state, request).await {
        Ok((event, accepted)) => {
            state.0.metrics.delivery_accepted(forge.name(), &event);
            if accepted.queued {
                state.0.queued.ring();
            }
            (accepted.status, Json(accepted.body)).into_response()
        }
        Err(refusal) => {
            state
                .0
                .metrics
                .delivery_rejected(forge.name(), refusal.reason);
            refusal.error.into_response()
        }
    }
}

/// Reads, authenticates, parses and acts on one delivery; returns its event
/// name and the answer.
async fn deliver(
    forge: Forge,
    state: &AppState,
    request: Request,
) -> Result<(String, Accepted), Refusal> {
    let (parts, body) = request.into_parts();
    let body = read_bounded(&parts.headers, body).await?;
    forge.authenticate(
        forge.secret(&state.0.webhook_secrets),
        &parts.headers,
        &body,
    )?;
    let delivery = delivery_id(forge, &parts.headers)?;
    let event = event_name(forge, &parts.headers)?;
    let parsed = forge.parse(&event, &body).map_err(malformed)?;
    if parsed == Event::Ping {
        let body = json!({ "delivery": delivery, "status": "pong" });
        return Ok((
            event,
            Accepted {
                status: StatusCode::OK,
                body,
                queued: false,
            },
        ));
    }
    let received = Received {
        forge,
        delivery,
        event: event.clone(),
    };
    let accepted = state
        .blocking(move |s| Ok(act(s, &received, parsed)))
        .await??;
    Ok((event, accepted))
}

/// The body, refused (413) past [`MAX_WEBHOOK_BODY`]: by its declared length
/// first, then by what is actually read.
async fn read_bounded(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Refusal> {
    let too_large = || refuse("too_large", ApiError::too_large(MAX_WEBHOOK_BODY));
    if let Some(value) = headers.get(header::CONTENT_LENGTH) {
        match value
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            Some(n) if n > MAX_WEBHOOK_BODY as u64 => return Err(too_large()),
            Some(_) => {}
            None => return Err(malformed("the Content-Length header is not a number")),
        }
    }
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| malformed(format!("could not read the body: {e}")))?;
        if bytes.len() + chunk.len() > MAX_WEBHOOK_BODY {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The forge's id of the delivery: at most [`MAX_DELIVERY_ID`] printable ASCII
/// characters, no spaces.
fn delivery_id(forge: Forge, headers: &HeaderMap) -> Result<String, Refusal> {
    let no_id = |detail: String| refuse("no_delivery_id", ApiError::bad_request(detail));
    let Some(value) = forge
        .delivery_headers()
        .iter()
        .find_map(|name| headers.get(*name))
    else {
        return Err(no_id(format!(
            "the delivery has no `{}` header",
            forge.delivery_headers().join("` or `")
        )));
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_DELIVERY_ID || !bytes.iter().all(u8::is_ascii_graphic)
    {
        return Err(no_id(format!(
            "the delivery id must be 1 to {MAX_DELIVERY_ID} printable ASCII characters"
        )));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// The event name: at most [`MAX_EVENT_NAME`] printable ASCII characters.
fn event_name(forge: Forge, headers: &HeaderMap) -> Result<String, Refusal> {
    let name = forge.event_header();
    let value = headers
        .get(name)
        .map(axum::http::HeaderValue::as_bytes)
        .filter(|b| {
            !b.is_empty()
                && b.len() <= MAX_EVENT_NAME
                && b.iter().all(|c| c.is_ascii_graphic() || *c == b' ')
        })
        .ok_or_else(|| {
            refuse(
                "no_event",
                ApiError::bad_request(format!(
                    "the delivery has no `{name}` header of at most {MAX_EVENT_NAME} printable characters"
                )),
            )
        })?;
    Ok(String::from_utf8_lossy(value).into_owned())
}

/// An authenticated delivery.
struct Received {
    forge: Forge,
    delivery: String,
    event: String,
}

impl Received {
    fn record(&self, outcome: &str) -> NewDelivery {
        NewDelivery {
            forge: self.forge.name().to_owned(),
            delivery: self.delivery.clone(),
            event: self.event.clone(),
            received_at_ms: cairn_engine::now_ms(),
            outcome: outcome.chars().take(MAX_OUTCOME).collect(),
        }
    }

    fn replay(&self) -> Refusal {
        refuse(
            "replay",
            ApiError::conflict(format!(
                "{} delivery `{}` was received before; a delivery is accepted once",
                self.forge.name(),
                self.delivery
            )),
        )
    }

    /// Claims the delivery with `outcome` (and no run): 409 when seen before.
    fn claim(&self, s: &Shared, outcome: &str) -> Result<(), Refusal> {
        match s
            .store
            .accept_delivery(&self.record(outcome), None)
            .map_err(ApiError::from)?
        {
            DeliveryAccepted::Replay => Err(self.replay()),
            DeliveryAccepted::Accepted { .. } => Ok(()),
        }
    }

    /// Records the delivery as ignored (`why`) and answers 202.
    fn ignore(&self, s: &Shared, why: &str) -> Result<Accepted, Refusal> {
        self.claim(s, &format!("ignored: {why}"))?;
        Ok(Accepted {
            status: StatusCode::ACCEPTED,
            body: json!({ "delivery": self.delivery, "status": "ignored", "ignored": why }),
            queued: false,
        })
    }
}

/// Acts on a parsed delivery (blocking: the store, the engine, git).
fn act(s: &Shared, received: &Received, event: Event) -> Result<Accepted, Refusal> {
    match event {
        Event::Ping => Ok(Accepted {
            status: StatusCode::OK,
            body: json!({ "delivery": received.delivery, "status": "pong" }),
            queued: false,
        }),
        Event::Ignored(why) => received.ignore(s, &why),
        Event::Push(push) => on_push(s, received, &push),
        Event::Approval(approval) => on_approval(s, received, &approval),
    }
}

/// The onboarded workload webhooks of `repository` are for; 404 otherwise.
fn onboarded(s: &Shared, forge: Forge, repository: &str) -> Result<WorkloadRecord, Refusal> {
    s.store
        .workload_by_forge_repository(repository)
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            let shown: String = repository.chars().take(200).collect();
            refuse(
                "not_onboarded",
                ApiError::not_found(format!(
                    "no workload is onboarded for {} repository `{shown}`",
                    forge.name()
                )),
            )
        })
}

/// A full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn check_commit(what: &str, commit: &str) -> Result<(), Refusal> {
    let ok = (commit.len() == 40 || commit.len() == 64)
        && commit
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(malformed(format!("`{what}` is not a full commit id")))
    }
}

fn on_push(s: &Shared, received: &Received, push: &Push) -> Result<Accepted, Refusal> {
    let workload = onboarded(s, received.forge, &push.repository)?;
    check_commit("after", &push.after)?;
    let Some(branch) = push.git_ref.strip_prefix("refs/heads/") else {
        let shown: String = push.git_ref.chars().take(200).collect();
        return received.ignore(s, &format!("`{shown}` is not a branch"));
    };
    if push.after.bytes().all(|b| b == b'0') {
        return received.ignore(s, &format!("branch `{branch}` was deleted"));
    }
    // The login that pushed, linked to an active identity: that identity is
    // signed into the run's evidence and may not approve what it pushed.
    let pusher = push
        .pusher
        .as_deref()
        .filter(|l| !l.is_empty() && l.len() <= MAX_LOGIN && !l.chars().any(char::is_control))
        .map(|login| s.store.forge_account(received.forge.name(), login))
        .transpose()
        .map_err(ApiError::from)?
        .flatten()
        .filter(|name| cairn_engine::access::active_identity(&*s.store, name).is_ok());
    let trigger = match pusher {
        Some(pusher) => Trigger::Push {
            pusher,
            forge: received.forge.name().to_owned(),
            delivery: received.delivery.clone(),
        },
        None => Trigger::Webhook {
            forge: received.forge.name().to_owned(),
            delivery: received.delivery.clone(),
        },
    };
    // The workload's repository is a clone of the forge's: a commit pushed there
    // is fetched first (bounded, so the forge gets its answer in time).
    if let Err(e) =
        s.engine
            .fetch_if_missing(Path::new(&workload.repo), &push.after, branch, FETCH_LIMIT)
    {
        eprintln!(
            "cairn up: fetching {branch} for {}: {}",
            workload.name,
            cairn_model::error_chain(&e)
        );
    }
    let mut run = s
        .engine
        .plan_run(
            Path::new(&workload.repo),
            &push.after,
            Some(&workload.name),
            trigger,
        )
        .map_err(|e| cannot_plan(&workload.name, &push.after, e))?;
    run.git_ref = Some(branch.to_owned());
    let outcome = format!("queued run of {} at {}", workload.name, push.after);
    match s
        .store
        .accept_delivery(&received.record(&outcome), Some(&run))
        .map_err(ApiError::from)?
    {
        DeliveryAccepted::Replay => Err(received.replay()),
        DeliveryAccepted::Accepted {
            run: Some((run, _)),
        } => {
            s.metrics.run_queued();
            Ok(Accepted {
                status: StatusCode::ACCEPTED,
                body: json!({
                    "delivery": received.delivery,
                    "status": "queued",
                    "run": run.id.0,
                    "workload": run.workload,
                    "commit": run.commit,
                    "ref": branch,
                }),
                queued: true,
            })
        }
        DeliveryAccepted::Accepted { run: None } => Err(ApiError::internal(
            &"the store accepted a delivery with a run but returned no run",
        )
        .into()),
    }
}

fn on_approval(s: &Shared, received: &Received, approval: &Approval) -> Result<Accepted, Refusal> {
    let forge = received.forge;
    let workload = onboarded(s, forge, &approval.repository)?;
    check_commit("commit", &approval.commit)?;
    let login = &approval.login;
    if login.is_empty() || login.len() > MAX_LOGIN || login.chars().any(char::is_control) {
        return Err(malformed(
            "the reviewer's login is empty, too long or not printable",
        ));
    }
    let Some(name) = s
        .store
        .forge_account(forge.name(), login)
        .map_err(ApiError::from)?
    else {
        return received.ignore(
            s,
            &format!("login {login} is not linked to a cairn identity"),
        );
    };
    let forbidden = |detail: String| {
        s.metrics.forbidden();
        refuse("forbidden", ApiError::forbidden(detail))
    };
    let identity = access::active_identity(&*s.store, &name).map_err(|_| {
        forbidden(format!(
            "{} login {login} is linked to `{name}`, which is not an active identity",
            forge.name()
        ))
    })?;
    // Checked before anything is written; `review::record` checks it again.
    if let Err(denied) = access::authorize(
        &*s.store,
        &identity,
        Action::Approve,
        &Scope::workload(workload.name.clone()),
    ) {
        return Err(forbidden(ApiError::from(denied).detail));
    }
    let dir = Path::new(&workload.repo);
    if !s.engine.has_commit(dir, &approval.commit) {
        return Err(not_fetched(&workload.name, &approval.commit).into());
    }
    received.claim(s, &format!("review recorded by {name}"))?;
    let comment = format!(
        "approved on {} by {login} (delivery {})",
        forge.name(),
        received.delivery
    );
    let recorded = review::record(
        &s.config.data,
        &*s.store,
        &identity,
        dir,
        &workload.name,
        &approval.commit,
        Verdict::Approve,
        Some(comment),
    )
    .map_err(ApiError::from)?;
    Ok(Accepted {
        status: StatusCode::ACCEPTED,
        body: json!({
            "delivery": received.delivery,
            "status": "recorded",
            "review": {
                "workload": workload.name,
                "identity": name,
                "commit": recorded.commit,
                "evidence": recorded.evidence,
                "log_index": recorded.log_index,
                "own_commit": recorded.own_commit,
            },
        }),
        queued: false,
    })
}

/// Why a run cannot be planned, without the server's paths (the log has them).
fn cannot_plan(workload: &str, commit: &str, error: EngineError) -> ApiError {
    match error {
        EngineError::UnknownCommit { .. } => not_fetched(workload, commit),
        EngineError::NotAGitRepo { .. }
        | EngineError::NoWorkloadConfig { .. }
        | EngineError::ChainNotFound { .. } => {
            eprintln!(
                "cairn up: webhook for `{workload}` at {commit}: {}",
                cairn_model::error_chain(&error)
            );
            ApiError::unprocessable(format!(
                "workload `{workload}` cannot be loaded at commit {commit} (the server log says why)"
            ))
        }
        other => ApiError::from(other),
    }
}

fn not_fetched(workload: &str, commit: &str) -> ApiError {
    ApiError::unprocessable(format!(
        "commit {commit} is not in the repository of workload `{workload}`, nor on its \
         `origin` (the server log says why it could not fetch)"
    ))
}
