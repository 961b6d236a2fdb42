//! A step's sandbox started ahead of its turn and held before its command ([`prepare`]):
//! the run cgroup, the limits, the namespaces and the mounts are set up as for
//! [`crate::run`], then the sandbox's init waits for a line from cairn until
//! [`PreparedSandbox::release`] writes it. Dropped unreleased, it is torn down: every
//! process killed and reaped, the cgroup removed, the command never run.
//!
//! The wait is the init's last step before it starts the command ([`crate::runtime`]):
//! with every capability dropped, its life bound to the reaper's (which dies with
//! cairn), it reads [`BLOCK_FD`](crate::args::BLOCK_FD), closes it, and starts the
//! step's argv as a direct run does (the same descriptors, environment, exit code and
//! signals). Nothing of the sandbox's runs while it is held: not even its `/bin/sh`.
//! End of file (cairn gone, or a discard) ends the init without running anything
//! ([`NOT_RELEASED`]). While held, the init is named `cairn-held`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::cgroup::{self, RunCgroup};
use crate::error::SandboxError;
use crate::spawn::{self, Launch, Started};
use crate::spec::{Limits, Outcome, SandboxSpec, Stream};
use crate::status::StatusPipe;
use crate::supervise::{self, Killer, Setup};

/// How long a discard waits for the reaper to name the sandbox's init (it does so
/// once it has written the init's id maps; a reaper that failed ends the wait at
/// once).
const INIT_WAIT: Duration = Duration::from_secs(2);

/// A sandbox started by [`prepare`], held before its command. [`release`] runs the
/// command; dropping it unreleased kills and removes the sandbox (see the module).
///
/// [`release`]: PreparedSandbox::release
#[derive(Debug)]
pub struct PreparedSandbox {
    limits: Limits,
    /// Our child, the reaper (with the sandbox's init below it); `None` once released
    /// or torn down.
    child: Option<Child>,
    status: Option<OwnedFd>,
    /// cairn's writing end of the release channel.
    release: Option<OwnedFd>,
    /// Dropped after the child is gone (field order: see `Drop`).
    cgroup: Option<RunCgroup>,
    /// What its mounts and network use (the `/etc` copy, the user-mode network),
    /// kept until it has ended.
    _setup: Setup,
}

/// Starts `spec`'s sandbox and holds it before its command: everything [`crate::run`]
/// sets up (checks, `/etc` copy, network, cgroup with its limits, namespaces, mounts)
/// happens now, in the background; [`PreparedSandbox::release`] runs the command and
/// supervises it as [`crate::run`] does, its wall-clock limit counted from the release.
///
/// The sandbox dies with the thread that called this (its reaper's parent-death
/// signal is bound to the forking thread, as for [`crate::run`]): that thread must
/// outlive it, released or not. Any thread may release or drop it.
pub fn prepare(spec: &SandboxSpec) -> Result<PreparedSandbox, SandboxError> {
    let mut setup = supervise::setup(spec, None)?;
    let (block, release) = release_channel()?;
    let cgroup = if spawn::is_root() {
        Some(RunCgroup::create(&spec.limits, cgroup::RUN_PREFIX)?)
    } else {
        None
    };
    let args = std::mem::take(&mut setup.args);
    let launch = Launch {
        cgroup: cgroup.as_ref(),
        netns: setup.netns,
        log: None,
        block: Some(block.as_raw_fd()),
    };
    let Started { child, status } = spawn::start(args, &spec.limits, launch)?;
    // The child has its copy (the held init reads it); ours is not needed.
    drop(block);
    Ok(PreparedSandbox {
        limits: spec.limits,
        child: Some(child),
        status: Some(status),
        release: Some(release),
        cgroup,
        _setup: setup,
    })
}

impl PreparedSandbox {
    /// The host pid of cairn's child for this sandbox (the reaper, which the sandbox's
    /// init runs below); `None` once released.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Lets the command run and supervises it to its end, exactly as [`crate::run`]:
    /// `on_line` with every line, the wall-clock limit counted from now. A sandbox
    /// whose set-up failed meanwhile reports that failure here, as [`crate::run`]
    /// would have.
    pub fn release(
        mut self,
        on_line: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Outcome, SandboxError> {
        let (Some(child), Some(status), Some(release)) =
            (self.child.take(), self.status.take(), self.release.take())
        else {
            return Err(SandboxError::Io {
                action: "release a prepared sandbox",
                source: io::Error::other("it was already released"),
            });
        };
        let start = Instant::now();
        // A sandbox whose set-up already failed has no reader: the send fails (EPIPE,
        // without a SIGPIPE) and the supervision below reports why.
        // SAFETY: send(2) of one line from a static buffer on our own socket.
        let _ = unsafe {
            libc::send(
                release.as_raw_fd(),
                b"go\n".as_ptr().cast(),
                3,
                libc::MSG_NOSIGNAL,
            )
        };
        drop(release);
        supervise::finish(
            &self.limits,
            start,
            child,
            StatusPipe::new(status),
            None,
            self.cgroup.as_ref(),
            on_line,
        )
    }

    /// Kills whatever of the sandbox exists, reaps it and empties its cgroup (the
    /// release channel is closed after that, which alone would end the held init
    /// without running the command).
    fn discard(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        let init = self
            .status
            .take()
            .and_then(|status| StatusPipe::new(status).init(pid, Instant::now() + INIT_WAIT));
        let mut killer = Killer {
            pid,
            pidfd: i32::try_from(pid).ok().and_then(cgroup::pidfd_open),
            init,
            cgroup: self.cgroup.as_ref(),
            done: false,
            // Reaped right below.
            reaper: None,
        };
        killer.kill();
        let _ = child.wait();
        let _ = killer.finish();
        killer.done = true;
    }
}

impl Drop for PreparedSandbox {
    fn drop(&mut self) {
        self.discard();
        // Then the fields: the release channel, the cgroup (removed, after a last
        // drain), the /etc copy and network.
    }
}

/// The exit code of a held sandbox whose release channel reached end of file (cairn
/// gone, or the sandbox discarded): its command never ran.
pub const NOT_RELEASED: i32 = 125;

/// The release channel (a stream socket pair, so that releasing a sandbox that
/// is gone is an error, never a SIGPIPE): the end the sandbox reads (numbered above
/// 4, so that it survives the child's renumbering to
/// [`BLOCK_FD`](crate::args::BLOCK_FD)) and cairn's.
fn release_channel() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let error = |action| move |source| SandboxError::Io { action, source };
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair(2) fills the two-element array on success.
    let made = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if made != 0 {
        return Err(error("create the release channel")(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl(2) F_DUPFD_CLOEXEC on our fd returns a new fd or -1.
    let high = unsafe { libc::fcntl(read.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if high < 0 {
        return Err(error("renumber the release channel")(
            io::Error::last_os_error(),
        ));
    }
    drop(read);
    // SAFETY: the kernel just returned it; nothing else owns it.
    Ok((unsafe { OwnedFd::from_raw_fd(high) }, write))
}
