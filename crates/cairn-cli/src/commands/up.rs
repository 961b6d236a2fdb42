//! `cairn up`: the server — API, web UI, webhooks, live logs, metrics and
//! workers — in one process on the embedded default (SQLite and blobs in the
//! data directory). On first start it creates identity `admin` and writes its
//! token to a 0600 file, printing the file's path (never the token).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use cairn_server::secret::webhook_secrets;
use cairn_server::serve::{bootstrap_admin, serve, stop_signal};
use cairn_server::{AppState, ServerConfig};

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;

/// The default address: loopback only.
pub(super) const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Where to listen (host:port). Anything but loopback exposes the server.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// How many runs may execute at once.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// On Ctrl-C or SIGTERM, how long running runs may take to finish before
    /// they are marked interrupted (seconds).
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
}

pub(super) fn up(cli: &Cli, args: &UpArgs) -> Result<ExitCode, Failure> {
    super::database::refuse_postgres_for_up()?;
    // A bad certificate or key is refused before anything is opened.
    let tls = args.tls.load()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let data = data_dir(cli)?;
    std::fs::create_dir_all(data.root())
        .with_context(|| format!("cannot create {}", data.root().display()))?;
    // Held while the server lives: `cairn restore` refuses a live directory.
    let _live = cairn_engine::backup::take_live_lock(&data)?.ok_or_else(|| {
        Failure::user(anyhow!(
            "another `cairn up` is serving {}",
            data.root().display()
        ))
    })?;
    let store = open_store(&data)?;
    // What runs against what was recorded, before the server answers anything.
    super::promote::reconcile_and_report(cli, &data, &*store)?;
    let (secrets, secret_paths) = webhook_secrets(data.root()).with_context(|| {
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
    let state = AppState::new(store, config, secrets);
    let admin =
        bootstrap_admin(&state).map_err(|e| anyhow!("cannot create the first admin: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr().context("cannot read the listening address")?;
        println!("cairn is serving on {scheme}://{addr}/ (API: {scheme}://{addr}/api/openapi.json)");
        println!("data directory: {}", data.root().display());
        match &admin {
            Some(path) => println!(
                "first start: identity `admin` (platform-admin) was created; its token is in {} (log in with it at {scheme}://{addr}/login)",
                path.display()
            ),
            None => println!("log in at {scheme}://{addr}/login with an identity's token (cairn identity add)"),
        }
        let dir = secret_paths
            .first()
            .and_then(|p| p.parent())
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        println!(
            "forge webhooks: POST {scheme}://{addr}/webhooks/{{github,gitlab,gitea}}, each with its own secret in {dir}/webhook-{{github,gitlab,gitea}}.secret"
        );
        println!("stop with Ctrl-C: running runs get {} s to finish", args.grace);
        let (workers, grace) = (args.workers.max(1), Duration::from_secs(args.grace));
        match tls {
            Some(tls) => {
                let listener = cairn_server::tls::TlsListener::new(listener, tls, args.tls.reload())
                    .context("cannot start serving TLS")?;
                serve(listener, state, workers, grace, stop_signal()).await
            }
            None => serve(listener, state, workers, grace, stop_signal()).await,
        }
        .context("the server failed")
    })?;
    // The closed loop's remediation loop ran on the server's thread under
    // its duty (`cairn_server::remediation`; it reconciled above). A
    // remediation under way is not waited for: its lock is released with the
    // process, and its status then reads `interrupted` (what it promoted was
    // recorded first, and reconciliation resolves a promotion cut short).
    println!("cairn up: stopped");
    Ok(ExitCode::SUCCESS)
}
