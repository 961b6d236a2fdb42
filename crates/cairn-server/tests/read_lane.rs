//! The read lane (`AppState::read`, issue 19): a burst of requests' reads
//! takes turns, at most `READ_LANES` at once, each still authenticated and
//! authorised; and slow work outside the lane (git, a deploy) never holds the
//! reads up.
#![allow(clippy::unwrap_used)]

mod fixture;

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
