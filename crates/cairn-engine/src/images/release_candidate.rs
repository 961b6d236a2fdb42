//! The release candidate: the image a run builds from its declared output on the
//! workload's catalog base, and its acceptance tests — the RC image started in the
//! sandbox (its own root filesystem, entrypoint and port, in a network namespace of
//! its own) with the declarative HTTP checks made by the engine itself and the
//! workload's test command run next to it; an RC that serves no port has its test
//! command run inside it instead. The digest that was tested is the digest that can
//! be deployed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use cairn_model::config::{APP_DIR, HttpCheck, ImageConfig};
use cairn_model::{BaseRecord, ImageRecord};
use cairn_oci::{Image, ImageSpec};
use cairn_sandbox::{ImageNetwork, Limits, PortWait, SandboxSpec, Stream, start_image};

use super::Images;
use crate::host::now_ms;
use crate::{EngineError, LoadedWorkload};

/// How long the RC gets to listen on its port.
pub(crate) const RC_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one HTTP check may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a response an HTTP check reads.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;
/// The grace between SIGTERM and SIGKILL when the RC is stopped.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// An image built by a run.
#[derive(Debug, Clone)]
pub(crate) struct BuiltImage {
    pub image: Image,
    pub digest: String,
    pub base: BaseRecord,
}

/// Assembles the RC: the build output under [`APP_DIR`] as one reproducible layer
/// on the catalog base, with the workload's entrypoint, env and port. Only the
/// commit and its time go in, so the same commit gives the same digest anywhere.
/// The output `output` is read beneath `workspace` without following any symlink
/// (see `cairn_fs`): a regular file, or a directory whose symlinks are stored as
/// symlinks.
pub(crate) fn build_image(
    images: &Images,
    loaded: &LoadedWorkload,
    config: &ImageConfig,
    base: (BaseRecord, Image),
    workspace: &cairn_fs::Dir,
    output: &str,
    source_date_epoch: i64,
) -> Result<BuiltImage, EngineError> {
    let (base_record, base_image) = base;
    let is_dir = match workspace.open_beneath(output)? {
        cairn_fs::Node::Dir(_) => true,
        cairn_fs::Node::File(_) => false,
    };
    let file_name = Path::new(output)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".to_owned());
    let in_image = if is_dir {
        APP_DIR.to_owned()
    } else {
        format!("{APP_DIR}/{file_name}")
    };
    let epoch = u64::try_from(source_date_epoch).unwrap_or(0);
    let output_dir;
    let source = if is_dir {
        output_dir = workspace.dir_beneath(output)?;
        cairn_oci::LayerSource::Dir(&output_dir)
    } else {
        cairn_oci::LayerSource::File(workspace, Path::new(output))
    };
    let layer = cairn_oci::layer_from(images.layout(), source, &in_image, epoch)?;
    let entrypoint = if !config.entrypoint.is_empty() {
        Some(config.entrypoint.clone())
    } else if !is_dir {
        Some(vec![in_image.clone()])
    } else {
        None
    };
    let mut env: Vec<String> = config.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(port) = config.port
        && !config.env.iter().any(|(k, _)| k == "PORT")
    {
        env.push(format!("PORT={port}"));
    }
    let mut labels = BTreeMap::new();
    labels.insert(
        "dev.cairn.workload".to_owned(),
        loaded.workload.name.clone(),
    );
    labels.insert(
        "org.opencontainers.image.revision".to_owned(),
        loaded.commit.clone(),
    );
    let spec = ImageSpec {
        entrypoint,
        cmd: (!config.cmd.is_empty()).then(|| config.cmd.clone()),
        env,
        user: Some(
            config
                .user
                .clone()
                .unwrap_or_else(|| "65534:65534".to_owned()),
        ),
        working_dir: Some(
            config
                .working_dir
                .clone()
                .unwrap_or_else(|| APP_DIR.to_owned()),
        ),
        exposed_port: config.port,
        labels,
        created_epoch: epoch,
        revision: Some(loaded.commit.clone()),
        base_name: base_record.name.clone(),
    };
    let image = cairn_oci::assemble(images.layout(), &base_image, &[layer], &spec)?;
    let short = &loaded.commit[..12.min(loaded.commit.len())];
    images.layout().set_ref(
        &format!("{}:{short}", loaded.workload.name),
        &image.descriptor()?,
    )?;
    Ok(BuiltImage {
        digest: image.manifest_digest.to_string(),
        image,
        base: base_record,
    })
}

/// The record of a built image, for the store.
pub(crate) fn image_record(
    built: &BuiltImage,
    loaded: &LoadedWorkload,
    run: Option<cairn_model::RunId>,
) -> ImageRecord {
    ImageRecord {
        digest: built.digest.clone(),
        workload: loaded.workload.name.clone(),
        run,
        commit: loaded.commit.clone(),
        base_name: built.base.name.clone(),
        base_digest: built.base.digest.clone(),
        created_at_ms: now_ms(),
        rebased_from: None,
    }
}

/// How the RC's acceptance tests ended.
#[derive(Debug)]
pub(crate) struct RcOutcome {
    pub exit_code: Option<i32>,
    /// `None` when everything passed.
    pub failure: Option<String>,
    /// What failed, one entry per check or step: the test result names them, so a
    /// failed HTTP check makes it FAILED even when the test command exited 0.
    pub failed: Vec<String>,
}

/// What the acceptance stage needs to run the RC and the tests.
pub(crate) struct RcTest<'a> {
    pub images: &'a Images,
    pub built: &'a BuiltImage,
    pub port: u16,
    pub checks: &'a [HttpCheck],
    /// The workload's acceptance command, in the workspace, next to the RC.
    pub command: Option<SandboxSpec>,
    pub limits: Limits,
}

/// Starts the RC, waits for its port, makes the HTTP checks, runs the command in
/// the RC's network namespace with `CAIRN_RC_URL`, and stops the RC. `log` gets
/// cairn's own lines; `on_line` the command's output.
pub(crate) fn acceptance(
    test: RcTest<'_>,
    log: &mut dyn FnMut(&str),
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<RcOutcome, EngineError> {
    let rootfs = test.images.rootfs(&test.built.image)?;
    let Some(mut spec) =
        super::sandbox_spec(&rootfs, &test.built.image, &[], ImageNetwork::Isolated)?
    else {
        let why = "the release-candidate image has no entrypoint or cmd to start".to_owned();
        return Ok(RcOutcome {
            exit_code: None,
            failure: Some(why.clone()),
            failed: vec![why],
        });
    };
    spec.limits = test.limits;
    log(&format!(
        "starting the release candidate {} ({}) in the sandbox: {}   [own network namespace, port {}]",
        test.built.digest,
        test.built.base.name,
        spec.argv.join(" "),
        test.port
    ));
    let rc = start_image(&spec, None)?;
    let started = std::time::Instant::now();
    let failure = match rc.wait_port(test.port, RC_START_TIMEOUT) {
        PortWait::Listening => None,
        PortWait::TimedOut => Some(format!(
            "the release candidate did not listen on port {} within {}s",
            test.port,
            RC_START_TIMEOUT.as_secs()
        )),
        PortWait::Exited => Some(format!(
            "the release candidate exited before listening on port {}",
            test.port
        )),
    };
    if let Some(failure) = failure {
        let (outcome, tail) = rc.stop_with_tail(STOP_GRACE)?;
        log(&format!("{failure} ({:?})", outcome.exit));
        show_tail(&tail, log);
        return Ok(RcOutcome {
            exit_code: None,
            failed: vec![failure.clone()],
            failure: Some(failure),
        });
    }
    log(&format!(
        "the release candidate listens on port {} after {} ms",
        test.port,
        started.elapsed().as_millis()
    ));
    let network = rc.network_namespace()?;
    let mut failures: Vec<String> = Vec::new();
    for check in test.checks {
        let port = test.port;
        let path = check.path.clone();
        let got = cairn_sandbox::in_network_namespace(&network, move || http_get(port, &path))?;
        let verdict = match &got {
            Err(e) => Err(format!("no response: {e}")),
            Ok((status, _)) if *status != check.status => {
                Err(format!("status {status}, expected {}", check.status))
            }
            Ok((_, body)) => match &check.contains {
                Some(text) if !body.contains(text.as_str()) => {
                    Err(format!("the body does not contain {text:?}"))
                }
                _ => Ok(()),
            },
        };
        match verdict {
            Ok(()) => log(&format!("ok: http GET {} → {}", check.path, check.status)),
            Err(why) => {
                log(&format!("FAIL: http GET {} ({why})", check.path));
                failures.push(format!("GET {}: {why}", check.path));
            }
        }
    }
    let mut exit_code = None;
    if let Some(mut command) = test.command {
        let url = format!("http://127.0.0.1:{}", test.port);
        command.env.push(("CAIRN_RC_URL".into(), url.clone()));
        command
            .env
            .push(("CAIRN_RC_DIGEST".into(), test.built.digest.clone()));
        log(&format!(
            "$ {}   [in the RC's network namespace, CAIRN_RC_URL={url}]",
            command.argv.last().cloned().unwrap_or_default()
        ));
        let outcome = cairn_sandbox::run_in_network_of(&command, &network, on_line)?;
        match outcome.exit {
            cairn_sandbox::Exit::Code(0) => exit_code = Some(0),
            cairn_sandbox::Exit::Code(code) => {
                exit_code = Some(code);
                failures.push(format!("the acceptance tests exited with code {code}"));
            }
            other => failures.push(format!("the acceptance tests ended abnormally: {other:?}")),
        }
    }
    let still_running = rc.is_running();
    let (_, tail) = rc.stop_with_tail(STOP_GRACE)?;
    if !still_running {
        failures.push("the release candidate stopped during the tests".into());
        show_tail(&tail, log);
    }
    Ok(RcOutcome {
        exit_code,
        failure: (!failures.is_empty()).then(|| failures.join("; ")),
        failed: failures,
    })
}

/// The acceptance stage of a release candidate that serves no port: the
/// workload's command is run inside the RC itself.
pub(crate) struct RcInside<'a> {
    pub images: &'a Images,
    pub built: &'a BuiltImage,
    /// The workload's acceptance command (run by the image's `/bin/sh -c`).
    pub command: String,
    /// cairn's and the chain's variables, over the image's env.
    pub env: Vec<(String, String)>,
    /// The run's workspace, bound read-only at `/workspace`.
    pub workspace: &'a Path,
    pub limits: Limits,
}

/// Runs the acceptance command inside the release candidate: the RC's root
/// filesystem as `/` (read-only), its `/bin/sh -c COMMAND` as the image's
/// user (never root), its env with `test.env` over it, no network, the
/// workspace read-only at `/workspace` (the working directory, so the
/// repository's test files are at hand, and nothing the test does can change
/// them). What is tested is the RC's own files: the digest that is deployed.
/// `log` gets cairn's own lines; `on_line` the command's output.
pub(crate) fn acceptance_inside(
    test: RcInside<'_>,
    log: &mut dyn FnMut(&str),
    on_line: &mut dyn FnMut(Stream, &[u8]),
) -> Result<RcOutcome, EngineError> {
    let rootfs = test.images.rootfs(&test.built.image)?;
    // The shell is the image's own, resolved inside its root.
    let has_shell = cairn_fs::Dir::open(&rootfs)
        .and_then(|root| root.open_in_root("bin/sh"))
        .is_ok_and(|node| matches!(node, cairn_fs::Node::File(_)));
    if !has_shell {
        let why = "the release candidate has no /bin/sh to run its acceptance command in (an image that serves no port is tested by running the command inside it)".to_owned();
        log(&why);
        return Ok(RcOutcome {
            exit_code: None,
            failed: vec![why.clone()],
            failure: Some(why),
        });
    }
    let set: Vec<(&str, String)> = test
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), test.command.clone()];
    let mut spec = super::command_spec(
        &rootfs,
        &test.built.image,
        &set,
        ImageNetwork::Isolated,
        argv,
    )?;
    spec.working_dir = cairn_sandbox::WORKSPACE_AT.into();
    spec.workspace = Some(test.workspace.to_path_buf());
    spec.limits = test.limits;
    log(&format!(
        "$ {}   [inside the release candidate {} ({}): its root filesystem as /, the workspace read-only at {}, no network, uid {}]",
        test.command,
        test.built.digest,
        test.built.base.name,
        cairn_sandbox::WORKSPACE_AT,
        spec.uid
    ));
    let outcome = cairn_sandbox::run_image(&spec, on_line)?;
    let (exit_code, failure) = match outcome.exit {
        cairn_sandbox::Exit::Code(0) => (Some(0), None),
        cairn_sandbox::Exit::Code(127) => (
            Some(127),
            Some("the acceptance tests exited with code 127 inside the release candidate: a command not found in the image".to_owned()),
        ),
        cairn_sandbox::Exit::Code(code) => (
            Some(code),
            Some(format!(
                "the acceptance tests exited with code {code} inside the release candidate"
            )),
        ),
        cairn_sandbox::Exit::TimedOut => (
            None,
            Some("the acceptance tests timed out inside the release candidate (the chain's limit for this stage)".to_owned()),
        ),
        other => (
            None,
            Some(format!(
                "the acceptance tests ended abnormally inside the release candidate: {other:?}"
            )),
        ),
    };
    Ok(RcOutcome {
        exit_code,
        failed: failure.iter().cloned().collect(),
        failure,
    })
}

fn show_tail(tail: &[(Stream, Vec<u8>)], log: &mut dyn FnMut(&str)) {
    if tail.is_empty() {
        log("the release candidate printed nothing");
        return;
    }
    log(&format!(
        "the release candidate's last {} lines:",
        tail.len()
    ));
    for (_, line) in tail {
        log(&format!("  rc| {}", String::from_utf8_lossy(line)));
    }
}

/// A plain HTTP/1.0 GET to 127.0.0.1:`port` in the calling thread's network
/// namespace: the status and the body (bounded).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    // One write: a server that answers after the request line must not see the
    // rest of the request arrive after it has closed the connection.
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: cairn\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    // A server that closes with part of the request unread sends a reset after
    // its answer: what arrived before it still counts.
    let mut bytes = Vec::new();
    if let Err(e) = stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut bytes)
        && bytes.is_empty()
    {
        return Err(e);
    }
    let text = String::from_utf8_lossy(&bytes);
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
