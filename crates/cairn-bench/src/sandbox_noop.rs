//! Start-up cost of a sandbox, for `cairn bench sandbox`: one no-op through [`run`]
//! against one plain `bwrap --ro-bind / / true`, and bubblewrap alone with the same
//! step's arguments (what the set-up cairn does itself costs bubblewrap).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_sandbox::{
    BWRAP, Exit, SandboxError, SandboxSpec, bubblewrap_alone, prepare_workspace, run,
};

/// One start of `true` in a full cairn sandbox (limits, cgroup, mounts, output
/// readers), timed around [`run`]; the scratch workspace is made and removed untimed.
pub fn sandboxed_noop() -> Result<Duration, SandboxError> {
    let (_workspace, spec) = noop_step()?;
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

/// One start of `true` in bubblewrap alone with the arguments cairn gives it for
/// the same step ([`cairn_sandbox::bubblewrap_alone`]), as the sandbox user:
/// the same set-up done by bubblewrap, without cairn's reaper, cgroup, limits and
/// supervision. Timed around bubblewrap's run only.
pub fn bubblewrap_alone_noop() -> Result<Duration, SandboxError> {
    let (_workspace, spec) = noop_step()?;
    let alone = bubblewrap_alone(&spec)?;
    let mut command = alone.command();
    command.stdout(Stdio::null()).stderr(Stdio::null());
    timed(command, "bubblewrap with cairn's arguments")
}

/// One start of `true` in the plainest bubblewrap sandbox, as the reference.
pub fn bare_bwrap_noop() -> Result<Duration, SandboxError> {
    let mut command = Command::new(BWRAP);
    command
        .args(["--ro-bind", "/", "/", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    timed(command, "bwrap --ro-bind / / true")
}

/// The wall time of `command`'s whole run, which must succeed.
fn timed(mut command: Command, what: &str) -> Result<Duration, SandboxError> {
    let start = Instant::now();
    let status = command.status().map_err(|source| SandboxError::Spawn {
        step: "executing bubblewrap",
        source,
    })?;
    let elapsed = start.elapsed();
    if status.success() {
        Ok(elapsed)
    } else {
        Err(SandboxError::Setup {
            status: status.code().unwrap_or(-1),
            message: format!("{what} failed"),
        })
    }
}

/// The no-op step both sandboxed starts run: `true` with only PATH set, in a
/// fresh scratch workspace handed to the sandbox user (removed when the returned
/// [`Scratch`] is dropped).
fn noop_step() -> Result<(Scratch, SandboxSpec), SandboxError> {
    let workspace = Scratch::new()?;
    prepare_workspace(&workspace.0)?;
    let mut spec = SandboxSpec::new(workspace.0.clone(), vec!["true".to_owned()]);
    spec.env
        .push(("PATH".to_owned(), "/usr/bin:/bin".to_owned()));
    Ok((workspace, spec))
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
