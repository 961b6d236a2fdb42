//! The `local` deploy target: an image's root filesystem run in the sandbox,
//! long-lived and detached from cairn, on a host loopback port
//! (`HOST=127.0.0.1`, `PORT=<port>`), replacing the previous deployment of the same
//! workload and environment. A deployment that does not come up is stopped; the
//! previous one is started again, and the error says whether that worked.
//!
//! Identity: each deployment has a random token (its store record's), carried in
//! its sandbox's cgroup name, so that a later cairn process finds it even when the
//! process that started it was killed before writing anything
//! ([`cairn_sandbox::find_detached`]). A deployment is up only when a process of
//! *its* cgroup holds the listening socket of its port (checked in the host's
//! `/proc/net/tcp{,6}` and `/proc/PID/fd`) and the port answers: another process on
//! the port never passes for it.
//!
//! State: `<data>/deploy/<workload>/<environment>.json` (what runs, since when, the
//! sandbox record a later cairn process uses to check and stop it) and `.log`
//! next to it (the app's output).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_model::config::is_valid_name;
use cairn_oci::Image;
use cairn_sandbox::{DetachedSandbox, ImageNetwork, port_listeners, start_detached, stop_detached};
use serde_json::{Value, json};

use crate::host::now_ms;
use crate::images::Images;
use crate::{DataDir, EngineError};

/// How long a new deployment gets to answer on its port.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(3);

/// A deployment of the `local` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDeployment {
    pub workload: String,
    pub environment: String,
    /// The image's manifest digest.
    pub digest: String,
    /// The host loopback port it serves on.
    pub port: u16,
    pub since_ms: i64,
    /// The app's output.
    pub log: PathBuf,
    sandbox: DetachedSandbox,
}

impl LocalDeployment {
    /// Whether it is still running (the same process, not a recycled pid).
    pub fn is_running(&self) -> bool {
        self.sandbox.is_running()
    }

    /// Whether it runs and a process of its own sandbox holds its port's
    /// listening socket (not merely: something answers on the port).
    pub fn serves(&self) -> bool {
        self.is_running() && self.sandbox.port_holders(self.port).ours
    }

    /// The per-deployment token its sandbox was started with.
    pub fn token(&self) -> Option<String> {
        self.sandbox.token()
    }

    /// The sandbox's record (to stop it).
    pub fn sandbox(&self) -> &DetachedSandbox {
        &self.sandbox
    }

    /// Its URL on the host.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn paths(
    data: &DataDir,
    workload: &str,
    environment: &str,
) -> Result<(PathBuf, PathBuf), EngineError> {
    for name in [workload, environment] {
        if !is_valid_name(name) {
            return Err(EngineError::BadDeployTarget {
                why: format!("`{name}` is not a valid workload or environment name"),
            });
        }
    }
    let dir = data.deployments().join(workload);
    Ok((
        dir.join(format!("{environment}.json")),
        dir.join(format!("{environment}.log")),
    ))
}

/// The current deployment of `workload` in `environment`, if any.
pub fn current(
    data: &DataDir,
    workload: &str,
    environment: &str,
) -> Result<Option<LocalDeployment>, EngineError> {
    let (record, _) = paths(data, workload, environment)?;
    let text = match std::fs::read_to_string(&record) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io("read", &record)(e)),
    };
    let bad = |why: &str| EngineError::BadDeployTarget {
        why: format!("{} is damaged: {why}", record.display()),
    };
    let v: Value = serde_json::from_str(&text).map_err(|_| bad("not JSON"))?;
    let field = |k: &str| v.get(k).ok_or_else(|| bad(k));
    let sandbox =
        DetachedSandbox::from_record(field("sandbox")?.as_str().ok_or_else(|| bad("sandbox"))?)?;
    Ok(Some(LocalDeployment {
        workload: workload.to_owned(),
        environment: environment.to_owned(),
        digest: field("digest")?
            .as_str()
            .ok_or_else(|| bad("digest"))?
            .to_owned(),
        port: field("port")?
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| bad("port"))?,
        since_ms: field("since_ms")?.as_i64().ok_or_else(|| bad("since_ms"))?,
        log: PathBuf::from(field("log")?.as_str().ok_or_else(|| bad("log"))?),
        sandbox,
    }))
}

/// The URL of a `local` deployment on `port` (its record's `detail`).
pub fn url_of(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The port in a `local` deployment record's `detail` ([`url_of`]).
pub fn port_of(detail: &str) -> Option<u16> {
    detail.strip_prefix("http://127.0.0.1:")?.parse().ok()
}

/// Why a `local` deploy failed, and whether the previous deployment was started
/// again (checked: its own sandbox holds the port and it answers).
#[derive(Debug)]
pub struct DeployFailure {
    pub error: Box<EngineError>,
    /// `Some(true)`: the previous deployment runs again; `Some(false)`: it was
    /// stopped and could not be started again; `None`: there was none running.
    pub previous_restored: Option<bool>,
}

/// Runs `image` as `workload` in `environment` on 127.0.0.1:`port` with the
/// deployment's `token`, replacing the previous deployment once the new one
/// serves. When the new one does not come up, it is stopped, the previous one is
/// started again with its own token (`previous_token`) and checked, and the
/// error says why and whether that worked.
#[allow(clippy::too_many_arguments)]
pub fn deploy(
    data: &DataDir,
    images: &Images,
    workload: &str,
    environment: &str,
    image: &Image,
    port: u16,
    token: &str,
    previous_token: Option<&str>,
) -> Result<LocalDeployment, DeployFailure> {
    let fail = |error: EngineError, previous_restored: Option<bool>| DeployFailure {
        error: Box::new(error),
        previous_restored,
    };
    let (record_path, log) = paths(data, workload, environment).map_err(|e| fail(e, None))?;
    let dir = record_path.parent().map(PathBuf::from).unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(|e| fail(EngineError::io("create", &dir)(e), None))?;
    let previous = current(data, workload, environment).map_err(|e| fail(e, None))?;
    let previous_image = match &previous {
        Some(p) => Some(images.image(&p.digest).map_err(|e| fail(e, None))?),
        None => None,
    };
    // The previous deployment holds the port: it goes first, and comes back if the
    // new one fails.
    let mut stopped = false;
    if let Some(p) = &previous
        && p.is_running()
    {
        stop_detached(&p.sandbox, STOP_GRACE).map_err(|e| fail(e.into(), Some(false)))?;
        stopped = true;
    }
    match start(images, image, port, &log, token) {
        Ok(sandbox) => {
            let deployment = LocalDeployment {
                workload: workload.to_owned(),
                environment: environment.to_owned(),
                digest: image.manifest_digest.to_string(),
                port,
                since_ms: now_ms(),
                log,
                sandbox,
            };
            write_record(&record_path, &deployment).map_err(|e| fail(e, None))?;
            Ok(deployment)
        }
        Err(why) => {
            let (restored, said) = match (&previous, &previous_image, stopped) {
                (Some(p), Some(img), true) => {
                    let again = p
                        .token()
                        .or_else(|| previous_token.map(str::to_owned))
                        .map_or_else(new_token, Ok);
                    match again
                        .map_err(|e| e.to_string())
                        .and_then(|t| start(images, img, p.port, &p.log, &t))
                    {
                        Ok(sandbox) => {
                            let mut back = p.clone();
                            back.sandbox = sandbox;
                            match write_record(&record_path, &back) {
                                Ok(()) if back.serves() => (
                                    Some(true),
                                    format!(
                                        "; the previous deployment ({}) runs again (its sandbox holds port {})",
                                        p.digest, p.port
                                    ),
                                ),
                                Ok(()) => (
                                    Some(false),
                                    format!(
                                        "; the previous deployment ({}) was started again but does not hold port {}",
                                        p.digest, p.port
                                    ),
                                ),
                                Err(e) => (
                                    Some(false),
                                    format!(
                                        "; the previous deployment was started again, but its record could not be written: {e}"
                                    ),
                                ),
                            }
                        }
                        Err(e) => (
                            Some(false),
                            format!(
                                "; the previous deployment ({}) was stopped and could not be started again: {e}",
                                p.digest
                            ),
                        ),
                    }
                }
                (Some(p), _, false) if p.serves() => (
                    None,
                    format!("; the previous deployment ({}) still runs", p.digest),
                ),
                _ => (None, String::new()),
            };
            Err(fail(
                EngineError::DeployFailed {
                    why: format!("{why}{said}"),
                },
                restored,
            ))
        }
    }
}

/// A new per-deployment token: 16 random bytes, hex.
pub fn new_token() -> Result<String, EngineError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| EngineError::NoRandomness)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Records `sandbox` (found running by reconciliation) as the deployment of
/// `workload` in `environment`.
pub fn adopt(
    data: &DataDir,
    workload: &str,
    environment: &str,
    digest: &str,
    port: u16,
    found: &cairn_sandbox::FoundDetached,
) -> Result<Option<LocalDeployment>, EngineError> {
    let (record_path, log) = paths(data, workload, environment)?;
    let Some(sandbox) = found.sandbox(log.clone()) else {
        return Ok(None);
    };
    let dir = record_path.parent().map(PathBuf::from).unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(EngineError::io("create", &dir))?;
    let deployment = LocalDeployment {
        workload: workload.to_owned(),
        environment: environment.to_owned(),
        digest: digest.to_owned(),
        port,
        since_ms: now_ms(),
        log,
        sandbox,
    };
    write_record(&record_path, &deployment)?;
    Ok(Some(deployment))
}

/// The message of a port that is held by processes cairn did not start for
/// this deployment.
fn held_by_others(port: u16, pids: &[u32]) -> String {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    format!(
        "port {port} is held by a process cairn did not start for this deployment (pid {})",
        pids.join(", ")
    )
}

/// Stops the deployment of `workload` in `environment` and forgets it.
pub fn undeploy(data: &DataDir, workload: &str, environment: &str) -> Result<bool, EngineError> {
    let (record_path, _) = paths(data, workload, environment)?;
    let Some(d) = current(data, workload, environment)? else {
        return Ok(false);
    };
    if d.is_running() {
        stop_detached(&d.sandbox, STOP_GRACE)?;
    }
    std::fs::remove_file(&record_path).map_err(EngineError::io("remove", &record_path))?;
    Ok(true)
}

/// Starts the image detached with `token` and waits until it serves: a process
/// of its own sandbox holds the port's listening socket, and the port answers.
/// A port another process holds fails the start at once, naming the process.
fn start(
    images: &Images,
    image: &Image,
    port: u16,
    log: &std::path::Path,
    token: &str,
) -> Result<DetachedSandbox, String> {
    let held = port_listeners(port);
    if !held.is_empty() {
        return Err(held_by_others(port, &held));
    }
    let rootfs = images.rootfs(image).map_err(|e| e.to_string())?;
    let set = [("PORT", port.to_string()), ("HOST", "127.0.0.1".to_owned())];
    let spec = crate::images::sandbox_spec(&rootfs, image, &set, ImageNetwork::Host)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("image {} has no entrypoint or cmd", image.manifest_digest))?;
    let sandbox = start_detached(&spec, log, token).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        let holders = sandbox.port_holders(port);
        if !holders.others.is_empty() && !holders.ours {
            let _ = stop_detached(&sandbox, STOP_GRACE);
            return Err(held_by_others(port, &holders.others));
        }
        if holders.ours && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(sandbox);
        }
        if !sandbox.is_running() {
            let _ = stop_detached(&sandbox, STOP_GRACE);
            return Err(format!(
                "image {} exited before answering on 127.0.0.1:{port} (its output is in {})",
                image.manifest_digest,
                log.display()
            ));
        }
        if Instant::now() >= deadline {
            let _ = stop_detached(&sandbox, STOP_GRACE);
            return Err(format!(
                "image {} did not answer on 127.0.0.1:{port} within {}s (its output is in {})",
                image.manifest_digest,
                START_TIMEOUT.as_secs(),
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_record(path: &std::path::Path, d: &LocalDeployment) -> Result<(), EngineError> {
    let text = json!({
        "workload": d.workload,
        "environment": d.environment,
        "digest": d.digest,
        "port": d.port,
        "since_ms": d.since_ms,
        "log": d.log.display().to_string(),
        "sandbox": d.sandbox.to_record(),
    })
    .to_string();
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(EngineError::io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(EngineError::io("rename", &tmp))
}
