//! Workers: threads that take queued runs (from the API and webhooks) one at a
//! time and execute them through the engine. A run is claimed atomically in the
//! store, so two workers (or two servers) never take the same run; a queued run
//! waits in the store, so a restart loses nothing that was acknowledged.
//!
//! A claimed run is leased to its process: the lease thread ([`start_leases`])
//! renews this process's leases every [`HEARTBEAT`] and interrupts any run,
//! of any process, whose lease was not renewed for [`STALE`] (its worker was
//! killed or lost the database). Every process that serves or works runs it,
//! so whoever notices first ends the run. [`run_worker`] is `cairn worker`: workers
//! and leases, no HTTP.

use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::state::AppState;

/// How long an idle worker sleeps before looking at the queue again (runs
/// queued by another process ring no bell here).
const IDLE: Duration = Duration::from_secs(1);

/// How often a process renews the leases of the runs it executes.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long a lease may go unrenewed before its run is interrupted: several
/// missed heartbeats, so a slow store call is not mistaken for a dead worker.
pub const STALE: Duration = Duration::from_secs(10);

/// Wakes idle workers.
#[derive(Debug, Default)]
pub struct Bell {
    rung: Mutex<u64>,
    cond: Condvar,
}

impl Bell {
    pub fn ring(&self) {
        if let Ok(mut n) = self.rung.lock() {
            *n = n.wrapping_add(1);
        }
        self.cond.notify_all();
    }

    fn wait(&self, seen: &mut u64, timeout: Duration) {
        let Ok(guard) = self.rung.lock() else { return };
        let start = *seen;
        if let Ok((guard, _)) = self
            .cond
            .wait_timeout_while(guard, timeout, |n| *n == start)
        {
            *seen = *guard;
        }
    }
}

/// Says on stderr which run this process took, when it takes it (with the
/// process id: an operator, or a test, can tell which worker has it).
struct Announce;

impl cairn_engine::RunObserver for Announce {
    fn run_created(
        &mut self,
        run: &cairn_model::RunRecord,
        _stages: &[cairn_model::StageRecord],
        _loaded: &cairn_engine::LoadedWorkload,
    ) {
        eprintln!(
            "cairn: run {} of {} started (process {})",
            run.id,
            run.workload,
            std::process::id()
        );
    }
}

/// Starts `count` workers.
pub fn start(state: &AppState, count: usize) -> std::io::Result<Vec<JoinHandle<()>>> {
    (0..count)
        .map(|i| {
            let state = state.clone();
            std::thread::Builder::new()
                .name(format!("cairn-worker-{i}"))
                .spawn(move || work(&state))
        })
        .collect()
}

fn work(state: &AppState) {
    let shared = state.shared();
    let mut seen = 0;
    while !shared.stopping.load(Ordering::SeqCst) {
        match shared.engine.execute_next(&mut Announce) {
            Ok(Some(run)) => {
                eprintln!("cairn: run {} of {} {}", run.id, run.workload, run.status);
            }
            Ok(None) => shared.queued.wait(&mut seen, IDLE),
            Err(e) => {
                eprintln!(
                    "cairn up: a worker could not take a run: {}",
                    cairn_model::error_chain(&e)
                );
                shared.queued.wait(&mut seen, IDLE);
            }
        }
    }
}

/// Starts the lease thread: every [`HEARTBEAT`], renews this process's leases
/// and interrupts runs whose lease went stale; it stops with the process's
/// `stopping` flag.
pub fn start_leases(state: &AppState) -> std::io::Result<JoinHandle<()>> {
    let state = state.clone();
    std::thread::Builder::new()
        .name("cairn-leases".to_owned())
        .spawn(move || {
            let shared = state.shared();
            let mut seen = 0;
            while !shared.stopping.load(Ordering::SeqCst) {
                if let Err(e) = shared.engine.heartbeat_own_runs() {
                    eprintln!(
                        "cairn: cannot renew this process's run leases: {}",
                        cairn_model::error_chain(&e)
                    );
                }
                match shared.engine.expire_stale_leases(STALE) {
                    Ok(lost) => {
                        for cairn_engine::LostRun { run, requeued_as } in lost {
                            match requeued_as {
                                Some(copy) => eprintln!(
                                    "cairn: run {run}: its worker stopped renewing its lease; marked interrupted and requeued once as run {copy}"
                                ),
                                None => eprintln!(
                                    "cairn: run {run}: its worker stopped renewing its lease; marked interrupted"
                                ),
                            }
                        }
                    }
                    Err(e) => eprintln!(
                        "cairn: cannot look for runs whose worker stopped: {}",
                        cairn_model::error_chain(&e)
                    ),
                }
                // The bell is rung when stopping: no wait past the stop.
                shared.queued.wait(&mut seen, HEARTBEAT);
            }
        })
}

/// `cairn worker`: `count` workers and the lease thread, until `shutdown`
/// resolves; then no new runs, running ones get `grace` to finish and are
/// marked interrupted after it (queued runs stay queued for other workers).
pub async fn run_worker(
    state: AppState,
    count: usize,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut handles = start(&state, count)?;
    handles.push(start_leases(&state)?);
    shutdown.await;
    eprintln!("cairn worker: stopping: no new runs");
    crate::serve::finish(state, handles, grace).await;
    Ok(())
}
