//! The pages: workloads, runs, one run (stages, logs, why it failed),
//! an artifact (evidence, SBOM, findings), environments (what is deployed
//! where) and the audit trail (change records and their log entries). Each
//! reads the store inside `state.blocking` after the same authorisation as the
//! JSON API: `Shared::visible` for lists, `Shared::authorize` for one workload.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_engine::explain::{Explanation, explain};
use cairn_model::{
    ChangeRecord, DeploymentRecord, EvidenceRecord, LogLine, RunRecord, StageRecord, WorkloadRecord,
};
use cairn_policy::{Action, Scope};
use cairn_store::{FindingFilter, StoredFinding};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, artifact_link, badge, duration, maybe_time, page, short_digest, time};
use super::{PageActor, PageError, html};
use crate::api::runs::visible_run;
use crate::auth::{Actor, Visible};
use crate::problem::ApiError;
use crate::runs_query::{RunsFilter, RunsQuery};
use crate::state::{AppState, Shared};

/// Lines of each stage's log a run page shows (the API pages through all).
const LOG_LINES_PER_STAGE: usize = 2_000;
/// Lines of the failed stage's log in "Why it failed".
const WHY_TAIL: usize = 20;
/// Rows of the long lists.
const LIST_LIMIT: usize = 200;

fn ok(markup: Markup) -> Response {
    html(StatusCode::OK, markup)
}

// ---- / ----------------------------------------------------------------------

/// `POST /workloads/{name}/runs`: queues a run at the workload's HEAD and goes
/// to its page. A browser needs the session's CSRF token (and a same-site
/// Origin); the roles model decides.
pub(super) async fn run_now(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    form: Result<axum::Form<RunForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    super::login::same_origin(&headers)?;
    let submitted = form.ok().and_then(|axum::Form(f)| f.csrf);
    if !crate::session::csrf_ok(&actor, submitted.as_deref()) {
        return Err(ApiError::forbidden(
            "this form needs the session's CSRF token: use the Run button on the workloads page",
        )
        .into());
    }
    let run = state
        .blocking(move |s| {
            s.authorize(&actor, Action::Run, &Scope::workload(name.clone()))?;
            crate::api::runs::queue_run(
                s,
                &name,
                "HEAD",
                cairn_model::Trigger::Api {
                    actor: actor.identity.name.clone(),
                },
            )
        })
        .await?;
    state.0.queued.ring();
    Ok(axum::response::Redirect::to(&format!("/runs/{}", run.id.0)).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct RunForm {
    csrf: Option<String>,
}

pub(super) fn workloads_body(
    rows: &[(WorkloadRecord, Option<RunRecord>, bool)],
    csrf: Option<&str>,
) -> Markup {
    html! {
        h2 #workloads-heading { "Workloads" }
        @if rows.is_empty() {
            p.muted #no-workloads { "No workload is onboarded yet (" code { "POST /api/workloads" } ")." }
        } @else {
            table #workloads {
                thead { tr { th { "Workload" } th { "Repository" } th { "Latest run" } th { "Status" } th { "When" } th {} } }
                tbody {
                    @for (w, run, may_run) in rows {
                        tr data-workload=(w.name) {
                            td { a href={ "/workloads/" (w.name) } { (w.name) } }
                            td { code { (w.repo) } }
                            @if let Some(run) = run {
                                td { a href={ "/runs/" (run.id.0) } { "#" (run.id.0) } }
                                td.run-status { (badge(run.status.as_str())) }
                                td { (time(run.created_at_ms)) }
                            } @else {
                                td.none colspan="3" { "never run" }
                            }
                            td {
                                @if let (true, Some(csrf)) = (*may_run, csrf) {
                                    form.run-now method="post" action={ "/workloads/" (w.name) "/runs" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { "Run HEAD" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---- /runs ------------------------------------------------------------------

/// Runs a page of `/runs` shows at most (`limit` asks for fewer).
const RUNS_PAGE: usize = 50;

impl RunsFilter {
    /// The query string of these filters, after `after`.
    fn query(&self, after: Option<cairn_store::RunCursor>) -> String {
        let mut parts = Vec::new();
        if let Some(w) = &self.workload {
            parts.push(format!("workload={}", super::percent_encode(w)));
        }
        if let Some(s) = self.status {
            parts.push(format!("status={}", s.as_str()));
        }
        if let Some(c) = &self.commit {
            parts.push(format!("commit={c}"));
        }
        if let Some(t) = self.trigger {
            parts.push(format!("trigger={}", t.as_str()));
        }
        if let Some(l) = self.limit {
            parts.push(format!("limit={l}"));
        }
        if let Some(a) = after {
            parts.push(format!("after={a}"));
        }
        parts.join("&")
    }
}

pub(super) async fn runs(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let filter = RunsFilter::parse(q)?;
    let (rows, next) = state
        .blocking({
            let actor = actor.clone();
            let f = filter.clone();
            move |s| {
                let visible = s.visible(&actor)?;
                if let Some(w) = &f.workload
                    && !visible.includes(w)
                {
                    s.authorize(&actor, Action::View, &Scope::workload(w.clone()))?;
                }
                // One bounded query per page: a page more than it shows, to
                // know whether there is a next one.
                let size = f.limit.unwrap_or(RUNS_PAGE).clamp(1, RUNS_PAGE);
                let mut page = s.store.runs(&f.store_filter(size + 1))?;
                let more = page.len() > size;
                page.truncate(size);
                // The cursor follows the store's rows, so a page whose runs
                // this viewer may not see does not stop the paging.
                let next = page.last().filter(|_| more).map(cairn_store::RunCursor::of);
                let mut rows = Vec::new();
                for run in page {
                    if !visible.includes(&run.workload) {
                        continue;
                    }
                    let stages = s.store.stages(run.id)?;
                    rows.push((run, stages));
                }
                Ok((rows, next))
            }
        })
        .await?;
    Ok(ok(page(
        "Runs",
        Nav::Runs,
        Some(&actor),
        runs_body(&filter, &rows, next),
    )))
}

fn runs_filters(f: &RunsFilter) -> Markup {
    let status = f.status.map(cairn_model::RunStatus::as_str).unwrap_or("");
    let trigger = f
        .trigger
        .map(cairn_store::TriggerKind::as_str)
        .unwrap_or("");
    html! {
        form.filters #run-filters method="get" action="/runs" {
            label { "Workload " input type="text" name="workload" value=(f.workload.as_deref().unwrap_or("")) maxlength="256"; }
            label { "Status "
                select name="status" {
                    option value="" selected[status.is_empty()] { "any" }
                    @for s in ["queued", "running", "succeeded", "failed", "interrupted"] {
                        option value=(s) selected[status == s] { (s) }
                    }
                }
            }
            label { "Commit " input type="text" name="commit" value=(f.commit.as_deref().unwrap_or("")) maxlength="40" placeholder="prefix"; }
            label { "Trigger "
                select name="trigger" {
                    option value="" selected[trigger.is_empty()] { "any" }
                    @for t in cairn_store::TriggerKind::ALL {
                        option value=(t.as_str()) selected[trigger == t.as_str()] { (t.as_str()) }
                    }
                }
            }
            button type="submit" { "Filter" }
            " " a href="/runs" { "clear" }
        }
    }
}

fn runs_body(
    f: &RunsFilter,
    rows: &[(RunRecord, Vec<StageRecord>)],
    next: Option<cairn_store::RunCursor>,
) -> Markup {
    let workload = f.workload.as_deref();
    html! {
        h1 {
            "Runs"
            @if let Some(w) = workload { " of " a href={ "/workloads/" (w) } { (w) } }
        }
        (runs_filters(f))
        @if rows.is_empty() {
            p.muted #no-runs { @if f.after.is_some() { "No more runs." } @else { "No runs match." } }
        } @else {
            table #runs {
                thead { tr { th { "Run" } th { "Workload" } th { "Commit" } th { "Status" } th { "Stages" } th { "Created" } th.num { "Duration" } } }
                tbody {
                    @for (run, stages) in rows {
                        tr data-run=(run.id.0) {
                            td { a href={ "/runs/" (run.id.0) } { "#" (run.id.0) } }
                            td.line-clip { a href={ "/workloads/" (run.workload) } { (run.workload) } }
                            td { code title=(run.commit) { (run.commit.chars().take(12).collect::<String>()) } }
                            td { (badge(run.status.as_str())) }
                            td {
                                div.stages {
                                    @for stage in stages {
                                        span.status data-stage=(stage.name) data-status=(stage.status.as_str())
                                            title={ (stage.name) ": " (stage.status.as_str()) " " (duration(stage_ms(stage))) } {
                                            (stage.name)
                                            @let d = duration(stage_ms(stage));
                                            @if !d.is_empty() { " " span.duration { (d) } }
                                        }
                                    }
                                }
                            }
                            td { (time(run.created_at_ms)) }
                            td.num { (duration(run_ms(run))) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p.pager { a #next-page rel="next" href={ "/runs?" (f.query(Some(next))) } { "Older runs →" } }
        }
    }
}

fn stage_ms(stage: &StageRecord) -> Option<i64> {
    cairn_engine::wire::duration_ms(stage.started_at_ms, stage.finished_at_ms)
}

fn run_ms(run: &RunRecord) -> Option<i64> {
    cairn_engine::wire::duration_ms(run.started_at_ms, run.finished_at_ms)
}

// ---- /runs/{id} -------------------------------------------------------------

pub(super) async fn run(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (explanation, logs, overrides) = state
        .blocking({
            let actor = actor.clone();
            move |s| {
                let run = visible_run(s, &actor, &id)?;
                let explanation = explain(&*s.store, run.id, WHY_TAIL)?;
                let mut logs = Vec::new();
                for stage in &explanation.stages {
                    logs.push(s.store.logs(stage.id, None, LOG_LINES_PER_STAGE)?);
                }
                // Break-glass deployments of what this run built stay marked here.
                let built: Vec<String> = s
                    .store
                    .images(Some(&run.workload), None, LIST_LIMIT)?
                    .into_iter()
                    .filter(|i| i.run == Some(run.id))
                    .map(|i| i.digest)
                    .collect();
                let overrides = if built.is_empty() {
                    Vec::new()
                } else {
                    s.store
                        .deployments(Some(&run.workload), None, LIST_LIMIT)?
                        .into_iter()
                        .filter(|d| {
                            built.contains(&d.digest)
                                && cairn_model::DeploymentKind::parse(&d.kind)
                                    == Some(cairn_model::DeploymentKind::Override)
                        })
                        .collect()
                };
                Ok((explanation, logs, overrides))
            }
        })
        .await?;
    let title = format!("Run {}", explanation.run.id.0);
    Ok(ok(page(
        &title,
        Nav::Runs,
        Some(&actor),
        run_body(&explanation, &logs, &overrides),
    )))
}

fn run_body(e: &Explanation, logs: &[Vec<LogLine>], overrides: &[DeploymentRecord]) -> Markup {
    let run = &e.run;
    let is_final = run.status.is_final();
    html! {
        div #run data-run-id=(run.id.0) data-final=(is_final) data-status=(run.status.as_str()) {
            h1 {
                "Run #" (run.id.0) " of " a href={ "/workloads/" (run.workload) } { (run.workload) } " "
                span.badge #run-status data-status=(run.status.as_str()) { (run.status.as_str()) }
            }
            dl.facts {
                dt { "Commit" } dd { code { (run.commit) } }
                @if let Some(r) = &run.git_ref { dt { "Ref" } dd { code { (r) } } }
                dt { "Trigger" } dd { (run.trigger.as_text()) }
                dt { "Created" } dd { (time(run.created_at_ms)) }
                dt { "Started" } dd #run-started { (maybe_time(run.started_at_ms)) }
                dt { "Finished" } dd #run-finished { (maybe_time(run.finished_at_ms)) }
                dt { "Duration" } dd #run-duration { (duration(run_ms(run))) }
                @if let Some(reason) = &run.reason { dt { "Reason" } dd #run-reason { (reason) } }
            }
            @for d in overrides {
                p.notice.override data-overridden="true" {
                    span.badge data-status="failed" { "OVERRIDDEN" } " "
                    "Its image " (artifact_link(&d.digest)) " was deployed to " (d.environment) " by " (d.actor) " "
                    (time(d.deployed_at_ms)) " despite the gate's denial (break-glass; log entry " (d.log_index) ", see " a href="/audit" { "the audit trail" } ")."
                }
            }
            @if !is_final {
                p.muted #live-note { "This run is in progress: the page follows it live (with JavaScript), or reload it." }
            }
            @if let Some(c) = &e.culprit {
                section.why #why data-why-stage=(c.stage.name) {
                    h2 { "Why it failed" }
                    dl.facts {
                        dt { "Stage" } dd #why-stage { (c.stage.name) " (" (c.stage.kind.as_str()) ", " (c.stage.status.as_str()) ")" }
                        @if let Some(cmd) = &c.stage.command { dt { "Command" } dd { code { (cmd) } } }
                        dt { "Exit code" }
                        dd #why-exit-code {
                            @match c.stage.exit_code { Some(code) => (code), None => span.none { "none" } }
                        }
                        dt { "Reason" }
                        dd #why-reason {
                            @match &c.stage.reason { Some(r) => (r), None => span.none { "none recorded" } }
                        }
                        @if !c.failed_tests.is_empty() {
                            dt { "Failed tests" }
                            dd { ul #why-tests { @for t in &c.failed_tests { li { code { (t) } } } } }
                        }
                        @if let Some(hint) = &c.hint { dt { "Hint" } dd #why-hint { (hint) } }
                    }
                    @if !c.last_lines.is_empty() {
                        h3 { "Last " (c.last_lines.len()) " lines of " (c.stage.name) }
                        pre.lines #why-lines { @for l in &c.last_lines { (line(l)) } }
                    }
                }
            }
            h2 { "Stages" }
            table #stages {
                thead { tr { th { "#" } th { "Stage" } th { "Kind" } th { "Status" } th { "Exit" } th.num { "Duration" } th { "Reason" } } }
                tbody {
                    @for stage in &e.stages {
                        tr data-stage=(stage.name) {
                            td { (stage.index) }
                            td { (stage.name) }
                            td { (stage.kind.as_str()) }
                            td { span.status data-status=(stage.status.as_str()) { (stage.status.as_str()) } }
                            td.exit-code { @if let Some(code) = stage.exit_code { (code) } }
                            td.num.duration { (duration(stage_ms(stage))) }
                            td.reason { @if let Some(r) = &stage.reason { (r) } }
                        }
                    }
                }
            }
            h2 { "Log" }
            div #log {
                @if logs.iter().all(Vec::is_empty) && is_final {
                    p.muted #log-empty { "No output." }
                }
                @for (stage, lines) in e.stages.iter().zip(logs) {
                    @let shown_above = shown_under_why(e, stage);
                    @if !lines.is_empty() || !is_final {
                        details data-log-stage=(stage.name) open[(stage.status != cairn_model::StageStatus::Passed && shown_above.is_empty()) || !is_final] {
                            summary { (stage.name) " " span.muted { "(" span.count { (lines.len()) } " lines"
                                @if lines.len() == LOG_LINES_PER_STAGE { ", the first " (LOG_LINES_PER_STAGE) "; " a href={ "/api/runs/" (e.run.id.0) "/logs?stage=" (stage.name) } { "all" } }
                                @if !shown_above.is_empty() { "; the last " (shown_above.len()) " are under " a href="#why" { "Why it failed" } }
                                ")" } }
                            pre.lines data-last-seq=(lines.last().map_or(-1, |l| i64::try_from(l.seq).unwrap_or(i64::MAX))) {
                                // The failed stage's last lines are shown once, under Why.
                                @for l in lines.iter().filter(|l| !shown_above.contains(&l.seq)) { (line(l)) }
                            }
                        }
                    }
                }
            }
            h2 { "Evidence" }
            p { a href={ "/api/runs/" (run.id.0) "/evidence" } { "The signed evidence this run produced" } " (JSON)." }
        }
    }
}

/// The seqs of `stage`'s lines the Why section shows (the failed stage's last
/// lines), so the log below leaves them out: the page shows each line once.
fn shown_under_why(e: &Explanation, stage: &StageRecord) -> Vec<u64> {
    match &e.culprit {
        Some(c) if c.stage.id == stage.id => c.last_lines.iter().map(|l| l.seq).collect(),
        _ => Vec::new(),
    }
}

fn line(l: &LogLine) -> Markup {
    // One line per span, its own newline inside, so it reads well without CSS.
    html! { span.line data-seq=(l.seq) data-stream=(l.stream.as_str()) { (l.display_text()) "\n" } }
}

// ---- /artifacts/{digest} ----------------------------------------------------

/// Longest digest accepted in a path.
const MAX_DIGEST: usize = 160;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ArtifactQuery {
    /// Search the SBOM's components (name, version, purl; case-insensitive).
    q: Option<String>,
}

/// Longest component search.
const MAX_SEARCH: usize = 200;
/// Most components the SBOM table shows.
const SBOM_ROWS: usize = 500;

pub(super) async fn artifact(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
    Path(digest): Path<String>,
    query: Result<Query<ArtifactQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let search = q.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    if search.as_ref().is_some_and(|q| q.len() > MAX_SEARCH) {
        return Err(
            ApiError::bad_request(format!("the search is longer than {MAX_SEARCH} bytes")).into(),
        );
    }
    if !valid_digest(&digest) {
        return Err(ApiError::bad_request(format!(
            "`{}` is not a digest (`<algorithm>:<hex>`, e.g. sha256:…)",
            digest.chars().take(MAX_DIGEST).collect::<String>()
        ))
        .into());
    }
    let view = state
        .blocking({
            let actor = actor.clone();
            move |s| artifact_view(s, &actor, &digest, search)
        })
        .await?;
    Ok(ok(page(
        "Artifact",
        Nav::None,
        Some(&actor),
        artifact_body(&view),
    )))
}

fn valid_digest(digest: &str) -> bool {
    let Some((alg, hex)) = digest.split_once(':') else {
        return false;
    };
    digest.len() <= MAX_DIGEST
        && !alg.is_empty()
        && alg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !hex.is_empty()
        && hex.chars().all(|c| c.is_ascii_hexdigit())
}

struct ArtifactView {
    digest: String,
    workloads: BTreeSet<String>,
    evidence: Vec<EvidenceRecord>,
    images: Vec<cairn_model::ImageRecord>,
    findings: Vec<StoredFinding>,
    /// More findings than [`ARTIFACT_FINDINGS`] are kept: the first are shown.
    more_findings: bool,
    /// Per evidence record (same order): the key that signed it, or why it
    /// does not verify, computed now against cairn's keys and log.
    verified: Vec<Result<String, String>>,
    /// The components of the newest verified SBOM statement matching the
    /// search, the number of them all, and the search.
    components: Vec<SbomComponent>,
    component_count: usize,
    /// A verified SBOM statement names this digest.
    sbom_verified: bool,
    search: Option<String>,
}

struct SbomComponent {
    name: String,
    version: String,
    purl: String,
    kind: String,
    licences: String,
}

/// The components of a CycloneDX predicate.
fn sbom_components(predicate: &serde_json::Value) -> Vec<SbomComponent> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    predicate["components"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| SbomComponent {
            name: text(&c["name"]),
            version: text(&c["version"]),
            purl: text(&c["purl"]),
            kind: text(&c["type"]),
            licences: c["licenses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| {
                    l["license"]["id"]
                        .as_str()
                        .or_else(|| l["license"]["name"].as_str())
                        .or_else(|| l["expression"].as_str())
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect()
}

/// The most findings the artifact page reads and shows (the first, by SBOM and
/// advisory); the API pages through the rest.
const ARTIFACT_FINDINGS: usize = 1_000;

fn artifact_view(
    s: &Shared,
    actor: &Actor,
    digest: &str,
    search: Option<String>,
) -> Result<ArtifactView, ApiError> {
    let visible = s.visible(actor)?;
    let evidence = s.store.evidence_for_subject(digest)?;
    let images = s.store.images(None, Some(digest), LIST_LIMIT)?;
    let mut findings: Vec<StoredFinding> = s.store.findings(&FindingFilter {
        subject_digest: Some(digest.to_owned()),
        limit: Some(ARTIFACT_FINDINGS + 1),
        ..FindingFilter::default()
    })?;
    let more_findings = findings.len() > ARTIFACT_FINDINGS;
    findings.truncate(ARTIFACT_FINDINGS);
    // The workloads the artifact belongs to: the actor must see every one. Its
    // SBOMs name them all (every finding's workload is its SBOM's), however
    // many findings the page leaves out.
    let mut workloads: BTreeSet<String> = images.iter().map(|i| i.workload.clone()).collect();
    workloads.extend(
        s.store
            .sboms_about(digest)?
            .into_iter()
            .filter_map(|sbom| sbom.workload),
    );
    for run in evidence
        .iter()
        .filter_map(|e| e.run)
        .collect::<BTreeSet<_>>()
    {
        if let Some(r) = s.store.run(run)? {
            workloads.insert(r.workload);
        }
    }
    match &visible {
        Visible::All => {}
        Visible::Only(_) if workloads.is_empty() => {
            s.authorize(actor, Action::View, &Scope::organisation())?;
        }
        Visible::Only(_) => {
            for w in &workloads {
                if !visible.includes(w) {
                    s.authorize(actor, Action::View, &Scope::workload(w.clone()))?;
                }
            }
        }
    }
    if evidence.is_empty() && images.is_empty() && findings.is_empty() {
        return Err(ApiError::not_found(format!(
            "cairn knows nothing about {digest}: no evidence, image or SBOM names it"
        )));
    }
    // Every statement checked now, as the gate would; the SBOM table reads
    // only a statement that verifies and names this digest.
    let bundles: Vec<&[u8]> = evidence.iter().map(|e| e.bundle.as_slice()).collect();
    let checked = cairn_engine::check_bundles(&s.config.data, &bundles)?;
    let mut verified = Vec::new();
    let mut sbom = None;
    for (e, check) in evidence.iter().zip(checked) {
        verified.push(match check {
            Ok((statement, key)) if cairn_engine::names_subject(&statement, digest) => {
                if e.predicate_type == <cairn_evidence::sbom::CycloneDxBom as cairn_evidence::Predicate>::PREDICATE_TYPE {
                    sbom = Some(statement);
                }
                Ok(key)
            }
            Ok(_) => Err("it verifies, but its signed subjects do not name this digest".to_owned()),
            Err(why) => Err(why),
        });
    }
    let sbom_verified = sbom.is_some();
    let all = sbom
        .map(|st| sbom_components(&st["predicate"]))
        .unwrap_or_default();
    let component_count = all.len();
    let needle = search.as_ref().map(|q| q.to_lowercase());
    let components = all
        .into_iter()
        .filter(|c| {
            needle.as_ref().is_none_or(|n| {
                c.name.to_lowercase().contains(n)
                    || c.version.to_lowercase().contains(n)
                    || c.purl.to_lowercase().contains(n)
            })
        })
        .take(SBOM_ROWS)
        .collect();
    Ok(ArtifactView {
        digest: digest.to_owned(),
        workloads,
        evidence,
        images,
        findings,
        more_findings,
        verified,
        components,
        component_count,
        sbom_verified,
        search,
    })
}

fn artifact_body(v: &ArtifactView) -> Markup {
    let sboms: BTreeSet<i64> = v.findings.iter().map(|f| f.key.sbom_id).collect();
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_severity: BTreeMap<String, usize> = BTreeMap::new();
    let mut components: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
    for f in &v.findings {
        *by_state.entry(f.state.as_str()).or_default() += 1;
        if f.state == cairn_store::FindingState::Open {
            *by_severity
                .entry(f.severity.clone().unwrap_or_else(|| "unknown".into()))
                .or_default() += 1;
        }
        components.insert((&f.key.ecosystem, &f.key.name, &f.key.version));
    }
    let sbom_evidence: Vec<&EvidenceRecord> = v
        .evidence
        .iter()
        .filter(|e| {
            let p = e.predicate_type.to_ascii_lowercase();
            p.contains("cyclonedx") || p.contains("spdx")
        })
        .collect();
    html! {
        h1 { "Artifact " code #digest { (v.digest) } }
        dl.facts {
            dt { "Workloads" }
            dd { @if v.workloads.is_empty() { span.none { "none recorded" } } @else {
                @for (i, w) in v.workloads.iter().enumerate() { @if i > 0 { ", " } a href={ "/runs?workload=" (w) } { (w) } }
            } }
        }
        @if !v.images.is_empty() {
            h2 { "Image" }
            table #images {
                thead { tr { th { "Workload" } th { "Run" } th { "Commit" } th { "Base" } th { "Built" } th { "Rebased from" } } }
                tbody { @for i in &v.images {
                    tr {
                        td { (i.workload) }
                        td { @if let Some(r) = i.run { a href={ "/runs/" (r.0) } { "#" (r.0) } } }
                        td { code title=(i.commit) { (i.commit.chars().take(12).collect::<String>()) } }
                        td { (i.base_name) " " (short_digest(&i.base_digest)) }
                        td { (time(i.created_at_ms)) }
                        td { @if let Some(from) = &i.rebased_from { (artifact_link(from)) } }
                    }
                } }
            }
        }
        h2 { "Evidence" }
        @if v.evidence.is_empty() {
            p.muted #no-evidence { "No signed evidence names this artifact." }
        } @else {
            table #evidence {
                thead { tr { th.num { "#" } th { "Predicate type" } th { "Subject" } th { "Run" } th { "Signed" } th { "Verify" } } }
                tbody { @for (e, check) in v.evidence.iter().zip(&v.verified) {
                    tr data-predicate-type=(e.predicate_type) data-verified=(check.is_ok()) {
                        td.num { (e.id) }
                        td { code { (e.predicate_type) } }
                        td.wrap { (e.subject_name) }
                        td { @if let Some(r) = e.run { a href={ "/runs/" (r.0) } { "#" (r.0) } } }
                        td.when { (time(e.created_at_ms)) }
                        td.verify {
                            @match check {
                                Ok(key) => span.badge data-status="passed" title={ "signature and log entry verify; key " (key) } { "verified" },
                                Err(why) => { span.badge data-status="failed" { "does not verify" } br; span.note.wrap { (why) } }
                            }
                        }
                    }
                } }
            }
            p.muted { "Each statement is checked now, on the server, against cairn's keys and its log; check it again offline with " code { "cairn verify" } "." }
        }
        h2 { "SBOM" }
        section #sbom {
            @if sbom_evidence.is_empty() && sboms.is_empty() {
                p.muted { "No SBOM of this artifact is recorded." }
            } @else {
                p {
                    (sbom_evidence.len()) " signed SBOM statement(s); "
                    (sboms.len()) " indexed SBOM(s) with findings; "
                    (components.len()) " affected component(s)."
                }
            }
            @if v.sbom_verified && v.component_count == 0 && v.search.is_none() {
                p #sbom-count data-shown="0" data-total="0" { "The newest verified SBOM lists no components." }
            } @else if v.sbom_verified || v.search.is_some() {
                form.filters #sbom-search method="get" action={ "/artifacts/" (v.digest) } {
                    label { "Search components " input type="search" name="q" value=(v.search.as_deref().unwrap_or("")) maxlength="200"; }
                    button type="submit" { "Search" }
                    @if v.search.is_some() { " " a href={ "/artifacts/" (v.digest) } { "all" } }
                }
                p #sbom-count data-shown=(v.components.len()) data-total=(v.component_count) {
                    (v.components.len()) " of " (v.component_count) " component(s) of the newest verified SBOM"
                    @if let Some(q) = &v.search { " matching “" (q) "”" }
                    @if v.components.len() == SBOM_ROWS { " (the first " (SBOM_ROWS) ")" }
                    "."
                }
                @if !v.components.is_empty() {
                    table #components {
                        thead { tr { th { "Name" } th { "Version" } th { "Type" } th { "Licences" } th { "purl" } } }
                        tbody { @for c in &v.components {
                            tr { td.wrap { (c.name) } td.wrap { code { (c.version) } } td { (c.kind) } td.wrap { (c.licences) } td.wrap { code { (c.purl) } } }
                        } }
                    }
                }
            }
        }
        h2 { "Findings" }
        @if v.findings.is_empty() {
            p.muted #no-findings { "No known vulnerability matches this artifact's components." }
        } @else {
            p #findings-summary {
                @for (i, (state, n)) in by_state.iter().enumerate() { @if i > 0 { ", " } (n) " " (state) }
                @if !by_severity.is_empty() {
                    " (open by severity: "
                    @for (i, (sev, n)) in by_severity.iter().enumerate() { @if i > 0 { ", " } (sev) " " (n) }
                    ")"
                }
            }
            table #findings {
                thead { tr { th { "Advisory" } th { "Package" } th { "Version" } th { "Severity" } th { "State" } th { "First seen" } } }
                tbody { @for f in &v.findings {
                    tr {
                        td { code { (f.key.advisory_id) } }
                        td { (f.key.ecosystem) "/" (f.key.name) }
                        td { code { (f.key.version) } }
                        td { (f.severity.as_deref().unwrap_or("unknown")) }
                        td { (badge(f.state.as_str())) }
                        td { (time(f.first_seen_ms)) }
                    }
                } }
            }
            @if v.more_findings {
                p.muted #findings-truncated {
                    "The first " (ARTIFACT_FINDINGS) " findings are shown (and counted above); "
                    code { "GET /api/artifacts/" (v.digest) "/findings?limit=10000" } " lists up to 10000."
                }
            }
        }
    }
}

// ---- /environments ----------------------------------------------------------

pub(super) async fn environments(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
) -> Result<Response, PageError> {
    let deployments = state
        .blocking({
            let actor = actor.clone();
            move |s| {
                let visible = s.visible(&actor)?;
                Ok(s.store
                    .deployments(None, None, LIST_LIMIT)?
                    .into_iter()
                    .filter(|d| visible.includes(&d.workload))
                    .collect::<Vec<_>>())
            }
        })
        .await?;
    Ok(ok(page(
        "Environments",
        Nav::Environments,
        Some(&actor),
        environments_body(&deployments),
    )))
}

fn environments_body(deployments: &[DeploymentRecord]) -> Markup {
    // Newest first, so the first of each (workload, environment) is current.
    let mut current: BTreeMap<(&str, &str), &DeploymentRecord> = BTreeMap::new();
    for d in deployments {
        current.entry((&d.workload, &d.environment)).or_insert(d);
    }
    html! {
        h1 { "Environments" }
        @if deployments.is_empty() {
            p.muted #no-deployments { "Nothing is deployed yet." }
        } @else {
            h2 { "Deployed now" }
            table #current {
                thead { tr { th { "Workload" } th { "Environment" } th { "Artifact" } th { "Since" } th { "By" } th { "How" } th { "Target" } } }
                tbody { @for ((w, env), d) in &current {
                    tr data-workload=(w) data-environment=(env) {
                        td { (w) } td { (env) } td { (artifact_link(&d.digest)) }
                        td { (time(d.deployed_at_ms)) } td { (d.actor) }
                        td {
                            (d.kind)
                            // Break-glass: visible until a clean promotion replaces it.
                            @if cairn_model::DeploymentKind::parse(&d.kind) == Some(cairn_model::DeploymentKind::Override) {
                                " " span.badge data-status="failed" data-overridden="true" { "OVERRIDDEN: its VSA says FAILED" }
                            }
                        }
                        td { code { (d.target) } }
                    }
                } }
            }
            h2 { "History" }
            table #history {
                thead { tr { th { "When" } th { "Workload" } th { "Environment" } th { "What" } th { "Artifact" } th { "Previous" } th { "By" } th.num { "Log entry" } } }
                tbody { @for d in deployments {
                    tr {
                        td { (time(d.deployed_at_ms)) } td { (d.workload) } td { (d.environment) } td { (d.kind) }
                        td { (artifact_link(&d.digest)) }
                        td { @if let Some(p) = &d.previous_digest { (artifact_link(p)) } }
                        td { (d.actor) } td.num { (d.log_index) }
                    }
                } }
            }
        }
    }
}

// ---- /exposures -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExposuresQuery {
    #[serde(default)]
    all: bool,
}

pub(super) async fn exposures(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
    Query(q): Query<ExposuresQuery>,
) -> Result<Response, PageError> {
    let (list, now) = state
        .blocking({
            let actor = actor.clone();
            move |s| {
                let visible = s.visible(&actor)?;
                let org = cairn_engine::load_org(s.config.platform_dir.as_deref())?;
                let now = cairn_engine::now_ms();
                let mut list = cairn_engine::exposures::list(
                    &*s.store,
                    &s.config.data,
                    &org,
                    &cairn_engine::exposures::ExposureFilter {
                        include_remediated: q.all,
                        ..Default::default()
                    },
                    now,
                )?;
                cairn_engine::remediation::mark_remediating(&s.config.data, &mut list)?;
                let list = list
                    .into_iter()
                    .filter(|e| visible.includes(&e.workload))
                    .collect::<Vec<_>>();
                Ok((list, now))
            }
        })
        .await?;
    Ok(ok(page(
        "Exposures",
        Nav::Exposures,
        Some(&actor),
        exposures_body(&list, now),
    )))
}

/// Hours and minutes (`26h05m`), for the deadline clock; the script keeps
/// the same format when it counts.
pub(super) fn clock_text(ms: i64) -> String {
    let s = ms.unsigned_abs() / 1000;
    format!("{}h{:02}m{:02}s", s / 3600, (s % 3600) / 60, s % 60)
}

fn exposures_body(list: &[cairn_engine::exposures::Exposure], now: i64) -> Markup {
    use cairn_engine::exposures::ExposureState;
    let overdue = list.iter().filter(|e| e.overdue(now)).count();
    html! {
        h1 { "Exposures" }
        p.muted {
            "Findings on the digests each environment runs. The deadline is the first-seen time plus the organisation's SLA for the severity (org.toml "
            code { "[exposures] sla_hours" } "). "
            a href="/exposures?all=true" { "Include remediated" }
        }
        @if list.is_empty() {
            p.muted #no-exposures { "No exposures." }
        } @else {
            p #exposure-summary data-overdue=(overdue) {
                (list.len()) " exposure(s), " (overdue) " past their deadline."
            }
            table #exposures {
                thead { tr {
                    th { "Environment" } th { "Workload" } th { "Advisory" } th { "Severity" } th { "Package" }
                    th { "Fix" } th { "State" } th { "First seen" } th { "Deadline" } th { "Clock" } th { "Artifact" }
                } }
                tbody { @for e in list {
                    tr data-environment=(e.environment) data-workload=(e.workload) data-advisory=(e.advisory) data-state=(e.state.as_str()) data-overdue=(e.overdue(now)) {
                        td { (e.environment) } td { (e.workload) } td { code { (e.advisory) } }
                        td { (badge(&e.severity)) } td { code { (e.package) } }
                        td { @if e.fixable() { (e.fixed_versions.join(", ")) } @else { span.muted { "no fix yet" } } }
                        td {
                            (badge(e.state.as_str()))
                            @if let Some(a) = &e.acceptance {
                                @if a.expired {
                                    br; span.note.acceptance-expired { "open again: the acceptance by " (a.by) " expired at " (time(a.expires_ms)) }
                                } @else {
                                    br; span.note.acceptance { "accepted by " (a.by) " until " (time(a.expires_ms)) " (" (a.status) ", VEX " code { (a.vex_id) } ")" }
                                }
                            }
                        }
                        td { (time(e.first_seen_ms)) }
                        td { (time(e.deadline_ms)) }
                        td {
                            @match e.state {
                                ExposureState::Open => {
                                    @if e.overdue(now) {
                                        span.clock data-deadline-ms=(e.deadline_ms) data-overdue="true" { "OVERDUE by " (clock_text(now - e.deadline_ms)) }
                                    } @else {
                                        span.clock data-deadline-ms=(e.deadline_ms) data-overdue="false" { (clock_text(e.deadline_ms - now)) " left" }
                                    }
                                }
                                ExposureState::Remediated => {
                                    "remediated in " (duration(e.time_to_remediate_ms()))
                                }
                                _ => { span.muted { "—" } }
                            }
                        }
                        td { (artifact_link(&e.digest)) }
                    }
                } }
            }
        }
    }
}

// ---- /audit -----------------------------------------------------------------

pub(super) async fn audit(
    State(state): State<AppState>,
    PageActor(actor): PageActor,
) -> Result<Response, PageError> {
    let changes = state
        .blocking({
            let actor = actor.clone();
            move |s| {
                let visible = s.visible(&actor)?;
                // Each record's log entry proven against the log's checkpoint,
                // as `cairn audit` does.
                Ok(s.store
                    .changes(None, LIST_LIMIT)?
                    .into_iter()
                    .filter(|(_, c)| visible.includes(&c.workload))
                    .map(|(id, c)| {
                        let proof =
                            cairn_engine::audit::prove_inclusion(&s.config.data, c.log_index)
                                .map_err(|e| cairn_model::error_chain(&e));
                        (id, c, proof)
                    })
                    .collect::<Vec<_>>())
            }
        })
        .await?;
    Ok(ok(page(
        "Audit",
        Nav::Audit,
        Some(&actor),
        audit_body(&changes),
    )))
}

fn audit_body(
    changes: &[(
        i64,
        ChangeRecord,
        Result<cairn_engine::audit::Inclusion, String>,
    )],
) -> Markup {
    html! {
        h1 { "Audit" }
        p {
            "Every promotion, rollback and denial is an entry in the append-only audit log. "
            "Its latest signed checkpoint: " a href="/log/checkpoint" { code { "/log/checkpoint" } } ". "
            "Each record's entry is proven in the log (an RFC 9162 inclusion proof against the checkpoint); "
            "anyone can check it again from the log's tiles under " code { "/log/tile/" } " or with " code { "cairn audit" } "."
        }
        @if changes.is_empty() {
            p.muted #no-changes { "No change is recorded yet." }
        } @else {
            table #changes {
                thead { tr { th { "#" } th { "When" } th { "What" } th { "Workload" } th { "Environment" } th { "Artifact" } th { "By" } th.num { "Log index" } th { "Proof" } th { "Gate" } } }
                tbody { @for (id, c, proof) in changes {
                    @let decision = cairn_engine::promotion::RecordedDecision::of(c);
                    @let (allow, reasons) = (decision.allow, decision.reasons);
                    tr id={ "change-" (id) } data-change=(id) data-kind=(c.kind) {
                        td { (id) }
                        td { (time(c.at_ms)) }
                        td {
                            (badge(&c.kind))
                            @if let Some(reason) = overridden_reason(c) {
                                br; span.override data-overridden="true" { "OVERRIDDEN: " (reason) }
                            }
                        }
                        td { (c.workload) }
                        td { (c.environment) }
                        td {
                            @if let Some(from) = &c.from_digest { (artifact_link(from)) " → " }
                            (artifact_link(&c.to_digest))
                        }
                        td { (c.actor) }
                        td.num.log-index { (c.log_index) }
                        td.proof {
                            @match proof {
                                Ok(p) => span.badge data-status="passed" title=(format!("leaf {} root {}", p.leaf_hash, p.root)) { "proven in tree " (p.tree_size) },
                                Err(e) => span.badge data-status="failed" title=(e) { "not proven" },
                            }
                        }
                        td {
                            @match allow {
                                Some(true) => { "allowed" }
                                Some(false) => { "denied" }
                                None => { span.none { "—" } }
                            }
                            @if !reasons.is_empty() {
                                ul.reasons { @for (rule, message) in &reasons { li { code { (rule) } ": " (message) } } }
                            }
                        }
                    }
                } }
            }
        }
    }
}

/// The break-glass reason a change record keeps, when an override deployed it.
fn overridden_reason(c: &ChangeRecord) -> Option<String> {
    let record: serde_json::Value = serde_json::from_str(&c.json).ok()?;
    record["decision"]["overridden"].as_str().map(str::to_owned)
}
