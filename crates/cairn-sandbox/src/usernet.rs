//! The network of a dependency-fetch sandbox ([`crate::SandboxSpec::network`]): a
//! network namespace of cairn's whose only way out is slirp4netns, a user-mode TCP/IP
//! stack running on the host that opens an ordinary host socket for each connection
//! the sandbox makes.
//!
//! What the sandbox reaches: any address the host can reach (the internet, the host's
//! non-loopback addresses, its neighbours), and slirp4netns's DNS forwarder at
//! [`DNS_ADDRESS`] (to the host's `resolv.conf` servers), which is the sandbox's
//! `/etc/resolv.conf`. What it does not: the host's loopback (its own `127.0.0.1` is the
//! namespace's, and slirp4netns runs with `--disable-host-loopback`, so the gateway
//! `10.0.2.2` refuses too), link-local `169.254.0.0/16` (the cloud metadata service at
//! `169.254.169.254`) and the other metadata addresses in [`BLOCKED`]: the namespace
//! routes them to `prohibit` (connect fails at once with `EACCES`). No IPv6.
//!
//! Why the sandbox cannot lift the block: cairn (root) creates the namespace itself,
//! so it belongs to the host's user namespace; the sandbox runs as an unprivileged
//! host user in a user namespace of its own (created with its init), where no
//! capability it could hold counts for this network namespace. cairn's child joins
//! the namespace (like [`crate::run_in_network_of`]) before it drops root.
//! slirp4netns runs with `--enable-sandbox` (its own mount namespace, capabilities
//! dropped) and `--enable-seccomp`, and ends when cairn closes its exit pipe (or dies).
//!
//! Fail closed: without root or without slirp4netns, a sandbox with network is an
//! error, never the host's network.

use std::fs::File;
use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cgroup::{pidfd_kill, pidfd_open};
use crate::error::SandboxError;
use crate::spawn::is_root;
use crate::supervise::exited_within;

/// Where Debian installs slirp4netns. Deliberately not looked up in `PATH`.
pub const SLIRP4NETNS: &str = "/usr/bin/slirp4netns";

/// slirp4netns's DNS forwarder inside the namespace (its default network 10.0.2.0/24).
pub(crate) const DNS_ADDRESS: &str = "10.0.2.3";

/// Destinations the sandbox can never reach, as `prohibit` routes: link-local (AWS,
/// GCP, Azure, OpenStack and DigitalOcean metadata at 169.254.169.254, ECS task
/// metadata at 169.254.170.2) and Alibaba Cloud's metadata address.
pub(crate) const BLOCKED: &[([u8; 4], u8)] = &[([169, 254, 0, 0], 16), ([100, 100, 100, 200], 32)];

/// How long slirp4netns may take to configure the namespace.
const READY_WAIT: Duration = Duration::from_secs(10);
/// How long slirp4netns may take to exit once its exit pipe is closed.
const EXIT_WAIT: Duration = Duration::from_secs(2);
/// How much of slirp4netns's stderr is kept to explain a failure.
const DIAGNOSTIC_BYTES: usize = 2048;

/// The slirp4netns binary: [`SLIRP4NETNS`], or in this crate's unit tests whatever a
/// test sets (to show that a missing one is refused).
fn slirp_path() -> PathBuf {
    #[cfg(test)]
    if let Some(path) = tests::OVERRIDE.with(|o| o.borrow().clone()) {
        return path;
    }
    PathBuf::from(SLIRP4NETNS)
}

/// A fetch sandbox's network namespace with slirp4netns serving it. Dropping it stops
/// slirp4netns (the namespace itself goes with its last user).
#[derive(Debug)]
pub(crate) struct UserNetwork {
    netns: OwnedFd,
    slirp: Child,
    /// Closing it tells slirp4netns to exit.
    exit: Option<OwnedFd>,
}

impl UserNetwork {
    /// Creates the namespace (loopback up, [`BLOCKED`] prohibited) and starts
    /// slirp4netns on it; returns once slirp4netns reports it configured.
    pub(crate) fn start() -> Result<UserNetwork, SandboxError> {
        let slirp_path = slirp_path();
        let usable = std::fs::metadata(&slirp_path).and_then(|meta| {
            if meta.is_file() {
                Ok(())
            } else {
                Err(io::Error::other("not a regular file"))
            }
        });
        if let Err(source) = usable {
            return Err(SandboxError::ToolMissing {
                tool: "slirp4netns",
                package: "slirp4netns",
                path: slirp_path,
                source,
            });
        }
        if !is_root() {
            return Err(SandboxError::Network {
                action: "create the network namespace",
                detail: "a sandbox with network needs cairn to run as root (its network \
                         namespace must be out of the sandbox's control); it never falls \
                         back to the host's network"
                    .into(),
            });
        }
        let netns = new_namespace()?;
        let (ready_read, ready_write) = pipe()?;
        let (exit_read, exit_write) = pipe()?;
        // Above the descriptors the child moves them to, so no dup2 overwrites another.
        let netns_high = dup_high(&netns)?;
        let ready_high = dup_high(&ready_write)?;
        let exit_high = dup_high(&exit_read)?;
        let (n, r, e) = (
            netns_high.as_raw_fd(),
            ready_high.as_raw_fd(),
            exit_high.as_raw_fd(),
        );
        let mut command = Command::new(&slirp_path);
        command
            .args([
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--enable-sandbox",
                "--enable-seccomp",
                "--netns-type=path",
                "--ready-fd=4",
                "--exit-fd=5",
                "/proc/self/fd/3",
                "tap0",
            ])
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: dup2(2) and close_range(2) only, on descriptors that stay open until
        // the spawn returns; dup2 clears close-on-exec on the targets.
        unsafe {
            command.pre_exec(move || {
                for (from, to) in [(n, 3), (r, 4), (e, 5)] {
                    if libc::dup2(from, to) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                // Nothing else cairn inherited reaches slirp4netns (best effort: it is
                // host-side and trusted; kernels before 5.11 lack the flag).
                libc::syscall(
                    libc::SYS_close_range,
                    6 as libc::c_uint,
                    libc::c_uint::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                Ok(())
            });
        }
        let spawned = command.spawn();
        drop((netns_high, ready_high, exit_high, ready_write, exit_read));
        let mut slirp = spawned.map_err(|source| match source.kind() {
            ErrorKind::NotFound => SandboxError::ToolMissing {
                tool: "slirp4netns",
                package: "slirp4netns",
                path: slirp_path.clone(),
                source,
            },
            _ => SandboxError::Network {
                action: "start slirp4netns",
                detail: source.to_string(),
            },
        })?;
        let stderr = keep_tail(slirp.stderr.take());
        let network = UserNetwork {
            netns,
            slirp,
            exit: Some(exit_write),
        };
        if wait_ready(&ready_read) {
            return Ok(network);
        }
        // slirp4netns is gone once this returns, so its stderr reaches its end.
        drop(network);
        let tail = stderr
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        let said = String::from_utf8_lossy(&tail).trim().to_owned();
        Err(SandboxError::Network {
            action: "configure the namespace with slirp4netns",
            detail: if said.is_empty() {
                "slirp4netns did not report ready".into()
            } else {
                said
            },
        })
    }

    /// The namespace, for the sandbox's child to join (see [`crate::spawn`]).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.netns.as_raw_fd()
    }
}

impl Drop for UserNetwork {
    fn drop(&mut self) {
        self.exit = None;
        let pidfd = i32::try_from(self.slirp.id()).ok().and_then(pidfd_open);
        if let Some(pidfd) = &pidfd
            && !exited_within(pidfd, EXIT_WAIT)
        {
            pidfd_kill(pidfd);
        } else if pidfd.is_none() {
            let _ = self.slirp.kill();
        }
        let _ = self.slirp.wait();
    }
}

/// Whether slirp4netns wrote to its ready pipe within [`READY_WAIT`] (end of file:
/// it exited).
fn wait_ready(ready: &OwnedFd) -> bool {
    let deadline = Instant::now() + READY_WAIT;
    loop {
        let mut poll = libc::pollfd {
            fd: ready.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll(2) on one pollfd we own.
        let polled = unsafe { libc::poll(&mut poll, 1, millis) };
        if polled < 0 && io::Error::last_os_error().kind() == ErrorKind::Interrupted {
            continue;
        }
        if polled <= 0 {
            return false;
        }
        let mut byte = [0u8; 1];
        // SAFETY: read(2) of one byte into our stack buffer.
        let read = unsafe { libc::read(ready.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
        return read == 1;
    }
}

/// Reads `stderr` to its end on a thread, which returns the last [`DIAGNOSTIC_BYTES`].
fn keep_tail(stderr: Option<std::process::ChildStderr>) -> Option<JoinHandle<Vec<u8>>> {
    let mut stderr = stderr?;
    std::thread::Builder::new()
        .name("cairn-slirp-stderr".into())
        .spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                kept.extend_from_slice(&buf[..n]);
                let excess = kept.len().saturating_sub(DIAGNOSTIC_BYTES);
                kept.drain(..excess);
            }
            kept
        })
        .ok()
}

/// A new network namespace owned by the host's user namespace, made on a thread of
/// its own (only that thread enters it): loopback up, [`BLOCKED`] prohibited.
fn new_namespace() -> Result<OwnedFd, SandboxError> {
    let fail = |action: &'static str, source: io::Error| SandboxError::Network {
        action,
        detail: source.to_string(),
    };
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("cairn-sandbox-usernet".into())
            .spawn_scoped(scope, || {
                // SAFETY: unshare(2) of this thread's network namespace; the thread
                // ends with the scope, the rest of cairn stays in the host's.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    return Err(fail(
                        "create the network namespace",
                        io::Error::last_os_error(),
                    ));
                }
                let netns = File::open("/proc/thread-self/ns/net")
                    .map_err(|e| fail("open the new network namespace", e))?;
                let route = netlink_socket().map_err(|e| fail("open a netlink socket", e))?;
                set_loopback_up(&route).map_err(|e| fail("bring up loopback", e))?;
                for &(address, prefix) in BLOCKED {
                    add_prohibit_route(&route, address, prefix)
                        .map_err(|e| fail("add a prohibit route", e))?;
                }
                Ok(OwnedFd::from(netns))
            })
            .map_err(|e| fail("start a thread for the network namespace", e))?;
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn netlink_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2); the result is checked and owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ip link set lo up` (loopback is interface 1 in a new namespace).
fn set_loopback_up(socket: &OwnedFd) -> io::Result<()> {
    let iff_up = u32::try_from(libc::IFF_UP).unwrap_or(1);
    let mut body = Vec::with_capacity(16);
    body.push(libc::AF_UNSPEC as u8); // ifi_family
    body.push(0); // padding
    body.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    body.extend_from_slice(&1i32.to_ne_bytes()); // ifi_index
    body.extend_from_slice(&iff_up.to_ne_bytes()); // ifi_flags
    body.extend_from_slice(&iff_up.to_ne_bytes()); // ifi_change
    netlink_request(socket, libc::RTM_NEWLINK, 0, &body)
}

/// `ip route add prohibit ADDRESS/PREFIX` in the main table.
fn add_prohibit_route(socket: &OwnedFd, address: [u8; 4], prefix: u8) -> io::Result<()> {
    let mut body = vec![
        libc::AF_INET as u8,     // rtm_family
        prefix,                  // rtm_dst_len
        0,                       // rtm_src_len
        0,                       // rtm_tos
        libc::RT_TABLE_MAIN,     // rtm_table
        libc::RTPROT_STATIC,     // rtm_protocol
        libc::RT_SCOPE_UNIVERSE, // rtm_scope
        libc::RTN_PROHIBIT,      // rtm_type
    ];
    body.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
    body.extend_from_slice(&8u16.to_ne_bytes()); // rta_len
    body.extend_from_slice(&libc::RTA_DST.to_ne_bytes()); // rta_type
    body.extend_from_slice(&address);
    let flags = libc::NLM_F_CREATE | libc::NLM_F_EXCL;
    netlink_request(socket, libc::RTM_NEWROUTE, flags, &body)
}

/// Sends one rtnetlink request and waits for its acknowledgement.
fn netlink_request(socket: &OwnedFd, kind: u16, flags: libc::c_int, body: &[u8]) -> io::Result<()> {
    let length = u32::try_from(16 + body.len()).map_err(io::Error::other)?;
    let flags =
        u16::try_from(libc::NLM_F_REQUEST | libc::NLM_F_ACK | flags).map_err(io::Error::other)?;
    let mut message = Vec::with_capacity(16 + body.len());
    message.extend_from_slice(&length.to_ne_bytes());
    message.extend_from_slice(&kind.to_ne_bytes());
    message.extend_from_slice(&flags.to_ne_bytes());
    message.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    message.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
    message.extend_from_slice(body);
    // SAFETY: send(2) of our buffer on a socket we own.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut reply = [0u8; 4096];
    // SAFETY: recv(2) into our stack buffer.
    let got = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            reply.as_mut_ptr().cast(),
            reply.len(),
            0,
        )
    };
    let got = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
    // nlmsghdr (16 bytes), then for NLMSG_ERROR the error code (0: acknowledged).
    let kind = reply.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let code = reply
        .get(16..20.min(got))
        .filter(|b| b.len() == 4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (kind, code) {
        (Some(k), Some(0)) if i32::from(k) == libc::NLMSG_ERROR => Ok(()),
        (Some(k), Some(code)) if i32::from(k) == libc::NLMSG_ERROR => {
            Err(io::Error::from_raw_os_error(-code))
        }
        _ => Err(io::Error::other("unexpected rtnetlink reply")),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2(2) fills the two-element array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SandboxError::Io {
            action: "create a pipe for slirp4netns",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec copy of `fd` numbered 10 or above.
fn dup_high(fd: &OwnedFd) -> Result<OwnedFd, SandboxError> {
    // SAFETY: fcntl(2) F_DUPFD_CLOEXEC on a descriptor we own.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if copy < 0 {
        return Err(SandboxError::Io {
            action: "duplicate a descriptor for slirp4netns",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// The bind source of the sandbox's `/etc/resolv.conf` when it has a user-mode network.
pub(crate) fn resolv_conf_text() -> String {
    format!("# cairn: slirp4netns's DNS forwarder\nnameserver {DNS_ADDRESS}\n")
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        pub(crate) static OVERRIDE: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
    }

    #[test]
    fn without_root_a_network_is_refused_never_the_host_network() {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) into a two-element array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child drops to the sandbox user, tries, reports and _exits.
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            // SAFETY: plain system calls in the forked child, which never returns.
            unsafe {
                let dropped =
                    libc::setgid(crate::SANDBOX_GID) == 0 && libc::setuid(crate::SANDBOX_UID) == 0;
                let text = match (dropped, UserNetwork::start()) {
                    (false, _) => "could not drop root".to_owned(),
                    (true, Ok(_)) => "STARTED".to_owned(),
                    (true, Err(e)) => e.to_string(),
                };
                libc::write(fds[1], text.as_ptr().cast(), text.len());
                libc::_exit(0);
            }
        }
        // SAFETY: our copy of the write end; waitpid(2) on our child.
        unsafe {
            libc::close(fds[1]);
            let mut status = 0;
            assert_eq!(libc::waitpid(child, &mut status, 0), child);
        }
        let mut text = String::new();
        // SAFETY: the read end is ours alone.
        let mut pipe = unsafe { File::from_raw_fd(fds[0]) };
        pipe.read_to_string(&mut text).unwrap();
        println!("refused: {text}");
        assert!(text.contains("needs cairn to run as root"), "{text}");
        assert!(
            text.contains("never falls back to the host's network"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_slirp4netns_is_an_error_naming_it_never_the_host_network() {
        let ws = tempfile::tempdir().unwrap();
        crate::prepare_workspace(ws.path()).unwrap();
        let mut spec = crate::SandboxSpec::new(ws.path(), vec!["/bin/true".into()]);
        spec.network = true;
        OVERRIDE.with(|o| *o.borrow_mut() = Some("/nonexistent/slirp4netns".into()));
        let result = crate::run(&spec, &mut |_, _| {});
        OVERRIDE.with(|o| *o.borrow_mut() = None);
        let error = result.unwrap_err();
        println!("refused: {error}");
        assert!(matches!(
            error,
            SandboxError::ToolMissing {
                tool: "slirp4netns",
                ..
            }
        ));
        assert!(error.to_string().contains("slirp4netns"), "{error}");
    }
}
