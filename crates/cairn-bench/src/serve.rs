//! `cairn bench serve`: load on `cairn up` over loopback — many concurrent
//! clients for a bounded time, mixed reads (runs, workloads, one run, the log's
//! checkpoint) and signed GitHub push deliveries that queue real runs (no
//! workers, so the queue only grows). Reports errors, throughput and p50/p99.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use cairn_engine::DataDir;
use cairn_server::secret::{Secret, WebhookSecrets};
use cairn_server::serve::{bootstrap_admin, serve};
use cairn_server::webhooks::signature::sign;
use cairn_server::{AppState, ServerConfig};
use cairn_store::{SqliteStore, Store};
use serde_json::json;

use crate::Failure;
use crate::Output;
use crate::print_json;
use crate::summary;

const SECRET: &[u8] = b"bench-webhook-secret";
const KINDS: [&str; 5] = ["runs", "workloads", "run", "checkpoint", "webhook"];

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
        ])
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        return Err(anyhow!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// One request's outcome.
struct Sample {
    kind: usize,
    took: Duration,
    ok: bool,
}

pub fn serve_bench(out: &Output, clients: usize, seconds: u64) -> Result<ExitCode, Failure> {
    let clients = clients.clamp(1, 2_000);
    let seconds = seconds.clamp(1, 600);
    let tmp = tempfile::tempdir().context("a temporary directory")?;
    let repo = tmp.path().join("app");
    std::fs::create_dir_all(&repo).context("creating the app")?;
    std::fs::write(
        repo.join("cairn.toml"),
        "[workload]\nname = \"bench\"\nchain = \"default\"\n\n[build]\ncommand = \"true\"\n\n[test]\nunit = \"true\"\n",
    )
    .context("writing cairn.toml")?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "bench"])?;
    let head = String::from_utf8_lossy(
        &Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["rev-parse", "HEAD"])
            .output()
            .context("git rev-parse")?
            .stdout,
    )
    .trim()
    .to_owned();

    let data = DataDir::at(tmp.path().join("data"));
    std::fs::create_dir_all(data.root()).context("creating the data directory")?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(data.root()).context("opening the store")?);
    let state = AppState::new(
        store,
        ServerConfig {
            data: data.clone(),
            platform_dir: out.platform_dir.clone(),
            session_ttl_ms: 3_600_000,
            secure_cookies: false,
        },
        WebhookSecrets {
            github: Secret::new(SECRET.to_vec()),
            gitlab: Secret::new(b"bench-gitlab-secret".to_vec()),
            gitea: Secret::new(b"bench-gitea-secret".to_vec()),
        },
    );
    let token_file = bootstrap_admin(&state)
        .map_err(|e| anyhow!(e))?
        .ok_or_else(|| anyhow!("a fresh data directory has identities"))?;
    let token = std::fs::read_to_string(&token_file).context("reading the admin token")?;
    let token = token.trim().to_owned();
    state.0.engine.register(&repo, Some("bench/app"))?;
    // One run to read.
    state
        .0
        .engine
        .enqueue(&repo, "HEAD", Some("bench"), cairn_model::Trigger::Cli)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("the async runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .context("binding a loopback port")?;
    let addr = listener.local_addr().context("the bound address")?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(serve(
        listener,
        state.clone(),
        0,
        Duration::from_secs(1),
        async move {
            let _ = stop_rx.await;
        },
    ));

    if !out.json {
        eprintln!(
            "cairn bench serve: {clients} clients for {seconds} s against http://{addr}/ (4 reads : 1 signed push)"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let base = format!("http://{addr}");
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let base = base.clone();
            let token = token.clone();
            let head = head.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .new_agent();
                let mut samples = Vec::new();
                let mut n = client;
                while Instant::now() < deadline {
                    let kind = n % KINDS.len();
                    n += 1;
                    let t = Instant::now();
                    let auth = format!("Bearer {token}");
                    let result = match KINDS[kind] {
                        "runs" => agent
                            .get(format!("{base}/api/runs?limit=20"))
                            .header("Authorization", &auth)
                            .call(),
                        "workloads" => agent
                            .get(format!("{base}/api/workloads"))
                            .header("Authorization", &auth)
                            .call(),
                        "run" => agent
                            .get(format!("{base}/api/runs/1"))
                            .header("Authorization", &auth)
                            .call(),
                        "checkpoint" => agent.get(format!("{base}/log/checkpoint")).call(),
                        _ => {
                            let body = json!({
                                "ref": "refs/heads/main",
                                "after": head,
                                "repository": {"full_name": "bench/app"},
                            })
                            .to_string();
                            agent
                                .post(format!("{base}/webhooks/github"))
                                .header("Content-Type", "application/json")
                                .header("X-GitHub-Event", "push")
                                .header("X-GitHub-Delivery", &format!("bench-{client}-{n}"))
                                .header(
                                    "X-Hub-Signature-256",
                                    &format!("sha256={}", sign(SECRET, body.as_bytes())),
                                )
                                .send(body.as_str())
                        }
                    };
                    let ok = match result {
                        Ok(mut response) => {
                            let good = response.status().is_success();
                            let _ = response.body_mut().read_to_vec();
                            good
                        }
                        Err(_) => false,
                    };
                    samples.push(Sample {
                        kind,
                        took: t.elapsed(),
                        ok,
                    });
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for t in threads {
        samples.extend(t.join().map_err(|_| anyhow!("a client thread panicked"))?);
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(());
    let _ = runtime.block_on(server);

    let errors = samples.iter().filter(|s| !s.ok).count();
    let all = summary(samples.iter().map(|s| s.took).collect());
    let throughput = samples.len() as f64 / elapsed.as_secs_f64();
    let per_kind: Vec<_> = KINDS
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let xs: Vec<Duration> = samples.iter().filter(|s| s.kind == k).map(|s| s.took).collect();
            let n = xs.len();
            let errs = samples.iter().filter(|s| s.kind == k && !s.ok).count();
            let [p50, p99, mean, max] = summary(xs);
            json!({"kind": name, "requests": n, "errors": errs, "p50_ms": p50, "p99_ms": p99, "mean_ms": mean, "max_ms": max})
        })
        .collect();
    let queued = state.0.store.queued_count()?;
    if out.json {
        print_json(&json!({
            "clients": clients, "seconds": elapsed.as_secs_f64(), "requests": samples.len(),
            "errors": errors, "throughput_rps": throughput,
            "p50_ms": all[0], "p99_ms": all[1], "mean_ms": all[2], "max_ms": all[3],
            "runs_queued_by_webhooks": queued.saturating_sub(1), "by_kind": per_kind,
        }));
    } else {
        println!(
            "{} requests from {clients} clients in {:.1} s: {errors} errors, {throughput:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
            samples.len(),
            elapsed.as_secs_f64(),
            all[0],
            all[1],
            all[3]
        );
        for k in &per_kind {
            println!(
                "  {:<10} {:>7} requests  {:>3} errors  p50 {:>7.2} ms  p99 {:>7.2} ms",
                k["kind"].as_str().unwrap_or(""),
                k["requests"],
                k["errors"],
                k["p50_ms"].as_f64().unwrap_or(f64::NAN),
                k["p99_ms"].as_f64().unwrap_or(f64::NAN)
            );
        }
        println!("  runs queued by the pushes: {}", queued.saturating_sub(1));
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::USER)
    })
}
