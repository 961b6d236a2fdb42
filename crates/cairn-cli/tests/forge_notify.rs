//! Results back on the forge and notifications, end to end with the real
//! binary: `cairn run` reports its commit status live to a loopback server that
//! checks each request against the forge's documented API, for a green and a
//! failed run; a forge that answers 500 neither fails nor blocks the run.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_testkit::http_recorder::{Answer, Recorder, check_forge_status};
use common::{Fixture, Run};

const TOKEN: &str = "ghp_test-token-never-printed";

fn with_platform(f: &Fixture, platform: &Path, args: &[&str]) -> Run {
    Run::from(
        f.cairn(args)
            .env("CAIRN_PLATFORM_DIR", platform)
            .output()
            .unwrap(),
    )
}

/// A platform directory whose org.toml reports to GitHub at `api`.
fn github_platform(api: &str) -> tempfile::TempDir {
    let platform = tempfile::tempdir().unwrap();
    let token = platform.path().join("github.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        format!(
            "[forges]\nlink = \"https://cairn.example.org\"\n[forges.github]\napi = \"{api}\"\ntoken_file = \"{}\"\n",
            token.display()
        ),
    )
    .unwrap();
    platform
}

fn head(f: &Fixture) -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&f.repo)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_green_and_a_failed_run_are_reported_to_github_as_it_documents() {
    let forge = Recorder::start(vec![]);
    let platform = github_platform(&forge.url);
    let f = Fixture::example("hello-c");
    let r = with_platform(
        &f,
        platform.path(),
        &["workload", "add", "--forge-repo", "acme/hello-c"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let green = head(&f);
    let r = with_platform(&f, platform.path(), &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    f.write(
        "acceptance-test.sh",
        "#!/bin/sh\necho 'FAIL: acceptance_greets'\nexit 1\n",
    )
    .commit("break the acceptance test");
    let red = head(&f);
    let r = with_platform(&f, platform.path(), &["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    let seen = forge.wait_for(6, Duration::from_secs(10));
    let states: Vec<(String, String, String)> = seen
        .iter()
        .map(|s| {
            let sha = if s.path.contains(&green) {
                &green
            } else {
                &red
            };
            let state = check_forge_status("github", s, "acme/hello-c", sha, TOKEN).unwrap();
            let body = s.json();
            (
                sha[..7].to_owned(),
                state,
                body["target_url"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    println!("{states:#?}");
    let want = [
        (&green, "pending", 1),
        (&green, "pending", 1),
        (&green, "success", 1),
        (&red, "pending", 2),
        (&red, "pending", 2),
        (&red, "failure", 2),
    ]
    .map(|(sha, state, run)| {
        (
            sha[..7].to_owned(),
            state.to_owned(),
            format!("https://cairn.example.org/runs/{run}"),
        )
    });
    assert_eq!(states, want);
    let failure = seen[5].json();
    assert!(
        failure["description"]
            .as_str()
            .unwrap()
            .contains("acceptance-tests"),
        "{failure}"
    );
    assert!(!r.stdout.contains(TOKEN) && !r.stderr.contains(TOKEN));
}

#[test]
fn a_forge_answering_500_neither_fails_nor_blocks_the_run_and_is_recorded() {
    let forge = Recorder::start(vec![Answer::Status(500); 100]);
    let platform = github_platform(&forge.url);
    let f = Fixture::example("hello-c");
    let r = with_platform(
        &f,
        platform.path(),
        &["workload", "add", "--forge-repo", "acme/hello-c"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let started = Instant::now();
    let r = with_platform(&f, platform.path(), &["run"]);
    println!("run took {:?}: {r:?}", started.elapsed());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("succeeded"), "{r:?}");
    let runs = f.json(&["runs"]);
    assert_eq!(runs[0]["status"], "succeeded");
    let outbox = std::fs::read_to_string(f.data.join("outbox.jsonl")).unwrap();
    println!("{outbox}");
    assert!(!outbox.contains(TOKEN));
    let finals: Vec<&str> = outbox
        .lines()
        .filter(|l| !l.contains("\"retrying\""))
        .collect();
    assert_eq!(
        finals.len(),
        3,
        "queued, running and succeeded: one outcome each"
    );
    // The newest state is retried to the end, bounded (four attempts); an
    // older one stops once a newer one for the same commit and context waits.
    assert!(
        finals[2].contains("\"gave-up\"")
            && finals[2].contains("success")
            && finals[2].contains("\"attempts\":4")
            && finals[2].contains("answered HTTP 500"),
        "{outbox}"
    );
    let attempts = forge.seen().len();
    assert!((6..=12).contains(&attempts), "{attempts} attempts");
}
