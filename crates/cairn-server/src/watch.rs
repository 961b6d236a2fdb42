//! The exposure watch: a thread that, every few seconds while `cairn up`
//! runs, sends each exposure that went past its deadline to the
//! organisation's change webhook, once (`cairn_engine::exposures::notify_overdue`
//! keeps the ledger). org.toml is read again each time. It runs only while
//! this process holds the watch's duty (`duties.rs`), renewed right before
//! each look, so two replicas never read and append the ledger at once and an
//! overdue exposure is sent once, not once per replica.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::duties::Duty;
use crate::state::AppState;

/// How often overdue exposures are looked for.
pub const EVERY: Duration = Duration::from_secs(2);

/// Starts the watch.
pub fn start(state: &AppState, duty: Arc<Duty>) -> std::io::Result<JoinHandle<()>> {
    let state = state.clone();
    std::thread::Builder::new()
        .name("cairn-exposure-watch".into())
        .spawn(move || run(&state, &duty))
}

fn run(state: &AppState, duty: &Duty) {
    let shared = state.shared();
    while !shared.stopping.load(Ordering::SeqCst) {
        // Not the holder (or the lease could not be renewed): another process
        // watches. Renewed now, the lease outlasts this look.
        if !duty.held() || !duty.confirm(state) {
            crate::duties::pause(state, EVERY);
            continue;
        }
        match cairn_engine::load_org(shared.config.platform_dir.as_deref()) {
            Ok(org) => match cairn_engine::exposures::notify_overdue(
                &*shared.store,
                &shared.config.data,
                &org,
                cairn_engine::now_ms(),
            ) {
                Ok(sent) => {
                    for n in sent {
                        let e = &n.exposure;
                        let how = match &n.delivery {
                            Ok(()) if org.change_sink.webhook.is_none() => {
                                "sent to the notification sinks".to_owned()
                            }
                            Ok(()) => "sent to the change webhook".to_owned(),
                            Err(why) => format!("not delivered to the change webhook: {why}"),
                        };
                        eprintln!(
                            "cairn up: exposure OVERDUE: {} {} in {} ({} {}): {how}",
                            e.advisory, e.package, e.environment, e.workload, e.digest
                        );
                    }
                }
                Err(e) => eprintln!("cairn up: exposure watch: {}", cairn_model::error_chain(&e)),
            },
            Err(e) => eprintln!(
                "cairn up: exposure watch: org.toml cannot be read: {}",
                cairn_model::error_chain(&e)
            ),
        }
        let until = Instant::now() + EVERY;
        while Instant::now() < until && !shared.stopping.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
