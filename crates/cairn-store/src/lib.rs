//! Durable state: workloads, runs, stages, step logs, evidence, advisories, SBOMs,
//! findings, the catalog, identities, deployments and what the server keeps.
//!
//! [`Store`] is the only way the engine, the CLI and the server touch state. It is
//! the sum of focused traits, one per concern ([`RunStore`], [`EvidenceStore`],
//! [`InventoryStore`], [`CatalogStore`], [`AccessStore`], [`DeploymentStore`],
//! [`ServerStore`]), each in its own module beside the types it speaks; a backend
//! implements each in its own file (see `sqlite/`) and is a `Store` by the blanket
//! impl. Code holding `&dyn Store` calls every method without importing the
//! focused traits; code holding a concrete backend imports [`prelude`].
//!
//! It is synchronous (call it from `spawn_blocking` in async code) and object-safe,
//! so backends are interchangeable: [`SqliteStore`] (one machine, the default) and
//! `PostgresStore` (a server many processes share, with the `postgres` feature);
//! [`open`] picks one from a database URL. Every backend passes the same
//! `conformance` suite (behind the `conformance` feature, which only tests turn
//! on), on SQLite in `tests/sqlite.rs` and on a real PostgreSQL in
//! `tests/postgres.rs`.
//!
//! The store never reads the clock: every timestamp (`*_ms`, unix milliseconds) is
//! passed in by the caller, which keeps tests deterministic.
//!
//! State transitions are checked here, not trusted to callers:
//!
//! ```text
//! run:   queued -> running -> succeeded | failed | interrupted   (final: never changes again)
//!        queued -> succeeded | failed | interrupted              (ended before it started)
//! stage: pending -> running -> passed | failed | skipped | interrupted
//!        pending -> skipped                                      (when its run ends)
//! ```
//!
//! A run in a final state has no `pending` or `running` stage left: finishing or
//! interrupting a run settles them (`pending` -> `skipped`, `running` -> `interrupted`).

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
#[cfg(feature = "postgres")]
mod postgres;
mod schema;
mod sqlite;

mod access;
mod catalog;
mod deployments;
mod evidence;
mod inventory;
mod runs;
mod server;

pub use access::AccessStore;
pub use catalog::CatalogStore;
pub use deployments::{DeploymentStore, MAX_CHANGE_JSON_BYTES};
pub use error::StoreError;
pub use evidence::{EvidenceStore, MAX_EVIDENCE_BYTES};
pub use inventory::{
    AdvisoryPut, CompiledRow, FindingFilter, FindingKey, FindingState, InventoryStore,
    MAX_ADVISORY_BYTES, MAX_SBOM_BYTES, MAX_SBOM_COMPONENTS, MatchOutcome, MatchScope, NewAdvisory,
    NewFinding, NewSbom, PackageHit, RematchRecord, SbomSummary, StoredAdvisory, StoredComponent,
    StoredFinding, StoredMatcher,
};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use runs::{
    EndedStage, LogStats, RunChanges, RunCursor, RunEnd, RunFilter, RunStore, StageBoundary,
    StageDurationStat, TriggerKind, commit_prefix,
};
pub use schema::SCHEMA_VERSION;
pub use server::{DeliveryAccepted, LogMark, ServerStore};
pub use sqlite::SqliteStore;

/// How a store on a database server rides out the server going away: a
/// transaction that cannot reach it (down, restarting, its connection ended:
/// [`StoreError::is_unreachable`]) is tried again, before any of it ran, with a
/// backoff from [`Outage::FIRST_BACKOFF`] doubling to [`Outage::MAX_BACKOFF`],
/// for up to `wait`, `say` told before each wait; then it fails. The default
/// waits not at all (a server answers "unavailable" at once). SQLite, one
/// file on this machine, has no outage to ride.
#[derive(Debug, Clone, Copy)]
pub struct Outage {
    pub wait: std::time::Duration,
    pub say: fn(&StoreError, std::time::Duration),
}

impl Outage {
    pub const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(250);
    pub const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(4);
}

impl Default for Outage {
    fn default() -> Self {
        Outage {
            wait: std::time::Duration::ZERO,
            say: |_, _| {},
        }
    }
}

/// [`open`], the store riding out its server's outages as `outage` says.
pub fn open_riding_outages(
    url: &str,
    outage: Outage,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut store = PostgresStore::open(url)?;
        store.ride_outages(outage);
        return Ok(std::sync::Arc::new(store));
    }
    let _ = outage;
    open(url)
}

/// Opens the store a database URL names, as a shared [`Store`]:
///
/// - `sqlite://DIR`: the SQLite store in the data directory `DIR` (its
///   `cairn.db`, created if missing; see [`SqliteStore::open`]);
/// - `postgres://…` or `postgresql://…`: the PostgreSQL store (`PostgresStore`,
///   with the `postgres` feature; unix socket or loopback, no TLS).
///
/// Anything else is refused as [`StoreError::Invalid`], naming the scheme only
/// (a URL may hold a password).
pub fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if let Some(dir) = url.strip_prefix("sqlite://") {
        if dir.is_empty() {
            return Err(StoreError::Invalid {
                what: "database URL",
                why: "`sqlite://` needs the data directory's path (sqlite:///var/lib/cairn)"
                    .to_owned(),
            });
        }
        return Ok(std::sync::Arc::new(SqliteStore::open(
            std::path::Path::new(dir),
        )?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(std::sync::Arc::new(PostgresStore::open(url)?));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::Invalid {
            what: "database URL",
            why: "this cairn was built without the PostgreSQL store (cairn-store's \
                  `postgres` feature)"
                .to_owned(),
        });
    }
    // Only a scheme's own characters are repeated (what precedes `://` in a
    // mistyped URL could be a password).
    let scheme = url
        .split_once("://")
        .map(|(s, _)| s)
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        })
        .unwrap_or("(none)");
    Err(StoreError::Invalid {
        what: "database URL",
        why: format!(
            "scheme `{scheme}` is not one cairn knows: use sqlite://DIR or postgres://USER@HOST/DB"
        ),
    })
}

/// The focused traits, for code that calls the store's methods on a concrete
/// backend or a generic `S: Store` (methods called on `dyn Store` need no import):
/// `use cairn_store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        AccessStore, CatalogStore, DeploymentStore, EvidenceStore, InventoryStore, RunStore,
        ServerStore, Store,
    };
}

/// Durable state of cairn: every focused trait at once. Every method is one
/// transaction: it happens entirely or not at all, and once it returns `Ok` the
/// change survives a crash or power loss.
///
/// A backend implements the focused traits, one file per concern (see
/// `sqlite/` and `postgres/`); it is a `Store` by the blanket impl. Code that
/// holds `&dyn Store` or `Arc<dyn Store>` calls every method without importing
/// the focused traits.
pub trait Store:
    RunStore
    + EvidenceStore
    + InventoryStore
    + CatalogStore
    + AccessStore
    + DeploymentStore
    + ServerStore
    + Send
    + Sync
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: RunStore
        + EvidenceStore
        + InventoryStore
        + CatalogStore
        + AccessStore
        + DeploymentStore
        + ServerStore
        + Send
        + Sync
        + std::fmt::Debug
{
}
