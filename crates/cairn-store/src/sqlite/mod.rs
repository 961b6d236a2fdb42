//! The SQLite backend: one `cairn.db` in the data directory, in WAL mode, fully synchronous.
//!
//! Several cairn processes share a data directory (`cairn run` writes while `cairn logs
//! --follow` reads): WAL lets readers proceed while a writer writes, every write
//! transaction is `BEGIN IMMEDIATE` (it takes the write lock up front, so it waits
//! under `busy_timeout` instead of failing half-way with `SQLITE_BUSY`), and
//! `synchronous = FULL` makes every acknowledged commit survive power loss.

mod access;
mod deployments;
mod evidence;
mod images;
mod inventory;
mod runs;
mod schema;
mod server;
pub(crate) mod text;

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cairn_model::run::UnknownName;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::StoreError;

/// The [`Store`](crate::Store) on SQLite. One connection behind a mutex: SQLite serialises writers
/// anyway, and WAL keeps other processes' readers unblocked.
pub struct SqliteStore {
    /// The connection every write goes through (and every read in memory).
    conn: Mutex<Connection>,
    /// Connections for reads (a file in WAL mode lets readers run beside the
    /// writer and each other): a server's many requests do not queue behind one.
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    /// The database file; `None` in memory.
    path: Option<PathBuf>,
    /// Set when the disk was full at open: the store was opened read-only (see
    /// [`SqliteStore::open`]) and every write is refused as [`StoreError::DiskFull`].
    read_only_full: Option<PathBuf>,
    /// A write failed for space: the WAL may keep the failed transaction's
    /// frames. The next write that succeeds (space is back) checkpoints and
    /// truncates it.
    wal_after_full: std::sync::atomic::AtomicBool,
    /// Write transactions committed through this store (each one a WAL fsync
    /// on a file): what [`SqliteStore::commits`] reports.
    commits: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The database's file name inside the data directory.
    pub const FILE_NAME: &'static str = "cairn.db";

    /// How long a write waits for another process's write to finish.
    pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// How many connections serve reads (a file-backed store).
    pub const READERS: usize = 4;

    /// The schema version this code writes (`PRAGMA user_version`).
    pub const SCHEMA_VERSION: i64 = schema::KNOWN_VERSION;

    /// Opens (creating if missing) the store in `data_dir`: the directory with mode
    /// 0700, `cairn.db` in it with mode 0600, then migrates the schema. A database
    /// from a newer cairn is refused before anything is written to it.
    ///
    /// A full disk is named as such ([`StoreError::DiskFull`]). When it is full
    /// at open (SQLite cannot even size its shared memory), the store is opened
    /// read-only in exclusive locking mode, which needs no shared memory: reads
    /// work, writes are refused as [`StoreError::DiskFull`]
    /// ([`SqliteStore::read_only_because_full`] says so). A writable open whose
    /// write-ahead log grew (a transaction that failed for space) checkpoints
    /// and truncates it.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        match Self::open_writable(data_dir).map_err(|e| classify(e, Some(data_dir))) {
            Err(full) if full.is_disk_full() => {
                let path = data_dir.join(Self::FILE_NAME);
                match Self::open_read_only_full(&path, data_dir) {
                    Ok(store) => Ok(store),
                    Err(_) => Err(full),
                }
            }
            other => other,
        }
    }

    /// Opens the store in `data_dir` for a command that only reads (`cairn
    /// scan`): one connection, no reader pool, nothing created, migrated or
    /// written. SQLite itself refuses a write on it (`PRAGMA query_only`), and
    /// closing it does not checkpoint the write-ahead log into the database
    /// file (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`).
    ///
    /// A database from a newer cairn, or a file that is not a database, is
    /// refused as by [`SqliteStore::open`]. `Ok(None)` when this open cannot
    /// serve without writing: no database file yet, a schema this cairn must
    /// migrate first, or a database not in WAL mode; the caller then opens it
    /// with [`SqliteStore::open`], which creates, migrates and switches it as
    /// every writing command does.
    pub fn open_reading(data_dir: &Path) -> Result<Option<SqliteStore>, StoreError> {
        use rusqlite::OpenFlags;
        let path = data_dir.join(Self::FILE_NAME);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_file() && meta.len() > 0 => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    what: "read the database file",
                    path,
                    source,
                });
            }
        }
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        // Read-write (the WAL's shared memory index needs it) but never CREATE.
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(Self::BUSY_TIMEOUT).map_err(open_err)?;
        // The first read: a file that is not a database fails here, a newer
        // schema is refused before anything else touches it.
        let found = schema::user_version(&conn).map_err(open_err)?;
        schema::refuse_newer(found, &path)?;
        if found != schema::KNOWN_VERSION {
            return Ok(None);
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .map_err(StoreError::sqlite("reading the journal mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok(None);
        }
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(StoreError::sqlite("keeping the WAL on close"))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(StoreError::sqlite("setting query_only"))?;
        conn.pragma_update(None, "cache_size", CACHE_KIB)
            .map_err(StoreError::sqlite("setting cache_size"))?;
        // Pages read in place from the page cache, not copied into SQLite's.
        conn.pragma_update(None, "mmap_size", READ_ONLY_MMAP_BYTES)
            .map_err(StoreError::sqlite("setting mmap_size"))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Some(SqliteStore {
            conn: Mutex::new(conn),
            readers: Vec::new(),
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            path: Some(path),
            read_only_full: None,
            wal_after_full: std::sync::atomic::AtomicBool::new(false),
            commits: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// The read-only fallback of [`SqliteStore::open`] on a full disk.
    fn open_read_only_full(path: &Path, dir: &Path) -> Result<SqliteStore, StoreError> {
        use rusqlite::OpenFlags;
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        if !path.is_file() {
            return Err(StoreError::Io {
                what: "open the database file",
                path: path.to_owned(),
                source: ErrorKind::NotFound.into(),
            });
        }
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
        let conn = if wal_len == 0 {
            // Everything is in the database file (the last writer checkpointed):
            // read it as immutable, which needs neither `-shm` nor `-wal`. On a
            // full disk no other process can commit either (its WAL cannot grow).
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(
                uri,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(open_err)?
        } else {
            // Committed pages wait in the WAL: read them through a connection in
            // exclusive locking mode, set before the first access, which keeps
            // the WAL's index in heap memory, not in the `-shm` file the full
            // disk cannot grow. Writes are refused before they reach it.
            let conn = Connection::open(path).map_err(open_err)?;
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                .map_err(open_err)?;
            conn
        };
        conn.busy_timeout(Self::BUSY_TIMEOUT).map_err(open_err)?;
        let found = schema::user_version(&conn).map_err(open_err)?;
        if found != schema::KNOWN_VERSION {
            // Migrating needs space: this cairn cannot read an older schema here.
            return Err(StoreError::SchemaTooNew {
                path: path.to_owned(),
                found,
                known: schema::KNOWN_VERSION,
            });
        }
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(StoreError::sqlite("enabling foreign keys"))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            readers: Vec::new(),
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            path: Some(path.to_owned()),
            read_only_full: Some(dir.to_owned()),
            wal_after_full: std::sync::atomic::AtomicBool::new(false),
            commits: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// `Some(data directory)` when the disk was full at open and the store is
    /// read-only (every write is refused as [`StoreError::DiskFull`]).
    pub fn read_only_because_full(&self) -> Option<&Path> {
        self.read_only_full.as_deref()
    }

    /// `Some(data directory)` when the file system holding it has (almost) no
    /// space left: reads work, writes will fail.
    pub fn disk_full(&self) -> Option<&Path> {
        let dir = self.path.as_deref()?.parent()?;
        free_bytes(dir)
            .is_some_and(|free| free < LOW_SPACE_BYTES)
            .then_some(dir)
    }

    fn open_writable(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|source| StoreError::Io {
                what: "create the data directory",
                path: data_dir.to_owned(),
                source,
            })?;
        let path = data_dir.join(Self::FILE_NAME);
        // Create the file ourselves so it is never world-readable, not even briefly;
        // SQLite gives the -wal and -shm files the database file's mode.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(StoreError::Io {
                    what: "create the database file",
                    path,
                    source,
                });
            }
        }

        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Self::BUSY_TIMEOUT).map_err(open_err)?;
        // Read the version first: a newer database must not even be switched to WAL.
        // This is also the first read, where a file that is not a database fails.
        let found = schema::user_version(&conn).map_err(open_err)?;
        schema::refuse_newer(found, &path)?;

        // Switching to WAL needs an exclusive lock. When several processes open a
        // new data directory at once, SQLite may answer BUSY at once instead of
        // calling the busy handler (two lock upgrades would deadlock), so retry
        // here, within the same time budget.
        let started = std::time::Instant::now();
        let mode: String = loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < Self::BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => {
                    break other.map_err(StoreError::sqlite("switching to write-ahead logging"))?;
                }
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal { path, mode });
        }
        configure(&conn)?;
        schema::migrate(&mut conn, &path)?;
        let mut readers = Vec::with_capacity(Self::READERS);
        for _ in 0..Self::READERS {
            let reader = Connection::open(&path).map_err(open_err)?;
            reader.busy_timeout(Self::BUSY_TIMEOUT).map_err(open_err)?;
            configure(&reader)?;
            readers.push(Mutex::new(reader));
        }
        truncate_grown_wal(&conn, &path);
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            path: Some(path),
            read_only_full: None,
            wal_after_full: std::sync::atomic::AtomicBool::new(false),
            commits: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A private store in memory, gone when dropped: for tests.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let path = PathBuf::from(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        configure(&conn)?;
        schema::migrate(&mut conn, &path)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            readers: Vec::new(),
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            path: None,
            read_only_full: None,
            wal_after_full: std::sync::atomic::AtomicBool::new(false),
            commits: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Copies the database into a new file at `dest` (mode 0600) with SQLite's
    /// online backup API: one consistent snapshot, while others go on writing.
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(|source| StoreError::Io {
                what: "create the backup's database file",
                path: dest.to_owned(),
                source,
            })?;
        let conn = self.lock();
        conn.backup(
            rusqlite::MAIN_DB,
            dest,
            None::<fn(rusqlite::backup::Progress)>,
        )
        .map_err(StoreError::sqlite("backing up the database"))
    }

    /// How many write transactions this store committed since it was opened
    /// (each one fsyncs the write-ahead log): what a run costs in durable
    /// writes, counted by the chain benchmark and its test.
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The database file, or `None` for a store in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection. A panic while it was held cannot have left a transaction half
    /// done (dropping a `Transaction` rolls back), so a poisoned lock is safe to take.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`) and commits if it returns `Ok`.
    fn write<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(TransactionBehavior::Immediate, what, f)
    }

    /// Runs `f` in a read transaction: its queries see one snapshot.
    ///
    /// `BEGIN` and `COMMIT` are this connection's cached statements, parsed
    /// once, not per read as rusqlite's `Transaction` does (`execute_batch`):
    /// a request reads a few times, and parsing them was a visible share of a
    /// read's time (issue 19). [`ReadTransaction`] rolls back if `f` fails or
    /// panics, as `Transaction` does.
    fn read<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.reader();
        let result = (|| {
            let tx = ReadTransaction::begin(&conn).map_err(StoreError::sqlite(what))?;
            let out = f(&conn)?;
            tx.commit().map_err(StoreError::sqlite(what))?;
            Ok(out)
        })();
        let dir = self.path.as_deref().and_then(Path::parent);
        let result = result.map_err(|e| classify(e, dir));
        if let Err(e) = &result
            && e.is_disk_full()
            && self.path.is_some()
        {
            self.wal_after_full
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// A connection for a read: a free reader if there is one, else the next in
    /// turn; the writer's connection when there are no readers (in memory).
    fn reader(&self) -> MutexGuard<'_, Connection> {
        if self.readers.is_empty() {
            return self.lock();
        }
        for reader in &self.readers {
            if let Ok(guard) = reader.try_lock() {
                return guard;
            }
        }
        let i = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % self.readers.len();
        self.readers[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn transaction<T>(
        &self,
        behavior: TransactionBehavior,
        what: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let writing = !matches!(behavior, TransactionBehavior::Deferred);
        if writing && let Some(dir) = &self.read_only_full {
            return Err(StoreError::DiskFull {
                dir: dir.clone(),
                what,
                source: None,
            });
        }
        let mut conn = if writing { self.lock() } else { self.reader() };
        let result = (|| {
            let tx = conn
                .transaction_with_behavior(behavior)
                .map_err(StoreError::sqlite(what))?;
            let out = f(&tx)?;
            tx.commit().map_err(StoreError::sqlite(what))?;
            if writing {
                self.commits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(out)
        })();
        let dir = self.path.as_deref().and_then(Path::parent);
        let result = result.map_err(|e| classify(e, dir));
        use std::sync::atomic::Ordering;
        match &result {
            Err(e) if e.is_disk_full() && self.path.is_some() => {
                self.wal_after_full.store(true, Ordering::Relaxed);
            }
            Ok(_) if writing && self.wal_after_full.load(Ordering::Relaxed) => {
                // Space is back: copy the committed frames into the database and
                // truncate the WAL, which still holds the failed transaction's.
                let done = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                });
                if done.is_ok_and(|busy| busy == 0) {
                    self.wal_after_full.store(false, Ordering::Relaxed);
                }
            }
            _ => {}
        }
        result
    }
}

/// A read transaction (`BEGIN DEFERRED` … `COMMIT`) by the connection's cached
/// statements; dropped without [`ReadTransaction::commit`] (the read failed or
/// panicked), it rolls back, so the connection goes back to its pool with no
/// transaction open.
struct ReadTransaction<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> ReadTransaction<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Self> {
        if !conn.is_autocommit() {
            // Left open by something that did not finish: never read inside it.
            conn.prepare_cached("ROLLBACK")?.execute([])?;
        }
        conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
        Ok(ReadTransaction { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for ReadTransaction<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let _ = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut rollback| rollback.execute([]));
        }
    }
}

/// `path` for an SQLite `file:` URI (RFC 3986 percent-encoding of what a
/// path may hold but a URI path may not).
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Below this much free space, an I/O error of SQLite is the disk being full.
const LOW_SPACE_BYTES: u64 = 1 << 20;

/// Free bytes for unprivileged writers on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(3) writes into the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Whether `e` means the disk is full: SQLite's `SQLITE_FULL`, or an I/O error
/// (the shared memory's sizing, `SQLITE_IOERR_SHMSIZE`, is the usual one) while
/// the file system holding `dir` has (almost) no space left.
fn is_disk_full(e: &rusqlite::Error, dir: &Path) -> bool {
    let rusqlite::Error::SqliteFailure(f, _) = e else {
        return false;
    };
    match f.code {
        rusqlite::ErrorCode::DiskFull => true,
        rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen => {
            free_bytes(dir).is_some_and(|free| free < LOW_SPACE_BYTES)
        }
        _ => false,
    }
}

/// Names a full disk as [`StoreError::DiskFull`]; other errors pass unchanged.
fn classify(err: StoreError, dir: Option<&Path>) -> StoreError {
    let Some(dir) = dir else {
        return err;
    };
    let full = |what, source| StoreError::DiskFull {
        dir: dir.to_owned(),
        what,
        source: Some(source),
    };
    match err {
        StoreError::Sqlite { what, source } if is_disk_full(&source, dir) => full(what, source),
        StoreError::Open { source, .. } if is_disk_full(&source, dir) => {
            full("opening the database", source)
        }
        StoreError::Migrate { source, .. } if is_disk_full(&source, dir) => {
            full("migrating the database", source)
        }
        StoreError::Io { what, source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
            StoreError::DiskFull {
                dir: dir.to_owned(),
                what,
                source: None,
            }
        }
        other => other,
    }
}

/// Above this size a write-ahead log is checkpointed and truncated on open.
const WAL_TRUNCATE_BYTES: u64 = 4 << 20;

/// Checkpoints the write-ahead log into the database and truncates it, when it
/// has grown past [`WAL_TRUNCATE_BYTES`] (a burst of writes, or a transaction
/// that failed for space). Best effort: readers may hold it; then a later
/// open does it.
fn truncate_grown_wal(conn: &Connection, db: &Path) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let grown = std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_TRUNCATE_BYTES);
    if grown {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

/// Per-connection settings (not stored in the database).
fn configure(conn: &Connection) -> Result<(), StoreError> {
    // After each checkpoint, a WAL larger than this is truncated to it, so a
    // burst (or a failed transaction) does not keep the disk's space.
    conn.pragma_update(None, "journal_size_limit", WAL_TRUNCATE_BYTES as i64)
        .map_err(StoreError::sqlite("setting journal_size_limit"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::sqlite("setting synchronous = FULL"))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(StoreError::sqlite("enabling foreign keys"))?;
    // A big write (a re-match opening tens of thousands of findings over
    // hundreds of thousands of component rows) outgrows SQLite's default 2 MiB
    // page cache: it then spills dirty pages to the WAL mid-transaction and
    // re-reads index pages from the file. 64 MiB at most, allocated as used.
    conn.pragma_update(None, "cache_size", CACHE_KIB)
        .map_err(StoreError::sqlite("setting cache_size"))?;
    // Every statement stays prepared between calls (the queries go through
    // `prepare_cached` and [`cached_row`]; record_matches alone holds about
    // ten): a server's reads do not parse their SQL again each time.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// How many prepared statements each connection keeps (more than the store
/// has distinct queries on one path, so none is parsed twice in a row).
const STATEMENT_CACHE: usize = 256;

/// `Connection::query_row` through the connection's statement cache: the
/// statement is parsed and planned once per connection, not on every call.
pub(crate) fn cached_row<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// How much of the database file a read-only open ([`SqliteStore::open_reading`])
/// maps instead of reading it page by page.
const READ_ONLY_MMAP_BYTES: i64 = 1 << 30;

/// The page cache per connection, in KiB (negative: `PRAGMA cache_size` in KiB).
const CACHE_KIB: i64 = -65_536;

// ---- shared by the concerns' files ----------------------------------------------

/// A stored name (status, kind, stream) back as the model's enum; an unknown name
/// means the database was written by something else.
pub(crate) fn parse_name<T>(value: String) -> Result<T, StoreError>
where
    T: std::str::FromStr<Err = UnknownName>,
{
    value
        .parse()
        .map_err(|UnknownName { what, value }| StoreError::Corrupt { what, value })
}

/// A stored count or sequence number, which is never negative.
pub(crate) fn count(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        value: value.to_string(),
    })
}

/// A length as a `u64` (lossless on every platform cairn runs on).
pub(crate) fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A caller's `usize`/`u64` bound for SQL, where anything beyond `i64::MAX` means "all".
pub(crate) fn sql_limit<N: TryInto<i64>>(n: N) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pragma(store: &SqliteStore, name: &str) -> String {
        store
            .lock()
            .query_row(&format!("PRAGMA {name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
    }

    /// The settings that make writes durable and processes share the file are on
    /// the store's own connection (they are per connection, not in the file).
    #[test]
    fn the_connection_is_durable_and_shares_nicely() {
        let tmp = tempfile::TempDir::new().unwrap();
        let store = SqliteStore::open(tmp.path()).unwrap();
        assert_eq!(pragma(&store, "journal_mode"), r#"Text("wal")"#);
        // 2 = FULL: the WAL is synced on every commit.
        assert_eq!(pragma(&store, "synchronous"), "Integer(2)");
        assert_eq!(pragma(&store, "foreign_keys"), "Integer(1)");
        assert_eq!(pragma(&store, "busy_timeout"), "Integer(5000)");
        assert_eq!(pragma(&store, "cache_size"), "Integer(-65536)");
    }

    /// The read open (`cairn scan`) creates nothing, refuses a write on its
    /// one connection (SQLite's `query_only`), leaves the file as it was, and
    /// answers `None` where it would have to create or migrate.
    #[test]
    fn the_read_open_writes_nothing() {
        use crate::ServerStore;
        let tmp = tempfile::TempDir::new().unwrap();
        assert!(SqliteStore::open_reading(tmp.path()).unwrap().is_none());
        assert!(!tmp.path().join(SqliteStore::FILE_NAME).exists());
        drop(SqliteStore::open(tmp.path()).unwrap());
        let file = tmp.path().join(SqliteStore::FILE_NAME);
        let before = std::fs::read(&file).unwrap();
        let store = SqliteStore::open_reading(tmp.path()).unwrap().unwrap();
        assert_eq!(pragma(&store, "query_only"), "Integer(1)");
        assert!(store.readers.is_empty());
        let _ = store.log_mark().unwrap();
        let err = store.set_log_mark(1, "00", 0).unwrap_err();
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            source.as_deref().is_some_and(|s| s.contains("readonly")),
            "{err}: {source:?}"
        );
        drop(store);
        assert!(std::fs::read(&file).unwrap() == before);
        // An older schema: the read open leaves it to the open that migrates.
        let conn = Connection::open(&file).unwrap();
        conn.pragma_update(None, "user_version", SqliteStore::SCHEMA_VERSION - 1)
            .unwrap();
        drop(conn);
        assert!(SqliteStore::open_reading(tmp.path()).unwrap().is_none());
    }

    /// A read's `BEGIN`/`COMMIT` are cached statements (issue 19), and a read
    /// that fails or panics leaves no transaction open on its reader: every
    /// reader still reads, sees a write committed after it, and the writer is
    /// not held up.
    #[test]
    fn a_failed_or_panicking_read_leaves_no_transaction_open() {
        use crate::RunStore;
        let tmp = tempfile::TempDir::new().unwrap();
        let store = SqliteStore::open(tmp.path()).unwrap();
        for _ in 0..SqliteStore::READERS * 2 {
            let err = store
                .read("a read that fails", |conn| {
                    conn.query_row("SELECT count(*) FROM workloads", [], |r| r.get::<_, i64>(0))
                        .map_err(StoreError::sqlite("counting"))?;
                    Err::<(), _>(StoreError::sqlite("failing on purpose")(
                        rusqlite::Error::InvalidQuery,
                    ))
                })
                .unwrap_err();
            assert!(err.to_string().contains("failing on purpose"), "{err}");
            let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _: Result<(), StoreError> = store.read("a read that panics", |conn| {
                    conn.query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
                        .map_err(StoreError::sqlite("counting"))?;
                    panic!("in the middle of a read")
                });
            }));
            assert!(panicked.is_err());
        }
        for reader in &store.readers {
            let conn = reader.lock().unwrap_or_else(PoisonError::into_inner);
            assert!(conn.is_autocommit(), "a reader was left in a transaction");
            // The cached statements are there to be taken again.
            assert!(conn.prepare_cached("BEGIN DEFERRED").is_ok());
        }
        store
            .upsert_workload("after", "/srv/app", 1_700_000_000_000)
            .unwrap();
        for _ in 0..SqliteStore::READERS * 2 {
            assert_eq!(store.workloads().unwrap().len(), 1);
        }
        println!("failed and panicking reads rolled back; every reader sees the later write");
    }

    #[test]
    fn in_memory_enforces_foreign_keys_too() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.path(), None);
        assert_eq!(pragma(&store, "foreign_keys"), "Integer(1)");
        let err = store
            .lock()
            .execute(
                "INSERT INTO stages (run_id, position, name, kind, status) \
                 VALUES (12345, 0, 'x', 'build', 'pending')",
                [],
            )
            .unwrap_err();
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    }

    #[test]
    fn migrating_an_up_to_date_database_changes_nothing() {
        let tmp = tempfile::TempDir::new().unwrap();
        let store = SqliteStore::open(tmp.path()).unwrap();
        let path = tmp.path().join(SqliteStore::FILE_NAME);
        let mut conn = store.lock();
        schema::migrate(&mut conn, &path).unwrap();
        assert_eq!(
            schema::user_version(&conn).unwrap(),
            SqliteStore::SCHEMA_VERSION
        );
    }
}
