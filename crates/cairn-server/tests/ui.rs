//! The web UI through the router (`oneshot`): the login flow and its CSRF
//! defences, sessions and logout, pages for an authenticated identity, a 403
//! page with its reason, a failed run's "Why it failed", the assets, and the
//! Content-Security-Policy (no inline script on any page).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use cairn_engine::DataDir;
use cairn_engine::access::create_identity;
use cairn_model::{
    IdentityKind, LogLine, LogStream, NewRun, NewStage, RunId, RunStatus, StageKind, StageStatus,
    Trigger,
};
use cairn_server::secret::{Secret, WebhookSecrets};
use cairn_server::{AppState, ServerConfig};
use cairn_store::SqliteStore;
use cairn_store::prelude::*;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::fixture;

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    store: Arc<SqliteStore>,
    admin_token: String,
    nobody_token: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::at(dir.path());
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let now = 1_700_000_000_000;
    // The first identity is bound platform-admin; the second has no role.
    let admin = create_identity(&*store, &data, None, "admin", IdentityKind::User, now).unwrap();
    let nobody = create_identity(
        &*store,
        &data,
        Some(&cairn_engine::access::authenticate(&*store, admin.token.expose()).unwrap()),
        "nobody",
        IdentityKind::User,
        now,
    )
    .unwrap();
    let state = AppState::new(
        store.clone(),
        ServerConfig {
            data,
            platform_dir: None,
            session_ttl_ms: 3_600_000,
            secure_cookies: false,
        },
        WebhookSecrets {
            github: Secret::new(b"x".to_vec()),
            gitlab: Secret::new(b"y".to_vec()),
            gitea: Secret::new(b"z".to_vec()),
        },
    );
    Fixture {
        _dir: dir,
        app: cairn_server::app(state),
        store,
        admin_token: admin.token.expose().to_owned(),
        nobody_token: nobody.token.expose().to_owned(),
    }
}

async fn send(app: &Router, request: Request<Body>) -> (Response<()>, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path).header(header::HOST, "cairn.test");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

fn post_form(path: &str, cookie: Option<&str>, origin: Option<&str>, form: &str) -> Request<Body> {
    let mut b = Request::post(path)
        .header(header::HOST, "cairn.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    if let Some(o) = origin {
        b = b.header(header::ORIGIN, o);
    }
    b.body(Body::from(form.to_owned())).unwrap()
}

fn set_cookies(response: &Response<()>) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `name=value` of cookie `name` set by a response.
fn cookie_pair(response: &Response<()>, name: &str) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// The value of the hidden `csrf` field of the first form in `html`.
fn form_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

fn location(response: &Response<()>) -> &str {
    response.headers()[header::LOCATION].to_str().unwrap()
}

/// Every `<script` tag has a `src` (no inline script), and no inline style.
fn assert_no_inline_code(html: &str) {
    for tag in html.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap();
        assert!(open.contains("src="), "inline script: <script{open}>");
    }
    assert!(!html.contains("<style"), "inline style element");
    assert!(!html.contains(" style="), "style attribute");
    assert!(!html.contains(" onclick="), "inline handler");
}

fn assert_page(response: &Response<()>, html: &str) {
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert_no_inline_code(html);
}

/// Logs in with `token` through the form; returns the session cookie pair.
async fn log_in(app: &Router, token: &str) -> String {
    let (response, html) = send(app, get("/login", None)).await;
    let login_cookie = cookie_pair(&response, "cairn_login_csrf").unwrap();
    let csrf = form_csrf(&html);
    let (response, _) = send(
        app,
        post_form(
            "/login",
            Some(&login_cookie),
            Some("http://cairn.test"),
            &format!("csrf={csrf}&token={token}"),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    cookie_pair(&response, "cairn_session").unwrap()
}

#[tokio::test]
async fn unauthenticated_pages_redirect_to_login() {
    let f = fixture();
    for (path, to) in [
        ("/", "/login"),
        ("/runs", "/login?next=/runs"),
        ("/runs/1", "/login?next=/runs/1"),
        ("/runs?workload=a", "/login?next=/runs%3Fworkload%3Da"),
        ("/environments", "/login?next=/environments"),
        ("/audit", "/login?next=/audit"),
    ] {
        let (response, _) = send(&f.app, get(path, None)).await;
        println!(
            "GET {path} -> {} {}",
            response.status(),
            location(&response)
        );
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), to, "{path}");
    }
    // A session cookie that names no session is no better.
    let (response, _) = send(&f.app, get("/", Some("cairn_session=0123"))).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_form_sets_a_double_submit_cookie() {
    let f = fixture();
    let (response, html) = send(&f.app, get("/login?next=/runs/7", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_page(&response, &html);
    let cookie = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("cairn_login_csrf="))
        .unwrap();
    println!("GET /login sets: {cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/login"), "{cookie}");
    let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(value.len(), 64);
    assert_eq!(form_csrf(&html), value);
    assert!(html.contains("name=\"next\" value=\"/runs/7\""), "{html}");
    assert!(html.contains("action=\"/login\""));

    // A `next` that leaves the site is dropped.
    let (_, html) = send(&f.app, get("/login?next=//evil.example/", None)).await;
    assert!(!html.contains("evil.example"), "{html}");
}

#[tokio::test]
async fn login_refuses_forged_forms_and_bad_tokens() {
    let f = fixture();
    let (response, html) = send(&f.app, get("/login", None)).await;
    let login_cookie = cookie_pair(&response, "cairn_login_csrf").unwrap();
    let csrf = form_csrf(&html);
    let token = &f.admin_token;

    let cases = [
        // (what, cookie, origin, form, status)
        (
            "wrong csrf",
            Some(login_cookie.clone()),
            None,
            format!("csrf={}&token={token}", "0".repeat(64)),
            StatusCode::FORBIDDEN,
        ),
        (
            "no csrf cookie",
            None,
            None,
            format!("csrf={csrf}&token={token}"),
            StatusCode::FORBIDDEN,
        ),
        (
            "no csrf field",
            Some(login_cookie.clone()),
            None,
            format!("token={token}"),
            StatusCode::FORBIDDEN,
        ),
        (
            "cross-site origin",
            Some(login_cookie.clone()),
            Some("https://evil.example"),
            format!("csrf={csrf}&token={token}"),
            StatusCode::FORBIDDEN,
        ),
        (
            "null origin",
            Some(login_cookie.clone()),
            Some("null"),
            format!("csrf={csrf}&token={token}"),
            StatusCode::FORBIDDEN,
        ),
        (
            "bad token",
            Some(login_cookie.clone()),
            Some("http://cairn.test"),
            format!("csrf={csrf}&token=cairn_not-a-token"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "empty token",
            Some(login_cookie.clone()),
            None,
            format!("csrf={csrf}&token="),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (what, cookie, origin, form, status) in cases {
        let (response, html) = send(
            &f.app,
            post_form("/login", cookie.as_deref(), origin, &form),
        )
        .await;
        println!("POST /login ({what}) -> {}", response.status());
        assert_eq!(response.status(), status, "{what}: {html}");
        assert_page(&response, &html);
        assert!(
            cookie_pair(&response, "cairn_session").is_none(),
            "{what}: a session was set"
        );
        if status == StatusCode::UNAUTHORIZED {
            // The form again, to try once more.
            assert!(html.contains("id=\"login-error\""), "{what}: {html}");
            assert_eq!(form_csrf(&html), csrf);
        }
    }
}

#[tokio::test]
async fn a_session_logs_in_shows_the_identity_and_logs_out() {
    let f = fixture();
    let (response, html) = send(&f.app, get("/login", None)).await;
    let login_cookie = cookie_pair(&response, "cairn_login_csrf").unwrap();
    let csrf = form_csrf(&html);
    let (response, _) = send(
        &f.app,
        post_form(
            "/login",
            Some(&login_cookie),
            Some("http://cairn.test"),
            &format!("csrf={csrf}&token={}&next=%2Fruns", f.admin_token),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/runs");
    let cookies = set_cookies(&response);
    println!("POST /login sets: {cookies:?}");
    let session = cookies
        .iter()
        .find(|c| c.starts_with("cairn_session="))
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("cairn_login_csrf=;") && c.contains("Max-Age=0"))
    );
    let session = session.split(';').next().unwrap().to_owned();

    let (response, html) = send(&f.app, get("/", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_page(&response, &html);
    assert!(
        html.contains("<span id=\"identity\">admin</span>"),
        "{html}"
    );
    let session_csrf = form_csrf(&html);

    // A `next` to another site is ignored.
    let (response, html) = send(&f.app, get("/login", None)).await;
    let login_cookie = cookie_pair(&response, "cairn_login_csrf").unwrap();
    let (response, _) = send(
        &f.app,
        post_form(
            "/login",
            Some(&login_cookie),
            None,
            &format!(
                "csrf={}&token={}&next=%2F%2Fevil.example",
                form_csrf(&html),
                f.admin_token
            ),
        ),
    )
    .await;
    assert_eq!(location(&response), "/");

    // Logging out needs the session's CSRF token.
    for form in ["", "csrf=", &format!("csrf={}", "0".repeat(64))] {
        let (response, html) = send(&f.app, post_form("/logout", Some(&session), None, form)).await;
        println!("POST /logout ({form:?}) -> {}", response.status());
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{form}");
        assert!(html.contains("CSRF"), "{html}");
    }
    let (response, _) = send(&f.app, get("/", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::OK, "still logged in");

    let (response, _) = send(
        &f.app,
        post_form(
            "/logout",
            Some(&session),
            Some("http://cairn.test"),
            &format!("csrf={session_csrf}"),
        ),
    )
    .await;
    println!("POST /logout (session csrf) -> {}", response.status());
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    assert!(
        set_cookies(&response)
            .iter()
            .any(|c| c.starts_with("cairn_session=;") && c.contains("Max-Age=0"))
    );
    let (response, _) = send(&f.app, get("/", Some(&session))).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the session ended"
    );
}

#[tokio::test]
async fn a_forbidden_page_says_why_in_html() {
    let f = fixture();
    let session = log_in(&f.app, &f.nobody_token).await;
    let (response, html) = send(&f.app, get("/runs", Some(&session))).await;
    println!("GET /runs as nobody -> {}", response.status());
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_page(&response, &html);
    assert!(html.contains("nobody may not view anything"), "{html}");
}

/// A run of workload `app` whose second stage failed with exit code 1.
fn failed_run(store: &SqliteStore) -> RunId {
    let t = 1_700_000_000_000;
    store.upsert_workload("app", "/src/app", t).unwrap();
    let stage = |name: &str, kind| NewStage {
        name: name.to_owned(),
        kind,
        command: Some(format!("make {name}")),
    };
    let (run, stages) = store
        .create_run(&NewRun {
            workload: "app".to_owned(),
            commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            git_ref: Some("refs/heads/main".to_owned()),
            created_at_ms: t,
            stages: vec![
                stage("build", StageKind::Build),
                stage("unit-test", StageKind::UnitTest),
                stage("package", StageKind::Command),
            ],
            trigger: Trigger::Cli,
        })
        .unwrap();
    store.start_run(run.id, "test:1:1", t + 1).unwrap();
    let line = |seq, stream, text: &str| LogLine {
        seq,
        stream,
        at_ms: t + 2,
        text: text.as_bytes().to_vec(),
    };
    store.start_stage(stages[0].id, t + 2).unwrap();
    store
        .append_logs(stages[0].id, &[line(0, LogStream::Stdout, "compiled <ok>")])
        .unwrap();
    store
        .finish_stage(stages[0].id, StageStatus::Passed, Some(0), None, t + 1_500)
        .unwrap();
    store.start_stage(stages[1].id, t + 1_500).unwrap();
    store
        .append_logs(
            stages[1].id,
            &[
                line(0, LogStream::Stdout, "running 2 tests"),
                line(1, LogStream::Stderr, "<script>alert(1)</script>"),
                line(2, LogStream::Stderr, "assertion failed: left == right"),
            ],
        )
        .unwrap();
    store
        .finish_stage(
            stages[1].id,
            StageStatus::Failed,
            Some(1),
            Some("exit 1"),
            t + 4_000,
        )
        .unwrap();
    store
        .finish_run(
            run.id,
            RunStatus::Failed,
            Some("stage unit-test failed"),
            t + 4_001,
        )
        .unwrap();
    run.id
}

#[tokio::test]
async fn a_failed_run_explains_why() {
    let f = fixture();
    let id = failed_run(&f.store);
    let session = log_in(&f.app, &f.admin_token).await;
    let (response, html) = send(&f.app, get(&format!("/runs/{}", id.0), Some(&session))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_page(&response, &html);
    println!(
        "GET /runs/{} -> {} ({} bytes)",
        id.0,
        response.status(),
        html.len()
    );

    assert!(
        html.contains("id=\"run\" data-run-id=\"1\" data-final=\"true\""),
        "{html}"
    );
    assert!(
        html.contains(
            "<span class=\"badge\" id=\"run-status\" data-status=\"failed\">failed</span>"
        ),
        "{html}"
    );
    let why = &html[html.find("id=\"why\"").expect("a #why section")..];
    let why = &why[..why.find("</section>").unwrap()];
    println!("#why: {why}");
    assert!(why.contains("<dd id=\"why-stage\">unit-test"), "{why}");
    assert!(why.contains("<dd id=\"why-exit-code\">1</dd>"), "{why}");
    assert!(why.contains("<dd id=\"why-reason\">exit 1</dd>"), "{why}");
    assert!(why.contains("assertion failed: left == right"), "{why}");
    // Stages with status and duration; the skipped one too.
    assert!(html.contains("<tr data-stage=\"build\">"), "{html}");
    assert!(html.contains("data-status=\"passed\">passed</span>"));
    assert!(
        html.contains("<td class=\"num duration\">1.4 s</td>"),
        "{html}"
    );
    assert!(html.contains("data-status=\"skipped\">skipped</span>"));
    // Issue 17: the failed stage's lines are shown once: under Why, and the
    // log below leaves them out (its box closed, saying where they are).
    assert_eq!(
        html.matches("assertion failed: left == right").count(),
        1,
        "{html}"
    );
    assert!(
        html.contains("<details data-log-stage=\"unit-test\">"),
        "{html}"
    );
    assert!(
        html.contains("the last 3 are under <a href=\"#why\">"),
        "{html}"
    );
    // The log, escaped: a step's output never becomes markup.
    assert!(html.contains("id=\"log\""));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("compiled &lt;ok&gt;"));

    // The runs list shows each stage's status and duration.
    let (response, html) = send(&f.app, get("/runs", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_page(&response, &html);
    assert!(
        html.contains("data-stage=\"unit-test\" data-status=\"failed\""),
        "{html}"
    );
    assert!(html.contains("2.5 s"), "{html}");
    // The workloads page, its latest run.
    let (_, html) = send(&f.app, get("/", Some(&session))).await;
    assert!(html.contains("<tr data-workload=\"app\">"), "{html}");
    assert!(html.contains("data-status=\"failed\""), "{html}");

    // A run that does not exist, and an id that is not one.
    let (response, html) = send(&f.app, get("/runs/99", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_page(&response, &html);
    let (response, _) = send(&f.app, get("/runs/x", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_page_renders_for_an_admin_with_a_bearer_token_too() {
    let f = fixture();
    failed_run(&f.store);
    for path in [
        "/",
        "/runs",
        "/runs/1",
        "/environments",
        "/exposures",
        "/audit",
    ] {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", f.admin_token))
            .body(Body::empty())
            .unwrap();
        let (response, html) = send(&f.app, request).await;
        println!("GET {path} (bearer) -> {}", response.status());
        assert_eq!(response.status(), StatusCode::OK, "{path}: {html}");
        assert_page(&response, &html);
        // No session, so no logout form (and no CSRF token to leak).
        assert!(!html.contains("action=\"/logout\""), "{path}");
    }
    let (response, html) = send(
        &f.app,
        Request::get("/artifacts/not-a-digest")
            .header(header::AUTHORIZATION, format!("Bearer {}", f.admin_token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{html}");
    let (response, _) = send(
        &f.app,
        Request::get(format!("/artifacts/sha256:{}", "ab".repeat(32)))
            .header(header::AUTHORIZATION, format!("Bearer {}", f.admin_token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_are_served_with_their_types_and_cache() {
    let f = fixture();
    for (path, content_type, needle) in [
        ("/assets/cairn.css", "text/css; charset=utf-8", "#log"),
        (
            "/assets/cairn.js",
            "text/javascript; charset=utf-8",
            "EventSource",
        ),
    ] {
        let (response, body) = send(&f.app, get(path, None)).await;
        println!("GET {path} -> {} ({} bytes)", response.status(), body.len());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], content_type);
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=3600"
        );
        assert!(
            response
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY)
        );
        assert!(body.contains(needle));
    }
    // The script never writes HTML.
    let (_, js) = send(&f.app, get("/assets/cairn.js", None)).await;
    assert!(
        !js.contains("innerHTML") && !js.contains("insertAdjacentHTML") && !js.contains("eval(")
    );
}

#[tokio::test]
async fn environments_audit_and_artifacts_show_their_records() {
    let f = fixture();
    let run = failed_run(&f.store);
    let t = 1_700_000_100_000;
    let old = format!("sha256:{}", "a1".repeat(32));
    let new = format!("sha256:{}", "b2".repeat(32));
    let denied = format!("sha256:{}", "c3".repeat(32));
    f.store
        .add_image(&cairn_model::ImageRecord {
            digest: new.clone(),
            workload: "app".to_owned(),
            run: Some(run),
            commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            base_name: "debian".to_owned(),
            base_digest: format!("sha256:{}", "d4".repeat(32)),
            created_at_ms: t,
            rebased_from: None,
        })
        .unwrap();
    f.store
        .add_evidence(&cairn_model::NewEvidence {
            run: Some(run),
            stage: None,
            predicate_type: "https://slsa.dev/provenance/v1".to_owned(),
            subject_name: "app".to_owned(),
            subject_digest: new.clone(),
            bundle: b"{}".to_vec(),
            created_at_ms: t,
        })
        .unwrap();
    for (i, (digest, previous, kind)) in [(&old, None, "deploy"), (&new, Some(&old), "deploy")]
        .into_iter()
        .enumerate()
    {
        f.store
            .add_deployment(&cairn_model::DeploymentRecord {
                workload: "app".to_owned(),
                environment: "production".to_owned(),
                digest: digest.clone(),
                previous_digest: previous.cloned(),
                kind: kind.to_owned(),
                actor: "alice <admin>".to_owned(),
                target: "local".to_owned(),
                detail: "http://127.0.0.1:8080".to_owned(),
                log_index: i as u64,
                deployed_at_ms: t + i as i64,
                status: cairn_model::DeploymentStatus::Deployed,
                token: None,
                reason: None,
            })
            .unwrap();
    }
    // A break-glass deployment in staging: marked as overridden.
    f.store
        .add_deployment(&cairn_model::DeploymentRecord {
            workload: "app".to_owned(),
            environment: "staging".to_owned(),
            digest: format!("sha256:{}", "c3".repeat(32)),
            previous_digest: None,
            kind: "override".to_owned(),
            actor: "rita".to_owned(),
            target: "local".to_owned(),
            detail: "http://127.0.0.1:8081".to_owned(),
            log_index: 5,
            deployed_at_ms: t,
            status: cairn_model::DeploymentStatus::Deployed,
            token: None,
            reason: None,
        })
        .unwrap();
    f.store
        .add_change(&cairn_model::ChangeRecord {
            kind: "denied".to_owned(),
            workload: "app".to_owned(),
            environment: "production".to_owned(),
            actor: "admin".to_owned(),
            from_digest: Some(new.clone()),
            to_digest: denied.clone(),
            log_index: 2,
            at_ms: t + 10,
            json: serde_json::json!({
                "outcome": "denied",
                // The signed decision as promotion records it.
                "decision": {
                    "workload": "app", "environment": "production", "artifact": denied,
                    "actor": "admin", "intent": "promote", "allow": false,
                    "reasons": [{ "rule": "tests-passed", "message": "run 1 failed <unit-test>" }],
                    "overridden": null,
                    "policyDigest": format!("sha256:{}", "d".repeat(64)),
                    "inputDigest": format!("sha256:{}", "e".repeat(64)),
                    "advisoryDb": null,
                    "decidedAt": "2023-11-14T22:15:00Z"
                }
            })
            .to_string(),
        })
        .unwrap();
    let session = log_in(&f.app, &f.admin_token).await;

    let (response, html) = send(&f.app, get("/environments", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_page(&response, &html);
    let current = &html[html.find("id=\"current\"").unwrap()..html.find("id=\"history\"").unwrap()];
    println!("environments, deployed now: {} bytes", current.len());
    assert!(
        current.contains("data-environment=\"production\""),
        "{current}"
    );
    assert!(
        current.contains(&format!("href=\"/artifacts/{new}\"")),
        "{current}"
    );
    assert!(
        !current.contains(&old),
        "only the newest is current: {current}"
    );
    assert!(current.contains("alice &lt;admin&gt;"), "{current}");
    let staging = &current[current.find("data-environment=\"staging\"").unwrap()..];
    assert!(
        staging.contains("data-overridden=\"true\""),
        "the override is marked: {current}"
    );
    let production = &current[current.find("data-environment=\"production\"").unwrap()..];
    let production = &production[..production.find("</tr>").unwrap()];
    assert!(!production.contains("data-overridden"), "{production}");

    let (response, html) = send(&f.app, get("/audit", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_page(&response, &html);
    assert!(html.contains("href=\"/log/checkpoint\""));
    assert!(html.contains("data-kind=\"denied\""), "{html}");
    assert!(
        html.contains("<td class=\"num log-index\">2</td>"),
        "{html}"
    );
    assert!(html.contains("run 1 failed &lt;unit-test&gt;"), "{html}");

    let (response, html) = send(&f.app, get(&format!("/artifacts/{new}"), Some(&session))).await;
    println!("GET /artifacts/{new} -> {}", response.status());
    assert_eq!(response.status(), StatusCode::OK, "{html}");
    assert_page(&response, &html);
    assert!(html.contains("https://slsa.dev/provenance/v1"), "{html}");
    assert!(html.contains("id=\"sbom\""));
    assert!(html.contains("id=\"no-findings\""));

    // Someone who may view only another workload may not see this artifact.
    let other = create_identity(
        &*f.store,
        &DataDir::at(f._dir.path()),
        Some(&cairn_engine::access::authenticate(&*f.store, &f.admin_token).unwrap()),
        "carol",
        IdentityKind::User,
        t,
    )
    .unwrap();
    f.store.upsert_workload("other", "/src/other", t).unwrap();
    f.store
        .add_binding(&cairn_model::RoleBinding {
            identity: "carol".to_owned(),
            role: "viewer".to_owned(),
            workload: Some("other".to_owned()),
            environment: None,
        })
        .unwrap();
    let carol = log_in(&f.app, other.token.expose()).await;
    for path in [format!("/artifacts/{new}"), format!("/runs/{}", run.0)] {
        let (response, html) = send(&f.app, get(&path, Some(&carol))).await;
        println!("GET {path} as carol -> {}", response.status());
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}: {html}");
        assert_page(&response, &html);
        assert!(html.contains("id=\"reason\""), "{html}");
    }
    for path in ["/", "/runs", "/environments", "/audit"] {
        let (response, html) = send(&f.app, get(path, Some(&carol))).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(!html.contains("data-workload=\"app\""), "{path}: {html}");
        assert!(!html.contains(&new), "{path} shows app's artifact: {html}");
    }
}

#[tokio::test]
async fn a_running_run_page_is_ready_for_the_live_script() {
    let f = fixture();
    let t = 1_700_000_000_000;
    f.store.upsert_workload("app", "/src/app", t).unwrap();
    let (run, stages) = f
        .store
        .create_run(&NewRun {
            workload: "app".to_owned(),
            commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            git_ref: None,
            created_at_ms: t,
            stages: ["build", "unit-test"]
                .iter()
                .map(|name| NewStage {
                    name: (*name).to_owned(),
                    kind: StageKind::Build,
                    command: None,
                })
                .collect(),
            trigger: Trigger::Cli,
        })
        .unwrap();
    f.store.start_run(run.id, "test:1:1", t + 1).unwrap();
    f.store.start_stage(stages[0].id, t + 2).unwrap();
    f.store
        .append_logs(
            stages[0].id,
            &[LogLine {
                seq: 0,
                stream: LogStream::Stdout,
                at_ms: t + 3,
                text: b"step 1".to_vec(),
            }],
        )
        .unwrap();
    let session = log_in(&f.app, &f.admin_token).await;
    let (response, html) = send(&f.app, get("/runs/1", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_page(&response, &html);
    assert!(html.contains("data-final=\"false\""), "{html}");
    assert!(
        html.contains("id=\"run-status\" data-status=\"running\""),
        "{html}"
    );
    assert!(html.contains("id=\"live-note\""));
    assert!(!html.contains("id=\"why\""));
    // Each stage's log box says where the server stopped, so the stream's
    // replay is not shown twice; a stage without lines yet has its box ready.
    assert!(html.contains("<pre class=\"lines\" data-last-seq=\"0\"><span class=\"line\" data-seq=\"0\" data-stream=\"stdout\">step 1\n</span></pre>"), "{html}");
    assert!(
        html.contains("<details data-log-stage=\"unit-test\" open>"),
        "{html}"
    );
    assert!(html.contains("data-last-seq=\"-1\""), "{html}");
    assert!(html.contains("<tr data-stage=\"unit-test\">"));

    // The event stream the script opens takes the session cookie.
    f.store
        .finish_stage(stages[0].id, StageStatus::Passed, Some(0), None, t + 10)
        .unwrap();
    f.store
        .finish_run(run.id, RunStatus::Succeeded, None, t + 11)
        .unwrap();
    let (response, body) = send(&f.app, get("/api/runs/1/events", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    println!(
        "events: {}",
        body.lines()
            .filter(|l| l.starts_with("event:"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(body.contains("event: end"), "{body}");
    assert!(body.contains("\"status\":\"succeeded\""), "{body}");
}

#[tokio::test]
async fn the_run_form_needs_the_sessions_csrf_token() {
    let f = fixture();
    let session = log_in(&f.app, &f.admin_token).await;
    let (_, home) = send(&f.app, get("/", Some(&session))).await;
    let csrf = form_csrf(&home);
    for (form, origin, why) in [
        (String::new(), Some("http://cairn.test"), "no token"),
        (
            "csrf=forged".to_owned(),
            Some("http://cairn.test"),
            "a wrong token",
        ),
        (
            format!("csrf={csrf}"),
            Some("http://evil.example"),
            "another site",
        ),
    ] {
        let (response, html) = send(
            &f.app,
            post_form("/workloads/hello/runs", Some(&session), origin, &form),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{why}: {html}");
        println!("POST /workloads/hello/runs with {why} -> 403");
    }
    // With the token, the request reaches the engine (here: no such workload).
    let (response, html) = send(
        &f.app,
        post_form(
            "/workloads/hello/runs",
            Some(&session),
            Some("http://cairn.test"),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "{html}");
    assert!(html.contains("not onboarded"), "{html}");
    assert!(f.store.runs(&Default::default()).unwrap().is_empty());
}

fn post_json(path: &str, cookie: &str, origin: Option<&str>, csrf: Option<&str>) -> Request<Body> {
    let mut b = Request::post(path)
        .header(header::HOST, "cairn.test")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, cookie);
    if let Some(o) = origin {
        b = b.header(header::ORIGIN, o);
    }
    if let Some(t) = csrf {
        b = b.header("x-csrf-token", t);
    }
    b.body(Body::from(r#"{"dir":"/nonexistent"}"#)).unwrap()
}

#[tokio::test]
async fn cookie_authenticated_api_posts_need_the_csrf_token_and_a_same_site_origin() {
    let f = fixture();
    let session = log_in(&f.app, &f.admin_token).await;
    let (_, html) = send(&f.app, get("/", Some(&session))).await;
    let csrf = form_csrf(&html);
    // What a page on another site can make a browser send: the cookie, no token.
    for (what, origin, token) in [
        ("no CSRF token", Some("http://cairn.test"), None),
        ("no Origin and no token", None, None),
        ("a wrong token", Some("http://cairn.test"), Some("0000")),
        (
            "another site's Origin",
            Some("https://evil.example"),
            Some(csrf.as_str()),
        ),
    ] {
        let (response, body) =
            send(&f.app, post_json("/api/workloads", &session, origin, token)).await;
        println!(
            "cookie POST /api/workloads with {what}: {} {body}",
            response.status()
        );
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}: {body}");
        assert!(
            body.contains("CSRF") || body.contains("cross-site"),
            "{what}: {body}"
        );
    }
    assert!(
        f.store.workloads().unwrap().is_empty(),
        "nothing was onboarded"
    );
    // The session's own token from this site passes the check (the request
    // then fails on its body, not on CSRF).
    let (response, body) = send(
        &f.app,
        post_json(
            "/api/workloads",
            &session,
            Some("http://cairn.test"),
            Some(&csrf),
        ),
    )
    .await;
    println!("with the session's token: {} {body}", response.status());
    assert_ne!(response.status(), StatusCode::FORBIDDEN, "{body}");
    // A token-authenticated program needs none of this.
    let request = Request::post("/api/workloads")
        .header(header::HOST, "cairn.test")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.admin_token))
        .body(Body::from(r#"{"dir":"/nonexistent"}"#))
        .unwrap();
    let (response, body) = send(&f.app, request).await;
    assert_ne!(response.status(), StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn the_login_page_names_the_command_that_exists() {
    let f = fixture();
    let (_, html) = send(&f.app, get("/login", None)).await;
    assert!(html.contains("cairn identity add"), "{html}");
    assert!(!html.contains("identity create"), "{html}");
}

/// A finding on what runs in staging, stored as the engine stores it; the
/// component's purl carries markup, which the page must escape.
fn exposed(store: &SqliteStore) -> String {
    fixture::exposed(store, "app")
}

/// The exposures page: each exposure with its environment, severity, fix,
/// deadline and a clock the page's script counts (`data-deadline-ms`), text
/// from the store escaped, no inline code; only for those who may see it.
#[tokio::test]
async fn the_exposures_page_shows_each_exposure_with_its_deadline_clock() {
    let f = fixture();
    let digest = exposed(&f.store);
    let (response, html) = send(
        &f.app,
        Request::get("/exposures")
            .header(header::AUTHORIZATION, format!("Bearer {}", f.admin_token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{html}");
    assert_page(&response, &html);
    println!("{}", &html[html.find("<table id=\"exposures\"").unwrap()..]);
    assert!(
        html.contains("data-advisory=\"GHSA-cair-n000-0009\""),
        "{html}"
    );
    assert!(html.contains("data-environment=\"staging\""), "{html}");
    assert!(html.contains("data-overdue=\"false\""), "{html}");
    assert!(
        html.contains("class=\"clock\" data-deadline-ms=\""),
        "{html}"
    );
    assert!(html.contains("h59m"), "about 24 h left: {html}");
    assert!(html.contains(&digest[..19]), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("aria-current=\"page\">Exposures"), "{html}");
    // One who may see nothing gets the page without the exposure.
    let (_, html) = send(
        &f.app,
        Request::get("/exposures")
            .header(header::AUTHORIZATION, format!("Bearer {}", f.nobody_token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(!html.contains("GHSA-cair-n000-0009"), "{html}");
    // The script counts the clock; the stylesheet colours an overdue one.
    let (_, js) = send(&f.app, get("/assets/cairn.js", None)).await;
    assert!(
        js.contains("data-deadline-ms") && js.contains("OVERDUE by"),
        "{js}"
    );
}

/// The artifact page reads at most 1000 findings of its own digest (it read
/// every finding kept, of every artifact, before) and says when there are more;
/// the API's findings of an artifact are bounded too and page with `limit`.
#[tokio::test]
async fn the_artifact_page_reads_a_bounded_number_of_its_findings() {
    use cairn_store::{FindingKey, MatchScope, NewFinding, NewSbom};
    let f = fixture();
    f.store.upsert_workload("app", "/repo", 0).unwrap();
    let sbom_of = |digest: &str| NewSbom {
        subject_name: "app".into(),
        subject_digest: digest.to_owned(),
        workload: Some("app".into()),
        environment: None,
        created_at_ms: 0,
        format: "cyclonedx".into(),
        document: digest.as_bytes().to_vec(),
        components: vec![(
            "npm".into(),
            "left-pad".into(),
            "1.3.0".into(),
            "pkg:npm/left-pad@1.3.0".into(),
        )],
    };
    let digest = format!("sha256:{}", "f1".repeat(32));
    let sbom = f.store.add_sbom(&sbom_of(&digest)).unwrap();
    let other = f
        .store
        .add_sbom(&sbom_of(&format!("sha256:{}", "f2".repeat(32))))
        .unwrap();
    let finding = |advisory_id: String, sbom_id: i64| NewFinding {
        key: FindingKey {
            advisory_id,
            sbom_id,
            ecosystem: "npm".into(),
            name: "left-pad".into(),
            version: "1.3.0".into(),
        },
        purl: "pkg:npm/left-pad@1.3.0".into(),
        kind: "vulnerability".into(),
        severity: Some("high".into()),
    };
    let mut found: Vec<NewFinding> = (0..1_001)
        .map(|i| finding(format!("GHSA-{i:04}"), sbom))
        .collect();
    found.push(finding("GHSA-OTHER".into(), other));
    f.store
        .record_matches(
            &MatchScope {
                packages: vec![("npm".into(), "left-pad".into())],
                ..MatchScope::default()
            },
            &found,
            1,
        )
        .unwrap();
    let as_admin = |uri: String| {
        Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", f.admin_token))
            .body(Body::empty())
            .unwrap()
    };
    let (response, html) = send(&f.app, as_admin(format!("/artifacts/{digest}"))).await;
    assert_eq!(response.status(), StatusCode::OK, "{html}");
    let shown = html.matches("<td><code>GHSA-").count();
    println!("GET /artifacts/{digest}: {shown} findings shown");
    assert_eq!(shown, 1_000);
    assert!(html.contains("GHSA-0999") && !html.contains("GHSA-1000"));
    assert!(!html.contains("GHSA-OTHER"), "another artifact's finding");
    let note = &html[html.find("id=\"findings-truncated\"").expect("no note")..];
    println!("{}", &note[..note.find("</p>").unwrap()]);

    let (response, body) = send(
        &f.app,
        as_admin(format!("/api/artifacts/{digest}/findings?limit=2")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 2, "{body}");
    let (_, body) = send(
        &f.app,
        as_admin(format!("/api/artifacts/{digest}/findings")),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 1_000);
    // One who may not see `app` sees neither, however few findings are read.
    let (response, _) = send(
        &f.app,
        Request::get(format!("/api/artifacts/{digest}/findings?limit=0"))
            .header(header::AUTHORIZATION, format!("Bearer {}", f.nobody_token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
