//! `cairn image` (list, push, pull) and `cairn rebase`: the images runs built,
//! moved to and from registries with their signed evidence attached, and moved
//! onto a newer catalog base without a rebuild.
//!
//! Registries must be on the organisation's allow-list (`[registries] allow` in
//! org.toml); Docker Hub never. Credentials for `push`/`pull` come from the
//! container tools' auth files (`$REGISTRY_AUTH_FILE`, `~/.docker/config.json`
//! with `credHelpers`/`credsStore`), then the environment:
//! `CAIRN_REGISTRY_USERNAME` and `CAIRN_REGISTRY_PASSWORD` (never a flag, so
//! they stay out of shell history and process lists).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use cairn_engine::images::Images;
use cairn_engine::images::registry::{self, Connection};
use cairn_model::image_ref::ImageRef;
use serde_json::json;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ImageCommand {
    /// Images cairn built or rebased, newest first.
    List {
        /// Only this workload's.
        #[arg(long)]
        workload: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Push an image and attach its signed evidence (referrers, or the `.att` tag).
    Push {
        /// The image: a digest, a unique digest prefix, or `WORKLOAD:COMMIT12`.
        image: String,
        /// `HOST/REPOSITORY:TAG` on an allowed registry.
        target: String,
        /// Plain HTTP to a loopback registry.
        #[arg(long)]
        plain_http: bool,
    },
    /// Pull an image pinned by digest, and export its attached evidence bundles.
    Pull {
        /// `HOST/REPOSITORY@sha256:…` on an allowed registry.
        reference: String,
        /// Write the manifest and every attached bundle here (for `cairn verify`).
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// Plain HTTP to a loopback registry.
        #[arg(long)]
        plain_http: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct RebaseArgs {
    /// The image: a digest, a unique digest prefix, or `WORKLOAD:COMMIT12`.
    pub image: String,
    /// The catalog base to move it onto (`NAME` or `NAME@sha256:…`).
    #[arg(long)]
    pub onto: String,
}

/// Once the organisation has identities, pushing or rebasing an image needs
/// `run` at its workload (an image cairn did not build has none: refused).
fn authorize_at_image(store: &dyn cairn_store::Store, digest: &str) -> Result<(), Failure> {
    let workload = store
        .images(None, Some(digest), 1)?
        .into_iter()
        .next()
        .map(|record| record.workload);
    let scope = workload.map_or_else(
        cairn_policy::Scope::organisation,
        cairn_policy::Scope::workload,
    );
    cairn_engine::access::cli_actor(store, cairn_policy::Action::Run, Some(&scope))?;
    Ok(())
}

/// Credentials per registry host: `$REGISTRY_AUTH_FILE`, Docker's
/// `config.json` (with its credential helpers), then `CAIRN_REGISTRY_*`.
pub(super) fn connection(plain_http: bool) -> Connection {
    Connection {
        credentials: cairn_registry::Credentials::Anonymous,
        plain_http,
        sources: Some(cairn_registry::AuthSources::from_env()),
    }
}

pub(super) fn image(cli: &Cli, cmd: &ImageCommand) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    match cmd {
        ImageCommand::List { workload, limit } => {
            let list = store.images(workload.as_deref(), None, *limit)?;
            if cli.json {
                print_json(&json!(
                    list.iter()
                        .map(|i| json!({
                            "digest": i.digest,
                            "workload": i.workload,
                            "run": i.run.map(|r| r.0),
                            "commit": i.commit,
                            "base": i.base_name,
                            "base_digest": i.base_digest,
                            "rebased_from": i.rebased_from,
                            "created_at": cairn_model::time::rfc3339_utc(i.created_at_ms),
                        }))
                        .collect::<Vec<_>>()
                ));
            } else if list.is_empty() {
                println!("no images yet: a run of a workload with [image] builds one");
            } else {
                for i in &list {
                    let run = i.run.map_or_else(|| "-".to_owned(), |r| format!("run {r}"));
                    let from = i
                        .rebased_from
                        .as_deref()
                        .map(|d| format!("  rebased from {d}"))
                        .unwrap_or_default();
                    println!(
                        "{}  {}  {}  commit {}  on {}{from}",
                        i.digest,
                        i.workload,
                        run,
                        &i.commit[..12.min(i.commit.len())],
                        i.base_name
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Push {
            image,
            target,
            plain_http,
        } => {
            let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
            ImageRef::parse(target)?.check_allowed(&org.registries, false)?;
            let images = Images::open(&data)?;
            let img = images.find(image)?;
            authorize_at_image(&*store, &img.manifest_digest.to_string())?;
            let pushed = registry::push(
                &images,
                &*store,
                &org,
                &img,
                target,
                &connection(*plain_http),
            )?;
            if cli.json {
                print_json(&json!({
                    "reference": pushed.reference,
                    "digest": pushed.digest,
                    "evidence_attached": pushed.attached,
                }));
            } else {
                println!(
                    "pushed {} with {} evidence bundles attached",
                    pushed.reference, pushed.attached
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Pull {
            reference,
            export,
            plain_http,
        } => {
            let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
            let r = ImageRef::parse(reference)?;
            r.check_allowed(&org.registries, true)?;
            let images = Images::open(&data)?;
            let conn = connection(*plain_http);
            let digest = registry::pull(&images, &org, &r, &conn)?;
            let bundles = registry::attached(&org, reference, &digest, &conn)?;
            let mut files = Vec::new();
            if let Some(dir) = export {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let image = images.image(&digest)?;
                let manifest = images
                    .layout()
                    .read_blob(&image.manifest_digest, cairn_oci::MAX_JSON_BYTES)?;
                let path = dir.join("manifest.json");
                std::fs::write(&path, manifest)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                files.push(path);
                for (i, b) in bundles.iter().enumerate() {
                    let path = dir.join(format!("evidence-{}.sigstore.json", i + 1));
                    std::fs::write(&path, b)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    files.push(path);
                }
            }
            if cli.json {
                print_json(&json!({
                    "digest": digest,
                    "evidence": bundles.len(),
                    "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                }));
            } else {
                println!(
                    "pulled {digest} with {} attached evidence bundles",
                    bundles.len()
                );
                for f in &files {
                    println!("  wrote {}", f.display());
                }
            }
            if bundles.is_empty() {
                return Err(Failure::user(anyhow!(
                    "{reference} has no evidence attached: nothing vouches for it"
                )));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(super) fn rebase(cli: &Cli, args: &RebaseArgs) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let images = Images::open(&data)?;
    authorize_at_image(
        &*store,
        &images.find(&args.image)?.manifest_digest.to_string(),
    )?;
    let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
    let r = cairn_engine::images::rebase::rebase(
        &data,
        &*store,
        &images,
        &org,
        &args.image,
        &args.onto,
    )?;
    if cli.json {
        print_json(&json!({
            "digest": r.record.digest,
            "rebased_from": r.record.rebased_from,
            "old_base": {"name": r.old_base.name, "digest": r.old_base.digest},
            "new_base": {"name": r.new_base.name, "digest": r.new_base.digest},
            "provenance_evidence": r.provenance,
            "sbom_evidence": r.sbom,
            "scan_evidence": r.scan,
            "notes": r.notes,
        }));
    } else {
        println!(
            "rebased {} onto {} ({}): {}\n  previous base {} ({}); app layers unchanged; signed provenance {}",
            r.record.rebased_from.as_deref().unwrap_or("?"),
            r.new_base.name,
            r.new_base.digest,
            r.record.digest,
            r.old_base.name,
            r.old_base.digest,
            r.provenance
        );
        for note in &r.notes {
            println!("  {note}");
        }
        println!(
            "  signed SBOM {} and scan {} about the new digest",
            r.sbom, r.scan
        );
    }
    Ok(ExitCode::SUCCESS)
}
