//! The sandbox's `/etc`: a curated copy of a few host files, kept in one directory and
//! bound read-only with a single mount (one bind per file cost ~2.5 ms a start when
//! bubblewrap set up every sandbox). The copy is remade when the host entries change.
//!
//! As root, a copy is shared by every cairn process on the host (making one was
//! half of a fresh process's first step): it lives in a root-only directory
//! ([`SHARED_DIR`] under the copies' home), named after the fingerprint of the host
//! entries, the list of entries and the ten-minute period it was made in, so a
//! changed host `/etc` or an older copy is never reused. It is made privately and
//! then renamed into place (never seen half made), used only while it and its
//! directory are real directories of root's that nobody else may write, and held
//! with a shared `flock` while a process uses it; a copy nobody holds that is not
//! the current one is removed (under an exclusive lock, after which a user checks
//! that what it locked is still what the name points at). The sandbox binds it
//! read-only and runs as the unprivileged sandbox user, so no step can change
//! what another step sees.
//!
//! Only what name resolution, the dynamic linker, TLS and time zones need is copied;
//! never `shadow`, `gshadow`, `ssh/`, `ssl/private/`, `sudoers`, or anything else with
//! credentials, and no file the sandbox user could not read on the host anyway.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::SandboxError;
use crate::spawn::is_root;

/// Host entries copied into the sandbox's `/etc`, relative to `/etc`. Missing ones are
/// skipped.
const ALLOWED: &[&str] = &[
    "passwd",
    "group",
    "hosts",
    "host.conf",
    "nsswitch.conf",
    "gai.conf",
    "protocols",
    "services",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "pki/tls/certs",
    "pki/ca-trust/extracted",
    "localtime",
    "timezone",
    "os-release",
    "debian_version",
    "mime.types",
];

/// Present (empty) in every copy, so that the host's can be bound over it when the
/// spec allows network access (the copy is read-only inside, so the mount point has
/// to exist already).
pub(crate) const RESOLV_CONF: &str = "resolv.conf";

/// A copy is remade at least this often, to pick up changes inside copied
/// directories that do not touch the fingerprinted entries themselves.
const MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// How deep copied directories may nest.
const MAX_DEPTH: usize = 8;

/// One copy of the curated `/etc`; removed from disk when the last run using it ends.
#[derive(Debug)]
pub(crate) struct EtcCopy {
    /// Holds `dir` and the user-mode network's `resolv.conf`.
    top: PathBuf,
    /// The directory bound at `/etc`.
    dir: PathBuf,
    made: Instant,
    fingerprint: Vec<Option<Stamp>>,
    /// A copy shared between cairn processes: this process's shared `flock` on it
    /// (released on drop; the copy stays for others).
    shared: Option<OwnedFd>,
}

impl EtcCopy {
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// The `resolv.conf` of a sandbox with a user-mode network ([`crate::usernet`]):
    /// its DNS forwarder only, bound over the copy's empty one.
    pub(crate) fn usernet_resolv_conf(&self) -> PathBuf {
        self.top.join(USERNET_RESOLV_CONF)
    }
}

impl Drop for EtcCopy {
    fn drop(&mut self) {
        if self.shared.is_none() {
            let _ = fs::remove_dir_all(&self.top);
        }
    }
}

/// Beside (not in) the copy, so that sandboxes without network never see it.
const USERNET_RESOLV_CONF: &str = "usernet-resolv.conf";

/// What identifies a version of a host entry, without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn fingerprint() -> Vec<Option<Stamp>> {
    ALLOWED
        .iter()
        .map(|entry| {
            let meta = fs::symlink_metadata(Path::new("/etc").join(entry)).ok()?;
            Some(Stamp {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.size(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                ctime: (meta.ctime(), meta.ctime_nsec()),
            })
        })
        .collect()
}

static CURRENT: Mutex<Option<Arc<EtcCopy>>> = Mutex::new(None);

/// The current copy, remade first if the host changed (a few `lstat`s per call).
/// `extra_mount_points` are paths under `/etc` that must exist in it (mount points
/// of [`crate::SandboxSpec::read_only_binds`]), with whether each is a directory.
pub(crate) fn current(extra_mount_points: &[(&Path, bool)]) -> Result<Arc<EtcCopy>, SandboxError> {
    let stamp = fingerprint();
    let mut current = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
    let fresh = current.as_ref().is_some_and(|copy| {
        copy.fingerprint == stamp && copy.made.elapsed() < MAX_AGE && copy.dir.is_dir()
    });
    if !fresh {
        // Dropping the old one first releases this process's hold on it.
        *current = None;
        let shared = if is_root() { shared(&stamp) } else { None };
        *current = Some(Arc::new(match shared {
            Some(copy) => copy,
            None => make(stamp)?,
        }));
    }
    let copy = current
        .as_ref()
        .map(Arc::clone)
        .ok_or_else(|| etc_error("keep", Path::new("/etc"), io::Error::other("no copy")))?;
    for (path, is_dir) in extra_mount_points {
        ensure_mount_point(&copy.dir, path, *is_dir)?;
    }
    Ok(copy)
}

fn etc_error(action: &'static str, path: &Path, source: io::Error) -> SandboxError {
    SandboxError::Etc {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Where copies live: the first of `/run/cairn-sandbox` (root only), `/dev/shm` and
/// the temp dir that is a tmpfs (making a copy on a disk file system took 0.4 s here,
/// on a tmpfs a few ms), else the first usable one. Copies are created fresh under a
/// unique name, so a shared sticky directory is fine as their parent.
fn home() -> PathBuf {
    let mut candidates = Vec::with_capacity(3);
    if is_root() {
        let run = Path::new("/run/cairn-sandbox");
        let _ = fs::DirBuilder::new().mode(0o755).create(run);
        candidates.push(run.to_owned());
    }
    candidates.push(PathBuf::from("/dev/shm"));
    candidates.push(std::env::temp_dir());
    let usable: Vec<&PathBuf> = candidates.iter().filter(|dir| dir.is_dir()).collect();
    usable
        .iter()
        .find(|dir| is_tmpfs(dir))
        .or(usable.first())
        .map_or_else(std::env::temp_dir, |dir| (*dir).clone())
}

fn is_tmpfs(dir: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs(2) with a C string into a zeroed struct.
    let (rc, kind) = unsafe {
        let mut fs: libc::statfs = std::mem::zeroed();
        (libc::statfs(path.as_ptr(), &mut fs), fs.f_type)
    };
    // The field's and the constant's integer types differ between C libraries.
    #[allow(clippy::unnecessary_cast)]
    let tmpfs = kind as i64 == libc::TMPFS_MAGIC as i64;
    rc == 0 && tmpfs
}

fn make(fingerprint: Vec<Option<Stamp>>) -> Result<EtcCopy, SandboxError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let home = home();
    sweep_stale(&home);
    // Root names its copies after its owner token (see `crate::owner`), which a
    // recycled pid cannot impersonate; unprivileged, after its pid.
    let me = if is_root() {
        crate::owner::current()?.token().to_owned()
    } else {
        std::process::id().to_string()
    };
    let top = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let top = home.join(format!("{PREFIX}{me}-{n}"));
        // A fresh directory of ours (never one somebody else prepared).
        match fs::DirBuilder::new().mode(0o755).create(&top) {
            Ok(()) => break top,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => continue,
            Err(e) => return Err(etc_error("create", &top, e)),
        }
    };
    let copy = EtcCopy {
        dir: top.join("etc"),
        top,
        made: Instant::now(),
        fingerprint,
        shared: None,
    };
    // The umask must not narrow what the sandbox user may read.
    fs::set_permissions(&copy.top, fs::Permissions::from_mode(0o755))
        .map_err(|e| etc_error("set permissions of", &copy.top, e))?;
    make_dirs(&copy.top, &copy.dir)?;
    let usernet = copy.usernet_resolv_conf();
    write_file(&usernet, crate::usernet::resolv_conf_text().as_bytes())
        .map_err(|e| etc_error("create", &usernet, e))?;
    for entry in ALLOWED {
        let from = Path::new("/etc").join(entry);
        let to = copy.dir.join(entry);
        if let Some(parent) = to.parent() {
            make_dirs(&copy.dir, parent)?;
        }
        copy_entry(&from, &to, 0)?;
    }
    let resolv = copy.dir.join(RESOLV_CONF);
    write_file(&resolv, &[]).map_err(|e| etc_error("create", &resolv, e))?;
    Ok(copy)
}

/// Name prefix of the copies.
const PREFIX: &str = "cairn-etc-";

/// The directory (under the copies' home, root only) of the copies shared by cairn
/// processes.
pub(crate) const SHARED_DIR: &str = "cairn-etc-shared";

/// The shared copy for the host entries `fingerprint` describes: the one another
/// process made, or one made now and published. `None` when sharing is not safe
/// here (the shared directory is not root's alone) or did not work; the caller
/// then makes a private copy.
fn shared(fingerprint: &[Option<Stamp>]) -> Option<EtcCopy> {
    shared_in(&home().join(SHARED_DIR), fingerprint)
}

fn shared_in(pool: &Path, fingerprint: &[Option<Stamp>]) -> Option<EtcCopy> {
    let _ = fs::DirBuilder::new().mode(0o755).create(pool);
    if !root_only(&fs::symlink_metadata(pool).ok()?) {
        return None;
    }
    let period = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs()
        / MAX_AGE.as_secs();
    let name = format!("{}-{period}", shared_key(fingerprint));
    let top = pool.join(&name);
    for _ in 0..3 {
        if let Some(copy) = open_shared(&top, fingerprint) {
            sweep_shared(pool, &name);
            return Some(copy);
        }
        // Made privately, then published whole; if another process published
        // first, the rename fails (its copy is not empty) and ours is removed.
        let private = make(fingerprint.to_vec()).ok()?;
        let _ = fs::rename(&private.top, &top);
    }
    None
}

/// What names a shared copy: the host entries' fingerprint, the list of entries
/// copied and what the copy holds besides them (a different cairn may copy
/// different entries).
fn shared_key(fingerprint: &[Option<Stamp>]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    "cairn-etc-v1".hash(&mut hasher);
    ALLOWED.hash(&mut hasher);
    crate::usernet::resolv_conf_text().hash(&mut hasher);
    RESOLV_CONF.hash(&mut hasher);
    fingerprint.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A real directory of root's that nobody else may write.
fn root_only(meta: &fs::Metadata) -> bool {
    meta.file_type().is_dir() && meta.uid() == 0 && meta.mode() & 0o022 == 0
}

fn open_dir(path: &Path) -> Option<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: open(2) of a NUL-terminated path; the fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a new fd the kernel just returned, or -1.
    (fd >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

fn flock(fd: &OwnedFd, operation: libc::c_int) -> bool {
    loop {
        // SAFETY: flock(2) on an fd we own.
        if unsafe { libc::flock(fd.as_raw_fd(), operation) } == 0 {
            return true;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// The published shared copy at `top`, held (shared lock) and checked: a root-only
/// directory, still the one the name points at once locked, with its `etc`.
fn open_shared(top: &Path, fingerprint: &[Option<Stamp>]) -> Option<EtcCopy> {
    let fd = open_dir(top)?;
    let held = fs::File::from(fd.try_clone().ok()?).metadata().ok()?;
    if !root_only(&held) || !flock(&fd, libc::LOCK_SH) {
        return None;
    }
    let named = fs::symlink_metadata(top).ok()?;
    let dir = top.join("etc");
    let same = named.dev() == held.dev() && named.ino() == held.ino();
    if !same || !fs::symlink_metadata(&dir).is_ok_and(|m| root_only(&m)) {
        return None;
    }
    Some(EtcCopy {
        top: top.to_owned(),
        dir,
        made: Instant::now(),
        fingerprint: fingerprint.to_vec(),
        shared: Some(fd),
    })
}

/// Removes the shared copies other than `keep` that no process holds.
fn sweep_shared(pool: &Path, keep: &str) {
    let Ok(entries) = fs::read_dir(pool) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name() == keep {
            continue;
        }
        let path = entry.path();
        let Some(fd) = open_dir(&path) else {
            continue;
        };
        // Held while removing: a process that opened it meanwhile finds, once it
        // has its lock, that the name no longer points at what it locked.
        if flock(&fd, libc::LOCK_EX | libc::LOCK_NB) {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Removes copies left by cairn processes that no longer exist (owner token gone, or
/// pid gone), if they are this user's.
fn sweep_stale(home: &Path) {
    let mut stale = crate::leftovers::dead_process_entries(home, PREFIX);
    if let Ok(entries) = fs::read_dir(home) {
        stale.extend(entries.flatten().filter(|entry| {
            let name = entry.file_name();
            let owner = name
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|n| n.split('-').next());
            owner
                .is_some_and(|o| crate::owner::is_id(o) && crate::owner::is_alive(o) == Some(false))
        }));
    }
    for entry in stale {
        let owned = fs::symlink_metadata(entry.path())
            .is_ok_and(|m| m.is_dir() && m.uid() == current_uid());
        if owned {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn current_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() }
}

/// `mkdir -p` below `root`, 0755, refusing to pass through anything but directories.
fn make_dirs(root: &Path, dir: &Path) -> Result<(), SandboxError> {
    let relative = dir.strip_prefix(root).unwrap_or(dir);
    let mut at = root.to_owned();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        at.push(name);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(etc_error(
                    "create a directory at",
                    &at,
                    io::Error::from(io::ErrorKind::NotADirectory),
                ));
            }
            Err(_) => fs::DirBuilder::new()
                .mode(0o755)
                .create(&at)
                .and_then(|()| fs::set_permissions(&at, fs::Permissions::from_mode(0o755)))
                .map_err(|e| etc_error("create", &at, e))?,
        }
    }
    Ok(())
}

fn write_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(contents)?;
    file.set_permissions(fs::Permissions::from_mode(0o644))
}

/// Copies one host entry: symlinks as symlinks (they resolve inside the sandbox),
/// world-readable files, directories recursively; anything else is skipped.
fn copy_entry(from: &Path, to: &Path, depth: usize) -> Result<(), SandboxError> {
    let Ok(meta) = fs::symlink_metadata(from) else {
        return Ok(());
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(from).map_err(|e| etc_error("read", from, e))?;
        std::os::unix::fs::symlink(&target, to).map_err(|e| etc_error("create", to, e))
    } else if kind.is_file() {
        if meta.mode() & 0o004 == 0 {
            return Ok(());
        }
        let contents = fs::read(from).map_err(|e| etc_error("read", from, e))?;
        write_file(to, &contents).map_err(|e| etc_error("write", to, e))
    } else if kind.is_dir() {
        if depth >= MAX_DEPTH || meta.mode() & 0o005 != 0o005 {
            return Ok(());
        }
        fs::DirBuilder::new()
            .mode(0o755)
            .create(to)
            .and_then(|()| fs::set_permissions(to, fs::Permissions::from_mode(0o755)))
            .map_err(|e| etc_error("create", to, e))?;
        let entries = fs::read_dir(from).map_err(|e| etc_error("read", from, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| etc_error("read", from, e))?;
            copy_entry(&entry.path(), &to.join(entry.file_name()), depth + 1)?;
        }
        Ok(())
    } else {
        Ok(())
    }
}

/// Makes sure `path` (absolute, under `/etc`) exists in the copy, as an empty
/// directory or file, without following any symlink of the copy.
fn ensure_mount_point(copy: &Path, path: &Path, is_dir: bool) -> Result<(), SandboxError> {
    let Ok(relative) = path.strip_prefix("/etc") else {
        return Ok(());
    };
    let target = copy.join(relative);
    if let Some(parent) = target.parent() {
        make_dirs(copy, parent)?;
    }
    match fs::symlink_metadata(&target) {
        Ok(meta) if meta.is_dir() == is_dir && !meta.file_type().is_symlink() => Ok(()),
        Ok(_) => Err(etc_error(
            "mount over",
            path,
            io::Error::from(io::ErrorKind::AlreadyExists),
        )),
        Err(_) => {
            let made = if is_dir {
                fs::DirBuilder::new().mode(0o755).create(&target)
            } else {
                write_file(&target, &[])
            };
            match made {
                Ok(()) => Ok(()),
                // Another process sharing the copy made it first: fine if it is
                // what is needed (checked again, never through a symlink).
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    match fs::symlink_metadata(&target) {
                        Ok(meta) if meta.is_dir() == is_dir && !meta.file_type().is_symlink() => {
                            Ok(())
                        }
                        _ => Err(etc_error("create", &target, e)),
                    }
                }
                Err(e) => Err(etc_error("create", &target, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn copies_the_allowed_entries_only() {
        let copy = current(&[]).unwrap();
        let dir = copy.path();
        assert!(dir.join("passwd").is_file());
        assert!(dir.join(RESOLV_CONF).is_file());
        assert_eq!(fs::read(dir.join(RESOLV_CONF)).unwrap(), b"");
        for secret in ["shadow", "gshadow", "ssh", "ssl/private", "sudoers"] {
            assert!(!dir.join(secret).exists(), "{secret}");
        }
        let mode = fs::metadata(dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o755);
        // Unchanged host: the same copy is reused.
        let again = current(&[]).unwrap();
        assert!(Arc::ptr_eq(&copy, &again));
    }

    #[test]
    fn copies_of_gone_owners_are_swept_and_live_ones_kept() {
        assert!(is_root(), "the tests run as root");
        let home = home();
        let own = crate::owner::current().unwrap().token().to_owned();
        let gone = crate::owner::random_id().unwrap();
        let dead = home.join(format!("{PREFIX}{gone}-0"));
        let live = home.join(format!("{PREFIX}{own}-999999"));
        for dir in [&dead, &live] {
            fs::create_dir_all(dir.join("etc")).unwrap();
        }
        sweep_stale(&home);
        assert!(!dead.exists(), "a gone owner's copy is swept");
        assert!(live.exists(), "a live owner's copy is kept");
        fs::remove_dir_all(&live).unwrap();
    }

    /// A copy made by one cairn process is used by the next (here: a second
    /// lookup with nothing cached) instead of being made again; one nobody holds
    /// that is not current is removed, a held one kept; and a shared directory
    /// others may write is never used.
    #[test]
    fn a_shared_copy_is_reused_and_swept_only_unheld() {
        assert!(is_root(), "the tests run as root");
        let base = tempfile::tempdir_in(home()).unwrap();
        let pool = base.path().join(SHARED_DIR);
        let stamp = fingerprint();
        let first = shared_in(&pool, &stamp).unwrap();
        let again = shared_in(&pool, &stamp).unwrap();
        assert_eq!(first.path(), again.path());
        assert!(first.path().join("passwd").is_file());
        let made = fs::symlink_metadata(first.path()).unwrap().ino();
        assert_eq!(fs::symlink_metadata(again.path()).unwrap().ino(), made);
        // Another host /etc: its own copy; the first one is held, so kept.
        let mut other = stamp.clone();
        other[0] = None;
        let changed = shared_in(&pool, &other).unwrap();
        assert_ne!(changed.path(), first.path());
        assert!(first.path().is_dir(), "a held copy is never removed");
        // Released by both holders: the next lookup of another copy sweeps it.
        let (gone, top) = (first.path().to_owned(), first.top.clone());
        drop(first);
        drop(again);
        assert!(gone.is_dir(), "a shared copy outlives its holders");
        drop(changed);
        let _current = shared_in(&pool, &other).unwrap();
        assert!(
            !top.exists(),
            "an unheld copy that is not current is removed"
        );
        // A shared directory others may write is not trusted.
        fs::set_permissions(&pool, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(shared_in(&pool, &stamp).is_none());
    }

    #[test]
    fn mount_points_never_follow_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("alternatives")).unwrap();
        let err = ensure_mount_point(root.path(), Path::new("/etc/alternatives/x"), true);
        assert!(err.is_err());
        assert!(!outside.path().join("x").exists());
        ensure_mount_point(root.path(), Path::new("/etc/java/conf"), true).unwrap();
        assert!(root.path().join("java/conf").is_dir());
        ensure_mount_point(root.path(), Path::new("/etc/tool.conf"), false).unwrap();
        assert!(root.path().join("tool.conf").is_file());
    }
}
