//! Results back on the forge and notifications, end to end with the real
//! binary: `cairn run` reports its commit status live to a loopback server that
//! checks each request against the forge's documented API, for a green and a
//! failed run; a forge that answers 500 neither fails nor blocks the run. A
//! denied promotion reaches a Slack-shaped receiver and, as email, PyPI's
//! aiosmtpd, and the forge sees the promotion's status.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_testkit::http_recorder::{Answer, Recorder, check_forge_status, check_github_check_run};
use cairn_testkit::smtp_server::SmtpServer;
use common::{Fixture, Run, team};

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
    github_platform_with(api, "")
}

/// [`github_platform`] with `extra` lines in `[forges.github]`.
fn github_platform_with(api: &str, extra: &str) -> tempfile::TempDir {
    let platform = tempfile::tempdir().unwrap();
    let token = platform.path().join("github.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        format!(
            "[forges]\nlink = \"https://cairn.example.org\"\n[forges.github]\napi = \"{api}\"\ntoken_file = \"{}\"\n{extra}",
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

/// `check_runs = true` in `[forges.github]`: a real green and a real failed
/// run are each one check run beside their commit statuses, created then
/// updated to completed with the run's conclusion, every request as GitHub's
/// Checks API documents it (the loopback server keeps the check runs as GitHub
/// does).
#[test]
fn github_check_runs_beside_statuses_for_a_green_and_a_failed_run() {
    let forge = Recorder::github_checks();
    let platform = github_platform_with(&forge.url, "check_runs = true\n");
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
    let seen = forge.seen();
    let (mut statuses, mut creates) = (0, 0);
    for s in &seen {
        let sha = if s.path.contains(&red) || s.body.contains(&red) {
            &red
        } else {
            &green
        };
        if s.path.contains("/statuses/") {
            check_forge_status("github", s, "acme/hello-c", sha, TOKEN).unwrap();
            statuses += 1;
        } else {
            let said = check_github_check_run(s, "acme/hello-c", sha, TOKEN).unwrap();
            creates += usize::from(s.method == "POST");
            println!("{} {} → {said}", s.method, s.path);
        }
    }
    assert_eq!((statuses, creates), (6, 2), "{seen:#?}");
    for (sha, conclusion, run) in [(&green, "success", 1), (&red, "failure", 2)] {
        let mut answer = common::server::agent()
            .get(&format!(
                "{}/repos/acme/hello-c/commits/{sha}/check-runs?check_name=cairn%2Frun",
                forge.url
            ))
            .call()
            .unwrap();
        let listed: serde_json::Value =
            serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
        let check = &listed["check_runs"][0];
        assert_eq!(listed["total_count"], 1, "{listed}");
        assert_eq!(
            (check["status"].as_str(), check["conclusion"].as_str()),
            (Some("completed"), Some(conclusion)),
            "{listed}"
        );
        assert_eq!(
            check["details_url"],
            format!("https://cairn.example.org/runs/{run}")
        );
        println!(
            "check run of {}: completed/{conclusion}: {}",
            &sha[..7],
            check["output"]["title"]
        );
    }
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

#[test]
fn a_denied_promotion_reaches_slack_and_email_and_the_forge_sees_it() {
    let forge = Recorder::start(vec![]);
    let slack = Recorder::start(vec![]);
    let smtp = SmtpServer::start();
    let platform = github_platform(&forge.url);
    let url_file = platform.path().join("slack.url");
    std::fs::write(&url_file, format!("{}/services/T1/B2/secret\n", slack.url)).unwrap();
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let org = platform.path().join("org.toml");
    let mut text = std::fs::read_to_string(&org).unwrap();
    text.push_str(&format!(
        "\n[[notify]]\nkind = \"slack\"\nurl_file = \"{}\"\nevents = [\"promotion-denied\"]\n\n[[notify]]\nkind = \"email\"\nsmtp = \"{}\"\nfrom = \"cairn@example.org\"\nto = [\"release@example.org\"]\nevents = [\"promotion-denied\"]\n",
        url_file.display(),
        smtp.address()
    ));
    std::fs::write(&org, text).unwrap();
    let t = team();
    let f = &t.f;
    let as_ = |token: &str, args: &[&str]| {
        Run::from(
            f.cairn(args)
                .env("CAIRN_PLATFORM_DIR", platform.path())
                .env("CAIRN_TOKEN", token)
                .output()
                .unwrap(),
        )
    };
    let r = as_(
        &t.admin,
        &["workload", "add", "--forge-repo", "acme/hello-web"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = as_(&t.dev, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let commit = head(f);
    let digest = f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = as_(
        &t.rita,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    // Production without a second maintainer's approval: denied.
    let r = as_(
        &t.rita,
        &["promote", "hello-web", &digest, "--to", "production"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("[review]"), "{r:?}");

    let message = slack.wait_for(1, Duration::from_secs(10));
    assert_eq!(message.len(), 1, "one Slack message, for the denial only");
    assert_eq!(message[0].path, "/services/T1/B2/secret");
    let body = message[0].json();
    println!("slack: {body}");
    assert_eq!(body["text"], "Promotion of hello-web to production denied");
    assert_eq!(body["blocks"][1]["type"], "section");
    assert!(
        body["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("*denied by:* [review]"),
        "{body}"
    );
    let mail = smtp.messages(1, Duration::from_secs(10));
    assert_eq!(mail.len(), 1, "{mail:?}");
    println!("email: {}", mail[0]);
    assert_eq!(mail[0]["rcpt_tos"][0], "release@example.org");
    assert!(
        mail[0]["content"]
            .as_str()
            .unwrap()
            .contains("Subject: [cairn] Promotion of hello-web to production denied")
    );

    // The forge: the run's three statuses, then each promotion's two.
    let seen = forge.wait_for(7, Duration::from_secs(10));
    let promotions: Vec<(String, String)> = seen
        .iter()
        .map(|s| {
            let state = check_forge_status("github", s, "acme/hello-web", &commit, TOKEN).unwrap();
            (s.json()["context"].as_str().unwrap().to_owned(), state)
        })
        .filter(|(c, _)| c.starts_with("cairn/promote/"))
        .collect();
    println!("{promotions:?}");
    assert_eq!(
        promotions,
        [
            ("cairn/promote/staging", "pending"),
            ("cairn/promote/staging", "success"),
            ("cairn/promote/production", "pending"),
            ("cairn/promote/production", "failure"),
        ]
        .map(|(c, s)| (c.to_owned(), s.to_owned()))
    );
    let outbox = std::fs::read_to_string(f.data.join("outbox.jsonl")).unwrap();
    assert!(
        !outbox.contains("secret") && !outbox.contains(TOKEN),
        "{outbox}"
    );
}
