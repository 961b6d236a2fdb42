//! cairn split into processes on one PostgreSQL (issue 16): `cairn serve`
//! replicas and `cairn worker` processes, real processes on loopback, a real
//! PostgreSQL (`cairn_testkit::pg`), real bubblewrap and git. They share the
//! database (runs, logs, identities, leases) and one data directory, the
//! volume every replica mounts (the signing key, the audit log, images).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use cairn_testkit::pg::PgServer;
use common::Fixture;
use common::server::{Up, agent};
use serde_json::Value;

/// How many runs of the example app are queued (issue 16: 200).
const RUNS: usize = 200;

fn serve(data: &std::path::Path, url: &str) -> Up {
    Up::process(
        data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--grace",
            "5",
            "--database",
            url,
        ],
        &[],
        "cairn serve: serving on ",
    )
}

fn worker(data: &std::path::Path, url: &str) -> Up {
    // The URL through the environment, as the manifests give it.
    Up::process(
        data,
        &["worker", "--grace", "5"],
        &[("CAIRN_DATABASE_URL", url)],
        "worker(s) waiting for queued runs",
    )
}

/// A workload `slow` (chain `default`): its build does nothing, its unit
/// test runs `unit`.
fn slow_workload(unit: &str) -> Fixture {
    let slow = Fixture::new();
    slow.write(
        "cairn.toml",
        &format!(
            "[workload]\nname = \"slow\"\nchain = \"default\"\n\n[build]\ncommand = \"true\"\n\n[test]\nunit = \"{unit}\"\n"
        ),
    )
    .commit("slow");
    slow
}

/// `cairn workload add .` in `repo` as `token`, with `env` (the database):
/// it succeeds.
fn add_workload(repo: &Fixture, env: &[(&str, &str)], token: &str) {
    let out = repo
        .cairn(&["workload", "add", "."])
        .envs(env.iter().copied())
        .env("CAIRN_TOKEN", token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn queue(base: &str, token: &str, workload: &str) -> i64 {
    let r = agent()
        .post(format!("{base}/api/runs"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(format!(r#"{{"workload":"{workload}"}}"#))
        .unwrap();
    let status = r.status();
    let body = r.into_body().read_to_string().unwrap();
    assert_eq!(status, 202, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap()
}

fn run(base: &str, token: &str, id: i64) -> Value {
    let r = agent()
        .get(format!("{base}/api/runs/{id}"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    serde_json::from_str(&r.into_body().read_to_string().unwrap()).unwrap()
}

/// The process that printed `run {id} of … started`, by its index in `workers`.
fn taken_by(workers: &mut [Up], id: i64) -> Option<usize> {
    let needle = format!("run {id} of ");
    workers.iter_mut().position(|w| {
        w.drain()
            .iter()
            .any(|l| l.contains(&needle) && l.contains(" started"))
    })
}

#[test]
fn replicas_and_workers_on_postgresql_run_each_run_once_and_survive_a_killed_worker() {
    let started = Instant::now();
    let pg = PgServer::start();
    let db = pg.database();
    let url = db.url().to_owned();
    let app = Fixture::example("hello-c");
    let slow = slow_workload("echo slow started; sleep 120");

    let mut a = serve(&app.data, &url);
    let mut b = serve(&app.data, &url);
    let token = a.admin_token();
    // The CLI against the same database: the workloads, registered once.
    let home = app.data.to_str().unwrap();
    for repo in [&app, &slow] {
        add_workload(
            repo,
            &[("CAIRN_HOME", home), ("CAIRN_DATABASE_URL", &url)],
            &token,
        );
    }
    let mut workers: Vec<Up> = (0..3).map(|_| worker(&app.data, &url)).collect();
    println!(
        "PostgreSQL {url}: 2 replicas ({} and {}), 3 workers (pids {:?}), up in {:.1} s",
        a.url,
        b.url,
        workers.iter().map(Up::pid).collect::<Vec<_>>(),
        started.elapsed().as_secs_f64()
    );

    // A slow run first: its worker is the one killed in the middle of it.
    let slow_id = queue(&b.url, &token, "slow");
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        if let Some(i) = taken_by(&mut workers, slow_id) {
            break i;
        }
        assert!(Instant::now() < deadline, "no worker took the slow run");
        std::thread::sleep(Duration::from_millis(100));
    };

    // 200 runs of the example app, queued through both replicas in turn.
    let queued_at = Instant::now();
    let ids: Vec<i64> = (0..RUNS)
        .map(|i| queue(if i % 2 == 0 { &a.url } else { &b.url }, &token, "hello-c"))
        .collect();
    println!(
        "queued {RUNS} runs through both replicas in {:.1} s",
        queued_at.elapsed().as_secs_f64()
    );

    // A client follows the last run's events on replica A, connected before any
    // worker takes it (it was queued through B): every line it sees was written
    // by a worker process while the client was connected to A.
    let last = *ids.last().unwrap();
    let follower = {
        let (base, token) = (a.url.clone(), token.clone());
        std::thread::spawn(move || {
            let r = agent()
                .get(format!("{base}/api/runs/{last}/events"))
                .header("Authorization", &format!("Bearer {token}"))
                .call()
                .unwrap();
            assert_eq!(r.status(), 200);
            let mut events = Vec::new();
            let mut kind = String::new();
            for line in BufReader::new(r.into_body().into_reader())
                .lines()
                .map_while(Result::ok)
            {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = k.trim().to_owned();
                } else if let Some(data) = line.strip_prefix("data:") {
                    events.push((kind.clone(), data.trim().to_owned()));
                    if kind == "end" {
                        break;
                    }
                }
            }
            events
        })
    };
    assert_eq!(run(&a.url, &token, last)["status"], "queued");

    // The slow run's worker is killed in the middle of it: another process
    // notices its lease going stale and marks the run interrupted.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(run(&a.url, &token, slow_id)["status"], "running");
    let victim_pid = workers[victim].pid();
    workers[victim].kill9();
    let killed_at = Instant::now();
    println!("kill -9 worker {victim_pid} in the middle of run {slow_id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let slow_run = loop {
        let r = run(&b.url, &token, slow_id);
        if r["status"] != "running" {
            break r;
        }
        assert!(Instant::now() < deadline, "the killed worker's run: {r}");
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "run {slow_id} after {:.1} s: {} — {}",
        killed_at.elapsed().as_secs_f64(),
        slow_run["status"],
        slow_run["reason"]
    );
    assert_eq!(slow_run["status"], "interrupted", "{slow_run}");
    assert!(
        slow_run["reason"]
            .as_str()
            .unwrap()
            .contains("stopped renewing the run's lease"),
        "{slow_run}"
    );

    // Every run ends, each succeeded, each taken by exactly one worker once.
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut outcome: BTreeMap<i64, Value> = BTreeMap::new();
    while outcome.len() < ids.len() {
        for &id in &ids {
            if outcome.contains_key(&id) {
                continue;
            }
            let r = run(if id % 2 == 0 { &a.url } else { &b.url }, &token, id);
            if r["finished_at"].is_string() {
                outcome.insert(id, r);
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} of {RUNS} runs ended",
            outcome.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let all_done = queued_at.elapsed();
    let failed: Vec<&Value> = outcome
        .values()
        .filter(|r| r["status"] != "succeeded")
        .collect();
    assert!(failed.is_empty(), "runs that did not succeed: {failed:?}");
    let mut starts: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    let mut per_worker: BTreeMap<u32, usize> = BTreeMap::new();
    for w in &mut workers {
        let pid = w.pid_or_zero();
        for line in w.drain() {
            if let Some(rest) = line.strip_prefix("cairn: run ")
                && line.contains(" of hello-c started")
            {
                let id: i64 = rest.split_whitespace().next().unwrap().parse().unwrap();
                starts.entry(id).or_default().push(pid);
                *per_worker.entry(pid).or_default() += 1;
            }
        }
    }
    let expected: BTreeSet<i64> = ids.iter().copied().collect();
    let started_once: BTreeSet<i64> = starts
        .iter()
        .filter(|(_, by)| by.len() == 1)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        started_once, expected,
        "each run started exactly once: {starts:?}"
    );
    println!(
        "{RUNS} runs succeeded, each started exactly once, in {:.1} s after queueing ({:.1} runs/minute); runs per worker pid: {per_worker:?}",
        all_done.as_secs_f64(),
        RUNS as f64 / all_done.as_secs_f64() * 60.0
    );

    // The follower on A saw the run go from queued to succeeded, with the
    // lines its worker produced, while connected to A.
    let events = follower.join().unwrap();
    a.wait_for("PostgreSQL LISTEN/NOTIFY", Duration::from_secs(5));
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"run"), "{kinds:?}");
    assert!(events[0].1.contains(r#""status":"queued""#), "{events:?}");
    let lines: Vec<&str> = events
        .iter()
        .filter(|(k, _)| k == "log")
        .map(|(_, d)| d.as_str())
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("ok: test_greets_by_name")),
        "{events:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("ok: acceptance_greets")),
        "{events:?}"
    );
    assert_eq!(kinds.last(), Some(&"end"), "{kinds:?}");
    assert!(events.last().unwrap().1.contains(r#""status":"succeeded""#));
    println!(
        "SSE on replica A for run {last} (queued through B, run by a worker): {} events, {} log lines, e.g. {}",
        events.len(),
        lines.len(),
        lines
            .iter()
            .find(|l| l.contains("ok: test_greets"))
            .unwrap()
    );

    for w in &mut workers {
        w.stop(Duration::from_secs(20));
    }
    assert_eq!(a.stop(Duration::from_secs(20)), Some(0));
    assert_eq!(b.stop(Duration::from_secs(20)), Some(0));
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
}

/// A loopback TCP port that forwards each connection to PostgreSQL's unix
/// socket, once `open` is called: before that, nothing listens there (the
/// database is unreachable).
struct LatePostgres {
    port: u16,
    socket: std::path::PathBuf,
}

impl LatePostgres {
    fn new(pg: &PgServer) -> LatePostgres {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let socket = pg.socket_dir().join(".s.PGSQL.5432");
        assert!(socket.exists(), "{}", socket.display());
        LatePostgres { port, socket }
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://cairn@127.0.0.1:{}/{db}", self.port)
    }

    fn open(&self) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        let socket = self.socket.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let server = std::os::unix::net::UnixStream::connect(&socket).unwrap();
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut c1, mut s1) = (client, server);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut s1);
                    let _ = s1.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
            }
        });
    }
}

/// The database unreachable when a worker starts: it says so, tries again with
/// backoff, and once the database is there runs what was queued meanwhile
/// (nothing acknowledged is lost). Unreachable for longer than
/// `--database-wait`: it gives up, exit 2, naming the server (never a password).
#[test]
fn a_worker_waits_for_an_unreachable_database_and_then_runs_what_was_queued() {
    let pg = PgServer::start();
    let db = pg.database();
    let app = Fixture::example("hello-c");
    let late = LatePostgres::new(&pg);

    // Never reachable: refused after the wait, with a clear error.
    let out = app
        .cairn(&["worker", "--database-wait", "2"])
        .env(
            "CAIRN_DATABASE_URL",
            format!(
                "postgres://cairn:hunter2@127.0.0.1:{}/{}",
                late.port,
                db.name()
            ),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("trying again in 500 ms"), "{err}");
    assert!(err.contains("gave up after 2 s"), "{err}");
    assert!(
        err.contains("cannot connect to the PostgreSQL database"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password was printed: {err}");

    // A replica is up (through the socket); a run is queued and acknowledged.
    let mut a = serve(&app.data, db.url());
    let token = a.admin_token();
    // The identities are in the database: a command from a data directory that
    // has none of its own still needs a token the database knows.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = app
        .cairn(&["workload", "add", "."])
        .env("CAIRN_HOME", elsewhere.path())
        .env("CAIRN_DATABASE_URL", db.url())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("workload add without a token, another data directory: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("CAIRN_TOKEN"), "{err}");
    add_workload(&app, &[("CAIRN_DATABASE_URL", db.url())], &token);
    let id = queue(&a.url, &token, "hello-c");

    // The worker's way to the database is down when it starts, up 3 s later.
    let url = late.url(db.name());
    let mut command = app.cairn(&["worker", "--database-wait", "60"]);
    command
        .env("CAIRN_DATABASE_URL", &url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    late.open();
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let r = run(&a.url, &token, id);
        if r["finished_at"].is_string() {
            break r;
        }
        assert!(Instant::now() < deadline, "the queued run was not run: {r}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("worker:\n{err}{}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("trying again in"), "{err}");
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(a.stop(Duration::from_secs(20)), Some(0));
}

/// Waits until a worker in `workers` says it started run `id`; its index.
fn wait_taken(workers: &mut [Up], id: i64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(i) = taken_by(workers, id) {
            return i;
        }
        assert!(Instant::now() < deadline, "no worker took run {id}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until run `id` is no longer queued or running.
fn wait_ended(base: &str, token: &str, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = run(base, token, id);
        if r["status"] != "running" && r["status"] != "queued" {
            return r;
        }
        assert!(Instant::now() < deadline, "run {id} did not end: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The run a lost run was requeued as, read from its reason.
fn requeued_as(lost: &Value) -> i64 {
    let reason = lost["reason"].as_str().unwrap();
    let (_, copy) = reason
        .rsplit_once("requeued once as run ")
        .unwrap_or_else(|| panic!("not requeued: {lost}"));
    copy.parse().unwrap()
}

/// With org.toml `[runs] requeue_interrupted = true`, the run of a worker
/// killed by `kill -9` in the middle of it is requeued once: it ends
/// interrupted saying so, and its copy is run by another worker, once, to
/// success. A copy whose worker is killed too ends interrupted: no second
/// requeue.
#[test]
fn a_killed_workers_run_is_requeued_once_by_policy_and_run_by_another_worker() {
    let pg = PgServer::start();
    let db = pg.database();
    let url = db.url().to_owned();
    let slow = slow_workload("echo slow started; sleep 8");
    let platform = tempfile::tempdir().unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        "[runs]\nrequeue_interrupted = true\n",
    )
    .unwrap();
    let platform = platform.path().to_str().unwrap().to_owned();
    // Every process of the installation reads the same org.toml.
    let env = [
        ("CAIRN_DATABASE_URL", url.as_str()),
        ("CAIRN_PLATFORM_DIR", platform.as_str()),
    ];
    let mut a = Up::process(
        &slow.data,
        &["serve", "--listen", "127.0.0.1:0", "--grace", "5"],
        &env,
        "cairn serve: serving on ",
    );
    let token = a.admin_token();
    add_workload(&slow, &env, &token);
    let mut workers: Vec<Up> = (0..4)
        .map(|_| {
            Up::process(
                &slow.data,
                &["worker", "--grace", "5"],
                &env,
                "worker(s) waiting for queued runs",
            )
        })
        .collect();

    // First loss: requeued, and the copy is run by another worker to success.
    let first = queue(&a.url, &token, "slow");
    let victim = wait_taken(&mut workers, first);
    std::thread::sleep(Duration::from_secs(2));
    workers[victim].kill9();
    let killed = Instant::now();
    println!("kill -9 worker {victim} in the middle of run {first}");
    let lost = wait_ended(&a.url, &token, first);
    println!(
        "run {first} after {:.1} s: {} — {}",
        killed.elapsed().as_secs_f64(),
        lost["status"],
        lost["reason"]
    );
    assert_eq!(lost["status"], "interrupted", "{lost}");
    assert!(
        lost["reason"]
            .as_str()
            .unwrap()
            .contains("stopped renewing the run's lease"),
        "{lost}"
    );
    let copy = requeued_as(&lost);
    let done = wait_ended(&a.url, &token, copy);
    let runner = taken_by(&mut workers, copy).unwrap();
    println!(
        "run {copy} (the requeue of {first}): {} by worker {runner}",
        done["status"]
    );
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_ne!(runner, victim);
    assert_eq!(done["commit"], lost["commit"]);
    // Each run started once, in one worker; the lost run was not run again.
    for id in [first, copy] {
        let needle = format!("run {id} of slow started");
        let starts: usize = workers
            .iter_mut()
            .map(|w| w.drain().iter().filter(|l| l.contains(&needle)).count())
            .sum();
        assert_eq!(starts, 1, "run {id} started {starts} times");
    }
    let said = format!("marked interrupted and requeued once as run {copy}");
    assert!(
        a.drain().iter().any(|l| l.contains(&said))
            || workers
                .iter_mut()
                .any(|w| w.drain().iter().any(|l| l.contains(&said))),
        "nobody said it requeued run {first}"
    );

    // Second loss: the copy's worker is killed too; the copy ends interrupted
    // and nothing is queued again.
    let second = queue(&a.url, &token, "slow");
    let v1 = wait_taken(&mut workers, second);
    std::thread::sleep(Duration::from_secs(2));
    workers[v1].kill9();
    let lost = wait_ended(&a.url, &token, second);
    let copy = requeued_as(&lost);
    let v2 = wait_taken(&mut workers, copy);
    std::thread::sleep(Duration::from_secs(2));
    workers[v2].kill9();
    println!("kill -9 worker {v1} (run {second}), then worker {v2} (its requeue, run {copy})");
    let lost_again = wait_ended(&a.url, &token, copy);
    println!(
        "run {copy}: {} — {}",
        lost_again["status"], lost_again["reason"]
    );
    assert_eq!(lost_again["status"], "interrupted", "{lost_again}");
    assert!(
        !lost_again["reason"].as_str().unwrap().contains("requeued"),
        "{lost_again}"
    );
    // Nothing was queued after it: the next run created gets the next id.
    std::thread::sleep(Duration::from_secs(3));
    let next = queue(&a.url, &token, "slow");
    assert_eq!(next, copy + 1, "a run was queued after the second loss");
    assert_eq!(a.stop(Duration::from_secs(20)), Some(0));
}

/// The database going away in the middle of a run (issue 16, bad input): a
/// real PostgreSQL of the test's own is stopped (`pg_ctl stop -m fast`) while
/// a worker executes a run and while `cairn serve` answers, then started
/// again. Meanwhile `cairn serve` answers 503 with a reason (never a 500, never
/// the database's address or the driver's text); the worker waits for the
/// database with backoff, saying so, and finishes the run; the run queued
/// before the outage is run too: nothing acknowledged is lost.
#[test]
fn the_database_stopped_mid_run_is_waited_for_and_nothing_acknowledged_is_lost() {
    let pg = cairn_testkit::pg::PrivatePg::start();
    let url = pg.url();
    let slow = slow_workload("echo before; sleep 8; echo after");
    let mut a = serve(&slow.data, &url);
    let token = a.admin_token();
    add_workload(&slow, &[("CAIRN_DATABASE_URL", &url)], &token);
    let mut workers = [worker(&slow.data, &url)];
    let first = queue(&a.url, &token, "slow");
    let second = queue(&a.url, &token, "slow");
    wait_taken(&mut workers, first);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(run(&a.url, &token, first)["status"], "running");

    pg.stop();
    let stopped = Instant::now();
    println!("PostgreSQL stopped in the middle of run {first} (run {second} queued)");
    let r = agent()
        .get(format!("{}/api/runs/{first}", a.url))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = r.status();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = r.into_body().read_to_string().unwrap();
    println!("cairn serve while the database is down: {status} (Retry-After {retry:?}) {body}");
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("5"));
    assert!(body.contains("the database cannot be reached"), "{body}");
    for secret in [url.as_str(), "cairn-pg-own", "postgres", "socket", "FATAL"] {
        assert!(!body.contains(secret), "`{secret}` in {body}");
    }
    std::thread::sleep(Duration::from_secs(4));
    pg.start_again();
    println!(
        "PostgreSQL started again {:.1} s after the stop",
        stopped.elapsed().as_secs_f64()
    );

    for id in [first, second] {
        let done = wait_ended(&a.url, &token, id);
        println!("run {id}: {} {}", done["status"], done["reason"]);
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    let said: Vec<String> = workers[0]
        .drain()
        .iter()
        .filter(|l| l.contains("the database went away"))
        .cloned()
        .collect();
    println!("the worker said: {:?}", said.first());
    assert!(
        said.iter().any(|l| l.contains("trying again in")),
        "{:?}",
        workers[0].seen
    );
    assert!(
        said.iter()
            .all(|l| !l.contains("FATAL") || !l.contains(&url))
    );
    // Both lines of the first run's test stage were kept.
    let logs = slow
        .cairn(&["logs", &first.to_string()])
        .env("CAIRN_DATABASE_URL", &url)
        .env("CAIRN_TOKEN", &token)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        text.contains("before") && text.contains("after"),
        "{text}{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    assert_eq!(a.stop(Duration::from_secs(20)), Some(0));
    assert_eq!(workers[0].stop(Duration::from_secs(20)), Some(0));
}

/// A database written by a newer cairn (its schema version ahead of this
/// binary's): `cairn serve` and `cairn worker` refuse it, both versions named,
/// and leave it as it was.
#[test]
fn a_schema_newer_than_this_cairn_is_refused_with_both_versions_named() {
    let pg = PgServer::start();
    let db = pg.database();
    let app = Fixture::example("hello-c");
    // This cairn creates the schema, then "a newer cairn" moves it on.
    let out = app
        .cairn(&["runs", "--database", db.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let known = cairn_store::SCHEMA_VERSION;
    let newer = known + 7;
    let psql = |sql: &str| {
        let out = std::process::Command::new("psql")
            .args([db.url(), "-qtAc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    psql(&format!("UPDATE cairn_schema SET version = {newer}"));
    for command in [
        vec!["serve", "--listen", "127.0.0.1:0"],
        vec!["worker"],
        vec!["runs"],
    ] {
        let out = app
            .cairn(&command)
            .env("CAIRN_DATABASE_URL", db.url())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        println!("cairn {}: {err}", command[0]);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "schema version {newer}, newer than the {known} this cairn knows"
            )),
            "{err}"
        );
    }
    assert_eq!(psql("SELECT version FROM cairn_schema"), newer.to_string());
}

/// `cairn up` stays the all-in-one on SQLite: pointed at PostgreSQL it says
/// which commands to run instead.
#[test]
fn up_refuses_postgresql_and_names_serve_and_worker() {
    let app = Fixture::new();
    let out = app
        .cairn(&["up", "--database", "postgres://cairn@127.0.0.1:1/cairn"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`cairn serve --listen ADDR` and `cairn worker`"),
        "{err}"
    );
}

/// The audit log has one appender at a time across every process sharing the
/// database: while another session holds the log's PostgreSQL lock, a run's
/// certification (an append) waits for it, and goes on once it is released.
#[test]
fn appends_to_the_audit_log_wait_for_the_shared_databases_log_lock() {
    use std::io::Write;
    let pg = PgServer::start();
    let db = pg.database();
    let app = Fixture::example("hello-c");
    // Another "host": a session holding the log lock (0x6361_6972_6e00_0002).
    let mut holder = std::process::Command::new("psql")
        .args([db.url(), "-qtA"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    writeln!(
        stdin,
        "SELECT pg_advisory_lock({}); SELECT 'held';",
        0x6361_6972_6e00_0002_i64
    )
    .unwrap();
    let mut out = BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "held" {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "psql ended");
    }
    let started = Instant::now();
    let run = app
        .cairn(&["run"])
        .env("CAIRN_DATABASE_URL", db.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let hold = Duration::from_secs(4);
    std::thread::sleep(hold);
    drop(stdin); // psql ends, its session and lock with it
    let _ = holder.wait();
    let out = run.wait_with_output().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "cairn run with the log lock held for {hold:?} by another session: exit {:?} after {took:.1?}",
        out.status.code()
    );
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took >= hold, "the run did not wait for the lock: {took:?}");
    // Alone, the same run takes well under the time it waited.
    let alone = Instant::now();
    let again = app
        .cairn(&["run"])
        .env("CAIRN_DATABASE_URL", db.url())
        .output()
        .unwrap();
    assert!(again.status.success());
    println!(
        "the same run without the lock held: {:.1?}",
        alone.elapsed()
    );
    assert!(alone.elapsed() < took);
}

/// `cairn bench workers` works end to end on a real PostgreSQL (its numbers
/// are for the bench to report, not for a test to judge). `CAIRN_BENCH_RUNS`
/// sets the batch (default 8).
#[test]
fn the_workers_bench_runs_a_batch_with_one_two_and_three_workers() {
    let pg = PgServer::start();
    let db = pg.database();
    let app = Fixture::new();
    let runs = std::env::var("CAIRN_BENCH_RUNS").unwrap_or_else(|_| "8".to_owned());
    let out = app
        .cairn(&["bench", "workers", "--runs", &runs, "--database", db.url()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in 1..=3 {
        assert!(
            stdout.contains(&format!("{n} worker(s): {runs} runs in ")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("scaling (runs/minute relative to 1 worker): 1: 1.00×"),
        "{stdout}"
    );
}

/// `cairn bench serve --replicas`: reads spread over two `cairn serve`
/// replicas on a real PostgreSQL, from wrk (separate processes), beside `cairn
/// up` on SQLite in the same run. A benchmark, not a timed test: this checks it
/// runs and reports both, without errors (CAIRN_BENCH_CLIENTS and
/// CAIRN_BENCH_SECONDS give the full load: 200 connections, 10 s).
#[test]
fn the_replica_reads_bench_runs_two_serve_replicas_beside_cairn_up() {
    let pg = PgServer::start();
    let db = pg.database();
    let app = Fixture::new();
    let clients = std::env::var("CAIRN_BENCH_CLIENTS").unwrap_or_else(|_| "20".to_owned());
    let seconds = std::env::var("CAIRN_BENCH_SECONDS").unwrap_or_else(|_| "2".to_owned());
    let out = app
        .cairn(&[
            "bench",
            "serve",
            "--replicas",
            "--clients",
            &clients,
            "--seconds",
            &seconds,
            "--database",
            db.url(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "cairn up (SQLite)",
        "2 × cairn serve (PostgreSQL)",
        "replica 0:",
        "replica 1:",
    ] {
        assert!(stdout.contains(line), "{stdout}");
    }
    assert!(stdout.contains("   0 errors"), "{stdout}");
    // Without a PostgreSQL database it is refused, saying what it needs.
    let out = app
        .cairn(&["bench", "serve", "--replicas"])
        .env_remove("CAIRN_DATABASE_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs --database postgres://"), "{err}");
}

/// A database URL cairn cannot use is refused naming its scheme only, never
/// the rest (it may hold a password), from the flag and from the environment.
#[test]
fn a_database_url_cairn_cannot_use_is_refused_without_repeating_it() {
    let app = Fixture::new();
    for (how, url) in [
        ("flag", "mysql://root:hunter2@127.0.0.1/cairn"),
        ("env", "hunter2@127.0.0.1/cairn"),
        ("env", "root:hunter2@db://cairn"),
    ] {
        let mut command = if how == "flag" {
            app.cairn(&["runs", "--database", url])
        } else {
            app.cairn(&["runs"])
        };
        if how == "env" {
            command.env("CAIRN_DATABASE_URL", url);
        }
        let out = command.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        println!("{how} {url:?}: {err}");
        assert_ne!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("is not one cairn knows"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
