//! The SQLite backend: one `cairn.db` in the data directory, in WAL mode, fully synchronous.
//!
//! Several cairn processes share a data directory (`cairn run` writes while `cairn logs
//! --follow` reads): WAL lets readers proceed while a writer writes, every write
//! transaction is `BEGIN IMMEDIATE` (it takes the write lock up front, so it waits
//! under `busy_timeout` instead of failing half-way with `SQLITE_BUSY`), and
//! `synchronous = FULL` makes every acknowledged commit survive power loss.

mod images;
mod people;
mod schema;
mod server;
mod text;

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cairn_model::run::UnknownName;
use cairn_model::{
    BaseRecord, EvidenceRecord, ImageRecord, LogLine, LogStream, NewEvidence, NewRun, RunId,
    RunRecord, RunStatus, StageId, StageKind, StageRecord, StageStatus,
};
use cairn_model::{
    ChangeRecord, DeploymentRecord, DeploymentStatus, IdentityRecord, RoleBinding, SessionRecord,
};
use cairn_model::{DeliveryRecord, NewDelivery, Trigger, WorkloadRecord};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::{
    AdvisoryPut, DeliveryAccepted, FindingFilter, FindingKey, FindingState, LogMark, LogStats,
    MatchOutcome, MatchScope, NewAdvisory, NewFinding, NewSbom, PackageHit, RematchRecord,
    RunFilter, StageDurationStat, Store, StoreError, StoredAdvisory, StoredComponent,
    StoredFinding,
};

/// The [`Store`] on SQLite. One connection behind a mutex: SQLite serialises writers
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
    fn read<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(TransactionBehavior::Deferred, what, f)
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
    // The statements a write prepares once and reuses (record_matches alone
    // holds about ten) stay prepared between calls.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// The page cache per connection, in KiB (negative: `PRAGMA cache_size` in KiB).
const CACHE_KIB: i64 = -65_536;

// ---- reading rows ------------------------------------------------------------------

const RUN_COLUMNS: &str = "id, workload, commit_id, git_ref, status, reason, \
                           created_at_ms, started_at_ms, finished_at_ms, owner, trigger";

const STAGE_COLUMNS: &str = "id, run_id, position, name, kind, command, status, exit_code, \
                             reason, started_at_ms, finished_at_ms";

const LOG_COLUMNS: &str = "seq, stream, at_ms, bytes";

/// A run row as stored, before its names are checked.
struct RawRun {
    id: i64,
    workload: String,
    commit: String,
    git_ref: Option<String>,
    status: String,
    reason: Option<String>,
    created_at_ms: i64,
    started_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
    owner: Option<String>,
    trigger: String,
}

impl RawRun {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawRun {
            id: row.get(0)?,
            workload: row.get(1)?,
            commit: row.get(2)?,
            git_ref: row.get(3)?,
            status: row.get(4)?,
            reason: row.get(5)?,
            created_at_ms: row.get(6)?,
            started_at_ms: row.get(7)?,
            finished_at_ms: row.get(8)?,
            owner: row.get(9)?,
            trigger: row.get(10)?,
        })
    }

    fn into_record(self) -> Result<RunRecord, StoreError> {
        Ok(RunRecord {
            id: RunId(self.id),
            workload: self.workload,
            commit: self.commit,
            git_ref: self.git_ref,
            status: parse_name(self.status)?,
            reason: self.reason,
            created_at_ms: self.created_at_ms,
            started_at_ms: self.started_at_ms,
            finished_at_ms: self.finished_at_ms,
            owner: self.owner,
            trigger: Trigger::parse(&self.trigger)
                .map_err(|UnknownName { what, value }| StoreError::Corrupt { what, value })?,
        })
    }
}

/// A stage row as stored, before its names and numbers are checked.
struct RawStage {
    id: i64,
    run: i64,
    position: i64,
    name: String,
    kind: String,
    command: Option<String>,
    status: String,
    exit_code: Option<i64>,
    reason: Option<String>,
    started_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
}

impl RawStage {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawStage {
            id: row.get(0)?,
            run: row.get(1)?,
            position: row.get(2)?,
            name: row.get(3)?,
            kind: row.get(4)?,
            command: row.get(5)?,
            status: row.get(6)?,
            exit_code: row.get(7)?,
            reason: row.get(8)?,
            started_at_ms: row.get(9)?,
            finished_at_ms: row.get(10)?,
        })
    }

    fn into_record(self) -> Result<StageRecord, StoreError> {
        let exit_code = match self.exit_code {
            None => None,
            Some(code) => Some(i32::try_from(code).map_err(|_| StoreError::Corrupt {
                what: "stage exit code",
                value: code.to_string(),
            })?),
        };
        Ok(StageRecord {
            id: StageId(self.id),
            run: RunId(self.run),
            index: u32::try_from(self.position).map_err(|_| StoreError::Corrupt {
                what: "stage position",
                value: self.position.to_string(),
            })?,
            name: self.name,
            kind: parse_name::<StageKind>(self.kind)?,
            command: self.command,
            status: parse_name(self.status)?,
            exit_code,
            reason: self.reason,
            started_at_ms: self.started_at_ms,
            finished_at_ms: self.finished_at_ms,
        })
    }
}

/// A log row as stored.
struct RawLine {
    seq: i64,
    stream: String,
    at_ms: i64,
    bytes: Vec<u8>,
}

impl RawLine {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawLine {
            seq: row.get(0)?,
            stream: row.get(1)?,
            at_ms: row.get(2)?,
            bytes: row.get(3)?,
        })
    }

    fn into_line(self) -> Result<LogLine, StoreError> {
        Ok(LogLine {
            seq: count("log line seq", self.seq)?,
            stream: parse_name::<LogStream>(self.stream)?,
            at_ms: self.at_ms,
            text: self.bytes,
        })
    }
}

/// A stored name (status, kind, stream) back as the model's enum; an unknown name
/// means the database was written by something else.
fn parse_name<T>(value: String) -> Result<T, StoreError>
where
    T: std::str::FromStr<Err = UnknownName>,
{
    value
        .parse()
        .map_err(|UnknownName { what, value }| StoreError::Corrupt { what, value })
}

/// A stored count or sequence number, which is never negative.
fn count(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        value: value.to_string(),
    })
}

/// A length as a `u64` (lossless on every platform cairn runs on).
fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A caller's `usize`/`u64` bound for SQL, where anything beyond `i64::MAX` means "all".
fn sql_limit<N: TryInto<i64>>(n: N) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn run_status(tx: &Connection, run: RunId, what: &'static str) -> Result<RunStatus, StoreError> {
    let status: Option<String> = tx
        .query_row("SELECT status FROM runs WHERE id = ?1", [run.0], |row| {
            row.get(0)
        })
        .optional()
        .map_err(StoreError::sqlite(what))?;
    match status {
        Some(status) => parse_name(status),
        None => Err(not_found_run(run)),
    }
}

/// A stage's run, the run's status and the stage's status.
fn stage_state(
    tx: &Connection,
    stage: StageId,
    what: &'static str,
) -> Result<(RunId, RunStatus, StageStatus), StoreError> {
    let row: Option<(i64, String, String)> = tx
        .query_row(
            "SELECT s.run_id, r.status, s.status FROM stages s JOIN runs r ON r.id = s.run_id \
             WHERE s.id = ?1",
            [stage.0],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(StoreError::sqlite(what))?;
    match row {
        Some((run, run_status, stage_status)) => Ok((
            RunId(run),
            parse_name(run_status)?,
            parse_name(stage_status)?,
        )),
        None => Err(not_found_stage(stage)),
    }
}

/// Fails with `NotFound` unless the stage exists.
fn require_stage(tx: &Connection, stage: StageId, what: &'static str) -> Result<(), StoreError> {
    let found = tx
        .query_row("SELECT 1 FROM stages WHERE id = ?1", [stage.0], |_| Ok(()))
        .optional()
        .map_err(StoreError::sqlite(what))?;
    found.ok_or_else(|| not_found_stage(stage))
}

fn not_found_run(run: RunId) -> StoreError {
    StoreError::NotFound {
        what: "run",
        id: run.0.to_string(),
    }
}

fn not_found_stage(stage: StageId) -> StoreError {
    StoreError::NotFound {
        what: "stage",
        id: stage.0.to_string(),
    }
}

fn query_lines(
    tx: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &'static str,
) -> Result<Vec<LogLine>, StoreError> {
    let mut stmt = tx.prepare_cached(sql).map_err(StoreError::sqlite(what))?;
    let raw = stmt
        .query_map(params, RawLine::from_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    raw.into_iter().map(RawLine::into_line).collect()
}

const EVIDENCE_COLUMNS: &str =
    "id, run_id, stage_id, predicate_type, subject_name, subject_digest, bundle, created_at_ms";

fn evidence_from_row(row: &Row<'_>) -> rusqlite::Result<EvidenceRecord> {
    Ok(EvidenceRecord {
        id: row.get(0)?,
        run: row.get::<_, Option<i64>>(1)?.map(RunId),
        stage: row.get::<_, Option<i64>>(2)?.map(StageId),
        predicate_type: row.get(3)?,
        subject_name: row.get(4)?,
        subject_digest: row.get(5)?,
        bundle: row.get(6)?,
        created_at_ms: row.get(7)?,
    })
}

fn query_evidence(
    tx: &Connection,
    what: &'static str,
    sql: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Vec<EvidenceRecord>, StoreError> {
    let mut stmt = tx.prepare_cached(sql).map_err(StoreError::sqlite(what))?;
    stmt.query_map([param], evidence_from_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))
}

/// The longest trigger text a run keeps.
const MAX_TRIGGER_BYTES: usize = 4096;

/// Inserts a `queued` run of a known workload and its `pending` stages: the body of
/// [`Store::create_run`], shared with [`Store::accept_delivery`].
fn insert_run(
    tx: &Connection,
    run: &NewRun,
    what: &'static str,
) -> Result<(RunRecord, Vec<StageRecord>), StoreError> {
    // A trigger is stored as text: it must read back as itself.
    let trigger = run.trigger.as_text();
    if trigger.len() > MAX_TRIGGER_BYTES {
        return Err(StoreError::TooLarge {
            what: "a run's trigger",
            size: trigger.len(),
            limit: MAX_TRIGGER_BYTES,
        });
    }
    if Trigger::parse(&trigger).as_ref() != Ok(&run.trigger) {
        return Err(StoreError::Invalid {
            what: "run trigger",
            why: format!("`{trigger}` has an empty name, or an actor or forge with a `:`"),
        });
    }
    let workload_known = tx
        .query_row(
            "SELECT 1 FROM workloads WHERE name = ?1",
            [&run.workload],
            |_| Ok(()),
        )
        .optional()
        .map_err(StoreError::sqlite(what))?
        .is_some();
    if !workload_known {
        return Err(StoreError::NotFound {
            what: "workload",
            id: run.workload.clone(),
        });
    }
    tx.execute(
        "INSERT INTO runs (workload, commit_id, git_ref, status, created_at_ms, trigger, \
         for_worker) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            run.workload,
            run.commit,
            run.git_ref,
            RunStatus::Queued.as_str(),
            run.created_at_ms,
            trigger,
            run.trigger.for_worker()
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    let run_id = RunId(tx.last_insert_rowid());

    let mut insert = tx
        .prepare_cached(
            "INSERT INTO stages (run_id, position, name, kind, command, status) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(StoreError::sqlite(what))?;
    let mut stages = Vec::with_capacity(run.stages.len());
    for (index, stage) in (0u32..).zip(&run.stages) {
        insert
            .execute(params![
                run_id.0,
                index,
                stage.name,
                stage.kind.as_str(),
                stage.command,
                StageStatus::Pending.as_str()
            ])
            .map_err(StoreError::sqlite(what))?;
        stages.push(StageRecord {
            id: StageId(tx.last_insert_rowid()),
            run: run_id,
            index,
            name: stage.name.clone(),
            kind: stage.kind,
            command: stage.command.clone(),
            status: StageStatus::Pending,
            exit_code: None,
            reason: None,
            started_at_ms: None,
            finished_at_ms: None,
        });
    }
    let record = RunRecord {
        id: run_id,
        workload: run.workload.clone(),
        commit: run.commit.clone(),
        git_ref: run.git_ref.clone(),
        status: RunStatus::Queued,
        reason: None,
        created_at_ms: run.created_at_ms,
        started_at_ms: None,
        finished_at_ms: None,
        owner: None,
        trigger: run.trigger.clone(),
    };
    Ok((record, stages))
}

/// The reason given to a stage that was still running when its run finished.
const ENDED_WHILE_RUNNING: &str = "the run finished while this stage was running";

impl Store for SqliteStore {
    fn upsert_workload(&self, name: &str, repo: &str, now_ms: i64) -> Result<(), StoreError> {
        let what = "recording a workload";
        self.write(what, |tx| {
            tx.execute(
                "INSERT INTO workloads (name, repo, created_at_ms, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?3) \
                 ON CONFLICT (name) DO UPDATE SET repo = excluded.repo, \
                 updated_at_ms = excluded.updated_at_ms",
                params![name, repo, now_ms],
            )
            .map_err(StoreError::sqlite(what))?;
            Ok(())
        })
    }

    fn create_run(&self, run: &NewRun) -> Result<(RunRecord, Vec<StageRecord>), StoreError> {
        let what = "creating a run";
        self.write(what, |tx| insert_run(tx, run, what))
    }

    fn start_run(&self, run: RunId, owner: &str, now_ms: i64) -> Result<(), StoreError> {
        let what = "starting a run";
        self.write(what, |tx| {
            let status = run_status(tx, run, what)?;
            if status != RunStatus::Queued {
                return Err(StoreError::InvalidTransition {
                    what: "run",
                    id: run.0,
                    from: status.as_str(),
                    to: RunStatus::Running.as_str(),
                });
            }
            tx.execute(
                "UPDATE runs SET status = ?1, owner = ?2, started_at_ms = ?3 WHERE id = ?4",
                params![RunStatus::Running.as_str(), owner, now_ms, run.0],
            )
            .map_err(StoreError::sqlite(what))?;
            Ok(())
        })
    }

    fn start_stage(&self, stage: StageId, now_ms: i64) -> Result<(), StoreError> {
        let what = "starting a stage";
        self.write(what, |tx| {
            let (run, run_status, status) = stage_state(tx, stage, what)?;
            if status != StageStatus::Pending {
                return Err(StoreError::InvalidTransition {
                    what: "stage",
                    id: stage.0,
                    from: status.as_str(),
                    to: StageStatus::Running.as_str(),
                });
            }
            if run_status != RunStatus::Running {
                return Err(StoreError::RunNotActive {
                    run: run.0,
                    status: run_status.as_str(),
                    action: "start a stage",
                });
            }
            tx.execute(
                "UPDATE stages SET status = ?1, started_at_ms = ?2 WHERE id = ?3",
                params![StageStatus::Running.as_str(), now_ms, stage.0],
            )
            .map_err(StoreError::sqlite(what))?;
            Ok(())
        })
    }

    fn finish_stage(
        &self,
        stage: StageId,
        status: StageStatus,
        exit_code: Option<i32>,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let what = "finishing a stage";
        self.write(what, |tx| {
            let (run, run_status, current) = stage_state(tx, stage, what)?;
            let target_final = !matches!(status, StageStatus::Pending | StageStatus::Running);
            if current != StageStatus::Running || !target_final {
                return Err(StoreError::InvalidTransition {
                    what: "stage",
                    id: stage.0,
                    from: current.as_str(),
                    to: status.as_str(),
                });
            }
            // Unreachable through this API (a final run has no running stage), but
            // the database may have been edited: a final run stays as it is.
            if run_status.is_final() {
                return Err(StoreError::RunNotActive {
                    run: run.0,
                    status: run_status.as_str(),
                    action: "finish a stage",
                });
            }
            tx.execute(
                "UPDATE stages SET status = ?1, exit_code = ?2, reason = ?3, \
                 finished_at_ms = ?4 WHERE id = ?5",
                params![status.as_str(), exit_code, reason, now_ms, stage.0],
            )
            .map_err(StoreError::sqlite(what))?;
            Ok(())
        })
    }

    fn finish_run(
        &self,
        run: RunId,
        status: RunStatus,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let what = "finishing a run";
        self.write(what, |tx| {
            let current = run_status(tx, run, what)?;
            if current.is_final() || !status.is_final() {
                return Err(StoreError::InvalidTransition {
                    what: "run",
                    id: run.0,
                    from: current.as_str(),
                    to: status.as_str(),
                });
            }
            tx.execute(
                "UPDATE stages SET status = ?1, reason = ?2, finished_at_ms = ?3 \
                 WHERE run_id = ?4 AND status = ?5",
                params![
                    StageStatus::Interrupted.as_str(),
                    ENDED_WHILE_RUNNING,
                    now_ms,
                    run.0,
                    StageStatus::Running.as_str()
                ],
            )
            .map_err(StoreError::sqlite(what))?;
            settle_run(tx, run, status, reason, now_ms, what)
        })
    }

    fn interrupt_run(&self, run: RunId, reason: &str, now_ms: i64) -> Result<bool, StoreError> {
        let what = "interrupting a run";
        self.write(what, |tx| {
            let current = run_status(tx, run, what)?;
            if current.is_final() {
                return Ok(false);
            }
            tx.execute(
                "UPDATE stages SET status = ?1, reason = ?2, finished_at_ms = ?3 \
                 WHERE run_id = ?4 AND status = ?5",
                params![
                    StageStatus::Interrupted.as_str(),
                    reason,
                    now_ms,
                    run.0,
                    StageStatus::Running.as_str()
                ],
            )
            .map_err(StoreError::sqlite(what))?;
            settle_run(tx, run, RunStatus::Interrupted, Some(reason), now_ms, what)?;
            Ok(true)
        })
    }

    fn append_logs(&self, stage: StageId, lines: &[LogLine]) -> Result<(), StoreError> {
        let what = "appending log lines";
        self.write(what, |tx| {
            let row: Option<(i64, String, i64, i64)> = tx
                .query_row(
                    "SELECT s.run_id, r.status, s.log_lines, s.log_bytes \
                     FROM stages s JOIN runs r ON r.id = s.run_id WHERE s.id = ?1",
                    [stage.0],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()
                .map_err(StoreError::sqlite(what))?;
            let Some((run, run_status, stored_lines, stored_bytes)) = row else {
                return Err(not_found_stage(stage));
            };
            let run_status: RunStatus = parse_name(run_status)?;
            if run_status.is_final() {
                return Err(StoreError::RunNotActive {
                    run,
                    status: run_status.as_str(),
                    action: "append log lines",
                });
            }
            let first = count("stage log line count", stored_lines)?;
            let mut bytes = count("stage log byte count", stored_bytes)?;
            // Check the whole batch before writing any of it.
            for (expected, line) in (first..).zip(lines) {
                if line.seq != expected {
                    return Err(StoreError::LogSequence {
                        stage: stage.0,
                        expected,
                        found: line.seq,
                    });
                }
            }
            if lines.is_empty() {
                return Ok(());
            }

            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO log_lines (stage_id, seq, stream, at_ms, bytes) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(StoreError::sqlite(what))?;
            for line in lines {
                insert
                    .execute(params![
                        stage.0,
                        sql_limit(line.seq),
                        line.stream.as_str(),
                        line.at_ms,
                        line.text
                    ])
                    .map_err(StoreError::sqlite(what))?;
                bytes = bytes.saturating_add(len_u64(line.text.len()));
            }
            let total = first.saturating_add(len_u64(lines.len()));
            tx.execute(
                "UPDATE stages SET log_lines = ?1, log_bytes = ?2 WHERE id = ?3",
                params![sql_limit(total), sql_limit(bytes), stage.0],
            )
            .map_err(StoreError::sqlite(what))?;
            Ok(())
        })
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let what = "listing runs";
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        if let Some(workload) = &filter.workload {
            conditions.push("workload = ?");
            args.push(Value::Text(workload.clone()));
        }
        if let Some(status) = filter.status {
            conditions.push("status = ?");
            args.push(Value::Text(status.as_str().to_owned()));
        }
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(" ORDER BY created_at_ms DESC, id DESC LIMIT ?");
        args.push(Value::Integer(sql_limit(filter.limit)));

        self.read(what, |tx| {
            let mut stmt = tx.prepare_cached(&sql).map_err(StoreError::sqlite(what))?;
            let raw = stmt
                .query_map(rusqlite::params_from_iter(args), RawRun::from_row)
                .map_err(StoreError::sqlite(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))?;
            raw.into_iter().map(RawRun::into_record).collect()
        })
    }

    fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let what = "reading a run";
        self.read(what, |tx| {
            tx.query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id.0],
                RawRun::from_row,
            )
            .optional()
            .map_err(StoreError::sqlite(what))?
            .map(RawRun::into_record)
            .transpose()
        })
    }

    fn stages(&self, run: RunId) -> Result<Vec<StageRecord>, StoreError> {
        let what = "reading stages";
        self.read(what, |tx| {
            run_status(tx, run, what)?;
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {STAGE_COLUMNS} FROM stages WHERE run_id = ?1 ORDER BY position"
                ))
                .map_err(StoreError::sqlite(what))?;
            let raw = stmt
                .query_map([run.0], RawStage::from_row)
                .map_err(StoreError::sqlite(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))?;
            raw.into_iter().map(RawStage::into_record).collect()
        })
    }

    fn logs(
        &self,
        stage: StageId,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        let what = "reading log lines";
        self.read(what, |tx| {
            require_stage(tx, stage, what)?;
            let from = match after_seq {
                None => 0,
                // Past the last representable seq there is nothing.
                Some(after) => match after.checked_add(1).map(i64::try_from) {
                    Some(Ok(from)) => from,
                    _ => return Ok(Vec::new()),
                },
            };
            query_lines(
                tx,
                &format!(
                    "SELECT {LOG_COLUMNS} FROM log_lines WHERE stage_id = ?1 AND seq >= ?2 \
                     ORDER BY seq LIMIT ?3"
                ),
                params![stage.0, from, sql_limit(limit)],
                what,
            )
        })
    }

    fn log_tail(&self, stage: StageId, n: usize) -> Result<Vec<LogLine>, StoreError> {
        let what = "reading the end of a log";
        self.read(what, |tx| {
            require_stage(tx, stage, what)?;
            let mut lines = query_lines(
                tx,
                &format!(
                    "SELECT {LOG_COLUMNS} FROM log_lines WHERE stage_id = ?1 \
                     ORDER BY seq DESC LIMIT ?2"
                ),
                params![stage.0, sql_limit(n)],
                what,
            )?;
            lines.reverse();
            Ok(lines)
        })
    }

    fn log_stats(&self, stage: StageId) -> Result<LogStats, StoreError> {
        let what = "reading log statistics";
        self.read(what, |tx| {
            let row: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT log_lines, log_bytes FROM stages WHERE id = ?1",
                    [stage.0],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(StoreError::sqlite(what))?;
            let (lines, bytes) = row.ok_or_else(|| not_found_stage(stage))?;
            Ok(LogStats {
                lines: count("stage log line count", lines)?,
                bytes: count("stage log byte count", bytes)?,
            })
        })
    }

    fn add_evidence(&self, e: &NewEvidence) -> Result<i64, StoreError> {
        let what = "keeping evidence";
        if e.bundle.len() > crate::MAX_EVIDENCE_BYTES {
            return Err(StoreError::TooLarge {
                what: "the evidence bundle",
                size: e.bundle.len(),
                limit: crate::MAX_EVIDENCE_BYTES,
            });
        }
        self.write(what, |tx| {
            if let Some(run) = e.run {
                run_status(tx, run, what)?;
            }
            if let Some(stage) = e.stage {
                let owner: Option<i64> = tx
                    .query_row("SELECT run_id FROM stages WHERE id = ?1", [stage.0], |r| {
                        r.get(0)
                    })
                    .optional()
                    .map_err(StoreError::sqlite(what))?;
                match owner {
                    None => return Err(not_found_stage(stage)),
                    Some(run) if Some(RunId(run)) != e.run => return Err(not_found_stage(stage)),
                    Some(_) => {}
                }
            }
            tx.execute(
                "INSERT INTO evidence (run_id, stage_id, predicate_type, subject_name, \
                 subject_digest, bundle, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    e.run.map(|r| r.0),
                    e.stage.map(|s| s.0),
                    e.predicate_type,
                    e.subject_name,
                    e.subject_digest,
                    e.bundle,
                    e.created_at_ms
                ],
            )
            .map_err(StoreError::sqlite(what))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn evidence_for_run(&self, run: RunId) -> Result<Vec<EvidenceRecord>, StoreError> {
        let what = "reading a run's evidence";
        self.read(what, |tx| {
            run_status(tx, run, what)?;
            query_evidence(
                tx,
                what,
                &format!("SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE run_id = ?1 ORDER BY id"),
                &run.0,
            )
        })
    }

    fn evidence_for_subject(&self, digest: &str) -> Result<Vec<EvidenceRecord>, StoreError> {
        let what = "reading an artifact's evidence";
        self.read(what, |tx| {
            query_evidence(
                tx,
                what,
                &format!(
                    "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE subject_digest = ?1 ORDER BY id"
                ),
                &digest,
            )
        })
    }

    fn put_advisories(&self, advisories: &[NewAdvisory]) -> Result<Vec<AdvisoryPut>, StoreError> {
        let what = "keeping advisories";
        if let Some(big) = advisories
            .iter()
            .find(|a| a.json.len() > crate::MAX_ADVISORY_BYTES)
        {
            return Err(StoreError::TooLarge {
                what: "an advisory record",
                size: big.json.len(),
                limit: crate::MAX_ADVISORY_BYTES,
            });
        }
        self.write(what, |tx| {
            let mut out = Vec::with_capacity(advisories.len());
            for a in advisories {
                let stored: Option<String> = tx
                    .prepare_cached("SELECT modified FROM advisories WHERE id = ?1")
                    .and_then(|mut stmt| stmt.query_row([&a.id], |r| r.get(0)).optional())
                    .map_err(StoreError::sqlite(what))?;
                let outcome = match stored {
                    None => AdvisoryPut::New,
                    Some(old) if a.modified > old => AdvisoryPut::Updated,
                    Some(_) => {
                        out.push(AdvisoryPut::Unchanged);
                        continue;
                    }
                };
                tx.prepare_cached(
                    "INSERT INTO advisories (id, modified, withdrawn, json) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, \
                     withdrawn = excluded.withdrawn, json = excluded.json",
                )
                .and_then(|mut stmt| stmt.execute(params![a.id, a.modified, a.withdrawn, a.json]))
                .map_err(StoreError::sqlite(what))?;
                tx.prepare_cached("DELETE FROM advisory_packages WHERE id = ?1")
                    .and_then(|mut stmt| stmt.execute([&a.id]))
                    .map_err(StoreError::sqlite(what))?;
                if !a.withdrawn {
                    let mut stmt = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO advisory_packages (ecosystem, name, id) \
                             VALUES (?1, ?2, ?3)",
                        )
                        .map_err(StoreError::sqlite(what))?;
                    for (ecosystem, name) in &a.packages {
                        stmt.execute(params![ecosystem, name, a.id])
                            .map_err(StoreError::sqlite(what))?;
                    }
                }
                out.push(outcome);
            }
            Ok(out)
        })
    }

    fn advisories_for_packages(
        &self,
        packages: &[(String, String)],
    ) -> Result<Vec<StoredAdvisory>, StoreError> {
        let what = "reading advisories by package";
        self.read(what, |tx| {
            let mut ids = std::collections::BTreeSet::new();
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id FROM advisory_packages WHERE ecosystem = ?1 AND name = ?2",
                )
                .map_err(StoreError::sqlite(what))?;
            for (ecosystem, name) in packages {
                let found = stmt
                    .query_map(params![ecosystem, name], |r| r.get::<_, String>(0))
                    .map_err(StoreError::sqlite(what))?;
                for id in found {
                    ids.insert(id.map_err(StoreError::sqlite(what))?);
                }
            }
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(a) = advisory_by_id(tx, &id, what)? {
                    out.push(a);
                }
            }
            Ok(out)
        })
    }

    fn advisory(&self, id: &str) -> Result<Option<StoredAdvisory>, StoreError> {
        let what = "reading an advisory";
        self.read(what, |tx| advisory_by_id(tx, id, what))
    }

    fn advisory_count(&self) -> Result<u64, StoreError> {
        let what = "counting advisories";
        self.read(what, |tx| {
            let n: i64 = tx
                .query_row("SELECT count(*) FROM advisories", [], |r| r.get(0))
                .map_err(StoreError::sqlite(what))?;
            count("advisory count", n)
        })
    }
    fn advisory_versions(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        let what = "listing advisory versions";
        self.read(what, |tx| {
            let mut stmt = tx
                .prepare_cached("SELECT id, modified, withdrawn FROM advisories ORDER BY id")
                .map_err(StoreError::sqlite(what))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))
                .map_err(StoreError::sqlite(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))
        })
    }
    fn add_sboms(&self, sboms: &[NewSbom]) -> Result<Vec<i64>, StoreError> {
        let what = "keeping SBOMs";
        for sbom in sboms {
            if sbom.document.len() > crate::MAX_SBOM_BYTES {
                return Err(StoreError::TooLarge {
                    what: "an SBOM document",
                    size: sbom.document.len(),
                    limit: crate::MAX_SBOM_BYTES,
                });
            }
            if sbom.components.len() > crate::MAX_SBOM_COMPONENTS {
                return Err(StoreError::TooLarge {
                    what: "an SBOM's component list (in components)",
                    size: sbom.components.len(),
                    limit: crate::MAX_SBOM_COMPONENTS,
                });
            }
        }
        self.write(what, |tx| {
            let mut ids = Vec::with_capacity(sboms.len());
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO sboms (subject_name, subject_digest, workload, environment, \
                     created_at_ms, format, document) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut component = tx
                .prepare_cached(
                    "INSERT INTO sbom_components (sbom_id, ecosystem, name, version, purl) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(StoreError::sqlite(what))?;
            for s in sboms {
                add.execute(params![
                    s.subject_name,
                    s.subject_digest,
                    s.workload,
                    s.environment,
                    s.created_at_ms,
                    s.format,
                    s.document
                ])
                .map_err(StoreError::sqlite(what))?;
                let id = tx.last_insert_rowid();
                for (ecosystem, name, version, purl) in &s.components {
                    component
                        .execute(params![id, ecosystem, name, version, purl])
                        .map_err(StoreError::sqlite(what))?;
                }
                ids.push(id);
            }
            Ok(ids)
        })
    }

    fn where_package(
        &self,
        ecosystem: Option<&str>,
        name: &str,
    ) -> Result<Vec<PackageHit>, StoreError> {
        let what = "finding a package in stored SBOMs";
        self.read(what, |tx| {
            // Rows come in the index's order (name, sbom_id, ecosystem, version,
            // purl): sorted as promised, duplicates adjacent.
            let mut stmt = tx
                .prepare_cached(
                    "SELECT c.sbom_id, s.subject_name, s.subject_digest, s.workload, \
                     s.environment, c.ecosystem, c.version, c.purl \
                     FROM sbom_components c INDEXED BY sbom_components_by_name_sbom \
                     JOIN sboms s ON s.id = c.sbom_id \
                     WHERE c.name = ?2 AND (?1 IS NULL OR c.ecosystem = ?1) \
                     ORDER BY c.sbom_id, c.ecosystem, c.version, c.purl",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut rows = stmt
                .query(params![ecosystem, name])
                .map_err(StoreError::sqlite(what))?;
            let mut out: Vec<PackageHit> = Vec::new();
            while let Some(r) = rows.next().map_err(StoreError::sqlite(what))? {
                let sbom_id: i64 = r.get(0).map_err(StoreError::sqlite(what))?;
                let same = |h: &PackageHit| -> rusqlite::Result<bool> {
                    Ok(h.sbom_id == sbom_id
                        && h.ecosystem == r.get_ref(5)?.as_str()?
                        && h.version == r.get_ref(6)?.as_str()?
                        && h.purl == r.get_ref(7)?.as_str()?)
                };
                if let Some(last) = out.last()
                    && same(last).map_err(StoreError::sqlite(what))?
                {
                    continue;
                }
                let hit = (|| -> rusqlite::Result<PackageHit> {
                    Ok(PackageHit {
                        sbom_id,
                        subject_name: r.get(1)?,
                        subject_digest: r.get(2)?,
                        workload: r.get(3)?,
                        environment: r.get(4)?,
                        ecosystem: r.get(5)?,
                        name: name.to_owned(),
                        version: r.get(6)?,
                        purl: r.get(7)?,
                    })
                })()
                .map_err(StoreError::sqlite(what))?;
                out.push(hit);
            }
            Ok(out)
        })
    }

    fn components_for_packages(
        &self,
        packages: &[(String, String)],
        sbom: Option<i64>,
    ) -> Result<Vec<StoredComponent>, StoreError> {
        let what = "reading stored components by package";
        self.read(what, |tx| {
            let mut out = std::collections::BTreeSet::new();
            let mut stmt = tx
                .prepare_cached(
                    "SELECT sbom_id, ecosystem, name, version, purl FROM sbom_components \
                     WHERE ecosystem = ?1 AND name = ?2 AND (?3 IS NULL OR sbom_id = ?3)",
                )
                .map_err(StoreError::sqlite(what))?;
            for (ecosystem, name) in packages {
                let rows = stmt
                    .query_map(params![ecosystem, name, sbom], |r| {
                        Ok(StoredComponent {
                            sbom_id: r.get(0)?,
                            ecosystem: r.get(1)?,
                            name: r.get(2)?,
                            version: r.get(3)?,
                            purl: r.get(4)?,
                        })
                    })
                    .map_err(StoreError::sqlite(what))?;
                for row in rows {
                    out.insert(row.map_err(StoreError::sqlite(what))?);
                }
            }
            Ok(out.into_iter().collect())
        })
    }

    fn record_matches(
        &self,
        scope: &MatchScope,
        found: &[NewFinding],
        now_ms: i64,
    ) -> Result<MatchOutcome, StoreError> {
        let what = "recording a re-match";
        let in_packages: std::collections::HashSet<(&str, &str)> = scope
            .packages
            .iter()
            .map(|(e, n)| (e.as_str(), n.as_str()))
            .collect();
        for f in found {
            let k = &f.key;
            let in_sbom = scope.sbom.is_none_or(|s| s == k.sbom_id);
            if !in_sbom || !in_packages.contains(&(k.ecosystem.as_str(), k.name.as_str())) {
                return Err(StoreError::OutOfScope {
                    advisory: k.advisory_id.clone(),
                    sbom: k.sbom_id,
                    ecosystem: k.ecosystem.clone(),
                    name: k.name.clone(),
                    version: k.version.clone(),
                });
            }
        }
        self.write(what, |tx| {
            // The open and suppressed findings the scope covers, before this re-match.
            // Whole rows, so the findings this re-match fixes are returned
            // without reading each one again.
            let mut covered = covered_findings(tx, scope, what)?;
            // One statement per match: whether its component is stored, and the
            // state of its stored finding (NULL: none).
            let mut lookup = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM sbom_components WHERE ecosystem = ?3 \
                     AND name = ?4 AND version = ?5 AND sbom_id = ?2), \
                     (SELECT state FROM findings WHERE advisory_id = ?1 AND sbom_id = ?2 \
                     AND ecosystem = ?3 AND name = ?4 AND version = ?5), \
                     (SELECT first_seen_ms FROM findings WHERE advisory_id = ?1 AND sbom_id = ?2 \
                     AND ecosystem = ?3 AND name = ?4 AND version = ?5)",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO findings (advisory_id, sbom_id, ecosystem, name, version, purl, \
                     kind, severity, state, first_seen_ms, last_seen_ms, fixed_at_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', ?9, ?9, NULL)",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut reopen = tx
                .prepare_cached(
                    "UPDATE findings SET purl = ?6, kind = ?7, severity = ?8, state = 'open', \
                     last_seen_ms = ?9, fixed_at_ms = NULL WHERE advisory_id = ?1 \
                     AND sbom_id = ?2 AND ecosystem = ?3 AND name = ?4 AND version = ?5",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut seen = tx
                .prepare_cached(
                    "UPDATE findings SET kind = ?6, severity = ?7, last_seen_ms = ?8 \
                     WHERE advisory_id = ?1 AND sbom_id = ?2 AND ecosystem = ?3 AND name = ?4 \
                     AND version = ?5",
                )
                .map_err(StoreError::sqlite(what))?;
            let mut opened = Vec::new();
            let mut subjects = SbomSubjects::default();
            let mut still_open = 0u64;
            let mut done = std::collections::HashSet::new();
            for f in found {
                let k = &f.key;
                if !done.insert(k) {
                    continue;
                }
                let key_params = params![k.advisory_id, k.sbom_id, k.ecosystem, k.name, k.version];
                let (exists, state, first_seen): (bool, Option<String>, Option<i64>) = lookup
                    .query_row(key_params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(StoreError::sqlite(what))?;
                if !exists {
                    return Err(StoreError::NotFound {
                        what: "stored component",
                        id: format!(
                            "{} {} {} in SBOM {}",
                            k.ecosystem, k.name, k.version, k.sbom_id
                        ),
                    });
                }
                let state = state.map(|s| parse_state(&s)).transpose()?;
                match state {
                    None => {
                        insert
                            .execute(params![
                                k.advisory_id,
                                k.sbom_id,
                                k.ecosystem,
                                k.name,
                                k.version,
                                f.purl,
                                f.kind,
                                f.severity,
                                now_ms
                            ])
                            .map_err(StoreError::sqlite(what))?;
                        opened.push(subjects.opened(tx, f, now_ms, now_ms, what)?);
                    }
                    Some(FindingState::Fixed) => {
                        reopen
                            .execute(params![
                                k.advisory_id,
                                k.sbom_id,
                                k.ecosystem,
                                k.name,
                                k.version,
                                f.purl,
                                f.kind,
                                f.severity,
                                now_ms
                            ])
                            .map_err(StoreError::sqlite(what))?;
                        // A reopened finding keeps its first-seen time.
                        let first_seen = first_seen.unwrap_or(now_ms);
                        opened.push(subjects.opened(tx, f, first_seen, now_ms, what)?);
                    }
                    Some(FindingState::Open | FindingState::Suppressed) => {
                        seen.execute(params![
                            k.advisory_id,
                            k.sbom_id,
                            k.ecosystem,
                            k.name,
                            k.version,
                            f.kind,
                            f.severity,
                            now_ms
                        ])
                        .map_err(StoreError::sqlite(what))?;
                        still_open += 1;
                    }
                }
                covered.remove(k);
            }
            let mut fix = tx
                .prepare_cached(
                    "UPDATE findings SET state = 'fixed', fixed_at_ms = ?6 WHERE advisory_id = ?1 \
                     AND sbom_id = ?2 AND ecosystem = ?3 AND name = ?4 AND version = ?5",
                )
                .map_err(StoreError::sqlite(what))?;
            for k in covered.keys() {
                fix.execute(params![
                    k.advisory_id,
                    k.sbom_id,
                    k.ecosystem,
                    k.name,
                    k.version,
                    now_ms
                ])
                .map_err(StoreError::sqlite(what))?;
            }
            let mut components = 0u64;
            {
                let mut count_components = tx
                    .prepare_cached(
                        "SELECT count(*) FROM (SELECT DISTINCT sbom_id, version, purl \
                         FROM sbom_components WHERE ecosystem = ?1 AND name = ?2 \
                         AND (?3 IS NULL OR sbom_id = ?3))",
                    )
                    .map_err(StoreError::sqlite(what))?;
                for (ecosystem, name) in &scope.packages {
                    let n: i64 = count_components
                        .query_row(params![ecosystem, name, scope.sbom], |r| r.get(0))
                        .map_err(StoreError::sqlite(what))?;
                    components += count("component count", n)?;
                }
            }
            // What the UPDATE above wrote; every other column is as read.
            let fixed: Vec<StoredFinding> = covered
                .into_values()
                .map(|mut f| {
                    f.state = FindingState::Fixed;
                    f.fixed_at_ms = Some(now_ms);
                    f
                })
                .collect();
            tx.execute(
                "INSERT INTO rematches (at_ms, packages, advisories, sbom_id, components, opened, \
                 still_open, fixed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    now_ms,
                    sql_limit(scope.packages.len()),
                    sql_limit(scope.advisories.len()),
                    scope.sbom,
                    sql_limit(components),
                    sql_limit(opened.len()),
                    sql_limit(still_open),
                    sql_limit(fixed.len())
                ],
            )
            .map_err(StoreError::sqlite(what))?;
            Ok(MatchOutcome {
                rematch_id: tx.last_insert_rowid(),
                components,
                opened,
                still_open,
                fixed,
            })
        })
    }

    fn findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>, StoreError> {
        let what = "reading findings";
        self.read(what, |tx| {
            // The optional filters (`?N IS NULL OR …`) hide every index from
            // SQLite's planner; the one filter asked at scale (a digest's
            // findings, for exposures) is a plain equality, so the planner goes
            // from `sboms_by_subject` to `findings_by_sbom` instead of scanning
            // every finding.
            let digest_filter = if filter.subject_digest.is_some() {
                "s.subject_digest = ?4"
            } else {
                "?4 IS NULL"
            };
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {FINDING_COLUMNS} FROM findings f JOIN sboms s ON s.id = f.sbom_id \
                     WHERE {digest_filter} AND (?1 IS NULL OR f.sbom_id = ?1) \
                     AND (?2 IS NULL OR f.advisory_id = ?2) AND (?3 IS NULL OR f.state = ?3) \
                     ORDER BY f.sbom_id, f.advisory_id, f.ecosystem, f.name, f.version"
                ))
                .map_err(StoreError::sqlite(what))?;
            let rows = stmt
                .query_map(
                    params![
                        filter.sbom,
                        filter.advisory,
                        filter.state.map(FindingState::as_str),
                        filter.subject_digest
                    ],
                    RawFinding::from_row,
                )
                .map_err(StoreError::sqlite(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))?;
            rows.into_iter().map(RawFinding::into_finding).collect()
        })
    }

    fn add_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError> {
        self.write("adding an identity", |tx| {
            people::add_identity(tx, identity)
        })
    }

    fn add_first_identity(
        &self,
        identity: &IdentityRecord,
        binding: &RoleBinding,
    ) -> Result<bool, StoreError> {
        self.write("adding the first identity", |tx| {
            people::add_first_identity(tx, identity, binding)
        })
    }

    fn identity(&self, name: &str) -> Result<Option<IdentityRecord>, StoreError> {
        self.read("reading an identity", |tx| people::identity(tx, name))
    }

    fn identity_by_token(&self, token_sha256: &str) -> Result<Option<IdentityRecord>, StoreError> {
        self.read("finding an identity by token", |tx| {
            people::identity_by_token(tx, token_sha256)
        })
    }

    fn identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        self.read("listing identities", people::identities)
    }

    fn revoke_identity(&self, name: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.write("revoking an identity", |tx| {
            people::revoke_identity(tx, name, now_ms)
        })
    }

    fn identity_count(&self) -> Result<u64, StoreError> {
        self.read("counting identities", people::identity_count)
    }

    fn add_binding(&self, binding: &RoleBinding) -> Result<(), StoreError> {
        self.write("binding a role", |tx| people::add_binding(tx, binding))
    }

    fn remove_binding(&self, binding: &RoleBinding) -> Result<bool, StoreError> {
        self.write("removing a role binding", |tx| {
            people::remove_binding(tx, binding)
        })
    }

    fn bindings(&self) -> Result<Vec<RoleBinding>, StoreError> {
        self.read("listing role bindings", people::bindings)
    }

    fn add_deployment(&self, deployment: &DeploymentRecord) -> Result<i64, StoreError> {
        self.write("recording a deployment", |tx| {
            people::add_deployment(tx, deployment)
        })
    }

    fn current_deployment(
        &self,
        workload: &str,
        environment: &str,
    ) -> Result<Option<DeploymentRecord>, StoreError> {
        self.read("reading the current deployment", |tx| {
            people::current_deployment(tx, workload, environment)
        })
    }

    fn set_deployment_status(
        &self,
        token: &str,
        status: DeploymentStatus,
        reason: Option<&str>,
        detail: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.write("recording a deployment's outcome", |tx| {
            people::set_deployment_status(tx, token, status, reason, detail)
        })
    }

    fn deployments(
        &self,
        workload: Option<&str>,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeploymentRecord>, StoreError> {
        self.read("listing deployments", |tx| {
            people::deployments(tx, workload, environment, sql_limit(limit))
        })
    }

    fn was_deployed(
        &self,
        workload: &str,
        environment: &str,
        digest: &str,
    ) -> Result<bool, StoreError> {
        self.read("looking up a deployment", |tx| {
            people::was_deployed(tx, workload, environment, digest)
        })
    }

    fn add_change(&self, change: &ChangeRecord) -> Result<i64, StoreError> {
        self.write("recording a change", |tx| people::add_change(tx, change))
    }

    fn changes(
        &self,
        workload: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(i64, ChangeRecord)>, StoreError> {
        self.read("listing change records", |tx| {
            people::changes(tx, workload, sql_limit(limit))
        })
    }

    fn add_base(&self, base: &BaseRecord) -> Result<i64, StoreError> {
        self.write("adding a catalog base", |tx| images::add_base(tx, base))
    }

    fn base_history(&self, name: &str) -> Result<Vec<BaseRecord>, StoreError> {
        self.read("reading a catalog base", |tx| {
            images::base_history(tx, name)
        })
    }

    fn bases(&self) -> Result<Vec<BaseRecord>, StoreError> {
        self.read("listing the catalog", images::bases)
    }

    fn add_image(&self, image: &ImageRecord) -> Result<i64, StoreError> {
        self.write("recording an image", |tx| images::add_image(tx, image))
    }

    fn images(
        &self,
        workload: Option<&str>,
        digest: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ImageRecord>, StoreError> {
        self.read("listing images", |tx| {
            images::images(tx, workload, digest, sql_limit(limit))
        })
    }

    fn workloads(&self) -> Result<Vec<WorkloadRecord>, StoreError> {
        self.read("listing workloads", server::workloads)
    }

    fn workload(&self, name: &str) -> Result<Option<WorkloadRecord>, StoreError> {
        self.read("reading a workload", |tx| server::workload(tx, name))
    }

    fn set_forge_repository(
        &self,
        workload: &str,
        forge_repository: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.write("setting a workload's forge repository", |tx| {
            server::set_forge_repository(tx, workload, forge_repository, now_ms)
        })
    }

    fn workload_by_forge_repository(
        &self,
        forge_repository: &str,
    ) -> Result<Option<WorkloadRecord>, StoreError> {
        self.read("finding a workload by forge repository", |tx| {
            server::workload_by_forge_repository(tx, forge_repository)
        })
    }

    fn claim_queued_run(&self, owner: &str, now_ms: i64) -> Result<Option<RunRecord>, StoreError> {
        self.write("claiming a queued run", |tx| {
            server::claim_queued_run(tx, owner, now_ms)
        })
    }

    fn queued_count(&self) -> Result<u64, StoreError> {
        self.read("counting queued runs", server::queued_count)
    }

    fn accept_delivery(
        &self,
        delivery: &NewDelivery,
        run: Option<&NewRun>,
    ) -> Result<DeliveryAccepted, StoreError> {
        self.write("accepting a webhook delivery", |tx| {
            server::accept_delivery(tx, delivery, run)
        })
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.read("listing webhook deliveries", |tx| {
            server::deliveries(tx, sql_limit(limit))
        })
    }

    fn add_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.write("adding a session", |tx| server::add_session(tx, session))
    }

    fn session(&self, token_sha256: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.read("reading a session", |tx| server::session(tx, token_sha256))
    }

    fn remove_session(&self, token_sha256: &str) -> Result<bool, StoreError> {
        self.write("removing a session", |tx| {
            server::remove_session(tx, token_sha256)
        })
    }

    fn prune_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.write("pruning expired sessions", |tx| {
            server::prune_sessions(tx, now_ms)
        })
    }

    fn link_forge_account(
        &self,
        forge: &str,
        login: &str,
        identity: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.write("linking a forge account", |tx| {
            server::link_forge_account(tx, forge, login, identity, now_ms)
        })
    }

    fn forge_account(&self, forge: &str, login: &str) -> Result<Option<String>, StoreError> {
        self.read("reading a forge account", |tx| {
            server::forge_account(tx, forge, login)
        })
    }

    fn run_counts(&self) -> Result<Vec<(RunStatus, u64)>, StoreError> {
        self.read("counting runs by status", server::run_counts)
    }

    fn stage_durations(&self) -> Result<Vec<StageDurationStat>, StoreError> {
        self.read("summing stage durations", server::stage_durations)
    }

    fn log_mark(&self) -> Result<LogMark, StoreError> {
        self.read("reading the log mark", |tx| {
            let row: Option<(Option<i64>, Option<String>, i64)> = tx
                .query_row(
                    "SELECT size, root, at_ms FROM log_mark WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(StoreError::sqlite("reading the log mark"))?;
            Ok(match row {
                None => LogMark::New,
                Some((None, _, _)) => LogMark::Adopt,
                Some((Some(size), root, at_ms)) => LogMark::Seen {
                    size: count("log mark size", size)?,
                    root: root.unwrap_or_default(),
                    at_ms,
                },
            })
        })
    }

    fn set_log_mark(&self, size: u64, root: &str, at_ms: i64) -> Result<(), StoreError> {
        let sql_size = i64::try_from(size).map_err(|_| StoreError::Invalid {
            what: "log mark",
            why: format!("size {size} is out of range"),
        })?;
        self.write("recording the log mark", |tx| {
            tx.execute(
                "INSERT INTO log_mark (id, size, root, at_ms) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET size = ?1, root = ?2, at_ms = ?3
                 WHERE log_mark.size IS NULL OR log_mark.size <= ?1",
                params![sql_size, root, at_ms],
            )
            .map_err(StoreError::sqlite("recording the log mark"))?;
            Ok(())
        })
    }

    fn rematches(&self, limit: usize) -> Result<Vec<RematchRecord>, StoreError> {
        let what = "reading re-matches";
        self.read(what, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, at_ms, packages, advisories, sbom_id, components, opened, \
                     still_open, fixed FROM rematches ORDER BY id DESC LIMIT ?1",
                )
                .map_err(StoreError::sqlite(what))?;
            let rows = stmt
                .query_map([sql_limit(limit)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        [r.get::<_, i64>(2)?, r.get::<_, i64>(3)?],
                        r.get::<_, Option<i64>>(4)?,
                        [
                            r.get::<_, i64>(5)?,
                            r.get::<_, i64>(6)?,
                            r.get::<_, i64>(7)?,
                            r.get::<_, i64>(8)?,
                        ],
                    ))
                })
                .map_err(StoreError::sqlite(what))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sqlite(what))?;
            rows.into_iter()
                .map(|(id, at_ms, [p, a], sbom, [c, o, s, f])| {
                    Ok(RematchRecord {
                        id,
                        at_ms,
                        packages: count("re-match package count", p)?,
                        advisories: count("re-match advisory count", a)?,
                        sbom,
                        components: count("re-match component count", c)?,
                        opened: count("re-match opened count", o)?,
                        still_open: count("re-match still-open count", s)?,
                        fixed: count("re-match fixed count", f)?,
                    })
                })
                .collect()
        })
    }
}

const FINDING_COLUMNS: &str = "f.advisory_id, f.sbom_id, f.ecosystem, f.name, f.version, f.purl, \
     f.kind, f.severity, f.state, f.first_seen_ms, f.last_seen_ms, f.fixed_at_ms, \
     s.subject_name, s.subject_digest, s.workload, s.environment";

fn finding_key_from_row(r: &Row<'_>) -> rusqlite::Result<FindingKey> {
    Ok(FindingKey {
        advisory_id: r.get(0)?,
        sbom_id: r.get(1)?,
        ecosystem: r.get(2)?,
        name: r.get(3)?,
        version: r.get(4)?,
    })
}

fn parse_state(name: &str) -> Result<FindingState, StoreError> {
    FindingState::parse(name).ok_or_else(|| StoreError::Corrupt {
        what: "finding state",
        value: name.to_owned(),
    })
}

/// A finding row as stored, before its state is checked.
struct RawFinding {
    key: FindingKey,
    purl: String,
    kind: String,
    severity: Option<String>,
    state: String,
    first_seen_ms: i64,
    last_seen_ms: i64,
    fixed_at_ms: Option<i64>,
    subject_name: String,
    subject_digest: String,
    workload: Option<String>,
    environment: Option<String>,
}

impl RawFinding {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawFinding {
            key: finding_key_from_row(r)?,
            purl: r.get(5)?,
            kind: r.get(6)?,
            severity: r.get(7)?,
            state: r.get(8)?,
            first_seen_ms: r.get(9)?,
            last_seen_ms: r.get(10)?,
            fixed_at_ms: r.get(11)?,
            subject_name: r.get(12)?,
            subject_digest: r.get(13)?,
            workload: r.get(14)?,
            environment: r.get(15)?,
        })
    }

    fn into_finding(self) -> Result<StoredFinding, StoreError> {
        Ok(StoredFinding {
            state: parse_state(&self.state)?,
            key: self.key,
            purl: self.purl,
            kind: self.kind,
            severity: self.severity,
            first_seen_ms: self.first_seen_ms,
            last_seen_ms: self.last_seen_ms,
            fixed_at_ms: self.fixed_at_ms,
            subject_name: self.subject_name,
            subject_digest: self.subject_digest,
            workload: self.workload,
            environment: self.environment,
        })
    }
}

/// The open and suppressed findings a re-match's scope covers (by package, and
/// by advisory), whole, before it is recorded: a set-based read, one statement
/// per package and per advisory (not one per finding).
fn covered_findings(
    tx: &Connection,
    scope: &MatchScope,
    what: &'static str,
) -> Result<std::collections::BTreeMap<FindingKey, StoredFinding>, StoreError> {
    let mut covered = std::collections::BTreeMap::new();
    let mut by_package = tx
        .prepare_cached(&format!(
            "SELECT {FINDING_COLUMNS} FROM findings f JOIN sboms s ON s.id = f.sbom_id \
             WHERE f.ecosystem = ?1 AND f.name = ?2 AND (?3 IS NULL OR f.sbom_id = ?3) \
             AND f.state != 'fixed'"
        ))
        .map_err(StoreError::sqlite(what))?;
    for (ecosystem, name) in &scope.packages {
        let rows = by_package
            .query_map(params![ecosystem, name, scope.sbom], RawFinding::from_row)
            .map_err(StoreError::sqlite(what))?;
        for row in rows {
            let f = row.map_err(StoreError::sqlite(what))?.into_finding()?;
            covered.insert(f.key.clone(), f);
        }
    }
    let mut by_advisory = tx
        .prepare_cached(&format!(
            "SELECT {FINDING_COLUMNS} FROM findings f JOIN sboms s ON s.id = f.sbom_id \
             WHERE f.advisory_id = ?1 AND (?2 IS NULL OR f.sbom_id = ?2) \
             AND f.state != 'fixed'"
        ))
        .map_err(StoreError::sqlite(what))?;
    for id in &scope.advisories {
        let rows = by_advisory
            .query_map(params![id, scope.sbom], RawFinding::from_row)
            .map_err(StoreError::sqlite(what))?;
        for row in rows {
            let f = row.map_err(StoreError::sqlite(what))?.into_finding()?;
            covered.insert(f.key.clone(), f);
        }
    }
    Ok(covered)
}

/// The subject of each SBOM a re-match opens findings in, read once per SBOM,
/// so an opened finding is returned as written without reading it back.
#[derive(Default)]
struct SbomSubjects(
    std::collections::HashMap<i64, (String, String, Option<String>, Option<String>)>,
);

impl SbomSubjects {
    /// The finding `f` as just written open (inserted, or reopened keeping
    /// `first_seen_ms`).
    fn opened(
        &mut self,
        tx: &Connection,
        f: &NewFinding,
        first_seen_ms: i64,
        now_ms: i64,
        what: &'static str,
    ) -> Result<StoredFinding, StoreError> {
        let sbom_id = f.key.sbom_id;
        let subject = match self.0.entry(sbom_id) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(
                tx.prepare_cached(
                    "SELECT subject_name, subject_digest, workload, environment FROM sboms \
                     WHERE id = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.query_row([sbom_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                })
                .map_err(StoreError::sqlite(what))?,
            ),
        };
        let (subject_name, subject_digest, workload, environment) = subject.clone();
        Ok(StoredFinding {
            key: f.key.clone(),
            purl: f.purl.clone(),
            kind: f.kind.clone(),
            severity: f.severity.clone(),
            state: FindingState::Open,
            first_seen_ms,
            last_seen_ms: now_ms,
            fixed_at_ms: None,
            subject_name,
            subject_digest,
            workload,
            environment,
        })
    }
}

fn advisory_by_id(
    tx: &Connection,
    id: &str,
    what: &'static str,
) -> Result<Option<StoredAdvisory>, StoreError> {
    tx.prepare_cached("SELECT id, modified, withdrawn, json FROM advisories WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([id], |r| {
                Ok(StoredAdvisory {
                    id: r.get(0)?,
                    modified: r.get(1)?,
                    withdrawn: r.get(2)?,
                    json: r.get(3)?,
                })
            })
            .optional()
        })
        .map_err(StoreError::sqlite(what))
}

/// Ends a run: its pending stages are skipped, the run gets its final status.
fn settle_run(
    tx: &Connection,
    run: RunId,
    status: RunStatus,
    reason: Option<&str>,
    now_ms: i64,
    what: &'static str,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE stages SET status = ?1 WHERE run_id = ?2 AND status = ?3",
        params![
            StageStatus::Skipped.as_str(),
            run.0,
            StageStatus::Pending.as_str()
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    tx.execute(
        "UPDATE runs SET status = ?1, reason = ?2, finished_at_ms = ?3 WHERE id = ?4",
        params![status.as_str(), reason, now_ms, run.0],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(())
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
