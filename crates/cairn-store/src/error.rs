//! The one error type of the store: every variant says what was being done and keeps its cause.

use std::path::PathBuf;

/// Why a store operation could not be carried out.
///
/// State-machine refusals (`InvalidTransition`, `RunNotActive`, `LogSequence`) are
/// returned before anything is written: the operation had no effect.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory or the database file could not be created.
    #[error("cannot {what} `{}`", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The database could not be opened or is not a database.
    #[error("cannot open the database `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// The database was written by a newer cairn; it was left untouched.
    #[error(
        "the database `{}` has schema version {found}, newer than the {known} this cairn knows; \
         upgrade cairn (the database was not modified)",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    /// SQLite could not switch the database to write-ahead logging (a file system
    /// without shared memory, such as some network file systems).
    #[error(
        "cannot use write-ahead logging for `{}` (journal mode stays `{mode}`); \
         put the data directory on a local file system",
        path.display()
    )]
    NoWal { path: PathBuf, mode: String },

    /// A migration script failed; its transaction was rolled back.
    #[error("cannot migrate the database to schema version {version}")]
    Migrate {
        version: u32,
        #[source]
        source: rusqlite::Error,
    },

    /// A value is larger than the store keeps.
    #[error("{what} is {size} bytes; the store keeps at most {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },

    /// SQLite failed while doing `what`.
    #[error("database error while {what}")]
    Sqlite {
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    /// The file system holding the database is full (or too full for SQLite's
    /// shared memory); the transaction was rolled back, nothing was written.
    #[error(
        "disk full at {}: cannot go on {what}; nothing was written (free some space and run \
         the command again)",
        dir.display()
    )]
    DiskFull {
        dir: PathBuf,
        what: &'static str,
        #[source]
        source: Option<rusqlite::Error>,
    },

    /// The PostgreSQL server could not be reached, or refused the connection.
    /// `target` names the server and database, never a password.
    #[cfg(feature = "postgres")]
    #[error("cannot connect to the PostgreSQL database `{target}`")]
    Connect {
        target: String,
        #[source]
        source: postgres::Error,
    },

    /// PostgreSQL failed while doing `what`.
    #[cfg(feature = "postgres")]
    #[error("database error while {what}")]
    Postgres {
        what: &'static str,
        #[source]
        source: postgres::Error,
    },

    /// A migration script failed on PostgreSQL; its transaction was rolled back.
    #[cfg(feature = "postgres")]
    #[error("cannot migrate the PostgreSQL database to schema version {version}")]
    MigratePostgres {
        version: u32,
        #[source]
        source: postgres::Error,
    },

    /// The PostgreSQL server's disk is full (SQLSTATE 53100); the transaction
    /// was rolled back, nothing was written.
    #[cfg(feature = "postgres")]
    #[error(
        "the PostgreSQL server's disk is full: cannot go on {what}; nothing was written (free \
         some space on the database server and run the command again)"
    )]
    ServerDiskFull {
        what: &'static str,
        #[source]
        source: postgres::Error,
    },

    /// A read the PostgreSQL store runs outside a transaction (one statement,
    /// one snapshot) tried a second statement: a defect of the store, refused
    /// rather than answered from two snapshots.
    #[cfg(feature = "postgres")]
    #[error("internal error while {what}: a second statement outside a transaction")]
    SecondStatement { what: &'static str },

    /// A value read back from the database is not one this code writes.
    #[error("corrupt {what} in the database: `{value}`")]
    Corrupt { what: &'static str, value: String },

    /// No record of kind `what` (run, stage, workload) has this id.
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },

    /// The record is not in a state from which the requested one can be reached.
    #[error("{what} {id} cannot go from {from} to {to}")]
    InvalidTransition {
        what: &'static str,
        id: i64,
        from: &'static str,
        to: &'static str,
    },

    /// The operation needs a run in another state (a running run to start a stage,
    /// a run that is not final to add logs).
    #[error("cannot {action}: run {run} is {status}")]
    RunNotActive {
        run: i64,
        status: &'static str,
        action: &'static str,
    },

    /// A finding handed to a re-match is not of a package (or SBOM) it covers.
    #[error(
        "finding {advisory} for {ecosystem} {name} {version} in SBOM {sbom} is outside the re-match's scope"
    )]
    OutOfScope {
        advisory: String,
        sbom: i64,
        ecosystem: String,
        name: String,
        version: String,
    },

    /// Log lines must continue the stage's log: seq `expected` comes next.
    #[error("log of stage {stage} continues at seq {expected}, but a line has seq {found}")]
    LogSequence {
        stage: i64,
        expected: u64,
        found: u64,
    },

    /// A record of kind `what` (identity, …) with this name already exists;
    /// nothing was written.
    #[error("{what} `{id}` already exists")]
    Exists { what: &'static str, id: String },

    /// `id`, a value of kind `what` that only one record may hold (a forge
    /// repository), is held by `holder`; nothing was written.
    #[error("{what} `{id}` is already used by `{holder}`")]
    InUse {
        what: &'static str,
        id: String,
        holder: String,
    },

    /// A value the store does not keep (an empty name, an environment without a
    /// workload, a number out of range); nothing was written.
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
}

impl StoreError {
    /// What kind of failure this is (the CLI's exit code and the server's status
    /// follow from it): a missing record, a name taken, a value refused are the
    /// request's; the rest is the store's own.
    pub fn kind(&self) -> cairn_model::ErrorKind {
        use cairn_model::ErrorKind;
        match self {
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::Invalid { .. } | StoreError::TooLarge { .. } => ErrorKind::Invalid,
            StoreError::Exists { .. } | StoreError::InUse { .. } => ErrorKind::Conflict,
            StoreError::DiskFull { .. } => ErrorKind::DiskFull,
            #[cfg(feature = "postgres")]
            StoreError::ServerDiskFull { .. } => ErrorKind::DiskFull,
            _ => ErrorKind::Internal,
        }
    }

    /// Whether the disk holding the store is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::DiskFull { .. } => true,
            #[cfg(feature = "postgres")]
            StoreError::ServerDiskFull { .. } => true,
            _ => false,
        }
    }

    /// Whether the database server could not be reached, or went away while
    /// in use (its connection closed, the server shutting down or starting,
    /// SQLSTATE class 08 and 57P01–57P03): worth trying again later. Nothing
    /// was written unless the connection broke during a COMMIT.
    pub fn is_unreachable(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            StoreError::Connect { .. } => true,
            #[cfg(feature = "postgres")]
            StoreError::Postgres { source, .. } => {
                use postgres::error::SqlState;
                source.is_closed()
                    || source.code().is_some_and(|c| {
                        c.code().starts_with("08")
                            || [
                                SqlState::ADMIN_SHUTDOWN,
                                SqlState::CRASH_SHUTDOWN,
                                SqlState::CANNOT_CONNECT_NOW,
                            ]
                            .contains(c)
                    })
            }
            _ => false,
        }
    }

    /// A PostgreSQL error while doing `what`: a full disk (SQLSTATE 53100) is
    /// [`StoreError::ServerDiskFull`], the rest [`StoreError::Postgres`].
    /// Text PostgreSQL cannot keep (a NUL byte, 22021) is the caller's value,
    /// refused as [`StoreError::Invalid`] with nothing written.
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(what: &'static str, source: postgres::Error) -> StoreError {
        use postgres::error::SqlState;
        match source.code() {
            Some(&SqlState::DISK_FULL) => StoreError::ServerDiskFull { what, source },
            Some(&SqlState::CHARACTER_NOT_IN_REPERTOIRE) => StoreError::Invalid {
                what: "text",
                why: format!(
                    "a value has a NUL byte, which the PostgreSQL store does not keep \
                     (while {what})"
                ),
            },
            _ => StoreError::Postgres { what, source },
        }
    }

    /// A `map_err` adapter for SQLite errors while doing `what`.
    pub(crate) fn sqlite(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { what, source }
    }
}
