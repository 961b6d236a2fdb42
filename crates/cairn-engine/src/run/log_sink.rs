//! A stage's log: lines batched into the store within the stage's budget, a
//! flusher thread for prompt followers, the log's digest and the tests its
//! output names. The lines still pending when the stage ends are its log's
//! tail, stored with the stage's end in one transaction (the stage's boundary).

use std::sync::Arc;
use std::time::Duration;

use cairn_evidence::{Digest, Sha256Hasher};
use cairn_model::test_report::failed_tests;
use cairn_model::test_results::{LineReader, TestReport};
use cairn_model::{LogLine, LogStream, StageRecord};
use cairn_store::Store;

use super::RunObserver;
use crate::EngineError;
use crate::host::now_ms;

/// The most of one stage's output kept in the store; the rest is counted, not kept.
pub const MAX_STAGE_LOG_BYTES: u64 = 16 << 20;
/// Lines longer than this are split.
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// Log lines are written to the store in batches of at most this many lines or
/// this much time, so a chatty step costs few transactions and a follower still
/// sees output promptly.
const BATCH_LINES: usize = 512;
const BATCH_AGE: Duration = Duration::from_millis(100);

/// The thread that writes a stage's pending log lines once the oldest of them
/// has waited [`BATCH_AGE`]: one for all of a run's stages, each stage's
/// [`LogSink`] its sink in turn (a thread a stage cost some 0.5 ms of each
/// stage's critical path: made, then joined).
pub(super) struct LogFlusher {
    shared: Arc<FlusherShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct FlusherShared {
    slot: std::sync::Mutex<FlusherSlot>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct FlusherSlot {
    /// The sink of the stage that runs now.
    current: Option<Arc<SinkShared>>,
    /// The run's stages are over: the thread ends.
    stopped: bool,
}

impl FlusherShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, FlusherSlot> {
        lock(&self.slot)
    }
}

/// A poisoned lock only means a panic elsewhere; what it guards is still good.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LogFlusher {
    /// Starts the thread. Without one (it could not be made), each sink
    /// writes every line at once.
    pub(super) fn start() -> Self {
        let shared = Arc::new(FlusherShared {
            slot: std::sync::Mutex::new(FlusherSlot::default()),
            wake: std::sync::Condvar::new(),
        });
        let background = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cairn-log-flush".into())
            .spawn(move || {
                while let Some(sink) = next_sink(&background) {
                    serve(&sink);
                    // Done with it: a stage's sink is served once.
                    let mut slot = background.lock();
                    if slot.current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &sink)) {
                        slot.current = None;
                    }
                }
            })
            .ok();
        LogFlusher { shared, thread }
    }
}

/// The next stage's sink, once there is one; `None` once the flusher stops.
fn next_sink(shared: &FlusherShared) -> Option<Arc<SinkShared>> {
    let mut slot = shared.lock();
    loop {
        if slot.stopped {
            return None;
        }
        if let Some(sink) = &slot.current {
            return Some(sink.clone());
        }
        slot = shared
            .wake
            .wait(slot)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// Writes `sink`'s pending lines once the oldest has waited [`BATCH_AGE`],
/// until the sink is stopped. Stopped: what is pending is the log's tail, the
/// boundary's (checked under the sink's lock, so nothing is written after).
fn serve(sink: &SinkShared) {
    let mut state = sink.lock();
    while !state.stopped {
        let wait = state
            .since
            .map_or(BATCH_AGE, |t| BATCH_AGE.saturating_sub(t.elapsed()));
        if wait.is_zero() {
            sink.flush_locked(&mut state);
            continue;
        }
        state = sink
            .wake
            .wait_timeout(state, wait)
            .map(|(s, _)| s)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

impl Drop for LogFlusher {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Collects a stage's log lines and writes them to the store in batches, within
/// the per-stage budget. The run's [`LogFlusher`] writes what is pending once its
/// oldest line has waited [`BATCH_AGE`], so a line printed before a long
/// silence reaches followers promptly; what is pending when the stage ends is handed back as the log's
/// tail ([`LogSummary::tail`]) for the stage's boundary, never written on its
/// own (a short stage's log costs no transaction of its own). A store error is
/// kept and reported after the step ends (the step's output must still be
/// drained).
pub(super) struct LogSink<'a> {
    observer: &'a mut dyn RunObserver,
    shared: Arc<SinkShared>,
    /// The run's flusher, while it serves this sink; `None` when there is no
    /// flusher thread (every line is then written at once) or once stopped.
    flusher: Option<&'a LogFlusher>,
    stage: &'a StageRecord,
    next_seq: u64,
    kept_bytes: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
    hasher: Sha256Hasher,
    pub(super) failed_tests: Vec<String>,
    results: LineReader,
}

/// What a finished stage's log says, for its evidence.
pub(super) struct LogSummary {
    /// SHA-256 of the stored log: each line's bytes followed by `\n`.
    pub(super) digest: Digest,
    /// Failed tests named in the step's output.
    pub(super) failed_tests: Vec<String>,
    /// The tests the stage ran (see [`LogSink::finish_with`]).
    pub(super) tests: Option<TestReport>,
    /// The lines not yet stored: they continue the stored log's seq, and the
    /// stage's boundary stores them with its end.
    pub(super) tail: Vec<LogLine>,
}

struct SinkShared {
    store: Arc<dyn Store>,
    stage: cairn_model::StageId,
    state: std::sync::Mutex<SinkState>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct SinkState {
    pending: Vec<LogLine>,
    /// When the oldest pending line was pushed.
    since: Option<std::time::Instant>,
    error: Option<cairn_store::StoreError>,
    stopped: bool,
}

impl SinkShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        lock(&self.state)
    }

    /// Writes what is pending, under the lock, so batches land in order.
    fn flush_locked(&self, state: &mut SinkState) {
        if !state.pending.is_empty()
            && state.error.is_none()
            && let Err(e) = self.store.append_logs(self.stage, &state.pending)
        {
            state.error = Some(e);
        }
        state.pending.clear();
        state.since = None;
    }
}

impl<'a> LogSink<'a> {
    pub(super) fn new(
        store: Arc<dyn Store>,
        stage: &'a StageRecord,
        observer: &'a mut dyn RunObserver,
        flusher: &'a LogFlusher,
    ) -> Self {
        let shared = Arc::new(SinkShared {
            store,
            stage: stage.id,
            state: std::sync::Mutex::new(SinkState::default()),
            wake: std::sync::Condvar::new(),
        });
        let flusher = flusher.thread.as_ref().map(|_| {
            flusher.shared.lock().current = Some(shared.clone());
            flusher.shared.wake.notify_all();
            flusher
        });
        LogSink {
            observer,
            shared,
            flusher,
            stage,
            next_seq: 0,
            kept_bytes: 0,
            dropped_lines: 0,
            dropped_bytes: 0,
            hasher: Sha256Hasher::new(),
            failed_tests: Vec::new(),
            results: LineReader::default(),
        }
    }

    pub(super) fn system(&mut self, text: &str) {
        self.push(LogStream::System, text.as_bytes());
    }

    pub(super) fn line(&mut self, stream: LogStream, bytes: &[u8]) {
        let size = bytes.len() as u64 + 1;
        if self.kept_bytes + size > MAX_STAGE_LOG_BYTES {
            self.dropped_lines += 1;
            self.dropped_bytes += size;
            return;
        }
        self.kept_bytes += size;
        if let Ok(text) = std::str::from_utf8(bytes) {
            for name in failed_tests(std::iter::once(text)) {
                if !self.failed_tests.contains(&name) {
                    self.failed_tests.push(name);
                }
            }
            self.results.line(text);
        }
        self.push(stream, bytes);
    }

    fn push(&mut self, stream: LogStream, bytes: &[u8]) {
        let line = LogLine {
            seq: self.next_seq,
            stream,
            at_ms: now_ms(),
            text: bytes.to_vec(),
        };
        self.next_seq += 1;
        self.hasher.update(&line.text);
        self.hasher.update(b"\n");
        self.observer.log_line(self.stage, &line);
        let mut state = self.shared.lock();
        if state.pending.is_empty() {
            state.since = Some(std::time::Instant::now());
        }
        state.pending.push(line);
        if state.pending.len() >= BATCH_LINES || self.flusher.is_none() {
            self.shared.flush_locked(&mut state);
        }
    }

    /// Reports a store error of an earlier batch, if any (the lines pending
    /// stay pending: the next batch or the stage's boundary stores them).
    pub(super) fn store_error(&mut self) -> Result<(), EngineError> {
        match self.shared.lock().error.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Ends the log; `tests` hears the test results read from the step's
    /// output lines, may still write to the log, and says which results the
    /// stage's evidence carries. The lines not yet stored come back as the
    /// summary's tail: the caller stores them (with the stage's end).
    pub(super) fn finish_with(
        mut self,
        tests: impl FnOnce(&mut Self, Option<TestReport>) -> Option<TestReport>,
    ) -> Result<LogSummary, EngineError> {
        let from_lines = std::mem::take(&mut self.results).finish();
        let tests = tests(&mut self, from_lines);
        if self.dropped_lines > 0 {
            let note = format!(
                "output truncated: {} more lines ({} bytes) were not kept; a stage keeps at most {} MiB of log",
                self.dropped_lines,
                self.dropped_bytes,
                MAX_STAGE_LOG_BYTES >> 20
            );
            self.system(&note);
        }
        self.stop_flusher();
        self.store_error()?;
        let tail = std::mem::take(&mut self.shared.lock().pending);
        let hasher = std::mem::take(&mut self.hasher);
        Ok(LogSummary {
            digest: hasher.finish(),
            failed_tests: std::mem::take(&mut self.failed_tests),
            tests,
            tail,
        })
    }

    /// From now on nothing of this sink is written by the flusher (it checks
    /// `stopped` under the sink's lock before every write), which goes on to
    /// the next stage's sink.
    fn stop_flusher(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let mut slot = flusher.shared.lock();
            if slot
                .current
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, &self.shared))
            {
                slot.current = None;
            }
        }
    }
}

impl Drop for LogSink<'_> {
    fn drop(&mut self) {
        self.stop_flusher();
    }
}
