//! The artifact, finding, environment, review and audit routes through the
//! router: 401 without a token, 403 without the role, the answer with it, and the
//! problems for bad input (always `application/problem+json`).
#![allow(clippy::unwrap_used)]

use crate::fixture;

use cairn_engine::audit::{AuditLog, LOCK_WAIT};
use cairn_engine::certify::{Filed, sign_and_keep};
use cairn_engine::keys::KeyStore;
use cairn_evidence::sbom::CycloneDxBom;
use cairn_evidence::{Statement, Subject};
use cairn_model::{ChangeRecord, IdentityKind, RoleBinding};
use fixture::{Answer, Server, now_ms};
use serde_json::json;

const ZERO: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

async fn get(server: &Server, path: &str, who: Option<&str>) -> Answer {
    server.call("GET", path, who, None).await
}

async fn post(server: &Server, path: &str, who: Option<&str>, body: &serde_json::Value) -> Answer {
    server
        .call("POST", path, who, Some(&body.to_string()))
        .await
}

/// Signs and keeps a CycloneDX SBOM about a new digest, as the engine does for
/// a release candidate; returns the digest and the bundle's log index.
fn keep_sbom(server: &Server) -> (String, u64) {
    let digest = cairn_evidence::sha256(b"an artifact");
    let statement = Statement::new(
        vec![Subject::sha256("hello image", digest)],
        CycloneDxBom(json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []})),
    )
    .unwrap();
    let key = {
        let audit = AuditLog::open_waiting(&server.data, LOCK_WAIT).unwrap();
        KeyStore::new(&server.data)
            .load_or_create(&audit)
            .unwrap()
            .0
    };
    let subject = digest.to_string();
    let (_, log_index) = sign_and_keep(
        &server.data,
        server.store(),
        &key,
        &statement,
        Filed {
            run: None,
            stage: None,
            subject_name: "hello image",
            subject_digest: &subject,
        },
    )
    .unwrap();
    (subject, log_index)
}

/// An identity holding `role` on workload `workload` only.
fn scoped(server: &Server, name: &str, role: &str, workload: &str) -> String {
    let made = cairn_engine::access::create_identity(
        server.store(),
        &server.data,
        Some(&server.admin),
        name,
        IdentityKind::User,
        now_ms(),
    )
    .unwrap();
    let binding = RoleBinding {
        identity: name.to_owned(),
        role: role.to_owned(),
        workload: Some(workload.to_owned()),
        environment: None,
    };
    cairn_engine::access::grant_role(server.store(), &server.data, &server.admin, &binding)
        .unwrap();
    made.token.expose().to_owned()
}

/// (method, path, body, who may not, who may, what they get).
type Case = (
    &'static str,
    String,
    Option<serde_json::Value>,
    &'static str,
    &'static str,
    u16,
);

#[tokio::test]
async fn every_new_route_wants_a_token_and_the_role() {
    let server = Server::new();
    let promotion = json!({"workload": "hello", "image": ZERO, "to": "staging"});
    let rollback = json!({"workload": "hello", "env": "staging", "to": ZERO});
    let review = json!({"workload": "hello", "commit": "HEAD", "verdict": "approve"});
    let cases: Vec<Case> = vec![
        (
            "GET",
            format!("/api/artifacts/{ZERO}/evidence"),
            None,
            "nobody",
            "viewer",
            200,
        ),
        (
            "GET",
            format!("/api/artifacts/{ZERO}/sbom"),
            None,
            "nobody",
            "viewer",
            404,
        ),
        (
            "GET",
            format!("/api/artifacts/{ZERO}/findings"),
            None,
            "nobody",
            "viewer",
            200,
        ),
        ("GET", "/api/findings".into(), None, "nobody", "viewer", 200),
        (
            "GET",
            "/api/exposures".into(),
            None,
            "nobody",
            "viewer",
            200,
        ),
        (
            "GET",
            "/api/environments".into(),
            None,
            "nobody",
            "viewer",
            200,
        ),
        (
            "GET",
            "/api/environments/staging/deployments".into(),
            None,
            "nobody",
            "viewer",
            200,
        ),
        ("GET", "/api/audit".into(), None, "nobody", "viewer", 200),
        // Promoting needs release-manager: a maintainer (or the admin) may not.
        (
            "POST",
            "/api/promotions".into(),
            Some(promotion.clone()),
            "maintainer",
            "release-manager",
            404,
        ),
        (
            "POST",
            "/api/promotions".into(),
            Some(promotion),
            "admin",
            "release-manager",
            404,
        ),
        (
            "POST",
            "/api/rollbacks".into(),
            Some(rollback),
            "developer",
            "release-manager",
            404,
        ),
        // Undeploying is authorised as promoting: nothing is deployed yet (422).
        (
            "POST",
            "/api/undeploys".into(),
            Some(json!({"workload": "hello", "env": "staging"})),
            "developer",
            "release-manager",
            422,
        ),
        // Approving needs maintainer: a release manager may not.
        (
            "POST",
            "/api/reviews".into(),
            Some(review),
            "release-manager",
            "maintainer",
            201,
        ),
    ];
    for (method, path, body, denied, allowed, status) in cases {
        let body = body.map(|b| b.to_string());
        let anon = server.call(method, &path, None, body.as_deref()).await;
        anon.problem(401);
        let nobody = server
            .call(method, &path, Some("nobody"), body.as_deref())
            .await;
        nobody.problem(403);
        let refused = server
            .call(method, &path, Some(denied), body.as_deref())
            .await;
        refused.problem(403);
        let answer = server
            .call(method, &path, Some(allowed), body.as_deref())
            .await;
        assert_eq!(
            answer.status,
            status,
            "{method} {path} as {allowed}: {}",
            answer.text()
        );
        if status >= 400 {
            answer.problem(status);
        } else {
            assert_eq!(answer.header("content-type"), "application/json", "{path}");
        }
    }
}

#[tokio::test]
async fn bad_digests_are_refused_before_anything_else() {
    let server = Server::new();
    for bad in [
        "sha256:abc",
        "SHA256:0000000000000000000000000000000000000000000000000000000000000000",
        "sha256:000000000000000000000000000000000000000000000000000000000000000A",
        "sha256:00000000000000000000000000000000000000000000000000000000000000000",
        "md5:00000000000000000000000000000000",
        "latest",
    ] {
        for what in ["evidence", "sbom", "findings"] {
            let answer = get(
                &server,
                &format!("/api/artifacts/{bad}/{what}"),
                Some("viewer"),
            )
            .await;
            let detail = answer.problem(400);
            assert!(detail.contains("not an artifact digest"), "{bad}: {detail}");
        }
    }
}

#[tokio::test]
async fn an_artifacts_evidence_and_sbom_are_its_signed_bundles() {
    let server = Server::new();
    let (digest, log_index) = keep_sbom(&server);

    let evidence = get(
        &server,
        &format!("/api/artifacts/{digest}/evidence"),
        Some("viewer"),
    )
    .await;
    assert_eq!(evidence.status, 200, "{}", evidence.text());
    let body = evidence.json();
    assert_eq!(body["digest"], digest);
    let items = body["evidence"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["predicate_type"], "https://cyclonedx.org/bom");
    assert_eq!(items[0]["subject_digest"], digest);
    let bundle = &items[0]["bundle"];
    assert!(bundle["dsseEnvelope"]["payload"].is_string(), "{bundle}");
    assert_eq!(
        bundle["verificationMaterial"]["tlogEntries"][0]["logIndex"],
        log_index.to_string()
    );

    let sbom = get(
        &server,
        &format!("/api/artifacts/{digest}/sbom"),
        Some("viewer"),
    )
    .await;
    assert_eq!(sbom.status, 200, "{}", sbom.text());
    assert_eq!(sbom.json()["bomFormat"], "CycloneDX");
    assert_eq!(sbom.json()["specVersion"], "1.6");

    let findings = get(
        &server,
        &format!("/api/artifacts/{digest}/findings"),
        Some("viewer"),
    )
    .await;
    assert_eq!(findings.json(), json!({"digest": digest, "findings": []}));
    let bad_state = get(
        &server,
        &format!("/api/artifacts/{digest}/findings?state=closed"),
        Some("viewer"),
    )
    .await;
    bad_state.problem(400);

    // Belonging to no known workload, it needs an organisation-wide View.
    let token = scoped(&server, "hello-viewer", "viewer", "hello");
    let request = axum::http::Request::builder()
        .uri(format!("/api/artifacts/{digest}/evidence"))
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    server.send(request).await.problem(403);
}

#[tokio::test]
async fn findings_and_environments_start_empty() {
    let server = Server::new();
    let findings = get(&server, "/api/findings", Some("viewer")).await;
    assert_eq!(findings.json(), json!({"findings": []}));
    let filtered = get(
        &server,
        "/api/findings?state=fixed&severity=critical",
        Some("viewer"),
    )
    .await;
    assert_eq!(filtered.json(), json!({"findings": []}));
    get(&server, "/api/findings?state=nope", Some("viewer"))
        .await
        .problem(400);
    get(&server, "/api/findings?colour=red", Some("viewer"))
        .await
        .problem(400);

    let environments = get(&server, "/api/environments", Some("viewer")).await;
    assert_eq!(environments.json(), json!([]));
    let history = get(
        &server,
        "/api/environments/staging/deployments?workload=hello",
        Some("viewer"),
    )
    .await;
    assert_eq!(
        history.json(),
        json!({"environment": "staging", "workload": "hello", "deployments": []})
    );
}

#[tokio::test]
async fn promotions_and_rollbacks_of_unknown_images_are_problems() {
    let server = Server::new();
    let rm = Some("release-manager");
    let unknown = post(
        &server,
        "/api/promotions",
        rm,
        &json!({"workload": "hello", "image": ZERO, "to": "staging"}),
    )
    .await;
    unknown.problem(404);
    let off_path = post(
        &server,
        "/api/promotions",
        rm,
        &json!({"workload": "hello", "image": ZERO, "to": "moon"}),
    )
    .await;
    off_path.problem(422);
    // An override needs a reason and the override action; a malformed body is 422.
    let missing = post(
        &server,
        "/api/promotions",
        rm,
        &json!({"workload": "hello"}),
    )
    .await;
    missing.problem(422);
    let unknown_field = post(
        &server,
        "/api/promotions",
        rm,
        &json!({"workload": "hello", "image": ZERO, "to": "staging", "force": true}),
    )
    .await;
    unknown_field.problem(422);

    let nothing_before = post(
        &server,
        "/api/rollbacks",
        rm,
        &json!({"workload": "hello", "env": "staging"}),
    )
    .await;
    let detail = nothing_before.problem(422);
    assert!(detail.contains("no earlier deployment"), "{detail}");
    let to_unknown = post(
        &server,
        "/api/rollbacks",
        rm,
        &json!({"workload": "hello", "env": "staging", "to": ZERO}),
    )
    .await;
    to_unknown.problem(404);
    let nothing_deployed = post(
        &server,
        "/api/undeploys",
        rm,
        &json!({"workload": "hello", "env": "staging"}),
    )
    .await;
    let detail = nothing_deployed.problem(422);
    assert!(
        detail.contains("nothing of hello is deployed in staging"),
        "{detail}"
    );
    // Nothing moved.
    assert_eq!(
        get(&server, "/api/environments", rm).await.json(),
        json!([])
    );
}

#[tokio::test]
async fn a_review_is_signed_and_recorded() {
    let server = Server::new();
    let answer = post(
        &server,
        "/api/reviews",
        Some("maintainer"),
        &json!({"workload": "hello", "commit": "HEAD", "verdict": "request-changes", "comment": "tests?"}),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["verdict"], "request-changes");
    assert_eq!(body["reviewer"], "maintainer");
    assert_eq!(body["counts_for_four_eyes"], true);
    assert_eq!(body["commit"].as_str().unwrap().len(), 40);
    let evidence = server
        .store()
        .evidence_for_subject(&format!(
            "sha256:{}",
            cairn_evidence::review::commit_subject_digest(body["commit"].as_str().unwrap()).hex()
        ))
        .unwrap();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].id, body["evidence"].as_i64().unwrap());

    for (body, status) in [
        (
            json!({"workload": "hello", "commit": "HEAD", "verdict": "maybe"}),
            422,
        ),
        (
            json!({"workload": "nowhere", "commit": "HEAD", "verdict": "approve"}),
            404,
        ),
        (
            json!({"workload": "hello", "commit": "no-such-ref", "verdict": "approve"}),
            422,
        ),
        (
            json!({"workload": "hello", "commit": "--all", "verdict": "approve"}),
            400,
        ),
    ] {
        post(&server, "/api/reviews", Some("maintainer"), &body)
            .await
            .problem(status);
    }
}

#[tokio::test]
async fn the_audit_trail_proves_each_change() {
    let server = Server::new();
    assert_eq!(
        get(&server, "/api/audit", Some("viewer")).await.json(),
        json!([])
    );

    // A change record whose log entry is a real one (here: evidence's).
    let (digest, log_index) = keep_sbom(&server);
    let id = server
        .store()
        .add_change(&ChangeRecord {
            kind: "denied".into(),
            workload: "hello".into(),
            environment: "staging".into(),
            actor: "release-manager".into(),
            from_digest: None,
            to_digest: digest.clone(),
            log_index,
            at_ms: now_ms(),
            json: json!({"outcome": "denied: nothing was deployed"}).to_string(),
        })
        .unwrap();
    let answer = get(&server, "/api/audit?workload=hello&limit=5", Some("viewer")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let changes = answer.json();
    let changes = changes.as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["id"], id);
    assert_eq!(changes[0]["to"], digest);
    assert_eq!(changes[0]["log_index"], log_index);
    assert_eq!(changes[0]["proof"]["verified"], true);
    assert!(changes[0]["proof"]["tree_size"].as_u64().unwrap() > log_index);
    assert_eq!(changes[0]["proof"]["root"].as_str().unwrap().len(), 64);
    assert_eq!(
        changes[0]["record"]["outcome"],
        "denied: nothing was deployed"
    );

    // A viewer of `hello` only sees its trail, not the organisation's.
    let token = scoped(&server, "hello-viewer", "viewer", "hello");
    let as_scoped = |uri: &str| {
        axum::http::Request::builder()
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let own = server.send(as_scoped("/api/audit?workload=hello")).await;
    assert_eq!(own.json().as_array().unwrap().len(), 1);
    server.send(as_scoped("/api/audit")).await.problem(403);
    server
        .send(as_scoped("/api/audit?workload=other"))
        .await
        .problem(403);
    get(&server, "/api/audit?limit=many", Some("viewer"))
        .await
        .problem(400);
}

/// A workload `hello` whose digest runs in staging and carries a critical
/// finding of left-pad 1.3.0 (stored as the engine stores them).
fn exposed(server: &Server) -> String {
    use cairn_store::{FindingKey, MatchScope, NewAdvisory, NewFinding, NewSbom};
    let store = server.store();
    let digest = format!("sha256:{}", "e1".repeat(32));
    let now = now_ms();
    store.upsert_workload("hello", "/nowhere", now).unwrap();
    let sbom = store
        .add_sbom(&NewSbom {
            subject_name: "hello image".into(),
            subject_digest: digest.clone(),
            workload: Some("hello".into()),
            environment: None,
            created_at_ms: now,
            format: "cyclonedx".into(),
            document: b"{}".to_vec(),
            components: vec![(
                "npm".into(),
                "left-pad".into(),
                "1.3.0".into(),
                "pkg:npm/left-pad@1.3.0".into(),
            )],
        })
        .unwrap();
    let record = json!({
        "id": "GHSA-cair-n000-0002", "modified": "2026-12-01T00:00:00Z",
        "affected": [{ "package": { "ecosystem": "npm", "name": "left-pad" },
            "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "0" }, { "fixed": "1.3.1" }] }] }]
    });
    store
        .put_advisories(&[NewAdvisory {
            id: "GHSA-cair-n000-0002".into(),
            modified: "2026-12-01T00:00:00.000000000Z".into(),
            withdrawn: false,
            packages: vec![("npm".into(), "left-pad".into())],
            json: record.to_string().into_bytes(),
            match_form: None,
            compiled: Vec::new(),
        }])
        .unwrap();
    store
        .record_matches(
            &MatchScope {
                packages: vec![("npm".into(), "left-pad".into())],
                advisories: vec![],
                sbom: None,
            },
            &[NewFinding {
                key: FindingKey {
                    advisory_id: "GHSA-cair-n000-0002".into(),
                    sbom_id: sbom,
                    ecosystem: "npm".into(),
                    name: "left-pad".into(),
                    version: "1.3.0".into(),
                },
                purl: "pkg:npm/left-pad@1.3.0".into(),
                kind: "vulnerability".into(),
                severity: Some("critical".into()),
            }],
            now,
        )
        .unwrap();
    store
        .add_deployment(&cairn_model::DeploymentRecord {
            workload: "hello".into(),
            environment: "staging".into(),
            digest: digest.clone(),
            previous_digest: None,
            kind: "deploy".into(),
            actor: "admin".into(),
            target: "local".into(),
            detail: "http://127.0.0.1:1".into(),
            log_index: 0,
            deployed_at_ms: now - 3_600_000,
            status: cairn_model::DeploymentStatus::Deployed,
            token: None,
            reason: None,
        })
        .unwrap();
    digest
}

/// `GET /api/exposures` lists the finding on what runs in staging with its
/// deadline, only to those who may see the workload; `/api/findings` names the
/// environment; `/metrics` counts it by environment and severity.
#[tokio::test]
async fn an_exposure_is_listed_named_in_findings_and_counted_in_metrics() {
    let server = Server::new();
    let digest = exposed(&server);

    let answer = get(&server, "/api/exposures", Some("viewer")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let list = answer.json()["exposures"].clone();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let e = &list[0];
    assert_eq!(e["environment"], "staging");
    assert_eq!(e["workload"], "hello");
    assert_eq!(e["digest"], digest);
    assert_eq!(e["advisory"], "GHSA-cair-n000-0002");
    assert_eq!(e["severity"], "critical");
    assert_eq!(e["fixed_versions"], json!(["1.3.1"]));
    assert_eq!(e["state"], "open");
    assert!(e["deadline"].as_str().unwrap() > e["first_seen"].as_str().unwrap());
    let none = get(
        &server,
        "/api/exposures?environment=production",
        Some("viewer"),
    )
    .await;
    assert_eq!(none.json(), json!({"exposures": []}));
    let overdue = get(&server, "/api/exposures?overdue=true", Some("viewer")).await;
    assert_eq!(overdue.json(), json!({"exposures": []}));
    get(&server, "/api/exposures?environment=mars", Some("viewer"))
        .await
        .problem(400);
    get(&server, "/api/exposures?colour=red", Some("viewer"))
        .await
        .problem(400);
    // Someone who sees only another workload sees none of it.
    let other = scoped(&server, "other-viewer", "viewer", "other");
    let request = axum::http::Request::builder()
        .uri("/api/exposures")
        .header("authorization", format!("Bearer {other}"))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(server.send(request).await.json(), json!({"exposures": []}));

    let findings = get(&server, "/api/findings", Some("viewer")).await.json();
    assert_eq!(
        findings["findings"][0]["environment"], "staging",
        "{findings}"
    );
    assert_eq!(findings["findings"][0]["environments"], json!(["staging"]));

    let metrics = get(&server, "/metrics", Some("viewer")).await.text();
    assert!(
        metrics.contains("cairn_exposures_open{environment=\"staging\",severity=\"critical\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("cairn_exposures_overdue{environment=\"staging\",severity=\"critical\"} 0"),
        "{metrics}"
    );
    let age = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "cairn_exposure_age_seconds{environment=\"staging\",severity=\"critical\"}",
            )
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    let seconds: f64 = age.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(seconds >= 0.0, "{age}");
    assert!(
        metrics.contains("cairn_exposure_time_to_remediate_seconds_count 0"),
        "{metrics}"
    );
}
