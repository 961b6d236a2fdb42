//! Measures durable appends/s: `cargo run -p cairn-bench --example log_bench --
//! [threads] [entries] [baseline entries]` (what `cairn log bench` runs).

use cairn_bench::log::{BenchConfig, run};
use cairn_tlog::note::Signer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: u64| -> Result<u64, Box<dyn std::error::Error>> {
        Ok(std::env::args()
            .nth(i)
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let config = BenchConfig {
        threads: usize::try_from(arg(1, 256)?)?,
        entries: arg(2, 50_000)?,
        baseline_entries: arg(3, 500)?,
        entry_bytes: 200,
    };
    let scratch = std::env::temp_dir().join(format!("cairn-tlog-bench-{}", std::process::id()));
    let signer = cairn_tlog_fs::generate_signer("bench.local/log")?;
    let baseline: Signer = cairn_tlog_fs::generate_signer("bench.local/baseline")?;
    let report = run(&scratch, signer, baseline, config);
    std::fs::remove_dir_all(&scratch)?;
    let r = report?;
    println!(
        "{} threads: {:.0} durable appends/s ({} entries in {} batches, {:.2?}); checkpoint latency p50 {:.2?} p99 {:.2?} max {:.2?}; baseline (one log commit per entry) {:.0}/s, x{:.1}; one bare fsync per entry {:.0}/s",
        config.threads,
        r.batched_per_sec,
        config.entries,
        r.batches,
        r.batched_elapsed,
        r.latency_p50,
        r.latency_p99,
        r.latency_max,
        r.baseline_per_sec,
        r.speedup(),
        r.raw_fsync_per_sec
    );
    Ok(())
}
