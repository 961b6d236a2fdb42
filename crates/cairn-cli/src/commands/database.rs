//! `--database URL` / `CAIRN_DATABASE_URL`: which store every command opens
//! (`sqlite://DIR` or `postgres://…`; default: the data directory's SQLite).
//! The URL may hold a password: it is never printed (`Debug` redacts it, and
//! messages name the server from the parsed configuration).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use cairn_engine::DataDir;
use cairn_store::{Store, StoreError};

use crate::exit::Failure;

/// A database URL as given: kept whole for the store, never shown.
#[derive(Clone)]
pub(crate) struct DatabaseUrl(String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({}://…)", self.scheme())
    }
}

/// Never refused here: a parser's error would be printed with the value (and
/// a password in it); the store refuses what it cannot open, naming only the
/// scheme ([`cairn_store::open`]).
impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrl(s.to_owned()))
    }
}

impl DatabaseUrl {
    /// The URL itself, for a store to connect with (never to print).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// The scheme, when it is one (what precedes `://` in a mistyped URL
    /// could be a password: anything else is `?`).
    fn scheme(&self) -> &str {
        self.0
            .split_once("://")
            .map(|(s, _)| s)
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= 32
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            })
            .unwrap_or("?")
    }
}

/// `cairn up` is the all-in-one process on SQLite: on PostgreSQL, the server
/// and the workers are separate processes.
pub(crate) fn refuse_postgres_for_up() -> Result<(), Failure> {
    match selected() {
        Some(url) if url.scheme().starts_with("postgres") => Err(Failure::user(anyhow!(
            "`cairn up` is the all-in-one process on SQLite; on PostgreSQL run \
             `cairn serve --listen ADDR` and `cairn worker`"
        ))),
        _ => Ok(()),
    }
}

static SELECTED: OnceLock<Option<DatabaseUrl>> = OnceLock::new();

/// Records the database the command line chose (once, before any store opens).
pub(crate) fn select(url: Option<&DatabaseUrl>) {
    let _ = SELECTED.set(url.cloned());
}

/// The database `--database` / `CAIRN_DATABASE_URL` named, if any.
pub(crate) fn selected() -> Option<&'static DatabaseUrl> {
    SELECTED.get().and_then(Option::as_ref)
}

/// Opens the named database as it is (migrated, its schema version checked;
/// no pairing with the audit log: the caller does that).
pub(crate) fn open_url(url: &DatabaseUrl) -> Result<Arc<dyn Store>, Failure> {
    let store = cairn_store::open(&url.0).map_err(open_failure)?;
    Ok(shared(store))
}

/// Every append to the audit log by this process also takes the shared
/// store's log lock (one appender at a time across hosts).
fn shared(store: Arc<dyn Store>) -> Arc<dyn Store> {
    cairn_engine::audit::serialise_appends_through(store.clone());
    store
}

fn open_failure(e: StoreError) -> Failure {
    let failure = Failure::from(e);
    Failure {
        code: failure.code,
        error: failure
            .error
            .context("cannot open the store --database (CAIRN_DATABASE_URL) names"),
    }
}

/// The first wait between attempts to reach the database, doubled each time up
/// to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Opens the named database for a long-lived process (`cairn serve`, `cairn
/// worker`): while the server cannot be reached at all, tries again with
/// backoff for up to `wait`, saying so on stderr each time; any other error
/// (a schema newer than this cairn, a refused URL) fails at once. With
/// `outage`, the store rides out the server going away later the same way
/// (a worker: its runs wait for the database rather than fail); without, a
/// transaction that cannot reach it fails at once (a server answers 503).
pub(crate) fn open_waiting(
    url: &DatabaseUrl,
    wait: Duration,
    outage: Option<Duration>,
) -> Result<Arc<dyn Store>, Failure> {
    let deadline = Instant::now() + wait;
    let mut backoff = FIRST_BACKOFF;
    let outage = outage.map_or_else(cairn_store::Outage::default, |wait| cairn_store::Outage {
        wait,
        say: say_unreachable,
    });
    loop {
        match cairn_store::open_riding_outages(&url.0, outage) {
            Ok(store) => return Ok(shared(store)),
            Err(e) if e.is_unreachable() && Instant::now() + backoff < deadline => {
                eprintln!(
                    "cairn: {}; trying again in {} ms",
                    cairn_model::error_chain(&e),
                    backoff.as_millis()
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) if e.is_unreachable() => {
                let failure = open_failure(e);
                return Err(Failure {
                    code: failure.code,
                    error: failure.error.context(anyhow!(
                        "gave up after {} s (--database-wait)",
                        wait.as_secs()
                    )),
                });
            }
            Err(e) => return Err(open_failure(e)),
        }
    }
}

/// What a process riding out a database outage prints before each wait (the
/// target named, never a password).
fn say_unreachable(e: &StoreError, backoff: Duration) {
    eprintln!(
        "cairn: the database went away ({}); trying again in {} ms (--database-wait)",
        cairn_model::error_chain(e),
        backoff.as_millis()
    );
}

/// Opens the selected store and pairs it with the data directory's audit log
/// ([`cairn_engine::pairing::check`]).
pub(crate) fn open_paired(
    data: &DataDir,
    store: Arc<dyn Store>,
) -> Result<(Arc<dyn Store>, cairn_engine::pairing::Pairing), Failure> {
    let pairing = cairn_engine::pairing::check(data, &*store, cairn_engine::now_ms())?;
    Ok((store, pairing))
}

/// Refuses `command` (which works on the data directory's own SQLite file)
/// when `--database` names another store, rather than act on the wrong one.
pub(crate) fn refuse_other_database(command: &str) -> Result<(), Failure> {
    match selected() {
        None => Ok(()),
        Some(url) => Err(Failure::user(anyhow!(
            "`cairn {command}` works on the data directory's own SQLite store, not on the \
             {} store --database names (PostgreSQL: use pg_dump and pg_restore)",
            url.scheme()
        ))),
    }
}
