//! Forge webhooks through the whole router: pushes from GitHub, GitLab and
//! Gitea queue runs (delivery and run written together); bad signatures,
//! replays, oversized and malformed bodies and repositories that are not
//! onboarded are refused with problem+json, counted, and write nothing; an
//! approval by a linked forge login becomes signed review evidence about the
//! commit. No worker runs here: queued runs stay queued.

#![allow(clippy::unwrap_used)]

use crate::fixture;

use axum::body::Body;
use axum::http::Request;
use cairn_evidence::review::{REVIEW_PREDICATE_TYPE, commit_subject_digest};
use cairn_model::{RunStatus, Trigger};
use cairn_server::webhooks::MAX_WEBHOOK_BODY;
use cairn_server::webhooks::signature::sign;
use cairn_store::RunFilter;
use fixture::{Answer, Server};
use serde_json::json;

/// Each forge's own secret, as the fixture gives the server.
fn secret_of(forge: &str) -> &'static [u8] {
    match forge {
        "github" => b"s3cret-github",
        "gitlab" => b"s3cret-gitlab",
        "gitea" => b"s3cret-gitea",
        other => panic!("no forge {other}"),
    }
}
const FORGES: [&str; 3] = ["github", "gitlab", "gitea"];

/// How a test delivery authenticates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Good,
    Wrong,
    Missing,
    /// Signed with the GitLab secret (which GitLab sends in clear).
    OtherForges,
}

/// A delivery as `forge` sends it: its event and delivery headers, and its
/// signature (or token) over `body`.
fn delivery(forge: &str, event: &str, id: Option<&str>, body: &[u8], auth: Auth) -> Request<Body> {
    let secret: &[u8] = match auth {
        Auth::Wrong => b"not the secret",
        // GitLab's secret travels in clear: signing GitHub or Gitea deliveries
        // with it must not work.
        Auth::OtherForges => secret_of("gitlab"),
        _ => secret_of(forge),
    };
    let mut r = Request::builder()
        .method("POST")
        .uri(format!("/webhooks/{forge}"))
        .header("content-type", "application/json");
    let (event_h, id_h, sig_h, sig) = match forge {
        "github" => (
            "x-github-event",
            "x-github-delivery",
            "x-hub-signature-256",
            format!("sha256={}", sign(secret, body)),
        ),
        "gitea" => (
            "x-gitea-event",
            "x-gitea-delivery",
            "x-gitea-signature",
            sign(secret, body),
        ),
        "gitlab" => (
            "x-gitlab-event",
            "x-gitlab-event-uuid",
            "x-gitlab-token",
            String::from_utf8(secret.to_vec()).unwrap(),
        ),
        other => panic!("no forge {other}"),
    };
    r = r.header(event_h, event);
    if let Some(id) = id {
        r = r.header(id_h, id);
    }
    if auth != Auth::Missing {
        r = r.header(sig_h, sig);
    }
    r.body(Body::from(body.to_vec())).unwrap()
}

fn push_event(forge: &str) -> &'static str {
    if forge == "gitlab" {
        "Push Hook"
    } else {
        "push"
    }
}

/// A push of `after` to `git_ref` of `repository`, in `forge`'s shape.
fn push_body(forge: &str, repository: &str, git_ref: &str, after: &str) -> Vec<u8> {
    let body = if forge == "gitlab" {
        json!({ "ref": git_ref, "after": after, "project": { "path_with_namespace": repository } })
    } else {
        json!({ "ref": git_ref, "after": after, "repository": { "full_name": repository } })
    };
    serde_json::to_vec(&body).unwrap()
}

/// An approval of `commit` by `login`, in `forge`'s shape, with its event name.
fn approval(forge: &str, login: &str, commit: &str) -> (&'static str, Vec<u8>) {
    let (event, body) = match forge {
        "github" => (
            "pull_request_review",
            json!({
                "action": "submitted",
                "review": { "state": "approved", "commit_id": commit, "user": { "login": login } },
                "pull_request": { "head": { "sha": commit } },
                "repository": { "full_name": "acme/hello" },
            }),
        ),
        "gitea" => (
            "pull_request_review_approved",
            json!({
                "action": "reviewed",
                "pull_request": { "head": { "sha": commit } },
                "repository": { "full_name": "acme/hello" },
                "sender": { "login": login },
            }),
        ),
        _ => (
            "Merge Request Hook",
            json!({
                "user": { "username": login },
                "project": { "path_with_namespace": "acme/hello" },
                "object_attributes": { "action": "approved", "last_commit": { "id": commit } },
            }),
        ),
    };
    (event, serde_json::to_vec(&body).unwrap())
}

fn head(server: &Server) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&server.repo)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn all_runs(server: &Server) -> Vec<cairn_model::RunRecord> {
    server
        .store()
        .runs(&RunFilter {
            workload: None,
            status: None,
            limit: 100,
            ..Default::default()
        })
        .unwrap()
}

fn rejections(server: &Server, forge: &str, reason: &str) -> u64 {
    server.state.0.metrics.rejections(forge, reason)
}

/// Nothing was written: no delivery, no run.
fn nothing_written(server: &Server) {
    assert!(server.store().deliveries(100).unwrap().is_empty());
    assert!(all_runs(server).is_empty());
}

fn show(answer: &Answer) -> String {
    format!("{} {}", answer.status, answer.text())
}

#[tokio::test]
async fn a_push_from_each_forge_queues_a_run() {
    let server = Server::new();
    let commit = head(&server);
    for forge in FORGES {
        let id = format!("{forge}-delivery-1");
        let body = push_body(forge, "acme/hello", "refs/heads/main", &commit);
        let answer = server
            .send(delivery(
                forge,
                push_event(forge),
                Some(&id),
                &body,
                Auth::Good,
            ))
            .await;
        assert_eq!(answer.status, 202, "{}", show(&answer));
        let json = answer.json();
        println!("{forge} push answered {json}");
        assert_eq!(json["status"], "queued");
        assert_eq!(json["delivery"], id.as_str());
        let run_id = cairn_model::RunId(json["run"].as_i64().unwrap());
        let run = server.store().run(run_id).unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Queued);
        assert_eq!(run.workload, "hello");
        assert_eq!(run.commit, commit);
        assert_eq!(run.git_ref.as_deref(), Some("main"));
        assert_eq!(
            run.trigger,
            Trigger::Webhook {
                forge: forge.to_owned(),
                delivery: id.clone()
            }
        );
    }
    assert_eq!(all_runs(&server).len(), 3);
    let deliveries = server.store().deliveries(10).unwrap();
    assert_eq!(deliveries.len(), 3);
    assert!(deliveries.iter().all(|d| d.run.is_some()), "{deliveries:?}");
    assert_eq!(server.store().queued_count().unwrap(), 3);
}

#[tokio::test]
async fn bad_or_missing_signatures_are_refused_and_counted() {
    let server = Server::new();
    let commit = head(&server);
    for forge in FORGES {
        let body = push_body(forge, "acme/hello", "refs/heads/main", &commit);
        for (n, auth) in [Auth::Wrong, Auth::Missing].into_iter().enumerate() {
            let id = format!("{forge}-{n}");
            let answer = server
                .send(delivery(forge, push_event(forge), Some(&id), &body, auth))
                .await;
            let detail = answer.problem(401);
            println!("{forge}: {detail}");
        }
        assert_eq!(rejections(&server, forge, "bad_signature"), 2);
    }
    // A body changed after signing.
    let body = push_body("github", "acme/hello", "refs/heads/main", &commit);
    let mut request = delivery("github", "push", Some("tampered"), &body, Auth::Good);
    let mut tampered = body.clone();
    tampered.push(b' ');
    *request.body_mut() = Body::from(tampered);
    server.send(request).await.problem(401);
    assert_eq!(rejections(&server, "github", "bad_signature"), 3);
    nothing_written(&server);
    // And /metrics says so, for Prometheus.
    let metrics = server
        .call("GET", "/metrics", Some("viewer"), None)
        .await
        .text();
    for (forge, n) in [("github", 3), ("gitlab", 2), ("gitea", 2)] {
        let line = format!(
            "cairn_webhook_rejections_total{{forge=\"{forge}\",reason=\"bad_signature\"}} {n}"
        );
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
}

#[tokio::test]
async fn a_replayed_delivery_is_refused_and_queues_nothing_more() {
    let server = Server::new();
    let commit = head(&server);
    let body = push_body("github", "acme/hello", "refs/heads/main", &commit);
    let first = server
        .send(delivery("github", "push", Some("once"), &body, Auth::Good))
        .await;
    assert_eq!(first.status, 202, "{}", show(&first));
    let again = server
        .send(delivery("github", "push", Some("once"), &body, Auth::Good))
        .await;
    println!("replay: {}", again.problem(409));
    assert_eq!(all_runs(&server).len(), 1);
    assert_eq!(server.store().deliveries(10).unwrap().len(), 1);
    assert_eq!(rejections(&server, "github", "replay"), 1);
    let metrics = server
        .call("GET", "/metrics", Some("viewer"), None)
        .await
        .text();
    assert!(
        metrics.contains("cairn_webhook_rejections_total{forge=\"github\",reason=\"replay\"} 1"),
        "{metrics}"
    );

    // The same id from another forge is another delivery; GitLab's id may come
    // as an Idempotency-Key.
    let body = push_body("gitlab", "acme/hello", "refs/heads/main", &commit);
    let mut request = delivery("gitlab", "Push Hook", None, &body, Auth::Good);
    request
        .headers_mut()
        .insert("idempotency-key", "once".parse().unwrap());
    let answer = server.send(request).await;
    assert_eq!(answer.status, 202, "{}", show(&answer));
    let mut request = delivery("gitlab", "Push Hook", None, &body, Auth::Good);
    request
        .headers_mut()
        .insert("idempotency-key", "once".parse().unwrap());
    server.send(request).await.problem(409);
    assert_eq!(all_runs(&server).len(), 2);
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let server = Server::new();
    let big = vec![b' '; MAX_WEBHOOK_BODY + 1];
    // Declared too large: refused before reading.
    let mut request = delivery("github", "push", Some("big-1"), &big, Auth::Good);
    request
        .headers_mut()
        .insert("content-length", big.len().to_string().parse().unwrap());
    println!("declared: {}", server.send(request).await.problem(413));
    // Not declared: refused while reading.
    let request = delivery("gitea", "push", Some("big-2"), &big, Auth::Good);
    println!("read: {}", server.send(request).await.problem(413));
    assert_eq!(rejections(&server, "github", "too_large"), 1);
    assert_eq!(rejections(&server, "gitea", "too_large"), 1);
    nothing_written(&server);
    let metrics = server
        .call("GET", "/metrics", Some("viewer"), None)
        .await
        .text();
    assert!(
        metrics.contains("cairn_webhook_rejections_total{forge=\"gitea\",reason=\"too_large\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_repository_that_is_not_onboarded_is_not_found() {
    let server = Server::new();
    let commit = head(&server);
    for forge in FORGES {
        let body = push_body(forge, "acme/elsewhere", "refs/heads/main", &commit);
        let answer = server
            .send(delivery(
                forge,
                push_event(forge),
                Some("d-1"),
                &body,
                Auth::Good,
            ))
            .await;
        println!("{forge}: {}", answer.problem(404));
        assert_eq!(rejections(&server, forge, "not_onboarded"), 1);
    }
    nothing_written(&server);
}

#[tokio::test]
async fn malformed_deliveries_are_bad_requests() {
    let server = Server::new();
    let commit = head(&server);
    let cases: [(&str, &[u8]); 4] = [
        ("not JSON", b"{\"ref\": "),
        ("form-encoded", b"payload=%7B%7D"),
        ("missing fields", b"{\"ref\": \"refs/heads/main\"}"),
        ("short commit", b"{\"ref\": \"refs/heads/main\", \"after\": \"abc123\", \"repository\": {\"full_name\": \"acme/hello\"}}"),
    ];
    for (n, (what, body)) in cases.iter().enumerate() {
        let answer = server
            .send(delivery(
                "github",
                "push",
                Some(&format!("m-{n}")),
                body,
                Auth::Good,
            ))
            .await;
        println!("{what}: {}", answer.problem(400));
    }
    assert_eq!(rejections(&server, "github", "malformed"), 4);

    // No delivery id, or one that is not a short printable token.
    let body = push_body("gitea", "acme/hello", "refs/heads/main", &commit);
    for id in [None, Some("has space"), Some(&*"x".repeat(129))] {
        let answer = server
            .send(delivery("gitea", "push", id, &body, Auth::Good))
            .await;
        println!("delivery id {id:?}: {}", answer.problem(400));
    }
    assert_eq!(rejections(&server, "gitea", "no_delivery_id"), 3);
    nothing_written(&server);
}

#[tokio::test]
async fn pings_deletions_tags_and_unknown_commits() {
    let server = Server::new();
    let answer = server
        .send(delivery(
            "github",
            "ping",
            Some("p-1"),
            b"{\"zen\": \"Keep it logically awesome.\"}",
            Auth::Good,
        ))
        .await;
    assert_eq!(answer.status, 200, "{}", show(&answer));
    assert_eq!(answer.json()["status"], "pong");

    let zero = "0".repeat(40);
    let body = push_body("github", "acme/hello", "refs/heads/gone", &zero);
    let answer = server
        .send(delivery("github", "push", Some("del-1"), &body, Auth::Good))
        .await;
    assert_eq!(answer.status, 202, "{}", show(&answer));
    println!("deletion: {}", answer.json());
    assert_eq!(answer.json()["status"], "ignored");

    let commit = head(&server);
    let body = push_body("github", "acme/hello", "refs/tags/v1", &commit);
    let answer = server
        .send(delivery("github", "push", Some("tag-1"), &body, Auth::Good))
        .await;
    assert_eq!(answer.json()["status"], "ignored", "{}", show(&answer));
    assert!(all_runs(&server).is_empty());
    assert_eq!(server.store().deliveries(10).unwrap().len(), 2);

    // A commit the workload's repository does not have: 422, nothing written.
    let unknown = "1234567890abcdef1234567890abcdef12345678";
    let body = push_body("github", "acme/hello", "refs/heads/main", unknown);
    let answer = server
        .send(delivery(
            "github",
            "push",
            Some("unknown-1"),
            &body,
            Auth::Good,
        ))
        .await;
    println!("unknown commit: {}", answer.problem(422));
    assert_eq!(rejections(&server, "github", "unprocessable"), 1);
    assert!(all_runs(&server).is_empty());
    assert_eq!(server.store().deliveries(10).unwrap().len(), 2);
}

/// The review evidence about `commit`.
fn reviews_of(server: &Server, commit: &str) -> Vec<cairn_model::EvidenceRecord> {
    let digest = commit_subject_digest(commit).to_string();
    server
        .store()
        .evidence_for_subject(&digest)
        .unwrap()
        .into_iter()
        .filter(|e| e.predicate_type == REVIEW_PREDICATE_TYPE)
        .collect()
}

#[tokio::test]
async fn an_approval_by_a_linked_maintainer_becomes_review_evidence() {
    let server = Server::new();
    let commit = head(&server);
    let now = fixture::now_ms();
    for forge in FORGES {
        let login = format!("{forge}-maint");
        server
            .store()
            .link_forge_account(forge, &login, "maintainer", now)
            .unwrap();
        let (event, body) = approval(forge, &login, &commit);
        let answer = server
            .send(delivery(
                forge,
                event,
                Some(&format!("{forge}-a")),
                &body,
                Auth::Good,
            ))
            .await;
        assert_eq!(answer.status, 202, "{}", show(&answer));
        let json = answer.json();
        println!("{forge} approval answered {json}");
        assert_eq!(json["status"], "recorded");
        assert_eq!(json["review"]["identity"], "maintainer");
        assert_eq!(json["review"]["commit"], commit.as_str());
    }
    assert_eq!(reviews_of(&server, &commit).len(), 3);
    let deliveries = server.store().deliveries(10).unwrap();
    assert!(
        deliveries
            .iter()
            .all(|d| d.outcome == "review recorded by maintainer" && d.run.is_none()),
        "{deliveries:?}"
    );
    // A replayed approval records nothing more.
    let (event, body) = approval("github", "github-maint", &commit);
    server
        .send(delivery(
            "github",
            event,
            Some("github-a"),
            &body,
            Auth::Good,
        ))
        .await
        .problem(409);
    assert_eq!(reviews_of(&server, &commit).len(), 3);
    assert!(all_runs(&server).is_empty());
}

#[tokio::test]
async fn approvals_by_unlinked_or_unauthorised_logins_record_no_review() {
    let server = Server::new();
    let commit = head(&server);
    // Unlinked: accepted, recorded as ignored.
    let (event, body) = approval("github", "stranger", &commit);
    let answer = server
        .send(delivery("github", event, Some("u-1"), &body, Auth::Good))
        .await;
    assert_eq!(answer.status, 202, "{}", show(&answer));
    let json = answer.json();
    println!("unlinked: {json}");
    assert_eq!(
        json["ignored"],
        "login stranger is not linked to a cairn identity"
    );
    let deliveries = server.store().deliveries(10).unwrap();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].outcome.starts_with("ignored: login stranger"));

    // Linked to a viewer, who may not approve: 403, nothing written.
    server
        .store()
        .link_forge_account("gitlab", "watcher", "viewer", fixture::now_ms())
        .unwrap();
    let (event, body) = approval("gitlab", "watcher", &commit);
    let answer = server
        .send(delivery("gitlab", event, Some("v-1"), &body, Auth::Good))
        .await;
    println!("viewer: {}", answer.problem(403));
    assert_eq!(rejections(&server, "gitlab", "forbidden"), 1);
    assert_eq!(server.store().deliveries(10).unwrap().len(), 1);

    // A review that is not an approval does nothing.
    let body = json!({
        "action": "submitted",
        "review": { "state": "changes_requested", "commit_id": commit, "user": { "login": "stranger" } },
        "pull_request": { "head": { "sha": commit } },
        "repository": { "full_name": "acme/hello" },
    });
    let answer = server
        .send(delivery(
            "github",
            "pull_request_review",
            Some("c-1"),
            &serde_json::to_vec(&body).unwrap(),
            Auth::Good,
        ))
        .await;
    assert_eq!(answer.json()["status"], "ignored", "{}", show(&answer));
    assert!(reviews_of(&server, &commit).is_empty());
}

#[tokio::test]
async fn a_push_to_the_forge_is_fetched_into_the_workloads_clone() {
    let server = Server::new();
    // The workload is onboarded from a clone whose `origin` is the forge's
    // repository (here: the fixture's repository).
    let clone = server.tmp.path().join("clone");
    fixture::git(
        server.tmp.path(),
        &[
            "clone",
            "-q",
            server.repo.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    server
        .state
        .0
        .engine
        .register(&clone, Some("acme/hello"))
        .unwrap();
    // A new commit lands on the forge, not in the clone.
    std::fs::write(server.repo.join("NEWS"), "pushed to the forge\n").unwrap();
    fixture::git(&server.repo, &["add", "-A"]);
    fixture::git(&server.repo, &["commit", "-q", "-m", "pushed"]);
    let pushed = head(&server);
    let body = push_body("github", "acme/hello", "refs/heads/main", &pushed);
    let answer = server
        .send(delivery(
            "github",
            "push",
            Some("fetch-1"),
            &body,
            Auth::Good,
        ))
        .await;
    assert_eq!(answer.status, 202, "{}", show(&answer));
    let runs = all_runs(&server);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].commit, pushed);
    println!("fetched and queued: {}", show(&answer));

    // A commit that is nowhere: refused, nothing written but the first.
    let nowhere = "1".repeat(40);
    let body = push_body("github", "acme/hello", "refs/heads/main", &nowhere);
    let answer = server
        .send(delivery(
            "github",
            "push",
            Some("fetch-2"),
            &body,
            Auth::Good,
        ))
        .await;
    let detail = answer.problem(422);
    assert!(detail.contains("nor on its `origin`"), "{detail}");
    assert_eq!(all_runs(&server).len(), 1);
}

#[tokio::test]
async fn the_gitlab_secret_signs_nothing_for_github_or_gitea() {
    // GitLab sends its secret in clear in every delivery; whoever reads one
    // must not be able to sign a GitHub or Gitea delivery with it.
    let server = Server::new();
    let commit = head(&server);
    for forge in ["github", "gitea"] {
        let body = push_body(forge, "acme/hello", "refs/heads/main", &commit);
        let id = format!("{forge}-with-gitlab-secret");
        let answer = server
            .send(delivery(
                forge,
                push_event(forge),
                Some(&id),
                &body,
                Auth::OtherForges,
            ))
            .await;
        let detail = answer.problem(401);
        println!("{forge} signed with GitLab's secret: {detail}");
        assert_eq!(rejections(&server, forge, "bad_signature"), 1);
    }
    // Nor does GitHub's secret pass as GitLab's token: each forge has its own.
    let body = push_body("gitlab", "acme/hello", "refs/heads/main", &commit);
    let mut request = delivery(
        "gitlab",
        push_event("gitlab"),
        Some("gl"),
        &body,
        Auth::Good,
    );
    request.headers_mut().insert(
        "x-gitlab-token",
        axum::http::HeaderValue::from_static("s3cret-github"),
    );
    server.send(request).await.problem(401);
    nothing_written(&server);
}

#[tokio::test]
async fn a_push_by_a_linked_login_records_the_identity_that_pushed() {
    let server = Server::new();
    let commit = head(&server);
    let now = fixture::now_ms();
    for forge in FORGES {
        let login = format!("{forge}-pusher");
        server
            .store()
            .link_forge_account(forge, &login, "maintainer", now)
            .unwrap();
        let mut body: serde_json::Value =
            serde_json::from_slice(&push_body(forge, "acme/hello", "refs/heads/main", &commit))
                .unwrap();
        if forge == "gitlab" {
            body["user_username"] = json!(login);
        } else {
            body["sender"] = json!({ "login": login });
        }
        let id = format!("{forge}-push-by");
        let answer = server
            .send(delivery(
                forge,
                push_event(forge),
                Some(&id),
                &serde_json::to_vec(&body).unwrap(),
                Auth::Good,
            ))
            .await;
        assert_eq!(answer.status, 202, "{}", show(&answer));
        let run_id = cairn_model::RunId(answer.json()["run"].as_i64().unwrap());
        let run = server.store().run(run_id).unwrap().unwrap();
        println!("{forge} push by {login}: trigger {}", run.trigger.as_text());
        assert_eq!(
            run.trigger,
            Trigger::Push {
                pusher: "maintainer".to_owned(),
                forge: forge.to_owned(),
                delivery: id,
            },
            "the run's evidence will name the identity that pushed"
        );
    }
    // A login linked to nobody: a plain webhook trigger.
    let mut body: serde_json::Value = serde_json::from_slice(&push_body(
        "github",
        "acme/hello",
        "refs/heads/main",
        &commit,
    ))
    .unwrap();
    body["sender"] = json!({ "login": "stranger" });
    let answer = server
        .send(delivery(
            "github",
            "push",
            Some("github-stranger"),
            &serde_json::to_vec(&body).unwrap(),
            Auth::Good,
        ))
        .await;
    assert_eq!(answer.status, 202, "{}", show(&answer));
    let run_id = cairn_model::RunId(answer.json()["run"].as_i64().unwrap());
    let run = server.store().run(run_id).unwrap().unwrap();
    assert!(
        matches!(run.trigger, Trigger::Webhook { .. }),
        "{:?}",
        run.trigger
    );
}
