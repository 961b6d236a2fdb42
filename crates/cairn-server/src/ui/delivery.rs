//! The delivery view: a workload's path from commit to production (its
//! pipeline page), the forms that move it (approve, promote, roll back, each
//! promotion or rollback shown with the gate's answer on a confirm page
//! first), and the organisation's overview.
//!
//! Nothing here decides or deploys by itself: the gate's answer is
//! `Promoter::evaluate` (the same typed gate, `decide_input_or_deny`, that a
//! promotion uses; a gate that cannot decide is shown as a denial with its
//! reason), and the forms call `cairn_engine::review::record` and
//! `Promoter::promote` exactly as the CLI and the JSON API do. Every form is a
//! POST with the session's CSRF token from this origin; the roles model decides
//! which buttons a page shows, and the engine decides again on submit.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cairn_engine::exposures::{Exposure, ExposureFilter};
use cairn_engine::promotion::{EnvironmentStatus, Intent, Promoter, Request};
use cairn_engine::review::VerifiedReview;
use cairn_evidence::review::Verdict;
use cairn_model::config::OrgConfig;
use cairn_model::{DeploymentKind, DeploymentRecord, DeploymentStatus, RunRecord, TargetKind};
use cairn_policy::{Action, Decision, Scope};
use cairn_store::RunFilter;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, artifact_link, badge, page, short_digest, time};
use super::{PageActor, PageError, html};
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::{AppState, Shared};

/// Recent commits a pipeline page shows.
const RECENT_COMMITS: usize = 10;
/// Images looked through for a workload's newest build.
const RECENT_IMAGES: usize = 50;
/// Longest workload, environment, digest or reason a form accepts.
const MAX_FIELD: usize = 4096;
/// Rows of the overview's lists.
const OVERVIEW_ROWS: usize = 50;

pub(super) fn routes() -> Vec<Route> {
    let view = Access::Role(Action::View);
    vec![
        Route::new(Method::GET, "/", view, get(overview))
            .summary("Overview: workloads × environments, failing runs, reviews waiting, overdue exposures")
            .tag("ui"),
        Route::new(Method::GET, "/workloads/{name}", view, get(pipeline))
            .summary("A workload's pipeline: recent commits flowing into its environments, each with the gate's answer now")
            .tag("ui")
            .example("/workloads/hello"),
        Route::new(Method::GET, "/workloads/{name}/confirm", view, get(confirm))
            .summary("What the gate says now about a promotion or rollback, before confirming it")
            .tag("ui")
            .example("/workloads/hello/confirm?action=promote&env=staging&image=sha256:0000000000000000000000000000000000000000000000000000000000000000"),
        Route::new(
            Method::POST,
            "/workloads/{name}/approvals",
            Access::Role(Action::Approve),
            post(approve),
        )
        .summary("Approve one commit of the workload (a form with the session's CSRF token)")
        .tag("ui")
        .example("/workloads/hello/approvals")
        .success(StatusCode::SEE_OTHER),
        Route::new(
            Method::POST,
            "/workloads/{name}/promotions",
            Access::Role(Action::Promote),
            post(promote),
        )
        .summary("Promote an image through the gate (a form with the session's CSRF token)")
        .tag("ui")
        .example("/workloads/hello/promotions")
        .success(StatusCode::SEE_OTHER),
        Route::new(
            Method::POST,
            "/workloads/{name}/rollbacks",
            Access::Role(Action::Rollback),
            post(rollback),
        )
        .summary("Roll an environment back through the gate (a form with the session's CSRF token)")
        .tag("ui")
        .example("/workloads/hello/rollbacks")
        .success(StatusCode::SEE_OTHER),
        Route::new(Method::GET, "/policy", view, get(policy))
            .summary("The gate's rules: each policy file the gate loads")
            .tag("ui"),
    ]
}

fn ok(markup: Markup) -> Response {
    html(StatusCode::OK, markup)
}

// ---- what a page knows --------------------------------------------------------

/// How an environment's deployment is doing, by its target's own answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Health {
    /// The local target's sandbox runs and serves.
    Healthy(String),
    /// The local target says it does not run.
    Down(String),
    /// GitOps: the repository holds it, at this commit (what runs is the
    /// cluster's business).
    Committed(String),
    /// No answer: never "healthy".
    Unknown(String),
}

impl Health {
    fn word(&self) -> &'static str {
        match self {
            Health::Healthy(_) => "healthy",
            Health::Down(_) => "down",
            Health::Committed(_) => "committed",
            Health::Unknown(_) => "unknown",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Health::Healthy(d) | Health::Down(d) | Health::Committed(d) | Health::Unknown(d) => d,
        }
    }

    fn status(&self) -> &'static str {
        match self {
            Health::Healthy(_) | Health::Committed(_) => "passed",
            Health::Down(_) => "failed",
            Health::Unknown(_) => "skipped",
        }
    }
}

/// What runs in one environment, by the engine's `status` (or, when that
/// cannot answer, by the record alone, with health unknown).
#[derive(Debug, Clone)]
pub(super) struct Running {
    deployment: DeploymentRecord,
    health: Health,
    overridden: Option<String>,
}

fn health_of(row: &EnvironmentStatus) -> Health {
    let d = &row.deployment;
    if d.status != DeploymentStatus::Deployed {
        return Health::Down(
            d.reason
                .clone()
                .unwrap_or_else(|| format!("its record says {}", d.status.as_str())),
        );
    }
    match TargetKind::parse(&d.target) {
        Some(TargetKind::Local) if row.running => {
            Health::Healthy(format!("its sandbox serves at {}", d.detail))
        }
        Some(TargetKind::Local) => {
            Health::Down("the local target's sandbox for it does not run or serve".to_owned())
        }
        Some(TargetKind::Gitops) => Health::Committed(d.detail.clone()),
        None => Health::Unknown(format!(
            "cairn cannot ask a `{}` target how it is doing",
            d.target
        )),
    }
}

/// What runs where, per (workload, environment). A target whose state cannot
/// be read makes health "unknown" (with why), never "healthy".
fn running_map(s: &Shared) -> Result<BTreeMap<(String, String), Running>, ApiError> {
    let mut map = BTreeMap::new();
    match cairn_engine::promotion::status(&s.config.data, &*s.store) {
        Ok(rows) => {
            for row in rows {
                let health = health_of(&row);
                let d = row.deployment;
                map.insert(
                    (d.workload.clone(), d.environment.clone()),
                    Running {
                        deployment: d,
                        health,
                        overridden: row.overridden,
                    },
                );
            }
        }
        Err(e) => {
            let why = format!(
                "the deploy target did not answer: {}",
                cairn_model::error_chain(&e)
            );
            for d in s
                .store
                .deployments(None, None, cairn_engine::promotion::STATUS_SCAN)?
            {
                if d.status != DeploymentStatus::Deployed {
                    continue;
                }
                map.entry((d.workload.clone(), d.environment.clone()))
                    .or_insert_with(|| Running {
                        overridden: (DeploymentKind::parse(&d.kind)
                            == Some(DeploymentKind::Override))
                        .then(|| "(reason not read)".to_owned()),
                        deployment: d,
                        health: Health::Unknown(why.clone()),
                    });
            }
        }
    }
    Ok(map)
}

/// The gate's answer now: its decision, or why it could not decide (shown
/// as a denial, never as allowed).
pub(super) type Answer = Result<Decision, String>;

fn allowed(answer: &Answer) -> bool {
    matches!(answer, Ok(d) if d.allow)
}

/// What the gate says now about `actor` moving `image` of `workload` to `env`.
fn gate_answer(
    s: &Shared,
    org: &OrgConfig,
    actor: &Actor,
    workload: &str,
    env: &str,
    image: &str,
    intent: Intent,
) -> Answer {
    let promoter = Promoter {
        data: &s.config.data,
        store: &*s.store,
        org,
        platform_dir: s.config.platform_dir.as_deref(),
    };
    promoter
        .evaluate(&Request {
            workload: workload.to_owned(),
            image: image.to_owned(),
            environment: env.to_owned(),
            actor: actor.identity.clone(),
            intent,
            override_reason: None,
        })
        .map(|(_, decision)| decision)
        .map_err(|e| {
            format!(
                "the gate could not decide: {}",
                cairn_model::error_chain(&e)
            )
        })
}

/// The next candidate of one environment.
#[derive(Debug, Clone)]
struct Candidate {
    digest: String,
    commit: Option<String>,
    answer: Answer,
    /// The newest recorded denial of this very move: (change id, log index).
    denied: Option<(i64, u64)>,
}

#[derive(Debug, Clone)]
struct EnvCell {
    name: String,
    target: &'static str,
    running: Option<Running>,
    exposures: Vec<Exposure>,
    candidate: Option<Candidate>,
    may_promote: bool,
    may_rollback: bool,
}

#[derive(Debug, Clone)]
struct CommitRow {
    run: RunRecord,
    author: Option<String>,
    reviews: Vec<VerifiedReview>,
    image: Option<String>,
    /// The environments running its image.
    running_in: Vec<String>,
}

/// Which buttons the page shows: only to a browser session, only where the
/// roles allow (the engine checks again on submit).
#[derive(Debug, Clone, Copy, Default)]
struct Powers {
    approve: bool,
}

fn may(s: &Shared, actor: &Actor, action: Action, scope: &Scope) -> bool {
    actor.csrf().is_some()
        && cairn_engine::access::authorize(&*s.store, &actor.identity, action, scope).is_ok()
}

struct Pipeline {
    workload: cairn_model::WorkloadRecord,
    path: Vec<String>,
    commits: Vec<CommitRow>,
    envs: Vec<EnvCell>,
    powers: Powers,
    now: i64,
}

fn open_exposures(s: &Shared, org: &OrgConfig, now: i64) -> Result<Vec<Exposure>, ApiError> {
    let mut list = cairn_engine::exposures::list(
        &*s.store,
        &s.config.data,
        org,
        &ExposureFilter::default(),
        now,
    )?;
    list.retain(|e| {
        matches!(
            e.state,
            cairn_engine::exposures::ExposureState::Open
                | cairn_engine::exposures::ExposureState::Remediating
        )
    });
    Ok(list)
}

fn build_pipeline(s: &Shared, actor: &Actor, name: &str) -> Result<Pipeline, ApiError> {
    s.authorize(actor, Action::View, &Scope::workload(name.to_owned()))?;
    let workload = s
        .store
        .workload(name)?
        .ok_or_else(|| ApiError::not_found(format!("workload `{name}` is not onboarded")))?;
    let org = cairn_engine::load_org(s.config.platform_dir.as_deref())?;
    let now = cairn_engine::now_ms();
    let running = running_map(s)?;
    let exposures = open_exposures(s, &org, now)?;
    let images = s.store.images(Some(name), None, RECENT_IMAGES)?;
    let repo = std::path::Path::new(&workload.repo);

    let mut commits = Vec::new();
    for run in s.store.runs(&RunFilter {
        workload: Some(name.to_owned()),
        status: None,
        limit: RECENT_COMMITS,
        ..Default::default()
    })? {
        let image = images
            .iter()
            .find(|i| i.run == Some(run.id))
            .map(|i| i.digest.clone());
        let running_in = org
            .promotion_path
            .iter()
            .filter(|env| {
                running
                    .get(&(name.to_owned(), (*env).clone()))
                    .is_some_and(|r| Some(&r.deployment.digest) == image.as_ref())
            })
            .cloned()
            .collect();
        commits.push(CommitRow {
            author: cairn_engine::review::commit_author(repo, &run.commit).ok(),
            reviews: cairn_engine::review::verified_reviews(&s.config.data, &*s.store, &run.commit)
                .unwrap_or_default(),
            image,
            running_in,
            run,
        });
    }

    let changes = s
        .store
        .changes(Some(name), cairn_engine::promotion::STATUS_SCAN)?;
    let mut envs = Vec::new();
    for (i, env) in org.promotion_path.iter().enumerate() {
        let here = running.get(&(name.to_owned(), env.clone())).cloned();
        let current = here.as_ref().map(|r| r.deployment.digest.clone());
        // The next candidate: the newest build for the first environment,
        // what runs in the one before for the others.
        let next = if i == 0 {
            images.first().map(|i| i.digest.clone())
        } else {
            running
                .get(&(name.to_owned(), org.promotion_path[i - 1].clone()))
                .map(|r| r.deployment.digest.clone())
        }
        .filter(|d| Some(d) != current.as_ref());
        let candidate = next.map(|digest| {
            let answer = gate_answer(s, &org, actor, name, env, &digest, Intent::Promote);
            let denied = changes
                .iter()
                .find(|(_, c)| c.kind == "denied" && c.environment == *env && c.to_digest == digest)
                .map(|(id, c)| (*id, c.log_index));
            Candidate {
                commit: images
                    .iter()
                    .find(|i| i.digest == digest)
                    .map(|i| i.commit.clone()),
                digest,
                answer,
                denied,
            }
        });
        envs.push(EnvCell {
            name: env.clone(),
            target: match org.target(env) {
                cairn_model::config::DeployTarget::Local => "local",
                cairn_model::config::DeployTarget::Gitops { .. } => "gitops",
            },
            exposures: exposures
                .iter()
                .filter(|e| e.workload == name && e.environment == *env)
                .cloned()
                .collect(),
            running: here,
            candidate,
            may_promote: may(
                s,
                actor,
                Action::Promote,
                &Scope::environment(name.to_owned(), env.clone()),
            ),
            may_rollback: may(
                s,
                actor,
                Action::Rollback,
                &Scope::environment(name.to_owned(), env.clone()),
            ),
        });
    }
    let scope = Scope::workload(name.to_owned());
    Ok(Pipeline {
        powers: Powers {
            approve: may(s, actor, Action::Approve, &scope),
        },
        path: org.promotion_path.clone(),
        workload,
        commits,
        envs,
        now,
    })
}

// ---- /workloads/{name} ----------------------------------------------------------

pub(super) async fn pipeline(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let p = state
        .blocking({
            let actor = actor.clone();
            move |s| build_pipeline(s, &actor, &name)
        })
        .await?;
    let title = format!("Workload {}", p.workload.name);
    Ok(ok(page(
        &title,
        Nav::Workloads,
        Some(&actor),
        pipeline_body(&p, actor.csrf()),
    )))
}

fn review_state(c: &CommitRow) -> Markup {
    let approvals: Vec<&VerifiedReview> = c
        .reviews
        .iter()
        .filter(|r| r.verdict == Verdict::Approve)
        .collect();
    let changes: Vec<&VerifiedReview> = c
        .reviews
        .iter()
        .filter(|r| r.verdict == Verdict::RequestChanges)
        .collect();
    html! {
        @if !changes.is_empty() {
            span.badge data-status="failed" { "changes requested" }
            " by " (changes.iter().map(|r| r.reviewer.as_str()).collect::<Vec<_>>().join(", "))
        } @else if approvals.is_empty() {
            span.badge data-status="queued" data-review="none" { "not reviewed" }
        } @else {
            span.badge data-status="passed" data-review="approved" { "approved" }
            " by " (approvals.iter().map(|r| r.reviewer.as_str()).collect::<Vec<_>>().join(", "))
        }
    }
}

/// The gate's answer in plain words, each denying rule linked to its text,
/// the evidence and the recorded denial.
fn answer_markup(answer: &Answer, digest: &str, denied: Option<(i64, u64)>) -> Markup {
    html! {
        @match answer {
            Ok(d) if d.allow => {
                p.gate data-allowed="true" { span.badge data-status="passed" { "gate: allowed" } }
            }
            Ok(d) => {
                div.gate data-allowed="false" {
                    span.badge data-status="failed" { "gate: denied" }
                    ul.reasons {
                        @for r in &d.reasons {
                            li data-rule=(r.rule) {
                                a.rule href={ "/policy#rule-" (r.rule) } { code { (r.rule) } }
                                ": " span.message { (r.message) }
                            }
                        }
                    }
                    p.links {
                        a href={ "/artifacts/" (digest) } { "evidence" }
                        @if let Some((id, index)) = denied {
                            " · " a href={ "/audit#change-" (id) } { "denied before: change " (id) ", log entry " (index) }
                        }
                    }
                }
            }
            Err(why) => {
                div.gate data-allowed="false" data-gate-error="true" {
                    span.badge data-status="failed" { "gate: denied" }
                    ul.reasons { li data-rule="gate" { code { "gate" } ": " span.message { (why) } } }
                }
            }
        }
    }
}

fn pipeline_body(p: &Pipeline, csrf: Option<&str>) -> Markup {
    let name = &p.workload.name;
    html! {
        h1 { "Workload " (name) }
        p.muted { code { (p.workload.repo) } " · " a href={ "/runs?workload=" (name) } { "all runs" } }
        section #pipeline {
            div.lane #commits {
                h2 { "Commits" }
                @if p.commits.is_empty() {
                    p.muted #no-commits { "No run yet." }
                }
                @for c in &p.commits {
                    div.card.commit data-commit=(c.run.commit) data-run=(c.run.id.0) {
                        div.card-head {
                            code title=(c.run.commit) { (c.run.commit.chars().take(12).collect::<String>()) }
                            " " a href={ "/runs/" (c.run.id.0) } { "run #" (c.run.id.0) }
                            " " (badge(c.run.status.as_str()))
                        }
                        div.line-clip { "by " (c.author.as_deref().unwrap_or("unknown author")) ", " (time(c.run.created_at_ms)) }
                        div.review { (review_state(c)) }
                        @if let Some(image) = &c.image {
                            div { "image " (artifact_link(image)) }
                        }
                        @if !c.running_in.is_empty() {
                            div.muted { "runs in " (c.running_in.join(", ")) }
                        }
                        @if let (true, Some(csrf), true) = (p.powers.approve, csrf, c.run.status.as_str() == "succeeded") {
                            form.approve method="post" action={ "/workloads/" (name) "/approvals" } {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="commit" value=(c.run.commit);
                                button type="submit" { "Approve" }
                            }
                        }
                    }
                }
            }
            @if p.path.is_empty() {
                div.lane #no-environments {
                    h2 { "Environments" }
                    p.muted { "No environment is on the promotion path: org.toml's " code { "[promotion] path" } " lists them." }
                }
            }
            @for env in &p.envs {
                div.lane.environment data-environment=(env.name) {
                    h2 { (env.name) " " span.muted.small { "(" (env.target) ")" } }
                    @match &env.running {
                        None => { p.muted.running { "Nothing deployed." } }
                        Some(r) => {
                            div.card.running {
                                div.card-head { (artifact_link(&r.deployment.digest)) }
                                div { "since " (time(r.deployment.deployed_at_ms)) " by " (r.deployment.actor) }
                                div.health data-health=(r.health.word()) title=(r.health.detail()) {
                                    "health: " span.badge data-status=(r.health.status()) { (r.health.word()) }
                                    @if matches!(r.health, Health::Committed(_) | Health::Unknown(_) | Health::Down(_)) {
                                        " " span.muted.line-clip { (r.health.detail()) }
                                    }
                                }
                                @if let Some(reason) = &r.overridden {
                                    div.override data-overridden="true" { span.badge data-status="failed" { "OVERRIDDEN" } " " (reason) }
                                }
                                @if let (true, Some(_), Some(prev)) = (env.may_rollback, csrf, &r.deployment.previous_digest) {
                                    a.button.rollback href={ "/workloads/" (name) "/confirm?action=rollback&env=" (env.name) "&image=" (prev) } { "Roll back to " (short_digest(prev)) }
                                }
                            }
                        }
                    }
                    div.exposures data-open=(env.exposures.len()) {
                        @if env.exposures.is_empty() {
                            span.muted { "no open exposures" }
                        } @else {
                            a href="/exposures" { (env.exposures.len()) " open exposure(s)" }
                            ul.exposure-list { @for e in env.exposures.iter().take(5) {
                                li {
                                    code { (e.advisory) } " " (badge(&e.severity)) " "
                                    // The same clock as the exposures page's, counted live by the script.
                                    @if e.overdue(p.now) {
                                        span.clock data-deadline-ms=(e.deadline_ms) data-overdue="true" { "OVERDUE by " (super::pages::clock_text(p.now - e.deadline_ms)) }
                                    } @else {
                                        span.clock data-deadline-ms=(e.deadline_ms) data-overdue="false" { (super::pages::clock_text(e.deadline_ms - p.now)) " left" }
                                    }
                                }
                            } }
                        }
                    }
                    @if let Some(c) = &env.candidate {
                        div.card.candidate data-candidate=(c.digest) data-allowed=(allowed(&c.answer)) {
                            div.card-head {
                                "next: " (artifact_link(&c.digest))
                                @if let Some(commit) = &c.commit { " " code { (commit.chars().take(12).collect::<String>()) } }
                            }
                            (answer_markup(&c.answer, &c.digest, c.denied))
                            @if let (true, Some(_)) = (env.may_promote, csrf) {
                                a.button.promote href={ "/workloads/" (name) "/confirm?action=promote&env=" (env.name) "&image=" (c.digest) } { "Promote to " (env.name) "…" }
                            }
                        }
                    } @else if env.running.is_some() {
                        p.muted.up-to-date { "No newer candidate." }
                    }
                }
            }
        }
    }
}

// ---- /workloads/{name}/confirm ----------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfirmQuery {
    action: String,
    env: String,
    image: String,
}

fn intent_of(action: &str) -> Result<Intent, ApiError> {
    match action {
        "promote" => Ok(Intent::Promote),
        "rollback" => Ok(Intent::Rollback),
        _ => Err(ApiError::bad_request("`action` is `promote` or `rollback`")),
    }
}

fn check_fields(fields: &[&str]) -> Result<(), ApiError> {
    if fields.iter().any(|f| f.is_empty() || f.len() > MAX_FIELD) {
        return Err(ApiError::bad_request(format!(
            "every field is 1 to {MAX_FIELD} bytes"
        )));
    }
    Ok(())
}

pub(super) async fn confirm(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
    Path(name): Path<String>,
    query: Result<Query<ConfirmQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let intent = intent_of(&q.action)?;
    check_fields(&[&name, &q.env, &q.image])?;
    let (answer, may_act, may_override) = state
        .blocking({
            let actor = actor.clone();
            let (name, env, image) = (name.clone(), q.env.clone(), q.image.clone());
            move |s| {
                s.authorize(
                    &actor,
                    Action::View,
                    &Scope::environment(name.clone(), env.clone()),
                )?;
                let org = cairn_engine::load_org(s.config.platform_dir.as_deref())?;
                let answer = gate_answer(s, &org, &actor, &name, &env, &image, intent);
                let action = match intent {
                    Intent::Promote => Action::Promote,
                    Intent::Rollback => Action::Rollback,
                };
                let scope = Scope::environment(name, env);
                Ok((
                    answer,
                    may(s, &actor, action, &scope),
                    may(s, &actor, Action::Override, &scope),
                ))
            }
        })
        .await?;
    let verb = match intent {
        Intent::Promote => "Promote",
        Intent::Rollback => "Roll back",
    };
    let action = match intent {
        Intent::Promote => "promotions",
        Intent::Rollback => "rollbacks",
    };
    let body = html! {
        h1 { (verb) " " (name) " in " (q.env) }
        dl.facts {
            dt { "Workload" } dd { a href={ "/workloads/" (name) } { (name) } }
            dt { "Environment" } dd #confirm-env { (q.env) }
            dt { "Image" } dd { (artifact_link(&q.image)) }
        }
        h2 { "The gate's answer now" }
        div #gate-answer { (answer_markup(&answer, &q.image, None)) }
        @match (may_act, actor.csrf()) {
            (true, Some(csrf)) => {
                form #confirm method="post" action={ "/workloads/" (name) "/" (action) } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="env" value=(q.env);
                    input type="hidden" name="image" value=(q.image);
                    @if allowed(&answer) {
                        button type="submit" { (verb) }
                    } @else if !may_override {
                        p.muted #no-override { "The gate denies this, and your roles do not allow an override here." }
                    } @else {
                        p { "The gate denies this. Break-glass: an override deploys anyway, needs a reason, and is marked on the environment, the run and the audit trail until a clean promotion replaces it." }
                        label for="override" { "Override reason" }
                        textarea #override name="override" rows="2" maxlength="4096" required {}
                        button.danger type="submit" { (verb) " despite the denial" }
                    }
                }
            }
            _ => { p.muted #no-rights { "Your roles do not allow this here; ask a release manager." } }
        }
        p { a href={ "/workloads/" (name) } { "Back to the pipeline" } }
    };
    Ok(ok(page(
        &format!("{verb} {name}"),
        Nav::Workloads,
        Some(&actor),
        body,
    )))
}

// ---- the forms ------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub(super) struct ActForm {
    csrf: Option<String>,
    commit: Option<String>,
    env: Option<String>,
    image: Option<String>,
    #[serde(rename = "override")]
    override_reason: Option<String>,
}

/// Refuses a form from another origin or without the session's CSRF token,
/// then checks the actor may `action` at all on the workload.
async fn accept(
    state: &AppState,
    actor: &Actor,
    name: &str,
    headers: &HeaderMap,
    form: Result<axum::Form<ActForm>, axum::extract::rejection::FormRejection>,
    action: Action,
) -> Result<ActForm, PageError> {
    super::login::same_origin(headers)?;
    let form = form.map(|axum::Form(f)| f);
    let submitted = form.as_ref().ok().and_then(|f| f.csrf.clone());
    if !crate::session::csrf_ok(actor, submitted.as_deref()) {
        return Err(ApiError::forbidden(
            "this form needs the session's CSRF token: use the buttons on the workload's page",
        )
        .into());
    }
    let env = form.as_ref().ok().and_then(|f| f.env.clone());
    state
        .blocking({
            let (actor, name) = (actor.clone(), name.to_owned());
            move |s| {
                if action == Action::Approve {
                    return s.authorize(&actor, action, &Scope::workload(name));
                }
                // Promote and roll back are granted per environment: the
                // form's, or (to refuse early) any on the path.
                let envs = match env {
                    Some(env) => vec![env],
                    None => {
                        cairn_engine::load_org(s.config.platform_dir.as_deref())?.promotion_path
                    }
                };
                let mut refused = None;
                for env in envs {
                    match s.authorize(&actor, action, &Scope::environment(name.clone(), env)) {
                        Ok(()) => return Ok(()),
                        Err(e) => refused = Some(e),
                    }
                }
                Err(refused.unwrap_or_else(|| ApiError::forbidden("no environment to act in")))
            }
        })
        .await?;
    let form = form.map_err(|e| ApiError::bad_request(e.body_text()))?;
    check_fields(&[name])?;
    Ok(form)
}

pub(super) async fn approve(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
    Path(name): Path<String>,
    headers: HeaderMap,
    form: Result<axum::Form<ActForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = accept(&state, &actor, &name, &headers, form, Action::Approve).await?;
    let commit = form
        .commit
        .filter(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            ApiError::bad_request("`commit` must be a full commit id (40 hex digits)")
        })?;
    state
        .blocking({
            let name = name.clone();
            move |s| {
                let record = s.store.workload(&name)?.ok_or_else(|| {
                    ApiError::not_found(format!("workload `{name}` is not onboarded"))
                })?;
                cairn_engine::review::record(
                    &s.config.data,
                    &*s.store,
                    &actor.identity,
                    std::path::Path::new(&record.repo),
                    &name,
                    &commit,
                    Verdict::Approve,
                    None,
                )?;
                Ok(())
            }
        })
        .await?;
    Ok(Redirect::to(&format!("/workloads/{}", super::percent_encode(&name))).into_response())
}

pub(super) async fn promote(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
    Path(name): Path<String>,
    headers: HeaderMap,
    form: Result<axum::Form<ActForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = accept(&state, &actor, &name, &headers, form, Action::Promote).await?;
    act(state, actor, name, form, Intent::Promote).await
}

pub(super) async fn rollback(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
    Path(name): Path<String>,
    headers: HeaderMap,
    form: Result<axum::Form<ActForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = accept(&state, &actor, &name, &headers, form, Action::Rollback).await?;
    act(state, actor, name, form, Intent::Rollback).await
}

/// A promotion or rollback through the engine's `Promoter::promote` (which
/// authorises at the environment, authorises any override, decides, records,
/// deploys): allowed → back to the pipeline; denied → a page with the
/// denying rules, nothing deployed.
async fn act(
    state: AppState,
    actor: Actor,
    name: String,
    form: ActForm,
    intent: Intent,
) -> Result<Response, PageError> {
    let (Some(env), Some(image)) = (form.env, form.image) else {
        return Err(ApiError::bad_request("the form needs `env` and `image`").into());
    };
    let override_reason = form
        .override_reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    check_fields(&[&env, &image])?;
    if override_reason
        .as_ref()
        .is_some_and(|r| r.len() > MAX_FIELD)
    {
        return Err(ApiError::bad_request(format!(
            "the override reason is longer than {MAX_FIELD} bytes"
        ))
        .into());
    }
    let outcome = state
        .blocking({
            let actor = actor.clone();
            let (name, env, image) = (name.clone(), env.clone(), image.clone());
            move |s| {
                let org = cairn_engine::load_org(s.config.platform_dir.as_deref())?;
                let promoter = Promoter {
                    data: &s.config.data,
                    store: &*s.store,
                    org: &org,
                    platform_dir: s.config.platform_dir.as_deref(),
                };
                let outcome = promoter.promote(&Request {
                    workload: name,
                    image,
                    environment: env,
                    actor: actor.identity,
                    intent,
                    override_reason,
                })?;
                if !outcome.decision.allow {
                    s.metrics.gate_denied();
                }
                Ok((
                    outcome.decision,
                    outcome.change_id,
                    outcome.change.log_index,
                    outcome.change.to_digest,
                ))
            }
        })
        .await?;
    let (decision, change_id, log_index, digest) = outcome;
    if decision.allow {
        return Ok(
            Redirect::to(&format!("/workloads/{}", super::percent_encode(&name))).into_response(),
        );
    }
    let body = html! {
        section #denied data-change=(change_id) {
            h1 { "Denied: nothing was deployed" }
            p { "The gate denied " (name) " → " (env) " (" (artifact_link(&digest)) "). "
                "The denial is recorded: " a href={ "/audit#change-" (change_id) } { "change " (change_id) } ", log entry " (log_index) "." }
            (answer_markup(&Ok(decision), &digest, Some((change_id, log_index))))
            p { a href={ "/workloads/" (name) } { "Back to the pipeline" } }
        }
    };
    Ok(html(
        StatusCode::UNPROCESSABLE_ENTITY,
        page("Denied", Nav::Workloads, Some(&actor), body),
    ))
}

// ---- /policy ----------------------------------------------------------------------

pub(super) async fn policy(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
) -> Result<Response, PageError> {
    let files = state
        .blocking({
            let actor = actor.clone();
            move |s| {
                // Any role that views something may read the rules.
                s.visible(&actor)?;
                let mut files: Vec<(String, String)> = cairn_policy::default_policy_files()
                    .into_iter()
                    .filter(|(f, _)| !f.ends_with("_test.rego"))
                    .map(|(f, t)| (f.to_owned(), t.to_owned()))
                    .collect();
                if let Some(dir) = s
                    .config
                    .platform_dir
                    .as_deref()
                    .map(|p| p.join(cairn_engine::promotion::POLICY_DIR))
                    && let Ok(entries) = std::fs::read_dir(&dir)
                {
                    let mut names: Vec<_> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "rego"))
                        .collect();
                    names.sort();
                    for path in names.into_iter().take(64) {
                        let meta = std::fs::symlink_metadata(&path).ok();
                        if meta.is_some_and(|m| m.is_file() && m.len() < 1 << 20)
                            && let Ok(text) = std::fs::read_to_string(&path)
                        {
                            files.push((path.display().to_string(), text));
                        }
                    }
                }
                Ok(files)
            }
        })
        .await?;
    let body = html! {
        h1 { "The gate's rules" }
        p.muted { "Every promotion and rollback is decided by these policies (Rego); a denial names its rule." }
        @for (file, text) in &files {
            @let rule = std::path::Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or(file);
            section.rule id={ "rule-" (rule) } {
                h2 { code { (rule) } " " span.muted.small { (file) } }
                pre.lines { (text) }
            }
        }
    };
    Ok(ok(page("Policy", Nav::None, Some(&actor), body)))
}

// ---- / (the overview) -------------------------------------------------------------

struct OverviewRow {
    workload: cairn_model::WorkloadRecord,
    latest: Option<RunRecord>,
    may_run: bool,
    /// Per environment of the path.
    cells: Vec<Option<Running>>,
    /// Open (and overdue) exposures per environment.
    exposures: Vec<(usize, usize)>,
    /// The newest build not yet approved and deployed nowhere.
    waiting: Option<(RunRecord, String)>,
}

pub(super) async fn overview(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
) -> Result<Response, PageError> {
    let (path, rows, overdue, now) = state
        .blocking({
            let actor = actor.clone();
            move |s| {
                let visible = s.visible(&actor)?;
                let org = cairn_engine::load_org(s.config.platform_dir.as_deref())?;
                let now = cairn_engine::now_ms();
                let running = running_map(s)?;
                let exposures = open_exposures(s, &org, now)?;
                let mut rows = Vec::new();
                for w in s.store.workloads()? {
                    if !visible.includes(&w.name) {
                        continue;
                    }
                    let name = w.name.clone();
                    let latest = s
                        .store
                        .runs(&RunFilter {
                            workload: Some(name.clone()),
                            status: None,
                            limit: 1,
                            ..Default::default()
                        })?
                        .into_iter()
                        .next();
                    let cells = org
                        .promotion_path
                        .iter()
                        .map(|env| running.get(&(name.clone(), env.clone())).cloned())
                        .collect::<Vec<_>>();
                    let counts = org
                        .promotion_path
                        .iter()
                        .map(|env| {
                            let here = exposures
                                .iter()
                                .filter(|e| e.workload == name && e.environment == *env);
                            let overdue = here.clone().filter(|e| e.overdue(now)).count();
                            (here.count(), overdue)
                        })
                        .collect();
                    let deployed = |digest: &str| {
                        running
                            .iter()
                            .any(|((w, _), r)| *w == name && r.deployment.digest == digest)
                    };
                    let waiting = match s.store.images(Some(&name), None, 1)?.into_iter().next() {
                        Some(image) if !deployed(&image.digest) => {
                            let approved = cairn_engine::review::verified_reviews(
                                &s.config.data,
                                &*s.store,
                                &image.commit,
                            )
                            .unwrap_or_default()
                            .iter()
                            .any(|r| r.verdict == Verdict::Approve);
                            match (approved, image.run) {
                                (false, Some(run)) => s.store.run(run)?.map(|r| (r, image.digest)),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    rows.push(OverviewRow {
                        may_run: may(s, &actor, Action::Run, &Scope::workload(name)),
                        workload: w,
                        latest,
                        cells,
                        exposures: counts,
                        waiting,
                    });
                }
                let overdue: Vec<Exposure> = exposures
                    .into_iter()
                    .filter(|e| e.overdue(now) && visible.includes(&e.workload))
                    .take(OVERVIEW_ROWS)
                    .collect();
                Ok((org.promotion_path.clone(), rows, overdue, now))
            }
        })
        .await?;
    let workloads: Vec<_> = rows
        .iter()
        .map(|r| (r.workload.clone(), r.latest.clone(), r.may_run))
        .collect();
    let body = html! {
        h1 { "Overview" }
        @if rows.is_empty() {
            p.muted #no-workloads { "No workload is onboarded yet (" code { "POST /api/workloads" } ")." }
        } @else {
            h2 { "What runs where" }
            @if path.is_empty() {
                p.muted #no-environments { "No environment is on the promotion path: org.toml's " code { "[promotion] path" } " lists them." }
            } @else {
                div.scroll {
                    table #matrix {
                        thead { tr { th { "Workload" } @for env in &path { th { (env) } } } }
                        tbody { @for r in rows.iter().take(OVERVIEW_ROWS * 4) {
                            tr data-matrix-workload=(r.workload.name) {
                                td { a.line-clip href={ "/workloads/" (r.workload.name) } { (r.workload.name) } }
                                @for (i, cell) in r.cells.iter().enumerate() {
                                    @let (open, late) = r.exposures.get(i).copied().unwrap_or((0, 0));
                                    td.cell data-environment=(path[i]) data-digest=(cell.as_ref().map(|c| c.deployment.digest.as_str()).unwrap_or("")) {
                                        @match cell {
                                            None => { span.none { "—" } }
                                            Some(c) => {
                                                (artifact_link(&c.deployment.digest)) br;
                                                (time(c.deployment.deployed_at_ms)) " "
                                                span.badge data-status=(c.health.status()) title=(c.health.detail()) { (c.health.word()) }
                                                @if c.overridden.is_some() { " " span.badge data-status="failed" data-overridden="true" { "OVERRIDDEN" } }
                                                @if open > 0 {
                                                    br; a href="/exposures" { (open) " exposure(s)" @if late > 0 { ", " strong { (late) " overdue" } } }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        } }
                    }
                }
            }
            div.columns {
                section #failing {
                    h2 { "Runs failing now" }
                    @let failing: Vec<&OverviewRow> = rows.iter().filter(|r| r.latest.as_ref().is_some_and(|l| l.status.as_str() == "failed")).collect();
                    @if failing.is_empty() { p.muted { "None: every workload's latest run passed or is going." } }
                    ul { @for r in failing.iter().take(OVERVIEW_ROWS) { @if let Some(run) = &r.latest {
                        li { a href={ "/runs/" (run.id.0) } { (r.workload.name) " run #" (run.id.0) } " " (badge("failed")) " " (time(run.created_at_ms)) }
                    } } }
                }
                section #waiting {
                    h2 { "Waiting for review" }
                    @let waiting: Vec<&OverviewRow> = rows.iter().filter(|r| r.waiting.is_some()).collect();
                    @if waiting.is_empty() { p.muted { "Nothing is waiting for review." } }
                    ul { @for r in waiting.iter().take(OVERVIEW_ROWS) { @if let Some((run, digest)) = &r.waiting {
                        li data-waiting=(r.workload.name) {
                            a href={ "/workloads/" (r.workload.name) } { (r.workload.name) }
                            " " code { (run.commit.chars().take(12).collect::<String>()) } " " (short_digest(digest))
                        }
                    } } }
                }
                section #overdue {
                    h2 { "Overdue exposures" }
                    @if overdue.is_empty() { p.muted { "None past its deadline." } }
                    ul { @for e in &overdue {
                        li { a href="/exposures" { (e.workload) " in " (e.environment) } ": " code { (e.advisory) } " " (badge(&e.severity)) " overdue since " (time(e.deadline_ms)) }
                    } }
                }
            }
            @let _ = now;
        }
        (super::pages::workloads_body(&workloads, actor.csrf()))
    };
    Ok(ok(page("Overview", Nav::Workloads, Some(&actor), body)))
}
