//! The installation's duties — the advisory feed (`feed.rs`), the exposure
//! watch (`watch.rs`) and the remediation loop with the reconciliation of
//! deployments (`remediation.rs`) — run in exactly one process at a time
//! however many `cairn serve` replicas share the database: the one holding the
//! duty's lease in the store ([`cairn_store::ServerStore::take_duty`]). Every
//! serving process contends for each duty every [`RENEW`]; the holder renews
//! its lease, and when it dies (or loses the database) its lease runs out
//! after [`LEASE`] and another process takes the duty over. A process stopping
//! releases what it holds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::state::AppState;

/// How long a duty's lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often the lease thread renews (or tries to take) each duty.
pub const RENEW: Duration = Duration::from_secs(2);

/// The advisory feed's duty.
pub const FEED: &str = "advisory-feed";
/// The exposure watch's duty.
pub const WATCH: &str = "exposure-watch";
/// The remediation loop's duty (with the reconciliation of deployments).
pub const REMEDIATION: &str = "remediation";

/// One duty and whether this process holds its lease, as last renewed.
#[derive(Debug)]
pub struct Duty {
    pub name: &'static str,
    held: AtomicBool,
    /// When the last renewal that found the lease ours was asked for (by this
    /// machine's monotonic clock: the lease runs from no earlier than that).
    renewed: Mutex<Option<Instant>>,
}

impl Duty {
    /// Whether this process holds the lease: its last renewal found it ours,
    /// and was asked for recently enough that the lease has a renewal period
    /// left. A lease thread stalled (a slow database) lets the duty lapse here
    /// before another process may take it there.
    pub fn held(&self) -> bool {
        self.renewed
            .lock()
            .ok()
            .and_then(|r| *r)
            .is_some_and(|at| at.elapsed() < LEASE.saturating_sub(RENEW))
            && self.held.load(Ordering::SeqCst)
    }

    /// Renews the lease now and says whether it is still this process's: a
    /// duty asks this right before an act that must not be done twice (an
    /// overdue notice), so that it then holds the lease for a full [`LEASE`].
    pub fn confirm(&self, state: &AppState) -> bool {
        self.renew(state);
        self.held()
    }

    /// Tries to take or renew the lease; returns whether it was held before
    /// and is now.
    fn renew(&self, state: &AppState) -> (bool, bool) {
        let asked = Instant::now();
        let was = self.held.load(Ordering::SeqCst);
        let now = take(state, self.name);
        if let Ok(mut renewed) = self.renewed.lock() {
            *renewed = now.then_some(asked);
        }
        self.held.store(now, Ordering::SeqCst);
        (was, now)
    }
}

/// The duties of a serving process, each not held until the lease thread
/// takes it.
#[derive(Debug, Clone)]
pub struct Duties {
    pub feed: Arc<Duty>,
    pub watch: Arc<Duty>,
    pub remediation: Arc<Duty>,
}

impl Default for Duties {
    fn default() -> Self {
        let duty = |name| {
            Arc::new(Duty {
                name,
                held: AtomicBool::new(false),
                renewed: Mutex::new(None),
            })
        };
        Self {
            feed: duty(FEED),
            watch: duty(WATCH),
            remediation: duty(REMEDIATION),
        }
    }
}

impl Duties {
    fn all(&self) -> [&Arc<Duty>; 3] {
        [&self.feed, &self.watch, &self.remediation]
    }
}

/// This process's name as a duty's holder: host, pid and the process's start
/// time ([`cairn_engine::process_tag`]; a restarted process with a reused pid
/// is another holder, and a holder on this host can be seen to be gone).
pub fn owner() -> &'static str {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER.get_or_init(cairn_engine::process_tag)
}

fn take(state: &AppState, duty: &str) -> bool {
    let ttl = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    let store = &state.shared().store;
    let attempt = || store.take_duty(duty, owner(), ttl, cairn_engine::now_ms());
    let taken = attempt().and_then(|held| {
        if held {
            return Ok(true);
        }
        // A lease whose holder ran on this host and is gone (killed, or this
        // very installation restarted right after a stop that could not
        // release it) is taken over now rather than after it runs out: only
        // that holder's lease is released, so a live holder keeps its own.
        match store.duty_holder(duty)? {
            Some(holder) if cairn_engine::process_gone(&holder) => {
                if store.release_duty(duty, &holder)? {
                    eprintln!(
                        "cairn: duty `{duty}`: its holder {holder} is gone from this host; taking it over now"
                    );
                }
                attempt()
            }
            _ => Ok(false),
        }
    });
    match taken {
        Ok(held) => held,
        Err(e) => {
            // Fail closed: a process that cannot renew does not act.
            eprintln!(
                "cairn: cannot renew the lease of duty `{duty}`: {}",
                cairn_model::error_chain(&e)
            );
            false
        }
    }
}

/// Releases whatever lease on the duties this process still holds in the
/// store (a process stopping; the lease thread releases what it held when it
/// ends, but may not have ended within the grace period). Only this process's
/// leases are touched.
pub(crate) fn release_all(shared: &crate::state::Shared) {
    for duty in [FEED, WATCH, REMEDIATION] {
        let _ = shared.store.release_duty(duty, owner());
    }
}

/// Starts the lease thread for `duties`; it stops with the process's
/// `stopping` flag, releasing what it holds.
pub fn start(state: &AppState, duties: &Duties) -> std::io::Result<JoinHandle<()>> {
    let (state, duties) = (state.clone(), duties.clone());
    std::thread::Builder::new()
        .name("cairn-duties".to_owned())
        .spawn(move || {
            let shared = state.shared();
            while !shared.stopping.load(Ordering::SeqCst) {
                for duty in duties.all() {
                    let (was, now) = duty.renew(&state);
                    if now && !was {
                        eprintln!(
                            "cairn: this process holds duty `{}` ({})",
                            duty.name,
                            owner()
                        );
                    } else if was && !now {
                        eprintln!("cairn: this process no longer holds duty `{}`", duty.name);
                    }
                }
                pause(&state, RENEW);
            }
            for duty in duties.all() {
                if duty.held.swap(false, Ordering::SeqCst) {
                    let _ = shared.store.release_duty(duty.name, owner());
                }
            }
        })
}

/// Waits `how_long`, or less when the process is stopping.
pub(crate) fn pause(state: &AppState, how_long: Duration) {
    let until = std::time::Instant::now() + how_long;
    while std::time::Instant::now() < until && !state.shared().stopping.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duty(held: bool, renewed_ago: Option<Duration>) -> Duty {
        Duty {
            name: FEED,
            held: AtomicBool::new(held),
            renewed: Mutex::new(renewed_ago.and_then(|ago| Instant::now().checked_sub(ago))),
        }
    }

    #[test]
    fn a_lease_not_renewed_lately_is_not_held_here_before_it_runs_out_there() {
        assert!(duty(true, Some(Duration::ZERO)).held());
        assert!(!duty(false, Some(Duration::ZERO)).held());
        assert!(!duty(true, None).held());
        // Renewed once, then the lease thread stalled: given up a renewal
        // period before the database would let another process take it.
        assert!(!duty(true, Some(LEASE - RENEW)).held());
        assert!(!duty(true, Some(LEASE)).held());
    }
}
