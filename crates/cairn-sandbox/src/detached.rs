//! Long-lived image sandboxes (deploy target `local`) that outlive the cairn process
//! that started them: their own session, output to a log file, their cgroup kept, and
//! a small record ([`DetachedSandbox`]) from which a later cairn process can tell
//! whether it still runs and stop it.
//!
//! Process tree once cairn is gone: `host init → bwrap (monitor) → init → command`,
//! all in the kept cgroup. cairn's own child forks bubblewrap and exits at once, so
//! bubblewrap is adopted by the host's init (or the nearest subreaper), which must
//! reap it when it ends (systemd does). There is no reaper process (see
//! [`crate::spawn`]): it would be a copy of cairn's memory kept alive for as long as
//! the sandbox runs.

use std::fs;
use std::io::{self, ErrorKind};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cgroup::{self, DETACHED_PREFIX, RunCgroup};
use crate::error::SandboxError;
use crate::image::{ImageSandboxSpec, image_args};
use crate::procfs;
use crate::spawn::{self, Launch, Started};
use crate::spec::{check_absolute, invalid};
use crate::status::StatusPipe;
use crate::supervise::exited_within;

/// How long [`start_detached`] waits for bubblewrap to report the sandbox's init.
const INIT_WAIT: Duration = Duration::from_secs(10);

/// First line of a record's text form, with its version.
const RECORD_HEADER: &str = "cairn-detached-sandbox 1";

/// What identifies a detached sandbox, enough for another cairn process to check and
/// stop it. Store it with [`DetachedSandbox::to_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachedSandbox {
    /// Host pid of the sandbox's init (pid 1 inside; it ends when the command does).
    pub pid: u32,
    /// Its start time (clock ticks since boot, field 22 of `/proc/PID/stat`): a
    /// recycled pid has another.
    pub start_time: u64,
    /// Its cgroup directories (one per hierarchy, pids first), kept while it runs.
    pub cgroups: Vec<PathBuf>,
    /// Where its stdout and stderr go (appended).
    pub log: PathBuf,
}

/// Starts `spec` detached, identified by `token` (the caller's per-deployment
/// random token, 16–64 lowercase hex digits, carried in the cgroup's name where
/// the sandbox cannot change it; [`find_detached`] reads it back): in its own session, surviving the cairn process, with
/// stdout and stderr appended to `log` (created 0640 if missing; never through a
/// symlink), in a cgroup with the spec's memory and process limits that is kept until
/// [`stop_detached`]. The wall clock does not apply. Returns once bubblewrap has
/// created the sandbox; whether the command keeps running is
/// [`DetachedSandbox::is_running`]'s to tell (its errors are in the log).
///
/// Needs cairn to run as root: the cgroup is what bounds the sandbox and finds all of
/// it once cairn is gone.
pub fn start_detached(
    spec: &ImageSandboxSpec,
    log: &Path,
    token: &str,
) -> Result<DetachedSandbox, SandboxError> {
    if !is_token(token) {
        return Err(invalid("token", "is not 16-64 lowercase hex digits", token));
    }
    check_absolute("log", log)?;
    let shown = log
        .to_str()
        .ok_or_else(|| invalid("log", "is not UTF-8", &log.to_string_lossy()))?;
    if shown.contains('\n') {
        return Err(invalid("log", "contains a newline", shown));
    }
    let args = image_args(spec, true)?;
    if !spawn::is_root() {
        return Err(SandboxError::LimitUnavailable {
            limit: "memory and process",
            reason: "a detached sandbox needs cairn to run as root (its cgroup outlives cairn)",
        });
    }
    let file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(log)
        .map_err(|source| SandboxError::Io {
            action: "open the detached sandbox's log",
            source,
        })?;
    let cgroup = RunCgroup::create(&spec.limits, &format!("{DETACHED_PREFIX}{token}-"))?;
    let launch = Launch {
        cgroup: Some(&cgroup),
        netns: None,
        log: Some(file),
        block: None,
    };
    // From here on, an error drops `cgroup`, which kills whatever started in it.
    let Started { mut child, status } = spawn::start(args, &spec.limits, launch)?;
    // Our child only forks bubblewrap and exits.
    let exited = child.wait().map_err(|source| SandboxError::Io {
        action: "wait for the detaching process",
        source,
    })?;
    if !exited.success() {
        return Err(SandboxError::Spawn {
            step: "detaching from cairn",
            source: io::Error::other(format!("the detaching process {exited}")),
        });
    }
    let mut status = StatusPipe::new(status);
    let init = status.child_pid(Instant::now() + INIT_WAIT);
    // Pinned by its pidfd; it is ours only if it is in the cgroup made for it.
    let Some((pid, _pidfd)) = init.filter(|(pid, _)| cgroup.contains(*pid)) else {
        return Err(SandboxError::Setup {
            status: -1,
            message: format!("the detached sandbox did not start; see {shown}"),
        });
    };
    let (start_time, _) = procfs::stat_of(pid).ok_or_else(|| SandboxError::Setup {
        status: -1,
        message: format!("the detached sandbox ended at once; see {shown}"),
    })?;
    // The status pipe closes here: bubblewrap's last status write (the exit code) will
    // find no reader, which ends only bubblewrap's own monitor, at the very end.
    drop(status);
    Ok(DetachedSandbox {
        pid: pid.unsigned_abs(),
        start_time,
        cgroups: cgroup.keep(),
        log: log.to_owned(),
    })
}

pub(crate) fn is_token(token: &str) -> bool {
    (16..=64).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The token in a detached cgroup's name (`detached-<token>-…`), if it has one.
fn token_of(cgroup: &Path) -> Option<String> {
    let name = cgroup.file_name()?.to_str()?;
    let token = name.strip_prefix(DETACHED_PREFIX)?.split('-').next()?;
    is_token(token).then(|| token.to_owned())
}

/// Who listens on a loopback or wildcard TCP `port` of the host's network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortHolders {
    /// A process of the sandbox asked about holds a listening socket.
    pub ours: bool,
    /// Host pids of other processes that hold one (a stray process, another
    /// deployment, an orphan cairn no longer knows).
    pub others: Vec<u32>,
}

/// Host pids holding a socket that listens on 127.0.0.1, `::1` or a wildcard
/// address at `port` in cairn's own network namespace (the host's, for the
/// `local` deploy target).
pub fn port_listeners(port: u16) -> Vec<u32> {
    let inodes = procfs::listening_inodes(std::process::id().cast_signed(), port);
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| procfs::holds_socket(pid.cast_signed(), &inodes))
        .collect();
    pids.sort_unstable();
    pids
}

/// A detached sandbox's cgroup found on this host ([`find_detached`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDetached {
    /// The cgroup's directories, pids first.
    pub cgroups: Vec<PathBuf>,
    /// The token in its name; `None` when it has none (not cairn's per-deployment
    /// naming: left alone).
    pub token: Option<String>,
    /// Its init (host pid and start time), when it still runs.
    init: Option<(u32, u64)>,
}

impl FoundDetached {
    /// The record to check and stop it by, when its init still runs.
    pub fn sandbox(&self, log: PathBuf) -> Option<DetachedSandbox> {
        let (pid, start_time) = self.init?;
        Some(DetachedSandbox {
            pid,
            start_time,
            cgroups: self.cgroups.clone(),
            log,
        })
    }

    /// Whether anything still runs in it.
    pub fn is_running(&self) -> bool {
        self.sandbox(PathBuf::new()).is_some_and(|s| s.is_running())
    }
}

/// Every detached sandbox cgroup on this host (also those of other data
/// directories: the caller matches tokens against its own records and leaves
/// the others alone), with its token and its init when it runs. The init is the
/// member that is pid 1 of its own pid namespace (`NSpid` in `/proc/PID/status`).
pub fn find_detached() -> Result<Vec<FoundDetached>, SandboxError> {
    let mut found = Vec::new();
    for cgroups in cgroup::detached_cgroups()? {
        let Some(first) = cgroups.first() else {
            continue;
        };
        let token = token_of(first);
        let members: Vec<i32> = fs::read_to_string(first.join("cgroup.procs"))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default();
        let init = members.into_iter().find_map(|pid| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let nspid: Vec<&str> = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))?
                .split_whitespace()
                .collect();
            if nspid.len() < 2 || nspid.last() != Some(&"1") {
                return None;
            }
            let (start, state) = procfs::stat_of(pid)?;
            (state != 'Z' && state != 'X').then_some((pid.unsigned_abs(), start))
        });
        found.push(FoundDetached {
            cgroups,
            token,
            init,
        });
    }
    Ok(found)
}

impl DetachedSandbox {
    /// The per-deployment token it was started with (from its cgroup's name).
    pub fn token(&self) -> Option<String> {
        token_of(self.cgroups.first()?)
    }

    /// Who listens on `port`: whether a process of this sandbox's cgroup holds the
    /// listening socket, and which other processes do. Read from the host's
    /// `/proc/net/tcp{,6}` (socket inodes) and `/proc/PID/fd`, so an open port
    /// alone never passes for this sandbox.
    pub fn port_holders(&self, port: u16) -> PortHolders {
        let holders = port_listeners(port);
        let members = self
            .cgroups
            .first()
            .and_then(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse::<u32>().ok())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let (ours, others): (Vec<u32>, Vec<u32>) =
            holders.into_iter().partition(|pid| members.contains(pid));
        PortHolders {
            ours: !ours.is_empty() && self.is_running(),
            others,
        }
    }

    /// Whether the recorded process still runs and is the same one: same start time,
    /// not a zombie, and still in the recorded cgroup.
    pub fn is_running(&self) -> bool {
        let Ok(pid) = i32::try_from(self.pid) else {
            return false;
        };
        let same = procfs::stat_of(pid)
            .is_some_and(|(start, state)| start == self.start_time && state != 'Z' && state != 'X');
        same && self.in_cgroup(pid)
    }

    fn in_cgroup(&self, pid: i32) -> bool {
        let Some(name) = self.cgroups.first().and_then(|d| d.file_name()) else {
            return false;
        };
        let name = name.to_string_lossy();
        fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|text| {
            text.lines()
                .any(|line| line.rsplit('/').next() == Some(name.as_ref()))
        })
    }

    /// The record as text, one `key value` per line (paths are UTF-8 without
    /// newlines: [`start_detached`] refuses others).
    pub fn to_record(&self) -> String {
        let mut text = format!(
            "{RECORD_HEADER}\npid {}\nstart-time {}\n",
            self.pid, self.start_time
        );
        for dir in &self.cgroups {
            text.push_str(&format!("cgroup {}\n", dir.display()));
        }
        text.push_str(&format!("log {}\n", self.log.display()));
        text
    }

    /// Reads [`DetachedSandbox::to_record`]'s text back.
    pub fn from_record(text: &str) -> Result<DetachedSandbox, SandboxError> {
        let bad = |problem: &'static str| invalid("record", problem, "");
        let mut lines = text.lines();
        if lines.next() != Some(RECORD_HEADER) {
            return Err(bad("does not start with the detached sandbox header"));
        }
        let (mut pid, mut start_time, mut log) = (None, None, None);
        let mut cgroups = Vec::new();
        for line in lines {
            let (key, value) = line
                .split_once(' ')
                .ok_or_else(|| bad("has a line without a value"))?;
            match key {
                "pid" => pid = Some(value.parse().map_err(|_| bad("has a bad pid"))?),
                "start-time" => {
                    start_time = Some(value.parse().map_err(|_| bad("has a bad start time"))?);
                }
                "cgroup" => cgroups.push(PathBuf::from(value)),
                "log" => log = Some(PathBuf::from(value)),
                _ => return Err(bad("has an unknown key")),
            }
        }
        match (pid, start_time, log) {
            (Some(pid), Some(start_time), Some(log)) if !cgroups.is_empty() => {
                Ok(DetachedSandbox {
                    pid,
                    start_time,
                    cgroups,
                    log,
                })
            }
            _ => Err(bad("lacks the pid, start time, cgroup or log")),
        }
    }
}

/// Stops a detached sandbox, from any cairn process: SIGTERM to its command's
/// processes, SIGKILL to all of it if it has not ended within `grace`, then every
/// process left in its cgroup is killed and the cgroup removed. Stopping one that
/// already ended only cleans up. The cgroup paths must be a detached sandbox's on
/// this host (a forged record cannot make cairn signal or remove anything else).
pub fn stop_detached(record: &DetachedSandbox, grace: Duration) -> Result<(), SandboxError> {
    let cgroup = RunCgroup::adopt(&record.cgroups)?;
    if let Ok(pid) = i32::try_from(record.pid)
        && let Some(pidfd) = cgroup::pidfd_open(pid)
        // Checked after pinning: the process signalled is the one checked.
        && record.is_running()
    {
        match procfs::pid_namespace(pid) {
            Some(ns) => {
                procfs::signal_members(&ns, pid, libc::SIGTERM);
                if !exited_within(&pidfd, grace) {
                    cgroup::pidfd_kill(&pidfd);
                }
            }
            None => {
                cgroup::pidfd_kill(&pidfd);
            }
        }
    }
    cgroup.drain()?;
    drop(cgroup);
    for dir in &record.cgroups {
        match fs::symlink_metadata(dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            _ => {
                return Err(SandboxError::Leftover {
                    path: dir.clone(),
                    count: 0,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip_and_reject_junk() {
        let record = DetachedSandbox {
            pid: 4242,
            start_time: 987_654,
            cgroups: vec![
                "/sys/fs/cgroup/pids/cairn/detached-1-0".into(),
                "/sys/fs/cgroup/memory/cairn/detached-1-0".into(),
            ],
            log: "/var/lib/cairn/deploy/local.log".into(),
        };
        assert_eq!(record.token(), None);
        let text = record.to_record();
        assert_eq!(DetachedSandbox::from_record(&text).unwrap(), record);
        for junk in [
            "",
            "pid 1\n",
            &text.replace("pid 4242", "pid x"),
            &text.replace("cairn-detached-sandbox 1", "cairn-detached-sandbox 2"),
            &format!("{text}colour blue\n"),
            &text.replace("start-time 987654\n", ""),
        ] {
            assert!(DetachedSandbox::from_record(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn tokens_are_read_from_the_cgroup_name_only_when_well_formed() {
        let token = "0123456789abcdef0123456789abcdef";
        for (name, expect) in [
            (format!("detached-{token}-42-0"), Some(token)),
            (format!("detached-{token}"), Some(token)),
            ("detached-42-0".to_owned(), None),
            (format!("detached-{}-1-0", token.to_uppercase()), None),
            (format!("run-{token}-1-0"), None),
            ("detached-".to_owned(), None),
        ] {
            let path = PathBuf::from("/sys/fs/cgroup/pids/cairn").join(&name);
            assert_eq!(token_of(&path).as_deref(), expect, "{name}");
        }
        assert!(!is_token("abc"));
        assert!(!is_token(&"a".repeat(65)));
        assert!(is_token(&"a".repeat(16)));
    }

    #[test]
    fn forged_cgroups_are_refused() {
        for dirs in [
            vec![PathBuf::from("/sys/fs/cgroup/pids")],
            vec![PathBuf::from("/tmp/detached-1-0"), PathBuf::from("/tmp/x")],
        ] {
            assert!(RunCgroup::adopt(&dirs).is_err(), "{dirs:?}");
        }
    }
}
