//! Why a sandbox could not run. A command that ran and failed is an [`crate::Exit`],
//! never one of these.

use std::io;
use std::path::PathBuf;

/// The sandbox could not run the command (or could not clean up after it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The spec is malformed; nothing was started.
    #[error("invalid sandbox spec: {field} {problem}{}", shown(value))]
    InvalidSpec {
        field: &'static str,
        problem: &'static str,
        value: String,
    },

    /// bubblewrap is not installed where cairn expects it (only a detached sandbox
    /// executes it).
    #[error("bubblewrap not found at {path} (install the `bubblewrap` package)")]
    BwrapMissing {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A tool the sandbox needs is not installed where cairn expects it.
    #[error("{tool} not found at {path} (install the `{package}` package)")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The user-mode network of a sandbox with network could not be set up; the
    /// command did not run (never on the host's network instead).
    #[error("cannot give the sandbox its user-mode network: cannot {action}: {detail}")]
    Network {
        action: &'static str,
        detail: String,
    },

    /// A limit cannot be enforced on this host; cairn refuses to run without it.
    #[error("cannot enforce the {limit} limit: {reason}; refusing to run without it")]
    LimitUnavailable {
        limit: &'static str,
        reason: &'static str,
    },

    /// Setting up a limit failed; cairn refuses to run without it.
    #[error("cannot enforce the {limit} limit ({action} {path}); refusing to run without it")]
    Limit {
        limit: &'static str,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Starting the sandbox failed; `step` says which part of the preparation in
    /// cairn's child (for a detached sandbox, also the exec of bubblewrap).
    #[error("cannot start the sandbox ({step})")]
    Spawn {
        step: &'static str,
        #[source]
        source: io::Error,
    },

    /// The sandbox started but could not be set up (a mount, a namespace); the
    /// command never ran. `message` is the set-up's own diagnostic: the last line the
    /// sandbox's init wrote on stderr (`cairn-sandbox: <what> <path>: <error>`), or,
    /// for a detached sandbox, where its log is. `status` is the exit status of
    /// cairn's child (the reaper), -1 if there is none.
    #[error("the sandbox could not be set up (exit status {status}): {message}")]
    Setup { status: i32, message: String },

    /// The sandbox's copy of `/etc` could not be made.
    #[error("cannot {action} {path} for the sandbox's /etc")]
    Etc {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The workspace is unusable or could not be prepared.
    #[error("workspace {path}: cannot {action}")]
    Workspace {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },

    /// An image's root filesystem is unusable.
    #[error("image root filesystem {path}: cannot {action}")]
    Rootfs {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },

    /// An I/O operation of the supervisor itself failed.
    #[error("sandbox supervision failed: cannot {action}")]
    Io {
        action: &'static str,
        #[source]
        source: io::Error,
    },

    /// Processes of the sandbox were still alive after it was killed.
    #[error("{count} process(es) of the sandbox survived being killed (cgroup {path})")]
    Leftover { path: PathBuf, count: usize },
}

fn shown(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!(": {value:?}")
    }
}
