//! `cairn bench serve --replicas --database postgres://…`: API reads with
//! `--clients` connections spread over two `cairn serve` replicas on one
//! PostgreSQL, beside `cairn up` on SQLite, in the same run (issue 16). Every
//! server is a real `cairn` process on loopback with a data directory of its
//! own (the replicas share one, as they do in a deployment); the load comes
//! from `wrk`, a separate process: one per server, so for the replicas two at
//! once with half the connections each. The reads are `cairn bench serve`'s
//! mixed reads (runs, workloads, one run, the log's checkpoint) with
//! keep-alive; p50/p99 over both replicas merge the two wrk latency
//! distributions (each printed at every 0.1 percentile), weighted by requests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use cairn_engine::{DataDir, Engine};
use cairn_model::Trigger;
use serde_json::json;

use crate::{Failure, Output, print_json};

/// A `cairn` server process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cairn ARGS` with `env`, and waits until it prints
/// `… serving on http://ADDR/`.
fn start(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Server, Failure> {
    let mut command = Command::new(exe);
    command
        .args(args)
        .env_remove("CAIRN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `cairn {}`", args.join(" ")))?;
    let (tx, rx) = channel::<String>();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let server = Server {
        child,
        addr: String::new(),
    };
    ready(server, &rx, args)
}

fn ready(mut server: Server, rx: &Receiver<String>, args: &[&str]) -> Result<Server, Failure> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(anyhow!(
                    "`cairn {}` ended ({status}): {}",
                    args.join(" "),
                    seen.join("\n")
                )
                .into());
            }
            continue;
        };
        if let Some(rest) = line.split("serving on http://").nth(1) {
            server.addr = rest.split('/').next().unwrap_or_default().to_owned();
            return Ok(server);
        }
        seen.push(line);
    }
    Err(anyhow!(
        "`cairn {}` did not start within 60 s: {}",
        args.join(" "),
        seen.join("\n")
    )
    .into())
}

/// Registers the no-op workload in `store` and records one run of it (the
/// run the reads read: queued for no worker, so `cairn up`'s worker leaves it
/// alone and both servers read the same kind of run); returns the run's id.
fn seed(
    store: Arc<dyn cairn_store::Store>,
    data: &DataDir,
    repo: &Path,
    platform: &Path,
) -> Result<i64, Failure> {
    let engine = Engine::new(store, data.clone(), Some(platform.to_owned()));
    engine.register(repo, None)?;
    let run = engine.enqueue(repo, "HEAD", Some("bench"), Trigger::Cli)?;
    Ok(run.id.0)
}

/// The mixed reads of `cairn bench serve`, reading run `RUN_ID`; `done`
/// prints the figures and the latency at every 0.1 percentile (µs).
const READS_LUA: &str = r#"
local paths = { "/api/runs?limit=20", "/api/workloads", "/api/runs/" .. RUN_ID, "/log/checkpoint" }
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1], HEADERS)
end
done = function(summary, latency, requests)
  local e = summary.errors
  local q = {}
  for i = 1, 1000 do q[i] = string.format("%d", latency:percentile(i / 10)) end
  io.write(string.format(
    "CAIRN {\"requests\":%d,\"errors\":%d,\"seconds\":%f,\"max_us\":%f,\"quantiles_us\":[%s]}\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    summary.duration / 1e6, latency.max, table.concat(q, ",")))
end
"#;

/// What one or more wrk processes measured together.
#[derive(Debug, Clone)]
struct Reads {
    requests: u64,
    errors: u64,
    seconds: f64,
    /// (latency µs, weight in requests) at every 0.1 percentile of each wrk.
    samples: Vec<(f64, f64)>,
    max_ms: f64,
}

impl Reads {
    fn merge(parts: Vec<Reads>) -> Reads {
        let mut all = Reads {
            requests: 0,
            errors: 0,
            seconds: 0.0,
            samples: Vec::new(),
            max_ms: 0.0,
        };
        for p in parts {
            all.requests += p.requests;
            all.errors += p.errors;
            all.seconds = all.seconds.max(p.seconds);
            all.max_ms = all.max_ms.max(p.max_ms);
            all.samples.extend(p.samples);
        }
        all.samples.sort_by(|a, b| a.0.total_cmp(&b.0));
        all
    }

    /// The latency (ms) below which `pct` % of the requests fell.
    fn percentile_ms(&self, pct: f64) -> f64 {
        let total: f64 = self.samples.iter().map(|s| s.1).sum();
        let mut seen = 0.0;
        for (us, weight) in &self.samples {
            seen += weight;
            if seen >= total * pct / 100.0 {
                return us / 1000.0;
            }
        }
        self.samples.last().map_or(f64::NAN, |s| s.0 / 1000.0)
    }

    fn json(&self, what: &str) -> serde_json::Value {
        json!({
            "server": what, "requests": self.requests, "errors": self.errors,
            "throughput_rps": self.requests as f64 / self.seconds.max(1e-9),
            "p50_ms": self.percentile_ms(50.0), "p99_ms": self.percentile_ms(99.0),
            "max_ms": self.max_ms,
        })
    }
}

/// Starts a wrk process putting `clients` keep-alive connections of mixed
/// reads on `addr` for `seconds`.
fn wrk(
    dir: &Path,
    addr: &str,
    token: &str,
    run: i64,
    clients: usize,
    seconds: u64,
) -> Result<std::process::Child, Failure> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let script = format!(
        "HEADERS = {{[\"Authorization\"] = \"Bearer {token}\"}}\nRUN_ID = \"{run}\"\n{READS_LUA}"
    );
    let path = dir.join(format!("wrk-replicas-{n}.lua"));
    std::fs::write(&path, script).context("writing the wrk script")?;
    Ok(crate::serve::wrk(clients, seconds, &path, addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running wrk")?)
}

fn figures(child: std::process::Child) -> Result<Reads, Failure> {
    let out = child.wait_with_output().context("waiting for wrk")?;
    let printed = String::from_utf8_lossy(&out.stdout);
    let line = printed
        .lines()
        .find_map(|l| l.strip_prefix("CAIRN "))
        .ok_or_else(|| {
            anyhow!(
                "wrk printed no figures: {printed}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let v: serde_json::Value = serde_json::from_str(line).context("wrk's figures")?;
    let requests = v["requests"].as_u64().unwrap_or(0);
    let quantiles: Vec<f64> = v["quantiles_us"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default();
    let weight = requests as f64 / quantiles.len().max(1) as f64;
    Ok(Reads {
        requests,
        errors: v["errors"].as_u64().unwrap_or(u64::MAX),
        seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
        samples: quantiles.into_iter().map(|q| (q, weight)).collect(),
        max_ms: v["max_us"].as_f64().unwrap_or(f64::NAN) / 1000.0,
    })
}

/// Reads `admin.token`, which the first server on a data directory writes.
fn admin_token(data: &DataDir) -> Result<String, Failure> {
    let path = data.root().join("server").join("admin.token");
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned())
}

/// `cairn bench serve --replicas`: see the module documentation.
pub fn replicas(
    out: &Output,
    database: &str,
    clients: usize,
    seconds: u64,
) -> Result<ExitCode, Failure> {
    if !(database.starts_with("postgres://") || database.starts_with("postgresql://")) {
        return Err(Failure::user(anyhow!(
            "`cairn bench serve --replicas` needs a PostgreSQL database: --database postgres://…"
        )));
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        return Err(Failure::user(anyhow!(
            "cairn bench serve puts the load from wrk, a separate process: install it (Debian: apt-get install wrk)"
        )));
    }
    let clients = clients.clamp(2, 2_000);
    let seconds = seconds.clamp(1, 600);
    let exe = std::env::current_exe().context("cannot find the cairn binary")?;
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let (repo, platform) = crate::chain_setup::noop_workload(scratch.path(), 1, "bench")?;
    let platform_s = platform.to_string_lossy().into_owned();

    // cairn up on SQLite, with a data directory of its own.
    let up_data = DataDir::at(scratch.path().join("up"));
    std::fs::create_dir_all(up_data.root()).context("creating a data directory")?;
    let up_store: Arc<dyn cairn_store::Store> = Arc::new(
        cairn_store::SqliteStore::open(up_data.root()).context("opening the SQLite store")?,
    );
    let up_run = seed(up_store.clone(), &up_data, &repo, &platform)?;
    let up_home = up_data.root().to_string_lossy().into_owned();
    let up = start(
        &exe,
        &["up", "--listen", "127.0.0.1:0", "--grace", "1"],
        &[
            ("CAIRN_HOME", &up_home),
            ("CAIRN_PLATFORM_DIR", &platform_s),
        ],
    )?;
    drop(up_store);
    let up_token = admin_token(&up_data)?;

    // Two cairn serve replicas on PostgreSQL, one data directory between them.
    let pg_data = DataDir::at(scratch.path().join("replicas"));
    std::fs::create_dir_all(pg_data.root()).context("creating a data directory")?;
    let pg_run = seed(
        cairn_store::open(database).context("cannot open the database")?,
        &pg_data,
        &repo,
        &platform,
    )?;
    let pg_home = pg_data.root().to_string_lossy().into_owned();
    let env = [
        ("CAIRN_HOME", pg_home.as_str()),
        ("CAIRN_PLATFORM_DIR", platform_s.as_str()),
        ("CAIRN_DATABASE_URL", database),
    ];
    let serve = ["serve", "--listen", "127.0.0.1:0", "--grace", "1"];
    // The first bootstraps the admin; the second starts after it.
    let a = start(&exe, &serve, &env)?;
    let b = start(&exe, &serve, &env)?;
    let pg_token = admin_token(&pg_data)?;

    if !out.json {
        eprintln!(
            "cairn bench serve --replicas: wrk, {clients} keep-alive connections of mixed reads for {seconds} s: cairn up (SQLite) at {}, then 2 × cairn serve (PostgreSQL) at {} and {}, {} connections each",
            up.addr,
            a.addr,
            b.addr,
            clients / 2
        );
    }
    let sqlite = figures(wrk(
        scratch.path(),
        &up.addr,
        &up_token,
        up_run,
        clients,
        seconds,
    )?)?;
    let half = clients / 2;
    let wa = wrk(scratch.path(), &a.addr, &pg_token, pg_run, half, seconds)?;
    let wb = wrk(
        scratch.path(),
        &b.addr,
        &pg_token,
        pg_run,
        clients - half,
        seconds,
    )?;
    let (fa, fb) = (figures(wa)?, figures(wb)?);
    let per_replica = [fa.clone(), fb.clone()];
    let replicas = Reads::merge(vec![fa, fb]);
    let sqlite = Reads::merge(vec![sqlite]);
    drop((up, a, b));

    let errors = sqlite.errors + replicas.errors;
    if out.json {
        print_json(&json!({
            "connections": clients,
            "seconds": seconds,
            "load": "wrk (separate processes: one per server)",
            "reads": [sqlite.json("cairn up (SQLite)"), replicas.json("2 × cairn serve (PostgreSQL)")],
            "per_replica": per_replica.iter().map(|r| Reads::merge(vec![r.clone()]).json("cairn serve")).collect::<Vec<_>>(),
        }));
    } else {
        for (what, r) in [
            ("cairn up (SQLite)", &sqlite),
            ("2 × cairn serve (PostgreSQL)", &replicas),
        ] {
            println!(
                "  {what:<30} {:>8} requests {:>7.0} req/s  {:>3} errors  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.1} ms",
                r.requests,
                r.requests as f64 / r.seconds.max(1e-9),
                r.errors,
                r.percentile_ms(50.0),
                r.percentile_ms(99.0),
                r.max_ms
            );
        }
        for (i, r) in per_replica.iter().enumerate() {
            let r = Reads::merge(vec![r.clone()]);
            println!(
                "    replica {i}: {} requests, p50 {:.2} ms, p99 {:.2} ms",
                r.requests,
                r.percentile_ms(50.0),
                r.percentile_ms(99.0)
            );
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::USER)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_percentiles_weigh_each_wrk_by_its_requests() {
        let part = |requests: u64, us: f64| Reads {
            requests,
            errors: 0,
            seconds: 1.0,
            samples: (0..1000).map(|_| (us, requests as f64 / 1000.0)).collect(),
            max_ms: us / 1000.0,
        };
        // 900 requests at 1 ms, 100 at 10 ms: p50 1 ms, p99 10 ms.
        let all = Reads::merge(vec![part(900, 1000.0), part(100, 10_000.0)]);
        assert_eq!(all.requests, 1000);
        assert!((all.percentile_ms(50.0) - 1.0).abs() < 1e-9);
        assert!((all.percentile_ms(99.0) - 10.0).abs() < 1e-9);
        assert!((all.percentile_ms(89.0) - 1.0).abs() < 1e-9);
    }
}
