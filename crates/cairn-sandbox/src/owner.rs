//! Names that cannot collide, and owners that can be told dead: every cgroup cairn
//! makes is named with random 128-bit ids ([`random_id`]), never a pid, and carries the
//! token of the cairn process that made it ([`current`]). A process registers its token
//! as a file under [`OWNERS_DIR`] that it holds locked (`flock`) for as long as it
//! lives: the kernel drops the lock when the process dies, so "the file is missing or
//! can be locked" means "the owner is gone", and no recycled pid can say otherwise.

use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::SandboxError;

/// Where owners register (root only: cgroups are made only when cairn runs as root).
pub(crate) const OWNERS_DIR: &str = "/run/cairn-sandbox/owners";

/// Hex digits of a token or id (128 bits).
pub(crate) const ID_HEX: usize = 32;

/// This process's registration: its token and the locked file that proves it alive.
#[derive(Debug)]
pub(crate) struct Owner {
    token: String,
    /// Held (locked) until the process ends.
    _lock: File,
}

impl Owner {
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

/// A fresh random 128-bit id in lowercase hex, from getrandom(2).
pub(crate) fn random_id() -> Result<String, SandboxError> {
    let mut bytes = [0u8; ID_HEX / 2];
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = &mut bytes[filled..];
        // SAFETY: getrandom(2) writes at most `rest.len()` bytes into `rest`.
        let got = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(got) {
            Ok(n) => filled += n,
            Err(_) if io::Error::last_os_error().kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                return Err(SandboxError::Io {
                    action: "draw a random id",
                    source: io::Error::last_os_error(),
                });
            }
        }
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `text` is a token or id as [`random_id`] makes them.
pub(crate) fn is_id(text: &str) -> bool {
    text.len() == ID_HEX
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// This process's owner registration, made on first use.
pub(crate) fn current() -> Result<&'static Owner, SandboxError> {
    static OWNER: OnceLock<Owner> = OnceLock::new();
    if let Some(owner) = OWNER.get() {
        return Ok(owner);
    }
    let registered = register(Path::new(OWNERS_DIR))?;
    // A thread that lost the race drops its registration: its file, unlocked, is swept
    // as a gone owner's.
    Ok(OWNER.get_or_init(|| registered))
}

fn register(dir: &Path) -> Result<Owner, SandboxError> {
    let fail = |action: &'static str, path: &Path, source: io::Error| SandboxError::Limit {
        limit: "memory and process",
        action,
        path: path.to_owned(),
        source,
    };
    make_private_dir(dir).map_err(|e| fail("create", dir, e))?;
    for _ in 0..8 {
        let token = random_id()?;
        let path = dir.join(&token);
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| fail("register cairn's process in", &path, e))?;
        // SAFETY: flock(2) on a descriptor we own.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        // A sweeper may have taken it for a dead owner's between the two steps and
        // removed it: then it proves nothing, draw another.
        let linked = file.metadata().is_ok_and(|m| m.nlink() > 0);
        if locked && linked {
            return Ok(Owner { token, _lock: file });
        }
    }
    Err(fail(
        "register cairn's process in",
        dir,
        io::Error::other("the registration kept being taken away"),
    ))
}

/// `dir` (and its parent) as root-only directories; refuses a symlink or a directory
/// somebody else owns.
fn make_private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        let _ = fs::DirBuilder::new().mode(0o755).create(parent);
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(dir)?;
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(io::Error::other(
            "is not a directory that only cairn's user may write",
        ));
    }
    Ok(())
}

/// Whether the process that registered `token` still lives. `None`: cannot tell (a
/// malformed token, an unreadable registration), so treat it as alive.
pub(crate) fn is_alive(token: &str) -> Option<bool> {
    is_alive_in(Path::new(OWNERS_DIR), token)
}

fn is_alive_in(dir: &Path, token: &str) -> Option<bool> {
    if !is_id(token) {
        return None;
    }
    let path = dir.join(token);
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Some(false),
        Err(_) => return None,
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    // SAFETY: flock(2) on a descriptor we own; released when `file` closes.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if rc == 0 {
        return Some(false);
    }
    (io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)).then_some(true)
}

/// Removes the registrations of owners that are gone; returns them.
pub(crate) fn sweep_gone() -> Vec<PathBuf> {
    let dir = Path::new(OWNERS_DIR);
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(token) = name.to_str() else { continue };
        if is_alive_in(dir, token) == Some(false) && fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_random_hex() {
        let (a, b) = (random_id().unwrap(), random_id().unwrap());
        assert!(is_id(&a) && is_id(&b), "{a} {b}");
        assert_ne!(a, b);
        for bad in ["", "../../etc/passwd", &a.to_uppercase(), &a[1..], "4242"] {
            assert!(!is_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_registered_owner_is_alive_until_its_lock_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let owners = dir.path().join("owners");
        let owner = register(&owners).unwrap();
        assert_eq!(is_alive_in(&owners, owner.token()), Some(true));
        let token = owner.token().to_owned();
        drop(owner);
        // The file is still there, but nobody holds it.
        assert!(owners.join(&token).exists());
        assert_eq!(is_alive_in(&owners, &token), Some(false));
        assert_eq!(is_alive_in(&owners, &random_id().unwrap()), Some(false));
        assert_eq!(is_alive_in(&owners, "../owners"), None);
    }
}
