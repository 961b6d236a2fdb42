//! The store and the audit log are a pair. The store keeps the log's size and
//! root as it last checked them ([`cairn_store::LogMark`]); every open compares
//! them with the log before anything else reads or writes state:
//!
//! - a missing or empty store beside a non-empty log is refused (never a silent
//!   fresh start: runs, identities and change records would vanish while the log
//!   says they exist), naming `cairn recover` and `cairn restore`;
//! - a log shorter than the store has seen (truncated), or whose first entries
//!   no longer hash to the root the store saw (replaced), is refused;
//! - entries the log gained since the last check are examined: each must have
//!   its effect in the store (a change or deployment record with its index, the
//!   identity it added); those that do not are listed and the mark stays before
//!   the first of them, so they are reported again until `cairn recover` settles
//!   them (a promotion still under way shows up there too, until it records).
//!
//! Entries with no effect in the store need none: a key rotation (the key is on
//! disk), an evidence bundle (a bundle whose row is missing is never shown to a
//! gate, which fails closed without it), and entries of kinds this version does
//! not know. Only cairn appends to the audit log (`cairn log --scratch append`
//! writes a separate scratch log).

use std::path::{Path, PathBuf};

use cairn_store::{LogMark, SqliteStore, Store};
use cairn_tlog_fs::Log;
use serde_json::Value;

use crate::audit::{key_path, log_dir};
use crate::{DataDir, EngineError};

/// At most this many new entries are examined per open; the mark moves on and
/// the rest are examined by the next open.
pub const MAX_EXAMINED: u64 = 100_000;

/// The database file of the data directory.
pub fn db_path(data: &DataDir) -> PathBuf {
    data.root().join(SqliteStore::FILE_NAME)
}

/// One log entry, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub index: u64,
    /// The entry's kind (`deploy`, `access-change`, `dsse`, …).
    pub kind: String,
    /// What it records, in one line (`deploy hello → production sha256:… by alice`).
    pub summary: String,
    /// The JSON entry (for change entries), `Null` otherwise.
    pub spec: Value,
}

/// An entry whose effect the store lacks, and what it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexplained {
    pub entry: LogEntry,
    pub lacks: String,
}

/// What the check found (when it did not refuse).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pairing {
    pub log_size: u64,
    /// The store predated the mark and took the log as it found it.
    pub adopted: bool,
    /// New entries whose effect the store lacks.
    pub unexplained: Vec<Unexplained>,
}

/// The log on disk, read-only; `None` when there is none yet.
pub fn read_log(data: &DataDir) -> Result<Option<Log>, EngineError> {
    let dir = log_dir(data);
    if !dir.join("checkpoint").is_file() {
        return Ok(None);
    }
    let Some(verifier) = crate::log_key::current_verifier(data)? else {
        return Err(EngineError::Io {
            what: "read the audit log's",
            path: key_path(data),
            source: std::io::ErrorKind::NotFound.into(),
        });
    };
    Log::open_read_only(&dir, verifier)
        .map(Some)
        .map_err(|source| EngineError::AuditLog { dir, source })
}

fn log_size(log: Option<&Log>) -> u64 {
    log.map_or(0, Log::size)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Before the store is opened: refuses a missing or empty database file beside a
/// non-empty log, without creating or touching the file.
pub fn refuse_missing_store(data: &DataDir) -> Result<(), EngineError> {
    let db = db_path(data);
    // A new database's pages may all still be in its write-ahead log (a process
    // that stopped before a checkpoint): the file is empty only with no WAL.
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    let wal_len = std::fs::symlink_metadata(&wal).map_or(0, |m| m.len());
    let missing = match std::fs::symlink_metadata(&db) {
        Ok(meta) if meta.len() > 0 || wal_len > 0 => return Ok(()),
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(source) => {
            return Err(EngineError::Io {
                what: "read",
                path: db,
                source,
            });
        }
    };
    let log = read_log(data)?;
    let entries = log_size(log.as_ref());
    if store_was_there(log.as_ref(), data)? {
        return Err(EngineError::StoreLost {
            db,
            log: log_dir(data),
            entries,
            state: if missing { "missing" } else { "empty" },
        });
    }
    Ok(())
}

/// Opens the data directory's store checked against its log (see the module
/// documentation): the way every command and the server open the store.
pub fn open_store(data: &DataDir) -> Result<(SqliteStore, Pairing), EngineError> {
    refuse_missing_store(data)?;
    let store = SqliteStore::open(data.root())?;
    let pairing = check(data, &store, crate::host::now_ms())?;
    Ok((store, pairing))
}

/// Opens the data directory's store for a command that only reads (`cairn
/// scan`), checked against its log as [`open_store`] checks it: the same
/// refusals (a lost store, a truncated or replaced log), the same entries
/// examined. Nothing is written: the store is opened by
/// [`SqliteStore::open_reading`], and when the check would move the store's
/// mark (a new or older store, entries the log gained), or the store must be
/// created or migrated first, it is opened by [`open_store`] instead, which
/// does that as every other command does.
pub fn open_store_reading(data: &DataDir) -> Result<(SqliteStore, Pairing), EngineError> {
    refuse_missing_store(data)?;
    if let Some(store) = SqliteStore::open_reading(data.root())?
        && let Some(pairing) = examine(data, &store, None)?
    {
        return Ok((store, pairing));
    }
    open_store(data)
}

/// Compares `store` with the log and moves the store's mark over the new
/// entries whose effect it holds.
pub fn check(data: &DataDir, store: &dyn Store, now_ms: i64) -> Result<Pairing, EngineError> {
    Ok(examine(data, store, Some(now_ms))?.unwrap_or_default())
}

/// [`check`]; with `now_ms` `None` it writes nothing and answers `None` where
/// [`check`] would move the mark.
fn examine(
    data: &DataDir,
    store: &dyn Store,
    now_ms: Option<i64>,
) -> Result<Option<Pairing>, EngineError> {
    let log = read_log(data)?;
    let size = log_size(log.as_ref());
    let root_at = |n: u64| -> Result<String, EngineError> {
        match &log {
            Some(l) if n > 0 => {
                l.root_at(n)
                    .map(|r| hex(&r))
                    .map_err(|source| EngineError::AuditLog {
                        dir: log_dir(data),
                        source,
                    })
            }
            _ => Ok(String::new()),
        }
    };
    let mut pairing = Pairing {
        log_size: size,
        ..Pairing::default()
    };
    let seen = match store.log_mark()? {
        LogMark::New if store_was_there(log.as_ref(), data)? => {
            return Err(EngineError::StoreLost {
                db: db_path(data),
                log: log_dir(data),
                entries: size,
                state: "empty",
            });
        }
        // Only entries with no effect in the store (key rotations before the
        // first run, free-form entries): nothing was lost; pair from here.
        LogMark::New => {
            let Some(now_ms) = now_ms else {
                return Ok(None);
            };
            set_mark(store, size, &root_at(size)?, now_ms)?;
            return Ok(Some(pairing));
        }
        LogMark::Adopt => {
            let Some(now_ms) = now_ms else {
                return Ok(None);
            };
            set_mark(store, size, &root_at(size)?, now_ms)?;
            pairing.adopted = true;
            return Ok(Some(pairing));
        }
        LogMark::Seen {
            size: seen, root, ..
        } => {
            if seen > size {
                return Err(EngineError::LogBehindStore {
                    db: db_path(data),
                    log: log_dir(data),
                    seen,
                    entries: size,
                });
            }
            if seen > 0 && root_at(seen)? != root {
                return Err(EngineError::LogReplaced {
                    db: db_path(data),
                    log: log_dir(data),
                    seen,
                });
            }
            seen
        }
    };
    let Some(log) = &log else {
        return Ok(Some(pairing));
    };
    let end = size.min(seen.saturating_add(MAX_EXAMINED));
    let mut effects = Effects::default();
    let mut mark = end;
    for index in seen..end {
        let entry = read_entry(log, index, data)?;
        if let Some(lacks) = effects.lacks(store, &entry)? {
            mark = mark.min(index);
            pairing.unexplained.push(Unexplained { entry, lacks });
        }
    }
    if mark > seen {
        let Some(now_ms) = now_ms else {
            return Ok(None);
        };
        set_mark(store, mark, &root_at(mark)?, now_ms)?;
    }
    Ok(Some(pairing))
}

/// Moves the store's mark; on a full disk the mark stays (the next open checks
/// the same entries again), so reading commands still work.
fn set_mark(store: &dyn Store, size: u64, root: &str, now_ms: i64) -> Result<(), EngineError> {
    match store.set_log_mark(size, root, now_ms) {
        Err(e) if e.is_disk_full() => Ok(()),
        other => Ok(other?),
    }
}

/// Refuses a bootstrap (a first identity made without a token) when the log
/// already records an identity: the store lost them, and a new admin would
/// take over an installation whose history names others.
pub fn refuse_bootstrap_over_log(data: &DataDir) -> Result<(), EngineError> {
    let Some(log) = read_log(data)? else {
        return Ok(());
    };
    for index in 0..log.size() {
        let entry = read_entry(&log, index, data)?;
        if entry.kind == "access-change" && entry.spec["action"] == "identity-add" {
            return Err(EngineError::IdentitiesInLog {
                log: log_dir(data),
                index,
                summary: entry.summary,
                hint: recovery_hint(data.root()),
            });
        }
    }
    Ok(())
}

/// Whether the log holds an entry a store must have been there for: evidence,
/// a change to an environment or policy, an identity or role change. A log of
/// key rotations (`cairn key create` before the first run) and free-form
/// entries does not.
fn store_was_there(log: Option<&Log>, data: &DataDir) -> Result<bool, EngineError> {
    let Some(log) = log else {
        return Ok(false);
    };
    for index in 0..log.size() {
        let entry = read_entry(log, index, data)?;
        if matches!(
            entry.kind.as_str(),
            "dsse"
                | "deploy"
                | "rollback"
                | "undeploy"
                | "override"
                | "policy-change"
                | "access-change"
        ) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Entry `index` of `log`, read for people.
pub fn read_entry(log: &Log, index: u64, data: &DataDir) -> Result<LogEntry, EngineError> {
    let bytes = log.entry(index).map_err(|source| EngineError::AuditLog {
        dir: log_dir(data),
        source,
    })?;
    Ok(describe(index, &bytes))
}

/// An entry's kind and a one-line summary; anything unreadable says so.
pub fn describe(index: u64, bytes: &[u8]) -> LogEntry {
    let value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let kind = value["kind"].as_str().unwrap_or("unreadable").to_owned();
    let spec = value["spec"].clone();
    let s = |k: &str| spec[k].as_str().unwrap_or("?").to_owned();
    let summary = match kind.as_str() {
        "deploy" | "override" | "undeploy" => format!(
            "{kind} {} → {} {} by {}",
            s("workload"),
            s("environment"),
            s("artifact"),
            s("actor")
        ),
        "rollback" => format!(
            "rollback {} → {} {} to {} by {}",
            s("workload"),
            s("environment"),
            s("fromArtifact"),
            s("toArtifact"),
            s("actor")
        ),
        "policy-change" => format!("policy-change {} by {}", s("policy"), s("actor")),
        "key-rotation" => format!("key-rotation {} → {}", s("purpose"), s("newKeyId")),
        "access-change" => {
            let mut text = format!("access-change {} {}", s("action"), s("identity"));
            if let Some(role) = spec["role"].as_str() {
                text.push_str(&format!(" role {role}"));
            }
            if let Some(w) = spec["workload"].as_str() {
                text.push_str(&format!(" on {w}"));
            }
            text
        }
        "dsse" => "dsse (a signed evidence bundle)".to_owned(),
        _ => format!("{kind} (an entry this cairn does not know)"),
    };
    LogEntry {
        index,
        kind,
        summary,
        spec: if value["kind"] == "dsse" {
            Value::Null
        } else {
            spec
        },
    }
}

/// The store's change and deployment log indices, read once per check.
#[derive(Default)]
struct Effects {
    indices: Option<std::collections::BTreeSet<u64>>,
}

/// How many change and deployment records the check reads.
const RECORDS_SCANNED: usize = 1_000_000;

impl Effects {
    fn recorded(&mut self, store: &dyn Store, index: u64) -> Result<bool, EngineError> {
        if self.indices.is_none() {
            let mut set: std::collections::BTreeSet<u64> = store
                .changes(None, RECORDS_SCANNED)?
                .into_iter()
                .map(|(_, c)| c.log_index)
                .collect();
            set.extend(
                store
                    .deployments(None, None, RECORDS_SCANNED)?
                    .into_iter()
                    .map(|d| d.log_index),
            );
            self.indices = Some(set);
        }
        Ok(self.indices.as_ref().is_some_and(|s| s.contains(&index)))
    }

    /// What the store lacks of `entry`'s effect; `None` when it has it (or the
    /// entry has no effect in the store).
    fn lacks(
        &mut self,
        store: &dyn Store,
        entry: &LogEntry,
    ) -> Result<Option<String>, EngineError> {
        Ok(match entry.kind.as_str() {
            "deploy" | "rollback" | "undeploy" | "override" | "policy-change" => {
                if self.recorded(store, entry.index)? {
                    None
                } else {
                    Some(
                        "no change record: a promotion still under way, or one that stopped \
                         after logging its decision"
                            .to_owned(),
                    )
                }
            }
            "access-change" => {
                let name = entry.spec["identity"].as_str().unwrap_or_default();
                if store.identity(name)?.is_some() {
                    None
                } else {
                    Some(format!("no identity `{name}` in the store"))
                }
            }
            // Evidence and key rotations have no effect in the store; nor do
            // kinds this version does not know.
            _ => None,
        })
    }
}

/// The recovery commands, for messages.
pub fn recovery_hint(data: &Path) -> String {
    let home = data.display();
    format!(
        "`CAIRN_HOME={home} cairn recover` rebuilds what the log holds, or \
         `CAIRN_HOME={home} cairn restore <backup-dir>` restores a backup"
    )
}
