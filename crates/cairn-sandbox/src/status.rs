//! The status descriptor, in bubblewrap's JSON format (`--json-status-fd`), written by
//! cairn's reaper (or by bubblewrap, for a detached sandbox): the host pid of the
//! sandbox's init (`child-pid`) once it exists, and the command's `exit-code` only
//! once its exec was attempted (a failed set-up writes none; cairn's runtime reports
//! a program that is missing or not executable as 127 or 126).

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use crate::cgroup::pidfd_open;

/// More than the reaper (or bubblewrap) ever writes; a cap, not an expectation.
const MAX_STATUS_BYTES: usize = 64 << 10;

#[derive(Debug)]
pub(crate) struct StatusPipe {
    file: File,
    text: Vec<u8>,
    eof: bool,
}

impl StatusPipe {
    pub(crate) fn new(fd: OwnedFd) -> StatusPipe {
        // Never block on it: reads happen after poll(2) or once the writer is gone.
        // SAFETY: fcntl(2) on the fd we own.
        unsafe {
            let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
        }
        StatusPipe {
            file: File::from(fd),
            text: Vec::new(),
            eof: false,
        }
    }

    /// Reads what is available now.
    fn fill(&mut self) {
        let mut buffer = [0u8; 1024];
        while !self.eof && self.text.len() < MAX_STATUS_BYTES {
            match self.file.read(&mut buffer) {
                Ok(0) => self.eof = true,
                Ok(n) => self.text.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => self.eof = true,
            }
        }
    }

    /// Waits (until `deadline` at most) for the first status document and returns a
    /// pidfd for the sandbox's init, the process whose end means the end of every
    /// process in the sandbox's pid namespace. `None` if the reaper ended first.
    pub(crate) fn init(&mut self, reaper_pid: u32, deadline: Instant) -> Option<OwnedFd> {
        self.init_pid(reaper_pid, deadline).map(|(_, fd)| fd)
    }

    /// [`StatusPipe::init`], with the init's host pid.
    pub(crate) fn init_pid(
        &mut self,
        reaper_pid: u32,
        deadline: Instant,
    ) -> Option<(i32, OwnedFd)> {
        let (pid, pidfd) = self.child_pid(deadline)?;
        // The pid could have been recycled before the pidfd pinned it: only trust it
        // if it is the reaper's child (or grandchild, as when bubblewrap's monitor
        // was between them), checked after pinning, so the process checked is the one
        // pinned.
        let parent = parent_of(pid)?;
        let ours = parent == reaper_pid
            || i32::try_from(parent)
                .ok()
                .and_then(parent_of)
                .is_some_and(|grandparent| grandparent == reaper_pid);
        ours.then_some((pid, pidfd))
    }

    /// The `child-pid` reported (waiting until `deadline` at most), pinned by a pidfd
    /// but not yet checked to be the sandbox's.
    pub(crate) fn child_pid(&mut self, deadline: Instant) -> Option<(i32, OwnedFd)> {
        while !self.text.contains(&b'\n') && !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut poll = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let millis = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
            // SAFETY: poll(2) on one pollfd we own.
            unsafe { libc::poll(&mut poll, 1, millis.max(1)) };
            self.fill();
        }
        let text = String::from_utf8_lossy(&self.text);
        let pid = number_after(&text, "\"child-pid\"")?;
        let pidfd = pidfd_open(pid)?;
        Some((pid, pidfd))
    }

    /// The init's host pid as named (`child-pid`), whatever became of it since.
    pub(crate) fn reported_init(&self) -> Option<i32> {
        number_after(&String::from_utf8_lossy(&self.text), "\"child-pid\"")
    }

    /// The command's exit code, if one was reported (see the module). Call after the
    /// reaper ended.
    pub(crate) fn exit_code(mut self) -> Option<i32> {
        self.fill();
        number_after(&String::from_utf8_lossy(&self.text), "\"exit-code\"")
    }
}

/// The parent pid in `/proc/PID/stat`.
pub(crate) fn parent_of(pid: i32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...", where comm may contain anything but ends at the
    // last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The integer after `"key":` in the JSON status stream (bubblewrap's format).
fn number_after(text: &str, key: &str) -> Option<i32> {
    let rest = &text[text.find(key)? + key.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(rest.len(), |(i, _)| i);
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bubblewrap_status() {
        let exit = "\"exit-code\"";
        let cases: &[(&str, Option<i32>)] = &[
            ("{ \"child-pid\": 12 }\n{ \"exit-code\": 0 }\n", Some(0)),
            ("{ \"child-pid\": 12 }\n{ \"exit-code\": 137 }\n", Some(137)),
            ("{\"exit-code\":3}", Some(3)),
            ("{ \"child-pid\": 12 }\n", None),
            ("", None),
            ("{ \"exit-code\": }", None),
        ];
        for (text, expected) in cases {
            assert_eq!(number_after(text, exit), *expected, "{text:?}");
        }
        assert_eq!(
            number_after(
                "{ \"child-pid\": 2976, \"cgroup-namespace\": 1 }",
                "\"child-pid\""
            ),
            Some(2976)
        );
    }

    #[test]
    fn reads_the_parent_of_a_process() {
        let me = std::process::id();
        let parent = std::os::unix::process::parent_id();
        assert_eq!(parent_of(i32::try_from(me).unwrap_or(0)), Some(parent));
    }
}
