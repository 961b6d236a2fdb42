//! Shared harness of the sandbox tests: the real sandbox (cairn's runtime; bubblewrap
//! for detached sandboxes), real workspaces, and a view of the host's process table to
//! check what the sandbox left behind.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_sandbox::{Limits, Outcome, SandboxSpec, Stream, prepare_workspace, run};
use tempfile::TempDir;

pub(crate) const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What one run produced.
#[derive(Debug)]
pub(crate) struct Ran {
    pub outcome: Outcome,
    pub stdout: Vec<Vec<u8>>,
    pub stderr: Vec<Vec<u8>>,
    /// When each stdout line arrived, relative to the call.
    pub stdout_at: Vec<Duration>,
    pub elapsed: Duration,
}

impl Ran {
    pub(crate) fn out(&self) -> String {
        join(&self.stdout)
    }
    pub(crate) fn err(&self) -> String {
        join(&self.stderr)
    }
}

fn join(lines: &[Vec<u8>]) -> String {
    lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fresh workspace, handed to the sandbox user.
pub(crate) fn workspace() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    prepare_workspace(dir.path()).unwrap();
    dir
}

/// `/bin/sh -c script` in `workspace`, with PATH and HOME only and a 10 s clock.
pub(crate) fn sh(workspace: &Path, script: &str) -> SandboxSpec {
    SandboxSpec {
        workspace: workspace.to_owned(),
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![
            ("PATH".into(), PATH.into()),
            ("HOME".into(), cairn_sandbox::HOME_DIR.into()),
        ],
        network: false,
        read_only_binds: Vec::new(),
        system_root: None,
        limits: Limits {
            wall_clock: Duration::from_secs(10),
            ..Limits::default()
        },
    }
}

pub(crate) fn try_run(spec: &SandboxSpec) -> Result<Ran, cairn_sandbox::SandboxError> {
    let start = Instant::now();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut stdout_at = Vec::new();
    let outcome = run(spec, &mut |stream, line| match stream {
        Stream::Stdout => {
            stdout.push(line.to_vec());
            stdout_at.push(start.elapsed());
        }
        Stream::Stderr => stderr.push(line.to_vec()),
    })?;
    Ok(Ran {
        outcome,
        stdout,
        stderr,
        stdout_at,
        elapsed: start.elapsed(),
    })
}

pub(crate) fn run_ok(spec: &SandboxSpec) -> Ran {
    match try_run(spec) {
        Ok(ran) => ran,
        Err(e) => panic!("sandbox could not run: {e} ({e:?})"),
    }
}

/// Host pids of the processes in the pid namespace `ns` (as `readlink
/// /proc/self/ns/pid` printed it inside the sandbox).
pub(crate) fn pids_in_namespace(ns: &str) -> Vec<u32> {
    let ns = ns.trim();
    assert!(ns.starts_with("pid:["), "not a pid namespace: {ns:?}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(link) = std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            && link.to_str() == Some(ns)
        {
            found.push(pid);
        }
    }
    found
}

/// The pid namespace the sandbox wrote to `workspace/ns`.
pub(crate) fn namespace_of(workspace: &Path) -> String {
    std::fs::read_to_string(workspace.join("ns")).unwrap()
}

/// Runs an image spec to its end, collecting its output like [`try_run`].
pub(crate) fn run_image_ok(spec: &cairn_sandbox::ImageSandboxSpec) -> Ran {
    let start = Instant::now();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut stdout_at = Vec::new();
    let outcome = cairn_sandbox::run_image(spec, &mut |stream, line| match stream {
        Stream::Stdout => {
            stdout.push(line.to_vec());
            stdout_at.push(start.elapsed());
        }
        Stream::Stderr => stderr.push(line.to_vec()),
    });
    match outcome {
        Ok(outcome) => Ran {
            outcome,
            stdout,
            stderr,
            stdout_at,
            elapsed: start.elapsed(),
        },
        Err(e) => panic!("image sandbox could not run: {e} ({e:?})"),
    }
}

/// One of the host's own IPv4 addresses that is neither loopback nor link-local (what
/// a fetch step's user-mode network may reach, e.g. a listener on 0.0.0.0).
pub(crate) fn host_address() -> std::net::Ipv4Addr {
    let mut found = None;
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs(3) fills `list`, walked read-only and freed below.
    unsafe {
        assert_eq!(libc::getifaddrs(&mut list), 0, "getifaddrs");
        let mut at = list;
        while !at.is_null() {
            let addr = (*at).ifa_addr;
            if !addr.is_null() && i32::from((*addr).sa_family) == libc::AF_INET {
                let v4 = &*addr.cast::<libc::sockaddr_in>();
                let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
                if !ip.is_loopback() && !ip.is_link_local() && found.is_none() {
                    found = Some(ip);
                }
            }
            at = (*at).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found.expect("the host has a non-loopback IPv4 address")
}
