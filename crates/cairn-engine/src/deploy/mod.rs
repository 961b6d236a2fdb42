//! Deploy targets: where a promoted image goes, behind one entry each way.
//! [`deploy`] and [`undeploy`] dispatch on the environment's target (org.toml's
//! `[environments.<env>] target`): [`local`] runs the image's root filesystem in
//! the sandbox on a host port; [`gitops`] writes (or removes) a digest-pinned
//! manifest in a GitOps repository for Argo CD or Flux to apply.
//!
//! A target changes an environment only when it returns `Ok`; the caller
//! appends the change to the audit log before it calls the target, and hands
//! the log index in so the change can name it. [`reconcile`] compares what
//! runs with what was recorded and resolves the difference; `undeploy.rs` is
//! `cairn undeploy` (authorised, logged, then the target stops it).

pub mod gitops;
pub mod local;
pub mod reconcile;
mod undeploy;

use std::path::PathBuf;

use cairn_model::config::DeployTarget;
use cairn_oci::Image;

use crate::images::Images;
use crate::{DataDir, EngineError};

pub use local::DeployFailure;
pub use undeploy::{UndeployOutcome, UndeployRequest};

/// The name a deployment record keeps of `target` (`local`, `gitops`).
pub fn target_name(target: &DeployTarget) -> &'static str {
    match target {
        DeployTarget::Local => "local",
        DeployTarget::Gitops { .. } => "gitops",
    }
}

/// One deploy, whatever the target: the image, where, and what the change is.
#[derive(Debug)]
pub struct Deployment<'a> {
    pub data: &'a DataDir,
    pub images: &'a Images,
    pub workload: &'a str,
    pub environment: &'a str,
    pub image: &'a Image,
    /// The image's manifest digest, `sha256:…`.
    pub digest: &'a str,
    /// `local`: the host loopback port the environment keeps.
    pub port: u16,
    /// The deployment record's token (`local`: its sandbox's cgroup name).
    pub token: &'a str,
    /// The token of what runs now, to start it again if this deploy fails.
    pub previous_token: Option<&'a str>,
    /// The run that built the image (`gitops`: the `Cairn-Run` trailer).
    pub run: Option<String>,
    /// The change's audit log entry (`gitops`: `Cairn-Log-Index`).
    pub log_index: u64,
    pub change: gitops::ChangeKind,
    pub actor: &'a str,
}

/// Deploys `d` through `target`; `Ok` is the deployment's detail (`local`: its
/// URL; `gitops`: `commit <id>`). On `Err` the environment is as it was, or —
/// `local` only — says whether the previous deployment runs again.
pub fn deploy(target: &DeployTarget, d: &Deployment<'_>) -> Result<String, DeployFailure> {
    match target {
        DeployTarget::Local => local::deploy(
            d.data,
            d.images,
            d.workload,
            d.environment,
            d.image,
            d.port,
            d.token,
            d.previous_token,
        )
        .map(|l| l.url()),
        DeployTarget::Gitops {
            repo,
            dir,
            image_repository,
        } => {
            let port = d
                .image
                .config
                .config()
                .as_ref()
                .and_then(|c| c.exposed_ports().as_ref())
                .and_then(|p| p.first())
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap_or(8080);
            gitops::deploy(&gitops::GitopsChange {
                repo: PathBuf::from(repo),
                dir: fill(dir, d.workload, d.environment),
                workload: d.workload.to_owned(),
                environment: d.environment.to_owned(),
                image: format!(
                    "{}@{}",
                    fill(image_repository, d.workload, d.environment),
                    d.digest
                ),
                port,
                trailers: gitops::Trailers {
                    run: d.run.clone().unwrap_or_else(|| "-".into()),
                    log_index: d.log_index,
                    change: d.change,
                    actor: d.actor.to_owned(),
                },
            })
            .map(|c| format!("commit {}", c.commit))
            .map_err(|e| DeployFailure {
                error: Box::new(e),
                previous_restored: None,
            })
        }
    }
}

/// What an undeploy stops, and the change it is.
#[derive(Debug)]
pub struct Removal<'a> {
    pub data: &'a DataDir,
    pub workload: &'a str,
    pub environment: &'a str,
    /// The undeploy's audit log entry (`gitops`: `Cairn-Log-Index`).
    pub log_index: u64,
    pub actor: &'a str,
}

/// Stops what runs of the workload in the environment through `target`; `Ok`
/// says what was done (`local`: the sandbox stopped; `gitops`: `commit <id>`
/// removing its manifests). On `Err` nothing changed.
pub fn undeploy(target: &DeployTarget, r: &Removal<'_>) -> Result<String, EngineError> {
    match target {
        DeployTarget::Local => {
            if local::undeploy(r.data, r.workload, r.environment)? {
                Ok("its sandbox was stopped".to_owned())
            } else {
                Ok("no sandbox of it ran here".to_owned())
            }
        }
        DeployTarget::Gitops { repo, dir, .. } => gitops::remove(&gitops::GitopsRemoval {
            repo: PathBuf::from(repo),
            dir: fill(dir, r.workload, r.environment),
            workload: r.workload.to_owned(),
            environment: r.environment.to_owned(),
            log_index: r.log_index,
            actor: r.actor.to_owned(),
        })
        .map(|c| format!("commit {}", c.commit)),
    }
}

/// A target's template (`{workload}`, `{environment}`) filled in.
pub(crate) fn fill(template: &str, workload: &str, environment: &str) -> String {
    template
        .replace("{workload}", workload)
        .replace("{environment}", environment)
}
