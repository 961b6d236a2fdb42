//! Crash-safe deployments, by fault injection with the real binary, real
//! bubblewrap and the example web app: promotions and rollbacks run as child
//! `cairn` processes and are SIGKILLed at a seeded random point of their run.
//! After each kill the next command reconciles, and `cairn status`, `cairn
//! audit`, the log and what really answers on the port (each version of the app
//! greets with its own letter) must agree; the next promotion must succeed and
//! serve its own version. The same for the `gitops` target, against a real git
//! repository. Each test prints, per window the kill landed in, the kills and
//! the inconsistencies found (goal 0) and asserts there were none.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fixture, Run};
use serde_json::Value;

const KILLS: usize = 30;

/// A tiny deterministic PRNG (xorshift64*), so every run kills at the same points.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How long an uninterrupted promotion takes: the fastest of four after a first
/// one (which also creates keys and records the policies), each to the other
/// version. The machine is shared, so most runs take longer: the kill points
/// then still fall inside them.
fn calibrate(app: &App, platform: Option<&Path>, digests: [&String; 2]) -> Duration {
    json(
        app,
        platform,
        &["promote", "hello-web", digests[0], "--to", "staging"],
    );
    (0..4)
        .map(|i| {
            let started = Instant::now();
            json(
                app,
                platform,
                &[
                    "promote",
                    "hello-web",
                    digests[(i + 1) % 2],
                    "--to",
                    "staging",
                ],
            );
            started.elapsed()
        })
        .min()
        .unwrap()
}

/// A kill point in a promotion that takes `span_ms` ([`calibrate`]): most of a run is the
/// process start and the gate, so a quarter of the kills fall anywhere and the
/// rest from 40% on, where the log append, the deploy and the records are.
fn kill_at(rng: &mut XorShift, span_ms: u64) -> u64 {
    if rng.below(4) == 0 {
        rng.below(span_ms)
    } else {
        span_ms * 2 / 5 + rng.below(span_ms * 7 / 10)
    }
}

struct App {
    f: Fixture,
    admin: String,
    /// (digest, greeting) of the two versions.
    versions: [(String, String); 2],
}

/// The example web app in two versions that greet differently, both built.
fn app() -> App {
    let f = Fixture::example("hello-web");
    f.ok(&["base", "create", "tiny", "--name", "tiny"]);
    let r = f.ok(&["--json", "identity", "add", "admin@example.org"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let admin = v["token"].as_str().unwrap().to_owned();
    let r = Run::from(
        f.cairn(&[
            "role",
            "grant",
            "admin@example.org",
            "release-manager",
            "--workload",
            "hello-web",
        ])
        .env("CAIRN_TOKEN", &admin)
        .output()
        .unwrap(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let mut versions = Vec::new();
    for letter in ["A", "B"] {
        let greeting = format!("hello from cairn {letter}\n");
        for file in ["routes.c", "test_routes.c", "acceptance-test.sh"] {
            let text = std::fs::read_to_string(f.repo.join(file)).unwrap();
            let mut text = text.replace("hello from cairn A\\n", "hello from cairn\\n");
            text = text.replace(
                "hello from cairn\\n",
                &format!("hello from cairn {letter}\\n"),
            );
            f.write(file, &text);
        }
        f.commit(&format!("version {letter}"));
        f.ok_as(&admin, &["run"]);
        let digest = f.json(&["image", "list"])[0]["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        versions.push((digest, greeting));
    }
    assert_ne!(versions[0].0, versions[1].0);
    App {
        f,
        admin,
        versions: [versions[0].clone(), versions[1].clone()],
    }
}

fn cairn(app: &App, platform: Option<&Path>, args: &[&str]) -> Command {
    let mut cmd = app.f.cairn(args);
    cmd.env("CAIRN_TOKEN", &app.admin);
    if let Some(p) = platform {
        cmd.env("CAIRN_PLATFORM_DIR", p);
    }
    cmd
}

fn json(app: &App, platform: Option<&Path>, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let r = Run::from(cairn(app, platform, &all).output().unwrap());
    assert_eq!(r.code, 0, "cairn {all:?}: {r:?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

/// `GET /` on loopback `port`: the body, or `None` when nothing answers.
fn greeting(port: u16) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

/// The log's deploy, rollback and override entries from `from` on: (index, digest).
fn deploy_entries(app: &App, from: u64) -> Vec<(u64, String)> {
    let size = json(app, None, &["log", "show"])["size"].as_u64().unwrap();
    let mut found = Vec::new();
    for index in from..size {
        let e = json(app, None, &["log", "show", &index.to_string()]);
        let Some(text) = e["entry_text"].as_str() else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        if matches!(v["kind"].as_str(), Some("deploy" | "rollback" | "override")) {
            let digest = v["spec"]["artifact"]
                .as_str()
                .or(v["spec"]["toArtifact"].as_str())
                .unwrap()
                .to_owned();
            found.push((index, digest));
        }
    }
    found
}

fn log_size(app: &App) -> u64 {
    json(app, None, &["log", "show"])["size"].as_u64().unwrap()
}

/// Runs `args` as a child and SIGKILLs it after `delay` unless it ended first.
/// Returns whether it was killed.
fn run_and_kill(mut cmd: Command, delay: Duration) -> bool {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + delay;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if Instant::now() >= until {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Which window a kill landed in, from what the next command recorded about
/// the promotion's log entry (or its absence).
fn window(killed: bool, entry: Option<u64>, audit: &Value) -> &'static str {
    if !killed {
        return "completed before the kill";
    }
    let Some(index) = entry else {
        return "before the log append";
    };
    let records: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["log_index"].as_u64() == Some(index))
        .collect();
    let reconciled: Vec<(&str, &str)> = records
        .iter()
        .filter(|c| c["kind"] == "reconciled")
        .map(|c| {
            (
                c["record"]["stage"].as_str().unwrap_or_default(),
                c["record"]["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let stage = |s: &str| reconciled.iter().find(|(stage, _)| *stage == s);
    if stage("before-record").is_some() {
        "between the log append and the deploy record"
    } else if let Some((_, status)) = stage("deploying") {
        if *status == "deployed" {
            "during the deploy: running/committed, adopted"
        } else {
            "during the deploy: not running/committed, failed"
        }
    } else if stage("after-outcome").is_some() {
        "after the outcome, before the change record"
    } else {
        "after the change record"
    }
}

#[derive(Default)]
struct Tally(BTreeMap<&'static str, (usize, usize)>);

impl Tally {
    fn add(&mut self, window: &'static str, problems: &[String]) {
        let e = self.0.entry(window).or_default();
        e.0 += 1;
        e.1 += problems.len();
    }

    fn print_and_assert(&self, target: &str, all: &[String]) {
        println!("{target}: kills and inconsistencies per window");
        for (window, (kills, bad)) in &self.0 {
            println!("  {window:<55} kills {kills:>3}  inconsistencies {bad}");
        }
        let kills: usize = self.0.values().map(|v| v.0).sum();
        println!("  total: {kills} runs, {} inconsistencies", all.len());
        assert!(
            all.is_empty(),
            "{target}: inconsistencies:\n{}",
            all.join("\n")
        );
    }
}

/// The audit's records, newest first (also reconciles nothing: `audit` reads).
fn audit(app: &App) -> Value {
    json(app, None, &["audit", "--limit", "100000"])
}

/// Every deploy entry from `from` on is explained by a change record.
fn unexplained(app: &App, from: u64, audit: &Value) -> Vec<String> {
    deploy_entries(app, from)
        .into_iter()
        .filter(|(index, _)| {
            !audit
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["log_index"].as_u64() == Some(*index))
        })
        .map(|(index, digest)| {
            format!("log entry {index} ({digest}) has no change record in `cairn audit`")
        })
        .collect()
}

/// After a (possibly killed) promotion whose log started at `from`: the next
/// command reconciles, then `cairn status`, `cairn audit`, the log and what
/// answers on the port must agree. Returns the window and the disagreements.
fn check_local(app: &App, from: u64, killed: bool) -> (&'static str, Vec<String>) {
    let greeting_of = |digest: &str| {
        app.versions
            .iter()
            .find(|(d, _)| d == digest)
            .map(|(_, g)| g.clone())
            .unwrap_or_default()
    };
    let status = json(app, None, &["status"]);
    let audit = audit(app);
    let entries = deploy_entries(app, from);
    let window = window(killed, entries.first().map(|e| e.0), &audit);
    let mut problems = unexplained(app, from, &audit);
    let row = status
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["environment"] == "staging")
        .cloned()
        .unwrap();
    let port: u16 = row["detail"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://127.0.0.1:")
        .parse()
        .unwrap();
    let answer = greeting(port);
    let shown = row["digest"].as_str().unwrap();
    if row["last_attempt"]["status"] == "deploying" {
        problems.push(format!(
            "an intent has no outcome after reconciliation: {row}"
        ));
    }
    if row["reconciled_at"].is_null() {
        problems.push(format!("status does not say when it reconciled: {row}"));
    }
    match (row["running"].as_bool().unwrap(), &answer) {
        (true, Some(body)) if *body == greeting_of(shown) => {}
        (false, None) => {}
        (running, body) => problems.push(format!(
            "status says {shown} (running: {running}) but port {port} answers {body:?}"
        )),
    }
    // The log entry status names is a deploy entry of that digest.
    let log_index = row["log_index"].as_u64().unwrap();
    let e = json(app, None, &["log", "show", &log_index.to_string()]);
    let entry: Value = serde_json::from_str(e["entry_text"].as_str().unwrap()).unwrap();
    let logged = entry["spec"]["artifact"]
        .as_str()
        .or(entry["spec"]["toArtifact"].as_str());
    if logged != Some(shown) {
        problems.push(format!(
            "status names log entry {log_index}, which is {entry}"
        ));
    }
    (window, problems)
}

#[test]
fn local_deployments_survive_sigkill_at_any_point_and_status_tells_the_truth() {
    let app = app();
    let [(a, _), (b, _)] = &app.versions;
    // Calibration: two promotions that are not killed, timed.
    let span = calibrate(&app, None, [a, b]);
    let span_ms = u64::try_from(span.as_millis()).unwrap();
    println!("a promotion takes {} ms", span.as_millis());

    let mut rng = XorShift(0x5eed_0c0f_fee0_0001);
    let mut tally = Tally::default();
    let mut all = Vec::new();
    let mut next = 0usize;
    for round in 0..KILLS {
        let (digest, _) = &app.versions[next];
        next = 1 - next;
        let from = log_size(&app);
        let args: Vec<&str> = if rng.below(2) == 0 {
            vec!["promote", "hello-web", digest, "--to", "staging"]
        } else {
            vec!["rollback", "hello-web", "--env", "staging", "--to", digest]
        };
        let delay = Duration::from_millis(kill_at(&mut rng, span_ms));
        let killed = run_and_kill(cairn(&app, None, &args), delay);

        // The next command reconciles; then everything must agree.
        let (window, problems) = check_local(&app, from, killed);
        for p in &problems {
            println!("round {round} ({window}, {}ms): {p}", delay.as_millis());
        }
        tally.add(window, &problems);
        all.extend(problems.into_iter().map(|p| format!("round {round}: {p}")));
    }

    // The narrowest window, between the log append and the deployment record
    // (one SQLite insert), is rarely hit by a random kill: a store that refuses
    // the insert (a trigger, as a failing disk would) leaves the same durable
    // state — the entry in the log, no record — and the promotion fails.
    let (digest, _) = &app.versions[next];
    next = 1 - next;
    let from = log_size(&app);
    app.f.tamper(
        "CREATE TRIGGER fault BEFORE INSERT ON deployments BEGIN SELECT RAISE(ABORT, 'injected store fault'); END",
        &[],
    );
    let r = Run::from(
        cairn(
            &app,
            None,
            &["promote", "hello-web", digest, "--to", "staging"],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("injected store fault"), "{r:?}");
    app.f.tamper("DROP TRIGGER fault", &[]);
    let (window, problems) = check_local(&app, from, true);
    for p in &problems {
        println!("store fault ({window}): {p}");
    }
    assert_eq!(window, "between the log append and the deploy record");
    tally.add(window, &problems);
    all.extend(problems.into_iter().map(|p| format!("store fault: {p}")));

    // The next promotion succeeds and serves its own version.
    let (digest, want) = &app.versions[next];
    let r = Run::from(
        cairn(
            &app,
            None,
            &["--json", "promote", "hello-web", digest, "--to", "staging"],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    let port: u16 = out["deployment"]["detail"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://127.0.0.1:")
        .parse()
        .unwrap();
    assert_eq!(greeting(port).as_deref(), Some(want.as_str()));
    let status = json(&app, None, &["status"]);
    assert_eq!(status[0]["digest"], digest.as_str(), "{status}");
    assert_eq!(status[0]["running"], true, "{status}");
    tally.print_and_assert("local", &all);
}

#[test]
fn a_stray_process_on_the_port_fails_the_deploy_by_name_and_an_unknown_sandbox_is_left_alone() {
    let app = app();
    let (a, b) = (&app.versions[0], &app.versions[1]);
    let out = json(
        &app,
        None,
        &["promote", "hello-web", &a.0, "--to", "staging"],
    );
    let port: u16 = out["deployment"]["detail"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://127.0.0.1:")
        .parse()
        .unwrap();
    // Something cairn did not start takes the port while A is stopped: the
    // test's own listener, started between the stop of A and the start of B is
    // racy, so A is stopped by hand through its record and the port taken.
    let data = cairn_engine::DataDir::at(&app.f.data);
    assert!(cairn_engine::deploy::local::undeploy(&data, "hello-web", "staging").unwrap());
    let stray = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let r = Run::from(
        cairn(
            &app,
            None,
            &["promote", "hello-web", &b.0, "--to", "staging"],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    let me = std::process::id();
    assert!(
        r.stderr.contains(&format!(
            "port {port} is held by a process cairn did not start for this deployment (pid {me})"
        )),
        "{r:?}"
    );
    assert!(
        !r.stderr.contains("runs again"),
        "nothing was restarted: {r:?}"
    );
    let status = json(&app, None, &["status"]);
    assert_eq!(status[0]["digest"], a.0.as_str(), "{status}");
    assert_eq!(status[0]["running"], false, "A was stopped: {status}");
    assert_eq!(status[0]["last_attempt"]["status"], "failed", "{status}");
    drop(stray);
    // With the port free again, B deploys and serves.
    let out = json(
        &app,
        None,
        &["promote", "hello-web", &b.0, "--to", "staging"],
    );
    assert_eq!(out["deployment"]["digest"], b.0.as_str());
    assert_eq!(greeting(port).as_deref(), Some(b.1.as_str()));

    // A sandbox reconciliation cannot identify (another data directory's, here)
    // is reported and left running, never killed, by this one's status and
    // promotions.
    let other = tempfile::tempdir().unwrap();
    let in_other = |args: &[&str]| {
        let r = Run::from(
            app.f
                .cairn(args)
                .env("CAIRN_HOME", other.path())
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        r
    };
    in_other(&["base", "create", "tiny", "--name", "tiny"]);
    in_other(&["run"]);
    let theirs: Value =
        serde_json::from_str(&in_other(&["--json", "image", "list"]).stdout).unwrap();
    let theirs = theirs[0]["digest"].as_str().unwrap().to_owned();
    let r = in_other(&["--json", "identity", "add", "other@example.org"]);
    let token = serde_json::from_str::<Value>(&r.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let as_other = |args: &[&str]| {
        let r = Run::from(
            app.f
                .cairn(args)
                .env("CAIRN_HOME", other.path())
                .env("CAIRN_TOKEN", &token)
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        r
    };
    as_other(&[
        "role",
        "grant",
        "other@example.org",
        "release-manager",
        "--workload",
        "hello-web",
    ]);
    let out: Value = serde_json::from_str(
        &as_other(&["--json", "promote", "hello-web", &theirs, "--to", "staging"]).stdout,
    )
    .unwrap();
    let their_port: u16 = out["deployment"]["detail"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://127.0.0.1:")
        .parse()
        .unwrap();
    let r = Run::from(cairn(&app, None, &["status"]).output().unwrap());
    assert!(r.stderr.contains("left alone"), "{r:?}");
    assert!(r.stdout.contains("reconciled with what runs at"), "{r:?}");
    json(
        &app,
        None,
        &["promote", "hello-web", &a.0, "--to", "staging"],
    );
    assert_eq!(greeting(port).as_deref(), Some(a.1.as_str()));
    assert_eq!(
        greeting(their_port).as_deref(),
        Some("hello from cairn B\n"),
        "the other data directory's deployment still runs"
    );
    let other_data = cairn_engine::DataDir::at(other.path());
    assert!(cairn_engine::deploy::local::undeploy(&other_data, "hello-web", "staging").unwrap());
}

#[test]
fn gitops_deployments_survive_sigkill_between_the_log_entry_and_the_commit() {
    let app = app();
    let (_gitops, repo, platform) = common::gitops_staging("");
    let p = Some(platform.path());
    let git_out = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let span = calibrate(&app, p, [&app.versions[0].0, &app.versions[1].0]);
    let span_ms = u64::try_from(span.as_millis()).unwrap();
    println!("a gitops promotion takes {} ms", span.as_millis());

    let mut rng = XorShift(0x5eed_0917_0b5e_0002);
    let mut tally = Tally::default();
    let mut all = Vec::new();
    let mut next = 0usize;
    for round in 0..KILLS {
        let (digest, _) = &app.versions[next];
        next = 1 - next;
        let from = log_size(&app);
        let args: Vec<&str> = if rng.below(2) == 0 {
            vec!["promote", "hello-web", digest, "--to", "staging"]
        } else {
            vec!["rollback", "hello-web", "--env", "staging", "--to", digest]
        };
        let delay = Duration::from_millis(kill_at(&mut rng, span_ms));
        let killed = run_and_kill(cairn(&app, p, &args), delay);

        let status = json(&app, p, &["status"]);
        let audit = audit(&app);
        let entries = deploy_entries(&app, from);
        let window = window(killed, entries.first().map(|e| e.0), &audit);
        let mut problems = unexplained(&app, from, &audit);
        let row = &status[0];
        if row["last_attempt"]["status"] == "deploying" {
            problems.push(format!(
                "an intent has no outcome after reconciliation: {row}"
            ));
        }
        // The repository's head commit of the directory names the recorded
        // deployment's log entry, and pins its digest.
        // (The repository holds this one environment: its head commit is the
        // newest change; a redeploy of the same digest changes no file.)
        let message = git_out(&["log", "-1", "--format=%B", "HEAD"]);
        // The work tree is the head's: the next deploy would refuse a dirty one.
        let dirty = git_out(&["status", "--porcelain"]);
        if !dirty.is_empty() {
            problems.push(format!(
                "the repository's work tree is not its head: {dirty}"
            ));
        }
        let trailer = message
            .lines()
            .find_map(|l| l.strip_prefix("Cairn-Log-Index: "))
            .and_then(|i| i.parse::<u64>().ok());
        let pinned = git_out(&["show", "HEAD:envs/staging/hello-web/kustomization.yaml"]);
        let shown = row["digest"].as_str().unwrap();
        if trailer != row["log_index"].as_u64() {
            problems.push(format!(
                "status names log entry {} but the repository's head commit names {trailer:?}",
                row["log_index"]
            ));
        }
        if !pinned.contains(shown) {
            problems.push(format!("status says {shown}; the repository pins {pinned}"));
        }
        for p in &problems {
            println!("round {round} ({window}, {}ms): {p}", delay.as_millis());
        }
        tally.add(window, &problems);
        all.extend(problems.into_iter().map(|p| format!("round {round}: {p}")));
    }
    let (digest, _) = &app.versions[next];
    let out = json(
        &app,
        p,
        &["promote", "hello-web", digest, "--to", "staging"],
    );
    assert_eq!(out["deployment"]["digest"], digest.as_str());
    let pinned = git_out(&["show", "HEAD:envs/staging/hello-web/kustomization.yaml"]);
    assert!(pinned.contains(digest.as_str()), "{pinned}");
    tally.print_and_assert("gitops", &all);
}
