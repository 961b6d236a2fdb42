//! A sandbox's network namespace as a handle: other sandboxes can run inside it
//! ([`crate::run_in_network_of`]), and cairn's own code can reach the sandbox's
//! loopback from a thread that entered it ([`in_network_namespace`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::error::SandboxError;

/// An open network namespace (`/proc/PID/ns/net`). Holding it keeps the namespace
/// alive, but not what runs in it: once the sandbox is gone its loopback is empty.
#[derive(Debug)]
pub struct NetworkNamespace {
    fd: OwnedFd,
}

impl NetworkNamespace {
    /// The network namespace process `pid` is in now. A bare pid can be recycled:
    /// prefer [`crate::RunningSandbox::network_namespace`], which checks that the pid
    /// still is the sandbox's.
    pub fn of_process(pid: u32) -> Result<NetworkNamespace, SandboxError> {
        let path = format!("/proc/{pid}/ns/net");
        let file = File::open(&path).map_err(|source| SandboxError::Io {
            action: "open the network namespace of the sandbox",
            source,
        })?;
        Ok(NetworkNamespace {
            fd: OwnedFd::from(file),
        })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The namespace's identity, e.g. `net:[4026532290]` (what `readlink
    /// /proc/self/ns/net` prints inside it).
    pub fn id(&self) -> Result<String, SandboxError> {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).map_err(
            |source| SandboxError::Io {
                action: "read the network namespace's identity",
                source,
            },
        )?;
        Ok(link.to_string_lossy().into_owned())
    }
}

/// Runs `f` on a fresh thread that has entered `network` (and only that thread: cairn's
/// other threads stay in the host's namespace), and returns what it returned. Sockets
/// `f` creates belong to that namespace for good, so a `TcpStream` it returns still
/// talks to the sandbox's loopback afterwards.
///
/// Entering needs root (CAP_SYS_ADMIN); unprivileged, this is an error. A panic in `f`
/// is resumed on the caller's thread.
pub fn in_network_namespace<R: Send>(
    network: &NetworkNamespace,
    f: impl FnOnce() -> R + Send,
) -> Result<R, SandboxError> {
    let fd = network.raw_fd();
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("cairn-sandbox-netns".into())
            .spawn_scoped(scope, move || {
                // SAFETY: setns(2) on a namespace fd we hold open for the whole scope;
                // it changes only this thread, which ends with the scope.
                if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                    return Err(SandboxError::Io {
                        action: "enter the sandbox's network namespace",
                        source: io::Error::last_os_error(),
                    });
                }
                Ok(f())
            })
            .map_err(|source| SandboxError::Io {
                action: "start a thread in the sandbox's network namespace",
                source,
            })?;
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
