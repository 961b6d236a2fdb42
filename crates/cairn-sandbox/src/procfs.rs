//! What cairn reads about a sandbox's processes in the host's `/proc`: start times
//! (a pid is only trusted with the start time it had), members of a pid namespace
//! (to signal a sandbox's command tree but not its init), and listening sockets.

use std::collections::HashSet;
use std::fs;
use std::os::fd::OwnedFd;

use crate::cgroup::pidfd_open;

/// The process's start time in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), and its state letter (field 3).
pub(crate) fn stat_of(pid: i32) -> Option<(u64, char)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may contain anything but ends at the last ')'.
    let mut after = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = after.next()?.chars().next()?;
    // Field 3 was `state`; field 22 is the 20th after it (0-based 19 from field 3).
    let start = after.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// The identity of the pid namespace `pid` lives in, e.g. `pid:[4026532281]`.
pub(crate) fn pid_namespace(pid: i32) -> Option<String> {
    let link = fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    Some(link.to_string_lossy().into_owned())
}

/// Host pids of the processes in the pid namespace `ns`, except `except`.
pub(crate) fn members(ns: &str, except: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != except && pid_namespace(pid).as_deref() == Some(ns))
        .collect()
}

/// Sends `signal` to every process of the pid namespace `ns` but `except` (its init),
/// each pinned by a pidfd first and signalled only if still a member, so a recycled
/// pid is never hit. Returns how many were signalled.
pub(crate) fn signal_members(ns: &str, except: i32, signal: libc::c_int) -> usize {
    let pinned: Vec<(i32, OwnedFd)> = members(ns, except)
        .into_iter()
        .filter_map(|pid| Some((pid, pidfd_open(pid)?)))
        .collect();
    let mut signalled = 0;
    for (pid, pidfd) in pinned {
        if pid_namespace(pid).as_deref() != Some(ns) {
            continue;
        }
        if pidfd_signal(&pidfd, signal) {
            signalled += 1;
        }
    }
    signalled
}

/// `signal` through a pidfd; cannot hit a recycled pid.
pub(crate) fn pidfd_signal(fd: &OwnedFd, signal: libc::c_int) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal(2) with a valid pidfd, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}

/// Inodes of the TCP sockets listening on 127.0.0.1, `::1` or a wildcard address at
/// `port`, in the network namespace of `pid` (its `/proc/PID/net/tcp{,6}`).
pub(crate) fn listening_inodes(pid: i32, port: u16) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for file in ["tcp", "tcp6"] {
        let Ok(table) = fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
            continue;
        };
        inodes.extend(parse_listeners(&table, port));
    }
    inodes
}

/// The inodes of LISTEN sockets (state `0A`) on a loopback or wildcard address at
/// `port` in one `/proc/net/tcp` or `tcp6` table.
fn parse_listeners(table: &str, port: u16) -> Vec<u64> {
    // Addresses as the kernel prints them: 32-bit words in host (little-endian) order.
    const LOCAL: &[&str] = &[
        "0100007F",
        "00000000",
        "00000000000000000000000001000000",
        "00000000000000000000000000000000",
        "0000000000000000FFFF00000100007F",
    ];
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (address, at) = fields.get(1)?.split_once(':')?;
            let listening = fields.get(3)? == &"0A"
                && u16::from_str_radix(at, 16).ok()? == port
                && LOCAL.iter().any(|l| l.eq_ignore_ascii_case(address));
            listening.then(|| fields.get(9)?.parse().ok()).flatten()
        })
        .collect()
}

/// Whether `pid` holds a descriptor for one of the sockets `inodes`.
pub(crate) fn holds_socket(pid: i32, inodes: &HashSet<u64>) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path()).is_ok_and(|target| {
            target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
                .is_some_and(|inode| inodes.contains(&inode))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_listeners_on_loopback_and_wildcard() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 111 1 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 222 1 0
   2: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 65534        0 333 1 0
   3: 0A000001:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 444 1 0
   4: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 555 1 0
";
        assert_eq!(parse_listeners(table, 8080), vec![111, 222]);
        assert_eq!(parse_listeners(table, 8081), vec![555]);
        assert!(parse_listeners(table, 1).is_empty());
        assert!(parse_listeners("", 8080).is_empty());
    }

    #[test]
    fn reads_own_start_time_and_namespace() {
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        let (start, state) = stat_of(me).unwrap_or((0, '?'));
        assert!(start > 0);
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(pid_namespace(me).is_some_and(|ns| ns.starts_with("pid:[")));
    }
}
