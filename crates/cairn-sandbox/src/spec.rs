//! What to run and under which limits: the input and output types of [`crate::run`].

use std::ffi::OsStr;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::error::SandboxError;

/// Where the workspace appears inside the sandbox; also the working directory.
pub const WORKSPACE_DIR: &str = "/workspace";
/// A private, empty, writable tmpfs inside the sandbox, meant as `HOME`. The sandbox
/// sets no variable itself: pass `HOME=/home/cairn` in [`SandboxSpec::env`] to use it.
pub const HOME_DIR: &str = "/home/cairn";
/// The sandbox's hostname (it has its own UTS namespace).
pub const HOSTNAME: &str = "cairn-sandbox";

/// One command to run in a fresh sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// Host directory bound read-write at [`WORKSPACE_DIR`] (the working directory).
    /// When cairn runs as root it must first go through [`crate::prepare_workspace`],
    /// and every directory above it must be searchable by the sandbox user.
    pub workspace: PathBuf,
    /// The command and its arguments, e.g. `["/bin/sh", "-c", "make test"]`. A bare
    /// name is looked up in the `PATH` given in `env` (or `/bin:/usr/bin`).
    pub argv: Vec<String>,
    /// The complete environment of the command; nothing else leaks in. (bubblewrap
    /// always adds `PWD=/workspace`, the working directory, after changing into it.)
    pub env: Vec<(String, String)>,
    /// `false`: the sandbox has its own network namespace with only a loopback
    /// interface. `true` (a dependency-fetch step): a network namespace of cairn's
    /// with egress through slirp4netns, no host loopback, no link-local or cloud
    /// metadata address, DNS through slirp4netns's forwarder; needs root and
    /// [`crate::SLIRP4NETNS`], and is an error without them (never the host's network).
    pub network: bool,
    /// Extra host → sandbox read-only mounts (toolchains), applied after the system
    /// mounts. Both paths must be absolute and free of `..`.
    pub read_only_binds: Vec<(PathBuf, PathBuf)>,
    /// Resource limits; a limit that cannot be applied makes [`crate::run`] refuse.
    pub limits: Limits,
    /// A build image's unpacked root filesystem (a catalog base carrying the
    /// toolchain): its top-level entries replace the host's `/usr`, `/bin`,
    /// `/lib`, … (each bound read-only, symlinks recreated; not its `/etc`,
    /// `/home`, `/proc`, `/dev`, `/tmp`, `/run` or `/workspace`), and its
    /// `/etc/alternatives` and `/etc/ld.so.cache` are bound over the curated
    /// copy's. `None`: the host's system directories, as before. Every directory
    /// down to it must be searchable by the sandbox user, as for an image.
    pub system_root: Option<PathBuf>,
}

impl SandboxSpec {
    /// A spec with an empty environment, no network, no extra mounts and default limits.
    pub fn new(workspace: impl Into<PathBuf>, argv: Vec<String>) -> Self {
        SandboxSpec {
            workspace: workspace.into(),
            argv,
            env: Vec::new(),
            network: false,
            read_only_binds: Vec::new(),
            limits: Limits::default(),
            system_root: None,
        }
    }

    /// Checks everything that can be checked without running anything.
    pub fn validate(&self) -> Result<(), SandboxError> {
        check_absolute("workspace", &self.workspace)?;
        check_argv(&self.argv)?;
        check_env(&self.env)?;
        for (source, dest) in &self.read_only_binds {
            check_absolute("read_only_binds", source)?;
            check_absolute("read_only_binds", dest)?;
            if dest == Path::new("/") {
                return Err(invalid(
                    "read_only_binds",
                    "cannot be mounted over the sandbox root",
                    &source.to_string_lossy(),
                ));
            }
        }
        if let Some(root) = &self.system_root {
            check_absolute("system_root", root)?;
            if root == Path::new("/") {
                return Err(invalid("system_root", "cannot be the host's root", "/"));
            }
        }
        check_limits(&self.limits)
    }
}

pub(crate) fn check_argv(argv: &[String]) -> Result<(), SandboxError> {
    match argv.first() {
        None => return Err(invalid("argv", "is empty", "")),
        Some(first) if first.is_empty() => {
            return Err(invalid("argv", "program name is empty", ""));
        }
        Some(_) => {}
    }
    // Arguments and values may carry secrets: errors name the field, never the value.
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(invalid("argv", "contains a NUL byte", ""));
    }
    Ok(())
}

pub(crate) fn check_env(env: &[(String, String)]) -> Result<(), SandboxError> {
    for (name, value) in env {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(invalid("env", "invalid variable name", name));
        }
        if value.contains('\0') {
            return Err(invalid("env", "value contains a NUL byte", name));
        }
    }
    Ok(())
}

pub(crate) fn check_limits(limits: &Limits) -> Result<(), SandboxError> {
    if limits.wall_clock.is_zero() {
        return Err(invalid("limits.wall_clock", "must be positive", ""));
    }
    if limits.memory_bytes < MIN_MEMORY_BYTES {
        return Err(invalid(
            "limits.memory_bytes",
            "must be at least 1 MiB",
            &limits.memory_bytes.to_string(),
        ));
    }
    if limits.max_processes == 0 {
        return Err(invalid("limits.max_processes", "must be positive", "0"));
    }
    if limits.max_line_bytes == 0 {
        return Err(invalid("limits.max_line_bytes", "must be positive", "0"));
    }
    Ok(())
}

const MIN_MEMORY_BYTES: u64 = 1 << 20;

pub(crate) fn invalid(field: &'static str, problem: &'static str, value: &str) -> SandboxError {
    SandboxError::InvalidSpec {
        field,
        problem,
        value: value.to_owned(),
    }
}

pub(crate) fn check_absolute(field: &'static str, path: &Path) -> Result<(), SandboxError> {
    let shown = || path.to_string_lossy();
    if !path.is_absolute() {
        return Err(invalid(field, "path is not absolute", &shown()));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(field, "path contains `..`", &shown()));
    }
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(invalid(field, "path contains a NUL byte", &shown()));
    }
    if path.as_os_str() == OsStr::new("") {
        return Err(invalid(field, "path is empty", ""));
    }
    Ok(())
}

/// Resource limits of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time after which the whole sandbox is killed ([`Exit::TimedOut`]).
    pub wall_clock: Duration,
    /// Memory (RAM + swap, including tmpfs pages written in the sandbox) of the whole
    /// sandbox. Also the size cap of each of its tmpfs mounts (`/tmp`, `HOME`).
    pub memory_bytes: u64,
    /// Tasks (processes and threads) the command may have at once, not counting the
    /// three supervisor processes (cairn's reaper, bubblewrap's monitor and init).
    pub max_processes: u32,
    /// Output lines longer than this are delivered in chunks of this size.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall_clock: Duration::from_secs(30 * 60),
            memory_bytes: 2 << 30,
            max_processes: 512,
            max_line_bytes: 64 << 10,
        }
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How the command ended. A failing command is an `Exit`, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// The command exited with this code. bubblewrap reports a command killed by
    /// signal N the way shells do, as `Code(128 + N)`; a command that could not be
    /// executed (not found, not executable) is `Code(127)` / `Code(126)`, as in a shell.
    Code(i32),
    /// The sandbox's supervisor (bubblewrap) was killed by this signal from outside.
    Signal(i32),
    /// [`Limits::wall_clock`] expired; the whole sandbox was killed.
    TimedOut,
    /// The command failed and the kernel's OOM killer acted in the sandbox's memory
    /// cgroup ([`Limits::memory_bytes`] was exceeded). Only detected with cgroups.
    OutOfMemory,
}

impl Exit {
    /// Exit code 0, and nothing else.
    pub fn success(&self) -> bool {
        matches!(self, Exit::Code(0))
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with code {code}"),
            Exit::Signal(signal) => write!(f, "sandbox killed by signal {signal}"),
            Exit::TimedOut => f.write_str("timed out"),
            Exit::OutOfMemory => f.write_str("killed: out of memory"),
        }
    }
}

/// The result of a run that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub exit: Exit,
    /// From the start of bubblewrap to the end of the last process in the sandbox.
    pub duration: Duration,
    /// What the per-run cgroup observed; all `None`/`false` without cgroups.
    pub usage: Usage,
}

/// Resource usage observed by the per-run cgroup (when cairn runs as root).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Most tasks alive at once, the three supervisor processes included.
    pub peak_tasks: Option<u64>,
    /// Most memory charged at once.
    pub peak_memory_bytes: Option<u64>,
    /// A fork or clone failed because [`Limits::max_processes`] was reached.
    pub process_limit_hit: bool,
}
