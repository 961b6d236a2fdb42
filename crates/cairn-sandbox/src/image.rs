//! Running an OCI image's unpacked root filesystem in a sandbox: the rootfs is the
//! sandbox's root, read-only, with a fresh `/proc`, a minimal `/dev`, and private
//! tmpfs `/tmp` and `/run`; the same namespaces, limits and supervision as [`crate::run`].
//!
//! Users and permissions. The command always runs as the unprivileged host user
//! [`crate::SANDBOX_UID`]/[`crate::SANDBOX_GID`] with no supplementary groups and no
//! capabilities (when cairn is root; otherwise as cairn's own user), whatever the
//! image's `USER` says. [`ImageSandboxSpec::uid`]/[`ImageSandboxSpec::gid`] only choose
//! the ids the command *sees* inside its user namespace (so an image built for
//! `USER 1000` finds itself as 1000); they map to the sandbox user outside. 0 is
//! refused: an image that asks for root (or names no user) is run as 65534 by the
//! caller, never as root, not even namespaced root, because "runs as non-root" is
//! what the isolation promises and a namespaced root could still use files a
//! careless unpacker left owned by a mapped id.
//!
//! What the unpacked rootfs must look like. cairn neither copies nor `chmod`s it:
//! - it is a real directory (not a symlink), and every directory above it is
//!   searchable by the sandbox user (the sandbox's set-up opens it as that user);
//! - the sandbox user reads it through the "other" permission bits, or as owner where
//!   the unpacker gave entries to [`crate::SANDBOX_UID`] (recommended for what the
//!   image's `USER` owns; everything else root-owned, modes as in the layers);
//!   so the entrypoint must be `o+rx`, the libraries and files it reads `o+r`, and
//!   the directories on the way `o+x`;
//! - `/proc`, `/dev`, `/tmp` and `/run` are the sandbox's own; the image's are hidden.
//!   Each other top-level entry is bound read-only at the same place (symlinks such
//!   as a merged-usr `/bin -> usr/bin` are recreated), so no mount point needs to
//!   exist in the image;
//! - `/etc/hosts` and `/etc/resolv.conf` are the image's own (cairn injects nothing);
//!   there is no `/sys`.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::args::{self, IMAGE_OWN_MOUNTS, TopEntry};
use crate::error::SandboxError;
use crate::spawn::{self, SANDBOX_GID, SANDBOX_UID};
use crate::spec::{
    Limits, Outcome, Stream, check_absolute, check_argv, check_env, check_limits, invalid,
};
use crate::supervise::execute;

/// The network an image sandbox gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageNetwork {
    /// Its own network namespace with only a loopback interface: what listens in it
    /// is reachable only from inside (see [`crate::run_in_network_of`] and
    /// [`crate::in_network_namespace`]).
    Isolated,
    /// The host's network namespace (deploy target `local`: the app binds
    /// `127.0.0.1:PORT` on the host). Loopback services and abstract sockets of the
    /// host are reachable from it.
    Host,
}

/// An image's command to run with its unpacked root filesystem as the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSandboxSpec {
    /// The unpacked root filesystem on the host (see the module documentation for
    /// what it must look like). Bound read-only.
    pub rootfs: PathBuf,
    /// The image's entrypoint followed by its cmd. A bare name is looked up in the
    /// `PATH` of `env`, inside the image.
    pub argv: Vec<String>,
    /// The complete environment (the image's `Env` plus what the caller adds); the
    /// sandbox adds `PWD`, the working directory, as bubblewrap does.
    pub env: Vec<(String, String)>,
    /// The working directory inside the image (its `WorkingDir`, else `/`); it must
    /// exist in the rootfs.
    pub working_dir: PathBuf,
    /// The user id the command sees inside its user namespace; never 0. It is
    /// [`SANDBOX_UID`] on the host, whatever this says.
    pub uid: u32,
    /// The group id the command sees; never 0. [`SANDBOX_GID`] on the host.
    pub gid: u32,
    pub network: ImageNetwork,
    /// Memory and processes as for [`crate::run`]; `wall_clock` bounds a foreground
    /// run and a [`crate::RunningSandbox`], not a detached one.
    pub limits: Limits,
    /// A host directory (a run's workspace) bound read-only at [`WORKSPACE_AT`]
    /// over the image's own entry of that name, if any: the test files an
    /// acceptance command run inside a release candidate reads.
    pub workspace: Option<PathBuf>,
}

/// Where [`ImageSandboxSpec::workspace`] appears inside the image.
pub const WORKSPACE_AT: &str = "/workspace";

impl ImageSandboxSpec {
    /// `argv` in `rootfs`: empty environment, working directory `/`, ids 65534,
    /// isolated network, default limits.
    pub fn new(rootfs: impl Into<PathBuf>, argv: Vec<String>) -> Self {
        ImageSandboxSpec {
            rootfs: rootfs.into(),
            argv,
            env: Vec::new(),
            working_dir: PathBuf::from("/"),
            uid: SANDBOX_UID,
            gid: SANDBOX_GID,
            network: ImageNetwork::Isolated,
            limits: Limits::default(),
            workspace: None,
        }
    }

    /// Checks everything that can be checked without touching the rootfs.
    pub fn validate(&self) -> Result<(), SandboxError> {
        check_absolute("rootfs", &self.rootfs)?;
        if self.rootfs == Path::new("/") {
            return Err(invalid("rootfs", "cannot be the host's root", "/"));
        }
        check_argv(&self.argv)?;
        check_env(&self.env)?;
        check_absolute("working_dir", &self.working_dir)?;
        if let Some(w) = &self.workspace {
            check_absolute("workspace", w)?;
        }
        if self.uid == 0 {
            return Err(invalid("uid", "must not be root", "0"));
        }
        if self.gid == 0 {
            return Err(invalid("gid", "must not be root", "0"));
        }
        check_limits(&self.limits)
    }
}

/// Most of an image's `/etc/passwd` or `/etc/group` that is read.
const MAX_ACCOUNT_FILE_BYTES: u64 = 1 << 20;

/// The ids the command should see for an image config's `User` (`""`, `name`,
/// `uid`, `name:group`, `uid:gid`, or mixed), for [`ImageSandboxSpec::uid`] and
/// [`ImageSandboxSpec::gid`]. Names are looked up in the image's own `/etc/passwd`
/// and `/etc/group`, read with every symlink resolved inside the rootfs (an image
/// cannot make cairn read the host's files). A user without a group gets its passwd
/// entry's group. No user, `root`, or any id 0 becomes [`SANDBOX_UID`] /
/// [`SANDBOX_GID`]: cairn never runs an image as root (see the module documentation).
/// A name the image does not define is an error, as in other runtimes.
pub fn image_user_ids(rootfs: &Path, user: &str) -> Result<(u32, u32), SandboxError> {
    let (name, group) = match user.split_once(':') {
        Some((name, group)) => (name, Some(group)),
        None => (user, None),
    };
    if name.is_empty() {
        if group.is_some() {
            return Err(invalid("user", "has a group but no user", user));
        }
        return Ok((SANDBOX_UID, SANDBOX_GID));
    }
    let passwd = read_in_root(rootfs, "etc/passwd")?;
    let (uid, primary) = match name.parse::<u32>() {
        Ok(uid) => (
            uid,
            find_account(&passwd, |e| e[2] == name).and_then(|e| e[3].parse().ok()),
        ),
        Err(_) => {
            let entry = find_account(&passwd, |e| e[0] == name)
                .ok_or_else(|| invalid("user", "is not in the image's /etc/passwd", name))?;
            let uid = entry[2]
                .parse()
                .map_err(|_| invalid("user", "has a malformed /etc/passwd entry", name))?;
            (uid, entry[3].parse().ok())
        }
    };
    let gid = match group {
        None => primary.unwrap_or(0),
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let groups = read_in_root(rootfs, "etc/group")?;
                find_account(&groups, |e| e[0] == group)
                    .and_then(|e| e[2].parse().ok())
                    .ok_or_else(|| {
                        invalid("user", "names a group not in the image's /etc/group", group)
                    })?
            }
        },
    };
    let uid = if uid == 0 { SANDBOX_UID } else { uid };
    let gid = if gid == 0 { SANDBOX_GID } else { gid };
    Ok((uid, gid))
}

/// The first `name:x:id:...` line (split at `:`, at least 4 fields) matching `wanted`.
fn find_account(text: &str, wanted: impl Fn(&[&str]) -> bool) -> Option<Vec<&str>> {
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 4 && wanted(fields))
}

/// Reads `relative` inside `rootfs` with every symlink resolved as if `rootfs`
/// were `/` (openat2 `RESOLVE_IN_ROOT`, see `cairn_fs`): only a regular file, at
/// most [`MAX_ACCOUNT_FILE_BYTES`]; a FIFO or device is refused without being
/// opened; a missing file reads as empty.
fn read_in_root(rootfs: &Path, relative: &str) -> Result<String, SandboxError> {
    let shown = rootfs.join(relative);
    let fail = |e: cairn_fs::FsError| {
        rootfs_error(
            &shown,
            "read it",
            io::Error::new(io::ErrorKind::InvalidData, e),
        )
    };
    let root = cairn_fs::Dir::open(rootfs).map_err(fail)?;
    let file = match root.open_in_root(relative) {
        Ok(cairn_fs::Node::File(file)) => file,
        Ok(cairn_fs::Node::Dir(_)) => {
            return Err(rootfs_error(
                &shown,
                "read it",
                io::Error::from(io::ErrorKind::IsADirectory),
            ));
        }
        Err(e) if e.is_not_found() => return Ok(String::new()),
        Err(e) => return Err(fail(e)),
    };
    let bytes = file.read_bounded(MAX_ACCOUNT_FILE_BYTES).map_err(fail)?;
    String::from_utf8(bytes).map_err(|_| {
        rootfs_error(
            &shown,
            "read it",
            io::Error::from(io::ErrorKind::InvalidData),
        )
    })
}

/// Runs `spec.argv` in the image to its end, like [`crate::run`]: output to `on_line`
/// on this thread, [`crate::Exit::TimedOut`] after `limits.wall_clock`, every process
/// gone when it returns.
pub fn run_image(
    spec: &ImageSandboxSpec,
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Outcome, SandboxError> {
    let args = image_args(spec, false)?;
    execute(args, &spec.limits, None, on_line)
}

/// Validates `spec`, reads the rootfs's top level, and builds bubblewrap's arguments.
pub(crate) fn image_args(
    spec: &ImageSandboxSpec,
    detached: bool,
) -> Result<Vec<OsString>, SandboxError> {
    spec.validate()?;
    if spawn::is_root() {
        check_reachable(&spec.rootfs)?;
    }
    let entries = top_entries(&spec.rootfs)?;
    Ok(args::build_image(spec, &entries, detached))
}

fn rootfs_error(path: &Path, action: &'static str, source: io::Error) -> SandboxError {
    SandboxError::Rootfs {
        path: path.to_owned(),
        action,
        source,
    }
}

/// The sandbox's set-up (cairn's runtime, or bubblewrap for a detached sandbox) opens
/// the rootfs as the sandbox user: every directory from `/` down to it must let that
/// user through. Checked here to name the directory that does not, rather than leave
/// it to a failed bind that names only the entry bound.
pub(crate) fn check_reachable(rootfs: &Path) -> Result<(), SandboxError> {
    for dir in rootfs.ancestors() {
        let meta = fs::metadata(dir).map_err(|e| rootfs_error(dir, "inspect it", e))?;
        let mode = meta.mode();
        let through = mode & 0o001 != 0
            || (meta.uid() == SANDBOX_UID && mode & 0o100 != 0)
            || (meta.gid() == SANDBOX_GID && mode & 0o010 != 0);
        if !through {
            return Err(rootfs_error(
                dir,
                "let the sandbox user through it (every directory down to the rootfs \
                 needs o+x)",
                io::Error::from(io::ErrorKind::PermissionDenied),
            ));
        }
    }
    Ok(())
}

/// The top-level entries of `rootfs` the sandbox binds: directories and regular
/// files, and symlinks (recreated); the sandbox's own mount points and anything else
/// (devices, sockets) are left out. Sorted, so the command line is reproducible.
pub(crate) fn top_entries(rootfs: &Path) -> Result<Vec<TopEntry>, SandboxError> {
    let meta = fs::symlink_metadata(rootfs).map_err(|e| rootfs_error(rootfs, "inspect it", e))?;
    if !meta.is_dir() {
        return Err(rootfs_error(
            rootfs,
            "use it (not a directory)",
            io::Error::from(io::ErrorKind::NotADirectory),
        ));
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(rootfs).map_err(|e| rootfs_error(rootfs, "list it", e))? {
        let entry = entry.map_err(|e| rootfs_error(rootfs, "list it", e))?;
        let name = entry.file_name();
        if IMAGE_OWN_MOUNTS.iter().any(|own| name == *own) {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| rootfs_error(&path, "inspect it", e))?;
        if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(|e| rootfs_error(&path, "read it", e))?;
            entries.push(TopEntry::Symlink(name, target));
        } else if kind.is_dir() || kind.is_file() {
            entries.push(TopEntry::Bind(name));
        }
    }
    entries.sort_by(|a, b| top_name(a).cmp(top_name(b)));
    Ok(entries)
}

fn top_name(entry: &TopEntry) -> &OsString {
    match entry {
        TopEntry::Bind(name) | TopEntry::Symlink(name, _) => name,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lists_the_top_level_without_the_sandbox_own_mounts() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["usr", "etc", "proc", "tmp", "app"] {
            fs::create_dir(root.path().join(dir)).unwrap();
        }
        fs::write(root.path().join("hello"), "x").unwrap();
        std::os::unix::fs::symlink("usr/bin", root.path().join("bin")).unwrap();
        let entries = top_entries(root.path()).unwrap();
        assert_eq!(
            entries,
            vec![
                TopEntry::Bind("app".into()),
                TopEntry::Symlink("bin".into(), "usr/bin".into()),
                TopEntry::Bind("etc".into()),
                TopEntry::Bind("hello".into()),
                TopEntry::Bind("usr".into()),
            ]
        );
        let link = root.path().join("link");
        std::os::unix::fs::symlink(root.path(), &link).unwrap();
        assert!(matches!(
            top_entries(&link),
            Err(SandboxError::Rootfs { .. })
        ));
    }

    #[test]
    fn users_map_to_ids_never_root() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            root.path().join("etc/group"),
            "root:x:0:\nstaff:x:50:\napp:x:1001:\n",
        )
        .unwrap();
        let ids = |user: &str| image_user_ids(root.path(), user);
        let nobody = (SANDBOX_UID, SANDBOX_GID);
        let cases: &[(&str, (u32, u32))] = &[
            ("", nobody),
            ("root", nobody),
            ("0", nobody),
            ("0:0", nobody),
            ("app", (1000, 1001)),
            ("1000", (1000, 1001)),
            ("app:staff", (1000, 50)),
            ("app:0", (1000, SANDBOX_GID)),
            ("2000", (2000, SANDBOX_GID)),
            ("2000:3000", (2000, 3000)),
        ];
        for (user, expected) in cases {
            assert_eq!(ids(user).unwrap(), *expected, "{user:?}");
        }
        for user in ["ghost", "app:ghost", ":50"] {
            assert!(
                matches!(
                    ids(user),
                    Err(SandboxError::InvalidSpec { field: "user", .. })
                ),
                "{user:?}"
            );
        }

        // An image whose /etc/passwd points at a host file: resolved inside the
        // rootfs, where it does not exist, so the host's users are not found.
        let host = tempfile::tempdir().unwrap();
        let host_passwd = host.path().join("passwd");
        fs::write(&host_passwd, "escaped:x:4242:4242::/:/bin/sh\n").unwrap();
        let evil = tempfile::tempdir().unwrap();
        fs::create_dir(evil.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(&host_passwd, evil.path().join("etc/passwd")).unwrap();
        assert!(image_user_ids(evil.path(), "escaped").is_err());
        // Positive control: a relative link inside the image is followed.
        fs::remove_file(evil.path().join("etc/passwd")).unwrap();
        fs::write(
            evil.path().join("etc/real"),
            "escaped:x:4242:4242::/:/bin/sh\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/real", evil.path().join("etc/passwd")).unwrap();
        assert_eq!(
            image_user_ids(evil.path(), "escaped").unwrap(),
            (4242, 4242)
        );
    }

    #[test]
    fn invalid_image_specs() {
        let ok = ImageSandboxSpec::new("/images/rc", vec!["/app".into()]);
        assert!(ok.validate().is_ok());
        type Change = Box<dyn Fn(&mut ImageSandboxSpec)>;
        let cases: Vec<(&str, Change)> = vec![
            ("rootfs", Box::new(|s| s.rootfs = "images/rc".into())),
            ("rootfs", Box::new(|s| s.rootfs = "/".into())),
            ("rootfs", Box::new(|s| s.rootfs = "/images/../etc".into())),
            ("argv", Box::new(|s| s.argv.clear())),
            ("env", Box::new(|s| s.env.push(("A=B".into(), "x".into())))),
            ("working_dir", Box::new(|s| s.working_dir = "app".into())),
            ("uid", Box::new(|s| s.uid = 0)),
            ("gid", Box::new(|s| s.gid = 0)),
            (
                "limits.max_processes",
                Box::new(|s| s.limits.max_processes = 0),
            ),
        ];
        for (field, change) in cases {
            let mut spec = ok.clone();
            change(&mut spec);
            match spec.validate() {
                Err(SandboxError::InvalidSpec { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
