//! Live progress of one run as Server-Sent Events: `run` (status), `stage` (a
//! stage's status changed), `log` (a line), and `end` when the run is final.
//! The stream reads the store (the run may be executed by this server's workers
//! or by another process) from where it left off, each time it is told the run
//! changed: on PostgreSQL the store announces every committed change
//! (`LISTEN`/`NOTIFY`, one listener thread per process, [`start_listener`],
//! fanned out to the streams by [`Changes`]), with a read every
//! [`LIVE_FALLBACK`] besides in case an announcement was missed; on SQLite (`cairn
//! up`, one machine) the stream reads a few times a second ([`POLL`]).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use cairn_engine::wire::{line_json, run_json, stage_json};
use cairn_model::{RunId, StageStatus};
use futures_util::stream::{self, Stream};

use crate::api::runs::visible_run;
use crate::auth::Caller;
use crate::problem::ApiError;
use crate::state::AppState;

pub const POLL: Duration = Duration::from_millis(200);
/// With announcements live, a stream still reads this often (an announcement
/// lost while the listener reconnected is made up for).
pub const LIVE_FALLBACK: Duration = Duration::from_secs(1);

/// The announced changes of runs, fanned out to every stream of this process.
#[derive(Debug)]
pub struct Changes {
    tx: tokio::sync::broadcast::Sender<i64>,
    /// A listener is connected: streams wait for announcements.
    live: AtomicBool,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            tx: tokio::sync::broadcast::channel(1024).0,
            live: AtomicBool::new(false),
        }
    }
}

impl Changes {
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.tx.subscribe()
    }

    fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }
}

/// Starts the thread that listens for the store's announcements of changed
/// runs and hands them to the streams; it ends at once on a store without
/// announcements (SQLite), and with the process's `stopping` flag. A broken
/// listener is made again (the streams read every [`POLL`] meanwhile).
pub fn start_listener(state: &AppState) -> std::io::Result<std::thread::JoinHandle<()>> {
    let state = state.clone();
    std::thread::Builder::new()
        .name("cairn-run-changes".to_owned())
        .spawn(move || {
            let shared = state.shared();
            let mut backoff = Duration::from_millis(500);
            let mut announced = false;
            while !shared.stopping.load(Ordering::SeqCst) {
                let mut listener = match shared.store.run_changes() {
                    Ok(None) => return,
                    Ok(Some(l)) => l,
                    Err(e) => {
                        eprintln!(
                            "cairn: cannot listen for run changes (live events read every {} ms): {}",
                            POLL.as_millis(),
                            cairn_model::error_chain(&e)
                        );
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(8));
                        continue;
                    }
                };
                backoff = Duration::from_millis(500);
                if !announced {
                    eprintln!(
                        "cairn: live events follow the store's announcements of changed runs (PostgreSQL LISTEN/NOTIFY)"
                    );
                    announced = true;
                }
                shared.changes.live.store(true, Ordering::SeqCst);
                while !shared.stopping.load(Ordering::SeqCst) {
                    match listener.wait(Duration::from_millis(500)) {
                        Ok(ids) => {
                            for id in ids {
                                // No stream listening is fine.
                                let _ = shared.changes.tx.send(id.0);
                            }
                        }
                        Err(e) => {
                            eprintln!(
                                "cairn: the run-change listener broke: {}",
                                cairn_model::error_chain(&e)
                            );
                            break;
                        }
                    }
                }
                shared.changes.live.store(false, Ordering::SeqCst);
            }
        })
}

/// Waits until the stream's run may have changed: announced, or the fallback
/// read is due; without announcements, [`POLL`].
async fn changed(state: &AppState, run: RunId, rx: &mut tokio::sync::broadcast::Receiver<i64>) {
    use tokio::sync::broadcast::error::RecvError;
    if !state.shared().changes.is_live() {
        tokio::time::sleep(POLL).await;
        return;
    }
    let announced = async {
        loop {
            match rx.recv().await {
                Ok(id) if id == run.0 => return,
                Ok(_) => {}
                // Announcements were lost to this stream: read now.
                Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => {
                    tokio::time::sleep(POLL).await;
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(LIVE_FALLBACK, announced).await;
}
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
    /// This process's announcements of changed runs.
    changes: tokio::sync::broadcast::Receiver<i64>,
}

pub async fn run_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let run = state
        .read_as(caller, move |s, actor| visible_run(s, &actor, &id))
        .await?;
    let changes = state.shared().changes.subscribe();
    let cursor = Cursor {
        changes,
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
                changed(&cursor.state, cursor.run, &mut cursor.changes).await;
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
