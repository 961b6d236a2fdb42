//! Group commit: many threads append concurrently and share one durable
//! write (tiles, bundles, fsyncs, checkpoint) per batch.
//!
//! The first thread to find no batch in flight becomes the leader: it takes
//! every pending entry, appends them with one [`Log::append`], and wakes the
//! others. While it works, new entries queue up for the next batch, whose
//! leader is one of their own threads; no thread commits for others forever.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::log::{Log, LogError};

/// Why a batched append failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("the batch this entry was in could not be made durable")]
    Batch(#[source] Arc<LogError>),
    #[error("an appending thread panicked while holding the log")]
    Poisoned,
    #[error("an entry of {0} bytes is larger than the 65535 bytes an entry bundle can hold")]
    EntryTooLarge(usize),
}

#[derive(Debug, Default)]
struct Queue {
    /// Entries waiting for the next batch.
    pending: Vec<Vec<u8>>,
    /// The id of the batch `pending` will become.
    collecting: u64,
    /// Whether a leader is committing a batch now.
    committing: bool,
    /// Batches committed so far.
    committed: u64,
    /// Finished batches: first index (or the error), and how many waiters
    /// have yet to collect their result.
    done: HashMap<u64, (Result<u64, AppendError>, usize)>,
}

/// A shareable, batching front of a [`Log`].
#[derive(Debug, Clone)]
pub struct Appender {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    log: Mutex<Log>,
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Appender {
    pub fn new(log: Log) -> Appender {
        Appender {
            shared: Arc::new(Shared {
                log: Mutex::new(log),
                queue: Mutex::new(Queue::default()),
                wake: Condvar::new(),
            }),
        }
    }

    /// Appends one entry and returns its index once it is durable and
    /// covered by a published checkpoint.
    ///
    /// An entry too large for a bundle is refused here, before it joins a
    /// batch, so that it cannot fail other threads' entries.
    pub fn append(&self, entry: Vec<u8>) -> Result<u64, AppendError> {
        if entry.len() > cairn_tlog::tiles::MAX_ENTRY_BYTES {
            return Err(AppendError::EntryTooLarge(entry.len()));
        }
        let mut q = self.queue()?;
        let batch = q.collecting;
        let position = q.pending.len() as u64;
        q.pending.push(entry);
        loop {
            if let Some(result) = take_result(&mut q, batch) {
                return result.map(|first| first + position);
            }
            if !q.committing {
                q = self.lead(q)?;
                continue;
            }
            q = self
                .shared
                .wake
                .wait(q)
                .map_err(|_| AppendError::Poisoned)?;
        }
    }

    /// Commits the pending batch as leader and publishes its result.
    fn lead<'a>(
        &'a self,
        mut q: MutexGuard<'a, Queue>,
    ) -> Result<MutexGuard<'a, Queue>, AppendError> {
        let entries = std::mem::take(&mut q.pending);
        let batch = q.collecting;
        q.collecting += 1;
        q.committing = true;
        drop(q);
        let first = match self.shared.log.lock() {
            Ok(mut log) => log
                .append(&entries)
                .map(|indices| indices.first().copied().unwrap_or_default())
                .map_err(|e| AppendError::Batch(Arc::new(e))),
            Err(_) => Err(AppendError::Poisoned),
        };
        let mut q = self.queue()?;
        q.done.insert(batch, (first, entries.len()));
        q.committing = false;
        q.committed += 1;
        self.shared.wake.notify_all();
        Ok(q)
    }

    /// How many batches have been committed through this appender.
    pub fn batches(&self) -> u64 {
        self.shared.queue.lock().map_or(0, |q| q.committed)
    }

    fn queue(&self) -> Result<MutexGuard<'_, Queue>, AppendError> {
        self.shared.queue.lock().map_err(|_| AppendError::Poisoned)
    }

    /// Runs `f` with the log (for reads and proofs) between batches.
    pub fn with_log<T>(&self, f: impl FnOnce(&Log) -> T) -> Result<T, AppendError> {
        let log = self.shared.log.lock().map_err(|_| AppendError::Poisoned)?;
        Ok(f(&log))
    }

    /// Runs `f` on the log with no append in progress, able to change it
    /// (a new checkpoint key, [`Log::rotate_signer`]).
    pub fn with_log_mut<T>(&self, f: impl FnOnce(&mut Log) -> T) -> Result<T, AppendError> {
        let mut log = self.shared.log.lock().map_err(|_| AppendError::Poisoned)?;
        Ok(f(&mut log))
    }
}

fn take_result(q: &mut Queue, batch: u64) -> Option<Result<u64, AppendError>> {
    let (result, waiting) = q.done.get_mut(&batch)?;
    let out = result.clone();
    *waiting -= 1;
    if *waiting == 0 {
        q.done.remove(&batch);
    }
    Some(out)
}
