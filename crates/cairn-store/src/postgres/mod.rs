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
//! (`synchronous_commit` stays on); every read runs in one `REPEATABLE READ,
//! READ ONLY` transaction (one snapshot), beside writers. Text columns use the
//! `"C"` collation, so orderings are byte order, as in SQLite.

mod access;
mod deployments;
mod evidence;
mod images;
mod inventory;
mod runs;
mod schema;
mod server;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A transaction and its connection's prepared statements: what the concerns'
/// files run their SQL through.
pub(crate) struct Tx<'a> {
    client: &'a mut Client,
    statements: &'a mut HashMap<String, Statement>,
    /// Begun and neither committed nor rolled back: dropping rolls it back.
    open: bool,
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // A broken connection has no transaction left to roll back.
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

impl Tx<'_> {
    fn statement(&mut self, what: &'static str, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self
            .client
            .prepare(sql)
            .map_err(|e| StoreError::postgres(what, e))?;
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
    /// Connections in the pool.
    pub const CONNECTIONS: usize = 4;

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

    /// Runs `f` in a write transaction holding [`WRITE_LOCK`] and commits if it
    /// returns `Ok`.
    fn write<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(true, what, f)
    }

    /// Runs `f` in a read-only transaction: its queries see one snapshot.
    fn read<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(false, what, f)
    }

    /// A pooled connection with the transaction begun (and, for a write, the
    /// write lock taken). A connection the server ended since its last use (a
    /// restart, an administrator) fails at BEGIN, before any work: it is made
    /// again, once.
    fn begin(
        &self,
        writing: bool,
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
        let begin = if writing {
            format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
            )
        } else {
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".to_owned()
        };
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
                conn.client.batch_execute(&begin).map_err(pg)?;
            }
        }
        Ok(guard)
    }

    fn transaction<T>(
        &self,
        writing: bool,
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
        };
        let out = f(&mut tx)?;
        // A connection lost during COMMIT leaves the outcome unknown: an error,
        // as nothing can say it was kept.
        tx.open = false;
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
