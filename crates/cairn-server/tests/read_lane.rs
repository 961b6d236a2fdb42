//! The read lane (`AppState::read`, issue 19): a burst of requests' reads
//! takes turns, at most `READ_LANES` at once, each still authenticated and
//! authorised; and slow work outside the lane (git, a deploy) never holds the
//! reads up.
#![allow(clippy::unwrap_used)]

use crate::fixture;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cairn_server::state::READ_LANES;
use fixture::Server;

/// 200 concurrent requests through the router, as the bench's clients send
/// them: the admin's reads all answered, the identity with no role refused
/// (403) and a made-up token refused (401) every time, with their reasons;
/// the lane's turns all returned afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_reads_is_answered_and_still_authorised() {
    let server = Arc::new(Server::new());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let path = ["/api/runs?limit=20", "/api/workloads", "/api/whoami"][i % 3];
            match i % 5 {
                0 => {
                    let answer = server.call("GET", path, Some("nobody"), None).await;
                    (i, answer.problem(403))
                }
                1 => {
                    let request = axum::http::Request::builder()
                        .uri(path)
                        .header("authorization", "Bearer cairn_not-a-real-token")
                        .body(axum::body::Body::empty())
                        .unwrap();
                    let answer = server.send(request).await;
                    (i, answer.problem(401))
                }
                _ => {
                    let answer = server.call("GET", path, Some("admin"), None).await;
                    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
                    (i, String::new())
                }
            }
        }));
    }
    let mut refused = 0;
    for task in tasks {
        let (i, why) = task.await.unwrap();
        match i % 5 {
            0 => {
                assert!(why.contains("nobody"), "{why}");
                refused += 1;
            }
            1 => {
                assert!(why.contains("token"), "{why}");
                refused += 1;
            }
            _ => {}
        }
    }
    assert_eq!(refused, 80);
    assert_eq!(server.state.0.reads.available_permits(), READ_LANES);
    println!("200 concurrent reads answered; 80 refused with their reasons");
}

/// At most `READ_LANES` reads run at once; the rest wait their turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_run_at_most_read_lanes_at_once() {
    let server = Server::new();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut reads = Vec::new();
    for _ in 0..(READ_LANES * 8) {
        let state = server.state.clone();
        let running = running.clone();
        let most = most.clone();
        reads.push(tokio::spawn(async move {
            state
                .read(move |s| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let workloads = s.store.workloads()?;
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(workloads.len())
                })
                .await
        }));
    }
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap(), 1);
    }
    let most = most.load(Ordering::SeqCst);
    println!(
        "{} reads, at most {most} at once (READ_LANES {READ_LANES})",
        READ_LANES * 8
    );
    assert!(most <= READ_LANES, "{most} reads ran at once");
    assert!(most > 1, "the reads ran one at a time");
}

/// Slow work outside the lane (here: more sleepers than the lane has turns)
/// does not hold up a read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_blocking_work_does_not_hold_up_reads() {
    let server = Server::new();
    let mut slow = Vec::new();
    for _ in 0..(READ_LANES + 2) {
        let state = server.state.clone();
        slow.push(tokio::spawn(async move {
            state
                .blocking(|_| {
                    std::thread::sleep(Duration::from_secs(2));
                    Ok(())
                })
                .await
        }));
    }
    // Let the sleepers start.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let answer = server.call("GET", "/api/runs", Some("admin"), None).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.text());
    println!("a read beside {} slow tasks took {took:?}", READ_LANES + 2);
    assert!(took < Duration::from_millis(1_500), "{took:?}");
    for task in slow {
        task.await.unwrap().unwrap();
    }
}

/// One hand-off to the blocking pool per request (issue 19): the credential
/// is checked in the same blocking call, and the same turn of the lane, as
/// the handler's reads — for an answered read, a forbidden one and a refused
/// token alike; a request with no credential at all is refused (401) without
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_hands_off_to_the_blocking_pool_once() {
    let server = Server::new();
    let calls = || server.state.0.metrics.blocking_calls();
    let paths = [
        "/api/runs?limit=20",
        "/api/workloads",
        "/api/whoami",
        "/api/audit",
        "/api/findings",
        "/api/environments",
        "/metrics",
    ];
    for path in paths {
        let before = calls();
        let answer = server.call("GET", path, Some("admin"), None).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        assert_eq!(calls() - before, 1, "{path}: hand-offs");

        let before = calls();
        let why = server
            .call("GET", path, Some("nobody"), None)
            .await
            .problem(403);
        assert!(why.contains("nobody"), "{path}: {why}");
        assert_eq!(calls() - before, 1, "{path}: hand-offs when forbidden");

        let before = calls();
        let request = axum::http::Request::builder()
            .uri(path)
            .header("authorization", "Bearer cairn_not-a-real-token")
            .body(axum::body::Body::empty())
            .unwrap();
        let why = server.send(request).await.problem(401);
        assert!(why.contains("token"), "{path}: {why}");
        assert_eq!(calls() - before, 1, "{path}: hand-offs for a bad token");

        let before = calls();
        let why = server.call("GET", path, None, None).await.problem(401);
        assert!(why.contains("Bearer"), "{path}: {why}");
        assert_eq!(
            calls() - before,
            0,
            "{path}: hand-offs without a credential"
        );
    }
    println!(
        "{} read routes: one blocking hand-off per request (answered, 403, bad token); none without a credential",
        paths.len()
    );
}

/// The credential is checked before the request's input is: a malformed query
/// or digest from a caller with a made-up token is a 401, not a 400 that
/// would answer an unauthenticated caller about its input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_with_bad_input_is_refused_as_a_bad_token() {
    let server = Server::new();
    for path in [
        "/api/runs?limit=not-a-number",
        "/api/audit?nonsense=1",
        "/api/artifacts/not-a-digest/evidence",
        "/api/runs/1/logs?after=-1",
    ] {
        let request = axum::http::Request::builder()
            .uri(path)
            .header("authorization", "Bearer cairn_not-a-real-token")
            .body(axum::body::Body::empty())
            .unwrap();
        let why = server.send(request).await.problem(401);
        println!("{path}: 401 {why}");
        let answer = server.call("GET", path, Some("admin"), None).await;
        assert!(
            answer.status == 400 || answer.status == 404,
            "{path}: {} {}",
            answer.status,
            answer.text()
        );
    }
}

/// No token is remembered between requests: the request right after a
/// revocation is refused (the token's SHA-256 is looked up in the store on
/// every request, in the same blocking call as the read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_on_the_next_request() {
    let server = Server::new();
    let answer = server
        .call("GET", "/api/workloads", Some("developer"), None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    cairn_engine::access::revoke_identity(
        server.store(),
        &server.data,
        &server.admin,
        "developer",
        fixture::now_ms(),
    )
    .unwrap();
    let why = server
        .call("GET", "/api/workloads", Some("developer"), None)
        .await
        .problem(401);
    println!("after revoking developer: 401 {why}");
}
