//! `cairn bench`: measurements against the named peer, in the same run.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

/// p50/p99/mean/max of a sample, in milliseconds.
fn summary(mut xs: Vec<Duration>) -> [f64; 4] {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| {
        let i = ((xs.len() as f64 - 1.0) * q).round() as usize;
        xs.get(i).copied().map_or(f64::NAN, ms)
    };
    let mean = xs.iter().copied().map(ms).sum::<f64>() / xs.len().max(1) as f64;
    [
        at(0.5),
        at(0.99),
        mean,
        xs.last().copied().map_or(f64::NAN, ms),
    ]
}

pub fn sandbox(cli: &Cli, iterations: usize) -> Result<ExitCode, Failure> {
    let iterations = iterations.clamp(10, 100_000);
    // Warm up the page cache and the cgroup hierarchy.
    for _ in 0..5 {
        cairn_sandbox::bench::sandboxed_noop().context("sandboxed no-op step")?;
        cairn_sandbox::bench::bare_bwrap_noop().context("bare bwrap")?;
    }
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..iterations {
        ours.push(cairn_sandbox::bench::sandboxed_noop().context("sandboxed no-op step")?);
        bare.push(cairn_sandbox::bench::bare_bwrap_noop().context("bare bwrap")?);
    }
    let (o, b) = (summary(ours), summary(bare));
    if cli.json {
        print_json(&json!({
            "iterations": iterations,
            "cairn_sandbox_ms": { "p50": o[0], "p99": o[1], "mean": o[2], "max": o[3] },
            "bare_bwrap_ms": { "p50": b[0], "p99": b[1], "mean": b[2], "max": b[3] },
            "ratio_p50": o[0] / b[0],
            "ratio_p99": o[1] / b[1],
        }));
    } else {
        println!("sandboxed no-op step start, {iterations} iterations each, interleaved");
        println!(
            "{:<42} {:>8} {:>8} {:>8} {:>8}",
            "", "p50 ms", "p99 ms", "mean ms", "max ms"
        );
        println!(
            "{:<42} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            "cairn sandbox (limits, scrubbed env, no net)", o[0], o[1], o[2], o[3]
        );
        println!(
            "{:<42} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            "bare `bwrap --ro-bind / / true`", b[0], b[1], b[2], b[3]
        );
        println!(
            "ratio cairn/bare: p50 {:.2}x, p99 {:.2}x (goal: p99 <= 5 ms)",
            o[0] / b[0],
            o[1] / b[1]
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn chain(cli: &Cli, stages: usize, repeat: usize) -> Result<ExitCode, Failure> {
    let stages = stages.clamp(1, 60);
    let repeat = repeat.clamp(1, 1000);
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let times = cairn_engine::bench::chain(scratch.path(), stages, repeat)?;
    let s = summary(times);
    if cli.json {
        print_json(&json!({
            "stages": stages + 1,
            "repeat": repeat,
            "run_ms": { "p50": s[0], "mean": s[2], "max": s[3] },
        }));
    } else {
        println!(
            "chain of source + {stages} no-op sandboxed stages, end to end (git, store, sandbox), {repeat} runs"
        );
        println!(
            "run wall time: p50 {:.1} ms, mean {:.1} ms, max {:.1} ms (goal: < 1000 ms)",
            s[0], s[2], s[3]
        );
    }
    Ok(ExitCode::SUCCESS)
}
