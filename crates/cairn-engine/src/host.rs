//! Facts about this process and host: the clock, and an owner tag that tells,
//! after a crash, whether the process that ran something is still alive.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now, from the system clock (0 before 1970, saturated past
/// `i64`). The one clock of cairn: the crates below the engine take "now" as an
/// argument, the server and the CLI call this.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// The start time of a process in clock ticks since boot (`/proc/PID/stat` field
/// 22), which tells a live process from a later one that reused its pid.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past its end.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// `host:pid:start-time` of this process.
pub(crate) fn owner_tag() -> String {
    let pid = std::process::id();
    format!("{}:{pid}:{}", hostname(), start_time(pid).unwrap_or(0))
}

/// This process's tag (`host:pid:start-time`), as it names the holder of a
/// run or of a lease in the store.
pub fn process_tag() -> String {
    owner_tag()
}

/// Whether the process `tag` ([`process_tag`]) names ran on this host and is
/// gone (its pid is free, or reused by a later process): what it held can be
/// taken over at once. False for a live process, another host's, or a tag
/// that cannot be read.
pub fn process_gone(tag: &str) -> bool {
    liveness(tag) == Liveness::Dead
}

/// What an owner tag says about its process, seen from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Alive,
    Dead,
    /// Another host's process, or a tag we can't read: we can't tell.
    Unknown,
}

pub(crate) fn liveness(tag: &str) -> Liveness {
    let mut parts = tag.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return Liveness::Unknown;
    };
    let (Ok(start), Ok(pid)) = (start.parse::<u64>(), pid.parse::<u32>()) else {
        return Liveness::Unknown;
    };
    if host != hostname() {
        return Liveness::Unknown;
    }
    match start_time(pid) {
        Some(now) if now == start => Liveness::Alive,
        _ => Liveness::Dead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_tag_is_alive() {
        assert_eq!(liveness(&owner_tag()), Liveness::Alive);
        assert!(!process_gone(&process_tag()));
        assert!(!process_gone("other-host-xyz:1:1"));
        assert!(!process_gone("garbage"));
    }

    #[test]
    fn dead_and_unknown() {
        let tag = owner_tag();
        let (rest, start) = tag.rsplit_once(':').unwrap_or_default();
        let restarted: u64 = start.parse::<u64>().unwrap_or(0) + 1;
        assert_eq!(liveness(&format!("{rest}:{restarted}")), Liveness::Dead);
        let host = hostname();
        assert_eq!(liveness(&format!("{host}:4194305:1")), Liveness::Dead);
        assert_eq!(liveness("other-host-xyz:1:1"), Liveness::Unknown);
        assert_eq!(liveness("garbage"), Liveness::Unknown);
    }
}
