//! The delivery view through the router: the pipeline page and the overview
//! for each role (which buttons exist), the forms' CSRF and Origin defences,
//! a gate that cannot decide shown as a denial, a target that does not answer
//! shown as health "unknown", and bad input (very long names, a workload
//! with nothing deployed). The walk through a real promotion is the browser
//! test (`cairn-cli/tests/browser.rs`).
#![allow(clippy::unwrap_used)]

mod fixture;

use axum::body::Body;
use axum::http::{Request, header};
use cairn_model::{DeploymentRecord, DeploymentStatus, NewRun, RunStatus, Trigger};
use fixture::{Answer, Server, now_ms};

/// Logs `who` in through the login form: (the session cookie, its CSRF token).
async fn session(server: &Server, who: &str) -> (String, String) {
    let form = server.call("GET", "/login", None, None).await;
    let cookie = form
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("cairn_login_csrf="))
        .unwrap();
    let csrf = cookie.split_once('=').unwrap().1.to_owned();
    let answer = server
        .send(
            Request::post("/login")
                .header(header::HOST, "cairn.test")
                .header(header::ORIGIN, "http://cairn.test")
                .header(header::COOKIE, &cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "csrf={csrf}&token={}",
                    server.token(who)
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.text());
    let session = answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("cairn_session="))
        .unwrap();
    let page = page(server, "/", &session).await;
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let token = page[at..].split('"').next().unwrap().to_owned();
    (session, token)
}

async fn page(server: &Server, path: &str, cookie: &str) -> String {
    let answer = get(server, path, cookie).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    answer.text()
}

async fn get(server: &Server, path: &str, cookie: &str) -> Answer {
    server
        .send(
            Request::get(path)
                .header(header::HOST, "cairn.test")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
}

async fn post(server: &Server, path: &str, cookie: &str, origin: Option<&str>, form: &str) -> Answer {
    let mut request = Request::post(path)
        .header(header::HOST, "cairn.test")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    server
        .send(request.body(Body::from(form.to_owned())).unwrap())
        .await
}

/// A succeeded run of `hello` at the repository's HEAD (recorded, not run).
fn green_run(server: &Server) -> String {
    let commit = fixture::git(&server.repo, &["rev-parse", "HEAD"]).trim().to_owned();
    let t = now_ms();
    let (run, _) = server
        .store()
        .create_run(&NewRun {
            workload: "hello".to_owned(),
            commit: commit.clone(),
            git_ref: Some("refs/heads/main".to_owned()),
            created_at_ms: t,
            stages: Vec::new(),
            trigger: Trigger::Cli,
        })
        .unwrap();
    server.store().start_run(run.id, "test:1:1", t).unwrap();
    server
        .store()
        .finish_run(run.id, RunStatus::Succeeded, None, t + 1)
        .unwrap();
    commit
}

#[tokio::test]
async fn the_pipeline_shows_each_role_only_its_buttons() {
    let server = Server::new();
    let commit = green_run(&server);
    for (who, approve, run) in [
        ("viewer", false, false),
        ("developer", false, true),
        ("maintainer", true, true),
        ("release-manager", false, true),
    ] {
        let (cookie, _) = session(&server, who).await;
        let html = page(&server, "/workloads/hello", &cookie).await;
        assert!(html.contains(&format!("data-commit=\"{commit}\"")), "{html}");
        assert!(html.contains("not reviewed"), "{html}");
        // A workload with nothing deployed: each environment says so.
        assert_eq!(html.matches("Nothing deployed.").count(), 2, "{html}");
        assert_eq!(html.contains("form class=\"approve\""), approve, "{who}: {html}");
        let overview = page(&server, "/", &cookie).await;
        assert!(overview.contains("id=\"matrix\""), "{overview}");
        assert!(overview.contains("href=\"/workloads/hello\""), "{overview}");
        assert_eq!(overview.contains("form class=\"run-now\""), run, "{who}");
        println!("{who}: approve button {approve}, run button {run}");
    }
    // A bearer token (no session) gets the page, never a form.
    let answer = server
        .call("GET", "/workloads/hello", Some("admin"), None)
        .await;
    assert_eq!(answer.status, 200);
    assert!(!answer.text().contains("<form class=\"approve\""));
}

#[tokio::test]
async fn every_delivery_form_needs_the_csrf_token_and_this_origin() {
    let server = Server::new();
    let commit = green_run(&server);
    let (cookie, csrf) = session(&server, "admin").await;
    let digest = format!("sha256:{}", "0".repeat(64));
    for (path, fields) in [
        ("/workloads/hello/approvals", format!("commit={commit}")),
        (
            "/workloads/hello/promotions",
            format!("env=staging&image={digest}"),
        ),
        (
            "/workloads/hello/rollbacks",
            format!("env=staging&image={digest}"),
        ),
    ] {
        let cases = [
            ("no token", None, fields.clone()),
            ("a wrong token", None, format!("csrf={}&{fields}", "0".repeat(64))),
            (
                "another origin",
                Some("https://evil.example"),
                format!("csrf={csrf}&{fields}"),
            ),
        ];
        for (what, origin, form) in cases {
            let answer = post(&server, path, &cookie, origin, &form).await;
            let text = answer.text();
            assert_eq!(answer.status, 403, "{path} with {what}: {text}");
            let reason = text
                .split("<p id=\"reason\">")
                .nth(1)
                .and_then(|r| r.split("</p>").next())
                .unwrap_or_default()
                .to_owned();
            assert!(
                reason.contains("CSRF") || reason.contains("Origin"),
                "{path} {what}: {reason}"
            );
            println!("POST {path} with {what}: 403 {reason}");
        }
    }
    // Nothing was approved or deployed.
    let html = page(&server, "/workloads/hello", &cookie).await;
    assert!(html.contains("not reviewed"), "{html}");
    assert!(server.store().deployments(None, None, 10).unwrap().is_empty());
    // With the token a maintainer's approval goes through, signed and verified.
    let (cookie, csrf) = session(&server, "maintainer").await;
    let answer = post(
        &server,
        "/workloads/hello/approvals",
        &cookie,
        Some("http://cairn.test"),
        &format!("csrf={csrf}&commit={commit}"),
    )
    .await;
    assert_eq!(answer.status, 303, "{}", answer.text());
    let html = page(&server, "/workloads/hello", &cookie).await;
    assert!(html.contains("data-review=\"approved\""), "{html}");
    println!("with the token: approved by maintainer");
}

#[tokio::test]
async fn a_gate_that_cannot_decide_is_shown_as_a_denial_with_its_reason() {
    let server = Server::new();
    let (cookie, _) = session(&server, "release-manager").await;
    let digest = format!("sha256:{}", "0".repeat(64));
    let html = page(
        &server,
        &format!("/workloads/hello/confirm?action=promote&env=staging&image={digest}"),
        &cookie,
    )
    .await;
    assert!(html.contains("data-gate-error=\"true\""), "{html}");
    assert!(html.contains("gate: denied"), "{html}");
    assert!(!html.contains("gate: allowed"), "{html}");
    assert!(!html.contains("data-allowed=\"true\""), "{html}");
    let reason = html
        .split("class=\"message\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert!(reason.contains("the gate could not decide"), "{reason}");
    // The release manager may still only override, with a reason.
    assert!(html.contains("name=\"override\""), "{html}");
    assert!(html.contains("required"), "{html}");
    println!("a gate that cannot decide: denied: {reason}");
}

#[tokio::test]
async fn a_target_that_does_not_answer_has_health_unknown_never_healthy() {
    let server = Server::new();
    let digest = format!("sha256:{}", "1".repeat(64));
    for (env, target) in [("staging", "kubernetes"), ("production", "local")] {
        server
            .store()
            .add_deployment(&DeploymentRecord {
                workload: "hello".into(),
                environment: env.into(),
                digest: digest.clone(),
                previous_digest: None,
                kind: "deploy".into(),
                actor: "release-manager".into(),
                target: target.into(),
                detail: "http://127.0.0.1:1".into(),
                log_index: 1,
                deployed_at_ms: now_ms(),
                status: DeploymentStatus::Deployed,
                token: Some(format!("token-{env}")),
                reason: None,
            })
            .unwrap();
    }
    let (cookie, _) = session(&server, "viewer").await;
    let html = page(&server, "/workloads/hello", &cookie).await;
    let health: Vec<&str> = html
        .split("data-health=\"")
        .skip(1)
        .map(|h| h.split('"').next().unwrap())
        .collect();
    // A target cairn cannot ask: unknown; a local sandbox that is not running: down.
    assert_eq!(health, ["unknown", "down"], "{html}");
    assert!(!html.contains("healthy"), "{html}");
    let overview = page(&server, "/", &cookie).await;
    assert!(overview.contains(">unknown<"), "{overview}");
    assert!(!overview.contains(">healthy<"), "{overview}");
    println!("health: staging (kubernetes) {}, production (local, not running) {}", health[0], health[1]);
}

#[tokio::test]
async fn very_long_names_and_bad_forms_are_refused_with_the_reason() {
    let server = Server::new();
    let (cookie, _) = session(&server, "admin").await;
    let long = "w".repeat(5000);
    let answer = get(&server, &format!("/workloads/{long}"), &cookie).await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    let answer = get(
        &server,
        &format!("/workloads/hello/confirm?action=promote&env={long}&image=x"),
        &cookie,
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let answer = get(
        &server,
        "/workloads/hello/confirm?action=deploy&env=staging&image=x",
        &cookie,
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("`action` is `promote` or `rollback`"));
    let (maintainer, maintainer_csrf) = session(&server, "maintainer").await;
    let answer = post(
        &server,
        "/workloads/hello/approvals",
        &maintainer,
        None,
        &format!("csrf={maintainer_csrf}&commit=HEAD"),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("40 hex digits"), "{}", answer.text());
    let (release, release_csrf) = session(&server, "release-manager").await;
    let answer = post(
        &server,
        "/workloads/hello/promotions",
        &release,
        None,
        &format!("csrf={release_csrf}&env=staging&image=x&override={}", "r".repeat(5000)),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    println!("long names and bad forms: 404/400 with the reason");
}
