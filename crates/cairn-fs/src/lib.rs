//! Reading untrusted trees from the host — a workspace a build step wrote, an
//! image's unpacked root filesystem, an OCI layout someone handed in — without
//! ever following a symlink or opening a special file.
//!
//! Every path is resolved beneath a directory held open ([`Dir`]) with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`, or,
//! on a kernel without openat2, one component at a time with `O_NOFOLLOW` and an
//! `fstat` of each. A path is first opened `O_PATH` (which neither blocks nor has
//! side effects, whatever it names) and `fstat`ed; only a regular file or a
//! directory is then reopened for reading (through `/proc/self/fd`, so it is the
//! very inode that was checked, with `O_NONBLOCK | O_NOCTTY`). A FIFO, socket or
//! device is refused without ever being opened for reading, so nothing here can
//! block on it or trigger a driver. Reads of regular files are bounded in size by
//! the caller ([`File::read_bounded`]); walks by [`WalkLimits`].
//!
//! The one exception to "no symlinks" is [`Dir::open_in_root`]: symlinks are
//! resolved as if the directory were `/` (`RESOLVE_IN_ROOT`), so they can never
//! leave it; without openat2 it refuses symlinks instead.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

/// Why an untrusted path was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// A component of the path (or the path itself) is a symlink.
    #[error(
        "{}: `{}` is a symlink, and cairn never follows a symlink in a workspace or an image",
        path.display(),
        at.display()
    )]
    Symlink { path: PathBuf, at: PathBuf },
    /// A component on the way is not a directory.
    #[error("{}: `{}` is not a directory", path.display(), at.display())]
    NotADirectory { path: PathBuf, at: PathBuf },
    /// The path names a FIFO, socket or device: never opened.
    #[error(
        "{} is a {kind}, not a regular file or a directory; cairn does not open it",
        path.display()
    )]
    Special { path: PathBuf, kind: &'static str },
    /// The relative path would leave the directory (absolute, or `..`).
    #[error("{}: {reason}", path.display())]
    NotBeneath { path: PathBuf, reason: &'static str },
    /// A regular file larger than the caller allows.
    #[error("{} is {size} bytes, more than the limit of {max}", path.display())]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    /// A walk went past one of its limits.
    #[error("{}: more than {max} {what}", path.display())]
    Limit {
        path: PathBuf,
        what: &'static str,
        max: u64,
    },
    /// The path was a regular file where a directory was needed, or the reverse.
    #[error("{} is {found}, expected {expected}", path.display())]
    WrongKind {
        path: PathBuf,
        found: &'static str,
        expected: &'static str,
    },
    /// The operating system refused.
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl FsError {
    /// The path (or a component on the way) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FsError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FsError {
        let path = path.to_path_buf();
        move |source| FsError::Io {
            action,
            path,
            source,
        }
    }
}

/// What an entry is, as `lstat` sees it (a symlink is never followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Kind {
    fn from_mode(mode: libc::mode_t) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            _ => Kind::Unknown,
        }
    }

    /// "a regular file", "a fifo", …: for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "regular file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
            Kind::CharDevice => "character device",
            Kind::BlockDevice => "block device",
            Kind::Unknown => "special file",
        }
    }
}

/// What `fstat`/`lstat` said about an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub len: u64,
    pub dev: u64,
    pub ino: u64,
}

impl Meta {
    fn from_stat(st: &libc::stat) -> Meta {
        Meta {
            kind: Kind::from_mode(st.st_mode),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            len: u64::try_from(st.st_size).unwrap_or(0),
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    pub fn is_file(&self) -> bool {
        self.kind == Kind::File
    }

    pub fn is_symlink(&self) -> bool {
        self.kind == Kind::Symlink
    }
}

fn fstat(fd: BorrowedFd<'_>) -> io::Result<Meta> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat(2) on an open descriptor and a valid out pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Meta::from_stat(&st))
}

fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Meta> {
    // SAFETY: as in `fstat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstatat(2) with an open directory, a C string and a valid out pointer.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Meta::from_stat(&st))
}

fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("descriptor out of range"))?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: openat(2) with an open directory and a C string.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
        match owned(libc::c_long::from(fd)) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            other => return other,
        }
    }
}

/// openat2(2); `Ok(None)` when the kernel (or a seccomp filter) does not offer it.
fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    resolve: u64,
) -> io::Result<Option<OwnedFd>> {
    // SAFETY: an all-zero open_how is valid; the fields are set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = u64::try_from(flags | libc::O_CLOEXEC).unwrap_or(0);
    how.resolve = resolve;
    // openat2 may answer EAGAIN when a rename raced the resolution: retry a little.
    for _ in 0..64 {
        // SAFETY: openat2(2) with an open directory, a C string and a filled open_how
        // of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match owned(fd) {
            Ok(fd) => return Ok(Some(fd)),
            Err(e) => match e.raw_os_error() {
                Some(libc::ENOSYS) | Some(libc::EPERM) => {
                    OPENAT2.store(UNAVAILABLE, Ordering::Relaxed);
                    return Ok(None);
                }
                Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
                _ => return Err(e),
            },
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

const UNKNOWN: u8 = 0;
const UNAVAILABLE: u8 = 2;
/// Whether openat2 works here (learnt on first use).
static OPENAT2: AtomicU8 = AtomicU8::new(UNKNOWN);

/// How a path is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolve {
    /// No symlink anywhere, nothing outside.
    Beneath,
    /// Symlinks followed as if the directory were `/`.
    InRoot,
}

/// Splits `rel` into its normal components; `.` and empty ones dropped.
fn components(rel: &Path, shown: &Path, resolve: Resolve) -> Result<Vec<CString>, FsError> {
    let not_beneath = |reason| FsError::NotBeneath {
        path: shown.to_path_buf(),
        reason,
    };
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => out.push(
                CString::new(name.as_bytes()).map_err(|_| not_beneath("a NUL byte in the path"))?,
            ),
            Component::CurDir => {}
            Component::RootDir if resolve == Resolve::InRoot => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(not_beneath(
                    "an absolute path, where a relative one is needed",
                ));
            }
            Component::ParentDir => {
                return Err(not_beneath(
                    "`..` in the path, which cairn never resolves here",
                ));
            }
        }
    }
    Ok(out)
}

/// A directory held open: the root that untrusted paths are resolved beneath.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// A regular file or a directory, opened for reading.
#[derive(Debug)]
pub enum Node {
    File(File),
    Dir(Dir),
}

impl Node {
    pub fn meta(&self) -> io::Result<Meta> {
        match self {
            Node::File(f) => Ok(f.meta),
            Node::Dir(d) => d.meta(),
        }
    }
}

/// A regular file opened for reading (never a FIFO, socket or device).
#[derive(Debug)]
pub struct File {
    file: std::fs::File,
    path: PathBuf,
    meta: Meta,
}

impl File {
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file, refused past `max` bytes (checked before and while reading).
    pub fn read_bounded(mut self, max: u64) -> Result<Vec<u8>, FsError> {
        if self.meta.len > max {
            return Err(FsError::TooLarge {
                path: self.path,
                size: self.meta.len,
                max,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(self.meta.len).unwrap_or(0));
        (&mut self.file)
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(FsError::io("read", &self.path))?;
        if bytes.len() as u64 > max {
            return Err(FsError::TooLarge {
                path: self.path,
                size: bytes.len() as u64,
                max,
            });
        }
        Ok(bytes)
    }

    /// The file as a `std::fs::File` (to stream it; the caller bounds what it reads).
    pub fn into_std(self) -> std::fs::File {
        self.file
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

/// One entry of a directory: its name and what `lstat` says about it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: OsString,
    pub meta: Meta,
}

impl Dir {
    /// Opens the directory at `path`, a path the caller chose (a workspace cairn
    /// made, a directory the user named): it is taken as given. Everything below
    /// it is then resolved with [`Dir::open_beneath`].
    pub fn open(path: &Path) -> Result<Dir, FsError> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| FsError::NotBeneath {
            path: path.to_path_buf(),
            reason: "a NUL byte in the path",
        })?;
        // SAFETY: AT_FDCWD is always a valid directory argument.
        let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
        let fd = openat(cwd, &c, libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(FsError::io("open", path))?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Where the directory is (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> io::Result<Meta> {
        fstat(self.fd.as_fd())
    }

    /// Opens `rel` beneath this directory: no component may be a symlink (not
    /// even the last), `..` or absolute; the result must be a regular file or a
    /// directory. `""` or `"."` is this directory.
    pub fn open_beneath(&self, rel: impl AsRef<Path>) -> Result<Node, FsError> {
        self.open_as(
            rel.as_ref(),
            Resolve::Beneath,
            OPENAT2.load(Ordering::Relaxed) != UNAVAILABLE,
        )
    }

    /// Opens `rel` (absolute or not) as if this directory were `/`: symlinks in
    /// the tree are followed but can never lead out of it, nor through a magic
    /// link. Without openat2, symlinks are refused as by [`Dir::open_beneath`].
    pub fn open_in_root(&self, rel: impl AsRef<Path>) -> Result<Node, FsError> {
        self.open_as(
            rel.as_ref(),
            Resolve::InRoot,
            OPENAT2.load(Ordering::Relaxed) != UNAVAILABLE,
        )
    }

    /// [`Dir::open_beneath`], which must be a regular file.
    pub fn file_beneath(&self, rel: impl AsRef<Path>) -> Result<File, FsError> {
        match self.open_beneath(rel.as_ref())? {
            Node::File(f) => Ok(f),
            Node::Dir(d) => Err(FsError::WrongKind {
                path: d.path,
                found: "a directory",
                expected: "a regular file",
            }),
        }
    }

    /// [`Dir::open_beneath`], which must be a directory.
    pub fn dir_beneath(&self, rel: impl AsRef<Path>) -> Result<Dir, FsError> {
        match self.open_beneath(rel.as_ref())? {
            Node::Dir(d) => Ok(d),
            Node::File(f) => Err(FsError::WrongKind {
                path: f.path,
                found: "a regular file",
                expected: "a directory",
            }),
        }
    }

    /// What `rel` is, without following it if it is a symlink (its parents must
    /// not be symlinks).
    pub fn lstat_beneath(&self, rel: impl AsRef<Path>) -> Result<Meta, FsError> {
        let rel = rel.as_ref();
        let shown = self.path.join(rel);
        let mut parts = components(rel, &shown, Resolve::Beneath)?;
        let Some(last) = parts.pop() else {
            return self.meta().map_err(FsError::io("inspect", &shown));
        };
        let parent_rel: PathBuf = parts
            .iter()
            .map(|c| OsStr::from_bytes(c.as_bytes()))
            .collect();
        let parent = self.dir_beneath(&parent_rel)?;
        lstat_at(parent.fd.as_fd(), &last).map_err(FsError::io("inspect", &shown))
    }

    /// The target of the symlink `rel` (its parents must not be symlinks).
    pub fn read_link_beneath(&self, rel: impl AsRef<Path>) -> Result<PathBuf, FsError> {
        let rel = rel.as_ref();
        let shown = self.path.join(rel);
        let mut parts = components(rel, &shown, Resolve::Beneath)?;
        let last = parts.pop().ok_or_else(|| FsError::WrongKind {
            path: shown.clone(),
            found: "a directory",
            expected: "a symlink",
        })?;
        let parent_rel: PathBuf = parts
            .iter()
            .map(|c| OsStr::from_bytes(c.as_bytes()))
            .collect();
        let parent = self.dir_beneath(&parent_rel)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
        // SAFETY: readlinkat(2) with an open directory, a C string and a buffer of
        // the length passed.
        let n = unsafe {
            libc::readlinkat(
                parent.fd.as_raw_fd(),
                last.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let n = usize::try_from(n)
            .map_err(|_| FsError::io("read the symlink", &shown)(io::Error::last_os_error()))?;
        buf.truncate(n);
        Ok(PathBuf::from(OsString::from_vec(buf)))
    }

    /// The directory's entries (never `.` or `..`), sorted by name bytes, each as
    /// `lstat` sees it; more than `max` is an error.
    pub fn entries(&self, max: u64) -> Result<Vec<Entry>, FsError> {
        let names = list(self.fd.as_fd(), max, &self.path)?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let shown = self.path.join(OsStr::from_bytes(name.as_bytes()));
            let meta = match lstat_at(self.fd.as_fd(), &name) {
                Ok(meta) => meta,
                // Removed since it was listed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(FsError::io("inspect", &shown)(e)),
            };
            out.push(Entry {
                name: OsString::from_vec(name.into_bytes()),
                meta,
            });
        }
        out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(out)
    }

    fn open_as(&self, rel: &Path, resolve: Resolve, use_openat2: bool) -> Result<Node, FsError> {
        let shown = self.path.join(rel);
        let parts = components(rel, &shown, resolve)?;
        let path_fd = if parts.is_empty() {
            openat(self.fd.as_fd(), c".", libc::O_PATH).map_err(FsError::io("open", &shown))?
        } else {
            let joined = CString::new(
                parts
                    .iter()
                    .map(std::ffi::CString::as_bytes)
                    .collect::<Vec<_>>()
                    .join(&b'/'),
            )
            .map_err(|_| FsError::NotBeneath {
                path: shown.clone(),
                reason: "a NUL byte in the path",
            })?;
            let opened = if use_openat2 {
                let how = match resolve {
                    Resolve::Beneath => {
                        libc::RESOLVE_BENEATH
                            | libc::RESOLVE_NO_SYMLINKS
                            | libc::RESOLVE_NO_MAGICLINKS
                    }
                    Resolve::InRoot => libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
                };
                let flags = libc::O_PATH
                    | if resolve == Resolve::Beneath {
                        libc::O_NOFOLLOW
                    } else {
                        0
                    };
                match openat2(self.fd.as_fd(), &joined, flags, how) {
                    Ok(Some(fd)) => Ok(fd),
                    Ok(None) => return self.open_as(rel, resolve, false),
                    // Say which component is the symlink or not a directory.
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EXDEV)
                        ) && resolve == Resolve::Beneath =>
                    {
                        match self.walk_components(&parts, &shown) {
                            Err(precise) => return Err(precise),
                            Ok(_) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            } else {
                return self.open_node(self.walk_components(&parts, &shown)?, shown);
            };
            opened.map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => FsError::Symlink {
                    path: shown.clone(),
                    at: rel.to_path_buf(),
                },
                _ => FsError::io("open", &shown)(e),
            })?
        };
        self.open_node(path_fd, shown)
    }

    /// Resolves `parts` one component at a time: each opened `O_PATH | O_NOFOLLOW`
    /// and `fstat`ed, so a symlink or non-directory on the way is named.
    fn walk_components(&self, parts: &[CString], shown: &Path) -> Result<OwnedFd, FsError> {
        let mut at = PathBuf::new();
        let mut current: Option<OwnedFd> = None;
        for (i, part) in parts.iter().enumerate() {
            at.push(OsStr::from_bytes(part.as_bytes()));
            let dir = current.as_ref().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            let fd = openat(dir, part, libc::O_PATH | libc::O_NOFOLLOW)
                .map_err(FsError::io("open", shown))?;
            let meta = fstat(fd.as_fd()).map_err(FsError::io("inspect", shown))?;
            if meta.kind == Kind::Symlink {
                return Err(FsError::Symlink {
                    path: shown.to_path_buf(),
                    at,
                });
            }
            if i + 1 < parts.len() && meta.kind != Kind::Dir {
                return Err(FsError::NotADirectory {
                    path: shown.to_path_buf(),
                    at,
                });
            }
            current = Some(fd);
        }
        match current {
            Some(fd) => Ok(fd),
            None => openat(self.fd.as_fd(), c".", libc::O_PATH).map_err(FsError::io("open", shown)),
        }
    }

    /// Checks what an `O_PATH` descriptor names and reopens it for reading if it
    /// is a regular file or a directory (the same inode, through /proc/self/fd).
    fn open_node(&self, path_fd: OwnedFd, shown: PathBuf) -> Result<Node, FsError> {
        let meta = fstat(path_fd.as_fd()).map_err(FsError::io("inspect", &shown))?;
        let flags = match meta.kind {
            Kind::Dir => libc::O_RDONLY | libc::O_DIRECTORY,
            Kind::File => libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
            Kind::Symlink => {
                return Err(FsError::Symlink {
                    at: shown
                        .strip_prefix(&self.path)
                        .map_or_else(|_| shown.clone(), Path::to_path_buf),
                    path: shown,
                });
            }
            other => {
                return Err(FsError::Special {
                    path: shown,
                    kind: other.name(),
                });
            }
        };
        let proc = CString::new(format!("/proc/self/fd/{}", path_fd.as_raw_fd()))
            .map_err(|_| FsError::io("reopen", &shown)(io::Error::other("bad descriptor")))?;
        // SAFETY: AT_FDCWD is always a valid directory argument.
        let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
        let fd = openat(cwd, &proc, flags).map_err(FsError::io("reopen", &shown))?;
        let reopened = fstat(fd.as_fd()).map_err(FsError::io("inspect", &shown))?;
        if (reopened.dev, reopened.ino) != (meta.dev, meta.ino) {
            return Err(FsError::io("reopen", &shown)(io::Error::other(
                "it changed while it was opened",
            )));
        }
        Ok(match meta.kind {
            Kind::Dir => Node::Dir(Dir { fd, path: shown }),
            _ => Node::File(File {
                file: std::fs::File::from(fd),
                path: shown,
                meta: reopened,
            }),
        })
    }
}

/// The names in the directory `fd` (not `.` and `..`).
fn list(fd: BorrowedFd<'_>, max: u64, shown: &Path) -> Result<Vec<CString>, FsError> {
    let fail = FsError::io("list", shown);
    // A descriptor of its own: closedir closes it. Its offset is shared, so rewind.
    // SAFETY: fcntl(2) F_DUPFD_CLOEXEC on an open descriptor.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(fail(io::Error::last_os_error()));
    }
    // SAFETY: `dup` is ours; on success fdopendir takes it over.
    let dirp = unsafe { libc::fdopendir(dup) };
    if dirp.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `dup` is still ours to close.
        unsafe { libc::close(dup) };
        return Err(fail(e));
    }
    // SAFETY: `dirp` is a valid stream until closedir below.
    unsafe { libc::rewinddir(dirp) };
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; clearing it tells end-of-stream from error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dirp` is a valid stream.
        let entry = unsafe { libc::readdir64(dirp) };
        if entry.is_null() {
            let e = io::Error::last_os_error();
            break if e.raw_os_error().unwrap_or(0) == 0 {
                Ok(())
            } else {
                Err(e)
            };
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated; it
        // stays valid until the next readdir on this stream.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        if name == c"." || name == c".." {
            continue;
        }
        if names.len() as u64 >= max {
            break Err(io::Error::other(format!("more than {max} entries")));
        }
        names.push(name.to_owned());
    };
    // SAFETY: `dirp` is valid and closed once.
    unsafe { libc::closedir(dirp) };
    match result {
        Ok(()) => Ok(names),
        Err(e) if e.kind() == io::ErrorKind::Other => Err(FsError::Limit {
            path: shown.to_path_buf(),
            what: "directory entries",
            max,
        }),
        Err(e) => Err(fail(e)),
    }
}

/// Bounds on a [`walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkLimits {
    /// Most entries in the whole tree.
    pub max_entries: u64,
    /// Deepest directory entered (the root's entries are depth 1).
    pub max_depth: usize,
    /// Longest relative path, in bytes.
    pub max_path_len: usize,
}

impl Default for WalkLimits {
    /// 1,000,000 entries, 128 levels, 4096-byte paths.
    fn default() -> Self {
        WalkLimits {
            max_entries: 1_000_000,
            max_depth: 128,
            max_path_len: 4096,
        }
    }
}

/// One entry of a walked tree.
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// The path relative to the root, `/`-separated.
    pub rel: Vec<u8>,
    pub meta: Meta,
}

impl WalkEntry {
    pub fn rel_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.rel))
    }
}

/// Every entry below `root` (not the root itself), sorted by relative path
/// bytes, each as `lstat` sees it. Directories are entered, never through a
/// symlink (a symlink is listed, not followed); FIFOs, sockets and devices are
/// listed, never opened. The root's entries named in `left_out` are skipped. Past
/// a limit, an error.
pub fn walk(root: &Dir, limits: WalkLimits, left_out: &[&str]) -> Result<Vec<WalkEntry>, FsError> {
    let mut out: Vec<WalkEntry> = Vec::new();
    let mut stack: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0)];
    while let Some((rel, depth)) = stack.pop() {
        let dir = if rel.is_empty() {
            root.dir_beneath("")?
        } else {
            root.dir_beneath(OsStr::from_bytes(&rel))?
        };
        let room = limits.max_entries.saturating_sub(out.len() as u64);
        let entries = dir.entries(room).map_err(|e| match e {
            FsError::Limit { .. } => FsError::Limit {
                path: root.path.clone(),
                what: "entries in the tree",
                max: limits.max_entries,
            },
            other => other,
        })?;
        for entry in entries {
            if rel.is_empty()
                && left_out
                    .iter()
                    .any(|name| entry.name.as_bytes() == name.as_bytes())
            {
                continue;
            }
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(entry.name.as_bytes());
            if child.len() > limits.max_path_len {
                return Err(FsError::Limit {
                    path: root.path.join(OsStr::from_bytes(&child)),
                    what: "bytes in a path",
                    max: limits.max_path_len as u64,
                });
            }
            if out.len() as u64 >= limits.max_entries {
                return Err(FsError::Limit {
                    path: root.path.clone(),
                    what: "entries in the tree",
                    max: limits.max_entries,
                });
            }
            if entry.meta.kind == Kind::Dir {
                if depth + 1 >= limits.max_depth {
                    return Err(FsError::Limit {
                        path: root.path.join(OsStr::from_bytes(&child)),
                        what: "levels of directories",
                        max: limits.max_depth as u64,
                    });
                }
                stack.push((child.clone(), depth + 1));
            }
            out.push(WalkEntry {
                rel: child,
                meta: entry.meta,
            });
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

#[cfg(test)]
mod tests;
