//! The installation's duties (advisory feed, exposure watch, remediation loop
//! with the reconciliation of deployments) run in exactly one `cairn serve`
//! replica at a time, by a lease in the shared database (issue 16): real
//! processes on loopback and a real PostgreSQL (`cairn_testkit::pg`).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use cairn_testkit::pg::PgServer;
use common::Fixture;
use common::server::Up;

const DUTIES: [&str; 3] = ["advisory-feed", "exposure-watch", "remediation"];
/// The lease (`cairn_server::duties::LEASE`, 10 s) plus a renewal period and slack.
const TAKEOVER: Duration = Duration::from_secs(20);

fn serve(data: &std::path::Path, url: &str) -> Up {
    Up::process(
        data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--grace",
            "5",
            "--database",
            url,
        ],
        &[],
        "cairn serve: serving on ",
    )
}

fn holds(up: &mut Up, duty: &str) -> bool {
    let needle = format!("holds duty `{duty}`");
    up.drain().iter().any(|l| l.contains(&needle))
}

#[test]
fn each_duty_runs_in_one_replica_and_another_takes_it_over_when_the_holder_is_killed() {
    let pg = PgServer::start();
    let db = pg.database();
    let url = db.url().to_owned();
    let fx = Fixture::new();
    let mut replicas = [serve(&fx.data, &url), serve(&fx.data, &url)];

    // Every duty is taken by one replica, and only one, however long they run.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !DUTIES
        .iter()
        .all(|d| replicas.iter_mut().any(|r| holds(r, d)))
    {
        assert!(Instant::now() < deadline, "not every duty was taken");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(5));
    let mut holder = [0usize; 3];
    for (i, duty) in DUTIES.iter().enumerate() {
        let who: Vec<usize> = (0..2).filter(|&r| holds(&mut replicas[r], duty)).collect();
        assert_eq!(who.len(), 1, "duty {duty} held by replicas {who:?}");
        holder[i] = who[0];
        println!("duty {duty}: held by replica {} only", who[0]);
    }
    // The replica with the remediation duty reconciled first, the other did not.
    let rem = holder[2];
    assert!(
        replicas[rem]
            .drain()
            .iter()
            .any(|l| l.contains("reconciled what runs with the records")),
        "{:?}",
        replicas[rem].seen
    );
    assert!(
        !replicas[1 - rem]
            .drain()
            .iter()
            .any(|l| l.contains("reconciled what runs with the records"))
    );

    // kill -9 the remediation's holder: the survivor takes every duty within
    // the lease time, without the killed one releasing anything.
    let victim = rem;
    let survivor = 1 - victim;
    replicas[victim].kill9();
    let killed = Instant::now();
    println!("kill -9 replica {victim}");
    for duty in DUTIES {
        let line = replicas[survivor].wait_for(&format!("holds duty `{duty}`"), TAKEOVER);
        println!(
            "{:.1} s after the kill, replica {survivor}: {line}",
            killed.elapsed().as_secs_f64()
        );
    }
    assert!(killed.elapsed() < TAKEOVER);
    replicas[survivor].wait_for("reconciled what runs with the records", TAKEOVER);

    // A replica stopping releases its duties: a new one takes them at once.
    let mut fresh = serve(&fx.data, &url);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        DUTIES.iter().all(|d| !holds(&mut fresh, d)),
        "{:?}",
        fresh.seen
    );
    let stopped = Instant::now();
    assert_eq!(replicas[survivor].stop(Duration::from_secs(30)), Some(0));
    for duty in DUTIES {
        fresh.wait_for(&format!("holds duty `{duty}`"), Duration::from_secs(10));
    }
    println!(
        "replica {survivor} stopped; the new replica took every duty {:.1} s later",
        stopped.elapsed().as_secs_f64()
    );
    assert!(stopped.elapsed() < Duration::from_secs(10));
}

/// `cairn up` restarted at once on its data directory takes its duties at
/// once, not after the lease (10 s) of the process before it runs out: after a
/// stop (it released them) and after a `kill -9` (it could not: the lease's
/// holder is a process of this host that is gone, so its lease is taken over).
#[test]
fn cairn_up_restarted_at_once_takes_its_duties_at_once_after_a_stop_or_a_kill() {
    let fx = Fixture::new();
    let wait_all = |up: &mut Up, since: Instant| {
        for duty in DUTIES {
            up.wait_for(&format!("holds duty `{duty}`"), TAKEOVER);
        }
        since.elapsed()
    };
    let mut up = Up::start(&fx.data, &[]);
    wait_all(&mut up, Instant::now());

    // Stopped: restarted at once, it holds every duty within a renewal period.
    assert_eq!(up.stop(Duration::from_secs(30)), Some(0));
    let restarted = Instant::now();
    let mut up = Up::start(&fx.data, &[]);
    let took = wait_all(&mut up, restarted);
    println!(
        "after a stop: the restarted cairn up held every duty {:.1} s after it started",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(5), "{:?}", up.seen);

    // Killed: its leases are still in the database, held by a gone process.
    up.kill9();
    let restarted = Instant::now();
    let mut up = Up::start(&fx.data, &[]);
    let took = wait_all(&mut up, restarted);
    let gone: Vec<&String> = up
        .drain()
        .iter()
        .filter(|l| l.contains("is gone from this host; taking it over now"))
        .collect();
    println!(
        "after kill -9: held every duty {:.1} s after it started; {gone:?}",
        took.as_secs_f64()
    );
    assert_eq!(gone.len(), DUTIES.len(), "{:?}", up.seen);
    assert!(took < Duration::from_secs(5), "{:?}", up.seen);
    assert_eq!(up.stop(Duration::from_secs(30)), Some(0));
}
