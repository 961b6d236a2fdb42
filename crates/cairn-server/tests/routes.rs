//! The route table against the router: every route is in the OpenAPI document
//! and answers; every protected route refuses the anonymous (401), refuses an
//! identity whose roles do not grant its action (403) and serves one whose
//! roles do — the expectation read from the roles model's own matrix.
#![allow(clippy::unwrap_used)]

use crate::fixture;

use axum::body::Body;
use axum::http::{Method, Request};
use cairn_policy::Role;
use cairn_server::routes::{Access, Kind, table};
use fixture::{ROLES, Server};

fn body_of(route: &cairn_server::routes::Route) -> Option<&'static str> {
    route
        .example_body
        .or_else(|| (route.method == Method::POST).then_some("{}"))
}

#[tokio::test]
async fn every_protected_route_follows_the_roles_matrix() {
    let server = Server::new();
    let mut checked = 0;
    for route in table() {
        let Access::Role(action) = route.access else {
            continue;
        };
        let method = route.method.as_str();
        let body = body_of(&route);
        // Anonymous: 401 (pages: a redirect to the login page).
        let anon = server.call(method, route.example, None, body).await;
        match route.kind {
            Kind::Page => {
                assert_eq!(anon.status, 303, "{route:?} anonymous: {}", anon.text());
                assert!(anon.header("location").starts_with("/login"), "{route:?}");
            }
            _ => {
                anon.problem(401);
                assert_eq!(anon.header("www-authenticate"), "Bearer realm=\"cairn\"");
            }
        }
        // An identity with no role at all: 403.
        let nobody = server
            .call(method, route.example, Some("nobody"), body)
            .await;
        assert_eq!(nobody.status, 403, "{route:?} nobody: {}", nobody.text());
        for role in ROLES.into_iter().chain([Role::PlatformAdmin]) {
            let who = if role == Role::PlatformAdmin {
                "admin"
            } else {
                role.as_str()
            };
            let answer = server.call(method, route.example, Some(who), body).await;
            if role.grants(action) {
                assert!(
                    answer.status != 401 && answer.status != 403 && answer.status < 500,
                    "{route:?} as {who} (grants {}): {} {}",
                    action.as_str(),
                    answer.status,
                    answer.text()
                );
            } else {
                assert_eq!(
                    answer.status,
                    403,
                    "{route:?} as {who} (does not grant {}): {}",
                    action.as_str(),
                    answer.text()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} route × role checks");
}

#[tokio::test]
async fn a_binding_on_another_workload_sees_nothing_of_this_one() {
    let server = Server::new();
    let data = &server.data;
    let made = cairn_engine::access::create_identity(
        server.store(),
        data,
        Some(&server.admin),
        "elsewhere",
        cairn_model::IdentityKind::User,
        fixture::now_ms(),
    )
    .unwrap();
    let binding = cairn_model::RoleBinding {
        identity: "elsewhere".into(),
        role: "developer".into(),
        workload: Some("other-app".into()),
        environment: None,
    };
    cairn_engine::access::grant_role(server.store(), data, &server.admin, &binding).unwrap();
    let token = made.token.expose().to_owned();
    let get = |path: &'static str| {
        Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    server.send(get("/api/workloads/hello")).await.problem(403);
    let list = server.send(get("/api/workloads")).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["workloads"], serde_json::json!([]));
}

#[tokio::test]
async fn the_openapi_document_names_exactly_the_routes_that_answer() {
    let server = Server::new();
    let doc = server.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for route in table() {
        let path = cairn_server::openapi::openapi_path(route.path);
        let method = route.method.as_str().to_ascii_lowercase();
        if route.kind == Kind::Page {
            assert!(
                paths.get(&path).is_none_or(|p| p.get(&method).is_none()),
                "{route:?} is a page"
            );
            continue;
        }
        let op = &paths[&path][&method];
        assert!(op.is_object(), "{route:?} is not in the document");
        assert!(op["responses"][route.success.as_u16().to_string()].is_object());
        if route.method == Method::POST && route.kind == Kind::Api && route.access != Access::Signed
        {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            assert!(
                schema["required"].is_array(),
                "{route:?} documents its body: {schema}"
            );
            let example: serde_json::Value =
                serde_json::from_str(route.example_body.unwrap()).unwrap();
            for field in schema["required"].as_array().unwrap() {
                assert!(
                    example.get(field.as_str().unwrap()).is_some(),
                    "{route:?}: {field}"
                );
            }
        }
        if let Access::Role(action) = route.access {
            assert_eq!(op["x-cairn-action"], action.as_str());
            assert!(op["responses"]["401"].is_object() && op["responses"]["403"].is_object());
        }
        documented += 1;
        // The route is served: the router's fallback does not answer it.
        let answer = server
            .call(
                route.method.as_str(),
                route.example,
                Some("admin"),
                body_of(&route),
            )
            .await;
        assert_ne!(answer.status, 405, "{route:?}");
        if answer.status == 404 {
            assert!(
                !answer.text().contains("no such route"),
                "{route:?} is not routed"
            );
        }
    }
    // And nothing is documented that the table does not hold.
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(operations, documented);
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_a_problem() {
    let server = Server::new();
    // Unknown route, wrong method.
    let d = server
        .call("GET", "/api/nothing-here", Some("admin"), None)
        .await
        .problem(404);
    assert!(d.contains("no such route"));
    server
        .call("DELETE", "/api/runs", Some("admin"), None)
        .await
        .problem(405);
    // Malformed JSON, the wrong shape, no content type, a huge body.
    server
        .call("POST", "/api/runs", Some("admin"), Some("{not json"))
        .await
        .problem(400);
    server
        .call(
            "POST",
            "/api/runs",
            Some("admin"),
            Some(r#"{"workload": 7}"#),
        )
        .await
        .problem(422);
    let plain = Request::builder()
        .method("POST")
        .uri("/api/runs")
        .header("authorization", format!("Bearer {}", server.token("admin")))
        .body(Body::from(r#"{"workload":"hello"}"#))
        .unwrap();
    server.send(plain).await.problem(415);
    let huge = format!(r#"{{"workload":"{}"}}"#, "a".repeat(2 << 20));
    server
        .call("POST", "/api/runs", Some("admin"), Some(&huge))
        .await
        .problem(413);
    // Nothing was written by any of them.
    assert!(server.store().runs(&Default::default()).unwrap().is_empty());
    // Path traversal in the log's tiles and in ids.
    for path in [
        "/log/tile/../../keys/signing.key",
        "/log/tile/0/..%2f..%2fkeys",
        "/log/tile/entries/x001/../000",
        "/log/tile/0/0000",
        "/log/tile/99/000",
    ] {
        let answer = server.call("GET", path, None, None).await;
        assert!(
            answer.status == 404 || answer.status == 400,
            "{path}: {}",
            answer.text()
        );
        assert_eq!(
            answer.header("content-type"),
            "application/problem+json",
            "{path}"
        );
    }
    server
        .call("GET", "/api/runs/..%2f1", Some("admin"), None)
        .await
        .problem(400);
    server
        .call("GET", "/api/runs/999", Some("admin"), None)
        .await
        .problem(404);
    // A bad query string.
    server
        .call("GET", "/api/runs?limit=lots", Some("admin"), None)
        .await
        .problem(400);
}

#[tokio::test]
async fn revoked_expired_and_unknown_tokens_are_refused() {
    let server = Server::new();
    let viewer_token = server.token("viewer").to_owned();
    assert_eq!(
        server
            .call("GET", "/api/runs", Some("viewer"), None)
            .await
            .status,
        200
    );
    cairn_engine::access::revoke_identity(
        server.store(),
        &server.data,
        &server.admin,
        "viewer",
        fixture::now_ms(),
    )
    .unwrap();
    server
        .call("GET", "/api/runs", Some("viewer"), None)
        .await
        .problem(401);
    // An identity whose token has expired.
    let token = "cairn_expired-token-for-the-test";
    server
        .store()
        .add_identity(&cairn_model::IdentityRecord {
            name: "temp".into(),
            kind: cairn_model::IdentityKind::User,
            token_sha256: cairn_engine::access::token_sha256(token),
            created_at_ms: 1,
            revoked_at_ms: None,
            expires_at_ms: Some(2),
        })
        .unwrap();
    let expired = Request::builder()
        .uri("/api/runs")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    server.send(expired).await.problem(401);
    for header in [
        "Bearer nonsense",
        "Basic YWRtaW46eA==",
        "Bearer",
        &format!("Bearer {viewer_token}x"),
    ] {
        let request = Request::builder()
            .uri("/api/runs")
            .header("authorization", header)
            .body(Body::empty())
            .unwrap();
        server.send(request).await.problem(401);
    }
}

#[tokio::test]
async fn a_panicking_handler_is_answered_500_and_the_server_goes_on() {
    let server = Server::new();
    let boom = cairn_server::routes::Route::new(
        Method::GET,
        "/api/test-panic",
        Access::Public,
        axum::routing::get(|| async {
            let v: Vec<u8> = Vec::new();
            #[allow(clippy::indexing_slicing)]
            let x = v[3];
            x.to_string()
        }),
    );
    let app = cairn_server::routes::app_with(server.state.clone(), vec![boom]);
    use tower::ServiceExt;
    let response = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/api/test-panic")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let answer = fixture::Answer::read(response).await;
    let detail = answer.problem(500);
    assert!(detail.contains("incident"), "{detail}");
    assert!(
        !detail.contains("index out of bounds"),
        "a 500 says little: {detail}"
    );
    let again = app
        .oneshot(
            Request::builder()
                .uri("/api/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn a_queued_run_waits_for_a_worker_and_the_api_shows_it() {
    let server = Server::new();
    let queued = server
        .call(
            "POST",
            "/api/runs",
            Some("developer"),
            Some(r#"{"workload":"hello"}"#),
        )
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text());
    let run = queued.json();
    assert_eq!(run["status"], "queued");
    let id = run["id"].as_i64().unwrap();
    let detail = server
        .call("GET", &format!("/api/runs/{id}"), Some("viewer"), None)
        .await;
    assert_eq!(detail.status, 200);
    let detail = detail.json();
    assert_eq!(detail["trigger"], "api:developer");
    assert_eq!(detail["stages"].as_array().unwrap().len(), 5, "{detail}");
    // A commit the repository does not have: refused, nothing queued.
    let bad = server
        .call(
            "POST",
            "/api/runs",
            Some("developer"),
            Some(r#"{"workload":"hello","rev":"deadbeef"}"#),
        )
        .await;
    bad.problem(422);
    let metrics = server.call("GET", "/metrics", Some("viewer"), None).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(text.contains("cairn_queue_depth 1"), "{text}");
    assert!(text.contains("cairn_runs{status=\"queued\"} 1"), "{text}");
    assert!(text.contains("cairn_log_entries "), "{text}");
}

/// Issue 18: probes for an orchestrator. `/healthz` answers while the process
/// does; `/readyz` only while the store answers and the server is not stopping
/// (503 with the reason, never the store's path). Both need no token.
#[tokio::test]
async fn the_health_and_readiness_probes_answer_without_a_token() {
    let server = Server::new();
    let health = server.call("GET", "/healthz", None, None).await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let ready = server.call("GET", "/readyz", None, None).await;
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));
    assert_eq!(ready.headers["cache-control"], "no-store");

    // The store loses a table under the server (another process, through
    // Python's sqlite3): its reads fail.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DROP TABLE runs'); c.commit()",
        ])
        .arg(server.data.root().join("cairn.db"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let ready = server.call("GET", "/readyz", None, None).await;
    println!("{} {}", ready.status, ready.text().trim());
    assert_eq!(ready.status, 503);
    assert_eq!(ready.text(), "not ready: the store does not answer\n");

    server
        .state
        .0
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let ready = server.call("GET", "/readyz", None, None).await;
    assert_eq!(
        (ready.status, ready.text().as_str()),
        (503, "not ready: stopping\n")
    );
    let health = server.call("GET", "/healthz", None, None).await;
    assert_eq!(health.status, 200);
}

/// Every route anyone may call, with the reason it needs no identity. A new
/// public route must be added here, with its reason, or this test fails.
const PUBLIC: [(&str, &str, &str); 13] = [
    ("GET", "/api/openapi.json", "the API's shape, no data"),
    (
        "GET",
        "/log/checkpoint",
        "the transparency log is public by design (C2SP)",
    ),
    (
        "GET",
        "/log/tile/{*path}",
        "the transparency log is public by design (C2SP)",
    ),
    (
        "GET",
        "/healthz",
        "an orchestrator's liveness probe; says only `ok`",
    ),
    (
        "GET",
        "/readyz",
        "an orchestrator's readiness probe; says only ready or why not",
    ),
    ("GET", "/login", "the form that takes a token"),
    (
        "GET",
        "/login/oidc",
        "starts single sign-on: sends the browser to the provider with PKCE, state and nonce",
    ),
    (
        "GET",
        "/login/oidc/callback",
        "ends single sign-on: the provider's signed ID token is the credential",
    ),
    (
        "POST",
        "/login",
        "exchanges a token for a session: the token is the credential",
    ),
    (
        "POST",
        "/logout",
        "ends the caller's own session (CSRF-checked)",
    ),
    ("GET", "/assets/cairn.css", "static stylesheet"),
    ("GET", "/assets/cairn.js", "static script"),
    (
        "POST",
        "/admission/validate",
        "the Kubernetes API server's webhook: a read-only decision (nothing is created or \
         changed) that says only whether images may run, which any caller could learn by \
         submitting a Pod; body and image count bounded; TLS via --tls-cert",
    ),
];

#[test]
fn every_public_route_is_registered_with_the_reason_it_needs_no_identity() {
    let mut public: Vec<(String, String)> = table()
        .into_iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    public.sort();
    let mut listed: Vec<(String, String)> = PUBLIC
        .iter()
        .map(|(m, p, reason)| {
            assert!(!reason.is_empty());
            ((*m).to_owned(), (*p).to_owned())
        })
        .collect();
    listed.sort();
    assert_eq!(
        public, listed,
        "a public route without a reason, or a stale one"
    );
}
