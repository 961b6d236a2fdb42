//! The `local` deploy target: an image's root filesystem run in the sandbox,
//! long-lived and detached from cairn, on a host loopback port
//! (`HOST=127.0.0.1`, `PORT=<port>`), replacing the previous deployment of the same
//! workload and environment. A deployment that does not come up leaves the previous
//! one running and says why.
//!
//! State: `<data>/deploy/<workload>/<environment>.json` (what runs, since when, the
//! sandbox record a later cairn process uses to check and stop it) and `.log`
//! next to it (the app's output).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_model::config::is_valid_name;
use cairn_oci::Image;
use cairn_sandbox::{DetachedSandbox, ImageNetwork, start_detached, stop_detached};
use serde_json::{Value, json};

use super::Images;
use crate::host::now_ms;
use crate::{DataDir, EngineError};

/// How long a new deployment gets to answer on its port.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_GRACE: Duration = Duration::from_secs(3);

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

/// Runs `image` as `workload` in `environment` on 127.0.0.1:`port`, replacing the
/// previous deployment once the new one answers. When the new one does not come
/// up, it is stopped, the previous one keeps running (or is started again when it
/// held the port), and the error says why.
pub fn deploy(
    data: &DataDir,
    images: &Images,
    workload: &str,
    environment: &str,
    image: &Image,
    port: u16,
) -> Result<LocalDeployment, EngineError> {
    let (record_path, log) = paths(data, workload, environment)?;
    let dir = record_path.parent().map(PathBuf::from).unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(EngineError::io("create", &dir))?;
    let previous = current(data, workload, environment)?;
    let previous_image = match &previous {
        Some(p) => Some(images.image(&p.digest)?),
        None => None,
    };
    // The previous deployment holds the port: it goes first, and comes back if the
    // new one fails.
    if let Some(p) = &previous
        && p.is_running()
    {
        stop_detached(&p.sandbox, STOP_GRACE)?;
    }
    match start(images, image, port, &log) {
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
            write_record(&record_path, &deployment)?;
            Ok(deployment)
        }
        Err(why) => {
            let restored = match (&previous, &previous_image) {
                (Some(p), Some(img)) => match start(images, img, p.port, &p.log) {
                    Ok(sandbox) => {
                        let mut back = p.clone();
                        back.sandbox = sandbox;
                        write_record(&record_path, &back)?;
                        format!("; the previous deployment ({}) runs again", p.digest)
                    }
                    Err(e) => {
                        format!("; the previous deployment could not be restarted either: {e}")
                    }
                },
                _ => String::new(),
            };
            Err(EngineError::DeployFailed {
                why: format!("{why}{restored}"),
            })
        }
    }
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

/// Starts the image detached and waits until it answers on the port.
fn start(
    images: &Images,
    image: &Image,
    port: u16,
    log: &std::path::Path,
) -> Result<DetachedSandbox, String> {
    let rootfs = images.rootfs(image).map_err(|e| e.to_string())?;
    let set = [("PORT", port.to_string()), ("HOST", "127.0.0.1".to_owned())];
    let spec = super::sandbox_spec(&rootfs, image, &set, ImageNetwork::Host)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("image {} has no entrypoint or cmd", image.manifest_digest))?;
    let sandbox = start_detached(&spec, log).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(sandbox);
        }
        if !sandbox.is_running() {
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
