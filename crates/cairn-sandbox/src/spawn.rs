//! Starting a sandbox: what cairn's child does after the `fork` (join the run cgroup,
//! set rlimits, pass the status and release descriptors, close inherited ones, drop
//! root to the sandbox user), and the reaper it becomes, which is the child cairn
//! waits for.
//!
//! ```text
//! cairn ── reaper (subreaper, in the cgroup, sandbox uid) ── init (pid 1) ── command
//! ```
//!
//! cairn forks the reaper (std's `Command`, a copy of cairn's memory); the reaper
//! starts the sandbox's init in that same memory (no second copy; see
//! [`crate::runtime`]).
//!
//! A detached sandbox ([`crate::start_detached`]) has no reaper: cairn's child starts
//! a new session, forks bubblewrap and exits, leaving
//! `host init ── bwrap monitor ── init ── command` in the kept cgroup.
//!
//! Everything the child does is prepared before the fork; the child itself only makes
//! async-signal-safe system calls and never allocates.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use crate::args::{self, BLOCK_FD, STATUS_FD};
use crate::cgroup::{RunCgroup, SUPERVISOR_TASKS};
use crate::error::SandboxError;
use crate::runtime::{
    Handshake, InitArg, Plan, Runtime, Stacks, child_pid_line, exit_code_line, init_main,
    proc_file, write_file,
};
use crate::spec::Limits;

/// The unprivileged host user and group the sandbox runs as when cairn runs as root
/// (Debian's `nobody`/`nogroup`). [`crate::prepare_workspace`] hands workspaces to it.
pub const SANDBOX_UID: u32 = 65534;
/// See [`SANDBOX_UID`].
pub const SANDBOX_GID: u32 = 65534;

/// Largest single file the sandbox may write.
const MAX_FILE_BYTES: u64 = 4 << 30;
/// Open descriptors per process in the sandbox.
const MAX_OPEN_FILES: u64 = 16 << 10;
/// With a cgroup, RLIMIT_NPROC is only a backstop: it counts every process of the
/// sandbox user on the host, so concurrent runs share it. The cgroup's `pids.max` is
/// the per-run limit; this keeps a bound even if that were escaped.
const NPROC_BACKSTOP_FACTOR: u64 = 16;

#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

/// The steps of the child's preparation, named in [`SandboxError::Spawn`]. The child
/// reports the failing one by writing its index (one byte) to the status pipe.
const STEPS: &[&str] = &[
    "joining the run cgroup",
    "setting resource limits",
    "dropping supplementary groups",
    "switching to the sandbox group",
    "switching to the sandbox user",
    "binding the child's life to cairn's",
    "passing the status descriptor",
    "closing inherited descriptors",
    "starting the reaper",
    "raising the sandbox's OOM score",
    "joining the network namespace",
    "starting a new session",
    "detaching from cairn",
    "passing the release descriptor",
    "creating the sandbox's namespaces",
    "mapping the sandbox's user and group",
    "mapping the sandbox's stacks",
];
const STEP_CGROUP: u8 = 0;
const STEP_RLIMIT: u8 = 1;
const STEP_SETGROUPS: u8 = 2;
const STEP_SETGID: u8 = 3;
const STEP_SETUID: u8 = 4;
const STEP_PDEATHSIG: u8 = 5;
const STEP_STATUS_FD: u8 = 6;
const STEP_CLOSE_FDS: u8 = 7;
const STEP_REAPER: u8 = 8;
const STEP_OOM_SCORE: u8 = 9;
const STEP_SETNS: u8 = 10;
const STEP_SETSID: u8 = 11;
const STEP_DETACH: u8 = 12;
const STEP_BLOCK_FD: u8 = 13;
const STEP_NAMESPACES: u8 = 14;
const STEP_ID_MAPS: u8 = 15;
const STEP_STACKS: u8 = 16;

/// What cairn's child does after the fork, prepared in the parent.
struct ChildSetup {
    cgroup_procs: Vec<CString>,
    rlimits: Vec<(Resource, libc::rlim_t)>,
    drop_to: Option<(libc::uid_t, libc::gid_t)>,
    parent: libc::pid_t,
    status_fd: RawFd,
    /// A prepared sandbox's release descriptor (see [`crate::prepare`]), passed to
    /// the command as [`BLOCK_FD`]; never 0-2 or [`STATUS_FD`].
    block_fd: Option<RawFd>,
    /// Upper bound for the fallback close loop (kernels without close_range).
    max_fd: RawFd,
    /// The highest signal number (SIGRTMAX), read before the fork.
    max_signal: libc::c_int,
    /// A network namespace to enter (with `setns`) while still privileged.
    netns: Option<RawFd>,
    /// Detached: own session, no parent-death signal, no reaper, and bubblewrap is
    /// handed to the host's init (or the nearest subreaper) instead of staying
    /// cairn's child's.
    detached: bool,
    /// What the reaper starts (not detached): the sandbox's init, see
    /// [`crate::runtime`].
    runtime: Option<Runtime>,
}

/// How a sandbox is started, besides its arguments and limits.
#[derive(Debug, Default)]
pub(crate) struct Launch<'a> {
    /// The run cgroup the child joins (when cairn runs as root).
    pub cgroup: Option<&'a RunCgroup>,
    /// A network namespace (an open `/proc/PID/ns/net`) the sandbox joins instead of
    /// getting its own; its arguments must then share the network.
    pub netns: Option<RawFd>,
    /// Detached: stdout and stderr go to this file, and the sandbox outlives cairn.
    pub log: Option<std::fs::File>,
    /// A prepared sandbox: the descriptor its first process waits on before the
    /// command runs, passed as [`BLOCK_FD`]. Must not be 0-4.
    pub block: Option<RawFd>,
}

/// Our child (the reaper, with the sandbox's init below it; cairn's child that
/// forked bubblewrap, for a detached sandbox) and the read end of the status pipe.
pub(crate) struct Started {
    pub child: Child,
    pub status: OwnedFd,
}

/// Whether cairn runs as root, which decides between "drop to the sandbox user and
/// use a cgroup" and "stay the current user and use rlimits".
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Starts the sandbox `bwrap_args` describe (below the reaper) with stdout and
/// stderr piped and stdin from /dev/null; returns once the reaper has started the
/// init (detached: once bubblewrap has been executed).
pub(crate) fn start(
    bwrap_args: Vec<std::ffi::OsString>,
    limits: &Limits,
    launch: Launch<'_>,
) -> Result<Started, SandboxError> {
    let cgroup = launch.cgroup;
    let root = cgroup.is_some();
    let (status_read, status_write) = pipe()?;
    // Detached sandboxes execute bubblewrap; the others are the native runtime's.
    let runtime = match launch.log {
        Some(_) => None,
        None => Some(Runtime::new(Plan::from_args(&bwrap_args)?)?),
    };
    let setup = ChildSetup {
        cgroup_procs: cgroup.map(|c| c.procs_files().to_vec()).unwrap_or_default(),
        rlimits: rlimits(limits, root),
        drop_to: root.then_some((SANDBOX_UID, SANDBOX_GID)),
        // SAFETY: getpid(2) cannot fail.
        parent: unsafe { libc::getpid() },
        status_fd: status_write.as_raw_fd(),
        block_fd: launch.block,
        max_fd: current_limit(libc::RLIMIT_NOFILE)
            .map_or(1 << 16, |n| n.min(1 << 16))
            .try_into()
            .unwrap_or(1 << 16),
        max_signal: libc::SIGRTMAX(),
        netns: launch.netns,
        detached: launch.log.is_some(),
        runtime,
    };

    let mut command = Command::new(args::bwrap_path());
    // bubblewrap is executed only for a detached sandbox: the native runtime's
    // reaper never returns from `after_fork`, so its arguments would go unused.
    if setup.runtime.is_none() {
        command.args(bwrap_args);
    }
    command.env_clear().current_dir("/").stdin(Stdio::null());
    match launch.log {
        Some(log) => {
            let copy = log.try_clone().map_err(|source| SandboxError::Io {
                action: "duplicate the log file descriptor",
                source,
            })?;
            // Its own session (set up in the child): not even a process group leader
            // first, or setsid(2) would fail.
            command.stdout(Stdio::from(log)).stderr(Stdio::from(copy));
        }
        None => {
            command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // Its own process group, so nothing aimed at cairn's group reaches it.
                .process_group(0);
        }
    }
    // SAFETY: `after_fork` only makes async-signal-safe system calls on data prepared
    // above, and does not allocate.
    unsafe {
        command.pre_exec(move || setup.after_fork());
    }
    let spawned = command.spawn();
    // The child has its copy; ours must go, or the status pipe never reaches EOF.
    drop(status_write);
    let source = match spawned {
        Ok(child) => {
            return Ok(Started {
                child,
                status: status_read,
            });
        }
        Err(source) => source,
    };
    // Did one of our steps fail (it says which), or the exec itself?
    let mut failed = [0u8; 1];
    let step = match std::fs::File::from(status_read).read(&mut failed) {
        Ok(1) => STEPS.get(usize::from(failed[0])).copied(),
        _ => None,
    };
    match step {
        Some(step) => Err(SandboxError::Spawn { step, source }),
        None if source.kind() == io::ErrorKind::NotFound => Err(SandboxError::BwrapMissing {
            path: args::bwrap_path().to_owned(),
            source,
        }),
        None => Err(SandboxError::Spawn {
            step: "executing bubblewrap",
            source,
        }),
    }
}

fn rlimits(limits: &Limits, root: bool) -> Vec<(Resource, libc::rlim_t)> {
    let processes = u64::from(limits.max_processes);
    let mut wanted: Vec<(Resource, u64)> = vec![
        (libc::RLIMIT_CORE, 0),
        (libc::RLIMIT_FSIZE, MAX_FILE_BYTES),
        (libc::RLIMIT_NOFILE, MAX_OPEN_FILES),
    ];
    if root {
        // Memory and processes are the cgroup's job; RLIMIT_AS would break runtimes
        // that reserve address space (Go, the JVM, sanitizers) without bounding RSS.
        wanted.push((
            libc::RLIMIT_NPROC,
            processes.saturating_mul(NPROC_BACKSTOP_FACTOR),
        ));
    } else {
        // No cgroup: per-process address space and the user's process count are the
        // best the kernel offers an unprivileged caller.
        wanted.push((libc::RLIMIT_AS, limits.memory_bytes));
        wanted.push((libc::RLIMIT_NPROC, processes + SUPERVISOR_TASKS));
    }
    wanted
        .into_iter()
        .map(|(resource, value)| {
            // Never ask for more than the current hard limit (that would fail for an
            // unprivileged caller, and lowering is what matters).
            let value = current_hard_limit(resource).map_or(value, |hard| value.min(hard));
            (resource, value)
        })
        .collect()
}

fn current_limit(resource: Resource) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the struct we pass.
    let rc = unsafe { libc::getrlimit(resource, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

fn current_hard_limit(resource: Resource) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the struct we pass.
    let rc = unsafe { libc::getrlimit(resource, &mut limit) };
    (rc == 0 && limit.rlim_max != libc::RLIM_INFINITY).then_some(limit.rlim_max)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2(2) fills the two-element array on success.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(SandboxError::Io {
            action: "create the status pipe",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl ChildSetup {
    /// Runs in the forked child. Async-signal-safe system calls only, no allocation.
    fn after_fork(&self) -> io::Result<()> {
        // SAFETY (whole body): plain system calls on pointers to data owned by `self`,
        // which the fork copied and which outlives these calls.
        unsafe {
            for path in &self.cgroup_procs {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(self.fail(STEP_CGROUP));
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let error = self.fail_if(written != 1, STEP_CGROUP);
                libc::close(fd);
                error?;
            }
            // A fresh start: no signal ignored or handled the way cairn does it (ignored
            // signals would survive the exec into the sandbox; the reaper must see
            // SIGCHLD to reap).
            for signal in 1..=self.max_signal {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
            for &(resource, value) in &self.rlimits {
                let limit = libc::rlimit {
                    rlim_cur: value,
                    rlim_max: value,
                };
                self.fail_if(libc::setrlimit(resource, &limit) != 0, STEP_RLIMIT)?;
            }
            // Before giving up root: entering a network namespace needs CAP_SYS_ADMIN.
            if let Some(netns) = self.netns {
                self.fail_if(libc::setns(netns, libc::CLONE_NEWNET) != 0, STEP_SETNS)?;
            }
            if self.detached {
                // No controlling terminal, no session of cairn's: a hangup or a signal
                // to cairn's session does not reach it.
                self.fail_if(libc::setsid() < 0, STEP_SETSID)?;
            }
            if self.detached {
                // bubblewrap is forked (a copy) and this process exits: drop now.
                self.drop_privileges()?;
            } else {
                // The reaper keeps root until it has written the init's id maps and
                // OOM score. If cairn dies meanwhile, the reaper dies (set again after
                // the drop, which clears it).
                self.bind_life_to_parent()?;
            }
            if self.status_fd == STATUS_FD {
                let flags = libc::fcntl(STATUS_FD, libc::F_GETFD);
                self.fail_if(
                    flags < 0
                        || libc::fcntl(STATUS_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC) != 0,
                    STEP_STATUS_FD,
                )?;
            } else {
                // dup2 clears close-on-exec on the new descriptor.
                self.fail_if(libc::dup2(self.status_fd, STATUS_FD) < 0, STEP_STATUS_FD)?;
            }
            // The caller made sure it is none of 0-4, so the dup2 above cannot have
            // replaced it.
            let last_passed = match self.block_fd {
                Some(block) => {
                    self.fail_if(libc::dup2(block, BLOCK_FD) < 0, STEP_BLOCK_FD)?;
                    BLOCK_FD
                }
                None => STATUS_FD,
            };
            // Whatever cairn inherited without close-on-exec (from its own parent, or a
            // library) must not reach the sandbox: an open directory is a way out.
            let first = (last_passed + 1) as libc::c_uint;
            let closed = libc::syscall(
                libc::SYS_close_range,
                first,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if closed != 0 {
                for fd in last_passed + 1..self.max_fd {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                        self.fail_if(
                            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) != 0,
                            STEP_CLOSE_FDS,
                        )?;
                    }
                }
            }
            self.split_off(last_passed)
        }
    }

    /// Gives up root for the sandbox user and group, and checks it cannot be regained.
    ///
    /// # Safety
    /// Only in a forked child.
    unsafe fn drop_privileges(&self) -> io::Result<()> {
        let Some((uid, gid)) = self.drop_to else {
            return Ok(());
        };
        // SAFETY: plain system calls on integers.
        unsafe {
            self.fail_if(libc::setgroups(0, std::ptr::null()) != 0, STEP_SETGROUPS)?;
            self.fail_if(libc::setgid(gid) != 0, STEP_SETGID)?;
            self.fail_if(libc::setuid(uid) != 0, STEP_SETUID)?;
            let dropped = libc::getuid() == uid
                && libc::geteuid() == uid
                && libc::getgid() == gid
                && libc::getegid() == gid
                && libc::setuid(0) != 0;
            if !dropped {
                return Err(self.fail_with(STEP_SETUID, libc::EPERM));
            }
        }
        Ok(())
    }

    /// SIGKILL when cairn (our parent) dies, and a check that it has not already.
    /// A uid change clears it, so it is set (again) after one.
    ///
    /// # Safety
    /// Only in a forked child.
    unsafe fn bind_life_to_parent(&self) -> io::Result<()> {
        // SAFETY: plain system calls on integers.
        unsafe {
            self.fail_if(
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0,
                STEP_PDEATHSIG,
            )?;
            if libc::getppid() != self.parent {
                return Err(self.fail_with(STEP_PDEATHSIG, libc::ESRCH));
            }
        }
        Ok(())
    }

    /// The last step of cairn's child: detached, fork bubblewrap and leave it to the
    /// host; else become the reaper that starts the sandbox's init
    /// ([`ChildSetup::start_init`]).
    ///
    /// # Safety
    /// Only in the forked child, at the very end of its preparation.
    unsafe fn split_off(&self, last_passed: RawFd) -> io::Result<()> {
        // SAFETY: async-signal-safe system calls only; this process never returns to
        // Rust code that could allocate, it `_exit`s.
        unsafe {
            if self.detached {
                // This process (cairn's child, which cairn reaps at once) forks
                // bubblewrap and exits: bubblewrap is orphaned, adopted by the host's
                // init (which reaps it and, if bubblewrap goes first, the sandbox's
                // init), and nothing of cairn's stays behind. No reaper either: it would
                // keep a copy of cairn's memory alive for as long as the sandbox runs.
                let bwrap = libc::syscall(
                    libc::SYS_clone,
                    libc::c_long::from(libc::SIGCHLD),
                    0 as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                );
                if bwrap < 0 {
                    return Err(self.fail(STEP_DETACH));
                }
                if bwrap > 0 {
                    libc::_exit(0);
                }
                return self.become_bwrap();
            }
            match &self.runtime {
                Some(runtime) => self.start_init(runtime, last_passed),
                // Not detached: `start` always prepares the runtime.
                None => Err(self.fail_with(STEP_NAMESPACES, libc::EINVAL)),
            }
        }
    }

    /// The reaper (this process, a child subreaper) starts the sandbox's init with
    /// its namespaces, in this memory ([`crate::runtime`]): it writes the init's id
    /// maps and OOM score while still root, names the init on the status
    /// descriptor, lets it go on, gives up root, and reaps until nothing of the
    /// sandbox is left. It exits with the init's status, after writing the
    /// command's exit code on the status descriptor if the command was executed; so
    /// reaping it means the whole sandbox is gone and no zombie is left to the
    /// host's init.
    ///
    /// # Safety
    /// Only in the forked child, at the very end of its preparation; never returns
    /// on success.
    unsafe fn start_init(&self, runtime: &Runtime, last_passed: RawFd) -> io::Result<()> {
        // SAFETY: async-signal-safe system calls only, on memory prepared before the
        // fork; this process never returns to Rust code that could allocate, it
        // `_exit`s.
        unsafe {
            self.fail_if(
                libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0,
                STEP_REAPER,
            )?;
            let reaper = libc::getpid();
            if self.drop_to.is_some() {
                // The init starts with this process's credentials: none of root's
                // groups (the user namespace's "deny" below makes them permanent).
                self.fail_if(libc::setgroups(0, std::ptr::null()) != 0, STEP_SETGROUPS)?;
            }
            // The init runs in this memory, and `/proc/1/cmdline` is readable by
            // anyone in the sandbox: it shows a name, never cairn's arguments.
            runtime.retitle();
            libc::prctl(libc::PR_SET_NAME, c"cairn-reaper".as_ptr(), 0, 0, 0);
            // The init checks it each time it has armed its parent-death signal
            // (an id change disarms it), then closes it.
            let pidfd = libc::syscall(libc::SYS_pidfd_open, reaper, 0);
            self.fail_if(pidfd < 0, STEP_REAPER)?;
            // The init's and the command's stacks, in this memory.
            let Some(stacks) = Stacks::map() else {
                return Err(self.fail(STEP_STACKS));
            };
            let shared = Handshake::new();
            let arg = InitArg {
                runtime,
                shared: &shared,
                reaper: pidfd as libc::c_int,
                first_closed: (last_passed + 1) as libc::c_uint,
                held: self.block_fd.is_some(),
                command_stack: stacks.top(1),
            };
            let mut flags = libc::CLONE_NEWUSER
                | libc::CLONE_NEWNS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS
                | libc::CLONE_NEWCGROUP
                | libc::CLONE_VM
                | libc::SIGCHLD;
            if runtime.plan.new_network() {
                flags |= libc::CLONE_NEWNET;
            }
            // glibc's clone(3) wrapper, not fork(3): no atfork handlers run in this
            // copy of a multi-threaded process.
            let init = libc::clone(
                init_main,
                stacks.top(0),
                flags,
                (&arg as *const InitArg<'_>).cast_mut().cast(),
            );
            let clone_error = self.fail_if(init < 0, STEP_NAMESPACES);
            libc::close(pidfd as libc::c_int);
            clone_error?;
            // On a failure from here on, the init is killed and reaped before this
            // frame (which holds what the init reads) is left.
            let abandon = |error: io::Error| {
                shared.release(false);
                libc::kill(init, libc::SIGKILL);
                let mut status = 0;
                libc::waitpid(init, &mut status, 0);
                error
            };
            self.map_init(runtime, init).map_err(abandon)?;
            let mut line = [0u8; 48];
            let named = child_pid_line(init, &mut line);
            libc::write(STATUS_FD, named.as_ptr().cast(), named.len());
            shared.release(true);
            // The init runs. Now the reaper gives up root too.
            self.drop_privileges()
                .and_then(|()| self.bind_life_to_parent())
                .map_err(abandon)?;
            // The reaper holds nothing but the status descriptor: not the output
            // pipes (their end of file must mean the sandbox is done with them), not
            // std's exec-status pipe (its end of file tells cairn the spawn worked).
            let closed = libc::syscall(
                libc::SYS_close_range,
                0 as libc::c_uint,
                2 as libc::c_uint,
                0,
            ) | libc::syscall(
                libc::SYS_close_range,
                (STATUS_FD + 1) as libc::c_uint,
                libc::c_uint::MAX,
                0,
            );
            if closed != 0 {
                for fd in (0..self.max_fd).filter(|&fd| fd != STATUS_FD) {
                    libc::close(fd);
                }
            }
            let mut init_status = None;
            loop {
                let mut status = 0;
                let pid = libc::waitpid(-1, &mut status, 0);
                if pid == init {
                    init_status = Some(status);
                } else if pid < 0 {
                    // No handler is installed: never EINTR. ECHILD: everything is
                    // reaped.
                    break;
                }
            }
            match init_status {
                Some(status) if libc::WIFEXITED(status) => {
                    let code = libc::WEXITSTATUS(status);
                    if shared.ran() {
                        let exit = exit_code_line(code, &mut line);
                        libc::write(STATUS_FD, exit.as_ptr().cast(), exit.len());
                    }
                    libc::_exit(code)
                }
                Some(status) if libc::WIFSIGNALED(status) => {
                    let signal = libc::WTERMSIG(status);
                    libc::signal(signal, libc::SIG_DFL);
                    libc::kill(reaper, signal);
                    libc::_exit(128 + signal)
                }
                _ => libc::_exit(255),
            }
        }
    }

    /// Writes the init's id maps (the sandbox's user and group inside, the sandbox
    /// user's outside; no `setgroups` in it) and makes it the OOM killer's first
    /// choice, while the init waits for that.
    ///
    /// # Safety
    /// Only in the reaper, right after the init's clone.
    unsafe fn map_init(&self, runtime: &Runtime, init: libc::pid_t) -> io::Result<()> {
        let mut path = [0u8; 64];
        let steps: [(&[u8], &[u8], u8); 4] = [
            (b"uid_map", runtime.uid_map.to_bytes(), STEP_ID_MAPS),
            (b"setgroups", b"deny", STEP_ID_MAPS),
            (b"gid_map", runtime.gid_map.to_bytes(), STEP_ID_MAPS),
            (b"oom_score_adj", b"1000", STEP_OOM_SCORE),
        ];
        for (file, content, step) in steps {
            // SAFETY: open/write/close of a NUL-terminated path in a stack buffer.
            if let Err(errno) = unsafe { write_file(proc_file(init, file, &mut path), content) } {
                return Err(self.fail_with(step, errno));
            }
        }
        Ok(())
    }

    /// Makes this process (and what it executes) the OOM killer's first choice in
    /// the sandbox. As root: `/proc/self` needs no dumpable flag then.
    ///
    /// # Safety
    /// Only in a forked child, as root or with `/proc/self` its own.
    unsafe fn raise_oom_score(&self) -> io::Result<()> {
        // SAFETY: open/write/close on a static path and a stack buffer.
        unsafe {
            let adj = libc::open(
                c"/proc/self/oom_score_adj".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            let written = if adj >= 0 {
                libc::write(adj, b"1000".as_ptr().cast(), 4)
            } else {
                -1
            };
            let error = self.fail_if(written != 4, STEP_OOM_SCORE);
            if adj >= 0 {
                libc::close(adj);
            }
            error
        }
    }

    /// The last step of a detached sandbox's bubblewrap process (a forked copy, as
    /// the sandbox user): be the OOM killer's first choice.
    ///
    /// # Safety
    /// Only in the forked child, right before the exec.
    unsafe fn become_bwrap(&self) -> io::Result<()> {
        // SAFETY: async-signal-safe system calls on our own stack and static strings.
        unsafe {
            // Raising one's own score needs no privilege, only /proc/self to be ours
            // again after the uid change made it root's (the exec of bubblewrap would
            // make the process dumpable anyway). This process's memory is its own
            // copy, shared with no other.
            libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
            self.raise_oom_score()
        }
    }

    fn fail_if(&self, failed: bool, step: u8) -> io::Result<()> {
        if failed { Err(self.fail(step)) } else { Ok(()) }
    }

    /// The current errno as the error, after telling the parent which step failed.
    fn fail(&self, step: u8) -> io::Error {
        let error = io::Error::last_os_error();
        self.report(step);
        error
    }

    fn fail_with(&self, step: u8, errno: i32) -> io::Error {
        self.report(step);
        io::Error::from_raw_os_error(errno)
    }

    fn report(&self, step: u8) {
        // SAFETY: write(2) of one byte from the stack to our pipe; errors are moot.
        unsafe {
            libc::write(self.status_fd, (&step as *const u8).cast(), 1);
        }
    }
}
