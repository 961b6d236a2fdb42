//! End-to-end tests of the `cairn` binary: real git repositories, the real
//! bubblewrap sandbox, a real SQLite store in a temporary data directory.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fixture, Run};
use serde_json::Value;

const MINIMAL: &str =
    "[workload]\nname = \"app\"\n[build]\ncommand = \"true\"\n[test]\nunit = \"true\"\n";

fn workload(build: &str, unit: &str) -> String {
    format!("[workload]\nname = \"app\"\n[build]\ncommand = {build:?}\n[test]\nunit = {unit:?}\n")
}

#[test]
fn help_lists_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--help")
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{r:?}");
    for cmd in ["init", "run", "runs", "logs", "explain"] {
        assert!(
            r.stdout.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} missing: {r:?}"
        );
    }
    let bad = Run::from(
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("frobnicate")
            .output()
            .unwrap(),
    );
    assert_eq!(bad.code, 1, "{bad:?}");
}

#[test]
fn init_in_a_cargo_project_then_an_unknown_key_names_line_and_column() {
    let f = Fixture::new();
    f.write(
        "Cargo.toml",
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .write("src/main.rs", "fn main() {}\n")
    .commit("cargo new");
    let r = f.run(&["init"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("cargo"), "{r:?}");
    let text = std::fs::read_to_string(f.repo.join("cairn.toml")).unwrap();
    assert!(text.contains("cargo test --offline"), "{text}");
    assert!(text.contains("name = \"app\""), "{text}");

    let again = f.run(&["init"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.contains("already exists") && again.stderr.contains("--force"),
        "{again:?}"
    );
    assert_eq!(f.run(&["init", "--force", "--name", "demo"]).code, 0);
    let text = std::fs::read_to_string(f.repo.join("cairn.toml")).unwrap();
    assert!(text.contains("name = \"demo\""), "{text}");

    let appended = format!("{text}no_such_key_xyz = 1\n");
    let line = appended.lines().count();
    std::fs::write(f.repo.join("cairn.toml"), &appended).unwrap();
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "cairn.toml:{line}:1: unknown field `no_such_key_xyz`"
        )),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("expected one of `unit`, `acceptance`, `http`"),
        "{r:?}"
    );
    // Nothing was run: the store holds no run.
    assert_eq!(f.json(&["runs"]), serde_json::json!([]));
}

#[test]
fn init_outside_git_and_for_an_unknown_ecosystem() {
    let tmp = tempfile::tempdir().unwrap();
    let r = Run::from(
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("init")
            .current_dir(tmp.path())
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not inside a git repository"), "{r:?}");
    assert!(!tmp.path().join("cairn.toml").exists());

    let f = Fixture::new();
    f.write("README.md", "hi\n");
    let r = f.run(&["init"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("cannot tell which ecosystem"), "{r:?}");
}

#[test]
fn the_green_example_passes_every_stage() {
    let f = Fixture::example("hello-c");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("succeeded"), "{r:?}");
    let runs = f.json(&["runs"]);
    let run = &runs[0];
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["workload"], "hello-c");
    // The list's filters: a commit prefix, the trigger; bad ones refused with the rule.
    let commit = run["commit"].as_str().unwrap();
    let by_commit = f.json(&["runs", "--commit", &commit[..7], "--trigger", "cli"]);
    assert_eq!(by_commit.as_array().unwrap().len(), 1, "{by_commit}");
    assert_eq!(
        f.json(&["runs", "--trigger", "webhook"]),
        serde_json::json!([])
    );
    for (args, why) in [
        (["runs", "--commit", "xyz"], "hex digits"),
        (
            ["runs", "--trigger", "cron"],
            "one of: cli, api, webhook, push",
        ),
    ] {
        let r = f.run(&args);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains(why), "{r:?}");
    }
    let detail = f.json(&["explain", "last"]);
    let stages: Vec<(String, String)> = detail["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("source", "passed"),
        ("fetch", "skipped"),
        ("unit-tests", "passed"),
        ("build", "passed"),
        ("acceptance-tests", "passed"),
    ];
    assert_eq!(stages, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let logs = f.run(&["logs", "last", "unit-tests"]);
    assert!(logs.stdout.contains("ok: test_greets_by_name"), "{logs:?}");
    let logs = f.run(&["logs", "last"]);
    assert!(logs.stdout.contains("ok: acceptance_greets"), "{logs:?}");
    assert!(
        logs.stdout.contains("declared output `hello` is present"),
        "{logs:?}"
    );
}

#[test]
fn the_failing_example_is_explained_with_the_failing_test() {
    let f = Fixture::example("greeter-py");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("stage `unit-tests` failed: exit code 1"),
        "{r:?}"
    );
    let e = f.run(&["explain", "last"]);
    assert_eq!(e.code, 0, "{e:?}");
    assert!(e.stdout.contains("stage:     unit-tests"), "{e:?}");
    assert!(e.stdout.contains("exit code: 1"), "{e:?}");
    assert!(e.stdout.contains("test_capitalises_the_name"), "{e:?}");
    assert!(
        e.stdout.contains("python3 -m unittest discover -v"),
        "{e:?}"
    );
    let j = f.json(&["explain", "last"]);
    let culprit = &j["explanation"]["culprit"];
    assert_eq!(culprit["stage"], "unit-tests");
    assert_eq!(culprit["exit_code"], 1);
    let tests = culprit["failed_tests"].as_array().unwrap();
    assert!(
        tests
            .iter()
            .any(|t| t.as_str().unwrap().contains("test_capitalises_the_name")),
        "{j}"
    );
    // The stages after the failure never ran.
    let build = j["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "build")
        .unwrap();
    assert_eq!(build["status"], "skipped");
}

#[test]
fn kill_9_during_a_run_leaves_it_interrupted_on_the_next_start() {
    let f = Fixture::new();
    f.write("cairn.toml", &workload("true", "echo started; sleep 30"))
        .commit("slow test");
    let mut child = f
        .cairn(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = f.run(&["logs", "last", "unit-tests"]);
        if logs.stdout.contains("started") {
            break;
        }
        assert!(Instant::now() < deadline, "the run never started: {logs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let r = f.run(&["runs"]);
    assert!(r.stderr.contains("marked interrupted"), "{r:?}");
    let runs = f.json(&["runs"]);
    assert_eq!(runs[0]["status"], "interrupted", "{runs}");
    let e = f.json(&["explain", "last"]);
    assert_eq!(e["explanation"]["culprit"]["stage"], "unit-tests");
    assert_eq!(e["explanation"]["culprit"]["status"], "interrupted");
    // The stages before it ended at their boundaries, each one transaction
    // with its whole log: the source stage's last line is kept.
    let source = f.run(&["logs", "last", "source"]);
    assert!(source.stdout.contains("materialised"), "{source:?}");
    // The sandboxed `sleep` died with its parent.
    std::thread::sleep(Duration::from_millis(300));
    let ps = Command::new("pgrep")
        .args(["-f", "echo started; sleep 30"])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "sandboxed process survived: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
}

#[test]
fn bad_input_gives_clear_errors_and_exit_codes() {
    let f = Fixture::new();
    // No cairn.toml at all.
    f.write("README.md", "x\n").commit("empty");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no cairn.toml"), "{r:?}");

    // Written but not committed.
    f.write("cairn.toml", MINIMAL);
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("is not in commit"), "{r:?}");

    f.commit("config");
    for rev in ["deadbeef", "-x", "no-such-branch", "HEAD:x", "HEAD~99"] {
        let r = f.run(&["run", &format!("--commit={rev}")]);
        assert_eq!(r.code, 1, "{rev}: {r:?}");
        assert!(r.stderr.contains("unknown commit"), "{rev}: {r:?}");
    }
    // A missing file in the config.
    f.write("cairn.toml", "[workload]\nname = \"app\"\n");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("cairn.toml:1:1: missing field `build`"),
        "{r:?}"
    );
    // Binary junk as a config.
    std::fs::write(f.repo.join("cairn.toml"), b"\xff\xfe\x00junk").unwrap();
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    // Unknown runs and stages.
    for args in [
        &["explain", "999"][..],
        &["logs", "x"],
        &["explain", "last"],
    ] {
        let r = f.run(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
    }
    let r = f.run(&["runs", "--status", "sideways"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("succeeded"), "{r:?}");
}

#[test]
fn not_a_git_repo_for_run() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("cairn.toml"), MINIMAL).unwrap();
    let r = Run::from(
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("run")
            .current_dir(tmp.path())
            .env("CAIRN_HOME", tmp.path().join("data"))
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not inside a git repository"), "{r:?}");
}

#[test]
fn a_missing_command_is_exit_127_with_a_hint() {
    let f = Fixture::new();
    f.write("cairn.toml", &workload("true", "no-such-tool --run"))
        .commit("x");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("command not found"), "{r:?}");
    let e = f.run(&["explain", "last"]);
    assert!(e.stdout.contains("exit code: 127"), "{e:?}");
    assert!(
        e.stdout
            .contains("the program `no-such-tool` is not installed in the sandbox"),
        "{e:?}"
    );
}

#[test]
fn megabytes_and_binary_junk_are_stored_bounded_and_the_store_stays_sound() {
    let f = Fixture::new();
    let unit = "head -c 3000000 /dev/urandom; printf '\\n'; yes 'a line of output' | head -n 200000; printf 'end\\033]0;title\\007\\n'";
    f.write("cairn.toml", &workload("true", unit))
        .commit("noisy");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let logs = f.run(&["logs", "last", "unit-tests"]);
    assert_eq!(logs.code, 0);
    assert!(logs.stdout.contains("a line of output"));
    // Terminal escapes are shown escaped, never sent raw to the reader's terminal.
    assert!(
        logs.stdout.contains("end\\u{1b}]0;title\\u{7}"),
        "tail: {}",
        &logs.stdout[logs.stdout.len().saturating_sub(300)..]
    );
    assert!(!logs.stdout.contains('\u{1b}'));
    let runs = f.json(&["runs"]);
    assert_eq!(runs[0]["status"], "succeeded");
    // A step beyond the per-stage budget is cut, with a note, and still succeeds.
    f.write(
        "cairn.toml",
        &workload(
            "true",
            "yes 0123456789abcdef0123456789abcdef | head -c 40000000",
        ),
    )
    .commit("huge");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let logs = f.run(&["logs", "last", "unit-tests"]);
    assert!(
        logs.stdout.contains("output truncated"),
        "{}",
        &logs.stdout[logs.stdout.len().saturating_sub(500)..]
    );
    assert!(logs.stdout.len() < 20 << 20);
}

#[test]
fn the_run_uses_the_commit_not_the_dirty_work_tree() {
    let f = Fixture::new();
    f.write(
        "cairn.toml",
        &workload("true", "grep -q committed marker.txt"),
    )
    .write("marker.txt", "committed\n")
    .commit("marker");
    let first = f.commit("again");
    let _ = first;
    f.write("marker.txt", "dirty\n")
        .write("untracked.txt", "x\n");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    // An older commit by revision.
    f.write("marker.txt", "changed\n").commit("changed marker");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = f.run(&["run", "--commit", "HEAD~1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let runs = f.json(&["runs"]);
    assert_eq!(runs[0]["ref"], "HEAD~1");
}

#[test]
fn a_workload_in_a_subdirectory_of_a_monorepo() {
    let f = Fixture::new();
    f.write(
        "services/api/cairn.toml",
        &workload("test -f only-here.txt", "true"),
    )
    .write("services/api/only-here.txt", "x\n")
    .write("other/secret.txt", "not for api\n")
    .commit("monorepo");
    let r = Run::from(f.cairn(&["run", "--dir", "services/api"]).output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    let logs = f.run(&["logs", "last", "source"]);
    assert!(logs.stdout.contains("from services/api/"), "{logs:?}");
}

#[test]
fn json_output_of_run() {
    let f = Fixture::new();
    f.write("cairn.toml", MINIMAL).commit("x");
    let v = f.json(&["run"]);
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["stages"].as_array().unwrap().len(), 5);
    assert_eq!(v["commit"].as_str().unwrap().len(), 40);
}

#[test]
fn logs_follow_streams_a_run_another_process_is_running() {
    let f = Fixture::new();
    let unit = "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.3; done";
    f.write("cairn.toml", &workload("echo built", unit))
        .commit("ticking");
    let mut runner = f
        .cairn(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the run to exist, then follow it from the start.
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.json(&["runs"]).as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the run never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    let follow = f.run(&["logs", "last", "--follow"]);
    let finished = runner.wait().unwrap();
    assert!(finished.success());
    assert_eq!(follow.code, 0, "{follow:?}");
    // Every line of every stage, in order, and the end of the run.
    let ticks: Vec<&str> = follow
        .stdout
        .lines()
        .filter(|l| l.starts_with("tick-"))
        .collect();
    assert_eq!(
        ticks,
        ["tick-1", "tick-2", "tick-3", "tick-4", "tick-5", "tick-6"],
        "{follow:?}"
    );
    assert!(follow.stdout.contains("built"), "{follow:?}");
    assert!(follow.stdout.contains("── build passed"), "{follow:?}");
    let json = f.run(&["--json", "logs", "last", "unit-tests"]);
    let first: Value = serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["stream"], "cairn");
    assert_eq!(first["seq"], 0);
}

/// The green example's run is certified: a test result for the unit tests on the
/// source, provenance for the built `hello`, a test result for the acceptance tests
/// on `hello` — each a Sigstore bundle signed by cairn's key, about the digest the
/// engine observed.
#[test]
fn a_green_run_is_certified_by_signed_evidence() {
    let f = Fixture::example("hello-c");
    assert_eq!(f.run(&["run"]).code, 0);
    let public = f.signing_key();
    let log = f.log_verifier();
    let export = f.repo.join("../evidence");
    let list = f.json(&["evidence", "last", "--export", export.to_str().unwrap()]);
    let kinds: Vec<(&str, &str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["stage"].as_str().unwrap(),
                e["predicate_type"].as_str().unwrap(),
                e["subject"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    let source = kinds[0].2;
    assert!(source.starts_with("hello-c@"), "{kinds:?}");
    assert_eq!(
        kinds,
        [
            (
                "unit-tests",
                "https://in-toto.io/attestation/test-result/v0.1",
                source
            ),
            ("build", "https://slsa.dev/provenance/v1", "hello"),
            (
                "acceptance-tests",
                "https://in-toto.io/attestation/test-result/v0.1",
                "hello"
            ),
        ]
    );
    // The digest in the provenance is the one the build stage logged.
    let build_log = f.run(&["logs", "last", "build"]).stdout;
    let logged = build_log
        .lines()
        .find_map(|l| l.split("is present: ").nth(1))
        .unwrap()
        .to_owned();
    assert_eq!(list[1]["subject"]["digest"], logged.as_str());
    for entry in list.as_array().unwrap() {
        let bytes = std::fs::read(entry["file"].as_str().unwrap()).unwrap();
        let bundle = cairn_evidence::Bundle::from_json(&bytes).unwrap();
        let payload = bundle.verify_with_log(&public, &log).unwrap();
        let statement: Value = serde_json::from_slice(payload).unwrap();
        let digest = statement["subject"][0]["digest"]["sha256"]
            .as_str()
            .unwrap();
        assert_eq!(
            entry["subject"]["digest"],
            format!("sha256:{digest}").as_str()
        );
        if entry["stage"] == "build" {
            let p = &statement["predicate"];
            // The installation's own id (issue 15: one constant for every
            // installation before), derived from its log's key.
            let builder = p["runDetails"]["builder"]["id"].as_str().unwrap();
            let hex = builder.strip_prefix("urn:cairn:builder:").unwrap();
            assert!(
                hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                "{builder}"
            );
            assert_eq!(
                p["buildDefinition"]["buildType"],
                "urn:cairn:build-type:chain-stage:v1"
            );
            let deps = p["buildDefinition"]["resolvedDependencies"].to_string();
            let commit = f.json(&["runs"])[0]["commit"].as_str().unwrap().to_owned();
            assert!(deps.contains(&commit), "{deps}");
            let byproducts = p["runDetails"]["byproducts"].to_string();
            assert!(
                byproducts.contains("log/unit-tests") && byproducts.contains("log/build"),
                "{byproducts}"
            );
        } else {
            assert_eq!(statement["predicate"]["result"], "PASSED");
        }
        // One flipped byte in the signed payload is refused.
        let mut tampered = bytes.clone();
        let at = tampered
            .windows(9)
            .position(|w| w == b"\"payload\"")
            .unwrap()
            + 14;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let refused = cairn_evidence::Bundle::from_json(&tampered)
            .and_then(|b| b.verify_with_log(&public, &log).map(|_| ()));
        assert!(refused.is_err());
    }
}

#[test]
fn a_failing_test_stage_is_certified_as_failed_with_the_test_named() {
    let f = Fixture::example("greeter-py");
    assert_eq!(f.run(&["run"]).code, 1);
    let public = f.signing_key();
    let log = f.log_verifier();
    let export = f.repo.join("../evidence");
    let list = f.json(&["evidence", "last", "--export", export.to_str().unwrap()]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let bytes = std::fs::read(list[0]["file"].as_str().unwrap()).unwrap();
    let payload = cairn_evidence::Bundle::from_json(&bytes)
        .unwrap()
        .verify_with_log(&public, &log)
        .unwrap()
        .to_vec();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["predicate"]["result"], "FAILED");
    let failed = statement["predicate"]["failedTests"].to_string();
    assert!(failed.contains("test_capitalises_the_name"), "{failed}");
}

/// A step sees cairn's variables (the commit's time as SOURCE_DATE_EPOCH, the exact
/// commit, its own HOME, Go's offline settings) and nothing of the caller's environment.
#[test]
fn steps_see_cairns_environment_and_nothing_of_the_callers() {
    let f = Fixture::new();
    f.write("cairn.toml", &workload("true", "env | sort"))
        .commit("env");
    let out = f
        .cairn(&["run"])
        .env("CAIRN_TEST_SECRET", "hunter2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", Run::from(out));
    let env = f.run(&["logs", "last", "unit-tests"]).stdout;
    let commit = f.json(&["runs"])[0]["commit"].as_str().unwrap().to_owned();
    let time = Command::new("git")
        .args(["-C", f.repo.to_str().unwrap(), "log", "-1", "--format=%ct"])
        .output()
        .unwrap();
    let time = String::from_utf8_lossy(&time.stdout).trim().to_owned();
    for line in [
        format!("SOURCE_DATE_EPOCH={time}"),
        format!("CAIRN_COMMIT={commit}"),
        "HOME=/workspace/.home".to_owned(),
        "CAIRN_STAGE=unit-tests".to_owned(),
        "CI=true".to_owned(),
        // Go offline: the image's toolchain, no module lookups without a network.
        "GOTOOLCHAIN=local".to_owned(),
        "GOPROXY=off".to_owned(),
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "{line} missing from:\n{env}"
        );
    }
    for leak in ["CAIRN_TEST_SECRET", "CAIRN_HOME", "hunter2", "/root"] {
        assert!(!env.contains(leak), "{leak} leaked into:\n{env}");
    }
}

/// The host's first global IPv4 address, as `ip` shows it.
fn host_address() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let cidr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no global IPv4 address: {text}"));
    cidr.split('/').next().unwrap().to_owned()
}

/// Issue 12, item 11: a dependency fetch, run as a user runs it, reaches the outside
/// (here the host's own address) but neither the host's loopback services nor the
/// cloud metadata address.
#[test]
fn a_fetch_stage_reaches_out_but_not_host_loopback_or_metadata() {
    let private = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let private_port = private.local_addr().unwrap().port();
    let public = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let public_port = public.local_addr().unwrap().port();
    let host = host_address();
    let fetch = format!(
        "for t in 127.0.0.1/{private_port} 10.0.2.2/{private_port} {host}/{private_port} \
         169.254.169.254/80 {host}/{public_port}; do \
         if out=$(timeout 5 bash -c \"exec 3<>/dev/tcp/$t\" 2>&1); then echo \"$t CONNECTED\"; \
         else echo \"$t REFUSED (${{out##*: }})\"; fi; done"
    );
    let f = Fixture::new();
    f.write(
        "cairn.toml",
        &format!(
            "[workload]\nname = \"app\"\n[build]\nfetch = {fetch:?}\ncommand = \"true\"\n\
             [test]\nunit = \"true\"\n"
        ),
    )
    .commit("probe the network from the fetch stage");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let logs = f.run(&["logs", "last", "fetch"]);
    println!("{}", logs.stdout);
    let out = &logs.stdout;
    assert!(out.contains("network user-mode (dependency fetch"), "{out}");
    for refused in [
        format!("127.0.0.1/{private_port} REFUSED (Connection refused)"),
        format!("10.0.2.2/{private_port} REFUSED"),
        format!("{host}/{private_port} REFUSED (Connection refused)"),
        "169.254.169.254/80 REFUSED (Permission denied)".to_owned(),
        format!("{host}/{public_port} CONNECTED"),
    ] {
        assert!(out.contains(&refused), "{refused} missing from {out}");
    }
}

/// Fail closed: without slirp4netns (here hidden behind /dev/null in a mount namespace
/// of the test's), a fetch stage is an error naming the tool, never the host's network.
#[test]
fn a_fetch_stage_without_slirp4netns_fails_instead_of_using_the_host_network() {
    let f = Fixture::new();
    f.write(
        "cairn.toml",
        "[workload]\nname = \"app\"\n[build]\nfetch = \"echo RAN-$((40 + 2))\"\ncommand = \"true\"\n\
         [test]\nunit = \"true\"\n",
    )
    .commit("a fetch stage");
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount --bind /dev/null /usr/bin/slirp4netns && exec \"$@\"",
            "sh",
            env!("CARGO_BIN_EXE_cairn"),
            "run",
        ])
        .current_dir(&f.repo)
        .env("CAIRN_HOME", &f.data)
        .env_remove("CAIRN_PLATFORM_DIR")
        .env_remove("CAIRN_SIGSTORE_TRUSTED_ROOT")
        .env_remove("CAIRN_TOKEN")
        .output()
        .unwrap();
    let r = Run::from(out);
    println!("exit {}\n{}{}", r.code, r.stdout, r.stderr);
    assert_ne!(r.code, 0, "{r:?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("slirp4netns not found at /usr/bin/slirp4netns"),
        "{r:?}"
    );
    // The command never ran (its output would be `RAN-42`).
    assert!(!all.contains("RAN-42"), "{r:?}");
    let logs = f.run(&["logs", "last", "fetch"]);
    assert!(!logs.stdout.contains("RAN-42"), "{logs:?}");
}

/// Issue 15: a directory the user names that does not exist was exit 2 ("cannot
/// open"), as if cairn had failed; it is the user's input: exit 1, said plainly.
#[test]
fn a_missing_directory_is_the_user_s_error() {
    let f = Fixture::new();
    let missing = f.repo.join("no-such-app");
    let r = f.run(&["workload", "add", missing.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{} does not exist", missing.display())),
        "{r:?}"
    );
}

/// Issue 18: shell completions and man pages come from the grammar. The bash
/// script loads in a real bash and completes `cairn`'s commands; `man -l`
/// renders the generated pages, one per command.
#[test]
fn completions_load_in_bash_and_man_renders_the_generated_pages() {
    let f = Fixture::new();
    let script = f.ok(&["completions", "bash"]).stdout;
    let mut bash = Command::new("bash")
        .args([
            "-c",
            "source /dev/stdin && complete -p cairn && COMP_WORDS=(cairn pro); COMP_CWORD=1; _cairn cairn pro cairn && printf '%s\\n' \"${COMPREPLY[@]}\"",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        bash.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
    }
    let out = Run::from(bash.wait_with_output().unwrap());
    println!("bash: {}", out.stdout.trim());
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("-F _cairn cairn"), "{out:?}");
    assert!(out.stdout.lines().any(|l| l == "promote"), "{out:?}");

    let dir = f.data.with_file_name("man");
    let r = f.ok(&["man", dir.to_str().unwrap()]);
    println!("{}", r.stdout.trim());
    for page in ["cairn.1", "cairn-scan.1", "cairn-promote.1"] {
        let rendered = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(dir.join(page))
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(rendered.status.success(), "man -l {page}: {rendered:?}");
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "{page}: {text}"
        );
    }
    let scan = String::from_utf8_lossy(
        &Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(dir.join("cairn-scan.1"))
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(scan.contains("--format"), "{scan}");
}

/// The binary is linked with packed relative relocations (`build.rs`): its
/// dynamic section has a `DT_RELR` table and only a few `RELA` entries are
/// left (some 127,000 before, a 3 MB table the loader read at every start),
/// and it is still position independent.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
fn the_binary_packs_its_relative_relocations() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_cairn")).unwrap();
    assert_eq!(
        &elf[..6],
        b"\x7fELF\x02\x01",
        "a 64-bit little-endian ELF file"
    );
    let u16_at = |o: usize| usize::from(u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()));
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (
        usize::try_from(u64_at(0x20)).unwrap(),
        u16_at(0x36),
        u16_at(0x38),
    );
    // PT_DYNAMIC: its entries are (tag, value) pairs up to DT_NULL.
    let dynamic = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| u32_at(ph) == 2)
        .map(|ph| usize::try_from(u64_at(ph + 8)).unwrap())
        .expect("a dynamic section");
    let mut tags = std::collections::BTreeMap::new();
    for entry in (dynamic..elf.len() - 16).step_by(16) {
        let tag = u64_at(entry);
        if tag == 0 {
            break;
        }
        tags.insert(tag, u64_at(entry + 8));
    }
    const DT_RELASZ: u64 = 8;
    const DT_RELRSZ: u64 = 35;
    const DT_RELR: u64 = 36;
    const DT_FLAGS_1: u64 = 0x6fff_fffb;
    const DF_1_PIE: u64 = 0x0800_0000;
    println!("dynamic section: {tags:x?}");
    assert!(tags.contains_key(&DT_RELR), "no DT_RELR: {tags:x?}");
    let relr = tags[&DT_RELRSZ];
    let rela = tags.get(&DT_RELASZ).copied().unwrap_or(0) / 24;
    println!("RELR table {relr} bytes, {rela} RELA entries left");
    assert!(
        relr > 0 && rela < 5_000,
        "{relr} bytes of RELR, {rela} RELA entries"
    );
    assert_ne!(
        tags.get(&DT_FLAGS_1).copied().unwrap_or(0) & DF_1_PIE,
        0,
        "still PIE"
    );
}
