//! One run from start to finish: limits, start, output, wall clock, the end of every
//! process, and the verdict.

use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crate::args::{self, Net};
use crate::cgroup::{self, RunCgroup};
use crate::error::SandboxError;
use crate::etc;
use crate::netns::NetworkNamespace;
use crate::output::OutputPipe;
use crate::spawn::{self, Launch, Started};
use crate::spec::{Exit, Limits, Outcome, SandboxSpec, Stream, Usage};
use crate::status::StatusPipe;
use crate::usernet::UserNetwork;

/// How much of the output pipes one read takes. Nothing is read while `on_line`
/// works: a full pipe makes the command wait for it instead of growing memory.
const READ_BYTES: usize = 64 << 10;

/// If neither a pidfd nor the exit notifier thread can be had: how often the
/// supervisor looks for the reaper's exit.
const EXIT_CHECK: Duration = Duration::from_millis(5);

/// After the sandbox is gone, how long the output pipes may take to reach end of file
/// before the run stops waiting for them.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How much of the init's last stderr line is kept to explain a failed setup.
const DIAGNOSTIC_BYTES: usize = 4096;

/// How long the sandbox's init may take to end once the reaper is gone (normally it
/// is already reaped by then; this covers tearing down a big process tree).
const INIT_PATIENCE: Duration = Duration::from_secs(5);

/// Runs `spec.argv` in a fresh sandbox, calling `on_line` (on this thread) with every
/// line of its output, and returns how it ended once all its processes are gone.
///
/// `Err` means the command could not be run (an invalid spec, a limit that cannot be
/// enforced, a sandbox that could not be built); a command that fails, times out or
/// runs out of memory is an `Ok` with the matching [`Exit`].
pub fn run(
    spec: &SandboxSpec,
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Outcome, SandboxError> {
    run_spec(spec, None, on_line)
}

/// [`run`], but inside the network namespace of another sandbox (a running image, see
/// [`crate::RunningSandbox::network_namespace`]) instead of a new one: the command
/// reaches what listens on that sandbox's loopback, and nothing else (not the host's
/// loopback, not the host's network). Everything else is as in [`run`].
///
/// `spec.network` must be `false`. Entering the namespace needs root (cairn enters it
/// before dropping to the sandbox user); unprivileged, this is a [`SandboxError::Spawn`].
pub fn run_in_network_of(
    spec: &SandboxSpec,
    network: &NetworkNamespace,
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Outcome, SandboxError> {
    if spec.network {
        return Err(SandboxError::InvalidSpec {
            field: "network",
            problem: "must be false when joining another sandbox's network namespace",
            value: String::new(),
        });
    }
    run_spec(spec, Some(network), on_line)
}

fn run_spec(
    spec: &SandboxSpec,
    network: Option<&NetworkNamespace>,
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Outcome, SandboxError> {
    let setup = setup(spec, network)?;
    execute(setup.args, &spec.limits, setup.netns, on_line)
}

/// What a step's sandbox needs besides the cgroup: its arguments (bubblewrap's
/// command line, which [`crate::runtime`] reads), the network namespace it enters,
/// and what must stay alive until it has exited (the `/etc` copy it binds, the
/// user-mode network it uses).
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) args: Vec<std::ffi::OsString>,
    pub(crate) netns: Option<RawFd>,
    /// Held for the whole run: the copy is removed when no run uses it any more.
    pub(crate) _etc: std::sync::Arc<etc::EtcCopy>,
    /// Stopped (its slirp4netns ended) when the run is over.
    pub(crate) _usernet: Option<UserNetwork>,
}

/// Checks `spec` and prepares everything of its sandbox but the cgroup and the start.
pub(crate) fn setup(
    spec: &SandboxSpec,
    network: Option<&NetworkNamespace>,
) -> Result<Setup, SandboxError> {
    spec.validate()?;
    check_workspace(spec)?;
    let etc_mount_points: Vec<(&Path, bool)> = spec
        .read_only_binds
        .iter()
        .filter(|(_, dest)| dest.starts_with("/etc"))
        .map(|(source, dest)| (dest.as_path(), source.is_dir()))
        .collect();
    let etc = etc::current(&etc_mount_points)?;
    let usernet = if spec.network {
        Some(UserNetwork::start()?)
    } else {
        None
    };
    let resolv_conf = etc.usernet_resolv_conf();
    let (net, netns) = match (network, &usernet) {
        (Some(joined), _) => (Net::Joined, Some(joined.raw_fd())),
        (None, Some(usernet)) => (
            Net::UserMode {
                resolv_conf: &resolv_conf,
            },
            Some(usernet.raw_fd()),
        ),
        (None, None) => (Net::Own, None),
    };
    let system = match &spec.system_root {
        Some(root) => {
            if spawn::is_root() {
                crate::image::check_reachable(root)?;
            }
            let entries = crate::image::top_entries(root)?;
            check_mount_points(root, &entries, &spec.read_only_binds)?;
            Some(args::System { root, entries })
        }
        None => None,
    };
    let args = args::build(spec, etc.path(), net, system.as_ref());
    Ok(Setup {
        args,
        netns,
        _etc: etc,
        _usernet: usernet,
    })
}

/// A step's sandbox as bubblewrap's arguments (the description [`run`] carries out
/// itself), and what they name (the `/etc` copy), for running bubblewrap alone:
/// without cairn's reaper, run cgroup, limits and supervision, and without the
/// status descriptor. `cairn bench sandbox` times it beside [`run`]: what the same
/// set-up costs when bubblewrap does it.
#[derive(Debug)]
pub struct BubblewrapAlone {
    pub args: Vec<std::ffi::OsString>,
    _setup: Setup,
}

impl BubblewrapAlone {
    /// bubblewrap with these arguments, no environment, stdin from /dev/null, and
    /// as the sandbox user when cairn is root (as [`run`] starts it).
    pub fn command(&self) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new(args::bwrap_path());
        command
            .args(&self.args)
            .env_clear()
            .stdin(std::process::Stdio::null());
        if spawn::is_root() {
            command.uid(spawn::SANDBOX_UID).gid(spawn::SANDBOX_GID);
        }
        command
    }
}

/// [`BubblewrapAlone`] for `spec`, which must not ask for a network (the user-mode
/// network is joined by cairn's reaper, not by bubblewrap).
pub fn bubblewrap_alone(spec: &SandboxSpec) -> Result<BubblewrapAlone, SandboxError> {
    if spec.network {
        return Err(SandboxError::InvalidSpec {
            field: "network",
            problem: "must be false for bubblewrap alone (cairn joins the user-mode network)",
            value: String::new(),
        });
    }
    let mut setup = setup(spec, None)?;
    let mut args = std::mem::take(&mut setup.args);
    // bubblewrap's own options end at the first `--`; the command's may hold anything.
    let own = args.iter().position(|a| a == "--").unwrap_or(args.len());
    if let Some(at) = args[..own].iter().position(|a| a == "--json-status-fd") {
        args.drain(at..at + 2);
    }
    Ok(BubblewrapAlone {
        args,
        _setup: setup,
    })
}

/// Starts the sandbox `args` describe in a fresh run cgroup (as root) and supervises it to
/// the end, as [`run`] describes.
pub(crate) fn execute(
    args: Vec<std::ffi::OsString>,
    limits: &Limits,
    netns: Option<RawFd>,
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Outcome, SandboxError> {
    let cgroup = if spawn::is_root() {
        Some(RunCgroup::create(limits, cgroup::RUN_PREFIX)?)
    } else {
        None
    };
    let start = Instant::now();
    let launch = Launch {
        cgroup: cgroup.as_ref(),
        netns,
        log: None,
        block: None,
    };
    let Started { child, status } = spawn::start(args, limits, launch)?;
    finish(
        limits,
        start,
        child,
        StatusPipe::new(status),
        None,
        cgroup.as_ref(),
        on_line,
    )
}

/// Supervises a started sandbox to its end: output to `on_line`, the wall clock, and
/// every process gone before it returns. `init` if the caller already has it.
pub(crate) fn finish(
    limits: &Limits,
    start: Instant,
    child: Child,
    mut status: StatusPipe,
    init: Option<OwnedFd>,
    cgroup: Option<&RunCgroup>,
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Outcome, SandboxError> {
    let pid = child.id();
    let pidfd = i32::try_from(pid).ok().and_then(cgroup::pidfd_open);
    let mut killer = Killer {
        pid,
        pidfd,
        init,
        cgroup,
        done: false,
        reaper: Some(child),
    };
    let ended = supervise(limits, start, &mut status, &mut killer, on_line)?;
    let duration = start.elapsed();
    killer.done = true;
    drop(killer);

    let exit_code = status.exit_code();
    let (usage, oom_kills) = cgroup.map_or((Usage::default(), 0), |c| (c.usage(), c.oom_kills()));
    let exit = verdict(&ended, exit_code, oom_kills)?;
    Ok(Outcome {
        exit,
        duration,
        usage,
    })
}

fn check_workspace(spec: &SandboxSpec) -> Result<(), SandboxError> {
    let workspace = &spec.workspace;
    let meta = std::fs::symlink_metadata(workspace).map_err(|source| SandboxError::Workspace {
        path: workspace.clone(),
        action: "inspect it",
        source,
    })?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(SandboxError::Workspace {
            path: workspace.clone(),
            action: "use it (not a directory)",
            source: io::Error::from(ErrorKind::NotADirectory),
        })
    }
}

/// Kills the whole sandbox, through pidfds (a recycled pid is never hit) and the run
/// cgroup.
pub(crate) struct Killer<'a> {
    /// Our child: the reaper that started the sandbox's init (see [`crate::spawn`]).
    pub(crate) pid: u32,
    pub(crate) pidfd: Option<OwnedFd>,
    /// The pid namespace's init: when it has exited, so has everything in the sandbox.
    pub(crate) init: Option<OwnedFd>,
    pub(crate) cgroup: Option<&'a RunCgroup>,
    /// Set once every process of the sandbox is known to be gone.
    pub(crate) done: bool,
    /// Our child, until it is reaped: then its status is in hand. A caller that
    /// reaps it itself leaves this `None`.
    pub(crate) reaper: Option<Child>,
}

/// Leaving `run` early (an error, or a panic in `on_line`) kills the sandbox, and
/// reaps our child: no zombie is left behind on any path.
impl Drop for Killer<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.kill();
        }
        if let Some(mut child) = self.reaper.take() {
            // The reaper exits once the sandbox it reaps is gone; if it has not
            // within the patience, it is killed (the init and with it the sandbox
            // die too: parent-death signal).
            let gone = self
                .pidfd
                .as_ref()
                .is_none_or(|fd| exited_within(fd, INIT_PATIENCE));
            if !gone {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Killer<'_> {
    /// Killing the init ends the pid namespace: the kernel kills every process in it,
    /// and the reaper (our child) exits once it has reaped them.
    pub(crate) fn kill(&self) {
        let init_killed = self.init.as_ref().is_some_and(cgroup::pidfd_kill);
        if let Some(cgroup) = self.cgroup {
            cgroup.kill_all(Some(self.pid));
        }
        if !init_killed && self.cgroup.is_none() {
            // No handle on the sandbox itself: kill the reaper, which takes the init
            // (parent-death signal) and so the namespace with it.
            let signalled = self.pidfd.as_ref().is_some_and(cgroup::pidfd_kill);
            if !signalled && let Ok(pid) = i32::try_from(self.pid) {
                // SAFETY: kill(2) on our own unreaped child (no pidfd support).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    /// After the reaper is reaped: waits until no process of the sandbox is left.
    pub(crate) fn finish(&self) -> Result<(), SandboxError> {
        if let Some(init) = &self.init
            && !exited_within(init, INIT_PATIENCE)
        {
            cgroup::pidfd_kill(init);
            if !exited_within(init, INIT_PATIENCE) {
                return Err(SandboxError::Leftover {
                    path: format!("pid namespace of the sandbox of reaper {}", self.pid).into(),
                    count: 1,
                });
            }
        }
        match self.cgroup {
            Some(cgroup) => cgroup.drain(),
            None => Ok(()),
        }
    }
}

/// Whether the process behind `pidfd` has ended, waiting up to `patience`.
pub(crate) fn exited_within(pidfd: &OwnedFd, patience: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = Instant::now() + patience;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll(2) on one pollfd we own.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready > 0 {
            return true;
        }
        if ready == 0 || io::Error::last_os_error().kind() != ErrorKind::Interrupted {
            return false;
        }
    }
}

/// How the supervised part ended.
struct Ended {
    status: ExitStatus,
    timed_out: bool,
    /// The last line on stderr (the init's diagnostic when the setup fails).
    last_stderr: Vec<u8>,
}

/// The supervision loop, on the caller's thread (no thread of its own): one
/// `poll(2)` on the output pipes and the reaper's pidfd, until the reaper has
/// exited and both pipes have ended (or [`CLOSE_GRACE`] passed after the exit),
/// with the wall clock enforced in between. Our child stays in `killer` until it
/// is reaped, so every way out of here (an error, a panic in `on_line`) kills and
/// reaps it.
fn supervise(
    limits: &Limits,
    start: Instant,
    status: &mut StatusPipe,
    killer: &mut Killer<'_>,
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Ended, SandboxError> {
    let max = limits.max_line_bytes;
    let mut pipes: Vec<OutputPipe<Box<dyn ReadFd>>> = Vec::with_capacity(2);
    if let Some(child) = killer.reaper.as_mut() {
        if let Some(out) = child.stdout.take() {
            pipes.push(OutputPipe::new(Box::new(out), Stream::Stdout, max));
        }
        if let Some(err) = child.stderr.take() {
            pipes.push(OutputPipe::new(Box::new(err), Stream::Stderr, max));
        }
    }

    let deadline = start + limits.wall_clock;
    if killer.init.is_none() {
        killer.init = status.init(killer.pid, deadline);
    }

    // What becomes readable when our child exits: its pidfd, or (kernels before 5.3,
    // valgrind) an eventfd a thread signals once the child has exited.
    let notifier = match killer.pidfd {
        Some(_) => None,
        None => exit_notifier(killer.pid).ok(),
    };
    let exit_fd = killer
        .pidfd
        .as_ref()
        .or(notifier.as_ref())
        .map(AsRawFd::as_raw_fd);

    let mut buffer = vec![0u8; READ_BYTES];
    let mut timed_out = false;
    let mut exited: Option<(io::Result<ExitStatus>, Instant)> = None;
    let mut last_stderr = Vec::new();
    let mut polled: Vec<libc::pollfd> = Vec::with_capacity(3);
    loop {
        let open: Vec<usize> = (0..pipes.len())
            .filter(|&i| pipes[i].fd().is_some())
            .collect();
        if exited.is_some() && open.is_empty() {
            break;
        }
        let now = Instant::now();
        if exited.is_none() && !timed_out && now >= deadline {
            timed_out = true;
            killer.kill();
        }
        let mut wait = match &exited {
            Some((_, at)) => (*at + CLOSE_GRACE).saturating_duration_since(now),
            None if timed_out => Duration::from_millis(100),
            None => deadline.saturating_duration_since(now),
        };
        polled.clear();
        polled.extend(
            open.iter()
                .filter_map(|&i| pipes[i].fd())
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                }),
        );
        let watch_exit = exited.is_none();
        match (exit_fd, watch_exit) {
            (Some(fd), true) => polled.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            }),
            (None, true) => wait = wait.min(EXIT_CHECK),
            _ => {}
        }
        // Rounded up: a deadline a fraction of a millisecond away is not a busy loop.
        let millis =
            libc::c_int::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll(2) on an array of pollfds we own, its length given.
        let ready =
            unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(SandboxError::Io {
                action: "wait for the sandbox's output and exit",
                source: error,
            });
        }
        for (slot, &i) in open.iter().enumerate() {
            if polled[slot].revents == 0 {
                continue;
            }
            let pipe = &mut pipes[i];
            let stream = pipe.stream();
            pipe.read_once(&mut buffer, &mut |line| {
                if stream == Stream::Stderr {
                    last_stderr.clear();
                    let keep = line.len().min(DIAGNOSTIC_BYTES);
                    last_stderr.extend_from_slice(&line[..keep]);
                }
                on_line(stream, &line);
            });
        }
        let exit_ready = match (exit_fd, watch_exit) {
            (Some(_), true) => polled.last().is_some_and(|p| p.revents != 0),
            (None, true) => true,
            _ => false,
        };
        if exit_ready && let Some(child) = killer.reaper.as_mut() {
            let reaped = match child.try_wait() {
                Ok(Some(status)) => Some(Ok(status)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            };
            if let Some(status) = reaped {
                killer.reaper = None;
                // The pid namespace dies with its init; wait until it is gone.
                killer.finish()?;
                exited = Some((status, Instant::now()));
                continue;
            }
        }
        if ready == 0 {
            if exited.is_some() {
                // Every sandbox process is gone, yet something else still holds
                // the pipes (a descriptor leaked by another fork of cairn's): stop
                // waiting for them.
                break;
            }
            if timed_out {
                // Still not over after SIGKILL: repeat it.
                killer.kill();
            }
        }
    }

    match exited {
        Some((Ok(status), _)) => Ok(Ended {
            status,
            timed_out,
            last_stderr,
        }),
        Some((Err(source), _)) => Err(SandboxError::Io {
            action: "wait for the sandbox's reaper",
            source,
        }),
        None => Err(SandboxError::Io {
            action: "wait for the sandbox's reaper",
            source: io::Error::other("the supervision ended without the reaper's status"),
        }),
    }
}

/// Where pidfds are missing: an eventfd that becomes readable once the child `pid`
/// has exited, signalled by a thread that waits for that exit without reaping
/// (`WNOWAIT`): the child stays for the supervisor to reap, as with a pidfd.
fn exit_notifier(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::id_t::from(pid);
    // SAFETY: eventfd(2) returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let ours = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let theirs = ours.try_clone()?;
    std::thread::Builder::new()
        .name("cairn-sandbox-wait".into())
        .spawn(move || {
            loop {
                // SAFETY: waitid(2) fills a zeroed siginfo_t we own.
                let rc = unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
                };
                if rc == 0 || io::Error::last_os_error().kind() != ErrorKind::Interrupted {
                    break;
                }
            }
            let one: u64 = 1;
            // SAFETY: write(2) of eight bytes from a stack value to our eventfd.
            unsafe { libc::write(theirs.as_raw_fd(), (&one as *const u64).cast(), 8) };
        })?;
    Ok(ours)
}

/// A child's output pipe: read, and polled by its descriptor.
trait ReadFd: std::io::Read + std::os::fd::AsFd + Send {}
impl<T: std::io::Read + std::os::fd::AsFd + Send> ReadFd for T {}

fn verdict(ended: &Ended, exit_code: Option<i32>, oom_kills: u64) -> Result<Exit, SandboxError> {
    if ended.timed_out {
        return Ok(Exit::TimedOut);
    }
    match exit_code {
        Some(code) if code != 0 && oom_kills > 0 => Ok(Exit::OutOfMemory),
        Some(code) => Ok(Exit::Code(code)),
        // The sandbox was killed from outside before the command ended.
        None if oom_kills > 0 => Ok(Exit::OutOfMemory),
        None if ended.status.signal().is_some() => {
            Ok(Exit::Signal(ended.status.signal().unwrap_or(0)))
        }
        // The command was never executed: the sandbox's set-up failed. (A program
        // that is missing or not executable is a failed command, 127 or 126 as a
        // shell reports it: the init writes why and the reaper that exit code.)
        None => {
            // Only the sandbox's init has written to stderr so far, so its last line
            // is its diagnostic, not something the command could forge.
            let message = String::from_utf8_lossy(&ended.last_stderr).into_owned();
            Err(SandboxError::Setup {
                status: ended.status.code().unwrap_or(-1),
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(code: i32, stderr: &str) -> Ended {
        Ended {
            status: ExitStatus::from_raw(code << 8),
            timed_out: false,
            last_stderr: stderr.as_bytes().to_vec(),
        }
    }

    /// Without pidfds, the exit notifier's eventfd becomes readable when the child
    /// exits, and leaves it to be reaped by the supervisor (its status intact).
    #[test]
    fn the_exit_notifier_signals_without_reaping() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 0.2; exit 7"])
            .spawn()
            .expect("spawn sh");
        let notifier = exit_notifier(child.id()).expect("exit notifier");
        let mut poll = libc::pollfd {
            fd: notifier.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd we own.
        assert_eq!(
            unsafe { libc::poll(&mut poll, 1, 0) },
            0,
            "not before the exit"
        );
        // SAFETY: as above.
        assert_eq!(unsafe { libc::poll(&mut poll, 1, 10_000) }, 1);
        let status = child.try_wait().expect("try_wait");
        assert_eq!(status.and_then(|s| s.code()), Some(7));
    }

    #[test]
    fn verdicts() {
        let ok = |e: Result<Exit, SandboxError>| e.ok();
        assert_eq!(ok(verdict(&ended(3, ""), Some(3), 0)), Some(Exit::Code(3)));
        assert_eq!(
            ok(verdict(&ended(137, ""), Some(137), 1)),
            Some(Exit::OutOfMemory)
        );
        assert_eq!(ok(verdict(&ended(0, ""), Some(0), 1)), Some(Exit::Code(0)));
        assert!(matches!(
            verdict(
                &ended(1, "cairn-sandbox: can't bind /x: No such file or directory"),
                None,
                0
            ),
            Err(SandboxError::Setup { status: 1, .. })
        ));
        let mut timed = ended(0, "");
        timed.timed_out = true;
        assert_eq!(ok(verdict(&timed, Some(0), 0)), Some(Exit::TimedOut));
    }
}

/// A read-only bind (a chain's tool) below one of a build image's top-level
/// directories needs its mount point in the image: the image is bound
/// read-only, so the sandbox's init cannot make it. Refused here, naming both,
/// rather than left to the init's "creating the mount point".
fn check_mount_points(
    root: &Path,
    entries: &[crate::args::TopEntry],
    binds: &[(std::path::PathBuf, std::path::PathBuf)],
) -> Result<(), SandboxError> {
    for (source, dest) in binds {
        let Ok(rel) = dest.strip_prefix("/") else {
            continue;
        };
        let Some(std::path::Component::Normal(top)) = rel.components().next() else {
            continue;
        };
        let from_image = entries
            .iter()
            .any(|e| matches!(e, crate::args::TopEntry::Bind(name) if name == top));
        if from_image && top != "etc" && std::fs::symlink_metadata(root.join(rel)).is_err() {
            return Err(SandboxError::InvalidSpec {
                field: "read_only_binds",
                problem: "has no mount point in the build image (its directories are read-only): \
                          mount the tool elsewhere, or use a build image that carries it",
                value: format!("{} -> {}", source.display(), dest.display()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod mount_point_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::args::TopEntry;

    #[test]
    fn a_tool_below_a_build_image_directory_needs_its_mount_point() {
        let img = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(img.path().join("opt/present")).unwrap();
        let entries = vec![TopEntry::Bind("opt".into()), TopEntry::Bind("usr".into())];
        let bind = |dest: &str| vec![("/host/tool".into(), dest.into())];
        assert!(check_mount_points(img.path(), &entries, &bind("/opt/present")).is_ok());
        // Not below an image directory: the sandbox's own root makes it.
        assert!(check_mount_points(img.path(), &entries, &bind("/toolchains/rust")).is_ok());
        let e = check_mount_points(img.path(), &entries, &bind("/opt/rust"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no mount point in the build image") && e.contains("/opt/rust"),
            "{e}"
        );
    }
}
