//! Handing a workspace to the sandbox user: a recursive `chown` that never follows a
//! symlink, walking by directory descriptors so that nothing in the tree can redirect
//! it (a previous step may have left symlinks to `/etc/shadow` behind).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::SandboxError;
use crate::spawn::{SANDBOX_GID, SANDBOX_UID, is_root};

/// Deeper trees are refused rather than walked with ever more open descriptors.
const MAX_DEPTH: usize = 256;

/// Makes `path` (an existing directory, not a symlink) writable for the sandbox.
///
/// As root, everything in it, the directory included, is handed to the sandbox user
/// ([`crate::SANDBOX_UID`]); symlinks themselves are re-owned, never their targets.
/// A file with other hard links is refused rather than re-owned (its other names may
/// be outside the workspace). Call it again whenever the host has added files.
/// Unprivileged, the sandbox runs as the caller, so only the type is checked.
pub fn prepare_workspace(path: &Path) -> Result<(), SandboxError> {
    let fail = |action: &'static str, source: io::Error| SandboxError::Workspace {
        path: path.to_owned(),
        action,
        source,
    };
    if !path.is_absolute() {
        return Err(fail(
            "use a relative path",
            io::Error::from(io::ErrorKind::InvalidInput),
        ));
    }
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| fail("use the path", io::Error::from(io::ErrorKind::InvalidInput)))?;
    let root = open_dir(libc::AT_FDCWD, &c_path).map_err(|e| fail("open the directory", e))?;
    if !is_root() {
        return Ok(());
    }
    chown_tree(root).map_err(|error| match error {
        TreeError::Io(inside, source) => SandboxError::Workspace {
            path: path.join(inside),
            action: "hand it to the sandbox user",
            source,
        },
        TreeError::HardLinked(inside) => SandboxError::Workspace {
            path: path.join(inside),
            action: "hand over a file with hard links elsewhere (copy it instead, e.g. \
                     `git clone --no-hardlinks`)",
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        },
    })
}

fn open_dir(parent: libc::c_int, name: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: openat(2) with a valid directory fd (or AT_FDCWD) and a C string.
    let fd = unsafe { libc::openat(parent, name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A directory stream over a duplicate of a directory fd.
struct Dir(*mut libc::DIR);

impl Dir {
    fn open(dir: &OwnedFd) -> io::Result<Dir> {
        let dup = dir.try_clone()?;
        // SAFETY: fdopendir(3) takes ownership of the duplicate on success.
        let stream = unsafe { libc::fdopendir(dup.as_raw_fd()) };
        if stream.is_null() {
            return Err(io::Error::last_os_error());
        }
        std::mem::forget(dup);
        Ok(Dir(stream))
    }

    /// The next entry's name, `.` and `..` skipped.
    fn next(&mut self) -> io::Result<Option<CString>> {
        loop {
            // SAFETY: readdir(3) on our open stream; errno distinguishes end from error.
            let entry = unsafe {
                *libc::__errno_location() = 0;
                libc::readdir(self.0)
            };
            if entry.is_null() {
                let errno = io::Error::last_os_error();
                return match errno.raw_os_error() {
                    Some(0) | None => Ok(None),
                    Some(_) => Err(errno),
                };
            }
            // SAFETY: a non-null dirent from readdir is valid until the next call.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            return Ok(Some(name.to_owned()));
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: closes the stream (and its fd) we opened.
        unsafe { libc::closedir(self.0) };
    }
}

fn chown_at(parent: &OwnedFd, name: &CStr) -> io::Result<()> {
    // SAFETY: fchownat(2) relative to an open directory, never following a symlink.
    check(unsafe {
        libc::fchownat(
            parent.as_raw_fd(),
            name.as_ptr(),
            SANDBOX_UID,
            SANDBOX_GID,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

fn stat_at(parent: &OwnedFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: fstatat(2) into a zeroed struct, not following symlinks.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        check(libc::fstatat(
            parent.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        ))?;
        Ok(st)
    }
}

/// Why a tree could not be handed over, and where (relative to the workspace).
enum TreeError {
    Io(PathBuf, io::Error),
    /// A file not yet the sandbox user's with other hard links: they may live outside
    /// the workspace (a `git clone` from a local path, a pnpm store), and re-owning
    /// it would hand those to the sandbox too.
    HardLinked(PathBuf),
}

fn chown_tree(root: OwnedFd) -> Result<(), TreeError> {
    let here = |names: &[CString], name: Option<&CStr>| -> PathBuf {
        let mut path = PathBuf::new();
        for part in names.iter().map(CString::as_c_str).chain(name) {
            path.push(std::ffi::OsStr::from_bytes(part.to_bytes()));
        }
        path
    };
    // SAFETY: fchown(2) on the directory fd we hold.
    check(unsafe { libc::fchown(root.as_raw_fd(), SANDBOX_UID, SANDBOX_GID) })
        .map_err(|e| TreeError::Io(PathBuf::new(), e))?;
    let stream = Dir::open(&root).map_err(|e| TreeError::Io(PathBuf::new(), e))?;
    let mut stack: Vec<(OwnedFd, Dir)> = vec![(root, stream)];
    // The names of the directories on the stack below the root, for error messages.
    let mut names: Vec<CString> = Vec::new();
    loop {
        let depth = stack.len();
        let Some((dir, stream)) = stack.last_mut() else {
            break;
        };
        let next = stream
            .next()
            .map_err(|e| TreeError::Io(here(&names, None), e))?;
        let Some(name) = next else {
            stack.pop();
            names.pop();
            continue;
        };
        let fail = |e| TreeError::Io(here(&names, Some(&name)), e);
        let st = stat_at(dir, &name).map_err(fail)?;
        let kind = st.st_mode & libc::S_IFMT;
        if st.st_uid != SANDBOX_UID || st.st_gid != SANDBOX_GID {
            if kind == libc::S_IFREG && st.st_nlink > 1 {
                return Err(TreeError::HardLinked(here(&names, Some(&name))));
            }
            chown_at(dir, &name).map_err(fail)?;
        }
        if kind == libc::S_IFDIR {
            if depth >= MAX_DEPTH {
                return Err(fail(io::Error::other("nested too deeply")));
            }
            // O_NOFOLLOW: if it was swapped for a symlink since the stat, this fails.
            let child = open_dir(dir.as_raw_fd(), &name).map_err(fail)?;
            let stream = Dir::open(&child).map_err(fail)?;
            stack.push((child, stream));
            names.push(name);
        }
    }
    Ok(())
}
