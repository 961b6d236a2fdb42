//! What every handler shares: the store, the engine, the data directory, the
//! webhook secret, the metrics, and the signal that wakes the workers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn_engine::{DataDir, Engine};
use cairn_store::Store;

use crate::auth::{Actor, Caller};
use crate::metrics::Metrics;
use crate::problem::ApiError;
use crate::secret::WebhookSecrets;

/// How the server behaves; `cairn up` fills it from its flags.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data: DataDir,
    pub platform_dir: Option<PathBuf>,
    /// How long a browser session lasts.
    pub session_ttl_ms: i64,
    /// Mark cookies `Secure` (when served over TLS by a proxy in front).
    pub secure_cookies: bool,
}

/// Shared state, cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub config: ServerConfig,
    /// Each forge's webhook secret (never shared between forges).
    pub webhook_secrets: WebhookSecrets,
    pub metrics: Metrics,
    /// Wakes the workers when a run is queued.
    pub queued: crate::worker::Bell,
    /// Set when the server is stopping: workers take no new runs.
    pub stopping: AtomicBool,
    /// Single sign-on (`[sso]` in org.toml), read when the server starts.
    pub sso: crate::oidc::Sso,
    /// Runs announced changed by the store (live events across processes).
    pub changes: crate::events::Changes,
    /// The read lane: at most [`READ_LANES`] requests' reads run at once, the
    /// others wait their turn here, first come first served (see
    /// [`AppState::read`]).
    pub reads: Arc<tokio::sync::Semaphore>,
}

/// How many requests' store reads run at once: as many as the store has
/// connections for reads (SQLite's readers; PostgreSQL's pool is as large).
/// More would only queue on those connections' locks, on threads, unfairly.
pub const READ_LANES: usize = cairn_store::SqliteStore::READERS;

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        config: ServerConfig,
        webhook_secrets: WebhookSecrets,
    ) -> Self {
        let engine = Engine::new(
            store.clone(),
            config.data.clone(),
            config.platform_dir.clone(),
        );
        let sso = crate::oidc::Sso::load(config.platform_dir.as_deref(), crate::oidc::JWKS_REFETCH);
        AppState(Arc::new(Shared {
            sso,
            store,
            engine,
            config,
            webhook_secrets,
            metrics: Metrics::default(),
            queued: crate::worker::Bell::default(),
            stopping: AtomicBool::new(false),
            changes: crate::events::Changes::default(),
            reads: Arc::new(tokio::sync::Semaphore::new(READ_LANES)),
        }))
    }

    pub fn shared(&self) -> &Shared {
        &self.0
    }

    pub fn store(&self) -> &dyn Store {
        &*self.0.store
    }

    /// Runs blocking work (the store, the engine) off the async threads.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, ApiError> + Send + 'static,
    {
        let shared = self.0.clone();
        self.0.metrics.blocking_call();
        match tokio::task::spawn_blocking(move || work(&shared)).await {
            Ok(result) => result,
            Err(join) => Err(ApiError::internal(&format!(
                "a blocking task failed: {join}"
            ))),
        }
    }

    /// Runs a request's store reads off the async threads, in the read lane:
    /// at most [`READ_LANES`] at once, the rest queued in arrival order (an
    /// async wait, no thread each). Under load, each read then finds a free
    /// connection and runs on one of a few warm threads, instead of hundreds
    /// of threads contending for the connections' locks, where the unlucky
    /// ones waited many times the median. For reads only: work that may take
    /// long (git, a deploy, the network) goes through [`AppState::blocking`],
    /// so it never holds up the reads.
    pub async fn read<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, ApiError> + Send + 'static,
    {
        // The turn is held by the work itself: a client that goes away while
        // its read runs does not free a lane that is still busy.
        let turn = self
            .0
            .reads
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal(&"the read lane is closed"))?;
        self.blocking(move |s| {
            let _turn = turn;
            work(s)
        })
        .await
    }

    /// [`AppState::read`] for `caller`: its credential is checked
    /// ([`Shared::actor`]) in the same blocking call, in the same turn of the
    /// lane, just before `work` runs with the actor — one hand-off for the
    /// request, not one to authenticate and another to read.
    pub async fn read_as<T, F>(&self, caller: Caller, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared, Actor) -> Result<T, ApiError> + Send + 'static,
    {
        self.read(move |s| {
            let actor = s.actor(caller)?;
            work(s, actor)
        })
        .await
    }

    /// [`AppState::blocking`] for `caller`, checked in the same call as
    /// [`AppState::read_as`] does.
    pub async fn blocking_as<T, F>(&self, caller: Caller, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared, Actor) -> Result<T, ApiError> + Send + 'static,
    {
        self.blocking(move |s| {
            let actor = s.actor(caller)?;
            work(s, actor)
        })
        .await
    }

    pub fn is_stopping(&self) -> bool {
        self.0.stopping.load(Ordering::SeqCst)
    }
}
