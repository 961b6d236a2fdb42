//! The PostgreSQL backend: the same schema (one migration list, see
//! [`crate::schema`]) and the same semantics as SQLite, on a server many cairn
//! processes share.
//!
//! The client is rust-postgres's synchronous `postgres` crate (the trait is
//! synchronous), without TLS: a unix socket or loopback. A small pool of
//! connections, each behind a mutex, serves the store; a connection that broke is
//! made again on its next use. A transaction that cannot reach the server
//! before it begins waits for it as the store's [`crate::Outage`] says (a
//! worker: with backoff; a server: not at all, the caller answers 503).
//!
//! Transactions match SQLite's: every write transaction first takes one
//! transaction-level advisory lock ([`WRITE_LOCK`]), so writers are serialised as
//! SQLite's `BEGIN IMMEDIATE` serialises them (a check followed by a write sees
//! no other writer in between, in every process), and commits are durable
//! (`synchronous_commit` stays on). The writes of one run's progress (a
//! worker's claim, its stages' starts and ends, its log lines) take that lock
//! shared and lock their run's rows instead ([`Lock::Run`]): workers on
//! different runs write side by side, and every other writer, holding the
//! lock exclusively, still sees none of them between its check and its write.
//! A read of one statement runs outside any transaction (PostgreSQL gives one
//! statement one snapshot): one round trip, not three ([`PostgresStore::read`]);
//! a read of several statements runs in one `REPEATABLE READ, READ ONLY`
//! transaction (one snapshot, [`PostgresStore::snapshot`]), beside writers.
//! Every statement is prepared once per connection and kept. Text columns use
//! the `"C"` collation, so orderings are byte order, as in SQLite.

mod access;
mod deployments;
mod evidence;
mod images;
mod inventory;
mod runs;
mod schema;
mod server;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};

use crate::StoreError;

/// The advisory lock every write transaction holds: one writer at a time, as
/// in SQLite. (`cairn` in ASCII, then 1.)
pub(crate) const WRITE_LOCK: i64 = 0x6361_6972_6e00_0001;

/// The session advisory lock the audit log's appender holds across every
/// process sharing the database ([`crate::ServerStore::lock_audit_log`]).
pub(crate) const LOG_LOCK: i64 = 0x6361_6972_6e00_0002;

/// One pooled connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// The [`Store`](crate::Store) on PostgreSQL.
pub struct PostgresStore {
    config: Config,
    /// The server and database, for messages (never a password).
    target: String,
    pool: Vec<Mutex<Option<Conn>>>,
    next: AtomicUsize,
    /// Round trips to the server so far (statements, their preparing, `BEGIN`
    /// and `COMMIT`): what a call costs, for tests.
    round_trips: AtomicU64,
    /// How this store rides out the server going away (default: not at all).
    outage: crate::Outage,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Parameters of a statement.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A transaction (or a single-statement read) and its connection's prepared
/// statements: what the concerns' files run their SQL through.
pub(crate) struct Tx<'a> {
    client: &'a mut Client,
    statements: &'a mut HashMap<String, Statement>,
    /// Begun and neither committed nor rolled back: dropping rolls it back.
    open: bool,
    /// Outside a transaction (a [`PostgresStore::read`]): whether its one
    /// statement has run. A second one is refused, since it would see another
    /// snapshot than the first.
    single: Option<bool>,
    /// The store's count of round trips to the server.
    trips: &'a AtomicU64,
}

/// What a write transaction locks before its first statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// [`WRITE_LOCK`] exclusively: no other writer at all until it ends.
    All,
    /// [`WRITE_LOCK`] shared, beside other such writers: for the writes of one
    /// run's progress, which lock that run's row (and their stage's) `FOR
    /// UPDATE` before they read what they check, and touch only that run's
    /// rows (its stages and log lines). Two of them on one run take turns on the row; any
    /// [`Lock::All`] writer waits for them and they for it.
    Run,
}

/// Prepared statements kept per connection at most; past it the cache starts
/// again (every statement the store runs is one of a bounded set, so this is
/// only a backstop).
const STATEMENT_CACHE: usize = 512;

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // A broken connection has no transaction left to roll back.
            self.trips.fetch_add(1, Ordering::Relaxed);
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

impl Tx<'_> {
    fn statement(&mut self, what: &'static str, sql: &str) -> Result<Statement, StoreError> {
        if let Some(ran) = &mut self.single {
            if *ran {
                return Err(StoreError::SecondStatement { what });
            }
            *ran = true;
        }
        // The statement's own round trip (the caller runs it next).
        self.trips.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        self.trips.fetch_add(1, Ordering::Relaxed);
        let s = self
            .client
            .prepare(sql)
            .map_err(|e| StoreError::postgres(what, e))?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Every row of `sql`, each read by `f`.
    pub(crate) fn all<T>(
        &mut self,
        what: &'static str,
        sql: &str,
        params: Params<'_>,
        mut f: impl FnMut(&Row) -> Result<T, postgres::Error>,
    ) -> Result<Vec<T>, StoreError> {
        let s = self.statement(what, sql)?;
        let rows = self
            .client
            .query(&s, params)
            .map_err(|e| StoreError::postgres(what, e))?;
        rows.iter()
            .map(|r| f(r).map_err(|e| StoreError::postgres(what, e)))
            .collect()
    }

    /// The one row of `sql` or none (more than one is an error).
    pub(crate) fn opt<T>(
        &mut self,
        what: &'static str,
        sql: &str,
        params: Params<'_>,
        f: impl FnOnce(&Row) -> Result<T, postgres::Error>,
    ) -> Result<Option<T>, StoreError> {
        let s = self.statement(what, sql)?;
        let row = self
            .client
            .query_opt(&s, params)
            .map_err(|e| StoreError::postgres(what, e))?;
        row.map(|r| f(&r).map_err(|e| StoreError::postgres(what, e)))
            .transpose()
    }

    /// The one row of `sql`.
    pub(crate) fn one<T>(
        &mut self,
        what: &'static str,
        sql: &str,
        params: Params<'_>,
        f: impl FnOnce(&Row) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let s = self.statement(what, sql)?;
        let row = self
            .client
            .query_one(&s, params)
            .map_err(|e| StoreError::postgres(what, e))?;
        f(&row).map_err(|e| StoreError::postgres(what, e))
    }

    /// Runs `sql`; the number of rows it changed.
    pub(crate) fn exec(
        &mut self,
        what: &'static str,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, StoreError> {
        let s = self.statement(what, sql)?;
        self.client
            .execute(&s, params)
            .map_err(|e| StoreError::postgres(what, e))
    }
}

impl PostgresStore {
    /// Connections in the pool: one for each read a server runs at once (its
    /// read lane, as many as SQLite's readers) and two more, so a write (a
    /// sign-in, a queued run) or a duty (the lease, the watch) never waits
    /// behind a full lane of reads, and a read never waits on a connection a
    /// writer holds while it waits for the write lock.
    pub const CONNECTIONS: usize = crate::SqliteStore::READERS + 2;

    /// How long connecting may take.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// The schema version this code writes.
    pub const SCHEMA_VERSION: i64 = crate::schema::SCHEMA_VERSION;

    /// How long a write waits for another writer's transaction to end.
    pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

    /// How long a session may sit idle inside a transaction before the server
    /// ends it (and its locks).
    pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(60);

    /// Connects to the database at `url` (`postgres://user@host/db`, or
    /// `postgres:///db?host=/run/postgresql` for a unix socket; no TLS), refuses
    /// a schema newer than this cairn knows before writing anything, and
    /// migrates an older one.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let mut config: Config = url.parse().map_err(|e: postgres::Error| {
            // The parser's message names the option it could not read, never its
            // value, except for a stray character it quotes (which could be one
            // of a password's): that one is not repeated.
            let message = match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            };
            StoreError::Invalid {
                what: "PostgreSQL URL",
                why: if message.contains("but got") {
                    "invalid connection string: a character where none is allowed".to_owned()
                } else {
                    message
                },
            }
        })?;
        refuse_remote(&config)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Self::CONNECT_TIMEOUT);
        }
        config.application_name("cairn");
        let target = describe(&config);
        let store = PostgresStore {
            config,
            target,
            pool: (0..Self::CONNECTIONS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            round_trips: AtomicU64::new(0),
            outage: crate::Outage::default(),
        };
        {
            let mut guard = store.connection()?;
            let conn = guard.as_mut().ok_or_else(|| StoreError::Invalid {
                what: "PostgreSQL connection",
                why: "no connection".to_owned(),
            })?;
            schema::migrate(&mut conn.client, &store.target)?;
        }
        Ok(store)
    }

    /// Round trips to the server this store made so far.
    #[cfg(test)]
    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The server and database this store is on, as `postgres://user@host:port/db`
    /// (never the password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// From now on, a transaction that cannot reach the server (the server is
    /// down, restarting, or its connection was ended) tries again as `outage`
    /// says before it fails (see [`crate::Outage`]).
    pub fn ride_outages(&mut self, outage: crate::Outage) {
        self.outage = outage;
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let connect_err = |source| StoreError::Connect {
            target: self.target.clone(),
            source,
        };
        let mut client = self.config.connect(NoTls).map_err(connect_err)?;
        // A writer waits for the write lock at most LOCK_TIMEOUT (SQLite's
        // busy timeout, longer: a server's writers queue), and a session that
        // sits in a transaction (a process stopped half-way) loses it after
        // IDLE_IN_TRANSACTION, so one stuck client never holds every writer.
        client
            .batch_execute(&format!(
                "SET lock_timeout = '{}ms'; SET idle_in_transaction_session_timeout = '{}ms'",
                Self::LOCK_TIMEOUT.as_millis(),
                Self::IDLE_IN_TRANSACTION.as_millis()
            ))
            .map_err(connect_err)?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    /// A pooled connection, connected: a free one if there is one, else the next
    /// in turn. A panic while one was held cannot have left a transaction open
    /// (dropping a transaction rolls it back), so a poisoned lock is safe to take.
    fn connection(&self) -> Result<MutexGuard<'_, Option<Conn>>, StoreError> {
        let mut guard = None;
        for slot in &self.pool {
            if let Ok(g) = slot.try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut guard = match guard {
            Some(g) => g,
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
                self.pool[i].lock().unwrap_or_else(PoisonError::into_inner)
            }
        };
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = Some(self.connect()?);
        }
        Ok(guard)
    }

    /// Runs `f` in a write transaction holding [`WRITE_LOCK`] exclusively and
    /// commits if it returns `Ok`.
    fn write<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(Some(Lock::All), what, f)
    }

    /// Runs `f`, a write of one run's progress, in a write transaction holding
    /// [`WRITE_LOCK`] shared (see [`Lock::Run`]: `f` locks its run's row
    /// first) and commits if it returns `Ok`.
    fn write_run<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(Some(Lock::Run), what, f)
    }

    /// Runs `f` in a read-only transaction: its queries see one snapshot.
    fn snapshot<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(None, what, f)
    }

    /// Runs `f`, a read of one statement, outside a transaction: one round
    /// trip (the statement is prepared once per connection), where a
    /// transaction would add `BEGIN` and `COMMIT`. One statement sees one
    /// snapshot; a second is refused ([`StoreError::SecondStatement`]: such a
    /// read belongs in [`PostgresStore::snapshot`]). Nothing is written, so a
    /// read whose connection the server ended is run again, once at once on a
    /// new connection, then as the outage policy says.
    fn read<T>(
        &self,
        what: &'static str,
        f: impl Fn(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let deadline = std::time::Instant::now() + self.outage.wait;
        let mut backoff = crate::Outage::FIRST_BACKOFF;
        let mut again_at_once = true;
        loop {
            let result = self.connection().and_then(|mut guard| {
                let Some(conn) = guard.as_mut() else {
                    return Err(StoreError::Invalid {
                        what: "PostgreSQL connection",
                        why: format!("no connection while {what}"),
                    });
                };
                let out = f(&mut Tx {
                    client: &mut conn.client,
                    statements: &mut conn.statements,
                    open: false,
                    single: Some(false),
                    trips: &self.round_trips,
                });
                if out.as_ref().is_err_and(StoreError::is_unreachable) {
                    // Dropped: the next try connects afresh.
                    *guard = None;
                }
                out
            });
            match result {
                Err(e) if e.is_unreachable() => {
                    if std::mem::take(&mut again_at_once) {
                        continue;
                    }
                    if std::time::Instant::now() + backoff > deadline {
                        return Err(e);
                    }
                    (self.outage.say)(&e, backoff);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(crate::Outage::MAX_BACKOFF);
                }
                result => return result,
            }
        }
    }

    /// A pooled connection with the transaction begun (and, for a write, the
    /// write lock taken). A connection the server ended since its last use (a
    /// restart, an administrator) fails at BEGIN, before any work: it is made
    /// again, once.
    fn begin(
        &self,
        writing: Option<Lock>,
        what: &'static str,
    ) -> Result<MutexGuard<'_, Option<Conn>>, StoreError> {
        let mut guard = self.connection()?;
        let Some(conn) = guard.as_mut() else {
            return Err(StoreError::Invalid {
                what: "PostgreSQL connection",
                why: "no connection".to_owned(),
            });
        };
        let pg = |e| StoreError::postgres(what, e);
        // One round trip: the transaction and, for a write, the write lock.
        let begin = match writing {
            Some(Lock::All) => format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
            ),
            Some(Lock::Run) => format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; \
                 SELECT pg_advisory_xact_lock_shared({WRITE_LOCK})"
            ),
            None => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".to_owned(),
        };
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = conn.client.batch_execute(&begin) {
            let ended = conn.client.is_closed()
                || e.is_closed()
                || e.code() == Some(&postgres::error::SqlState::ADMIN_SHUTDOWN);
            if !ended {
                return Err(pg(e));
            }
            // Dropped first: a failed reconnect leaves no dead connection behind.
            *guard = None;
            *guard = Some(self.connect()?);
            if let Some(conn) = guard.as_mut() {
                self.round_trips.fetch_add(1, Ordering::Relaxed);
                conn.client.batch_execute(&begin).map_err(pg)?;
            }
        }
        Ok(guard)
    }

    fn transaction<T>(
        &self,
        writing: Option<Lock>,
        what: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // Nothing of the transaction has run until BEGIN succeeds: while the
        // server cannot be reached, trying again is safe; how long is the
        // store's outage policy (a worker waits, a server answers at once).
        let deadline = std::time::Instant::now() + self.outage.wait;
        let mut backoff = crate::Outage::FIRST_BACKOFF;
        let mut guard = loop {
            match self.begin(writing, what) {
                Ok(guard) => break guard,
                Err(e) if e.is_unreachable() && std::time::Instant::now() + backoff <= deadline => {
                    (self.outage.say)(&e, backoff);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(crate::Outage::MAX_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        };
        let Some(conn) = guard.as_mut() else {
            return Err(StoreError::Invalid {
                what: "PostgreSQL connection",
                why: "no connection".to_owned(),
            });
        };
        let pg = |e| StoreError::postgres(what, e);
        let mut tx = Tx {
            client: &mut conn.client,
            statements: &mut conn.statements,
            open: true,
            single: None,
            trips: &self.round_trips,
        };
        let out = f(&mut tx)?;
        // A connection lost during COMMIT leaves the outcome unknown: an error,
        // as nothing can say it was kept.
        tx.open = false;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        tx.client.batch_execute("COMMIT").map_err(pg)?;
        Ok(out)
    }
}

/// Refuses a server reached over the network other than loopback: this client
/// has no TLS, so a password and every row would cross the network in clear.
fn refuse_remote(config: &Config) -> Result<(), StoreError> {
    use postgres::config::Host;
    let loopback = |name: &str| {
        name.eq_ignore_ascii_case("localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let remote = config
        .get_hosts()
        .iter()
        .find_map(|h| match h {
            Host::Tcp(name) if !loopback(name) => Some(name.clone()),
            _ => None,
        })
        .or_else(|| {
            config
                .get_hostaddrs()
                .iter()
                .find(|ip| !ip.is_loopback())
                .map(ToString::to_string)
        });
    match remote {
        None => Ok(()),
        Some(host) => Err(StoreError::Invalid {
            what: "PostgreSQL URL",
            why: format!(
                "host `{}` is not on this machine: cairn connects to PostgreSQL without \
                 TLS, so only over a unix socket (postgres:///DB?host=/run/postgresql) or \
                 loopback (127.0.0.1, ::1, localhost)",
                host.chars().take(253).collect::<String>()
            ),
        }),
    }
}

/// `postgres://user@host:port/db` (a unix socket's directory as `?host=DIR`,
/// as libpq writes it) for messages: what the configuration names, never its
/// password.
fn describe(config: &Config) -> String {
    use postgres::config::Host;
    let user = config.get_user().unwrap_or("");
    let ports = config
        .get_ports()
        .iter()
        .copied()
        .chain(std::iter::repeat(5432));
    let mut tcp = Vec::new();
    let mut sockets = Vec::new();
    for (h, port) in config.get_hosts().iter().zip(ports) {
        match h {
            Host::Tcp(name) => tcp.push(format!("{name}:{port}")),
            Host::Unix(dir) if port == 5432 => sockets.push(format!("host={}", dir.display())),
            Host::Unix(dir) => sockets.push(format!("host={}&port={port}", dir.display())),
        }
    }
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    let query = if sockets.is_empty() {
        String::new()
    } else {
        format!("?{}", sockets.join("&"))
    };
    format!("postgres://{user}{at}{}/{db}{query}", tcp.join(","))
}

// ---- shared by the concerns' files ----------------------------------------------

pub(crate) use crate::sqlite::{count, len_u64, parse_name, sql_limit};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A description names user, host, port and database, and never the password.
    #[test]
    fn the_target_never_shows_the_password() {
        let config: Config = "postgres://cairn:s3cret@db.example:6543/prod"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let target = describe(&config);
        assert_eq!(target, "postgres://cairn@db.example:6543/prod");
        let config: Config = "postgres:///cairn?host=/run/postgresql&password=s3cret"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let target = describe(&config);
        assert_eq!(target, "postgres:///cairn?host=/run/postgresql");
    }

    /// A server over the network (not loopback) is refused before connecting:
    /// without TLS its password and rows would cross the network in clear.
    #[test]
    fn a_remote_server_is_refused_before_connecting() {
        for url in [
            "postgres://cairn:s3cret@db.example/prod",
            "postgres://cairn:s3cret@10.0.0.5:5432/prod",
            "postgres://cairn:s3cret@localhost/prod?hostaddr=192.0.2.1",
        ] {
            let err = PostgresStore::open(url).unwrap_err();
            let message = format!("{err} {err:?}");
            println!("{err}");
            assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
            assert!(message.contains("without TLS"), "{message}");
            assert!(!message.contains("s3cret"), "{message}");
        }
        for url in [
            "postgres://cairn@127.0.0.1:1/x",
            "postgres://cairn@[::1]:1/x",
            "postgres://cairn@localhost:1/x",
            "postgres:///x?host=/run/postgresql",
        ] {
            let config: Config = url.parse().unwrap_or_else(|e| panic!("{e}"));
            assert!(refuse_remote(&config).is_ok(), "{url}");
        }
    }

    /// Every connection of the pool waits for the write lock a bounded time and
    /// loses a transaction it sits idle in.
    #[test]
    fn connections_bound_lock_waits_and_idle_transactions() {
        let server = cairn_testkit::pg::PgServer::start();
        let db = server.database();
        let store = PostgresStore::open(db.url()).unwrap();
        let mut guard = store.connection().unwrap();
        let conn = guard.as_mut().unwrap();
        let show = |client: &mut Client, name: &str| -> String {
            client
                .query_one(&format!("SHOW {name}"), &[])
                .unwrap()
                .get(0)
        };
        assert_eq!(show(&mut conn.client, "lock_timeout"), "30s");
        assert_eq!(
            show(&mut conn.client, "idle_in_transaction_session_timeout"),
            "1min"
        );
    }

    /// A store on a database of its own, and its server (kept until dropped).
    fn store() -> (
        PostgresStore,
        cairn_testkit::pg::PgDatabase,
        cairn_testkit::pg::PgServer,
    ) {
        let server = cairn_testkit::pg::PgServer::start();
        let db = server.database();
        let store = PostgresStore::open(db.url()).unwrap();
        (store, db, server)
    }

    /// A read of one statement is one round trip, outside any transaction (its
    /// statement is the first of its own); a read of several is one snapshot;
    /// a read that tries a second statement is refused, and the connection
    /// goes on.
    #[test]
    fn a_single_statement_read_is_one_round_trip_outside_a_transaction() {
        use crate::prelude::*;
        let (store, _db, _server) = store();
        store.upsert_workload("app", "r", 1).unwrap();
        // The statements prepared (once per connection).
        store.workload("app").unwrap();
        let run = store
            .create_run(&crate::conformance::new_run("app", 1, &["build"]))
            .unwrap()
            .0
            .id;
        store.stages(run).unwrap();
        let before = store.round_trips();
        assert!(store.workload("app").unwrap().is_some());
        let one = store.round_trips() - before;
        let before = store.round_trips();
        assert_eq!(store.stages(run).unwrap().len(), 1);
        let two = store.round_trips() - before;
        println!("a workload read: {one} round trip; a run's stages (two statements): {two}");
        assert_eq!(one, 1);
        assert_eq!(two, 4, "BEGIN, the run, its stages, COMMIT");
        // No BEGIN went before the read: it runs as the session's default
        // (read committed, a statement its own transaction), where a snapshot
        // runs in the transaction its BEGIN opened.
        let isolation = "SELECT current_setting('transaction_isolation')";
        let alone: String = store
            .read("t", |tx| tx.one("t", isolation, &[], |r| r.try_get(0)))
            .unwrap();
        let in_tx: String = store
            .snapshot("t", |tx| tx.one("t", isolation, &[], |r| r.try_get(0)))
            .unwrap();
        println!("a read: {alone}; a snapshot: {in_tx}");
        assert_eq!(alone, "read committed");
        assert_eq!(in_tx, "repeatable read");
        let err = store
            .read("reading twice", |tx| {
                tx.one("reading twice", "SELECT 1", &[], |r| r.try_get::<_, i32>(0))?;
                tx.one("reading twice", "SELECT 2", &[], |r| r.try_get::<_, i32>(0))
            })
            .unwrap_err();
        println!("{err}");
        assert!(matches!(err, StoreError::SecondStatement { .. }), "{err:?}");
        assert!(store.workload("app").unwrap().is_some());
    }

    /// The pool has a connection for every read lane of a server and more: a
    /// write does not wait behind a full lane of slow reads.
    #[test]
    fn a_write_does_not_wait_behind_a_full_read_lane() {
        use crate::prelude::*;
        let (store, _db, _server) = store();
        let store = std::sync::Arc::new(store);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(crate::SqliteStore::READERS + 1));
        let reads: Vec<_> = (0..crate::SqliteStore::READERS)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    store
                        .read("a slow read", |tx| {
                            barrier.wait();
                            tx.exec("a slow read", "SELECT pg_sleep(2)", &[])
                        })
                        .unwrap();
                })
            })
            .collect();
        barrier.wait();
        std::thread::sleep(Duration::from_millis(100));
        let started = std::time::Instant::now();
        store.upsert_workload("app", "r", 1).unwrap();
        let took = started.elapsed();
        println!(
            "a write beside {} slow reads: {took:?}",
            crate::SqliteStore::READERS
        );
        assert!(took < Duration::from_millis(1500), "{took:?}");
        for r in reads {
            r.join().unwrap();
        }
    }

    /// The write of one run's progress waits only for writes of that run and
    /// for writers of everything: another run's log lines go in while a write
    /// of this run is open, and its own wait for it, as does a writer of
    /// everything.
    #[test]
    fn a_runs_progress_waits_only_for_its_own_run() {
        use crate::conformance::{line, new_run};
        use crate::prelude::*;
        let (store, db, _server) = store();
        store.upsert_workload("app", "r", 1).unwrap();
        let mut stages = Vec::new();
        let mut runs = Vec::new();
        for i in 0..2 {
            let (run, s) = store.create_run(&new_run("app", i, &["build"])).unwrap();
            store.start_run(run.id, "worker", 1).unwrap();
            store.start_stage(s[0].id, 1).unwrap();
            runs.push(run.id);
            stages.push(s[0].id);
        }
        // Another process half-way through a write of run 0's progress.
        let mut other = Client::connect(db.url(), NoTls).unwrap();
        let mut open = other.transaction().unwrap();
        open.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&WRITE_LOCK])
            .unwrap();
        open.execute("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", &[&runs[0].0])
            .unwrap();
        let started = std::time::Instant::now();
        store.append_logs(stages[1], &[line(0, b"b")]).unwrap();
        println!(
            "run 1's lines beside an open write of run 0: {:?}",
            started.elapsed()
        );
        let store = std::sync::Arc::new(store);
        let (s, stage) = (store.clone(), stages[0]);
        let own = std::thread::spawn(move || s.append_logs(stage, &[line(0, b"a")]));
        let s = store.clone();
        let everything = std::thread::spawn(move || s.upsert_workload("other", "r", 2));
        std::thread::sleep(Duration::from_millis(500));
        assert!(!own.is_finished(), "run 0's lines wait for run 0's write");
        assert!(
            !everything.is_finished(),
            "a writer of everything waits for it"
        );
        open.commit().unwrap();
        own.join().unwrap().unwrap();
        everything.join().unwrap().unwrap();
        assert_eq!(store.log_stats(stages[0]).unwrap().lines, 1);
        assert_eq!(store.log_stats(stages[1]).unwrap().lines, 1);
    }

    /// A stage has one writer at a time, in every process: of several stores
    /// appending a stage's first lines at once, one succeeds and the others
    /// are told where the log goes on; of several finishing it at once, one
    /// does and the others are told it is no longer running.
    #[test]
    fn one_writer_per_stage_across_stores() {
        use crate::conformance::{line, new_run};
        use crate::prelude::*;
        let (store, db, _server) = store();
        store.upsert_workload("app", "r", 1).unwrap();
        let (run, s) = store.create_run(&new_run("app", 1, &["build"])).unwrap();
        store.start_run(run.id, "worker", 1).unwrap();
        store.start_stage(s[0].id, 1).unwrap();
        let stage = s[0].id;
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (url, barrier) = (db.url().to_owned(), barrier.clone());
                std::thread::spawn(move || {
                    let store = PostgresStore::open(&url).unwrap();
                    let lines: Vec<_> = (0..10).map(|i| line(i, b"x")).collect();
                    barrier.wait();
                    store.append_logs(stage, &lines)
                })
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        for r in &results {
            if let Err(e) = r {
                println!("{e}");
                assert!(
                    matches!(e, StoreError::LogSequence { expected: 10, .. }),
                    "{e:?}"
                );
            }
        }
        assert_eq!(ok, 1);
        assert_eq!(store.log_stats(stage).unwrap().lines, 10);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let finishers: Vec<_> = (0..4)
            .map(|i| {
                let (url, barrier) = (db.url().to_owned(), barrier.clone());
                std::thread::spawn(move || {
                    let store = PostgresStore::open(&url).unwrap();
                    barrier.wait();
                    let status = if i % 2 == 0 {
                        cairn_model::StageStatus::Passed
                    } else {
                        cairn_model::StageStatus::Failed
                    };
                    store.finish_stage(stage, status, Some(i), None, 2)
                })
            })
            .collect();
        let results: Vec<_> = finishers.into_iter().map(|w| w.join().unwrap()).collect();
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            println!("{e}");
            assert!(matches!(e, StoreError::InvalidTransition { .. }), "{e:?}");
        }
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    }

    /// A re-match is a few statements whatever its size: one per step for the
    /// whole batch, never one per match.
    #[test]
    fn a_rematch_is_a_few_statements_whatever_its_size() {
        use crate::conformance::{found, packages, sbom};
        use crate::prelude::*;
        let (store, _db, _server) = store();
        let sboms: Vec<i64> = ["app-a", "app-b", "app-c"]
            .iter()
            .map(|s| {
                store
                    .add_sbom(&sbom(s, &[("npm", "left-pad", "1.0.0")]))
                    .unwrap()
            })
            .collect();
        let scope = crate::MatchScope {
            packages: packages(&[("npm", "left-pad")]),
            advisories: Vec::new(),
            sbom: None,
        };
        let matches = |n: usize| -> Vec<_> {
            (0..n)
                .flat_map(|i| {
                    sboms
                        .iter()
                        .map(move |&s| found(&format!("X-{i:03}"), s, "npm", "left-pad", "1.0.0"))
                })
                .collect()
        };
        // Every kind of step once (statements prepared): new, seen again, fixed.
        store.record_matches(&scope, &matches(2), 1).unwrap();
        store.record_matches(&scope, &matches(1), 2).unwrap();
        let mut trips = Vec::new();
        for (n, at) in [(2, 3), (300, 4), (1, 5)] {
            let before = store.round_trips();
            let outcome = store.record_matches(&scope, &matches(n), at).unwrap();
            trips.push(store.round_trips() - before);
            println!(
                "{} matches: opened {}, still open {}, fixed {}: {} round trips",
                n * 3,
                outcome.opened.len(),
                outcome.still_open,
                outcome.fixed.len(),
                trips[trips.len() - 1]
            );
        }
        assert!(trips.iter().all(|&t| t <= 11), "{trips:?}");
        let open = store
            .findings(&crate::FindingFilter {
                limit: Some(2_000),
                ..crate::FindingFilter::default()
            })
            .unwrap();
        assert_eq!(open.len(), 900);
        assert_eq!(
            open.iter()
                .filter(|f| f.state == crate::FindingState::Open)
                .count(),
            3
        );
    }

    /// A URL that does not parse is refused without echoing it (it may hold a password).
    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        for url in [
            "postgres://cairn:s3cret@db:notaport/x",
            "host=/run/postgresql password='s3cret dbname=x",
            "postgres://cairn:s3cret@localhost/x?sslmode=s3cret",
        ] {
            let err = PostgresStore::open(url).unwrap_err();
            let message = format!("{err} {err:?}");
            println!("{err}");
            assert!(!message.contains("s3cre"), "{message}");
            assert!(!message.contains('\''), "{message}");
            assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        }
    }
}
