//! `cairn bench`: measurements against the named peer, in the same run.

pub mod where_bench;

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

/// The peer's script for [`verify`], written to a temporary file at run time.
const SIGSTORE_JS_BENCH: &str = include_str!("sigstore_verify.js");

/// The conformance suite's default identity and issuer (its README).
const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Bundles verified per second on one core: cairn-sigstore in this process, and
/// npm `@sigstore/verify` on the same bundle, artifact and trusted root.
pub fn verify(
    cli: &Cli,
    case: &std::path::Path,
    iterations: usize,
    node_modules: Option<&std::path::Path>,
) -> Result<ExitCode, Failure> {
    let iterations = iterations.clamp(10, 1_000_000);
    let in_case_or_parent = |name: &str, fallback: &str| {
        let here = case.join(name);
        if here.exists() {
            here
        } else {
            case.join("..").join(fallback)
        }
    };
    let bundle_path = case.join("bundle.sigstore.json");
    let artifact_path = in_case_or_parent("artifact", "a.txt");
    let root_path = in_case_or_parent("trusted_root.json", "production_trusted_root.json");
    let read = |p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let (bundle, artifact, root) = (
        read(&bundle_path)?,
        read(&artifact_path)?,
        read(&root_path)?,
    );
    let trusted = cairn_sigstore::TrustedRoot::from_json(&root)
        .map_err(|e| Failure::user(anyhow::Error::new(e)))?;
    let policy = cairn_sigstore::VerificationPolicy::Identity {
        san: DEFAULT_IDENTITY.to_owned(),
        issuer: DEFAULT_ISSUER.to_owned(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let once = || {
        cairn_sigstore::verify(
            &bundle,
            cairn_sigstore::ArtifactInput::Bytes(&artifact),
            &policy,
            &trusted,
            now,
        )
    };
    once().map_err(|e| {
        Failure::user(anyhow::anyhow!(
            "{} does not verify with cairn: {e}",
            bundle_path.display()
        ))
    })?;
    for _ in 0..50.min(iterations) {
        let _ = once();
    }
    let start = std::time::Instant::now();
    for _ in 0..iterations {
        once().map_err(|e| anyhow::anyhow!("verification stopped passing: {e}"))?;
    }
    let ours = iterations as f64 / start.elapsed().as_secs_f64();

    let modules = match node_modules {
        Some(dir) => dir.to_path_buf(),
        None => std::env::var_os("CAIRN_INTEROP_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from("target/interop-tools"))
            .join("npm/node_modules"),
    };
    if !modules.join("@sigstore/verify").is_dir() {
        return Err(Failure::user(anyhow::anyhow!(
            "npm @sigstore/verify is not in {} (run scripts/install-interop-tools, or pass --node-modules)",
            modules.display()
        )));
    }
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let script = scratch.path().join("sigstore_verify.js");
    std::fs::write(&script, SIGSTORE_JS_BENCH).context("cannot write the peer's script")?;
    let peer_iterations = (iterations / 10).max(10);
    let out = std::process::Command::new("node")
        .arg(&script)
        .args([&root_path, &bundle_path, &artifact_path])
        .args([
            DEFAULT_IDENTITY,
            DEFAULT_ISSUER,
            &peer_iterations.to_string(),
        ])
        .env("NODE_PATH", &modules)
        .output()
        .context("cannot run node")?;
    if !out.status.success() {
        return Err(anyhow::anyhow!(
            "@sigstore/verify failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let peer: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("the peer's output is not JSON")?;
    let peer_seconds = peer["seconds"].as_f64().unwrap_or(f64::NAN);
    let theirs = peer_iterations as f64 / peer_seconds;
    if cli.json {
        print_json(&json!({
            "bundle": bundle_path.display().to_string(),
            "cairn_per_second": ours,
            "sigstore_js_per_second": theirs,
            "ratio": ours / theirs,
        }));
    } else {
        println!(
            "full offline verification of {} (one core)",
            bundle_path.display()
        );
        println!(
            "{:<34} {:>12.0} bundles/s  ({iterations} iterations)",
            "cairn-sigstore", ours
        );
        println!(
            "{:<34} {:>12.0} bundles/s  ({peer_iterations} iterations)",
            "npm @sigstore/verify 3.1.1", theirs
        );
        println!(
            "ratio cairn/sigstore-js: {:.1}x (goal: >= 20x)",
            ours / theirs
        );
    }
    Ok(ExitCode::SUCCESS)
}
