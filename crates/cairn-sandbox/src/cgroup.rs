//! The per-run cgroup that enforces the memory and process limits (when cairn runs as
//! root): created before the start, joined by cairn's child before it starts the
//! sandbox (as the reaper, or by forking a detached sandbox's bubblewrap), emptied and
//! removed after the run.
//!
//! cgroup v1 (a `pids` and a `memory` hierarchy) is used when those controllers are
//! mounted, otherwise the unified v2 hierarchy. Run cgroups live under a `cairn`
//! directory beneath this process's own cgroup, so the sandbox stays inside whatever
//! limits the service manager put on cairn itself.

use std::ffi::CString;
use std::fs;
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use crate::error::SandboxError;
use crate::spec::{Limits, Usage};

/// The processes that live in the cgroup alongside the command: cairn's reaper and
/// the pid namespace's init (detached: bubblewrap's monitor and its init).
pub(crate) const SUPERVISOR_TASKS: u64 = 2;

/// Name prefix of the cgroups of runs that end with the cairn process that started
/// them (a dead process's are swept). A name is `<prefix><owner token>-<random id>`
/// (see [`crate::owner`]): never a pid, so a leftover cannot collide with a new one.
pub(crate) const RUN_PREFIX: &str = "run-";
/// Name prefix of detached sandboxes' cgroups, which outlive their starter and are
/// removed by [`crate::stop_detached`] (or, once empty and their starter is gone, by
/// [`crate::sweep_cgroups`]).
pub(crate) const DETACHED_PREFIX: &str = "detached-";

/// How long killing the leftovers of a run may take before it is reported.
const KILL_PATIENCE: Duration = Duration::from_secs(5);

#[derive(Debug)]
enum Layout {
    V1 { pids: PathBuf, memory: PathBuf },
    V2 { parent: PathBuf },
}

/// Finds (once) where run cgroups go, creates the `cairn` parent directories, and
/// sweeps (once) the leftovers of cairn processes that are gone.
fn layout() -> Result<&'static Layout, SandboxError> {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    static SWEPT: Once = Once::new();
    if let Some(layout) = LAYOUT.get() {
        return Ok(layout);
    }
    let detected = detect()?;
    let layout = LAYOUT.get_or_init(|| detected);
    SWEPT.call_once(|| {
        let _ = crate::leftovers::sweep(&layout.parents());
    });
    Ok(layout)
}

impl Layout {
    /// The `cairn` directories run cgroups go in, pids (or the v2 one) first.
    fn parents(&self) -> Vec<PathBuf> {
        match self {
            Layout::V1 { pids, memory } => vec![pids.clone(), memory.clone()],
            Layout::V2 { parent } => vec![parent.clone()],
        }
    }
}

/// The directories cairn's cgroups are made in (one per hierarchy, pids first),
/// created if missing.
pub(crate) fn parents() -> Result<Vec<PathBuf>, SandboxError> {
    Ok(layout()?.parents())
}

struct Mount {
    root: String,
    point: PathBuf,
}

/// The mount of the v1 hierarchy carrying `controller`, or of the v2 hierarchy (`None`).
fn find_mount(mountinfo: &str, controller: Option<&str>) -> Option<Mount> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut left = left.split(' ');
        let root = left.nth(3)?;
        let point = left.next()?;
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let super_options = right.nth(1)?;
        let matches = match controller {
            None => fstype == "cgroup2",
            Some(c) => fstype == "cgroup" && super_options.split(',').any(|o| o == c),
        };
        matches.then(|| Mount {
            root: root.to_owned(),
            point: PathBuf::from(point),
        })
    })
}

/// This process's cgroup directory in `mount`, from a `/proc/self/cgroup` line whose
/// controller list contains `controller` (v1) or is empty (v2).
fn own_dir(self_cgroup: &str, mount: &Mount, controller: Option<&str>) -> PathBuf {
    let own = self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        let matches = match controller {
            None => controllers.is_empty(),
            Some(c) => controllers.split(',').any(|x| x == c),
        };
        matches.then_some(path)
    });
    let relative = own
        .and_then(|path| {
            let root = mount.root.trim_end_matches('/');
            path.strip_prefix(root).map(str::to_owned)
        })
        .unwrap_or_default();
    let dir = mount.point.join(relative.trim_start_matches('/'));
    if dir.is_dir() {
        dir
    } else {
        mount.point.clone()
    }
}

fn detect() -> Result<Layout, SandboxError> {
    let mountinfo = read("/proc/self/mountinfo", "read")?;
    let self_cgroup = read("/proc/self/cgroup", "read")?;
    let pids = find_mount(&mountinfo, Some("pids"));
    let memory = find_mount(&mountinfo, Some("memory"));
    let layout = match (pids, memory) {
        (Some(pids), Some(memory)) => Layout::V1 {
            pids: own_dir(&self_cgroup, &pids, Some("pids")).join("cairn"),
            memory: own_dir(&self_cgroup, &memory, Some("memory")).join("cairn"),
        },
        (None, None) => {
            let Some(unified) = find_mount(&mountinfo, None) else {
                return Err(SandboxError::LimitUnavailable {
                    limit: "memory and process",
                    reason: "no cgroup hierarchy with the memory and pids controllers is mounted",
                });
            };
            let own = own_dir(&self_cgroup, &unified, None);
            enable_v2_controllers(&own)?;
            let parent = own.join("cairn");
            create_dir(&parent)?;
            enable_v2_controllers(&parent)?;
            return Ok(Layout::V2 { parent });
        }
        _ => {
            return Err(SandboxError::LimitUnavailable {
                limit: "memory and process",
                reason: "the memory and pids controllers are split between cgroup v1 and v2",
            });
        }
    };
    if let Layout::V1 { pids, memory } = &layout {
        for dir in [pids, memory] {
            create_dir(dir)?;
        }
    }
    Ok(layout)
}

fn enable_v2_controllers(dir: &Path) -> Result<(), SandboxError> {
    let available = read(dir.join("cgroup.controllers"), "read")?;
    let has = |c: &str| available.split_whitespace().any(|x| x == c);
    if !has("memory") || !has("pids") {
        return Err(SandboxError::LimitUnavailable {
            limit: "memory and process",
            reason: "the memory and pids cgroup v2 controllers are not delegated to cairn's cgroup",
        });
    }
    let control = dir.join("cgroup.subtree_control");
    let enabled = read(&control, "read")?;
    if enabled.split_whitespace().any(|x| x == "memory")
        && enabled.split_whitespace().any(|x| x == "pids")
    {
        return Ok(());
    }
    match fs::write(&control, "+memory +pids") {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(SandboxError::LimitUnavailable {
            limit: "memory and process",
            reason: "cairn's cgroup v2 holds processes, so it cannot enable controllers for \
                     children; start cairn in a delegated cgroup (systemd Delegate=yes) or \
                     move it into a leaf cgroup first",
        }),
        Err(source) => Err(limit_error("enable controllers in", &control, source)),
    }
}

fn read(path: impl AsRef<Path>, action: &'static str) -> Result<String, SandboxError> {
    let path = path.as_ref();
    fs::read_to_string(path).map_err(|source| limit_error(action, path, source))
}

fn create_dir(path: &Path) -> Result<(), SandboxError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(limit_error("create", path, source)),
    }
}

fn limit_error(action: &'static str, path: &Path, source: io::Error) -> SandboxError {
    SandboxError::Limit {
        limit: "memory and process",
        action,
        path: path.to_owned(),
        source,
    }
}

fn write_limit(
    limit: &'static str,
    path: PathBuf,
    value: impl AsRef<[u8]>,
) -> Result<(), SandboxError> {
    fs::write(&path, value).map_err(|source| SandboxError::Limit {
        limit,
        action: "write",
        path,
        source,
    })
}

/// The directories (one per hierarchy, pids first) of every detached sandbox's
/// cgroup on this host's layout: for [`crate::find_detached`].
pub(crate) fn detached_cgroups() -> Result<Vec<Vec<PathBuf>>, SandboxError> {
    let parents: Vec<&Path> = match layout()? {
        Layout::V1 { pids, memory } => vec![pids.as_path(), memory.as_path()],
        Layout::V2 { parent } => vec![parent.as_path()],
    };
    let Some(first) = parents.first() else {
        return Ok(Vec::new());
    };
    let Ok(entries) = fs::read_dir(first) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<Vec<PathBuf>> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            name.starts_with(DETACHED_PREFIX).then_some(name)
        })
        .map(|name| parents.iter().map(|p| p.join(&name)).collect())
        .collect();
    found.sort();
    Ok(found)
}

/// One run's cgroup (one directory per hierarchy). Dropping it kills whatever is left
/// in it and removes it.
#[derive(Debug)]
pub(crate) struct RunCgroup {
    /// The directories, pids (or the v2 one) first.
    dirs: Vec<PathBuf>,
    /// The file of each directory the child writes "0" to before its exec.
    procs: Vec<CString>,
    v2: bool,
}

impl RunCgroup {
    /// A new cgroup named `<prefix><owner token>-<random id>` enforcing `limits`.
    pub(crate) fn create(limits: &Limits, prefix: &str) -> Result<RunCgroup, SandboxError> {
        let layout = layout()?;
        // Registered before the cgroup exists: a sweep never takes it for a leftover.
        let owner = crate::owner::current()?;
        let name = format!("{prefix}{}-{}", owner.token(), crate::owner::random_id()?);
        let tasks = u64::from(limits.max_processes) + SUPERVISOR_TASKS;
        let mut cgroup = RunCgroup {
            dirs: Vec::with_capacity(2),
            procs: Vec::with_capacity(2),
            v2: matches!(layout, Layout::V2 { .. }),
        };
        // Each directory is recorded as soon as it exists, so a failure below removes it.
        match layout {
            Layout::V1 { pids, memory } => {
                let pids = cgroup.make(pids.join(&name))?;
                write_limit("process", pids.join("pids.max"), tasks.to_string())?;
                let memory = cgroup.make(memory.join(&name))?;
                let bytes = limits.memory_bytes.to_string();
                write_limit("memory", memory.join("memory.limit_in_bytes"), &bytes)?;
                let memsw = memory.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write_limit("memory", memsw, &bytes)?;
                } else {
                    // No swap accounting on this kernel: keep the sandbox out of swap so
                    // that swap cannot extend its memory.
                    write_limit("memory", memory.join("memory.swappiness"), "0")?;
                }
            }
            Layout::V2 { parent } => {
                let dir = cgroup.make(parent.join(&name))?;
                write_limit("process", dir.join("pids.max"), tasks.to_string())?;
                write_limit(
                    "memory",
                    dir.join("memory.max"),
                    limits.memory_bytes.to_string(),
                )?;
                let swap = dir.join("memory.swap.max");
                if swap.exists() {
                    write_limit("memory", swap, "0")?;
                }
            }
        }
        Ok(cgroup)
    }

    fn make(&mut self, dir: PathBuf) -> Result<PathBuf, SandboxError> {
        fs::create_dir(&dir).map_err(|source| limit_error("create", &dir, source))?;
        // The child joins as a single thread (it is one, right after the fork): in v1,
        // writing "0" to `tasks` moves the caller without the global threadgroup
        // lock that `cgroup.procs` takes, whose RCU grace period cost a start up to
        // 20 ms. v2 has only `cgroup.procs` for a domain cgroup.
        let procs = dir.join(if self.v2 { "cgroup.procs" } else { "tasks" });
        let procs = CString::new(procs.as_os_str().as_bytes()).map_err(|_| {
            SandboxError::LimitUnavailable {
                limit: "memory and process",
                reason: "the cgroup path contains a NUL byte",
            }
        })?;
        self.dirs.push(dir.clone());
        self.procs.push(procs);
        Ok(dir)
    }

    /// Gives up ownership: the directories stay (with whatever runs in them) when this
    /// is dropped. Returns them, pids (or the v2 one) first.
    pub(crate) fn keep(mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.dirs)
    }

    /// Takes back the directories of a detached sandbox's cgroup ([`RunCgroup::keep`]),
    /// after checking that they are cairn's detached cgroups on this host's layout
    /// (a forged record must not make cairn kill or remove anything else).
    pub(crate) fn adopt(dirs: &[PathBuf]) -> Result<RunCgroup, SandboxError> {
        let layout = layout()?;
        let (parents, v2): (Vec<&Path>, bool) = match layout {
            Layout::V1 { pids, memory } => (vec![pids.as_path(), memory.as_path()], false),
            Layout::V2 { parent } => (vec![parent.as_path()], true),
        };
        let name = dirs.first().and_then(|d| d.file_name());
        let valid = dirs.len() == parents.len()
            && name.is_some_and(|n| n.to_string_lossy().starts_with(DETACHED_PREFIX))
            && dirs
                .iter()
                .zip(&parents)
                .all(|(dir, parent)| dir.parent() == Some(parent) && dir.file_name() == name);
        if !valid {
            return Err(SandboxError::InvalidSpec {
                field: "cgroups",
                problem: "are not a detached sandbox's cgroup on this host",
                value: dirs
                    .iter()
                    .map(|d| d.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
        Ok(RunCgroup {
            dirs: dirs.to_vec(),
            procs: Vec::new(),
            v2,
        })
    }

    /// Whether `pid` is a member of this cgroup (of its first hierarchy).
    pub(crate) fn contains(&self, pid: i32) -> bool {
        self.pids().contains(&pid)
    }

    /// The files the child writes "0" to, to join.
    pub(crate) fn procs_files(&self) -> &[CString] {
        &self.procs
    }

    fn main_dir(&self) -> &Path {
        self.dirs.first().map_or(Path::new("/"), PathBuf::as_path)
    }

    fn memory_dir(&self) -> &Path {
        self.dirs.last().map_or(Path::new("/"), PathBuf::as_path)
    }

    fn pids(&self) -> Vec<i32> {
        pids_in(self.main_dir())
    }

    /// Sends SIGKILL to everything in the cgroup, once, except `spare` (the reaper,
    /// which must live to reap the others; it exits on its own once they are gone).
    pub(crate) fn kill_all(&self, spare: Option<u32>) {
        if spare.is_none() && self.v2 && fs::write(self.main_dir().join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        let spare = spare.and_then(|pid| i32::try_from(pid).ok());
        let listed: Vec<i32> = self
            .pids()
            .into_iter()
            .filter(|&p| Some(p) != spare)
            .collect();
        // Pin each process with a pidfd, then signal only those still listed: a pid
        // that was recycled between the two reads is not ours and is left alone.
        let pinned: Vec<(i32, Option<OwnedFd>)> = listed
            .into_iter()
            .map(|pid| (pid, pidfd_open(pid)))
            .collect();
        let still = self.pids();
        for (pid, pidfd) in pinned {
            if !still.contains(&pid) {
                continue;
            }
            match pidfd {
                Some(fd) => {
                    pidfd_kill(&fd);
                }
                // No pidfd support (kernel < 5.3): plain kill.
                None => {
                    // SAFETY: kill(2) with a pid read from our own cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }

    /// Kills until the cgroup is empty; an error if processes survive [`KILL_PATIENCE`].
    pub(crate) fn drain(&self) -> Result<(), SandboxError> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            let left = self.pids();
            if left.is_empty() {
                return Ok(());
            }
            if start.elapsed() > KILL_PATIENCE {
                return Err(SandboxError::Leftover {
                    path: self.main_dir().to_owned(),
                    count: left.len(),
                });
            }
            self.kill_all(None);
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Times the kernel's OOM killer acted in this cgroup.
    pub(crate) fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        keyed(&self.memory_dir().join(file), "oom_kill").unwrap_or(0)
    }

    pub(crate) fn usage(&self) -> Usage {
        let peak_memory = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        Usage {
            peak_tasks: single(&self.main_dir().join("pids.peak")),
            peak_memory_bytes: single(&self.memory_dir().join(peak_memory)),
            process_limit_hit: keyed(&self.main_dir().join("pids.events"), "max")
                .is_some_and(|n| n > 0),
        }
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        // Normally already empty (the run drained it); this covers early returns.
        let _ = self.drain();
        for dir in self.dirs.iter().rev() {
            // Exited tasks can linger for a moment; retry briefly, then leave the
            // directory to the next process's sweep.
            for attempt in 0..50 {
                match fs::remove_dir(dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 49 => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    _ => break,
                }
            }
        }
    }
}

/// The processes in the cgroup directory `dir` (none if it cannot be read).
pub(crate) fn pids_in(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn single(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed cgroup file such as `memory.events`.
fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A pidfd for `pid`, or `None` where the kernel has none (or the process is gone).
pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// SIGKILL through a pidfd; cannot hit a recycled pid.
pub(crate) fn pidfd_kill(fd: &OwnedFd) -> bool {
    // SAFETY: pidfd_send_signal(2) with a valid pidfd, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_v1_and_v2_mounts() {
        let pids = find_mount(MOUNTINFO, Some("pids")).unwrap();
        assert_eq!(pids.point, Path::new("/sys/fs/cgroup/pids"));
        let memory = find_mount(MOUNTINFO, Some("memory")).unwrap();
        assert_eq!(memory.point, Path::new("/sys/fs/cgroup/memory"));
        assert!(find_mount(MOUNTINFO, Some("cpu")).is_none());
        let unified = find_mount(MOUNTINFO, None).unwrap();
        assert_eq!(unified.point, Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn own_dir_falls_back_to_the_mount_point() {
        let mount = Mount {
            root: "/".into(),
            point: PathBuf::from("/nonexistent-cgroup-mount"),
        };
        let dir = own_dir("4:memory:/a/b\n0::/\n", &mount, Some("memory"));
        assert_eq!(dir, Path::new("/nonexistent-cgroup-mount"));
    }

    #[test]
    fn keyed_reads_flat_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("memory.events");
        fs::write(&file, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n").unwrap();
        assert_eq!(keyed(&file, "oom_kill"), Some(2));
        assert_eq!(keyed(&file, "max"), Some(3));
        assert_eq!(keyed(&file, "absent"), None);
    }
}
