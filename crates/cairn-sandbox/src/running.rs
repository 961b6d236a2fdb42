//! An image sandbox running in the background (the release candidate under test):
//! [`start_image`] returns at once with a [`RunningSandbox`] handle, a supervisor
//! thread streams its output and enforces its wall clock, and dropping the handle
//! kills everything.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cgroup::{self, RUN_PREFIX, RunCgroup};
use crate::error::SandboxError;
use crate::image::{ImageSandboxSpec, image_args};
use crate::netns::NetworkNamespace;
use crate::procfs;
use crate::spawn::{self, Launch, Started};
use crate::spec::{Outcome, Stream};
use crate::status::StatusPipe;
use crate::supervise::{exited_within, finish};

/// Output lines a [`RunningSandbox`] keeps (the last ones), to explain a failure.
pub const TAIL_LINES: usize = 200;

/// How long [`start_image`] waits for the reaper to report the sandbox's init.
const INIT_WAIT: Duration = Duration::from_secs(10);

/// How often [`RunningSandbox::wait_port`] looks.
const PORT_POLL: Duration = Duration::from_millis(20);

/// Receives every output line of a background sandbox, on its supervisor thread.
pub type LineSink = Box<dyn FnMut(Stream, &[u8]) + Send>;

/// What [`RunningSandbox::wait_port`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortWait {
    /// A process of the sandbox listens on the port (on 127.0.0.1, `::1` or a
    /// wildcard address, in the sandbox's network namespace).
    Listening,
    /// Nothing of the sandbox listened on it before the timeout.
    TimedOut,
    /// The sandbox ended first (see [`RunningSandbox::wait`] and its tail).
    Exited,
}

type Tail = Arc<Mutex<VecDeque<(Stream, Vec<u8>)>>>;

/// One line of a sandbox's output tail: the stream it came from and its bytes.
pub type TailLine = (Stream, Vec<u8>);

/// A sandbox running in the background. Dropping it kills every process in it and
/// removes its cgroup.
#[derive(Debug)]
pub struct RunningSandbox {
    /// Host pid of the sandbox's init (pid 1 inside): its namespaces are the sandbox's,
    /// and its end is the end of every process in the sandbox.
    init_pid: i32,
    /// `None` once the sandbox is known to have ended (see [`start_image`]).
    init: Option<OwnedFd>,
    /// The pid namespace's identity, to find the command's processes from the host.
    pid_ns: Option<String>,
    /// cairn's child (the reaper) and a pidfd for it.
    reaper: u32,
    reaper_fd: Option<OwnedFd>,
    cgroup: Option<Arc<RunCgroup>>,
    tail: Tail,
    finished: Arc<AtomicBool>,
    supervisor: Option<JoinHandle<Result<Outcome, SandboxError>>>,
    /// How it ended, when that was known before [`start_image`] returned.
    ended: Option<Result<Outcome, SandboxError>>,
}

/// Starts `spec` in the background and returns once the reaper has reported the
/// sandbox's init (its root may still be being set up, its command still starting).
/// Every output line goes to `on_line` (if any, on a supervisor thread) and the last
/// [`TAIL_LINES`] are kept ([`RunningSandbox::tail`]). `spec.limits.wall_clock` still
/// applies: when it expires the sandbox is killed and [`RunningSandbox::wait`] says
/// [`crate::Exit::TimedOut`].
pub fn start_image(
    spec: &ImageSandboxSpec,
    on_line: Option<LineSink>,
) -> Result<RunningSandbox, SandboxError> {
    let args = image_args(spec, false)?;
    let limits = spec.limits;
    let cgroup = if spawn::is_root() {
        Some(Arc::new(RunCgroup::create(&limits, RUN_PREFIX)?))
    } else {
        None
    };
    let start = Instant::now();
    let launch = Launch {
        cgroup: cgroup.as_deref(),
        netns: None,
        log: None,
        block: None,
    };
    let Started { child, status } = spawn::start(args, &limits, launch)?;
    let reaper = child.id();
    let reaper_fd = i32::try_from(reaper).ok().and_then(cgroup::pidfd_open);
    let mut status = StatusPipe::new(status);
    let deadline = start + limits.wall_clock.min(INIT_WAIT);
    let tail: Tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let mut sink = tail_sink(Arc::clone(&tail), on_line);

    let Some((init_pid, init)) = status.init_pid(reaper, deadline) else {
        // The reaper ended (or never reported) before the sandbox existed, or the
        // init it named has ended (and been reaped) already: run the supervision to
        // its end here, for its error or its outcome.
        let reported = status.reported_init();
        let ended = finish(
            &limits,
            start,
            child,
            status,
            None,
            cgroup.as_deref(),
            &mut sink,
        );
        let message = tail_text(&tail);
        return match ended {
            Err(error) => Err(error),
            // A command that ran and ended at once (a server that exits before it
            // listens): a sandbox that started, and has ended.
            Ok(outcome) if let Some(init_pid) = reported => Ok(RunningSandbox {
                init_pid,
                init: None,
                pid_ns: None,
                reaper,
                reaper_fd,
                cgroup,
                tail,
                finished: Arc::new(AtomicBool::new(true)),
                supervisor: None,
                ended: Some(Ok(outcome)),
            }),
            Ok(outcome) => Err(SandboxError::Setup {
                status: -1,
                message: format!(
                    "the sandbox ended before it started ({}): {message}",
                    outcome.exit
                ),
            }),
        };
    };
    let pid_ns = procfs::pid_namespace(init_pid);
    let finished = Arc::new(AtomicBool::new(false));
    let supervisor_init = init.try_clone().map_err(|source| SandboxError::Io {
        action: "duplicate the init's pidfd",
        source,
    });
    let supervisor = supervisor_init.and_then(|supervisor_init| {
        let cgroup = cgroup.clone();
        let finished = Arc::clone(&finished);
        std::thread::Builder::new()
            .name("cairn-sandbox-image".into())
            .spawn(move || {
                let result = finish(
                    &limits,
                    start,
                    child,
                    status,
                    Some(supervisor_init),
                    cgroup.as_deref(),
                    &mut sink,
                );
                finished.store(true, Ordering::SeqCst);
                result
            })
            .map_err(|source| SandboxError::Io {
                action: "start the supervisor thread",
                source,
            })
    });
    let mut running = RunningSandbox {
        init_pid,
        init: Some(init),
        pid_ns,
        reaper,
        reaper_fd,
        cgroup,
        tail,
        finished,
        supervisor: None,
        ended: None,
    };
    match supervisor {
        Ok(handle) => {
            running.supervisor = Some(handle);
            Ok(running)
        }
        Err(error) => {
            // The child went with the closure: kill the sandbox and reap the reaper by
            // hand (the handle's drop has no thread to join).
            running.kill();
            if let Ok(pid) = i32::try_from(reaper) {
                let mut status = 0;
                // SAFETY: waitpid(2) on our own child, which nothing else will reap.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
            Err(error)
        }
    }
}

fn tail_sink(tail: Tail, mut on_line: Option<LineSink>) -> impl FnMut(Stream, &[u8]) {
    move |stream, line| {
        {
            let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back((stream, line.to_vec()));
        }
        if let Some(on_line) = on_line.as_mut() {
            on_line(stream, line);
        }
    }
}

fn tail_text(tail: &Tail) -> String {
    let tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
    tail.iter()
        .map(|(_, line)| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

impl RunningSandbox {
    /// Host pid of the sandbox's init (pid 1 inside). Its network namespace is the
    /// sandbox's; prefer [`RunningSandbox::network_namespace`], which cannot be
    /// fooled by a recycled pid.
    pub fn pid(&self) -> u32 {
        self.init_pid.unsigned_abs()
    }

    /// Whether the sandbox still runs (its init has not ended).
    pub fn is_running(&self) -> bool {
        !self.finished.load(Ordering::SeqCst)
            && self
                .init
                .as_ref()
                .is_some_and(|init| !exited_within(init, Duration::ZERO))
    }

    /// The last [`TAIL_LINES`] lines of output, oldest first.
    pub fn tail(&self) -> Vec<TailLine> {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.iter().cloned().collect()
    }

    /// The sandbox's network namespace, for [`crate::run_in_network_of`] and
    /// [`crate::in_network_namespace`]. An error once the sandbox has ended.
    pub fn network_namespace(&self) -> Result<NetworkNamespace, SandboxError> {
        let namespace = NetworkNamespace::of_process(self.pid())?;
        // Opened while the init was still alive, so the pid was still the init's.
        if self.is_running() {
            Ok(namespace)
        } else {
            Err(SandboxError::Io {
                action: "open the network namespace of the sandbox",
                source: std::io::Error::other("the sandbox has ended"),
            })
        }
    }

    /// Waits (polling, up to `timeout`) until a process of the sandbox listens on TCP
    /// `port` at 127.0.0.1 (or `::1`, or a wildcard address) in the sandbox's network
    /// namespace. It reads the kernel's socket tables and never connects, so the
    /// application sees no probe; a listener of anybody else (a host process when the
    /// network is [`crate::ImageNetwork::Host`], a joined step) does not count.
    pub fn wait_port(&self, port: u16, timeout: Duration) -> PortWait {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_running() {
                return PortWait::Exited;
            }
            if self.listens(port) {
                return PortWait::Listening;
            }
            let now = Instant::now();
            if now >= deadline {
                return PortWait::TimedOut;
            }
            std::thread::sleep(PORT_POLL.min(deadline - now));
        }
    }

    fn listens(&self, port: u16) -> bool {
        let Some(ns) = &self.pid_ns else {
            return false;
        };
        let inodes = procfs::listening_inodes(self.init_pid, port);
        // Read while the init lived: the table was the sandbox's namespace's.
        if inodes.is_empty() || !self.is_running() {
            return false;
        }
        procfs::members(ns, self.init_pid)
            .into_iter()
            .any(|pid| procfs::holds_socket(pid, &inodes))
    }

    /// Waits for the sandbox to end by itself (or by its wall clock) and returns how
    /// it ended.
    pub fn wait(mut self) -> Result<Outcome, SandboxError> {
        self.join()
    }

    /// Stops the sandbox: SIGTERM to every process of its command, then, if the
    /// sandbox has not ended within `grace`, SIGKILL to all of it. Returns once every
    /// process is gone and the cgroup removed. A command that ends on SIGTERM is
    /// usually `Exit::Code(143)`.
    pub fn stop(mut self, grace: Duration) -> Result<Outcome, SandboxError> {
        if self.is_running() {
            match &self.pid_ns {
                Some(ns) => {
                    procfs::signal_members(ns, self.init_pid, libc::SIGTERM);
                    if !self
                        .init
                        .as_ref()
                        .is_none_or(|init| exited_within(init, grace))
                    {
                        self.kill();
                    }
                }
                None => self.kill(),
            }
        }
        self.join()
    }

    /// [`RunningSandbox::stop`], then the last [`TAIL_LINES`] lines of output:
    /// read after the supervisor has drained the output to its end, so a command
    /// that printed and exited at once is not shown as having printed nothing.
    pub fn stop_with_tail(self, grace: Duration) -> Result<(Outcome, Vec<TailLine>), SandboxError> {
        let tail = Arc::clone(&self.tail);
        let outcome = self.stop(grace)?;
        let lines = tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        Ok((outcome, lines))
    }

    /// SIGKILL to the whole sandbox: its init (which takes the pid namespace with it)
    /// and everything in its cgroup but the reaper, which exits once it has reaped.
    fn kill(&self) {
        let init_killed = self.init.as_ref().is_some_and(cgroup::pidfd_kill);
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all(Some(self.reaper));
        } else if !init_killed && let Some(reaper) = &self.reaper_fd {
            cgroup::pidfd_kill(reaper);
        }
    }

    fn join(&mut self) -> Result<Outcome, SandboxError> {
        if let Some(ended) = self.ended.take() {
            return ended;
        }
        let Some(supervisor) = self.supervisor.take() else {
            return Err(SandboxError::Io {
                action: "wait for the sandbox",
                source: std::io::Error::other("already waited for"),
            });
        };
        match supervisor.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            self.kill();
            // Returns once every process is gone (the supervisor waits for that).
            let _ = supervisor.join();
        }
    }
}
