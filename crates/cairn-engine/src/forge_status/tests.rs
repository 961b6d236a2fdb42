#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use cairn_testkit::http_recorder::{Answer, Recorder, check_forge_status, check_github_check_run};

use super::*;

const TOKEN: &str = "s3cret-forge-token";

fn token_file(dir: &std::path::Path, mode: u32) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("token-{n}-{mode:o}"));
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

fn api(kind: ForgeKind, server: &Recorder, token_file: String) -> ForgeApi {
    let prefix = match kind {
        ForgeKind::Github => "",
        ForgeKind::Gitlab => "/api/v4",
        ForgeKind::Gitea => "/api/v1",
    };
    ForgeApi {
        kind,
        api: format!("{}{prefix}", server.url),
        token_file,
        check_runs: false,
    }
}

fn status(sha: &str, phase: Phase) -> Status {
    Status {
        repository: "acme/hello".to_owned(),
        sha: sha.to_owned(),
        context: "cairn/run".to_owned(),
        phase,
        description: format!(
            "cairn run 1 is {phase:?}\nwith a newline and more words than a forge takes {}",
            "x".repeat(200)
        ),
        target_url: "https://cairn.example.org/runs/1".to_owned(),
    }
}

fn quick() -> Policy {
    Policy {
        attempts: 3,
        first_backoff: Duration::from_millis(50),
    }
}

fn outcomes(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn each_forge_gets_its_documented_requests_for_a_green_and_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::at(dir.path());
    let green = "a".repeat(40);
    let red = "b".repeat(40);
    for kind in [ForgeKind::Github, ForgeKind::Gitlab, ForgeKind::Gitea] {
        let server = Recorder::start(vec![]);
        let api = api(kind, &server, token_file(dir.path(), 0o600));
        for (sha, end) in [(&green, Phase::Succeeded), (&red, Phase::Failed)] {
            for phase in [Phase::Queued, Phase::Running, end] {
                submit_with(&data, &api, status(sha, phase), quick(), TIMEOUT);
            }
        }
        assert_eq!(outbox::flush(Duration::from_secs(20)), 0);
        let seen = server.wait_for(6, Duration::from_secs(5));
        let states: Vec<String> = seen
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let sha = if i < 3 { &green } else { &red };
                check_forge_status(kind.name(), s, "acme/hello", sha, TOKEN).unwrap()
            })
            .collect();
        let want: &[&str] = match kind {
            ForgeKind::Github | ForgeKind::Gitea => &[
                "pending", "pending", "success", "pending", "pending", "failure",
            ],
            ForgeKind::Gitlab => &[
                "pending", "running", "success", "pending", "running", "failed",
            ],
        };
        println!("{}: {states:?}", kind.name());
        assert_eq!(states, want, "{}", kind.name());
        assert!(
            !seen[0].json()["description"]
                .as_str()
                .unwrap()
                .contains('\n')
        );
    }
    assert!(
        outcomes(dir.path())
            .iter()
            .all(|o| o["outcome"] == "delivered")
    );
}

#[test]
fn a_forge_answering_401_500_or_hanging_is_retried_bounded_recorded_and_never_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::at(dir.path());
    let sha = "c".repeat(40);
    // 401 then 500, then the forge takes it: three attempts, delivered.
    let flaky = Recorder::start(vec![Answer::Status(401), Answer::Status(500)]);
    let started = Instant::now();
    submit_with(
        &data,
        &api(ForgeKind::Github, &flaky, token_file(dir.path(), 0o600)),
        status(&sha, Phase::Succeeded),
        quick(),
        TIMEOUT,
    );
    // A forge that never answers: each attempt times out, then cairn gives up.
    let hanging = Recorder::start(vec![Answer::Hang(Duration::from_secs(30)); 3]);
    submit_with(
        &data,
        &api(ForgeKind::Gitea, &hanging, token_file(dir.path(), 0o600)),
        status(&sha, Phase::Failed),
        quick(),
        Duration::from_millis(300),
    );
    // A forge that always fails: bounded at the policy's attempts.
    let down = Recorder::start(vec![Answer::Status(500); 10]);
    submit_with(
        &data,
        &api(ForgeKind::Gitlab, &down, token_file(dir.path(), 0o600)),
        status(&sha, Phase::Running),
        quick(),
        TIMEOUT,
    );
    // A token others may read is not used, and nothing is sent.
    let refused = Recorder::start(vec![]);
    submit_with(
        &data,
        &api(ForgeKind::Github, &refused, token_file(dir.path(), 0o644)),
        status(&sha, Phase::Running),
        quick(),
        TIMEOUT,
    );
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "submitting waited: {:?}",
        started.elapsed()
    );
    assert_eq!(outbox::flush(Duration::from_secs(30)), 0);
    println!(
        "{}",
        std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap()
    );
    assert_eq!(flaky.seen().len(), 3);
    assert_eq!(hanging.seen().len(), 3);
    assert_eq!(down.seen().len(), 3);
    assert_eq!(refused.seen().len(), 0);
    let log = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
    println!("{log}");
    assert!(!log.contains(TOKEN), "the token was recorded");
    let finals: Vec<(String, String)> = outcomes(dir.path())
        .iter()
        .filter(|o| o["outcome"] != "retrying")
        .map(|o| {
            (
                o["lane"].as_str().unwrap().to_owned(),
                format!("{} {} {}", o["outcome"], o["attempts"], o["error"]),
            )
        })
        .collect();
    let of = |lane: &str| {
        finals
            .iter()
            .find(|(l, _)| l == lane && !finals.is_empty())
            .map(|(_, o)| o.clone())
            .unwrap_or_default()
    };
    assert!(
        of("forge:github").starts_with("\"delivered\" 3"),
        "{finals:?}"
    );
    assert!(
        finals
            .iter()
            .any(|(l, o)| l == "forge:github" && o.contains("chmod 600")),
        "{finals:?}"
    );
    assert!(
        of("forge:gitea").starts_with("\"gave-up\" 3") && of("forge:gitea").contains("timed out"),
        "{finals:?}"
    );
    assert!(
        of("forge:gitlab").starts_with("\"gave-up\" 3") && of("forge:gitlab").contains("500"),
        "{finals:?}"
    );
}

/// `check_runs = true`: beside each commit status, one check run per run,
/// created once and updated as it goes (queued → in_progress → completed with
/// its conclusion), every request as GitHub's Checks API documents it.
#[test]
fn github_check_runs_are_created_once_then_updated_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::at(dir.path());
    let server = Recorder::github_checks();
    let api = ForgeApi {
        check_runs: true,
        ..api(ForgeKind::Github, &server, token_file(dir.path(), 0o600))
    };
    let green = "c".repeat(40);
    let red = "d".repeat(40);
    for (sha, end) in [(&green, Phase::Succeeded), (&red, Phase::Failed)] {
        for phase in [Phase::Queued, Phase::Running, end] {
            let mut s = status(sha, phase);
            s.target_url = format!("https://cairn.example.org/runs/{}", &sha[..1]);
            submit_with(&data, &api, s, quick(), TIMEOUT);
        }
    }
    assert_eq!(outbox::flush(Duration::from_secs(20)), 0);
    let seen = server.seen();
    let mut creates = 0;
    for s in &seen {
        if s.path.contains("/statuses/") {
            check_forge_status(
                "github",
                s,
                "acme/hello",
                &s.path[s.path.len() - 40..],
                TOKEN,
            )
            .unwrap();
            continue;
        }
        let sha = if s.method == "POST" {
            s.json()["head_sha"].as_str().unwrap().to_owned()
        } else if s.method == "GET" {
            s.path.split('/').nth(5).unwrap().to_owned()
        } else {
            String::new()
        };
        let said = match s.method.as_str() {
            "PATCH" => check_github_check_run(s, "acme/hello", "", TOKEN),
            _ => check_github_check_run(s, "acme/hello", &sha, TOKEN),
        }
        .unwrap();
        creates += usize::from(s.method == "POST");
        println!("{} {} → {said}", s.method, s.path);
    }
    assert_eq!(creates, 2, "one check run per run: {seen:?}");
    for (sha, want) in [(&green, "success"), (&red, "failure")] {
        let mut answer = ureq::get(&format!(
            "{}/repos/acme/hello/commits/{sha}/check-runs?check_name=cairn%2Frun",
            server.url
        ))
        .call()
        .unwrap();
        let listed: serde_json::Value =
            serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
        let runs = listed["check_runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{listed}");
        assert_eq!(runs[0]["status"], "completed", "{listed}");
        assert_eq!(runs[0]["conclusion"], want, "{listed}");
        println!("check run for {}…: completed/{want}", &sha[..8]);
    }
    let record = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
    assert!(!record.contains(TOKEN), "the token is never recorded");
}
