//! The advisory feed's loop: a thread that polls the organisation's
//! `[advisories] sources` (`cairn_engine::feed`) when `cairn up` starts and then
//! on the configured interval, until the server stops. org.toml is read again
//! before each poll, so a changed source list or interval applies without a
//! restart. Each poll's outcome goes to the server's log; a failing source is
//! also kept with its reason in `<data>/feed/state.json`. It polls only while
//! this process holds the feed's duty (`duties.rs`): one replica polls.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_engine::feed::{FeedLimits, Polled};

use crate::duties::Duty;
use crate::state::AppState;

/// How often a waiting loop looks whether the server is stopping.
const TICK: Duration = Duration::from_millis(100);
/// How long to wait before reading an org.toml without sources (or a broken
/// one) again.
const IDLE: Duration = Duration::from_secs(60);

/// Starts the loop.
pub fn start(state: &AppState, duty: Arc<Duty>) -> std::io::Result<JoinHandle<()>> {
    let state = state.clone();
    std::thread::Builder::new()
        .name("cairn-advisory-feed".into())
        .spawn(move || run(&state, &duty))
}

fn run(state: &AppState, duty: &Duty) {
    let shared = state.shared();
    while !shared.stopping.load(Ordering::SeqCst) {
        if !duty.held() {
            crate::duties::pause(state, TICK);
            continue;
        }
        let wait = match cairn_engine::load_org(shared.config.platform_dir.as_deref()) {
            Ok(org) if org.advisory_feed.sources.is_empty() => IDLE,
            Ok(org) => {
                poll(state, &org.advisory_feed);
                Duration::from_secs(org.advisory_feed.interval_seconds)
            }
            Err(e) => {
                eprintln!(
                    "cairn up: advisory feed: org.toml cannot be read: {}",
                    cairn_model::error_chain(&e)
                );
                IDLE
            }
        };
        let until = Instant::now() + wait;
        while Instant::now() < until && !shared.stopping.load(Ordering::SeqCst) {
            std::thread::sleep(TICK);
        }
    }
}

fn poll(state: &AppState, feed: &cairn_model::config::AdvisoryFeed) {
    let shared = state.shared();
    let mut quiet = |_: &str| {};
    match cairn_engine::feed::sync(
        &*shared.store,
        &shared.config.data,
        feed,
        None,
        &FeedLimits::default(),
        &mut quiet,
    ) {
        Ok(report) => {
            for s in &report.sources {
                match &s.result {
                    Ok(Polled::Unchanged(_)) => {}
                    Ok(Polled::Imported {
                        counts, log_index, ..
                    }) => eprintln!(
                        "cairn up: advisory feed: {}: {} new, {} updated records (audit log entry {log_index})",
                        s.source, counts.new, counts.updated
                    ),
                    Err(why) => eprintln!("cairn up: advisory feed: {}: failed: {why}", s.source),
                }
            }
            let opened = report.rematched.outcome.opened.len();
            if opened > 0 {
                eprintln!(
                    "cairn up: advisory feed: {opened} new findings in {} artifacts",
                    report.rematched.artifacts()
                );
            }
        }
        Err(e) => eprintln!("cairn up: advisory feed: {}", cairn_model::error_chain(&e)),
    }
}
