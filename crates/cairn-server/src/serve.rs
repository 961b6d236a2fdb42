//! `cairn up` and `cairn serve` (no workers): bootstrap the first admin, bind,
//! serve, start the workers, the lease thread and the run-change listener, and
//! stop gracefully — no new requests or runs, open event streams told to end,
//! running runs finished within the grace period or marked interrupted; queued
//! runs stay queued for the next start. The advisory feed (`feed.rs`), the
//! exposure watch (`watch.rs`) and the remediation loop (`remediation.rs`) run
//! beside them, each only while this process holds its duty's lease
//! (`duties.rs`: one process at a time across replicas), and stop with them.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cairn_engine::access;
use cairn_model::IdentityKind;

use crate::routes::app;
use crate::secret::{server_dir, write_private};
use crate::state::AppState;
use cairn_engine::now_ms;

/// The name of the identity `cairn up` creates on first start.
pub const ADMIN: &str = "admin";

/// On first start (no identity yet) creates identity `admin`, bound
/// platform-admin, and writes its token to `<data>/server/admin.token` (0600).
/// Returns the file's path when it did.
pub fn bootstrap_admin(state: &AppState) -> Result<Option<PathBuf>, String> {
    let s = state.shared();
    if s.store.identity_count().map_err(|e| e.to_string())? > 0 {
        return Ok(None);
    }
    let created = access::create_identity(
        &*s.store,
        &s.config.data,
        None,
        ADMIN,
        IdentityKind::User,
        now_ms(),
    )
    .map_err(|e| cairn_model::error_chain(&e))?;
    let path = server_dir(s.config.data.root()).join("admin.token");
    // A stale file from an earlier data directory's life is replaced.
    let _ = std::fs::remove_file(&path);
    write_private(&path, format!("{}\n", created.token.expose()).as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Some(path))
}

/// Serves `state` on `listener` (a `TcpListener`, or a
/// [`crate::tls::TlsListener`] over one) until `shutdown` resolves, with
/// `workers` workers; then stops as described in the module documentation.
pub async fn serve<L>(
    listener: L,
    state: AppState,
    workers: usize,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    serve_reconciling(listener, state, workers, grace, None, shutdown).await
}

/// [`serve`], with `reconcile` run when this process takes the remediation
/// duty (`cairn serve`: whichever replica takes it reconciles first).
pub async fn serve_reconciling<L>(
    listener: L,
    state: AppState,
    workers: usize,
    grace: Duration,
    reconcile: Option<crate::remediation::Reconcile>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let mut handles = crate::worker::start(&state, workers)?;
    handles.push(crate::worker::start_leases(&state)?);
    handles.push(crate::events::start_listener(&state)?);
    let duties = crate::duties::Duties::default();
    handles.push(crate::duties::start(&state, &duties)?);
    handles.push(crate::feed::start(&state, duties.feed.clone())?);
    handles.push(crate::watch::start(&state, duties.watch.clone())?);
    handles.push(crate::remediation::start(
        &state,
        duties.remediation.clone(),
        reconcile,
    )?);
    let stopping = state.clone();
    // `into_make_service`: each connection gets the router by a clone of its
    // `Arc`. Handed the `Router` itself, axum makes each connection a copy of
    // the whole route table (`Router::with_state(())` clones every route) and
    // drops it when the connection ends: with a connection per request, that
    // rebuild and its hundreds of allocations were the largest cost of a
    // request in the server after the kernel's (issue 19).
    let result = axum::serve(listener, app(state.clone()).into_make_service())
        .with_graceful_shutdown(async move {
            shutdown.await;
            eprintln!("cairn up: stopping: no new requests or runs");
            stopping.0.stopping.store(true, Ordering::SeqCst);
            stopping.0.queued.ring();
        })
        .await;
    finish(state.clone(), handles, grace).await;
    // Whatever the lease thread did not get to release (it was still being
    // joined when the grace ran out): a restart takes these duties at once.
    let _ = state
        .blocking(|shared| {
            crate::duties::release_all(shared);
            Ok(())
        })
        .await;
    result
}

/// Stops `handles` (workers and the threads beside them): no new runs; running
/// ones get `grace` to finish, then this process's runs still running are
/// marked interrupted with their reason.
pub(crate) async fn finish(
    state: AppState,
    handles: Vec<std::thread::JoinHandle<()>>,
    grace: Duration,
) {
    state.0.stopping.store(true, Ordering::SeqCst);
    state.0.queued.ring();
    let deadline = Instant::now() + grace;
    let join = tokio::task::spawn_blocking(move || {
        for handle in handles {
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    });
    let _ = join.await;
    // Runs still going past the grace period are marked interrupted now, with
    // their reason, rather than left for the next start to find.
    let interrupted = state
        .blocking(|s| {
            Ok(s.engine
                .interrupt_own_runs("cairn up stopped before the run finished")?)
        })
        .await;
    match interrupted {
        Ok(ids) if !ids.is_empty() => {
            eprintln!("cairn up: marked interrupted: runs {ids:?}");
        }
        Ok(_) => {}
        Err(e) => eprintln!("cairn up: {}", e.detail),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
