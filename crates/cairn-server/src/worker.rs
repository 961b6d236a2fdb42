//! Workers: threads that take queued runs (from the API and webhooks) one at a
//! time and execute them through the engine. A run is claimed atomically in the
//! store, so two workers (or two servers) never take the same run; a queued run
//! waits in the store, so a restart loses nothing that was acknowledged.

use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::state::AppState;

/// How long an idle worker sleeps before looking at the queue again (runs
/// queued by another process ring no bell here).
const IDLE: Duration = Duration::from_secs(1);

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
        match shared.engine.execute_next(&mut ()) {
            Ok(Some(run)) => {
                eprintln!(
                    "cairn up: run {} of {} {}",
                    run.id, run.workload, run.status
                );
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
