//! The only code in cairn that runs user commands: each [`run`] starts one command in
//! a fresh sandbox, set up by cairn's own runtime, and streams its output line by line.
//!
//! What the command gets:
//! - its own user, mount, pid, ipc, uts, cgroup and network namespace; no
//!   capabilities; no nested user namespaces; with [`SandboxSpec::network`] (a
//!   dependency fetch) the network namespace is one cairn made, whose only way out is
//!   slirp4netns (user-mode: no host loopback, no link-local or cloud metadata
//!   address; see [`SLIRP4NETNS`]);
//! - a read-only `/usr` (and the merged-usr links or directories `/bin`, `/lib`, …),
//!   a curated read-only copy of `/etc` (no `shadow`, no keys), fresh `/proc` and
//!   `/dev`, private tmpfs `/tmp` and [`HOME_DIR`], the extra read-only mounts of the
//!   spec, and the workspace read-write at [`WORKSPACE_DIR`]; nothing else of the
//!   host: not cairn's data directory, not `/root`, not `/home`;
//! - exactly the environment of the spec (plus `PWD`, the working directory, which
//!   the runtime sets as bubblewrap does);
//! - stdin from `/dev/null`, no other inherited descriptor.
//!
//! When cairn runs as root, the sandbox's processes (and cairn's reaper, once it has
//! started them) run as the unprivileged [`SANDBOX_UID`]/[`SANDBOX_GID`] on the host
//! (so nothing in the sandbox is host root, whatever gets mounted), inside a per-run
//! cgroup that enforces [`Limits::memory_bytes`] and [`Limits::max_processes`]; if
//! that cgroup cannot be set up, the run is refused.
//! Unprivileged, the limits fall back to rlimits (`RLIMIT_AS`, `RLIMIT_NPROC`). The
//! wall-clock limit kills the whole sandbox.
//!
//! Process tree of a run: `cairn → reaper → init (pid 1) → command`. The reaper is a
//! subreaper forked from cairn, in the run cgroup; it creates the sandbox's namespaces
//! with its init (cairn's code, in the reaper's memory), which sets up the root
//! filesystem and starts the command. The reaper reaps whatever is orphaned and exits
//! last: [`run`] returns once it is reaped, i.e. when every process of the sandbox is
//! gone and no zombie is left behind. This runtime reads the sandbox's description as
//! a bubblewrap command line and builds the sandbox bubblewrap would build from it. A
//! failed set-up is reported by the init on stderr (`cairn-sandbox: <what> <path>:
//! <error>`) and becomes a [`SandboxError::Setup`]; a program that is missing or not
//! executable is exit code 127 or 126, as a shell reports it. Only a detached sandbox
//! (and [`bubblewrap_alone`], a benchmark's peer) executes bubblewrap ([`BWRAP`]):
//! `host init → bwrap (monitor) → init → command`.
//!
//! A step's sandbox can also be started ahead and held before its command
//! ([`prepare`]): [`PreparedSandbox::release`] runs it as
//! [`run`] would, its wall clock counted from the release; dropped unreleased, it is
//! killed, reaped and its cgroup removed, and the command never runs.
//!
//! Images ([`ImageSandboxSpec`]): an OCI image's unpacked root filesystem is the
//! sandbox's root, read-only, under the same namespaces, user, limits and supervision;
//! run to the end ([`run_image`]), in the background ([`start_image`], a
//! [`RunningSandbox`] killed on drop), or detached from cairn for deploy target
//! `local` ([`start_detached`], [`stop_detached`]). With [`ImageNetwork::Isolated`]
//! what the image serves is reachable only inside its network namespace: from a
//! workspace step run there ([`run_in_network_of`]) or from cairn's own code on a
//! thread that entered it ([`in_network_namespace`]). See [`image`] for what the
//! unpacked rootfs must look like and which user the image runs as
//! ([`image_user_ids`] maps an image's `User`).
//!
//! Not covered: disk usage of the workspace (only `RLIMIT_FSIZE` per file), CPU
//! shares, and a syscall filter (seccomp). With `network: true` the sandbox reaches
//! what the host's network neighbours could (the host's non-loopback addresses
//! included), not what only the host itself can.

mod args;
mod cgroup;
mod detached;
mod error;
mod etc;
pub mod image;
mod leftovers;
mod netns;
mod output;
mod owner;
mod prepared;
mod procfs;
mod running;
mod runtime;
mod spawn;
mod spec;
mod status;
mod supervise;
mod usernet;
mod workspace;

pub use args::BWRAP;
pub use detached::{
    DetachedSandbox, FoundDetached, PortHolders, find_detached, port_listeners, start_detached,
    stop_detached,
};
pub use error::SandboxError;
pub use image::{ImageNetwork, ImageSandboxSpec, WORKSPACE_AT, image_user_ids, run_image};
pub use leftovers::{
    CairnCgroup, CgroupKind, LeftReason, SweepReport, cgroup_parents, list_cgroups, sweep_cgroups,
};
pub use netns::{NetworkNamespace, in_network_namespace};
pub use prepared::{NOT_RELEASED, PreparedSandbox, prepare};
pub use running::{LineSink, PortWait, RunningSandbox, TAIL_LINES, TailLine, start_image};
pub use spawn::{SANDBOX_GID, SANDBOX_UID};
pub use spec::{
    Exit, HOME_DIR, HOSTNAME, Limits, Outcome, SandboxSpec, Stream, Usage, WORKSPACE_DIR,
};
pub use supervise::{BubblewrapAlone, bubblewrap_alone, run, run_in_network_of};
pub use usernet::SLIRP4NETNS;
pub use workspace::prepare_workspace;
