//! Live progress of one run as Server-Sent Events: `run` (status), `stage` (a
//! stage's status changed), `log` (a line), and `end` when the run is final.
//! The stream reads the store (the run may be executed by this server's workers
//! or by another process), a few times a second, from where it left off.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use cairn_engine::wire::{line_json, run_json, stage_json};
use cairn_model::{RunId, StageStatus};
use futures_util::stream::{self, Stream};

use crate::api::runs::visible_run;
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::state::AppState;

const POLL: Duration = Duration::from_millis(200);
/// Lines read per stage per poll; the rest come next time.
const PAGE: usize = 1_000;

/// Where the stream is.
struct Cursor {
    state: AppState,
    run: RunId,
    run_status: Option<String>,
    stages: Vec<(Option<StageStatus>, Option<u64>)>,
    pending: std::collections::VecDeque<Event>,
    done: bool,
    first: bool,
}

pub async fn run_events(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let run = state.blocking(move |s| visible_run(s, &actor, &id)).await?;
    let cursor = Cursor {
        state,
        run: run.id,
        run_status: None,
        stages: Vec::new(),
        pending: Default::default(),
        done: false,
        first: true,
    };
    let stream = stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.pending.pop_front() {
                return Some((Ok(event), cursor));
            }
            if cursor.done {
                return None;
            }
            if cursor.state.is_stopping() {
                cursor.done = true;
                return Some((
                    Ok(Event::default()
                        .event("shutdown")
                        .data("the server is stopping")),
                    cursor,
                ));
            }
            if !cursor.first {
                tokio::time::sleep(POLL).await;
            }
            cursor.first = false;
            if let Err(e) = poll(&mut cursor).await {
                cursor
                    .pending
                    .push_back(Event::default().event("error").data(e.detail));
                cursor.done = true;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn stage_event(stage: &cairn_model::StageRecord) -> Event {
    Event::default()
        .event("stage")
        .data(stage_json(stage).to_string())
}

/// Reads what changed since the last poll and queues it as events.
async fn poll(cursor: &mut Cursor) -> Result<(), ApiError> {
    let run_id = cursor.run;
    let known: Vec<(Option<StageStatus>, Option<u64>)> = cursor.stages.clone();
    let (run, stages, lines) = cursor
        .state
        .blocking(move |s| {
            let run = s
                .store
                .run(run_id)?
                .ok_or_else(|| ApiError::not_found(format!("run {run_id} not found")))?;
            let stages = s.store.stages(run_id)?;
            let mut lines = Vec::new();
            for (i, stage) in stages.iter().enumerate() {
                if stage.status == StageStatus::Pending {
                    continue;
                }
                let after = known.get(i).and_then(|(_, seq)| *seq);
                lines.push((i, s.store.logs(stage.id, after, PAGE)?));
            }
            Ok((run, stages, lines))
        })
        .await?;
    cursor.stages.resize(stages.len(), (None, None));
    let status = run.status.as_str().to_owned();
    if cursor.run_status.as_deref() != Some(status.as_str()) {
        cursor.pending.push_back(
            Event::default()
                .event("run")
                .data(run_json(&run, None).to_string()),
        );
        cursor.run_status = Some(status);
    }
    // In stage order: a stage that starts is announced before its lines, one
    // that ended after them, so a reader sees each stage's lines inside it.
    let mut pages: Vec<Option<Vec<cairn_model::LogLine>>> = vec![None; stages.len()];
    for (i, page) in lines {
        pages[i] = Some(page);
    }
    let mut more = false;
    for (i, stage) in stages.iter().enumerate() {
        let changed = cursor.stages[i].0 != Some(stage.status);
        let ended = !matches!(stage.status, StageStatus::Pending | StageStatus::Running);
        if changed && !ended {
            cursor.pending.push_back(stage_event(stage));
        }
        if let Some(page) = pages[i].take() {
            more |= page.len() == PAGE;
            for line in &page {
                cursor.pending.push_back(
                    Event::default()
                        .event("log")
                        .id(format!("{i}:{}", line.seq))
                        .data(line_json(&stage.name, line).to_string()),
                );
            }
            if let Some(last) = page.last() {
                cursor.stages[i].1 = Some(last.seq);
            }
            // A page cut short: the stage's end is announced after the rest.
            if page.len() == PAGE {
                continue;
            }
        }
        if changed && ended {
            cursor.pending.push_back(stage_event(stage));
        }
        if changed {
            cursor.stages[i].0 = Some(stage.status);
        }
    }
    if run.status.is_final() && !more {
        cursor.pending.push_back(
            Event::default()
                .event("end")
                .data(run_json(&run, Some(&stages)).to_string()),
        );
        cursor.done = true;
    }
    Ok(())
}
