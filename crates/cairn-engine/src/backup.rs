//! `cairn backup DIR` / `cairn restore DIR`: the data directory as one verified
//! copy. The store is copied with SQLite's online backup API (a consistent
//! snapshot while others write), then the log (its checkpoint first, so the
//! copied tiles are never behind the copied checkpoint, and the store's mark is
//! never ahead of the copied log), keys, OCI layout, change sink and server
//! secrets. `cairn-backup.json` names the installation, cairn's and the schema's
//! versions, and the size and SHA-256 of every file.
//!
//! A restore verifies every file against the manifest before it writes
//! anything, refuses a backup of another installation (two installations with
//! one log key would sign two different histories), a newer schema or cairn, a
//! directory a running `cairn up` holds, and a non-empty directory unless
//! forced (whose old contents are moved aside, not deleted); afterwards it
//! verifies the log and checks the store against it.
//!
//! Only regular files and directories are copied: a symlink or special file in
//! either directory is refused, never followed.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use cairn_store::SqliteStore;
use serde_json::{Value, json};

use crate::{DataDir, EngineError};

/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "cairn-backup.json";
/// The manifest's format.
pub const FORMAT: u64 = 1;
/// The installation's id, in the data directory.
pub const INSTALLATION_ID: &str = "installation-id";
/// Held (flock) by a running `cairn up` for its whole life.
pub const LIVE_LOCK: &str = "live.lock";
/// The largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Top-level entries of the data directory that are not copied: the database
/// (copied through SQLite), per-process state, and the live lock.
const SKIPPED: &[&str] = &[
    "cairn.db",
    "cairn.db-wal",
    "cairn.db-shm",
    "cairn.db-journal",
    "work",
    "rootfs",
    LIVE_LOCK,
];

/// Why a backup or restore was refused (the user's input: exit 1).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} is not empty; back up into a new or empty directory", .0.display())]
    DestinationNotEmpty(PathBuf),
    #[error("{} has no {MANIFEST}: not a cairn backup", .0.display())]
    NoManifest(PathBuf),
    #[error("the backup's manifest is malformed: {0}")]
    BadManifest(String),
    #[error("the backup is damaged: {path} {why}")]
    Damaged { path: String, why: String },
    #[error(
        "the backup is of installation {backup}, but {} belongs to installation {target}; \
         restore into an empty directory instead (two installations must never share a log key)",
        dir.display()
    )]
    OtherInstallation {
        backup: String,
        target: String,
        dir: PathBuf,
    },
    #[error(
        "the backup was made by cairn {backup_version} (schema {backup_schema}), newer than this \
         cairn {ours} (schema {our_schema}); restore it with that version or newer"
    )]
    Newer {
        backup_version: String,
        backup_schema: i64,
        ours: String,
        our_schema: i64,
    },
    #[error(
        "{} is live: a running `cairn up` holds {}; stop it before restoring",
        dir.display(), lock.display()
    )]
    Live { dir: PathBuf, lock: PathBuf },
    #[error(
        "{} is not empty; pass --force to restore over it (its contents are moved to {})",
        dir.display(), aside.display()
    )]
    TargetNotEmpty { dir: PathBuf, aside: PathBuf },
    #[error("{} is a symlink or special file; cairn copies only regular files", .0.display())]
    NotRegular(PathBuf),
}

/// One copied file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the data directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Hex SHA-256.
    pub sha256: String,
    pub mode: u32,
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub installation: String,
    pub cairn_version: String,
    pub schema_version: i64,
    pub log_size: u64,
    pub created_at_ms: i64,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    fn to_json(&self) -> Value {
        json!({
            "format": FORMAT,
            "installation": self.installation,
            "cairnVersion": self.cairn_version,
            "schemaVersion": self.schema_version,
            "logSize": self.log_size,
            "createdAtMs": self.created_at_ms,
            "files": self.files.iter().map(|f| json!({
                "path": f.path, "size": f.size, "sha256": f.sha256, "mode": f.mode,
            })).collect::<Vec<_>>(),
        })
    }

    fn from_json(v: &Value) -> Result<Manifest, BackupError> {
        let bad = |what: &str| BackupError::BadManifest(format!("`{what}` is missing or wrong"));
        if v["format"].as_u64().ok_or_else(|| bad("format"))? > FORMAT {
            return Err(BackupError::BadManifest(format!(
                "format {} is newer than {FORMAT}",
                v["format"]
            )));
        }
        let text = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(|| bad(k));
        let mut files = Vec::new();
        for f in v["files"].as_array().ok_or_else(|| bad("files"))? {
            let path = f["path"].as_str().ok_or_else(|| bad("files[].path"))?;
            check_relative(path)?;
            let sha256 = f["sha256"].as_str().ok_or_else(|| bad("files[].sha256"))?;
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("files[].sha256"));
            }
            files.push(FileEntry {
                path: path.to_owned(),
                size: f["size"].as_u64().ok_or_else(|| bad("files[].size"))?,
                sha256: sha256.to_owned(),
                mode: u32::try_from(f["mode"].as_u64().ok_or_else(|| bad("files[].mode"))?)
                    .map_err(|_| bad("files[].mode"))?
                    & 0o777,
            });
        }
        Ok(Manifest {
            installation: text("installation")?,
            cairn_version: text("cairnVersion")?,
            schema_version: v["schemaVersion"]
                .as_i64()
                .ok_or_else(|| bad("schemaVersion"))?,
            log_size: v["logSize"].as_u64().ok_or_else(|| bad("logSize"))?,
            created_at_ms: v["createdAtMs"].as_i64().unwrap_or(0),
            files,
        })
    }
}

/// A path from a manifest: relative, no `..`, no empty or `.` parts.
fn check_relative(path: &str) -> Result<(), BackupError> {
    let ok = !path.is_empty()
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && !path.contains('\\');
    if ok {
        Ok(())
    } else {
        Err(BackupError::BadManifest(format!(
            "`{path}` is not a plain relative path"
        )))
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    EngineError::io(what, path)
}

/// The installation's id (`<data>/installation-id`), made on first use: 16
/// random bytes, hex.
pub fn installation_id(data: &DataDir) -> Result<String, EngineError> {
    let path = data.root().join(INSTALLATION_ID);
    if let Some(id) = read_installation_id(data.root())? {
        return Ok(id);
    }
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| EngineError::NoRandomness)?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    crate::keys::write_atomically(&path, format!("{id}\n").as_bytes(), 0o644)?;
    Ok(id)
}

fn read_installation_id(root: &Path) -> Result<Option<String>, EngineError> {
    let path = root.join(INSTALLATION_ID);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EngineError::Io {
            what: "read",
            path,
            source,
        }),
    }
}

/// The lock a running `cairn up` holds on its data directory; released when
/// dropped (or when the process dies).
#[derive(Debug)]
pub struct LiveLock {
    _file: File,
}

/// Takes the data directory's live lock, for a server's whole life. `Ok(None)`
/// when another process holds it.
pub fn take_live_lock(data: &DataDir) -> Result<Option<LiveLock>, EngineError> {
    let path = data.root().join(LIVE_LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(io("open", &path))?;
    // SAFETY: flock(2) on a descriptor we own; LOCK_NB never blocks.
    let held = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    if held != 0 {
        return Ok(None);
    }
    Ok(Some(LiveLock { _file: file }))
}

fn sha256_file(path: &Path) -> Result<(u64, String), EngineError> {
    let mut file = File::open(path).map_err(io("read", path))?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io("read", path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        ctx.update(&buf[..n]);
    }
    let hex = ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((size, hex))
}

/// Every regular file under `root` (relative paths), skipping the top-level
/// names in `skip`; a symlink or special file is refused.
fn walk(root: &Path, skip: &[&str]) -> Result<Vec<PathBuf>, EngineError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io("read", &dir))?
            .collect::<Result<_, _>>()
            .map_err(io("read", &dir))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name();
            if rel.as_os_str().is_empty() && skip.iter().any(|s| name == *s) {
                continue;
            }
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(io("read", &path))?;
            let child = rel.join(&name);
            if meta.is_dir() {
                stack.push(child);
            } else if meta.is_file() {
                out.push(child);
            } else {
                return Err(EngineError::Backup(BackupError::NotRegular(path)));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn make_dir(path: &Path) -> Result<(), EngineError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io("create", path))
}

/// Copies `from` to `to` (created new, mode `mode`), fsync'd; returns its size
/// and SHA-256.
fn copy_file(from: &Path, to: &Path, mode: u32) -> Result<(u64, String), EngineError> {
    if let Some(parent) = to.parent() {
        make_dir(parent)?;
    }
    let mut src = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(from)
        .map_err(io("read", from))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(to)
        .map_err(io("create", to))?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(io("read", from))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(io("write", to))?;
        size += n as u64;
    }
    dst.sync_all().map_err(io("sync", to))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .map_err(io("set the mode of", to))?;
    let hex = ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((size, hex))
}

fn is_empty_dir(path: &Path) -> Result<bool, EngineError> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(EngineError::Io {
            what: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

fn rel_string(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Backs `data` (whose store is `store`) up into `dest`, a new or empty
/// directory.
pub fn backup(
    data: &DataDir,
    store: &SqliteStore,
    dest: &Path,
    now_ms: i64,
) -> Result<Manifest, EngineError> {
    if !is_empty_dir(dest)? {
        return Err(BackupError::DestinationNotEmpty(dest.to_owned()).into());
    }
    make_dir(dest)?;
    // It holds the keys and secrets: private, even if it existed before.
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o700))
        .map_err(io("set the mode of", dest))?;
    let installation = installation_id(data)?;
    let mut files = Vec::new();
    // 1. The store, as one consistent snapshot.
    let db = dest.join(SqliteStore::FILE_NAME);
    store.backup_to(&db)?;
    let (size, sha256) = sha256_file(&db)?;
    files.push(FileEntry {
        path: SqliteStore::FILE_NAME.to_owned(),
        size,
        sha256,
        mode: 0o600,
    });
    // 2. The log's checkpoint, then everything else (the log's tiles included).
    let checkpoint = Path::new("log").join("checkpoint");
    let mut rels = walk(data.root(), SKIPPED)?;
    if let Some(i) = rels.iter().position(|r| *r == checkpoint) {
        let cp = rels.remove(i);
        rels.insert(0, cp);
    }
    for rel in rels {
        let from = data.root().join(&rel);
        let mode = std::fs::symlink_metadata(&from)
            .map_err(io("read", &from))?
            .permissions()
            .mode()
            & 0o777;
        let (size, sha256) = copy_file(&from, &dest.join(&rel), mode)?;
        files.push(FileEntry {
            path: rel_string(&rel),
            size,
            sha256,
            mode,
        });
    }
    let log_size = crate::pairing::read_log(&DataDir::at(dest))?.map_or(0, |l| l.size());
    let manifest = Manifest {
        installation,
        cairn_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: SqliteStore::SCHEMA_VERSION,
        log_size,
        created_at_ms: now_ms,
        files,
    };
    let path = dest.join(MANIFEST);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io("create", &path))?;
    file.write_all(manifest.to_json().to_string().as_bytes())
        .map_err(io("write", &path))?;
    file.sync_all().map_err(io("sync", &path))?;
    Ok(manifest)
}

/// Reads and checks a backup: the manifest, and every file's size and digest.
pub fn verify_backup(dir: &Path) -> Result<Manifest, EngineError> {
    let path = dir.join(MANIFEST);
    let mut text = String::new();
    match File::open(&path) {
        Ok(f) => {
            f.take(MAX_MANIFEST_BYTES)
                .read_to_string(&mut text)
                .map_err(io("read", &path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::NoManifest(dir.to_owned()).into());
        }
        Err(source) => {
            return Err(EngineError::Io {
                what: "read",
                path,
                source,
            });
        }
    }
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| BackupError::BadManifest(format!("not JSON: {e}")))?;
    let manifest = Manifest::from_json(&value)?;
    for f in &manifest.files {
        // Every directory on the way is a real one inside the backup: a symlink
        // there would make the restore read from elsewhere.
        let mut at = dir.to_owned();
        let parts: Vec<_> = Path::new(&f.path).components().collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            at.push(part);
            if !std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) {
                return Err(BackupError::NotRegular(at).into());
            }
        }
        let p = dir.join(&f.path);
        let meta = std::fs::symlink_metadata(&p).map_err(|_| BackupError::Damaged {
            path: f.path.clone(),
            why: "is missing".into(),
        })?;
        if !meta.is_file() {
            return Err(BackupError::NotRegular(p).into());
        }
        let (size, sha256) = sha256_file(&p)?;
        if size != f.size || sha256 != f.sha256 {
            return Err(BackupError::Damaged {
                path: f.path.clone(),
                why: format!(
                    "does not match the manifest (sha256 {sha256}, {size} bytes; expected {}, {} bytes)",
                    f.sha256, f.size
                ),
            }
            .into());
        }
    }
    Ok(manifest)
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub manifest: Manifest,
    /// Where the directory's earlier contents went (with `force`).
    pub moved_aside: Option<PathBuf>,
    pub log_size: u64,
    pub pairing: crate::pairing::Pairing,
}

/// `major.minor.patch` as numbers, for comparing versions.
fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '-', '+'])
        .take(3)
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// Restores the backup in `from` into `data` (see the module documentation).
pub fn restore(from: &Path, data: &DataDir, force: bool) -> Result<Restored, EngineError> {
    let manifest = verify_backup(from)?;
    let ours = env!("CARGO_PKG_VERSION");
    if manifest.schema_version > SqliteStore::SCHEMA_VERSION
        || version_key(&manifest.cairn_version) > version_key(ours)
    {
        return Err(BackupError::Newer {
            backup_version: manifest.cairn_version.clone(),
            backup_schema: manifest.schema_version,
            ours: ours.to_owned(),
            our_schema: SqliteStore::SCHEMA_VERSION,
        }
        .into());
    }
    let root = data.root();
    if let Some(target) = read_installation_id(root)?
        && target != manifest.installation
    {
        return Err(BackupError::OtherInstallation {
            backup: manifest.installation.clone(),
            target,
            dir: root.to_owned(),
        }
        .into());
    }
    let mut moved_aside = None;
    if !is_empty_dir(root)? {
        let lock_path = root.join(LIVE_LOCK);
        if lock_path.is_file() && take_live_lock(data)?.is_none() {
            return Err(BackupError::Live {
                dir: root.to_owned(),
                lock: lock_path,
            }
            .into());
        }
        let now = crate::host::now_ms();
        let name = root
            .file_name()
            .map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
        let aside = root.with_file_name(format!("{name}.before-restore-{now}"));
        if !force {
            return Err(BackupError::TargetNotEmpty {
                dir: root.to_owned(),
                aside,
            }
            .into());
        }
        make_dir(&aside)?;
        for entry in std::fs::read_dir(root).map_err(io("read", root))? {
            let entry = entry.map_err(io("read", root))?;
            let to = aside.join(entry.file_name());
            std::fs::rename(entry.path(), &to).map_err(io("move aside", &entry.path()))?;
        }
        moved_aside = Some(aside);
    }
    make_dir(root)?;
    // The log's checkpoint last: until it is in place the directory holds no log
    // a reader would believe.
    let mut files: Vec<&FileEntry> = manifest.files.iter().collect();
    files.sort_by_key(|f| f.path == "log/checkpoint");
    for f in files {
        let (size, sha256) = copy_file(&from.join(&f.path), &root.join(&f.path), f.mode)?;
        if size != f.size || sha256 != f.sha256 {
            return Err(BackupError::Damaged {
                path: f.path.clone(),
                why: "changed while it was restored".into(),
            }
            .into());
        }
    }
    // Verify: the whole log against its checkpoint, then the store against the log.
    let log_size = match crate::pairing::read_log(data)? {
        Some(log) => {
            let dir = crate::audit::log_dir(data);
            let report = cairn_tlog_fs::verify(&dir, crate::audit::ORIGIN, &[log.verifier()])
                .map_err(|source| EngineError::AuditLog {
                    dir: dir.clone(),
                    source,
                })?;
            if let Some(problem) = report.problems.first() {
                return Err(BackupError::Damaged {
                    path: "log".into(),
                    why: format!("does not verify after the restore: {problem}"),
                }
                .into());
            }
            log.size()
        }
        None => 0,
    };
    let (store, pairing) = crate::pairing::open_store(data)?;
    drop(store);
    Ok(Restored {
        manifest,
        moved_aside,
        log_size,
        pairing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest names files inside the backup only: no absolute path, no
    /// `..`, no `.` or empty parts; digests are 64 hex digits; modes lose
    /// setuid, setgid and sticky bits.
    #[test]
    fn manifests_name_plain_relative_paths_and_real_digests() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "log/../../x",
            "./log",
            "a//b",
            "a\\b",
        ] {
            assert!(check_relative(bad).is_err(), "{bad:?}");
        }
        for good in ["cairn.db", "log/checkpoint", "oci/blobs/sha256/ab"] {
            assert!(check_relative(good).is_ok(), "{good:?}");
        }
        let file = |path: &str, sha: &str| {
            json!({"format": 1, "installation": "i", "cairnVersion": "0.1.0", "schemaVersion": 9,
                   "logSize": 0, "files": [{"path": path, "size": 1, "sha256": sha, "mode": 0o4755}]})
        };
        let sha = "ab".repeat(32);
        let m = Manifest::from_json(&file("keys/log.key", &sha)).expect("valid");
        assert_eq!(m.files[0].mode, 0o755);
        assert!(Manifest::from_json(&file("../keys", &sha)).is_err());
        assert!(Manifest::from_json(&file("k", "abc")).is_err());
        let mut newer = file("k", &sha);
        newer["format"] = json!(FORMAT + 1);
        assert!(Manifest::from_json(&newer).is_err());
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(version_key("0.10.0") > version_key("0.9.9"));
        assert!(version_key("1.0.0-rc.1") > version_key("0.99.0"));
        assert_eq!(version_key("0.1.0"), version_key("0.1.0"));
    }
}
