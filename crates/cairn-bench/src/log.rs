//! `cairn log bench`: durable appends per second through the batching
//! [`Appender`] with N threads, the append-to-checkpoint latency, and two
//! unbatched baselines in the same run: the log committing one entry at a
//! time, and a bare one-fsync-per-entry file append.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_tlog::note::Signer;

use cairn_tlog_fs::{AppendError, Appender, Log, LogError};

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct BenchConfig {
    /// Concurrent appending threads.
    pub threads: usize,
    /// Entries to append through the batching appender.
    pub entries: u64,
    /// Entries to append one durable commit at a time, for the baseline.
    pub baseline_entries: u64,
    /// Bytes per entry.
    pub entry_bytes: usize,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub config: BenchConfig,
    pub batched_elapsed: Duration,
    pub batched_per_sec: f64,
    /// Batches committed (entries / batches is the mean batch size).
    pub batches: u64,
    /// From an append call to its acknowledgement (entry durable and
    /// covered by the published checkpoint).
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    pub latency_max: Duration,
    pub baseline_elapsed: Duration,
    pub baseline_per_sec: f64,
    /// The floor of any unbatched design: append each entry to one file
    /// and `fdatasync` it, `baseline_entries` times (no tiles, no
    /// checkpoint).
    pub raw_fsync_per_sec: f64,
}

impl BenchReport {
    /// Batched throughput over the unbatched baseline (one durable log
    /// commit per entry).
    pub fn speedup(&self) -> f64 {
        if self.baseline_per_sec > 0.0 {
            self.batched_per_sec / self.baseline_per_sec
        } else {
            0.0
        }
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error("a benchmark thread panicked")]
    Thread,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Runs the benchmark in two fresh logs under `scratch` (which it creates;
/// the caller removes it), signed by `signer`.
pub fn run(
    scratch: &Path,
    signer: Signer,
    baseline_signer: Signer,
    config: BenchConfig,
) -> Result<BenchReport, BenchError> {
    let payload = |i: u64| {
        let mut e = format!("bench entry {i} ").into_bytes();
        e.resize(config.entry_bytes.max(e.len()), b'.');
        e
    };

    // Batched: N threads share the appender.
    let appender = Appender::new(Log::open(&scratch.join("batched"), signer)?);
    let threads = config.threads.max(1) as u64;
    let start = Instant::now();
    let results: Vec<Result<Vec<Duration>, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let appender = appender.clone();
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut i = t;
                    while i < config.entries {
                        let began = Instant::now();
                        appender.append(payload(i))?;
                        latencies.push(began.elapsed());
                        i += threads;
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(BenchError::Thread)))
            .collect()
    });
    let batched_elapsed = start.elapsed();
    let mut latencies = Vec::new();
    for r in results {
        latencies.extend(r?);
    }
    latencies.sort();
    let batches = appender.batches();

    // Baseline: one durable commit (fsyncs + checkpoint) per entry.
    let mut baseline = Log::open(&scratch.join("baseline"), baseline_signer)?;
    let start = Instant::now();
    for i in 0..config.baseline_entries {
        baseline.append(&[payload(i)])?;
    }
    let baseline_elapsed = start.elapsed();

    // One bare fsync per entry.
    let raw_path = scratch.join("one-fsync-per-entry");
    let mut raw = std::fs::File::create(&raw_path).map_err(|source| LogError::Write {
        path: raw_path.clone(),
        source,
    })?;
    let start = Instant::now();
    for i in 0..config.baseline_entries {
        raw.write_all(&payload(i))
            .and_then(|()| raw.sync_data())
            .map_err(|source| LogError::Write {
                path: raw_path.clone(),
                source,
            })?;
    }
    let raw_elapsed = start.elapsed();

    let per_sec = |n: u64, d: Duration| {
        if d.is_zero() {
            0.0
        } else {
            n as f64 / d.as_secs_f64()
        }
    };
    Ok(BenchReport {
        config,
        batched_elapsed,
        batched_per_sec: per_sec(latencies.len() as u64, batched_elapsed),
        batches,
        latency_p50: percentile(&latencies, 0.50),
        latency_p99: percentile(&latencies, 0.99),
        latency_max: latencies.last().copied().unwrap_or_default(),
        baseline_elapsed,
        baseline_per_sec: per_sec(config.baseline_entries, baseline_elapsed),
        raw_fsync_per_sec: per_sec(config.baseline_entries, raw_elapsed),
    })
}
