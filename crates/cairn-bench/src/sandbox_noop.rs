//! Start-up cost of a sandbox, for `cairn bench sandbox`: one no-op through [`run`]
//! against one plain `bwrap --ro-bind / / true`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_sandbox::{BWRAP, Exit, SandboxError, SandboxSpec, prepare_workspace, run};

/// One start of `true` in a full cairn sandbox (limits, cgroup, mounts, output
/// readers), timed around [`run`]; the scratch workspace is made and removed untimed.
pub fn sandboxed_noop() -> Result<Duration, SandboxError> {
    let workspace = Scratch::new()?;
    prepare_workspace(&workspace.0)?;
    let mut spec = SandboxSpec::new(workspace.0.clone(), vec!["true".to_owned()]);
    spec.env
        .push(("PATH".to_owned(), "/usr/bin:/bin".to_owned()));
    let start = Instant::now();
    let outcome = run(&spec, &mut |_, _| {})?;
    let elapsed = start.elapsed();
    match outcome.exit {
        Exit::Code(0) => Ok(elapsed),
        other => Err(SandboxError::Setup {
            status: match other {
                Exit::Code(code) => code,
                _ => -1,
            },
            message: format!("the no-op `true` {other}"),
        }),
    }
}

/// One start of `true` in the plainest bubblewrap sandbox, as the reference.
pub fn bare_bwrap_noop() -> Result<Duration, SandboxError> {
    let start = Instant::now();
    let status = Command::new(BWRAP)
        .args(["--ro-bind", "/", "/", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|source| SandboxError::Spawn {
            step: "executing bubblewrap",
            source,
        })?;
    let elapsed = start.elapsed();
    if status.success() {
        Ok(elapsed)
    } else {
        Err(SandboxError::Setup {
            status: status.code().unwrap_or(-1),
            message: "bwrap --ro-bind / / true failed".to_owned(),
        })
    }
}

/// An empty directory under the temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, SandboxError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "cairn-sandbox-bench-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).map_err(|source| SandboxError::Workspace {
            path: path.clone(),
            action: "create it",
            source,
        })?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
