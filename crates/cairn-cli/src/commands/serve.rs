//! `cairn serve` and `cairn worker`: cairn split into processes that share one
//! database (`--database postgres://…`, or the data directory's SQLite on one
//! machine). `serve` answers the API, web UI and webhooks and runs no run;
//! `worker` claims queued runs and executes them. Both keep no state of their
//! own: runs, logs, identities and leases live in the database; the signing
//! key, the audit log and the webhook secrets are files in the data directory
//! every process mounts (never in the database). `cairn up` stays the
//! all-in-one process on SQLite.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use cairn_server::secret::webhook_secrets;
use cairn_server::serve::{bootstrap_admin, serve_reconciling, stop_signal};
use cairn_server::{AppState, ServerConfig};
use cairn_store::Store;

use super::database::{open_paired, open_waiting, selected};
use super::{data_dir, recover_dead_runs, report_pairing};
use crate::cli::Cli;
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Where to listen (host:port). Anything but loopback exposes the server.
    #[arg(long, default_value = super::up::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// On Ctrl-C or SIGTERM, how long open requests may take (seconds).
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
    /// How long a browser session lasts (hours).
    #[arg(long, default_value_t = 12)]
    pub session_hours: i64,
    /// Mark cookies Secure (when a TLS proxy is in front; implied by --tls-cert).
    #[arg(long)]
    pub secure_cookies: bool,
    #[command(flatten)]
    pub tls: super::tls::TlsArgs,
    /// While the database cannot be reached at start, keep trying this long (seconds).
    #[arg(long, default_value_t = 60)]
    pub database_wait: u64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    /// How many runs this process executes at once.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// On Ctrl-C or SIGTERM, how long running runs may take to finish before
    /// they are marked interrupted (seconds).
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
    /// While the database cannot be reached, at start or later (a run waits
    /// for it), keep trying this long (seconds).
    #[arg(long, default_value_t = 60)]
    pub database_wait: u64,
}

/// The store for a long-lived process: the selected database (waiting for it
/// while it is unreachable), or the data directory's SQLite; paired with the
/// audit log, runs of dead processes on this host marked interrupted.
/// The store of `cairn serve` (`ride_outages` false: a request that cannot
/// reach the database is answered 503 at once) or of `cairn worker` (true: a
/// run waits for the database up to `wait`, as at start).
fn open_shared(
    cli: &Cli,
    wait: u64,
    ride_outages: bool,
) -> Result<(cairn_engine::DataDir, Arc<dyn Store>), Failure> {
    let ride = ride_outages.then(|| Duration::from_secs(wait));
    let data = data_dir(cli)?;
    std::fs::create_dir_all(data.root())
        .with_context(|| format!("cannot create {}", data.root().display()))?;
    let store = match selected() {
        Some(url) => {
            let (store, pairing) =
                open_paired(&data, open_waiting(url, Duration::from_secs(wait), ride)?)?;
            report_pairing(&pairing);
            recover_dead_runs(store)?
        }
        None => super::open_store(&data)?,
    };
    Ok((data, store))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?)
}

pub(super) fn serve_cmd(cli: &Cli, args: &ServeArgs) -> Result<ExitCode, Failure> {
    // A bad certificate or key is refused before anything is opened.
    let tls = args.tls.load()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (data, store) = open_shared(cli, args.database_wait, false)?;
    let (secrets, _) = webhook_secrets(data.root()).with_context(|| {
        format!(
            "cannot read or create the webhook secrets in {}",
            data.root().display()
        )
    })?;
    let config = ServerConfig {
        data: data.clone(),
        platform_dir: cli.platform_dir.clone(),
        session_ttl_ms: args.session_hours.clamp(1, 24 * 30) * 3_600_000,
        secure_cookies: args.secure_cookies || tls.is_some(),
    };
    // `store` outlives the runtime (see `worker_cmd`).
    let state = AppState::new(store.clone(), config, secrets);
    // Replicas starting together on a new database race to create the first
    // admin: one wins, the others find it there.
    let admin = match bootstrap_admin(&state) {
        Ok(admin) => admin,
        Err(_) if store.identity_count()? > 0 => None,
        Err(e) => return Err(anyhow!("cannot create the first admin: {e}").into()),
    };
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        println!(
            "cairn serve: serving on {scheme}://{addr}/ (no workers: `cairn worker` runs queued runs)"
        );
        if let Some(path) = &admin {
            println!(
                "first start: identity `admin` (platform-admin) was created; its token is in {}",
                path.display()
            );
        }
        let grace = Duration::from_secs(args.grace);
        // Whichever replica takes the remediation duty first reconciles what
        // runs with the records, as `cairn up` does on start.
        let reconcile: cairn_server::remediation::Reconcile = {
            let (platform, data, store) = (cli.platform_dir.clone(), data.clone(), store.clone());
            Box::new(move || {
                match super::promote::reconcile_in(platform.as_deref(), &data, &*store) {
                    Ok(done) => println!(
                        "cairn serve: reconciled what runs with the records ({} resolved)",
                        done.resolutions.len()
                    ),
                    Err(e) => eprintln!("cairn serve: reconcile: {:#}", e.error),
                }
            })
        };
        match tls {
            Some(tls) => {
                let listener = cairn_server::tls::TlsListener::new(listener, tls, args.tls.reload())
                    .context("cannot start serving TLS")?;
                serve_reconciling(listener, state, 0, grace, Some(reconcile), stop_signal()).await
            }
            None => serve_reconciling(listener, state, 0, grace, Some(reconcile), stop_signal()).await,
        }
        .context("the server failed")
    })?;
    drop(store);
    println!("cairn serve: stopped");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn worker_cmd(cli: &Cli, args: &WorkerArgs) -> Result<ExitCode, Failure> {
    let (data, store) = open_shared(cli, args.database_wait, true)?;
    let config = ServerConfig {
        data: data.clone(),
        platform_dir: cli.platform_dir.clone(),
        session_ttl_ms: 3_600_000,
        secure_cookies: false,
    };
    // A worker answers no webhook: it reads no forge's secret (these random
    // ones are never shown and never checked against anything).
    let random = cairn_server::secret::Secret::generate;
    let secrets = cairn_server::secret::WebhookSecrets {
        github: random()?,
        gitlab: random()?,
        gitea: random()?,
    };
    // `store` outlives the runtime: the last handle to a PostgreSQL store must
    // not be dropped on an async thread (its client blocks to close).
    let state = AppState::new(store.clone(), config, secrets);
    println!(
        "cairn worker: {} worker(s) waiting for queued runs",
        args.workers.max(1)
    );
    runtime()?
        .block_on(cairn_server::worker::run_worker(
            state,
            args.workers.max(1),
            Duration::from_secs(args.grace),
            stop_signal(),
        ))
        .context("the worker failed")?;
    drop(store);
    println!("cairn worker: stopped");
    Ok(ExitCode::SUCCESS)
}
