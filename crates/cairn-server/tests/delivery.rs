//! The delivery view through the router: the pipeline page and the overview
//! for each role (which buttons exist), the forms' CSRF and Origin defences,
//! a gate that cannot decide shown as a denial, a target that does not answer
//! shown as health "unknown", and bad input (very long names, a workload
//! with nothing deployed). The walk through a real promotion is the browser
//! test (`cairn-cli/tests/browser.rs`).
#![allow(clippy::unwrap_used)]

use crate::fixture;

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

async fn post(
    server: &Server,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
    form: &str,
) -> Answer {
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
    let commit = fixture::git(&server.repo, &["rev-parse", "HEAD"])
        .trim()
        .to_owned();
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
        assert!(
            html.contains(&format!("data-commit=\"{commit}\"")),
            "{html}"
        );
        assert!(html.contains("not reviewed"), "{html}");
        // A workload with nothing deployed: each environment says so.
        assert_eq!(html.matches("Nothing deployed.").count(), 2, "{html}");
        assert_eq!(
            html.contains("form class=\"approve\""),
            approve,
            "{who}: {html}"
        );
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
            (
                "a wrong token",
                None,
                format!("csrf={}&{fields}", "0".repeat(64)),
            ),
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
    assert!(
        server
            .store()
            .deployments(None, None, 10)
            .unwrap()
            .is_empty()
    );
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
    println!(
        "health: staging (kubernetes) {}, production (local, not running) {}",
        health[0], health[1]
    );
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
    assert!(
        answer
            .text()
            .contains("`action` is `promote` or `rollback`")
    );
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
        &format!(
            "csrf={release_csrf}&env=staging&image=x&override={}",
            "r".repeat(5000)
        ),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    println!("long names and bad forms: 404/400 with the reason");
}

/// `n` runs of `hello`: every third failed, every other one queued by the API.
fn many_runs(server: &Server, n: usize) -> Vec<cairn_model::RunId> {
    let t = now_ms();
    (0..n)
        .map(|i| {
            let trigger = if i % 2 == 0 {
                Trigger::Api {
                    actor: "developer".into(),
                }
            } else {
                Trigger::Cli
            };
            let (run, _) = server
                .store()
                .create_run(&NewRun {
                    workload: "hello".to_owned(),
                    commit: format!("{:040x}", i + 1),
                    git_ref: None,
                    // Many share a creation time: the id orders them.
                    created_at_ms: t + i64::try_from(i / 7).unwrap(),
                    stages: Vec::new(),
                    trigger,
                })
                .unwrap();
            if i % 3 == 0 {
                server.store().start_run(run.id, "w", t).unwrap();
                server
                    .store()
                    .finish_run(run.id, RunStatus::Failed, Some("boom"), t + 1)
                    .unwrap();
            }
            run.id
        })
        .collect()
}

/// The run ids a runs page lists, and its next page's link.
fn runs_on(html: &str) -> (Vec<i64>, Option<String>) {
    let ids = html
        .split("data-run=\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap().parse().unwrap())
        .collect();
    let next = html
        .split("id=\"next-page\" rel=\"next\" href=\"")
        .nth(1)
        .map(|r| r.split('"').next().unwrap().replace("&amp;", "&"));
    (ids, next)
}

#[tokio::test]
async fn thousands_of_runs_are_paged_and_filtered_by_bounded_queries() {
    let server = Server::new();
    let made = many_runs(&server, 2_500);
    let (cookie, _) = session(&server, "viewer").await;
    // Every run once, newest first, 50 a page.
    let mut seen = Vec::new();
    let mut next = Some("/runs".to_owned());
    let mut pages = 0;
    while let Some(path) = next {
        let (ids, more) = runs_on(&page(&server, &path, &cookie).await);
        assert!(ids.len() <= 50, "{path}: {} rows", ids.len());
        seen.extend(ids);
        next = more;
        pages += 1;
    }
    let mut expected: Vec<i64> = made.iter().map(|r| r.0).collect();
    expected.reverse();
    assert_eq!(seen, expected);
    assert_eq!(pages, 50);
    // Filters, alone and together, paged the same way.
    let failed = made.iter().enumerate().filter(|(i, _)| i % 3 == 0).count();
    let mut count = 0;
    let mut next = Some("/runs?status=failed&trigger=api&workload=hello".to_owned());
    while let Some(path) = next {
        let html = page(&server, &path, &cookie).await;
        assert!(
            html.contains("<option value=\"failed\" selected>"),
            "{html}"
        );
        let (ids, more) = runs_on(&html);
        count += ids.len();
        next = more;
    }
    let failed_api = made.iter().enumerate().filter(|(i, _)| i % 6 == 0).count();
    assert_eq!(count, failed_api);
    let (ids, _) = runs_on(&page(&server, &format!("/runs?commit={:040x}", 42), &cookie).await);
    assert_eq!(ids, vec![made[41].0]);
    // 39 digits: the commits 0x90 to 0x9f.
    let prefix = format!("{:039x}", 9);
    let (ids, _) = runs_on(&page(&server, &format!("/runs?commit={prefix}"), &cookie).await);
    assert_eq!(ids.len(), 16, "{prefix}");
    println!(
        "2500 runs: {pages} pages of at most 50, each run once; {failed} failed, {failed_api} failed by the API; a commit found by its prefix"
    );
    // Bad filters are refused with the reason.
    for (query, why) in [
        ("commit=xyz", "hex digits"),
        ("trigger=bogus", "one of cli, api, webhook, push"),
        ("status=lost", "run status"),
        ("after=12", "`after` is"),
        ("colour=red", "unknown field"),
    ] {
        let answer = get(&server, &format!("/runs?{query}"), &cookie).await;
        assert_eq!(answer.status, 400, "{query}");
        assert!(answer.text().contains(why), "{query}: {}", answer.text());
    }
    let answer = get(
        &server,
        &format!("/runs?workload={}", "w".repeat(5000)),
        &cookie,
    )
    .await;
    assert_eq!(answer.status, 400);

    // The API takes the same filters and pages by its `next` cursor.
    let mut seen = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let path = format!("/api/runs?status=failed&trigger=api&limit=100{after}");
        let answer = server.call("GET", &path, Some("viewer"), None).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        let body = answer.json();
        let runs = body["runs"].as_array().unwrap();
        assert!(runs.len() <= 100);
        seen.extend(runs.iter().map(|r| r["id"].as_i64().unwrap()));
        pages += 1;
        match body["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    let mut expected: Vec<i64> = made
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 6 == 0)
        .map(|(_, r)| r.0)
        .collect();
    expected.reverse();
    assert_eq!(seen, expected);
    let answer = server
        .call(
            "GET",
            &format!("/api/runs?commit={prefix}"),
            Some("viewer"),
            None,
        )
        .await;
    assert_eq!(answer.json()["runs"].as_array().unwrap().len(), 16);
    for (query, why) in [
        ("commit=xyz", "hex digits"),
        ("trigger=bogus", "one of cli, api, webhook, push"),
        ("after=12", "`after` is"),
    ] {
        let answer = server
            .call("GET", &format!("/api/runs?{query}"), Some("viewer"), None)
            .await;
        assert_eq!(answer.status, 400, "{query}");
        assert!(answer.text().contains(why), "{query}: {}", answer.text());
    }
    println!(
        "the API: {} failed API runs in {pages} pages by `next`; the same filters refused the same way",
        seen.len()
    );
}

#[tokio::test]
async fn a_very_long_log_line_and_name_render_escaped_and_whole() {
    let server = Server::new();
    let long_name = "n".repeat(3000);
    server
        .store()
        .upsert_workload(&long_name, "/src/long", now_ms())
        .unwrap();
    let (run, stages) = server
        .store()
        .create_run(&NewRun {
            workload: long_name.clone(),
            commit: "0".repeat(40),
            git_ref: None,
            created_at_ms: now_ms(),
            stages: vec![cairn_model::NewStage {
                name: "build".into(),
                kind: cairn_model::StageKind::Build,
                command: None,
            }],
            trigger: Trigger::Cli,
        })
        .unwrap();
    server.store().start_run(run.id, "w", now_ms()).unwrap();
    server.store().start_stage(stages[0].id, now_ms()).unwrap();
    let line = format!("<b>{}</b>", "x".repeat(100_000));
    server
        .store()
        .append_logs(
            stages[0].id,
            &[cairn_model::LogLine {
                seq: 0,
                stream: cairn_model::LogStream::Stdout,
                at_ms: now_ms(),
                text: line.clone().into_bytes(),
            }],
        )
        .unwrap();
    let (cookie, _) = session(&server, "viewer").await;
    let html = page(&server, &format!("/runs/{}", run.id.0), &cookie).await;
    assert!(html.contains(&format!("&lt;b&gt;{}&lt;/b&gt;", "x".repeat(100_000))));
    let html = page(&server, &format!("/workloads/{long_name}"), &cookie).await;
    assert!(html.contains(&long_name));
    let html = page(&server, "/", &cookie).await;
    assert!(html.contains(&format!("href=\"/workloads/{long_name}\"")));
    println!("a 100 000-byte log line and a 3000-byte workload name: shown whole, escaped");
}

#[tokio::test]
async fn the_artifact_page_verifies_each_statement_and_searches_its_sbom() {
    use cairn_evidence::{Statement, Subject, sbom::CycloneDxBom};
    let server = Server::new();
    let hex = "ab".repeat(32);
    let digest = format!("sha256:{hex}");
    let audit =
        cairn_engine::audit::AuditLog::open_waiting(&server.data, cairn_engine::audit::LOCK_WAIT)
            .unwrap();
    let key = cairn_engine::keys::KeyStore::new(&server.data)
        .load_or_create(&audit)
        .unwrap()
        .0;
    drop(audit);
    let bom = CycloneDxBom(serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.6",
        "components": [
            {"type": "library", "name": "zlib", "version": "1.2.13", "purl": "pkg:deb/debian/zlib@1.2.13", "licenses": [{"license": {"id": "Zlib"}}]},
            {"type": "library", "name": "openssl", "version": "3.0.11", "purl": "pkg:deb/debian/openssl@3.0.11"},
            {"type": "library", "name": "<script>", "version": "1", "purl": "pkg:npm/x@1"},
        ],
    }));
    let statement = Statement::new(
        vec![Subject::sha256(
            "hello",
            cairn_evidence::Digest::from_hex(&hex).unwrap(),
        )],
        bom,
    )
    .unwrap();
    cairn_engine::certify::sign_and_keep(
        &server.data,
        server.store(),
        &key,
        &statement,
        cairn_engine::certify::Filed {
            run: None,
            stage: None,
            subject_name: "hello",
            subject_digest: &digest,
        },
    )
    .unwrap();
    // A bundle filed under the digest that is no bundle at all.
    server
        .store()
        .add_evidence(&cairn_model::NewEvidence {
            run: None,
            stage: None,
            predicate_type: "https://slsa.dev/provenance/v1".to_owned(),
            subject_name: "hello".to_owned(),
            subject_digest: digest.clone(),
            bundle: b"{\"forged\": true}".to_vec(),
            created_at_ms: now_ms(),
        })
        .unwrap();
    let (cookie, _) = session(&server, "viewer").await;
    let html = page(&server, &format!("/artifacts/{digest}"), &cookie).await;
    let verified: Vec<&str> = html
        .split("data-verified=\"")
        .skip(1)
        .map(|v| v.split('"').next().unwrap())
        .collect();
    assert_eq!(verified, ["true", "false"], "{html}");
    assert!(html.contains("does not verify"), "{html}");
    assert!(html.contains("data-shown=\"3\" data-total=\"3\""), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    let html = page(&server, &format!("/artifacts/{digest}?q=ZLIB"), &cookie).await;
    assert!(html.contains("data-shown=\"1\" data-total=\"3\""), "{html}");
    assert!(html.contains("pkg:deb/debian/zlib@1.2.13"));
    assert!(!html.contains("openssl@3.0.11"));
    let answer = get(
        &server,
        &format!("/artifacts/{digest}?q={}", "q".repeat(300)),
        &cookie,
    )
    .await;
    assert_eq!(answer.status, 400);
    println!(
        "artifact page: the signed SBOM verified, the forged bundle does not verify; the search finds zlib alone"
    );
}

#[tokio::test]
async fn an_override_stays_marked_on_the_run_the_environment_and_the_audit_trail() {
    let server = Server::new();
    let commit = green_run(&server);
    let run = server
        .store()
        .runs(&cairn_store::RunFilter::default())
        .unwrap()[0]
        .id;
    let digest = format!("sha256:{}", "c3".repeat(32));
    server
        .store()
        .add_image(&cairn_model::ImageRecord {
            digest: digest.clone(),
            workload: "hello".into(),
            run: Some(run),
            commit,
            base_name: "tiny".into(),
            base_digest: format!("sha256:{}", "d4".repeat(32)),
            created_at_ms: now_ms(),
            rebased_from: None,
        })
        .unwrap();
    server
        .store()
        .add_deployment(&DeploymentRecord {
            workload: "hello".into(),
            environment: "staging".into(),
            digest: digest.clone(),
            previous_digest: None,
            kind: "override".into(),
            actor: "release-manager".into(),
            target: "gitops".into(),
            detail: "0123abcd".into(),
            log_index: 7,
            deployed_at_ms: now_ms(),
            status: DeploymentStatus::Deployed,
            token: Some("override-token".into()),
            reason: None,
        })
        .unwrap();
    server
        .store()
        .add_change(&cairn_model::ChangeRecord {
            kind: "override".into(),
            workload: "hello".into(),
            environment: "staging".into(),
            actor: "release-manager".into(),
            from_digest: None,
            to_digest: digest.clone(),
            log_index: 7,
            at_ms: now_ms(),
            json: serde_json::json!({"decision": {"overridden": "incident 42: the fix must ship"}})
                .to_string(),
        })
        .unwrap();
    let (cookie, _) = session(&server, "viewer").await;
    let run_page = page(&server, &format!("/runs/{}", run.0), &cookie).await;
    assert!(run_page.contains("data-overridden=\"true\""), "{run_page}");
    assert!(run_page.contains("despite the gate"), "{run_page}");
    let pipeline = page(&server, "/workloads/hello", &cookie).await;
    assert!(
        pipeline.contains("incident 42: the fix must ship"),
        "{pipeline}"
    );
    // GitOps: the health is the commit the repository holds.
    assert!(pipeline.contains("data-health=\"committed\""), "{pipeline}");
    assert!(pipeline.contains("0123abcd"), "{pipeline}");
    let overview = page(&server, "/", &cookie).await;
    assert!(overview.contains("data-overridden=\"true\""), "{overview}");
    let audit = page(&server, "/audit", &cookie).await;
    assert!(
        audit.contains("OVERRIDDEN: incident 42: the fix must ship"),
        "{audit}"
    );
    println!("an override: marked on the run, the pipeline, the overview and the audit trail");
}

#[tokio::test]
async fn open_exposures_show_on_the_pipeline_with_their_clocks_and_on_the_overview() {
    let server = Server::new();
    fixture::exposed(server.store(), "hello");
    let (cookie, _) = session(&server, "viewer").await;
    let html = page(&server, "/workloads/hello", &cookie).await;
    let staging = html
        .split("data-environment=\"staging\"")
        .nth(1)
        .unwrap()
        .split("data-environment=\"production\"")
        .next()
        .unwrap();
    assert!(staging.contains("data-open=\"1\""), "{staging}");
    assert!(staging.contains("GHSA-cair-n000-0009"), "{staging}");
    let clock = staging
        .split("class=\"clock\" data-deadline-ms=\"")
        .nth(1)
        .unwrap();
    assert!(clock.contains("data-overdue=\"false\""), "{clock}");
    assert!(clock.contains(" left<"), "{clock}");
    let overview = page(&server, "/", &cookie).await;
    assert!(overview.contains("1 exposure(s)"), "{overview}");
    println!(
        "staging's open exposure on the pipeline with its clock: {}",
        clock.split('>').nth(1).unwrap().split('<').next().unwrap()
    );
}
