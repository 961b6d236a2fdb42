//! The closed loop's remediation loop (`cairn_engine::remediation::Loop`) on a
//! thread of a serving process, run only while this process holds the
//! remediation duty (`duties.rs`): however many replicas serve, one
//! remediates. A process that takes the duty first reconciles what runs with
//! the records (the hook given by the command: `cairn serve`'s start-up
//! reconciliation; `cairn up` reconciled before serving), then loops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use crate::duties::{Duty, pause};
use crate::state::AppState;

/// Run when this process takes the remediation duty, before its first pass.
pub type Reconcile = Box<dyn FnMut() + Send>;

/// Starts the loop.
pub fn start(
    state: &AppState,
    duty: Arc<Duty>,
    mut reconcile: Option<Reconcile>,
) -> std::io::Result<JoinHandle<()>> {
    let state = state.clone();
    std::thread::Builder::new()
        .name("cairn-remediation".into())
        .spawn(move || {
            let shared = state.shared();
            // A fresh loop for each tenure: what another holder attempted
            // meanwhile is in the store, not in this process's memory.
            let mut looper: Option<cairn_engine::remediation::Loop> = None;
            while !shared.stopping.load(Ordering::SeqCst) {
                if !duty.held() {
                    looper = None;
                } else {
                    let looper = looper.get_or_insert_with(|| {
                        if let Some(reconcile) = reconcile.as_mut() {
                            reconcile();
                        }
                        cairn_engine::remediation::Loop::default()
                    });
                    let ran = looper.tick(
                        &shared.config.data,
                        shared.store.clone(),
                        shared.config.platform_dir.as_deref(),
                        &mut |line| println!("remediation: {line}"),
                    );
                    if let Err(e) = ran {
                        eprintln!("remediation: {}", cairn_model::error_chain(&e));
                    }
                }
                pause(&state, cairn_engine::remediation::POLL);
            }
        })
}
