//! `cairn bench serve`: load on the server over loopback as its users put it,
//! from a separate process (`wrk`, with a Lua script per kind of request), at
//! `--clients` connections for `--seconds` per phase: mixed reads (runs,
//! workloads, one run, the log's checkpoint) and, apart, signed GitHub push
//! deliveries that queue real runs (no workers, so the queue only grows); each
//! with keep-alive and with a connection per request. Reports errors,
//! throughput and p50/p99 per phase. Goal: reads p99 ≤ 50 ms at 200
//! connections, 0 errors.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

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

const SECRET: &[u8] = b"bench-webhook-secret";

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

    let result = load(out, addr, &token, &head, tmp.path(), clients, seconds);
    let _ = stop_tx.send(());
    let _ = runtime.block_on(server);
    let phases = result?;
    let queued = state.0.store.queued_count()?;
    let reads_errors: u64 = phases
        .iter()
        .filter(|p| p.kind == "reads")
        .map(|p| p.errors)
        .sum();
    let reads_p99 = phases
        .iter()
        .filter(|p| p.kind == "reads")
        .map(|p| p.p99_ms)
        .fold(0.0, f64::max);
    if out.json {
        print_json(&json!({
            "connections": clients,
            "seconds_per_phase": seconds,
            "load": "wrk (a separate process)",
            "phases": phases.iter().map(Phase::json).collect::<Vec<_>>(),
            "reads_p99_ms": reads_p99,
            "reads_errors": reads_errors,
            "runs_queued_by_webhooks": queued.saturating_sub(1),
        }));
    } else {
        for p in &phases {
            println!(
                "  {:<8} {:<10} {:>7} requests {:>7.0} req/s  {:>3} errors  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.1} ms",
                p.kind,
                if p.keep_alive { "keep-alive" } else { "close" },
                p.requests,
                p.requests as f64 / p.seconds.max(1e-9),
                p.errors,
                p.p50_ms,
                p.p99_ms,
                p.max_ms
            );
        }
        println!(
            "reads at {clients} connections: p99 {reads_p99:.2} ms, {reads_errors} errors (goal: p99 <= 50 ms, 0 errors); runs queued by the pushes: {}",
            queued.saturating_sub(1)
        );
    }
    let errors: u64 = phases.iter().map(|p| p.errors).sum();
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::USER)
    })
}

/// One wrk run: a kind of request, with or without keep-alive.
struct Phase {
    kind: &'static str,
    keep_alive: bool,
    requests: u64,
    errors: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Phase {
    fn json(&self) -> serde_json::Value {
        json!({
            "kind": self.kind, "keep_alive": self.keep_alive, "requests": self.requests,
            "errors": self.errors, "throughput_rps": self.requests as f64 / self.seconds.max(1e-9),
            "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "max_ms": self.max_ms,
        })
    }
}

/// The reads: the runs list, the workloads, one run and the log's checkpoint,
/// in turn; the script prints its figures as one JSON line when done.
const READS_LUA: &str = r#"
local paths = { "/api/runs?limit=20", "/api/workloads", "/api/runs/1", "/log/checkpoint" }
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1], HEADERS)
end
"#;

/// Signed GitHub push deliveries: one body and its signature, a fresh
/// delivery id per request (a repeated id is refused as a replay).
const PUSH_LUA: &str = r#"
local counter = 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end
request = function()
  counter = counter + 1
  local headers = {}
  for k, v in pairs(HEADERS) do headers[k] = v end
  headers["X-GitHub-Delivery"] = string.format("bench-%s-%d-%d", RUN, id or 0, counter)
  return wrk.format("POST", "/webhooks/github", headers, BODY)
end
"#;

/// The figures, printed by every script.
const DONE_LUA: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "CAIRN {\"requests\":%d,\"errors\":%d,\"seconds\":%f,\"p50_us\":%f,\"p99_us\":%f,\"max_us\":%f}\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99), latency.max))
end
"#;

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn load(
    out: &Output,
    addr: std::net::SocketAddr,
    token: &str,
    head: &str,
    dir: &Path,
    clients: usize,
    seconds: u64,
) -> Result<Vec<Phase>, Failure> {
    if Command::new("wrk").arg("--version").output().is_err() {
        return Err(Failure::user(anyhow!(
            "cairn bench serve puts the load from wrk, a separate process: install it (Debian: apt-get install wrk)"
        )));
    }
    let body = json!({
        "ref": "refs/heads/main",
        "after": head,
        "repository": {"full_name": "bench/app"},
    })
    .to_string();
    let signature = format!("sha256={}", sign(SECRET, body.as_bytes()));
    let run_tag = std::process::id();
    let mut phases = Vec::new();
    for (kind, keep_alive) in [
        ("reads", true),
        ("reads", false),
        ("pushes", true),
        ("pushes", false),
    ] {
        let mut headers = Vec::new();
        if kind == "reads" {
            headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
        } else {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
            headers.push(("X-GitHub-Event".to_owned(), "push".to_owned()));
            headers.push(("X-Hub-Signature-256".to_owned(), signature.clone()));
        }
        if !keep_alive {
            headers.push(("Connection".to_owned(), "close".to_owned()));
        }
        let mut script = String::from("HEADERS = {");
        for (k, v) in &headers {
            script.push_str(&format!("[{}] = {}, ", lua_string(k), lua_string(v)));
        }
        script.push_str("}\n");
        script.push_str(&format!(
            "BODY = {}\nRUN = \"{run_tag}-{}\"\n",
            lua_string(&body),
            phases.len()
        ));
        script.push_str(if kind == "reads" { READS_LUA } else { PUSH_LUA });
        script.push_str(DONE_LUA);
        let path = dir.join(format!("wrk-{}.lua", phases.len()));
        std::fs::write(&path, script).context("writing the wrk script")?;
        if !out.json {
            eprintln!(
                "cairn bench serve: wrk, {clients} connections for {seconds} s: {kind}, {}",
                if keep_alive {
                    "keep-alive"
                } else {
                    "a connection per request"
                }
            );
        }
        let wrk = wrk(clients, seconds, &path, addr)
            .output()
            .context("running wrk")?;
        let printed = String::from_utf8_lossy(&wrk.stdout);
        let line = printed
            .lines()
            .find_map(|l| l.strip_prefix("CAIRN "))
            .ok_or_else(|| {
                anyhow!(
                    "wrk printed no figures: {}{}",
                    printed,
                    String::from_utf8_lossy(&wrk.stderr)
                )
            })?;
        let v: serde_json::Value = serde_json::from_str(line).context("wrk's figures")?;
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        phases.push(Phase {
            kind,
            keep_alive,
            requests: v["requests"].as_u64().unwrap_or(0),
            errors: v["errors"].as_u64().unwrap_or(u64::MAX),
            seconds: f("seconds"),
            p50_ms: f("p50_us") / 1000.0,
            p99_ms: f("p99_us") / 1000.0,
            max_ms: f("max_us") / 1000.0,
        });
    }
    Ok(phases)
}

/// `wrk` at `clients` connections (at most two threads: this machine's cores)
/// for `seconds`, running `script` against `addr`, a 10 s timeout per request.
pub(crate) fn wrk(
    clients: usize,
    seconds: u64,
    script: &Path,
    addr: impl std::fmt::Display,
) -> Command {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t",
        &clients.clamp(1, 2).to_string(),
        "-c",
        &clients.to_string(),
        "-d",
        &format!("{seconds}s"),
        "--timeout",
        "10s",
        "-s",
    ])
    .arg(script)
    .arg(format!("http://{addr}/"));
    cmd
}
